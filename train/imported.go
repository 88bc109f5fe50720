package train

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/salt-ort/salt-ort/checkpoint"
	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph/optim"
	"github.com/salt-ort/salt-ort/run"
)

// ImportedRun is a model trained elsewhere (by Salt) to start a run
// directory from, so that eval, export and train --resume treat it as a
// run salt-ort trained.
type ImportedRun struct {
	// ConfigText is the configuration (written as config.toml); its data
	// paths are absolute, or relative to the run directory (the
	// dictionaries' copies).
	ConfigText []byte
	// NormDict and ClassDict are the dictionaries' contents (ClassDict nil
	// where the configuration names none).
	NormDict, ClassDict []byte
	// Params are the trained parameters by salt-ort parameter name; nil
	// writes no checkpoint (a configuration to train from the start).
	Params map[string][]float32
	// Slots are the optimizer's state by slot (exp_avg, exp_avg_sq) and
	// parameter name; nil starts the optimizer afresh.
	Slots map[string]map[string][]float32
	// Position is where training continues; SkippedSteps are steps the
	// schedule counted but the optimizer skipped (overflowing fp16 steps).
	Position     Position
	SkippedSteps int
	// Files are further files to write into the run directory (reports),
	// by relative name.
	Files map[string][]byte
}

// WriteImportedRun writes an imported model as a new run directory dir: the
// configuration (config.toml and resolved.toml), the dictionaries, and
// checkpoints/last.safetensors in salt-ort's checkpoint format, checked
// against the configuration's training step (every parameter and optimizer
// slot present with its shape). It writes into a temporary directory beside
// dir and renames it, so on any error nothing is left; dir must not exist or
// be empty.
func WriteImportedRun(dir string, r ImportedRun) (err error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("train: %s exists and is not empty: choose another --out", dir)
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, run.DirMode); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, run.TempPrefix+filepath.Base(dir)+"-")
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	for _, sub := range []string{run.CheckpointDir, run.MetricsDir} {
		if err := os.MkdirAll(filepath.Join(tmp, sub), run.DirMode); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	files := map[string][]byte{run.ConfigFile: r.ConfigText, run.NormDictFile: r.NormDict}
	if r.ClassDict != nil {
		files[run.ClassDictFile] = r.ClassDict
	}
	for name, data := range r.Files {
		files[name] = data
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), data, run.FileMode); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	cfg, err := config.Load(filepath.Join(tmp, run.ConfigFile))
	if err != nil {
		return err
	}
	abs, err := cfg.Absolute()
	if err != nil {
		return err
	}
	// resolved.toml names the dictionaries where the run directory will
	// be, not where they are written first.
	abs.Data.NormDict = filepath.Join(mustAbs(dir), run.NormDictFile)
	if r.ClassDict != nil {
		abs.Data.ClassDict = filepath.Join(mustAbs(dir), run.ClassDictFile)
	}
	resolved, err := abs.Encode()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, run.ResolvedFile), resolved, run.FileMode); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if r.Params != nil {
		if err := writeImportedCheckpoint(tmp, cfg, resolved, r); err != nil {
			return err
		}
	}
	os.Remove(dir) // an empty directory the rename would refuse
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

func mustAbs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// writeImportedCheckpoint writes checkpoints/last.safetensors of an
// imported run into dir.
func writeImportedCheckpoint(dir string, cfg *config.Config, resolved []byte, r ImportedRun) error {
	spec, err := run.SpecWithClasses(cfg, filepath.Join(dir, run.ClassDictFile))
	if err != nil {
		return err
	}
	_, layout, err := trainStepGraph(spec, cfg, 1, nil)
	if err != nil {
		return err
	}
	st := &trainingState{pos: r.Position, params: make([]float32, layout.Size), slots: map[string][]float32{}}
	for _, p := range layout.Params {
		v, ok := r.Params[p.Name]
		if !ok || int64(len(v)) != p.Size {
			return fmt.Errorf("train: imported parameters: %s has %d values, the model %d (shape %v)", p.Name, len(v), p.Size, p.Shape)
		}
		copy(st.params[p.Offset:], v)
	}
	if len(r.Params) != len(layout.Params) {
		return fmt.Errorf("train: imported parameters: %d, the model has %d", len(r.Params), len(layout.Params))
	}
	for _, s := range layout.Slots {
		st.slots[s] = make([]float32, layout.Size)
		for _, p := range layout.Params {
			if r.Slots == nil {
				break
			}
			v, ok := r.Slots[s][p.Name]
			if !ok || int64(len(v)) != p.Size {
				return fmt.Errorf("train: imported optimizer state: %s of %s has %d values, the model %d", s, p.Name, len(v), p.Size)
			}
			copy(st.slots[s][p.Offset:], v)
		}
	}
	if layout.LossScaling {
		st.lossScale = &lossScaleState{Scale: optim.DefaultLossScaler().Scale, Skipped: r.SkippedSteps}
	}
	if r.Slots == nil {
		// A fresh optimizer starts its schedule afresh too: fine-tuning
		// from the imported weights.
		st.pos = Position{}
	}
	f, err := encodeState(st, layout.Params, layout.Slots, spec.Name, cfg.Training.LossWeighting, resolved)
	if err != nil {
		return err
	}
	f.Metadata[run.MetaBest] = "[]"
	return checkpoint.Write(filepath.Join(dir, run.LastCheckpoint), f)
}

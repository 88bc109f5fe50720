package run

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/salt-ort/salt-ort/checkpoint"
	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/loader"
)

// Checkpoint entries a run's checkpoints hold beside the parameters.
const (
	// MetaBest is the metadata key of the JSON list of the best
	// checkpoints kept (BestEntry), best first.
	MetaBest = "best"
	// WeightingState is the tensor of the loss weighting's state
	// (training.loss_weighting = "uncertainty").
	WeightingState = "loss_weighting/state"
	// optimizerPrefix starts the names of the optimizer state's tensors.
	optimizerPrefix = "optimizer/"
)

// OptimizerStateName is the checkpoint tensor name of optimizer slot s of
// a parameter.
func OptimizerStateName(slot, param string) string { return optimizerPrefix + slot + "/" + param }

// BestEntry is one of the best checkpoints kept.
type BestEntry struct {
	File   string  `json:"file"` // relative to the run directory
	Epoch  int     `json:"epoch"`
	Metric float64 `json:"metric"`
}

// Info is what a run directory says about its model.
type Info struct {
	Dir    string
	Config *config.Config // the resolved configuration
	Spec   model.Spec
	Norm   loader.NormDict // the run's copy of the norm dictionary
}

// Load reads a run directory's resolved configuration and
// dictionaries.
func Load(dir string) (*Info, error) {
	cfg, err := config.Load(filepath.Join(dir, ResolvedFile))
	if err != nil {
		return nil, fmt.Errorf("run: %s is not a run directory: %w", dir, err)
	}
	norm, err := loader.ReadNormDict(filepath.Join(dir, NormDictFile))
	if err != nil {
		return nil, err
	}
	cfg.SetNormDict(norm)
	spec, err := runSpec(cfg, dir)
	if err != nil {
		return nil, err
	}
	return &Info{Dir: dir, Config: cfg, Spec: spec, Norm: norm}, nil
}

// runSpec builds the model spec of a run from its configuration and its
// copy of the class dictionary.
func runSpec(cfg *config.Config, runDir string) (model.Spec, error) {
	return SpecWithClasses(cfg, filepath.Join(runDir, ClassDictFile))
}

// SpecWithClasses builds the model a configuration describes, taking the
// class weights of tasks with use_class_dict from the class dictionary at
// classPath (read only when the configuration names one).
func SpecWithClasses(cfg *config.Config, classPath string) (model.Spec, error) {
	var classes loader.ClassDict
	if cfg.Data.ClassDict != "" {
		var err error
		if classes, err = loader.ReadClassDict(classPath); err != nil {
			return model.Spec{}, err
		}
	}
	return cfg.Spec(func(ds, field string) ([]float64, error) {
		w, ok := classes[ds][field]
		if !ok {
			return nil, fmt.Errorf("%s has no weights for %s.%s", classPath, ds, field)
		}
		return w, nil
	})
}

// ParamsFromCheckpoint gathers a model's parameters from a checkpoint into
// a flat vector in the layout's order, refusing a checkpoint of another
// model with the first differing tensor.
func ParamsFromCheckpoint(path string, f *checkpoint.File, layout []graph.ParamSlot) ([]float32, error) {
	want := &checkpoint.File{}
	got := &checkpoint.File{}
	var size int64
	for _, p := range layout {
		want.Set(p.Name, checkpoint.Tensor{DType: checkpoint.F32, Shape: p.Shape})
		if t, ok := f.Tensors[p.Name]; ok {
			got.Set(p.Name, t)
		}
		size += p.Size
	}
	for name, t := range f.Tensors {
		if _, ok := want.Tensors[name]; !ok && !isTrainingState(name) {
			got.Set(name, t)
		}
	}
	if err := checkpoint.Compare(got, want); err != nil {
		return nil, fmt.Errorf("run: %s is from another model configuration: %w", path, err)
	}
	params := make([]float32, size)
	for _, p := range layout {
		v, _, err := f.Float32(p.Name)
		if err != nil {
			return nil, fmt.Errorf("run: %s: %w", path, err)
		}
		copy(params[p.Offset:], v)
	}
	return params, nil
}

// isTrainingState reports whether a checkpoint tensor is training's state
// (the optimizer's or the loss weighting's) rather than a parameter.
func isTrainingState(name string) bool {
	return len(name) > len(optimizerPrefix) && strings.HasPrefix(name, optimizerPrefix) || name == WeightingState
}

// ResolveCheckpoint maps "best" (or ""), "last" or a file path to a
// checkpoint file of a run.
func ResolveCheckpoint(runDir, which string) (string, error) {
	switch which {
	case "", "best":
		return BestCheckpoint(runDir)
	case "last":
		return filepath.Join(runDir, LastCheckpoint), nil
	}
	return which, nil
}

// BestCheckpoint returns the path of a run's best checkpoint (by its
// monitored metric), or its last one if none is recorded.
func BestCheckpoint(runDir string) (string, error) {
	last := filepath.Join(runDir, LastCheckpoint)
	f, err := checkpoint.Read(last)
	if err != nil {
		return "", err
	}
	st := struct{ best []BestEntry }{}
	if err := json.Unmarshal([]byte(f.Metadata[MetaBest]), &st.best); err != nil || len(st.best) == 0 {
		return last, nil
	}
	return filepath.Join(runDir, st.best[0].File), nil
}

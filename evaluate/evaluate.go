// Package evaluate evaluates a trained run on test files the way
// physicists read flavour-tagging performance: it writes Salt-compatible
// prediction files, a performance summary (JSON and a printed table) and
// PNG plots.
//
// For each test file <stem>.h5 it writes, into <run>/eval/:
//
//   - <stem>.h5: the predictions in the layout of Salt's PredictionWriter,
//     readable with h5py. Dataset "jets" (n_jets,) holds the kept jets
//     fields in their stored types (by default pt, eta, the truth labels
//     and eventNumber, see [DefaultKeep]) and, as float32, the class
//     probabilities of the jet classification task <model>_p<class>
//     (GN2_pb, GN2_pc, GN2_pu, GN2_ptau) and the regression predictions
//     <model>_<target> (and <model>_<target>_stddev for Gaussian
//     regression). Each constituent group with constituent-level tasks
//     (e.g. "tracks") gets a dataset (n_jets, max_len) holding the task
//     labels copied from the input (ftagTruthOriginLabel,
//     ftagTruthVertexIndex), the per-class probabilities <model>_p<class>
//     as float32 (GN2_ppileup, GN2_pfromB, …; 0 on padding), the vertex
//     index <model>_VertexIndex as int8 (model.GroupVertices over the
//     valid tracks; -1 on padding) and the bool "valid". A model with a
//     mask decoder also gets the objects as Salt's writer writes them with
//     write_objects: dataset "objects" (n_jets, num_objects) with each
//     object's class probabilities and each truth slot's class
//     ([ObjectsDataset]), and each track's object <model>_MaskIndex in the
//     tracks ([MaskIndexField]).
//   - <stem>.json: the [Summary].
//   - <stem>_disc_b.png: D_b per flavour; <stem>_roc.png: c-, light- (and
//     tau-) rejection against b-efficiency.
//
// and loss.png with the training and validation losses per epoch (none,
// with a note, for a run without training history, as import-salt makes
// it). Compare
// plots the ROC curves of two runs on the same file with their ratio.
package evaluate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/salt-ort/salt-ort/internal/atomicfile"
	"github.com/salt-ort/salt-ort/runtime"
	"github.com/salt-ort/salt-ort/train"
)

// Dir is the directory of a run that Run writes into.
const Dir = "eval"

// LossPlot is the file name of the loss plot in the output directory.
const LossPlot = "loss.png"

// Options configure Run and Compare.
type Options struct {
	// RunDir is the trained run.
	RunDir string
	// Checkpoint is "best" (or ""), "last" or a checkpoint file.
	Checkpoint string
	// Files are the test files, relative to the working directory; nil
	// takes the configuration's test files. Patterns (*, ?, [...]) stand
	// for the files they match.
	Files []string
	// NumJets evaluates the first NumJets jets of each file (after the
	// selections); 0 all.
	NumJets int
	// OutDir is where the outputs go; "" is <RunDir>/eval (Run) or the
	// current directory (Compare).
	OutDir string
	// Keep lists the jets fields copied into the prediction files, each of
	// which must exist; nil keeps those of DefaultKeep the file has, plus
	// the labels and targets of the model's jet tasks.
	Keep []string
	// FC is the charm fraction f_c of D_b, in [0, 1]; callers usually set
	// DefaultFC (0 is a valid value).
	FC float64
	// Efficiencies are the working points (nil: 60, 70, 77 and 85 %).
	Efficiencies []float64
	// NoPlots skips the PNG files.
	NoPlots bool
	// Runtime runs the evaluation graph; Threads is its intra-op thread
	// count (0: all cores).
	Runtime *runtime.Runtime
	Threads int
	// Device is where the evaluation graph runs: "cpu", "cuda" (which must
	// be available), or "" for the run's training.device, falling back to
	// the CPU, with a note, where CUDA is not available here (see
	// train.EvalDevice).
	Device string
	// Log, if set, receives a line per file Run wrote, and the notes of
	// Compare (a run's fallback to the CPU).
	Log io.Writer
}

// FileResult is what Run wrote for one test file.
type FileResult struct {
	File        string   // the test file
	Summary     *Summary // nil when the file has no truth labels
	Predictions string   // the prediction file
	JSON        string   // the summary ("" without one)
	Plots       []string
	ROC         []ROC // nil without flavour performance
	// Unlabelled lists the tasks the file has no truth for, with the
	// missing field: "task (dataset.field)". Their predictions are
	// written, their performance is not computed.
	Unlabelled []string
}

// Report is what Run did.
type Report struct {
	RunDir     string
	Checkpoint string
	OutDir     string
	Files      []FileResult
	LossPlot   string // "" with NoPlots or without training history
	// Notes say what was skipped or changed and why (a loss plot skipped
	// for want of training history, a fallback to the CPU), for stderr.
	Notes []string
}

// outputs resolves the files to evaluate (given, or the run's test
// files), their output stems and the output directory (given, or def),
// which it creates.
func outputs(run *train.RunInfo, given []string, outDir, def string) (files, names []string, out string, err error) {
	if files, err = testFiles(run, given); err != nil {
		return nil, nil, "", err
	}
	if names, err = stems(files); err != nil {
		return nil, nil, "", err
	}
	out = outDir
	if out == "" {
		out = def
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, nil, "", fmt.Errorf("evaluate: %w", err)
	}
	return files, names, out, nil
}

// stems returns the output stem of each file (its base name without the
// extension), refusing two files with the same stem.
func stems(files []string) ([]string, error) {
	seen := map[string]string{}
	var out []string
	for _, f := range files {
		s := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
		if prev, ok := seen[s]; ok {
			return nil, fmt.Errorf("evaluate: %s and %s would both write %s.*; evaluate them separately with different --out directories", prev, f, s)
		}
		seen[s] = f
		out = append(out, s)
	}
	return out, nil
}

// testFiles returns the files to evaluate: opts.Files (relative to the
// working directory) or the run's test files, patterns expanded.
func testFiles(run *train.RunInfo, files []string) ([]string, error) {
	if files == nil {
		files = run.Config.ResolveAll(run.Config.Data.Test)
		if len(files) == 0 {
			return nil, fmt.Errorf("evaluate: %s: no test files: the configuration lists none; give them with --test", run.Dir)
		}
	} else {
		var out []string
		for _, f := range files {
			if !strings.ContainsAny(filepath.Base(f), "*?[") {
				out = append(out, f)
				continue
			}
			m, err := filepath.Glob(f)
			if err != nil {
				return nil, fmt.Errorf("evaluate: --test %q: %w", f, err)
			}
			if len(m) == 0 {
				return nil, fmt.Errorf("evaluate: --test %q matches no file", f)
			}
			sort.Strings(m)
			out = append(out, m...)
		}
		files = out
	}
	out := make([]string, len(files))
	for i, f := range files {
		if strings.ContainsAny(filepath.Base(f), "*?[") {
			if _, err := os.Stat(f); err != nil {
				return nil, fmt.Errorf("evaluate: the test files %q of %s match no file; give them with --test", f, run.Dir)
			}
		}
		// Absolute, so that the run's configuration (in the run
		// directory) does not resolve them against itself.
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
		out[i] = abs
	}
	return out, nil
}

// run is Run without the removal of a failed run's outputs.
func run(ctx context.Context, opts Options) (*Report, error) {
	run, err := train.LoadRun(opts.RunDir)
	if err != nil {
		return nil, err
	}
	ckpt, err := train.ResolveCheckpoint(opts.RunDir, opts.Checkpoint)
	if err != nil {
		return nil, err
	}
	device, note, err := train.EvalDevice(opts.Runtime, run.Config, opts.Device)
	if err != nil {
		return nil, err
	}
	opts.Device = device
	files, names, out, err := outputs(run, opts.Files, opts.OutDir, filepath.Join(opts.RunDir, Dir))
	if err != nil {
		return nil, err
	}
	rep := &Report{RunDir: opts.RunDir, Checkpoint: ckpt, OutDir: out}
	if note != "" {
		rep.Notes = append(rep.Notes, note)
	}
	for i, file := range files {
		fr := FileResult{File: file, Predictions: filepath.Join(out, names[i]+".h5"), JSON: filepath.Join(out, names[i]+".json")}
		coll, err := predict(ctx, predictOptions{run: run, checkpoint: ckpt, file: file, out: fr.Predictions, keep: opts.Keep, limit: opts.NumJets, opts: &opts})
		if err != nil {
			return nil, err
		}
		fr.Unlabelled = coll.unlabelled
		if len(coll.unlabelled) == len(run.Spec.Tasks) {
			// No truth at all: the predictions are the result.
			fr.JSON = ""
			os.Remove(filepath.Join(out, names[i]+".json"))
			rep.Files = append(rep.Files, fr)
			continue
		}
		var scores []float64
		if fr.Summary, scores, err = summarise(file, run.Spec.Name, ckpt, coll, opts.FC, opts.Efficiencies); err != nil {
			return nil, err
		}
		if err := writeJSON(fr.JSON, fr.Summary); err != nil {
			return nil, err
		}
		if !opts.NoPlots && fr.Summary.Flavour != nil && fr.Summary.Flavour.SignalJets > 0 {
			fl := coll.flavour
			title := fmt.Sprintf("%s on %s", run.Spec.Name, filepath.Base(file))
			discPlot := filepath.Join(out, names[i]+"_disc_b.png")
			if err := PlotDiscriminant(discPlot, title, fl.classes, scores, fl.labels, opts.FC); err != nil {
				return nil, err
			}
			if fr.ROC, err = ROCCurves(fl.classes, scores, fl.labels, nil); err != nil {
				return nil, err
			}
			rocPlot := filepath.Join(out, names[i]+"_roc.png")
			if err := PlotROC(rocPlot, fmt.Sprintf("%s, f_c = %g", title, opts.FC), fr.ROC); err != nil {
				return nil, err
			}
			fr.Plots = append(fr.Plots, discPlot, rocPlot)
		}
		rep.Files = append(rep.Files, fr)
	}
	if !opts.NoPlots {
		if err := lossPlot(rep, run, out); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// lossPlot writes the loss plot of a run into out, or, for a run without
// training history (one import-salt made), notes why there is none.
func lossPlot(rep *Report, run *train.RunInfo, out string) error {
	lc, err := ReadLosses(run.Dir)
	if errors.Is(err, ErrNoHistory) {
		rep.Notes = append(rep.Notes, fmt.Sprintf("no %s: %s has no training history (%s): a run made by import-salt has none until salt-ort trains it (train --resume)", LossPlot, run.Dir, train.TrainMetrics))
		return nil
	}
	if err != nil {
		return err
	}
	rep.LossPlot = filepath.Join(out, LossPlot)
	return PlotLoss(rep.LossPlot, run.Spec.Name+": loss per epoch", lc)
}

// writeJSON writes v as indented JSON, atomically.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("evaluate: %s: %w", path, err)
	}
	if err := atomicfile.Write(path, append(b, '\n')); err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	return nil
}

// Comparison is what Compare did for one test file.
type Comparison struct {
	File string
	A, B *Summary
	ROCA []ROC
	ROCB []ROC
	Plot string
}

// Compare evaluates two runs on the same test files (opts.Files, or the
// first run's test files) without writing prediction files, and writes
// compare_<stem>_roc.png into opts.OutDir (default: the current
// directory): both runs' ROC curves and the rejection ratio B/A. The
// same Checkpoint choice applies to both runs; opts.RunDir and opts.Keep
// are ignored.
func Compare(ctx context.Context, runA, runB string, opts Options) ([]Comparison, error) {
	a, err := train.LoadRun(runA)
	if err != nil {
		return nil, err
	}
	b, err := train.LoadRun(runB)
	if err != nil {
		return nil, err
	}
	files, names, out, err := outputs(a, opts.Files, opts.OutDir, ".")
	if err != nil {
		return nil, err
	}
	devices := map[*train.RunInfo]string{}
	for _, r := range []*train.RunInfo{a, b} {
		dev, note, err := train.EvalDevice(opts.Runtime, r.Config, opts.Device)
		if err != nil {
			return nil, err
		}
		if note != "" && opts.Log != nil {
			fmt.Fprintf(opts.Log, "note: %s: %s\n", r.Dir, note)
		}
		devices[r] = dev
	}
	labelA, labelB := filepath.Base(filepath.Clean(runA)), filepath.Base(filepath.Clean(runB))
	if labelA == labelB {
		labelA, labelB = "A", "B"
	}
	var cmps []Comparison
	for i, file := range files {
		cmp := Comparison{File: file}
		for _, side := range []struct {
			run *train.RunInfo
			sum **Summary
			roc *[]ROC
		}{{a, &cmp.A, &cmp.ROCA}, {b, &cmp.B, &cmp.ROCB}} {
			ckpt, err := train.ResolveCheckpoint(side.run.Dir, opts.Checkpoint)
			if err != nil {
				return nil, err
			}
			// No prediction file, so no jets fields to copy.
			sideOpts := opts
			sideOpts.Device = devices[side.run]
			coll, err := predict(ctx, predictOptions{run: side.run, checkpoint: ckpt, file: file, keep: []string{}, limit: opts.NumJets, opts: &sideOpts})
			if err != nil {
				return nil, err
			}
			s, scores, err := summarise(file, side.run.Spec.Name, ckpt, coll, opts.FC, opts.Efficiencies)
			if err != nil {
				return nil, err
			}
			if s.Flavour == nil || s.Flavour.SignalJets == 0 {
				return nil, fmt.Errorf("evaluate: %s on %s: no b-tagging performance to compare (the model needs a jet classification with b and light classes, the file b jets)", side.run.Dir, file)
			}
			*side.sum = s
			if *side.roc, err = ROCCurves(coll.flavour.classes, scores, coll.flavour.labels, nil); err != nil {
				return nil, err
			}
		}
		if !opts.NoPlots {
			cmp.Plot = filepath.Join(out, "compare_"+names[i]+"_roc.png")
			title := fmt.Sprintf("%s vs %s on %s, f_c = %g", labelB, labelA, filepath.Base(file), opts.FC)
			if err := PlotCompare(cmp.Plot, title, labelA, labelB, cmp.ROCA, cmp.ROCB); err != nil {
				return nil, err
			}
		}
		cmps = append(cmps, cmp)
	}
	return cmps, nil
}

package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/salt-ort/salt-ort/evaluate"
	"github.com/salt-ort/salt-ort/flavour"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/metrics"
	"github.com/salt-ort/salt-ort/run"
)

// CardFormat identifies the JSON model card.
const CardFormat = "salt-ort model card 1"

// Card is the model card: what the Les Houches guide to reusable models
// asks of a preserved model beyond the ONNX file, computed from the run.
// Export writes it as Markdown (<model>.md) and as JSON
// (<model>.card.json). It holds no time and no path that depends on
// where the files were, so an export made again writes the same card.
type Card struct {
	Format         string `json:"format"`
	Model          string `json:"model"`
	ModelFile      string `json:"model_file"`
	SHA256         string `json:"sha256"` // of the model file
	SaltORTVersion string `json:"salt_ort_version"`
	Interface      string `json:"interface"`
	Opset          int    `json:"opset"`
	// IntendedUse is what the model was trained for and on: its tasks,
	// the selections and the kinematic range of the training jets.
	IntendedUse IntendedUse `json:"intended_use"`
	// Inputs are the model inputs, each variable with its unit and the
	// normalisation the model applies.
	Inputs  []CardInput `json:"inputs"`
	Outputs []Output    `json:"outputs"`
	// Discriminants say how to combine the class probabilities.
	Discriminants []Discriminant `json:"discriminants,omitempty"`
	// AthenaWarnings are what ATLAS's loaders will not accept.
	AthenaWarnings []string `json:"atlas_loader,omitempty"`
	// Checkpoint and Data are the training data provenance: the
	// checkpoint, and the training and validation splits' files (with
	// their SHA-256), jets and jets per class.
	Checkpoint File         `json:"checkpoint"`
	Data       []*SplitData `json:"training_data"`
	// Performance is the model's performance on each test file `salt-ort
	// eval` evaluated the exported checkpoint on; PerformanceNote says
	// why there is none.
	Performance     []Performance  `json:"performance"`
	PerformanceNote string         `json:"performance_note,omitempty"`
	Validation      CardValidation `json:"validation"`
	// Attributions are the feature attributions of `salt-ort explain`,
	// nil for a run never explained.
	Attributions *CardAttributions `json:"attributions,omitempty"`
}

// IntendedUse is the domain a model was trained for.
type IntendedUse struct {
	Tasks []CardTask `json:"tasks"`
	// Selections are data.selections: cuts per dataset; jets failing a
	// cut on the jet dataset were not trained on.
	Selections map[string][]string `json:"selections"`
	// Jets is the number of training jets, Kinematics their ranges.
	Jets       int      `json:"jets"`
	Kinematics []Range  `json:"kinematics"`
	Notes      []string `json:"notes,omitempty"`
}

// CardTask is one task the model was trained for.
type CardTask struct {
	Name    string   `json:"name"`
	Kind    string   `json:"kind"`
	Classes []string `json:"classes,omitempty"`
	Input   string   `json:"input,omitempty"` // constituent group of a constituent task
}

// CardVariable is one input variable, its unit and its normalisation
// ((x − mean)/std, inside the model).
type CardVariable struct {
	Name string  `json:"name"`
	Unit string  `json:"unit"`
	Mean float64 `json:"mean"`
	Std  float64 `json:"std"`
}

// CardInput is one model input.
type CardInput struct {
	Name      string         `json:"name"`
	Group     string         `json:"group"`
	Shape     []string       `json:"shape"`
	Variables []CardVariable `json:"variables"`
	Valid     string         `json:"valid_mask,omitempty"`
}

// Discriminant says how to combine class probabilities into one score.
type Discriminant struct {
	Name    string `json:"name"`    // D_b, D_c
	Formula string `json:"formula"` // in the outputs' names
	// Fraction is the background fraction of the formula (f_c of D_b),
	// nil where this run fixes none; FractionSource says where it comes
	// from.
	Fraction       *float64 `json:"fraction,omitempty"`
	FractionSource string   `json:"fraction_source"`
}

// Performance is the flavour-tagging performance on one test file.
type Performance struct {
	File       string         `json:"file"`
	SHA256     string         `json:"sha256,omitempty"` // "" where the file was not found
	Checkpoint string         `json:"checkpoint"`
	FC         float64        `json:"fc"`
	Signal     string         `json:"signal"`
	Jets       map[string]int `json:"jets"`
	// Backgrounds are each background's AUC with its Hanley–McNeil
	// standard error and the rejections at the working points with their
	// binomial uncertainties.
	Backgrounds []PerformanceBackground `json:"backgrounds"`
}

// PerformanceBackground is one background's performance.
type PerformanceBackground struct {
	Name           string                  `json:"name"`
	Jets           int                     `json:"jets"`
	AUC            evaluate.Float          `json:"auc"`
	AUCUncertainty evaluate.Float          `json:"auc_uncertainty"`
	WorkingPoints  []evaluate.WorkingPoint `json:"working_points"`
}

// Uncertainty methods, as the card states them.
const (
	AUCMethod       = "Hanley–McNeil standard error (metrics.AUCUncertainty)"
	RejectionMethod = "binomial: rej² · sqrt(ε(1−ε)/N), ε the background efficiency, N its jets (puma's rej_err)"
)

// CardValidation is how to check the model and where it was checked.
type CardValidation struct {
	Vectors    File    `json:"vectors"`
	Jets       int     `json:"jets"`
	Tolerance  float64 `json:"tolerance"`
	Command    string  `json:"command"`
	CppCommand string  `json:"cpp_command"`
	// ReleasesCommand runs the vectors in the releases of Runtimes.
	ReleasesCommand string         `json:"releases_command,omitempty"`
	Runtimes        []RuntimeCheck `json:"runtimes,omitempty"`
}

// CardJSONPath returns where the JSON model card of model path goes.
func CardJSONPath(modelPath string) string {
	return strings.TrimSuffix(modelPath, filepath.Ext(modelPath)) + ".card.json"
}

// cardInputs returns the metadata's inputs with each variable's unit.
func cardInputs(m *Metadata, params []string) []CardInput {
	var out []CardInput
	for _, in := range m.Inputs {
		ci := CardInput{Name: in.Name, Group: in.Group, Shape: in.Shape, Valid: in.Valid}
		for _, v := range in.Variables {
			unit := VariableUnit(v.Name)
			if slices.Contains(params, v.Name) {
				unit = "as the parameter's values"
			}
			ci.Variables = append(ci.Variables, CardVariable{Name: v.Name, Unit: unit, Mean: v.Mean, Std: v.Std})
		}
		out = append(out, ci)
	}
	return out
}

// cardTasks lists the tasks of spec.
func cardTasks(spec model.Spec) []CardTask {
	var out []CardTask
	for _, t := range spec.Tasks {
		out = append(out, CardTask{Name: t.Name, Kind: string(t.Kind), Classes: t.Classes, Input: t.Input})
	}
	return out
}

// flavourRole returns "b", "c" or "light" for a class of that flavour
// (compared by short output name, as eval does), else "".
func flavourRole(class string) string {
	for _, r := range []struct {
		role  string
		names []string
	}{{"b", []string{"b", "bjets"}}, {"c", []string{"c", "cjets"}}, {"light", []string{"u", "light", "l", "ujets", "lightjets"}}} {
		if slices.ContainsFunc(r.names, func(n string) bool { return flavour.Short(n) == flavour.Short(class) }) {
			return r.role
		}
	}
	return ""
}

// discriminants writes D_b (and D_c where there is a c class) in the
// names of the model's probability outputs of its first jet
// classification task, with the f_c eval used.
func discriminants(outs []Output, fc float64, fcSource string) []Discriminant {
	names := map[string]string{}
	task := ""
	for _, o := range outs {
		if o.Kind != string(model.ClassProbability) || (task != "" && o.Task != task) {
			continue
		}
		task = o.Task
		if r := flavourRole(o.Label); r != "" && names[r] == "" {
			names[r] = o.Name
		}
	}
	if names["b"] == "" || names["light"] == "" {
		return nil
	}
	pc := "0"
	if names["c"] != "" {
		pc = names["c"]
	}
	d := []Discriminant{{Name: "D_b", Formula: fmt.Sprintf("ln(%s / (f_c·%s + (1 − f_c)·%s))", names["b"], pc, names["light"]), Fraction: &fc, FractionSource: fcSource}}
	if names["c"] != "" {
		d = append(d, Discriminant{Name: "D_c", Formula: fmt.Sprintf("ln(%s / (f_b·%s + (1 − f_b)·%s))", names["c"], names["b"], names["light"]),
			FractionSource: "salt-ort's eval computes no D_c, so this run fixes no f_b: take the f_b of the c-tagging calibration the model is used with"})
	}
	return d
}

// performance reads the summaries `salt-ort eval` wrote into the run's
// eval directory for the checkpoint ckpt (by file name) and adds the
// AUCs' uncertainties; note says why there are none.
func performance(runDir, ckpt string, hash func(string) (File, error)) (perf []Performance, note string, err error) {
	paths, err := filepath.Glob(filepath.Join(runDir, evaluate.Dir, "*.json"))
	if err != nil {
		return nil, "", fmt.Errorf("deploy: %w", err)
	}
	slices.Sort(paths)
	var others []string
	for _, p := range paths {
		s, ok := readSummary(p)
		if !ok || s.Flavour == nil {
			continue
		}
		if filepath.Base(s.Checkpoint) != filepath.Base(ckpt) {
			others = append(others, filepath.Base(s.Checkpoint))
			continue
		}
		pf, err := summaryPerformance(s, hash)
		if err != nil {
			return nil, "", fmt.Errorf("deploy: %s: %w", p, err)
		}
		perf = append(perf, pf)
	}
	if len(perf) == 0 {
		note = fmt.Sprintf("no `salt-ort eval` of the exported checkpoint %s in %s: run `salt-ort eval RUN --checkpoint %s`, then export again",
			filepath.Base(ckpt), evaluate.Dir, filepath.Base(ckpt))
		if len(others) > 0 {
			slices.Sort(others)
			note += fmt.Sprintf(" (eval evaluated %s)", strings.Join(slices.Compact(others), ", "))
		}
	}
	return perf, note, nil
}

// readSummary decodes an eval summary; ok is false for a file that is not
// one.
func readSummary(path string) (*evaluate.Summary, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	var s evaluate.Summary
	if json.Unmarshal(b, &s) != nil || s.File == "" || s.Checkpoint == "" {
		return nil, false
	}
	return &s, true
}

// summaryPerformance turns an eval summary into the card's performance,
// with the Hanley–McNeil error of each AUC and the test file's hash.
func summaryPerformance(s *evaluate.Summary, hash func(string) (File, error)) (Performance, error) {
	f := s.Flavour
	p := Performance{File: filepath.Base(s.File), Checkpoint: filepath.Base(s.Checkpoint), FC: f.FC, Signal: f.Signal, Jets: f.Jets}
	h, err := hash(s.File)
	switch {
	case err == nil:
		p.SHA256 = h.SHA256
	case !errors.Is(err, fs.ErrNotExist):
		return p, err
	}
	for _, b := range f.Backgrounds {
		pb := PerformanceBackground{Name: b.Name, Jets: b.Jets, AUC: b.AUC, AUCUncertainty: evaluate.Float(math.NaN()), WorkingPoints: b.WorkingPoints}
		if auc := float64(b.AUC); auc == auc && f.SignalJets > 0 && b.Jets > 0 {
			se, err := metrics.AUCUncertainty(auc, float64(f.SignalJets), float64(b.Jets))
			if err != nil {
				return p, err
			}
			pb.AUCUncertainty = evaluate.Float(se)
		}
		p.Backgrounds = append(p.Backgrounds, pb)
	}
	return p, nil
}

// cardOptions are what buildCard needs beyond the metadata.
type cardOptions struct {
	run          *run.Info
	spec         model.Spec
	ckpt         string // the exported checkpoint's path
	modelFile    string // the model's file name
	sha256       string // of the model file
	tolerance    float64
	warnings     []string
	attributions *CardAttributions
	hash         func(string) (File, error)
}

// buildCard computes the model card of an export: it reads the training
// and validation jets as training read them, and eval's summaries.
func buildCard(ctx context.Context, m *Metadata, o cardOptions) (*Card, error) {
	cfg := o.run.Config
	c := &Card{Format: CardFormat, Model: m.Model, ModelFile: o.modelFile, SHA256: o.sha256, SaltORTVersion: m.SaltORTVersion,
		Interface: m.Interface, Opset: m.Opset, Inputs: cardInputs(m, o.spec.ParameterNames()), Outputs: m.ValidationOutputs,
		AthenaWarnings: o.warnings, Checkpoint: m.Checkpoint, Attributions: o.attributions}
	c.IntendedUse = IntendedUse{Tasks: cardTasks(o.spec), Selections: cfg.Data.Selections}
	if c.IntendedUse.Selections == nil {
		c.IntendedUse.Selections = map[string][]string{}
	}
	tr, err := scanSplit(ctx, cfg, "train", cfg.ResolveAll(cfg.Data.Train), cfg.Data.NumTrain, true, o.hash)
	if err != nil {
		return nil, err
	}
	val, err := scanSplit(ctx, cfg, "val", cfg.ResolveAll(cfg.Data.Val), cfg.Data.NumVal, false, o.hash)
	if err != nil {
		return nil, err
	}
	c.Data = []*SplitData{tr, val}
	c.IntendedUse.Jets, c.IntendedUse.Kinematics, c.IntendedUse.Notes = tr.Jets, tr.Kinematics, tr.Notes
	if c.Performance, c.PerformanceNote, err = performance(o.run.Dir, o.ckpt, o.hash); err != nil {
		return nil, err
	}
	fc, src := evaluate.DefaultFC, "eval's default f_c (no evaluation of the exported checkpoint was found)"
	if len(c.Performance) > 0 {
		fc, src = c.Performance[0].FC, fmt.Sprintf("the f_c `salt-ort eval` used on %s", c.Performance[0].File)
	}
	c.Discriminants = discriminants(c.Outputs, fc, src)
	c.Validation = CardValidation{Vectors: m.Validation, Jets: m.ValidationJets, Tolerance: o.tolerance, Runtimes: m.Runtimes,
		Command: "salt-ort validate " + o.modelFile, CppCommand: "salt-ort validate " + o.modelFile + " --cpp"}
	if o.tolerance != DefaultTolerance {
		tol := fmt.Sprintf(" --tolerance %g", o.tolerance)
		c.Validation.Command += tol
		c.Validation.CppCommand += tol
	}
	if len(m.Runtimes) > 0 {
		c.Validation.ReleasesCommand = c.Validation.Command
		for _, r := range m.Runtimes {
			c.Validation.ReleasesCommand += " --ort " + r.Version
		}
	}
	return c, nil
}

package deploy

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/loader"
)

// KinematicSample is the largest number of jets whose values the model
// card's quantiles are computed from; a split with more jets is sampled
// uniformly (reservoir sampling with a fixed seed, so that the card stays
// the same), while the minimum, maximum and counts always cover every jet.
const KinematicSample = 1 << 20

// quantiles are the quantiles of each kinematic variable the card gives,
// besides the minimum and maximum.
var quantiles = []float64{0.01, 0.5, 0.99}

// Range is the distribution of one jet variable over the jets of a split.
type Range struct {
	Variable string `json:"variable"` // as the card names it: pt or |eta|
	Field    string `json:"field"`    // the jets field read
	Unit     string `json:"unit"`
	// Input says whether the field is a model input; where it is not,
	// the field is read from the files beside the inputs.
	Input bool `json:"input"`
	// Abs says whether the absolute value was taken.
	Abs bool    `json:"abs"`
	Min float64 `json:"min"`
	Max float64 `json:"max"`
	// Quantiles are the values at the 1 %, 50 % and 99 % quantiles,
	// computed (with numpy's linear interpolation) from Sampled jets.
	Quantiles []float64 `json:"quantiles"`
	Sampled   int       `json:"sampled_jets"`
}

// SplitData is what the model card says of the jets of one split, read as
// training reads them: the configuration's files, its jet selections and
// its num_train or num_val.
type SplitData struct {
	Split string `json:"split"` // train or val
	Files []File `json:"files"`
	// FileJets are the jets in the files, Selected those passing the jet
	// selections, Jets those read (at most num_train or num_val).
	FileJets int `json:"file_jets"`
	Selected int `json:"selected_jets"`
	Jets     int `json:"jets"`
	Limit    int `json:"limit,omitempty"`
	// Task and Classes name the jet classification task whose labels
	// Counts counts, per class, in the order of Classes; Unlabelled are
	// the jets of no class (left out of the losses).
	Task       string   `json:"task,omitempty"`
	Classes    []string `json:"classes,omitempty"`
	Counts     []int64  `json:"counts,omitempty"`
	Unlabelled int64    `json:"unlabelled,omitempty"`
	// Kinematics are the jets' pt and |eta| ranges (train only).
	Kinematics []Range `json:"kinematics,omitempty"`
	// Notes say what could not be described and why.
	Notes []string `json:"notes,omitempty"`
}

// kinematicVar is a jet variable the card describes: the field to read.
type kinematicVar struct {
	name, field, unit string
	input, abs        bool
}

// kinematicVars picks the jets fields of pt and eta: the jet input
// variables named so (pt_btagJes, eta_btagJes), else the plain fields pt
// and eta where the first file's jet dataset has them; notes say which.
func kinematicVars(cfg *config.Config, files []string) ([]kinematicVar, []string) {
	inputs := cfg.Data.JetInputVariables()
	var fields []string
	if len(files) > 0 {
		if t, err := loader.OpenFieldTable(files[0], cfg.Data.DatasetOf(cfg.Data.JetDataset)); err == nil {
			fields = t.Fields()
			t.Close()
		}
	}
	var out []kinematicVar
	var notes []string
	for _, k := range []struct {
		name, base string
		abs        bool
	}{{"pt", "pt", false}, {"|eta|", "eta", true}} {
		match := func(v string) bool {
			l := strings.ToLower(v)
			return l == k.base || strings.HasPrefix(l, k.base+"_")
		}
		if i := slices.IndexFunc(inputs, match); i >= 0 {
			out = append(out, kinematicVar{name: k.name, field: inputs[i], unit: VariableUnit(inputs[i]), input: true, abs: k.abs})
			continue
		}
		if slices.Contains(fields, k.base) {
			out = append(out, kinematicVar{name: k.name, field: k.base, unit: VariableUnit(k.base), abs: k.abs})
			notes = append(notes, fmt.Sprintf("no jet input is %s: its range is that of the jets field %s, which the model does not read", k.base, k.base))
			continue
		}
		notes = append(notes, fmt.Sprintf("no jet input is %s and the jets have no field %s: the %s range of the training jets is unknown", k.base, k.base, k.name))
	}
	return out, notes
}

// jetClassTask returns the first jet classification task of the
// configuration and its loader label; ok is false without one.
func jetClassTask(cfg *config.Config) (config.Task, loader.Label, bool, error) {
	for _, t := range cfg.Model.Tasks {
		if t.Kind != "jet_classification" {
			continue
		}
		l, err := cfg.TaskLabel(t)
		return t, l, err == nil, err
	}
	return config.Task{}, loader.Label{}, false, nil
}

// scanSplit reads the jets of one split as training reads them (the jet
// selections, the limit) and counts them per class of the first jet
// classification task; with kinematics, it also gives the range of each
// kinematic variable. hash gives each file's hash.
func scanSplit(ctx context.Context, cfg *config.Config, split string, files []string, limit int, kinematics bool, hash func(string) (File, error)) (*SplitData, error) {
	sd := &SplitData{Split: split, Limit: max(limit, 0)}
	for _, f := range files {
		h, err := hash(f)
		if err != nil {
			return nil, err
		}
		sd.Files = append(sd.Files, h)
	}
	if len(files) == 0 {
		return sd, nil
	}
	jetDS := cfg.Data.DatasetOf(cfg.Data.JetDataset)
	lc := loader.Config{Files: files, BatchSize: 4096, Partial: loader.PadPartial, Limit: max(limit, 0), NonFinite: cfg.LoaderNonFinite()}
	sel, err := cfg.LoaderSelections()
	if err != nil {
		return nil, err
	}
	if cuts := sel[jetDS]; len(cuts) > 0 {
		// Constituent selections drop constituents, never jets.
		lc.Selections = map[string][]loader.Cut{jetDS: cuts}
	}
	var vars []kinematicVar
	if kinematics {
		vars, sd.Notes = kinematicVars(cfg, files)
	}
	group := loader.Group{Name: "card", Dataset: jetDS}
	for _, v := range vars {
		group.Variables = append(group.Variables, v.field)
	}
	if len(group.Variables) > 0 {
		lc.Groups = []loader.Group{group}
	}
	task, label, hasTask, err := jetClassTask(cfg)
	if err != nil {
		return nil, err
	}
	if hasTask {
		sd.Task, sd.Classes = task.Name, label.ClassNames
		sd.Counts = make([]int64, len(label.ClassNames))
		lc.Labels = []loader.Label{label}
	}
	if len(lc.Groups) == 0 && len(lc.Labels) == 0 {
		// Nothing to read but the number of jets: read one jets field.
		vs := cfg.Data.JetInputVariables()
		if len(vs) == 0 {
			sd.Notes = append(sd.Notes, "no jet classification task and no jet variables: the jets were not counted")
			return sd, nil
		}
		lc.Groups = []loader.Group{{Name: "card", Dataset: jetDS, Variables: vs[:1]}}
	}
	ds, err := loader.Open(lc)
	if err != nil {
		return nil, fmt.Errorf("deploy: model card: the %s split: %w", split, err)
	}
	defer ds.Close()
	sd.FileJets, sd.Selected, sd.Jets = ds.FileJets(), ds.Available(), ds.Len()
	acc := make([]*rangeAcc, len(vars))
	for i := range acc {
		acc[i] = newRangeAcc(uint64(i) + 1)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches, errc := ds.Batches(ctx, 0, 0)
	for b := range batches {
		if t := b.Inputs["card"]; t != nil && len(vars) > 0 {
			for j := range b.N {
				for i, v := range vars {
					x := float64(t.Data[j*len(vars)+i])
					if v.abs {
						x = math.Abs(x)
					}
					acc[i].add(x)
				}
			}
		}
		if hasTask {
			for _, l := range b.Labels[label.Name][:b.N] {
				if l >= 0 && int(l) < len(sd.Counts) {
					sd.Counts[l]++
				} else {
					sd.Unlabelled++
				}
			}
		}
		b.Release()
	}
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("deploy: model card: the %s split: %w", split, err)
	}
	for i, v := range vars {
		sd.Kinematics = append(sd.Kinematics, acc[i].summary(v))
	}
	return sd, nil
}

// rangeAcc accumulates the minimum and maximum of a variable over every
// jet and a uniform sample of at most KinematicSample values for the
// quantiles (reservoir sampling, Algorithm R, with a fixed seed).
type rangeAcc struct {
	n        int
	min, max float64
	sample   []float64
	rng      *rand.Rand
}

func newRangeAcc(seed uint64) *rangeAcc {
	return &rangeAcc{min: math.Inf(1), max: math.Inf(-1), rng: rand.New(rand.NewPCG(seed, 0x5a17))}
}

func (a *rangeAcc) add(x float64) {
	a.n++
	a.min, a.max = min(a.min, x), max(a.max, x)
	if len(a.sample) < KinematicSample {
		a.sample = append(a.sample, x)
		return
	}
	if k := a.rng.IntN(a.n); k < KinematicSample {
		a.sample[k] = x
	}
}

func (a *rangeAcc) summary(v kinematicVar) Range {
	r := Range{Variable: v.name, Field: v.field, Unit: v.unit, Input: v.input, Abs: v.abs, Sampled: len(a.sample)}
	if a.n == 0 {
		return r
	}
	r.Min, r.Max = a.min, a.max
	s := slices.Clone(a.sample)
	slices.Sort(s)
	for _, q := range quantiles {
		r.Quantiles = append(r.Quantiles, quantile(s, q))
	}
	return r
}

// quantile returns the q-quantile of sorted values with linear
// interpolation between the neighbouring values (numpy's default).
func quantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	return sorted[lo] + (pos-float64(lo))*(sorted[hi]-sorted[lo])
}

// VariableUnit returns the unit of an input variable as the ATLAS
// flavour-tagging files store it, from its name (the files carry no
// units): MeV for momenta, energies and masses, mm for impact parameters
// and decay lengths, rad for angles, 1/MeV for q/p, "1" for
// pseudorapidities, significances, fractions, ΔR and hit counts, and
// "unknown" for a name it does not know.
func VariableUnit(name string) string {
	l := strings.ToLower(strings.TrimSuffix(name, "_btagJes"))
	has := func(subs ...string) bool {
		return slices.ContainsFunc(subs, func(s string) bool { return strings.Contains(l, s) })
	}
	switch {
	case has("significance"), strings.HasPrefix(l, "number"):
		return "1"
	case has("qoverpuncertainty"), l == "qoverp":
		return "1/MeV"
	case has("phiuncertainty", "thetauncertainty"), l == "phi", l == "dphi", l == "theta":
		return "rad"
	case l == "d0", l == "z0", l == "z0sintheta", has("d0relativetobeamspot", "z0relativetobeamspot", "lxy"):
		return "mm"
	case l == "pt", l == "ptrel", l == "energy", l == "mass", strings.HasPrefix(l, "pt_"), strings.HasPrefix(l, "mass_"):
		return "MeV"
	case has("frac"), l == "dr", l == "eta", l == "deta", l == "abs_eta", strings.HasPrefix(l, "eta_"):
		return "1"
	}
	return "unknown"
}

package run

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/loader"
)

// OriginLabel is the loader label name of a vertexing task's origin labels.
func OriginLabel(task string) string { return task + "/origin" }

// TargetLabel is the loader label name of one regression target.
func TargetLabel(task, target string) string { return task + "/" + target }

// DenominatorLabel is the loader label name of one regression target's
// denominator.
func DenominatorLabel(task, target string) string { return task + "/denominator/" + target }

// SampleWeightLabel is the loader label name of a task's sample weights.
func SampleWeightLabel(task string) string { return task + "/sample_weight" }

// ParameterLabel is the loader label name of a parameter's values.
func ParameterLabel(name string) string { return "parameters/" + name }

// EdgeLabelPrefix starts the loader label names of the raw variables the
// edge features are computed from: edge_variables/<Salt's name>.
const EdgeLabelPrefix = "edge_variables/"

// TargetGroup returns the constituent group whose entries a loader float
// target of spec holds (a constituent regression's targets and
// denominators, a constituent task's sample weights, the edge features'
// raw variables), or "" for jet-level targets: what moves with the
// constituents when a batch's valid constituents are packed first.
func TargetGroup(spec model.Spec, label string) string {
	if strings.HasPrefix(label, EdgeLabelPrefix) && spec.Edges != nil {
		return spec.Edges.Input
	}
	task, _, _ := strings.Cut(label, "/")
	for _, t := range spec.Tasks {
		if t.Name == task && t.Kind.PerConstituent() {
			return t.Input
		}
	}
	return ""
}

// LoaderConfig returns the loader configuration of one split (files) of a
// training configuration: the jet dataset (its variables and the global
// ones) and every init net's dataset as input groups, the selections, and
// the labels every task reads, class labels mapped to the task's classes
// as the configuration says (config.TaskLabel). The configuration must be
// valid (config.Validate).
func LoaderConfig(c *config.Config, files []string, norm loader.NormDict, shuffle bool, limit int) loader.Config {
	d := c.Data
	lc := loader.Config{
		Files:         c.ResolveAll(files),
		Weight:        d.SampleWeight,
		WeightDataset: d.DatasetOf(d.JetDataset),
		BatchSize:     d.BatchSize,
		Shuffle:       shuffle,
		Seed:          c.Training.Seed,
		Partial:       loader.PadPartial,
		Norm:          norm,
		Workers:       d.NumWorkers,
		Prefetch:      d.Prefetch,
	}
	lc.Selections, _ = c.LoaderSelections()
	if limit > 0 {
		lc.Limit = limit
	}
	lc.NonFinite = c.LoaderNonFinite()
	lc.Groups = c.LoaderGroups()
	for _, name := range d.Variables[config.ParameterVariables] {
		// Parameters are read raw; a NaN is a jet without one (background).
		lc.Labels = append(lc.Labels, loader.Label{Name: ParameterLabel(name), Dataset: d.DatasetOf(d.JetDataset), Field: name, Kind: loader.FloatLabel, KeepNaN: true})
	}
	if e := c.Edges(); e != nil {
		// The edge features are computed from raw variables: read them as
		// targets, which are not normalised.
		for _, v := range e.Needs() {
			lc.Labels = append(lc.Labels, loader.Label{Name: EdgeLabelPrefix + v, Dataset: d.DatasetOf(e.Input), Field: e.Variable(v), Kind: loader.FloatLabel})
		}
	}
	for _, t := range c.Model.Tasks {
		switch t.Kind {
		case "jet_classification", "constituent_classification":
			l, _ := c.TaskLabel(t)
			lc.Labels = append(lc.Labels, l)
		case "vertexing":
			lc.Labels = append(lc.Labels, loader.Label{Name: t.Name, Dataset: d.DatasetOf(t.Input), Field: t.Label, Kind: loader.IndexLabel})
			if t.OriginLabel != "" {
				lc.Labels = append(lc.Labels, loader.Label{Name: OriginLabel(t.Name), Dataset: d.DatasetOf(t.Input), Field: t.OriginLabel, Kind: loader.ClassLabel})
			}
		case "regression", "gaussian_regression":
			// A NaN target is a missing one, which the loss leaves out.
			in := d.JetDataset
			if t.Input != "" {
				in = t.Input
			}
			ds := d.DatasetOf(in)
			for k, target := range t.Targets {
				lc.Labels = append(lc.Labels, c.TargetLabel(TargetLabel(t.Name, target), in, target))
				if len(t.TargetDenominators) > 0 {
					lc.Labels = append(lc.Labels, loader.Label{Name: DenominatorLabel(t.Name, target), Dataset: ds, Field: t.TargetDenominators[k], Kind: loader.FloatLabel})
				}
			}
		}
		if t.SampleWeight != "" {
			ds := d.DatasetOf(d.JetDataset)
			if t.Input != "" {
				ds = d.DatasetOf(t.Input)
			}
			lc.Labels = append(lc.Labels, loader.Label{Name: SampleWeightLabel(t.Name), Dataset: ds, Field: t.SampleWeight, Kind: loader.FloatLabel})
		}
	}
	lc.Labels = append(lc.Labels, objectLabels(c)...)
	return lc
}

// labelTask returns the task a loader label belongs to.
func labelTask(name string) string {
	task, _, _ := strings.Cut(name, "/")
	return task
}

// WithoutLabels drops the labels of the named tasks from a loader
// configuration.
func WithoutLabels(lc loader.Config, tasks map[string]bool) loader.Config {
	if len(tasks) == 0 {
		return lc
	}
	var keep []loader.Label
	for _, l := range lc.Labels {
		// Denominators are input variables, which scale the predictions
		// back whether or not the files have the targets.
		if !tasks[labelTask(l.Name)] || strings.Contains(l.Name, "/denominator/") || strings.HasPrefix(l.Name, EdgeLabelPrefix) {
			keep = append(keep, l)
		}
	}
	lc.Labels = keep
	return lc
}

// Feeder copies loader batches into a graph binding.
type Feeder struct {
	// Spec is the model whose graph inputs are filled.
	Spec model.Spec
	// JetDataset is the loader group of the jet inputs
	// (data.jet_dataset).
	JetDataset string
	// Labels fills the jet weights and the tasks' labels too, for graphs
	// with losses.
	Labels bool
	// Fit feeds the parameters as Salt's fit stage does: a jet whose value
	// is none of a parameter's training values (a background jet) gets one
	// of them, drawn from Seed, Epoch and the jet's row, so that a run is
	// reproducible and resumable. Otherwise (evaluation) every jet gets
	// the parameter's test value.
	Fit   bool
	Seed  uint64
	Epoch int
}

// fillParameters writes each jet's parameter values (see Feeder.Fit).
func (f *Feeder) fillParameters(bind Tensors, b *loader.Batch) error {
	ps := f.Spec.Parameters
	dst, err := bind.Float32(model.ParametersInput)
	if err != nil {
		return err
	}
	np := len(ps)
	for j := range len(dst) / np {
		row := -1
		if j < len(b.Rows) {
			row = b.Rows[j]
		}
		var r *rand.Rand
		for k, p := range ps {
			if !f.Fit {
				dst[j*np+k] = float32(p.Test)
				continue
			}
			var v float32 = float32(math.NaN())
			if src := b.Targets[ParameterLabel(p.Name)]; j < len(src) {
				v = src[j]
			}
			if slices.ContainsFunc(p.Train, func(x float64) bool { return float32(x) == v }) {
				dst[j*np+k] = v
				continue
			}
			if r == nil {
				r = rand.New(rand.NewPCG(f.Seed^0x70617261, uint64(f.Epoch)<<32^uint64(int64(row))))
			}
			dst[j*np+k] = float32(p.Train[draw(r, p.Prob, len(p.Train))])
		}
	}
	return nil
}

// draw returns an index below n drawn with the probabilities prob (nil:
// equal).
func draw(r *rand.Rand, prob []float64, n int) int {
	if prob == nil {
		return r.IntN(n)
	}
	u := r.Float64()
	for i, p := range prob {
		if u < p {
			return i
		}
		u -= p
	}
	return n - 1
}

// Fill copies batch b into the inputs of binding bind: the jet and
// constituent inputs and valid masks, and for graphs with losses the jet
// weights and the labels.
func (f *Feeder) Fill(bind Tensors, b *loader.Batch) error {
	copyInto := func(name string, src []float32) error {
		dst, err := bind.Float32(name)
		if err != nil {
			return err
		}
		if len(dst) != len(src) {
			return fmt.Errorf("run: input %s: batch has %d values, graph wants %d", name, len(src), len(dst))
		}
		copy(dst, src)
		return nil
	}
	jets, ok := b.Inputs[f.JetDataset]
	if !ok {
		return fmt.Errorf("run: batch has no %q input", f.JetDataset)
	}
	if err := copyInto(model.JetsInput, jets.Data); err != nil {
		return err
	}
	if len(f.Spec.Parameters) > 0 {
		if err := f.fillParameters(bind, b); err != nil {
			return err
		}
	}
	for _, in := range f.Spec.Inputs {
		t, ok := b.Inputs[in.Name]
		if !ok {
			return fmt.Errorf("run: batch has no %q input", in.Name)
		}
		if err := copyInto(in.Name, t.Data); err != nil {
			return err
		}
		valid, err := bind.Bool(model.ValidInput(in.Name))
		if err != nil {
			return err
		}
		copy(valid, t.Valid)
	}
	if !f.Labels {
		return nil
	}
	if err := copyInto(model.JetWeightInput, b.Weights); err != nil {
		return err
	}
	// interleave writes the per-target columns src(k) ([entries]) into dst
	// [entries, n]; a missing column is filled with none.
	interleave := func(dst []float32, n int, src func(k int) ([]float32, bool), none float32) {
		for k := 0; k < n; k++ {
			col, ok := src(k)
			for e := range len(dst) / n {
				if ok {
					dst[e*n+k] = col[e]
				} else {
					dst[e*n+k] = none
				}
			}
		}
	}
	if e := f.Spec.Edges; e != nil {
		dst, err := bind.Float32(model.EdgeVariablesInput(e.Input))
		if err != nil {
			return err
		}
		needs := e.Needs()
		if len(needs) == 0 { // the self-loop flag alone reads no variable
			clear(dst)
		} else {
			interleave(dst, len(needs), func(k int) ([]float32, bool) {
				src, ok := b.Targets[EdgeLabelPrefix+needs[k]]
				return src, ok
			}, 0)
		}
	}
	for _, task := range f.Spec.Tasks {
		if task.SampleWeight {
			dst, err := bind.Float32(model.SampleWeightInput(task.Name))
			if err != nil {
				return err
			}
			if src, ok := b.Targets[SampleWeightLabel(task.Name)]; ok {
				copy(dst, src)
			} else {
				for i := range dst {
					dst[i] = 1
				}
			}
		}
		switch {
		case task.Kind.Regression():
			dst, err := bind.Float32(model.LabelInput(task.Name))
			if err != nil {
				return err
			}
			n := len(task.Targets)
			// A file without the targets: predictions only.
			interleave(dst, n, func(k int) ([]float32, bool) {
				src, ok := b.Targets[TargetLabel(task.Name, task.Targets[k])]
				return src, ok
			}, 0)
			if task.HasDenominators() {
				den, err := bind.Float32(model.DenominatorInput(task.Name))
				if err != nil {
					return err
				}
				interleave(den, n, func(k int) ([]float32, bool) {
					src, ok := b.Targets[DenominatorLabel(task.Name, task.Targets[k])]
					return src, ok
				}, 1)
			}
		default:
			dst, err := bind.Int64(model.LabelInput(task.Name))
			if err != nil {
				return err
			}
			copyLabels(dst, b.Labels[task.Name])
			if task.Kind == model.Vertexing && task.OriginWeighting {
				o, err := bind.Int64(model.OriginInput(task.Name))
				if err != nil {
					return err
				}
				copyLabels(o, b.Labels[OriginLabel(task.Name)])
			}
		}
	}
	return nil
}

// copyLabels copies labels into a graph input, or fills it with -1 (no
// label) when the batch has none (a file without truth labels).
func copyLabels(dst, src []int64) {
	if src == nil {
		for i := range dst {
			dst[i] = -1
		}
		return
	}
	copy(dst, src)
}

package train

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

// originLabel is the loader label name of a vertexing task's origin labels.
func originLabel(task string) string { return task + "/origin" }

// targetLabel is the loader label name of one regression target.
func targetLabel(task, target string) string { return task + "/" + target }

// denominatorLabel is the loader label name of one regression target's
// denominator.
func denominatorLabel(task, target string) string { return task + "/denominator/" + target }

// sampleWeightLabel is the loader label name of a task's sample weights.
func sampleWeightLabel(task string) string { return task + "/sample_weight" }

// parameterLabel is the loader label name of a parameter's values.
func parameterLabel(name string) string { return "parameters/" + name }

// edgeLabelPrefix starts the loader label names of the raw variables the
// edge features are computed from: edge_variables/<Salt's name>.
const edgeLabelPrefix = "edge_variables/"

// TargetGroup returns the constituent group whose entries a loader float
// target of spec holds (a constituent regression's targets and
// denominators, a constituent task's sample weights, the edge features'
// raw variables), or "" for jet-level targets: what moves with the
// constituents when a batch's valid constituents are packed first.
func TargetGroup(spec model.Spec, label string) string {
	if strings.HasPrefix(label, edgeLabelPrefix) && spec.Edges != nil {
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
	if d.NonFinite == "zero" {
		lc.NonFinite = loader.ZeroNonFinite
	}
	lc.Groups = append(lc.Groups, loader.Group{Name: d.JetDataset, Dataset: d.DatasetOf(d.JetDataset), Variables: d.JetInputVariables()})
	for _, n := range c.ConstituentNets() {
		lc.Groups = append(lc.Groups, loader.Group{Name: n.Input, Dataset: d.DatasetOf(n.Input), Variables: d.Variables[n.Input], MaxLen: n.MaxLen})
	}
	for _, name := range d.Variables[config.ParameterVariables] {
		// Parameters are read raw; a NaN is a jet without one (background).
		lc.Labels = append(lc.Labels, loader.Label{Name: parameterLabel(name), Dataset: d.DatasetOf(d.JetDataset), Field: name, Kind: loader.FloatLabel, KeepNaN: true})
	}
	if e := c.Edges(); e != nil {
		// The edge features are computed from raw variables: read them as
		// targets, which are not normalised.
		for _, v := range e.Needs() {
			lc.Labels = append(lc.Labels, loader.Label{Name: edgeLabelPrefix + v, Dataset: d.DatasetOf(e.Input), Field: e.Variable(v), Kind: loader.FloatLabel})
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
				lc.Labels = append(lc.Labels, loader.Label{Name: originLabel(t.Name), Dataset: d.DatasetOf(t.Input), Field: t.OriginLabel, Kind: loader.ClassLabel})
			}
		case "regression", "gaussian_regression":
			// A NaN target is a missing one, which the loss leaves out.
			in := d.JetDataset
			if t.Input != "" {
				in = t.Input
			}
			ds := d.DatasetOf(in)
			for k, target := range t.Targets {
				lc.Labels = append(lc.Labels, c.TargetLabel(targetLabel(t.Name, target), in, target))
				if len(t.TargetDenominators) > 0 {
					lc.Labels = append(lc.Labels, loader.Label{Name: denominatorLabel(t.Name, target), Dataset: ds, Field: t.TargetDenominators[k], Kind: loader.FloatLabel})
				}
			}
		}
		if t.SampleWeight != "" {
			ds := d.DatasetOf(d.JetDataset)
			if t.Input != "" {
				ds = d.DatasetOf(t.Input)
			}
			lc.Labels = append(lc.Labels, loader.Label{Name: sampleWeightLabel(t.Name), Dataset: ds, Field: t.SampleWeight, Kind: loader.FloatLabel})
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

// withoutLabels drops the labels of the named tasks from a loader
// configuration.
func withoutLabels(lc loader.Config, tasks map[string]bool) loader.Config {
	if len(tasks) == 0 {
		return lc
	}
	var keep []loader.Label
	for _, l := range lc.Labels {
		// Denominators are input variables, which scale the predictions
		// back whether or not the files have the targets.
		if !tasks[labelTask(l.Name)] || strings.Contains(l.Name, "/denominator/") || strings.HasPrefix(l.Name, edgeLabelPrefix) {
			keep = append(keep, l)
		}
	}
	lc.Labels = keep
	return lc
}

// Prepare returns the configuration a run uses: data paths absolute,
// patterns expanded into the files they match, and max_len = 0 resolved
// to the longest constituent dimension among the training files.
func Prepare(cfg *config.Config) (*config.Config, error) {
	c, err := cfg.Absolute()
	if err != nil {
		return nil, err
	}
	nets := append([]config.InitNet(nil), c.Model.InitNets...)
	for i := range nets {
		if nets[i].MaxLen != 0 || nets[i].Input == c.Data.JetDataset {
			continue
		}
		longest := 0
		for _, f := range c.Data.Train {
			t, err := loader.OpenFieldTable(f, nets[i].Input)
			if err != nil {
				return nil, fmt.Errorf("train: model.init_nets.max_len = 0 for %s: %w", nets[i].Input, err)
			}
			if dims := t.Dims(); len(dims) == 2 {
				longest = max(longest, dims[1])
			}
			t.Close()
		}
		if longest == 0 {
			return nil, fmt.Errorf("train: model.init_nets.max_len = 0 for %s: the training files' %q datasets have no second dimension to take the length from; give max_len", nets[i].Input, nets[i].Input)
		}
		nets[i].MaxLen = longest
	}
	c.Model.InitNets = nets
	return c, nil
}

// dataNotes lists what a training configuration asks of a split that its
// files do not have: more jets than they hold (num_train, num_val), or
// more constituent slots than they have (max_len, padded).
func dataNotes(c *config.Config, split, key string, ds *loader.Dataset, limit int) []string {
	var notes []string
	if limit > 0 && limit > ds.Available() {
		what := fmt.Sprintf("%d jets", ds.Available())
		if ds.Available() != ds.FileJets() {
			what = fmt.Sprintf("%d jets passing the selections (of %d)", ds.Available(), ds.FileJets())
		}
		notes = append(notes, fmt.Sprintf("data.%s = %d, but the %s files hold %s: using all %d", key, limit, split, what, ds.Len()))
	}
	for _, n := range c.ConstituentNets() {
		file, batch := ds.FileLength(n.Input)
		if file > 0 && batch > file {
			notes = append(notes, fmt.Sprintf("model.init_nets.max_len = %d for %s, but the %s files have %d slots per jet: the last %d slots are always padding (max_len = 0 takes the files' length)",
				batch, n.Input, split, file, batch-file))
		}
	}
	return notes
}

// selectionNotes describes what the selections kept: of the jets, or
// (constituents) of the constituents read so far.
func selectionNotes(ds *loader.Dataset, jetDataset string, constituents bool) []string {
	var notes []string
	for _, s := range ds.Selections() {
		what := "valid constituents"
		if s.Dataset == jetDataset {
			what = "jets"
		}
		if s.Seen == 0 || (s.Dataset != jetDataset) != constituents {
			continue
		}
		notes = append(notes, fmt.Sprintf("selections on %s (%s): kept %d of %d %s (%.1f %%)",
			s.Dataset, strings.Join(s.Cuts, ", "), s.Kept, s.Seen, what, 100*float64(s.Kept)/float64(s.Seen)))
	}
	return notes
}

// feeder copies loader batches into a graph binding.
type feeder struct {
	spec       model.Spec
	jetDataset string
	labels     bool
	// fit feeds the parameters as Salt's fit stage does: a jet whose value
	// is none of a parameter's training values (a background jet) gets one
	// of them, drawn from seed, epoch and the jet's row, so that a run is
	// reproducible and resumable. Otherwise (evaluation) every jet gets
	// the parameter's test value.
	fit   bool
	seed  uint64
	epoch int
}

// fillParameters writes each jet's parameter values (see feeder.fit).
func (f *feeder) fillParameters(bind tensors, b *loader.Batch) error {
	ps := f.spec.Parameters
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
			if !f.fit {
				dst[j*np+k] = float32(p.Test)
				continue
			}
			var v float32 = float32(math.NaN())
			if src := b.Targets[parameterLabel(p.Name)]; j < len(src) {
				v = src[j]
			}
			if slices.ContainsFunc(p.Train, func(x float64) bool { return float32(x) == v }) {
				dst[j*np+k] = v
				continue
			}
			if r == nil {
				r = rand.New(rand.NewPCG(f.seed^0x70617261, uint64(f.epoch)<<32^uint64(int64(row))))
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

// fill copies batch b into the inputs of binding bind: the jet and
// constituent inputs and valid masks, and for graphs with losses the jet
// weights and the labels.
func (f *feeder) fill(bind tensors, b *loader.Batch) error {
	copyInto := func(name string, src []float32) error {
		dst, err := bind.Float32(name)
		if err != nil {
			return err
		}
		if len(dst) != len(src) {
			return fmt.Errorf("train: input %s: batch has %d values, graph wants %d", name, len(src), len(dst))
		}
		copy(dst, src)
		return nil
	}
	jets, ok := b.Inputs[f.jetDataset]
	if !ok {
		return fmt.Errorf("train: batch has no %q input", f.jetDataset)
	}
	if err := copyInto(model.JetsInput, jets.Data); err != nil {
		return err
	}
	if len(f.spec.Parameters) > 0 {
		if err := f.fillParameters(bind, b); err != nil {
			return err
		}
	}
	for _, in := range f.spec.Inputs {
		t, ok := b.Inputs[in.Name]
		if !ok {
			return fmt.Errorf("train: batch has no %q input", in.Name)
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
	if !f.labels {
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
	if e := f.spec.Edges; e != nil {
		dst, err := bind.Float32(model.EdgeVariablesInput(e.Input))
		if err != nil {
			return err
		}
		needs := e.Needs()
		if len(needs) == 0 { // the self-loop flag alone reads no variable
			clear(dst)
		} else {
			interleave(dst, len(needs), func(k int) ([]float32, bool) {
				src, ok := b.Targets[edgeLabelPrefix+needs[k]]
				return src, ok
			}, 0)
		}
	}
	for _, task := range f.spec.Tasks {
		if task.SampleWeight {
			dst, err := bind.Float32(model.SampleWeightInput(task.Name))
			if err != nil {
				return err
			}
			if src, ok := b.Targets[sampleWeightLabel(task.Name)]; ok {
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
				src, ok := b.Targets[targetLabel(task.Name, task.Targets[k])]
				return src, ok
			}, 0)
			if task.HasDenominators() {
				den, err := bind.Float32(model.DenominatorInput(task.Name))
				if err != nil {
					return err
				}
				interleave(den, n, func(k int) ([]float32, bool) {
					src, ok := b.Targets[denominatorLabel(task.Name, task.Targets[k])]
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
				copyLabels(o, b.Labels[originLabel(task.Name)])
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

package explain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"github.com/salt-ort/salt-ort/checkpoint"
	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/loader"
	"github.com/salt-ort/salt-ort/run"
	"github.com/salt-ort/salt-ort/runtime"
)

// Defaults of Options, Salt's IntegratedGradientWriter's where it has one.
const (
	DefaultSteps     = 50   // n_steps
	DefaultBaselines = 5    // n_baselines
	DefaultMinConst  = 5    // min_allowed_track_sizes
	DefaultMaxConst  = 15   // max_allowed_track_sizes
	DefaultNumJets   = 1000 // jets read from the test file
	// DefaultTolerance bounds the completeness error per jet and output.
	// Gauss–Legendre converges slowly across the kinks of ReLU networks:
	// a tiny GN2 trained on gen-data showed |Δ| up to 0.02 at 50 steps.
	DefaultTolerance    = 0.05
	DefaultPermutations = 1 // shuffles per variable
)

// Options configure Run.
type Options struct {
	RunDir     string
	Checkpoint string // "best" (""), "last" or a checkpoint file
	// File is the test file; "" takes the configuration's first.
	File string
	// OutDir receives the outputs; "" is RUN_DIR/explain.
	OutDir string
	// NumJets is how many jets are read (after the selections); the
	// attributions are computed for those with an allowed number of
	// constituents, the baselines chosen among all of them.
	NumJets int
	// Steps is the number of Gauss–Legendre points of the path integral,
	// Baselines the number of sampled baselines each jet is averaged over.
	Steps, Baselines int
	// MinConst and MaxConst bound the number of valid constituents (of
	// the model's first constituent group) of the jets attributed.
	MinConst, MaxConst int
	// Tolerance is the largest |Σ attributions − (F(x) − F(baseline))|
	// the completeness check accepts per jet and output, relative to
	// |F(x) − F(baseline)| where that exceeds 1.
	Tolerance float64
	// FC is the charm fraction of D_b for permutation importance.
	FC      float64
	Seed    uint64
	NoPlots bool
	Runtime *runtime.Runtime
	Threads int
	Log     io.Writer
}

func (o *Options) defaults() {
	if o.Steps == 0 {
		o.Steps = DefaultSteps
	}
	if o.Baselines == 0 {
		o.Baselines = DefaultBaselines
	}
	if o.MinConst == 0 && o.MaxConst == 0 {
		o.MinConst, o.MaxConst = DefaultMinConst, DefaultMaxConst
	}
	if o.NumJets == 0 {
		o.NumJets = DefaultNumJets
	}
	if o.Tolerance == 0 {
		o.Tolerance = DefaultTolerance
	}
	if o.FC == 0 {
		o.FC = run.DefaultFC
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Validate reports the first option out of range, naming its flag; zero
// values stand for the defaults.
func (o Options) Validate() error {
	o.defaults()
	return o.check()
}

func (o *Options) check() error {
	switch {
	case o.Steps < 1:
		return fmt.Errorf("explain: --steps %d: give at least 1", o.Steps)
	case o.Baselines < 1:
		return fmt.Errorf("explain: --baselines %d: give at least 1", o.Baselines)
	case o.MinConst < 0 || o.MaxConst < o.MinConst:
		return fmt.Errorf("explain: --min-constituents %d, --max-constituents %d: give 0 ≤ min ≤ max", o.MinConst, o.MaxConst)
	case o.NumJets < 0:
		return fmt.Errorf("explain: --num-jets %d: give a positive number", o.NumJets)
	case !(o.Tolerance > 0):
		return fmt.Errorf("explain: --tolerance %v: give a positive number", o.Tolerance)
	case !(o.FC >= 0 && o.FC <= 1):
		return fmt.Errorf("explain: --fc %v: the charm fraction must lie in [0, 1]", o.FC)
	}
	return nil
}

// DefaultFC is the charm fraction of D_b in permutation importance, as
// eval's.
func DefaultFC() float64 { return run.DefaultFC }

// Group describes one attributed model input: the jet variables or a
// constituent group.
type Group struct {
	Name   string   // the dataset: jets, tracks, ...
	Vars   []string // its input variables
	MaxLen int      // constituents per jet; 0 for the jet variables
}

// Run computes the attributions of a trained run on a test file and writes
// the HDF5 file, the summary JSON and the plots.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.defaults()
	if err := o.check(); err != nil {
		return nil, err
	}
	info, err := run.Load(o.RunDir)
	if err != nil {
		return nil, err
	}
	if err := supported(info); err != nil {
		return nil, err
	}
	cfg := info.Config
	file := o.File
	if file == "" {
		if len(cfg.Data.Test) == 0 {
			return nil, fmt.Errorf("explain: %s: the configuration lists no test files (data.test_file): give --test FILE", o.RunDir)
		}
		file = cfg.ResolveAll(cfg.Data.Test[:1])[0]
	} else if file, err = filepath.Abs(file); err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	ckpt, err := run.ResolveCheckpoint(o.RunDir, o.Checkpoint)
	if err != nil {
		return nil, err
	}
	cf, err := checkpoint.Read(ckpt)
	if err != nil {
		return nil, err
	}
	batch := max(o.Steps*o.Baselines, 8)
	net, groups, err := RunNet(&info.Spec, batch)
	if err != nil {
		return nil, err
	}
	a, err := newAttributor(o.Runtime, net, o.Threads, func(layout []graph.ParamSlot) ([]float32, error) {
		return run.ParamsFromCheckpoint(ckpt, cf, layout)
	})
	if err != nil {
		return nil, err
	}
	defer a.Close()
	js, labels, err := readJets(ctx, info, file, o.NumJets)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Log, "explain: %d jets read from %s\n", js.N, file)
	cls := firstClassification(info.Spec)
	res, err := attribute(a, js, groups, labels, cls, o)
	if err != nil {
		return nil, err
	}
	res.File, res.Checkpoint = file, ckpt
	pr, err := permutation(a, js, groups, labels, cls, o)
	if err != nil {
		return nil, err
	}
	res.BaseAUC, res.Permutation = pr.auc, pr.ranks
	return write(res, o, file)
}

// supported refuses models whose inputs explain cannot vary yet.
func supported(info *run.Info) error {
	s := info.Spec
	var missing []string
	if len(s.Parameters) > 0 {
		missing = append(missing, "parameterised inputs (model.parameters)")
	}
	if s.Edges != nil {
		missing = append(missing, "edge features (model.edge_features)")
	}
	for _, t := range s.Tasks {
		if t.HasDenominators() {
			missing = append(missing, fmt.Sprintf("regression targets scaled by other variables (task %s)", t.Name))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("explain: %s: salt-ort explain does not attribute models with %s yet; explain a model without them",
			filepath.Join(info.Dir, run.ResolvedFile), strings.Join(missing, ", "))
	}
	return nil
}

// RunNet builds the model's inference graph (normalised inputs, batch
// rows) as a Net: the jet variables and every constituent group
// attributed, for each jet classification task its class probabilities and
// for each jet regression task its targets explained. It also returns
// the attributed groups, in the Net's input order.
func RunNet(spec *model.Spec, batch int) (Net, []Group, error) {
	g, err := spec.Infer(model.InferOptions{Batch: batch})
	if err != nil {
		return Net{}, nil, err
	}
	byName := map[string]*graph.Tensor{}
	for _, t := range g.Inputs() {
		byName[t.Name()] = t
	}
	for _, t := range g.Outputs() {
		byName[t.Name()] = t
	}
	net := Net{Graph: g, Inputs: []*graph.Tensor{byName[model.JetsInput]}}
	groups := []Group{{Name: model.JetsInput, Vars: spec.JetVars}}
	for _, in := range spec.Inputs {
		net.Inputs = append(net.Inputs, byName[in.Name])
		groups = append(groups, Group{Name: in.Name, Vars: in.Vars, MaxLen: in.MaxLen})
	}
	for _, t := range spec.Tasks {
		var names []string
		switch t.Kind {
		case model.JetClassification:
			names = t.Classes
			if t.Binary() {
				names = t.Classes[len(t.Classes)-1:]
			}
		case model.JetRegression, model.JetGaussianRegression:
			names = t.Targets
		default:
			continue
		}
		pred := byName[model.PredictionOutput(t.Name)]
		if pred == nil {
			return Net{}, nil, fmt.Errorf("explain: model %s: the inference graph has no output %s", spec.Name, model.PredictionOutput(t.Name))
		}
		for k, n := range names {
			net.Outputs = append(net.Outputs, Output{Name: n, Task: t.Name, Tensor: pred, Column: k})
		}
	}
	if len(net.Outputs) == 0 {
		return Net{}, nil, fmt.Errorf("explain: model %s has no jet classification or jet regression task to explain", spec.Name)
	}
	return net, groups, nil
}

// firstClassification returns the first multi-class jet classification
// task (the flavour tagger), or a zero Task.
func firstClassification(s model.Spec) model.Task {
	for _, t := range s.Tasks {
		if t.Kind == model.JetClassification && !t.Binary() {
			return t
		}
	}
	return model.Task{}
}

// readJets reads the first n jets of file, normalised as the run trains,
// and the class labels of the first jet classification task (-1 unknown).
func readJets(ctx context.Context, info *run.Info, file string, n int) (*Jets, []int, error) {
	cfg := info.Config
	ds, err := loader.Open(run.LoaderConfig(cfg, []string{file}, info.Norm, false, n))
	if err != nil {
		return nil, nil, cfg.DataError(err)
	}
	defer ds.Close()
	js := &Jets{Float: map[string][]float32{}, Bool: map[string][]bool{}}
	cls := firstClassification(info.Spec)
	var labels []int
	ch, errc := ds.Batches(ctx, 0, 0)
	for b := range ch {
		jt := b.Inputs[cfg.Data.JetDataset]
		nj := len(info.Spec.JetVars)
		js.Float[model.JetsInput] = append(js.Float[model.JetsInput], jt.Data[:b.N*nj]...)
		for _, in := range info.Spec.Inputs {
			t := b.Inputs[in.Name]
			per := in.MaxLen * len(in.Vars)
			js.Float[in.Name] = append(js.Float[in.Name], t.Data[:b.N*per]...)
			js.Bool[model.ValidInput(in.Name)] = append(js.Bool[model.ValidInput(in.Name)], t.Valid[:b.N*in.MaxLen]...)
		}
		l := b.Labels[cls.Name]
		for j := 0; j < b.N; j++ {
			if cls.Name == "" || l == nil {
				labels = append(labels, -1)
			} else {
				labels = append(labels, int(l[j]))
			}
		}
		js.N += b.N
		b.Release()
	}
	if err := <-errc; err != nil {
		return nil, nil, cfg.DataError(err)
	}
	if js.N == 0 {
		return nil, nil, fmt.Errorf("explain: %s: no jets pass the configuration's selections", file)
	}
	return js, labels, nil
}

// counts returns each jet's number of valid constituents in group (all
// zero without one).
func counts(js *Jets, groups []Group) []int {
	c := make([]int, js.N)
	if len(groups) < 2 {
		return c
	}
	g := groups[1]
	v := js.Bool[model.ValidInput(g.Name)]
	for j := range c {
		for _, ok := range v[j*g.MaxLen : (j+1)*g.MaxLen] {
			if ok {
				c[j]++
			}
		}
	}
	return c
}

// entropy is the Shannon entropy of the probabilities p.
func entropy(p []float64) float64 {
	h := 0.0
	for _, x := range p {
		if x > 0 {
			h -= x * math.Log(x)
		}
	}
	return h
}

// Baselines are Salt's sampled baselines: for each allowed number of
// constituents, the jets of that size whose flavour prediction is most
// uncertain (highest entropy).
type Baselines struct {
	BySize    map[int][]int // jet indices, most uncertain first
	Entropies map[int]float64
}

// chooseBaselines picks up to n baselines per constituent count in
// [lo, hi] among the jets, by the entropy of the outputs of task cls's
// classes (all outputs when the model has no flavour task).
func chooseBaselines(preds [][]float64, net Net, sizes []int, cls string, lo, hi, n int) Baselines {
	b := Baselines{BySize: map[int][]int{}, Entropies: map[int]float64{}}
	var cols []int
	for k, o := range net.Outputs {
		if o.Task == cls || cls == "" {
			cols = append(cols, k)
		}
	}
	h := func(j int) float64 {
		p := make([]float64, len(cols))
		for i, k := range cols {
			p[i] = preds[j][k]
		}
		return entropy(p)
	}
	for j, s := range sizes {
		if s >= lo && s <= hi {
			b.BySize[s] = append(b.BySize[s], j)
			b.Entropies[j] = h(j)
		}
	}
	for s, js := range b.BySize {
		sort.SliceStable(js, func(x, y int) bool { return b.Entropies[js[x]] > b.Entropies[js[y]] })
		b.BySize[s] = js[:min(n, len(js))]
	}
	return b
}

// errNoJets reports that no jet had an allowed number of constituents.
var errNoJets = errors.New("no jet has an allowed number of constituents")

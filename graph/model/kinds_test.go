package model_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/nn"
	"github.com/salt-ort/salt-ort/graph/optim"
)

// tinyDeepSets is tiny() without an encoder: the init net's outputs are
// pooled as they are (Salt's DIPS).
func tinyDeepSets() model.Spec {
	s := tiny()
	s.Name = "DIPS"
	s.Encoder = nn.EncoderConfig{}
	return s
}

// tinyGN3 is tiny() with the encoder options of Salt's GN3 configurations:
// a gated dense net, RMSNorm in the hybrid arrangement (which normalises
// queries, keys and values), LayerScale and drop-path.
func tinyGN3() model.Spec {
	s := tiny()
	s.Name = "GN3"
	s.Encoder.Layers = 2
	s.Encoder.Gated = true
	s.Encoder.Norm = nn.RMSNormKind
	s.Encoder.NormType = nn.HybridNorm
	s.Encoder.LayerScale = 0.1
	s.Encoder.DropPath = 0.1
	return s
}

// tinyLegacy is tiny() with Salt's legacy TransformerEncoder: two
// layers, a dense block of two hidden layers with dropout, dropout on
// the attention scores.
func tinyLegacy() model.Spec {
	s := tiny()
	s.Name = "GN2legacy"
	s.Encoder = nn.EncoderConfig{Kind: nn.LegacyKind, Layers: 2, Heads: 2, Hidden: []int{12, 10}, Activation: nn.ReLU, OutDim: 6,
		Dropout: 0.1, AttnDropout: 0.1}
	return s
}

// tinyLegacyNoProjection is tinyLegacy() without final_linear and
// without the attention's linear_out (mha_config.out_proj false, as
// Salt's legacy SubjetXbb).
func tinyLegacyNoProjection() model.Spec {
	s := tinyLegacy()
	s.Encoder.OutDim = 0
	s.Encoder.NoOutProj = true
	return s
}

// tinyRegression is tiny() with regressions of every kind and scaling:
// two jet targets scaled by Salt's norm_params and target_denominators, a
// log-scaled one, a Gaussian one with a linear scaler, and a Gaussian
// regression of each track, with sample weights on the track regression
// and the jet classification.
func tinyRegression() model.Spec {
	s := tiny()
	s.Name = "Reg"
	s.Tasks[0].SampleWeight = true
	reg := func(name string, kind model.TaskKind, targets []string, sc ...model.TargetScaling) model.Task {
		t := model.Task{Name: name, Kind: kind, Targets: targets, Scaling: sc, Hidden: []int{6}, Activation: nn.ReLU, Weight: 1}
		if kind.PerConstituent() {
			t.Input = "tracks"
		}
		return t
	}
	s.Tasks = append(s.Tasks[:1],
		reg("pt_regression", model.JetRegression, []string{"truth_pt", "truth_pt_ratio"},
			model.TargetScaling{Op: model.NormScaling, Mean: 2, Std: 1.5}, model.TargetScaling{Op: model.DenominatorScaling, Denominator: "pt_btagJes"}),
		reg("lxy_regression", model.JetRegression, []string{"lxy"}, model.TargetScaling{Op: model.LogScaling, XScale: 2, XOff: 0.5, OpScale: 1.5, OpOff: -0.3}),
		reg("mass_regression", model.JetGaussianRegression, []string{"mass"}, model.TargetScaling{Op: model.LinearScaling, XScale: 0.5, XOff: 1, OpScale: 2, OpOff: -1}),
		reg("track_regression", model.ConstituentGaussianRegression, []string{"track_pt"}, model.TargetScaling{Op: model.NormScaling, Mean: 3, Std: 2}),
	)
	s.Tasks[4].SampleWeight = true
	return s
}

// tinyEdges is tiny() with every edge feature of Salt's edge constructor
// between the tracks, updated by each of two layers; eta and phi are read
// from the tracks' deta and dphi (Salt's indices_map).
func tinyEdges() model.Spec {
	s := tiny()
	s.Name = "GN2dR"
	s.Inputs[0].Vars = []string{"d0", "z0SinTheta", "dphi", "deta", "pt", "energy", "subjetIndex"}
	s.Edges = &model.Edges{Input: "tracks", Features: []string{"dR", "kt", "z", "mass", "isSelfLoop", "subjetIndex"},
		Vars: map[string]string{"eta": "deta", "phi": "dphi"}, Hidden: []int{4}, Activation: nn.SiLU}
	s.Encoder.Layers = 2
	s.Encoder.EdgeDim = 4
	s.Encoder.UpdateEdges = true
	return s
}

// tinyParameterised is tiny() conditioned on a mass hypothesis as Salt's
// parameterised networks are: with feature-wise transformations of the
// init nets' inputs, of every encoder layer's input (with a norm) and of
// the encoder's output (a sigmoid scale); tinyBaldi attaches it to the
// init nets' inputs instead (Baldi et al.).
func tinyParameterised() model.Spec {
	s := tiny()
	s.Name = "GN2X"
	s.Parameters = []model.Parameter{{Name: "mass_hypothesis", Train: []float64{1, 2, 3}, Prob: []float64{0.2, 0.3, 0.5}, Test: 2}}
	dense := func(final nn.Activation) *model.FeaturewiseDense {
		return &model.FeaturewiseDense{Hidden: []int{4}, Activation: nn.ReLU, FinalActivation: final}
	}
	s.Featurewise = []model.Featurewise{
		{Layer: model.FeaturewiseInput, Scale: dense(nn.None), Bias: dense(nn.None)},
		{Layer: model.FeaturewiseEncoder, Scale: dense(nn.None), Bias: dense(nn.None), Norm: true},
		{Layer: model.FeaturewiseGlobal, Scale: dense(nn.Sigmoid)},
	}
	return s
}

func tinyBaldi() model.Spec {
	s := tinyParameterised()
	s.Featurewise = nil
	return s
}

// tinyJetOnly reads the jet variables alone (Salt's DL1): a jet init net
// and a jet classification.
func tinyJetOnly() model.Spec {
	s := tiny()
	s.Name = "DL1"
	s.Inputs = nil
	s.JetVars = []string{"pt_btagJes", "eta_btagJes", "softMuon_pt"}
	s.JetInit = &model.JetInit{Name: "jets", Hidden: []int{8, 8}, Activation: nn.SiLU}
	s.Encoder = nn.EncoderConfig{}
	s.Pooling = model.NoPooling
	s.Tasks = s.Tasks[:1]
	return s
}

// kindBatch fills every input of g for a batch in which each task is
// learnable: the jet class shows in the first jet variable and the first
// constituent variable, a constituent's origin in its second variable and
// its vertex in its third, regression targets are functions of the
// second jet variable. Row b-1 is padding (jet weight 0).
func kindBatch(s model.Spec, g *graph.Graph, b int, r *rand.Rand) map[string][]float64 {
	nj := len(s.JetVars)
	class := make([]int, b)
	jets := make([]float64, b*nj)
	for j := range class {
		class[j] = r.IntN(4)
		for k := 0; k < nj; k++ {
			jets[j*nj+k] = r.NormFloat64()
		}
		jets[j*nj] = float64(class[j]) - 1.5 + 0.3*r.NormFloat64()
	}
	feeds := map[string][]float64{model.JetsInput: jets}
	type seq struct{ origin, vertex []float64 }
	seqs := map[string]seq{}
	for _, grp := range s.Inputs {
		t, nv := grp.MaxLen, len(grp.Vars)
		x, valid := make([]float64, b*t*nv), make([]float64, b*t)
		q := seq{make([]float64, b*t), make([]float64, b*t)}
		for j := 0; j < b; j++ {
			n := 1 + r.IntN(t)
			for i := 0; i < t; i++ {
				q.origin[j*t+i], q.vertex[j*t+i] = -1, -1
				if i >= n {
					continue
				}
				valid[j*t+i] = 1
				q.origin[j*t+i] = float64(r.IntN(8))
				q.vertex[j*t+i] = float64(r.IntN(3) - 1)
				v := x[(j*t+i)*nv : (j*t+i+1)*nv]
				for k := range v {
					v[k] = r.NormFloat64()
				}
				v[0] = float64(class[j]) - 1.5 + 0.3*r.NormFloat64()
				if nv > 1 {
					v[1] = q.origin[j*t+i] + 0.1*r.NormFloat64()
				}
				if nv > 2 {
					v[2] = q.vertex[j*t+i] + 0.1*r.NormFloat64()
				}
			}
		}
		feeds[grp.Name], feeds[model.ValidInput(grp.Name)] = x, valid
		seqs[grp.Name] = q
	}
	weight := make([]float64, b)
	for j := range weight {
		weight[j] = 1
	}
	weight[b-1] = 0
	feeds[model.JetWeightInput] = weight
	var tw []float64
	for _, task := range s.Tasks {
		tw = append(tw, task.Weight)
		switch task.Kind {
		case model.JetClassification:
			l := make([]float64, b)
			for j := range l {
				l[j] = float64(class[j])
			}
			feeds[model.LabelInput(task.Name)] = l
		case model.ConstituentClassification:
			feeds[model.LabelInput(task.Name)] = seqs[task.Input].origin
		case model.Vertexing:
			feeds[model.LabelInput(task.Name)] = seqs[task.Input].vertex
			feeds[model.OriginInput(task.Name)] = seqs[task.Input].origin
		case model.JetRegression, model.JetGaussianRegression:
			// Positive targets, functions of the second jet variable; every
			// fifth jet's are missing (NaN).
			n := len(task.Targets)
			y, den := make([]float64, b*n), make([]float64, b*n)
			for j := 0; j < b; j++ {
				for k := 0; k < n; k++ {
					den[j*n+k] = 1 + 0.1*math.Abs(r.NormFloat64())
					y[j*n+k] = float64(k+1) * math.Exp(0.5*jets[j*nj+1%nj]) * den[j*n+k] * (1 + 0.02*r.NormFloat64())
					if j%5 == 3 {
						y[j*n+k] = math.NaN()
					}
				}
			}
			feeds[model.LabelInput(task.Name)] = y
			if task.HasDenominators() {
				feeds[model.DenominatorInput(task.Name)] = den
			}
		case model.ConstituentRegression, model.ConstituentGaussianRegression:
			n, t, nv := len(task.Targets), s.Inputs[0].MaxLen, len(s.Inputs[0].Vars)
			x, valid := feeds[task.Input], feeds[model.ValidInput(task.Input)]
			y, den := make([]float64, b*t*n), make([]float64, b*t*n)
			for e := 0; e < b*t; e++ {
				for k := 0; k < n; k++ {
					den[e*n+k] = 1
					if valid[e] != 0 {
						y[e*n+k] = float64(k+1)*(2+x[e*nv+nv-1]) + 0.05*r.NormFloat64()
					}
				}
			}
			feeds[model.LabelInput(task.Name)] = y
			if task.HasDenominators() {
				feeds[model.DenominatorInput(task.Name)] = den
			}
		}
		if task.SampleWeight {
			n := b
			if task.Kind.PerConstituent() {
				n *= s.Inputs[0].MaxLen
			}
			w := make([]float64, n)
			for i := range w {
				w[i] = 0.5 + r.Float64()
			}
			feeds[model.SampleWeightInput(task.Name)] = w
		}
	}
	feeds[model.TaskWeightsInput] = tw
	if len(s.Parameters) > 0 {
		// Each jet's class shows in its parameter too.
		p := make([]float64, b*len(s.Parameters))
		for j := range class {
			for k := range s.Parameters {
				p[j*len(s.Parameters)+k] = 1 + float64(class[j]%3)
			}
		}
		feeds[model.ParametersInput] = p
	}
	if e := s.Edges; e != nil {
		// Raw kinematics: eta, phi, pt, energy and subjet index per track.
		t := s.Inputs[0].MaxLen
		needs := e.Needs()
		v := make([]float64, b*t*max(len(needs), 1))
		for i := 0; i < b*t; i++ {
			eta, pt := r.NormFloat64(), 1000*math.Exp(r.NormFloat64())
			for k, name := range needs {
				x := map[string]float64{"eta": eta, "phi": (2*r.Float64() - 1) * math.Pi, "pt": pt,
					"energy": pt * math.Cosh(eta) * 1.01, "subjetIndex": float64(r.IntN(3) - 1)}[name]
				v[i*len(needs)+k] = x
			}
		}
		feeds[model.EdgeVariablesInput(e.Input)] = v
	}
	random := map[string]bool{}
	for _, ri := range g.RandomInputs() {
		random[ri.Tensor.Name()] = true
	}
	for _, in := range g.Inputs() {
		if _, ok := feeds[in.Name()]; !ok && !strings.HasPrefix(in.Name(), "opt/") && !random[in.Name()] {
			switch in.Name() {
			case optim.ParamsInput, optim.LRInput, optim.StepInput, optim.MomentumInput:
			default:
				panic("kindBatch: no value for input " + in.Name())
			}
		}
	}
	return feeds
}

// batchOf makes trainKind's batches: kindBatch unless a test changes it.
var batchOf = kindBatch

// trainKind trains s on batchOf batches with opt and returns each
// task's loss on a fixed validation batch before and after.
func trainKind(t *testing.T, s model.Spec, opt optim.Optimizer, steps int, lr float64) (before, after map[string]float64) {
	t.Helper()
	const batch = 16
	g, layout, err := s.TrainStep(model.TrainOptions{Batch: batch, Step: optim.Step{Optimizer: opt, ClipNorm: 5}, Predictions: true})
	if err != nil {
		t.Fatal(err)
	}
	run := graphtest.Compile(t, g, graph.ModelOptions{})
	params := initialParams(layout.Params, layout.Size, 1)
	state := map[string][]float64{}
	for _, sl := range layout.Slots {
		state[sl] = make([]float64, layout.Size)
	}
	evalG, _, err := s.Eval(batch)
	if err != nil {
		t.Fatal(err)
	}
	eval := graphtest.Compile(t, evalG, graph.ModelOptions{})
	val := batchOf(s, evalG, batch, rand.New(rand.NewPCG(99, 99)))
	evalLoss := func() map[string]float64 {
		feeds := map[string][]float64{optim.ParamsInput: params}
		for k, v := range val {
			feeds[k] = v
		}
		out, err := eval.Run(feeds)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]float64{}
		for _, task := range s.Tasks {
			m[task.Name] = out[model.TaskLossOutput(task.Name)][0]
		}
		return m
	}
	before = evalLoss()
	r := rand.New(rand.NewPCG(2, 2))
	for step := 1; step <= steps; step++ {
		feeds := batchOf(s, g, batch, r)
		for _, ri := range g.RandomInputs() {
			m := make([]float64, ri.Tensor.Shape().Size())
			for i := range m {
				if r.Float64() >= ri.P {
					m[i] = 1 / (1 - ri.P)
				}
			}
			feeds[ri.Tensor.Name()] = m
		}
		feeds[optim.ParamsInput] = params
		feeds[optim.LRInput] = []float64{lr}
		feeds[optim.StepInput] = []float64{float64(step)}
		for sl, v := range state {
			feeds[optim.StateInput(sl)] = v
		}
		out, err := run.Run(feeds)
		if err != nil {
			t.Fatal(err)
		}
		if l := out[model.LossOutput][0]; math.IsNaN(l) || math.IsInf(l, 0) {
			t.Fatalf("step %d: loss %g", step, l)
		}
		params = out[optim.NewParams]
		for sl := range state {
			state[sl] = out[optim.NewStateOutput(sl)]
		}
	}
	return before, evalLoss()
}

// TestModelKindsTrain trains each kind of model on learnable batches and
// checks that every task's validation loss falls clearly.
func TestModelKindsTrain(t *testing.T) {
	for _, c := range []struct {
		name  string
		spec  model.Spec
		steps int
	}{
		{"gn2", tiny(), 600},
		{"gn3 encoder", tinyGN3(), 600},
		// Behind the legacy encoder's final_linear, tiny's 6-wide origin
		// head stayed at its loss's plateau (ln 8) for 2,700 steps in a
		// trial; without the projection it learns in a few hundred. (The projection's step is PyTorch's: see saltimport's
		// TestLegacyEncoderTrainingStep.)
		{"legacy encoder", tinyLegacyNoProjection(), 600},
		{"deepsets", tinyDeepSets(), 600},
		{"jet only", tinyJetOnly(), 600},
		{"regressions", tinyRegression(), 600},
		// Seven track variables and two layers learn the origins more
		// slowly, with edge features or without.
		{"edge features", tinyEdges(), 1500},
		{"parameterised", tinyParameterised(), 1500},
		{"parameters attached", tinyBaldi(), 600},
		// Without final_linear, as the legacy encoder's case.
		{"cross-attention encoder", func() model.Spec { s := tinyCrossAttention(); s.Encoder.OutDim = 0; return s }(), 600},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, after := trainKind(t, c.spec, optim.DefaultAdamW(), c.steps, 3e-3)
			for _, task := range c.spec.Tasks {
				if after[task.Name] >= 0.9*before[task.Name] {
					t.Errorf("task %s: validation loss %g → %g, want a clear decrease", task.Name, before[task.Name], after[task.Name])
				}
			}
		})
	}
}

// TestModelKindsShape checks what the kinds without an encoder are made
// of: their parameters, and that the jet-only model has no constituent
// input.
func TestModelKindsShape(t *testing.T) {
	for _, c := range []struct {
		name       string
		spec       model.Spec
		has, hasNo []string // parameter name prefixes
		inputs     []string
	}{
		{"deepsets", tinyDeepSets(), []string{"init/tracks/0/weight", "pooling/gate/weight", "track_origin/0/weight"}, []string{"encoder/"},
			[]string{model.JetsInput, "tracks", "tracks/valid"}},
		{"jet only", tinyJetOnly(), []string{"init/jets/0/weight", "init/jets/2/weight", "jets_classification/0/weight"}, []string{"encoder/", "pooling/", "init/tracks"},
			[]string{model.JetsInput}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, err := c.spec.Infer(model.InferOptions{Batch: 2})
			if err != nil {
				t.Fatal(err)
			}
			names := map[string]bool{}
			for _, p := range g.Params() {
				names[p.Name()] = true
			}
			for _, want := range c.has {
				if !names[want] {
					t.Errorf("no parameter %s", want)
				}
			}
			for p := range names {
				for _, no := range c.hasNo {
					if strings.HasPrefix(p, no) {
						t.Errorf("parameter %s, want none under %s", p, no)
					}
				}
			}
			var ins []string
			for _, in := range g.Inputs() {
				ins = append(ins, in.Name())
			}
			if strings.Join(ins, ",") != strings.Join(c.inputs, ",") {
				t.Errorf("inputs %v, want %v", ins, c.inputs)
			}
		})
	}
}

// TestModelKindsRefused checks that inconsistent kinds are refused with
// the setting named.
func TestModelKindsRefused(t *testing.T) {
	for _, c := range []struct {
		name   string
		modify func(*model.Spec)
		want   string
	}{
		{"jet init net with constituents", func(s *model.Spec) { s.Inputs = tiny().Inputs }, "one jet init net, no constituent inputs"},
		{"jet init net with attention pooling", func(s *model.Spec) { s.Pooling = model.AttentionPooling }, "needs pooling none"},
		{"jet init net with an encoder", func(s *model.Spec) { s.Encoder = tiny().Encoder }, "no encoder"},
		{"no pooling without a jet init net", func(s *model.Spec) { s.JetInit = nil }, "one jet init net"},
		{"registers without an encoder", func(s *model.Spec) { s.Encoder.Registers = 1 }, "registers 1 and out_dim 0 need an encoder"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := tinyJetOnly()
			if strings.Contains(c.name, "registers") {
				s = tinyDeepSets()
			}
			c.modify(&s)
			if err := s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// TestGeometricLoss checks the GLS total against the geometric mean of
// the task losses the same graph outputs, that training on it lowers
// every task's loss, and that a sharded step refuses it.
func TestGeometricLoss(t *testing.T) {
	s := tiny()
	s.LossMode = model.GeometricMean
	for i := range s.Tasks {
		s.Tasks[i].Weight = 1
	}
	g, layout, err := s.Eval(8)
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	for _, sl := range layout {
		size += sl.Size
	}
	feeds := kindBatch(s, g, 8, rand.New(rand.NewPCG(3, 3)))
	feeds[optim.ParamsInput] = initialParams(layout, size, 4)
	out, err := graphtest.Compile(t, g, graph.ModelOptions{}).Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	prod := 1.0
	for _, task := range s.Tasks {
		prod *= out[model.TaskLossOutput(task.Name)][0]
	}
	want := math.Pow(prod, 1/float64(len(s.Tasks)))
	if got := out[model.LossOutput][0]; math.Abs(got-want) > 1e-6*want {
		t.Errorf("GLS loss %.7g, want (Π L_i)^(1/n) = %.7g", got, want)
	}

	// GLS's gradient weighs each task by 1/L_i: the task learnt best
	// leads, and the others fall more slowly than in a sum.
	before, after := trainKind(t, s, optim.DefaultAdamW(), 600, 3e-3)
	gls := func(l map[string]float64) float64 {
		p := 1.0
		for _, v := range l {
			p *= v
		}
		return math.Pow(p, 1/float64(len(l)))
	}
	if gls(after) >= 0.7*gls(before) {
		t.Errorf("GLS validation loss %g → %g, want a clear decrease", gls(before), gls(after))
	}
	for _, task := range s.Tasks {
		if after[task.Name] >= before[task.Name] {
			t.Errorf("task %s: validation loss %g → %g, want a decrease", task.Name, before[task.Name], after[task.Name])
		}
	}

	for _, build := range []func() error{
		func() error {
			_, _, err := s.GradientStep(model.TrainOptions{Batch: 4, Step: optim.Step{Optimizer: optim.DefaultAdamW()}, Sharded: true})
			return err
		},
		func() error {
			_, _, err := s.TrainStep(model.TrainOptions{Batch: 4, Step: optim.Step{Optimizer: optim.DefaultAdamW()}, Sharded: true})
			return err
		},
	} {
		if err := build(); !errors.Is(err, model.ErrShardedGLS) {
			t.Errorf("sharded GLS step: %v, want ErrShardedGLS", err)
		}
	}
}

// goScale is Salt's target scaling written in Go: the target as the loss
// sees it.
func goScale(sc model.TargetScaling, y, den float64) float64 {
	switch sc.Op {
	case model.NormScaling:
		return (y - sc.Mean) / sc.Std
	case model.DenominatorScaling:
		return y / den
	case model.LogScaling:
		return math.Log(y*sc.XScale+sc.XOff)*sc.OpScale + sc.OpOff
	case model.ExpScaling:
		return math.Exp(y*sc.XScale+sc.XOff)*sc.OpScale + sc.OpOff
	case model.LinearScaling:
		return (y*sc.XScale+sc.XOff)*sc.OpScale + sc.OpOff
	}
	return y
}

// TestRegressionLossValues recomputes every regression loss of
// tinyRegression in Go from the evaluation graph's predictions, which are
// in the targets' units: scaled as Salt scales targets, each entry
// weighted by its jet weight, validity and sample weight, the missing
// (NaN) targets left out. It checks the target scaling and its inverse,
// the variance's scaling, the masks and the weights at once.
func TestRegressionLossValues(t *testing.T) {
	s := tinyRegression()
	const batch = 10
	g, layout, err := s.Eval(batch)
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	for _, sl := range layout {
		size += sl.Size
	}
	feeds := kindBatch(s, g, batch, rand.New(rand.NewPCG(12, 12)))
	feeds[optim.ParamsInput] = initialParams(layout, size, 13)
	out, err := graphtest.Compile(t, g, graph.ModelOptions{}).Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	checked, missing := 0, 0
	for _, task := range s.Tasks {
		if !task.Kind.Regression() {
			continue
		}
		n := len(task.Targets)
		pred, y := out[model.PredictionOutput(task.Name)], feeds[model.LabelInput(task.Name)]
		variance := out[model.VarianceOutput(task.Name)]
		den := feeds[model.DenominatorInput(task.Name)]
		per := 1
		if task.Kind.PerConstituent() {
			per = s.Inputs[0].MaxLen
		}
		var num, sum float64
		for e := 0; e < batch*per; e++ {
			w := feeds[model.JetWeightInput][e/per]
			if task.Kind.PerConstituent() {
				w *= feeds[model.ValidInput(task.Input)][e]
			}
			if task.SampleWeight {
				w *= feeds[model.SampleWeightInput(task.Name)][e]
			}
			for k := 0; k < n; k++ {
				if math.IsNaN(y[e*n+k]) {
					missing++
					continue
				}
				d := 1.0
				if den != nil {
					d = float64(float32(den[e*n+k]))
				}
				sc := task.Scaling[k]
				yt, m := goScale(sc, float64(float32(y[e*n+k])), d), goScale(sc, pred[e*n+k], d)
				l := (yt - m) * (yt - m)
				if task.Kind.Gaussian() {
					// The variance in the scaled space.
					v := variance[e*n+k] * math.Pow(goScale(sc, 1, d)-goScale(sc, 0, d), 2)
					l = 0.5 * (math.Log(v) + l/v)
				}
				num += w * l
				sum += w
			}
		}
		want := num / sum
		got := out[model.TaskLossOutput(task.Name)][0]
		if math.Abs(got-want) > 1e-4*math.Max(1, math.Abs(want)) {
			t.Errorf("task %s: loss %.7g, recomputed %.7g", task.Name, got, want)
		}
		checked++
	}
	if checked != 4 || missing == 0 {
		t.Fatalf("%d regression losses checked, %d missing targets: the test proves less than it claims", checked, missing)
	}
}

// TestRegressionRefused checks that inconsistent target scalings are
// refused with the target named.
func TestRegressionRefused(t *testing.T) {
	for _, c := range []struct {
		name   string
		modify func(*model.Spec)
		want   string
	}{
		{"denominator not an input", func(s *model.Spec) { s.Tasks[1].Scaling[1].Denominator = "mass" }, `denominator "mass" is not an input variable of the jets`},
		{"track denominator not a track variable", func(s *model.Spec) {
			s.Tasks[4].Scaling[0] = model.TargetScaling{Op: model.DenominatorScaling, Denominator: "pt_btagJes"}
		}, "not an input variable of tracks"},
		{"log scaling of a Gaussian regression", func(s *model.Spec) {
			s.Tasks[3].Scaling[0] = model.TargetScaling{Op: model.LogScaling, XScale: 1, OpScale: 1}
		}, "spread cannot be scaled back through log"},
		{"zero x_scale", func(s *model.Spec) { s.Tasks[2].Scaling[0].XScale = 0 }, "x_scale and op_scale must not be 0"},
		{"zero std", func(s *model.Spec) { s.Tasks[1].Scaling[0].Std = 0 }, "positive std"},
		{"scalings for fewer targets", func(s *model.Spec) { s.Tasks[1].Scaling = s.Tasks[1].Scaling[:1] }, "1 target scalings for 2 targets"},
		{"scaling a classification", func(s *model.Spec) { s.Tasks[0].Scaling = []model.TargetScaling{{Op: model.NormScaling, Std: 1}} }, "for regression tasks"},
		{"track regression of no input", func(s *model.Spec) { s.Tasks[4].Input = "hits" }, `input "hits"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := tinyRegression()
			c.modify(&s)
			if err := s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// TestEdgesRefused checks that inconsistent edge features are refused with
// the setting named.
func TestEdgesRefused(t *testing.T) {
	for _, c := range []struct {
		name   string
		modify func(*model.Spec)
		want   string
	}{
		{"without an encoder", func(s *model.Spec) { s.Encoder = nn.EncoderConfig{} }, "need an encoder"},
		{"without an edge width", func(s *model.Spec) { s.Encoder.EdgeDim = 0 }, "need the encoder's edge_embed_dim"},
		{"edge width without edges", func(s *model.Spec) { s.Edges = nil }, "edge_embed_dim 4 and update_edges need edge features"},
		{"group not first", func(s *model.Spec) { s.Edges.Input = "electrons" }, `group "electrons" must be the first`},
		{"unknown feature", func(s *model.Spec) { s.Edges.Features = []string{"deltaR"} }, `unknown edge feature "deltaR"`},
		{"missing variable", func(s *model.Spec) { s.Edges.Vars["eta"] = "eta" }, `need eta, read from "eta", which is not a variable of tracks`},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := tinyEdges()
			c.modify(&s)
			if err := s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// TestConditioningShape checks where the parameters go: attached first to
// each init net's input without an input transformation, and the
// transformations' networks and their widths.
func TestConditioningShape(t *testing.T) {
	for _, c := range []struct {
		name string
		spec model.Spec
		want map[string]graph.Shape
	}{
		{"attached", tinyBaldi(), map[string]graph.Shape{"init/tracks/0/weight": {1 + 2 + 3, 8}}},
		{"featurewise", tinyParameterised(), map[string]graph.Shape{
			"init/tracks/0/weight":                     {2 + 3, 8},
			"featurewise/input/tracks/scale/1/weight":  {4, 2 + 3},
			"encoder/featurewise/layer0/bias/0/weight": {1, 4},
			"encoder/featurewise/layer0/norm/weight":   {8},
			"featurewise/global/scale/1/weight":        {4, 6},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, err := c.spec.Infer(model.InferOptions{Batch: 2})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]graph.Shape{}
			for _, p := range g.Params() {
				got[p.Name()] = p.Shape()
			}
			for name, shape := range c.want {
				if !got[name].Equal(shape) {
					t.Errorf("%s: %v, want %v", name, got[name], shape)
				}
			}
		})
	}
	bad := tinyParameterised()
	bad.Featurewise = append(bad.Featurewise, bad.Featurewise[0])
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "two featurewise transformations of the input layer") {
		t.Errorf("two input transformations: %v", err)
	}
	bad = tinyParameterised()
	bad.Parameters = nil
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "need parameters") {
		t.Errorf("transformations without parameters: %v", err)
	}
}

package optim_test

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/nn"
	"github.com/salt-ort/salt-ort/graph/optim"
)

// adamwReference is torch.optim.AdamW's update written in plain Go.
func adamwReference(o optim.AdamW, p, m, v, grad []float64, lr float64, step int) {
	bc1 := 1 - math.Pow(o.Beta1, float64(step))
	bc2 := 1 - math.Pow(o.Beta2, float64(step))
	for i := range p {
		p[i] *= 1 - lr*o.WeightDecay
		m[i] = o.Beta1*m[i] + (1-o.Beta1)*grad[i]
		v[i] = o.Beta2*v[i] + (1-o.Beta2)*grad[i]*grad[i]
		p[i] -= lr / bc1 * m[i] / (math.Sqrt(v[i])/math.Sqrt(bc2) + o.Eps)
	}
}

// lionReference is lion-pytorch's update written in plain Go.
func lionReference(o optim.Lion, p, m, grad []float64, lr float64) {
	for i := range p {
		p[i] *= 1 - lr*o.WeightDecay
		c := o.Beta1*m[i] + (1-o.Beta1)*grad[i]
		switch {
		case c > 0:
			p[i] -= lr
		case c < 0:
			p[i] += lr
		}
		m[i] = o.Beta2*m[i] + (1-o.Beta2)*grad[i]
	}
}

func sgdReference(o optim.SGD, p, buf, grad []float64, lr float64) {
	for i := range p {
		gi := grad[i] + o.WeightDecay*p[i]
		buf[i] = o.Momentum*buf[i] + gi
		d := buf[i]
		if o.Nesterov {
			d = gi + o.Momentum*buf[i]
		}
		p[i] -= lr * d
	}
}

// updateGraph is a graph applying opt to inputs p, grad and state.
func updateGraph(dtype graph.DType, n int64, opt optim.Optimizer) *graph.Graph {
	g := graph.New("update")
	p := g.Input("p", dtype, graph.Shape{n})
	grad := g.Input("grad", dtype, graph.Shape{n})
	lr := g.Input("lr", dtype, graph.Shape{})
	step := g.Input("step", dtype, graph.Shape{})
	var state []*graph.Tensor
	for _, s := range opt.Slots() {
		state = append(state, g.Input(s, dtype, graph.Shape{n}))
	}
	newP, newState := opt.Update(g, p, grad, state, lr, step)
	g.Output("new_p", newP)
	for i, s := range opt.Slots() {
		g.Output("new_"+s, newState[i])
	}
	return g
}

func TestOptimizersMatchReference(t *testing.T) {
	const n, steps = 50, 20
	cases := []struct {
		name  string
		dtype graph.DType
		opt   optim.Optimizer
		tol   float64
	}{
		{"AdamW/float64", graph.Float64, optim.AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}, 1e-12},
		{"AdamW/float32", graph.Float32, optim.DefaultAdamW(), 1e-6},
		{"SGD/momentum", graph.Float64, optim.SGD{Momentum: 0.9, WeightDecay: 1e-3}, 1e-12},
		{"SGD/nesterov", graph.Float64, optim.SGD{Momentum: 0.8, Nesterov: true}, 1e-12},
		{"SGD/plain", graph.Float64, optim.SGD{}, 1e-12},
		{"Lion/float64", graph.Float64, optim.Lion{Beta1: 0.9, Beta2: 0.99, WeightDecay: 0.01}, 1e-12},
		{"Lion/float32", graph.Float32, optim.DefaultLion(), 1e-6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			run := graphtest.Compile(t, updateGraph(c.dtype, n, c.opt), graph.ModelOptions{})
			r := rand.New(rand.NewPCG(1, 1))
			round := func(v []float64) {
				if c.dtype == graph.Float32 {
					for i := range v {
						v[i] = float64(float32(v[i]))
					}
				}
			}
			p := make([]float64, n)
			for i := range p {
				p[i] = r.NormFloat64()
			}
			round(p)
			ref := append([]float64(nil), p...)
			state := map[string][]float64{}
			refState := map[string][]float64{}
			for _, s := range c.opt.Slots() {
				state[s] = make([]float64, n)
				refState[s] = make([]float64, n)
			}
			for step := 1; step <= steps; step++ {
				lr := 1e-3 * float64(step)
				grad := make([]float64, n)
				for i := range grad {
					grad[i] = r.NormFloat64() * math.Pow(10, float64(r.IntN(5)-2))
				}
				round(grad)
				feeds := map[string][]float64{"p": p, "grad": grad, "lr": {lr}, "step": {float64(step)}}
				for s, v := range state {
					feeds[s] = v
				}
				out, err := run.Run(feeds)
				if err != nil {
					t.Fatal(err)
				}
				switch o := c.opt.(type) {
				case optim.AdamW:
					rlr := lr
					if c.dtype == graph.Float32 {
						rlr = float64(float32(lr))
					}
					adamwReference(o, ref, refState["exp_avg"], refState["exp_avg_sq"], grad, rlr, step)
				case optim.SGD:
					var buf []float64
					if o.Momentum != 0 {
						buf = refState["momentum_buffer"]
					} else {
						buf = make([]float64, n)
					}
					sgdReference(o, ref, buf, grad, lr)
				case optim.Lion:
					rlr := lr
					if c.dtype == graph.Float32 {
						rlr = float64(float32(lr))
					}
					lionReference(o, ref, refState["exp_avg"], grad, rlr)
				}
				p = out["new_p"]
				for s := range state {
					state[s] = out["new_"+s]
				}
				for i := range p {
					if d := math.Abs(p[i] - ref[i]); d > c.tol*math.Max(1, math.Abs(ref[i])) {
						t.Fatalf("step %d: p[%d] = %.17g, reference %.17g", step, i, p[i], ref[i])
					}
				}
				if c.dtype == graph.Float32 {
					// Step by step: the next reference step starts from the
					// graph's float32 state, so rounding does not accumulate.
					copy(ref, p)
					for s := range state {
						copy(refState[s], state[s])
					}
				}
			}
		})
	}
}

func TestClipByGlobalNorm(t *testing.T) {
	for _, c := range []struct {
		grad     []float64
		maxNorm  float64
		wantNorm float64
		scale    float64
	}{
		{[]float64{3, 4}, 1, 5, 1 / (5 + 1e-6)},
		{[]float64{3, 4}, 10, 5, 1},
		{[]float64{3, 4}, 0, 5, 1},
	} {
		g := graph.New("clip")
		x := g.Input("g", graph.Float64, graph.Shape{2})
		clipped, norm := optim.ClipByGlobalNorm(g, x, c.maxNorm)
		g.Output("clipped", clipped)
		g.Output("norm", norm)
		out, err := graphtest.Compile(t, g, graph.ModelOptions{}).Run(map[string][]float64{"g": c.grad})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(out["norm"][0]-c.wantNorm) > 1e-12 {
			t.Errorf("norm = %g, want %g", out["norm"][0], c.wantNorm)
		}
		for i, v := range out["clipped"] {
			if math.Abs(v-c.grad[i]*c.scale) > 1e-12 {
				t.Errorf("max %g: clipped = %v, want %v·%g", c.maxNorm, out["clipped"], c.grad, c.scale)
			}
		}
	}
}

// trainer runs a training step graph built by BuildStep on float32 data.
type trainer struct {
	run    *graphtest.Runner
	layout *optim.Layout
	params []float64
	state  map[string][]float64
	step   int
}

func newTrainer(t *testing.T, g *graph.Graph, loss *graph.Tensor, cfg optim.Step, seed uint64) *trainer {
	layout, err := optim.BuildStep(g, loss, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 3))
	tr := &trainer{run: graphtest.Compile(t, g, graph.ModelOptions{}), layout: layout,
		params: make([]float64, layout.Size), state: map[string][]float64{}}
	for _, s := range layout.Params {
		copy(tr.params[s.Offset:], s.Init.Sample(r, int(s.Size)))
	}
	for _, s := range layout.Slots {
		tr.state[s] = make([]float64, layout.Size)
	}
	return tr
}

func (tr *trainer) Step(t *testing.T, lr float64, batch map[string][]float64) map[string][]float64 {
	tr.step++
	feeds := map[string][]float64{optim.ParamsInput: tr.params, optim.LRInput: {lr}, optim.StepInput: {float64(tr.step)}}
	for k, v := range batch {
		feeds[k] = v
	}
	for s, v := range tr.state {
		feeds[optim.StateInput(s)] = v
	}
	out, err := tr.run.Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	tr.params = out[optim.NewParams]
	for s := range tr.state {
		tr.state[s] = out[optim.NewStateOutput(s)]
	}
	return out
}

func TestToyRegression(t *testing.T) {
	const batch = 64
	g := graph.New("regression")
	x := g.Input("x", graph.Float32, graph.Shape{batch, 2})
	y := g.Input("y", graph.Float32, graph.Shape{batch, 1})
	pred := nn.MLP(g, "net", x, []int{32, 32, 1}, nn.SiLU, false)
	loss := nn.MSE(g, "mse", pred, y, nil)
	g.Output("loss", loss)
	tr := newTrainer(t, g, loss, optim.Step{Optimizer: optim.DefaultAdamW(), ClipNorm: 5}, 1)
	r := rand.New(rand.NewPCG(2, 2))
	sample := func() map[string][]float64 {
		xs, ys := make([]float64, 2*batch), make([]float64, batch)
		for i := 0; i < batch; i++ {
			a, b := 2*r.Float64()-1, 2*r.Float64()-1
			xs[2*i], xs[2*i+1] = a, b
			ys[i] = math.Sin(3*a) + b*b
		}
		return map[string][]float64{"x": xs, "y": ys}
	}
	var last float64
	for i := 0; i < 1500; i++ {
		last = tr.Step(t, 3e-3, sample())["loss"][0]
	}
	// The target's variance is about 0.6; a fit explains almost all of it.
	if last > 0.01 {
		t.Fatalf("regression loss after training = %g, want < 0.01", last)
	}
}

func TestToyClassification(t *testing.T) {
	const batch, classes = 96, 3
	g := graph.New("classification")
	x := g.Input("x", graph.Float32, graph.Shape{batch, 2})
	labels := g.Input("labels", graph.Int64, graph.Shape{batch})
	logits := nn.MLP(g, "net", x, []int{16, classes}, nn.ReLU, false)
	loss := nn.CrossEntropy(g, "ce", logits, labels, nil, nil)
	g.Output("loss", loss)
	tr := newTrainer(t, g, loss, optim.Step{Optimizer: optim.SGD{Momentum: 0.9}}, 4)
	r := rand.New(rand.NewPCG(3, 3))
	centres := [classes][2]float64{{0, 2}, {-1.7, -1}, {1.7, -1}}
	sample := func() map[string][]float64 {
		xs, ls := make([]float64, 2*batch), make([]float64, batch)
		for i := 0; i < batch; i++ {
			c := r.IntN(classes)
			ls[i] = float64(c)
			xs[2*i] = centres[c][0] + 0.5*r.NormFloat64()
			xs[2*i+1] = centres[c][1] + 0.5*r.NormFloat64()
		}
		return map[string][]float64{"x": xs, "labels": ls}
	}
	var sum float64
	for i := 0; i < 400; i++ {
		l := tr.Step(t, 0.05, sample())["loss"][0]
		if i >= 350 {
			sum += l
		}
	}
	// Blobs 2 apart with σ = 0.5 overlap little: the Bayes loss is ~0.01.
	if mean := sum / 50; mean > 0.05 {
		t.Fatalf("classification loss after training = %g, want < 0.05", mean)
	}
}

// TestToyRegressionLion fits TestToyRegression's function with Lion, at
// a third of AdamW's learning rate (Lion's steps are ±lr in every
// coordinate).
func TestToyRegressionLion(t *testing.T) {
	const batch = 64
	g := graph.New("regression")
	x := g.Input("x", graph.Float32, graph.Shape{batch, 2})
	y := g.Input("y", graph.Float32, graph.Shape{batch, 1})
	pred := nn.MLP(g, "net", x, []int{32, 32, 1}, nn.SiLU, false)
	loss := nn.MSE(g, "mse", pred, y, nil)
	g.Output("loss", loss)
	tr := newTrainer(t, g, loss, optim.Step{Optimizer: optim.DefaultLion(), ClipNorm: 5}, 1)
	r := rand.New(rand.NewPCG(2, 2))
	sample := func() map[string][]float64 {
		xs, ys := make([]float64, 2*batch), make([]float64, batch)
		for i := 0; i < batch; i++ {
			a, b := 2*r.Float64()-1, 2*r.Float64()-1
			xs[2*i], xs[2*i+1] = a, b
			ys[i] = math.Sin(3*a) + b*b
		}
		return map[string][]float64{"x": xs, "y": ys}
	}
	var sum float64
	for i := 0; i < 1500; i++ {
		l := tr.Step(t, 1e-3, sample())["loss"][0]
		if i >= 1400 {
			sum += l
		}
	}
	if mean := sum / 100; mean > 0.02 {
		t.Fatalf("regression loss after training with Lion = %g, want < 0.02", mean)
	}
}

func TestStepGraphDeterministic(t *testing.T) {
	build := func() []byte {
		g := graph.New("step")
		x := g.Input("x", graph.Float32, graph.Shape{8, 3})
		labels := g.Input("labels", graph.Int64, graph.Shape{8})
		h, bias := nn.Encoder(g, "encoder", g.Reshape(nn.Linear(g, "init", x, 8, true), 2, 4, 8), nil,
			nn.EncoderConfig{Layers: 1, Heads: 2, DenseRatio: 2, Activation: nn.ReLU, Registers: 1, OutDim: 4})
		pooled := nn.AttentionPool(g, "pool", h, bias)
		loss := nn.CrossEntropy(g, "ce", nn.Linear(g, "head", pooled, 3, true), g.Slice(labels, []int{0}, []int64{0}, []int64{2}), nil, nil)
		g.Output("loss", loss)
		if _, err := optim.BuildStep(g, loss, optim.Step{Optimizer: optim.DefaultAdamW(), ClipNorm: 1}); err != nil {
			t.Fatal(err)
		}
		b, err := g.Marshal(graph.ModelOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if a, b := build(), build(); !bytes.Equal(a, b) {
		t.Fatal("two builds of the same training step differ")
	}
}

// TestMomentumInput checks the optimizers' update with the momentum
// coefficient from a graph input (OneCycleLR's cycle_momentum) against the
// reference updates with that coefficient, changed every step. AdamW's
// bias correction must use the β₁ of the step, as torch.optim.AdamW does.
func TestMomentumInput(t *testing.T) {
	const n, steps = 40, 12
	cases := []struct {
		name string
		opt  optim.MomentumOptimizer
	}{
		{"AdamW", optim.AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}},
		{"SGD", optim.SGD{Momentum: 0.5, WeightDecay: 1e-3}},
		{"SGD/nesterov-without-momentum", optim.SGD{Nesterov: true}},
		{"Lion", optim.Lion{Beta1: 0.9, Beta2: 0.99, WeightDecay: 0.01}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := graph.New("update")
			p := g.Input("p", graph.Float64, graph.Shape{n})
			grad := g.Input("grad", graph.Float64, graph.Shape{n})
			lr := g.Input("lr", graph.Float64, graph.Shape{})
			step := g.Input("step", graph.Float64, graph.Shape{})
			mom := g.Input("momentum", graph.Float64, graph.Shape{})
			var state []*graph.Tensor
			for _, s := range c.opt.SlotsWithMomentum() {
				state = append(state, g.Input(s, graph.Float64, graph.Shape{n}))
			}
			newP, newState := c.opt.UpdateWithMomentum(g, p, grad, state, lr, step, mom)
			g.Output("new_p", newP)
			for i, s := range c.opt.SlotsWithMomentum() {
				g.Output("new_"+s, newState[i])
			}
			run := graphtest.Compile(t, g, graph.ModelOptions{})
			r := rand.New(rand.NewPCG(2, 7))
			params := make([]float64, n)
			for i := range params {
				params[i] = r.NormFloat64()
			}
			ref := append([]float64(nil), params...)
			st, refSt := map[string][]float64{}, map[string][]float64{}
			for _, s := range c.opt.SlotsWithMomentum() {
				st[s], refSt[s] = make([]float64, n), make([]float64, n)
			}
			for k := 1; k <= steps; k++ {
				beta := 0.85 + 0.1*float64(k%5)/4 // a different coefficient each step
				rate := 1e-2 / float64(k)
				gr := make([]float64, n)
				for i := range gr {
					gr[i] = r.NormFloat64()
				}
				feeds := map[string][]float64{"p": params, "grad": gr, "lr": {rate}, "step": {float64(k)}, "momentum": {beta}}
				for s, v := range st {
					feeds[s] = v
				}
				out, err := run.Run(feeds)
				if err != nil {
					t.Fatal(err)
				}
				switch o := c.opt.(type) {
				case optim.AdamW:
					o.Beta1 = beta
					adamwReference(o, ref, refSt["exp_avg"], refSt["exp_avg_sq"], gr, rate, k)
				case optim.SGD:
					o.Momentum = beta
					sgdReference(o, ref, refSt["momentum_buffer"], gr, rate)
				case optim.Lion:
					o.Beta1 = beta
					lionReference(o, ref, refSt["exp_avg"], gr, rate)
				}
				params = out["new_p"]
				for s := range st {
					st[s] = out["new_"+s]
				}
				for i := range params {
					if math.Abs(params[i]-ref[i]) > 1e-12*math.Max(1, math.Abs(ref[i])) {
						t.Fatalf("step %d (momentum %g): p[%d] = %.17g, reference %.17g", k, beta, i, params[i], ref[i])
					}
				}
			}
		})
	}
}

// TestCycleMomentumStep checks that BuildStep with CycleMomentum declares
// the momentum input and keeps SGD's momentum buffer, and refuses an
// optimizer without momentum.
func TestCycleMomentumStep(t *testing.T) {
	for _, c := range []struct {
		name      string
		opt       optim.Optimizer
		wantSlots []string
	}{
		{"AdamW", optim.DefaultAdamW(), []string{"exp_avg", "exp_avg_sq"}},
		{"SGD", optim.SGD{}, []string{"momentum_buffer"}},
		{"Lion", optim.DefaultLion(), []string{"exp_avg"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := graph.New("step")
			x := g.Input("x", graph.Float32, graph.Shape{4, 2})
			loss := g.ReduceMean(nn.Linear(g, "lin", x, 1, true), []int{0, 1}, false)
			layout, err := optim.BuildStep(g, loss, optim.Step{Optimizer: c.opt, CycleMomentum: true})
			if err != nil {
				t.Fatal(err)
			}
			if !layout.CycleMomentum || fmt.Sprint(layout.Slots) != fmt.Sprint(c.wantSlots) {
				t.Fatalf("layout: cycle %v, slots %v; want true, %v", layout.CycleMomentum, layout.Slots, c.wantSlots)
			}
			found := false
			for _, in := range g.Inputs() {
				found = found || in.Name() == optim.MomentumInput
			}
			if !found {
				t.Fatalf("no %q input", optim.MomentumInput)
			}
		})
	}
	g := graph.New("step")
	x := g.Input("x", graph.Float32, graph.Shape{4, 2})
	loss := g.ReduceMean(nn.Linear(g, "lin", x, 1, true), []int{0, 1}, false)
	if _, err := optim.BuildStep(g, loss, optim.Step{Optimizer: noMomentum{}, CycleMomentum: true}); err == nil || !strings.Contains(err.Error(), "no momentum") {
		t.Fatalf("an optimizer without momentum: err = %v", err)
	}
}

// noMomentum is an optimizer with no momentum coefficient.
type noMomentum struct{}

func (noMomentum) Slots() []string { return nil }
func (noMomentum) Update(g *graph.Graph, p, grad *graph.Tensor, _ []*graph.Tensor, lr, _ *graph.Tensor) (*graph.Tensor, []*graph.Tensor) {
	return g.Sub(p, g.Mul(lr, grad)), nil
}

// TestGradNormAccumulation checks the global norm of a float32 gradient
// of a million entries against the exact norm: the sum of squares must be
// accumulated wider than float32 for the float32 norm to be the correctly
// rounded one (a float32 running sum reads ~1e-5 low here).
func TestGradNormAccumulation(t *testing.T) {
	const n = 1 << 20
	r := rand.New(rand.NewPCG(4, 4))
	grad := make([]float64, n)
	var exact float64
	for i := range grad {
		v := float64(float32(1 + 0.01*r.NormFloat64()))
		grad[i] = v
		exact += v * v
	}
	exact = math.Sqrt(exact)
	for _, maxNorm := range []float64{0, 100} {
		g := graph.New("norm")
		x := g.Input("g", graph.Float32, graph.Shape{n})
		clipped, norm := optim.ClipByGlobalNorm(g, x, maxNorm)
		g.Output("norm", norm)
		g.Output("clipped", g.Slice(clipped, []int{0}, []int64{0}, []int64{4}))
		out, err := graphtest.Compile(t, g, graph.ModelOptions{}).Run(map[string][]float64{"g": grad})
		if err != nil {
			t.Fatal(err)
		}
		want := float64(float32(exact))
		if got := out["norm"][0]; got != want {
			t.Errorf("max_norm %g: norm = %.9g, want %.9g (exact %.12g; relative error %.2g)", maxNorm, got, want, exact, (got-exact)/exact)
		}
		scale := 1.0
		if maxNorm > 0 {
			scale = maxNorm / (exact + 1e-6)
		}
		for i, v := range out["clipped"] {
			if w := float64(float32(grad[i] * scale)); math.Abs(v-w) > 1e-7*math.Abs(w) {
				t.Errorf("max_norm %g: clipped[%d] = %.9g, want %.9g", maxNorm, i, v, w)
			}
		}
	}
}

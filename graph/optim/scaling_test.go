package optim_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/nn"
	"github.com/salt-ort/salt-ort/graph/optim"
)

// scalingStep builds a float32 regression step whose targets sit far from
// the untrained predictions (loss ≈ 100), so that a scale of 1e38 overflows
// float32 in the loss itself.
func scalingStep(t *testing.T, lossScaling bool) (*graphtest.Runner, *optim.Layout) {
	const batch = 16
	g := graph.New("scaled")
	x := g.Input("x", graph.Float32, graph.Shape{batch, 2})
	y := g.Input("y", graph.Float32, graph.Shape{batch, 1})
	loss := nn.MSE(g, "mse", nn.MLP(g, "net", x, []int{8, 1}, nn.ReLU, false), y, nil)
	g.Output("loss", loss)
	layout, err := optim.BuildStep(g, loss, optim.Step{Optimizer: optim.DefaultAdamW(), ClipNorm: 1, LossScaling: lossScaling})
	if err != nil {
		t.Fatal(err)
	}
	if layout.LossScaling != lossScaling {
		t.Fatalf("layout.LossScaling = %v, want %v", layout.LossScaling, lossScaling)
	}
	return graphtest.Compile(t, g, graph.ModelOptions{}), layout
}

// TestLossScaling checks that a loss scale that does not overflow gives
// the update of an unscaled step, and that one that does leaves the
// parameters and the optimizer state as they were and says so.
func TestLossScaling(t *testing.T) {
	plain, layout := scalingStep(t, false)
	scaled, _ := scalingStep(t, true)
	r := rand.New(rand.NewPCG(5, 5))
	feeds := map[string][]float64{
		"x": make([]float64, 32), "y": make([]float64, 16),
		optim.ParamsInput: make([]float64, layout.Size), optim.LRInput: {1e-2}, optim.StepInput: {3},
	}
	for i := range feeds["x"] {
		feeds["x"][i] = r.NormFloat64()
	}
	for i := range feeds["y"] {
		feeds["y"][i] = 10 + r.NormFloat64()
	}
	for _, s := range layout.Params {
		copy(feeds[optim.ParamsInput][s.Offset:], s.Init.Sample(r, int(s.Size)))
	}
	for _, s := range layout.Slots {
		v := make([]float64, layout.Size)
		for i := range v {
			v[i] = 1e-3 * r.Float64() // non-zero state, so that "unchanged" means something
		}
		feeds[optim.StateInput(s)] = v
	}
	want, err := plain.Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	outputs := []string{optim.NewParams, optim.GradNormOutput}
	for _, s := range layout.Slots {
		outputs = append(outputs, optim.NewStateOutput(s))
	}
	cases := []struct {
		name   string
		scale  float64
		finite bool
	}{
		{"one", 1, true},
		{"power of two", 1024, true},
		{"GradScaler's initial scale", 65536, true},
		{"not a power of two", 1000, true},
		{"overflow", 1e38, false},
		{"infinite", math.Inf(1), false},
		{"NaN", math.NaN(), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			feeds[optim.LossScaleInput] = []float64{c.scale}
			out, err := scaled.Run(feeds)
			if err != nil {
				t.Fatal(err)
			}
			wantFinite := 0.0
			if c.finite {
				wantFinite = 1
			}
			if got := out[optim.GradFiniteOutput][0]; got != wantFinite {
				t.Fatalf("grad_finite = %g, want %g", got, wantFinite)
			}
			if !c.finite {
				check := map[string]string{optim.NewParams: optim.ParamsInput}
				for _, s := range layout.Slots {
					check[optim.NewStateOutput(s)] = optim.StateInput(s)
				}
				for o, in := range check {
					for i, v := range out[o] {
						if v != float64(float32(feeds[in][i])) {
							t.Fatalf("%s[%d] = %g, want the unchanged %g", o, i, v, feeds[in][i])
						}
					}
				}
				return
			}
			for _, o := range outputs {
				for i, v := range out[o] {
					if w := want[o][i]; math.Abs(v-w) > 1e-6*math.Max(math.Abs(w), 1e-3) {
						t.Fatalf("%s[%d] = %.9g, unscaled step %.9g", o, i, v, w)
					}
				}
			}
		})
	}
}

func TestLossScaler(t *testing.T) {
	finite, overflow := true, false
	cases := []struct {
		name      string
		start     optim.LossScaler
		steps     []bool
		wantScale float64
		wantGood  int
	}{
		{"defaults", optim.DefaultLossScaler(), nil, 65536, 0},
		{"overflow halves", optim.DefaultLossScaler(), []bool{overflow}, 32768, 0},
		{"two overflows", optim.DefaultLossScaler(), []bool{overflow, overflow}, 16384, 0},
		{"good steps count", optim.DefaultLossScaler(), []bool{finite, finite, finite}, 65536, 3},
		{"overflow resets the count", optim.LossScaler{Scale: 8, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 3},
			[]bool{finite, finite, overflow, finite, finite}, 4, 2},
		{"interval doubles", optim.LossScaler{Scale: 8, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 3},
			[]bool{finite, finite, finite}, 16, 0},
		{"twice", optim.LossScaler{Scale: 8, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 2},
			[]bool{finite, finite, finite, finite, finite}, 32, 1},
		{"resumed count", optim.LossScaler{Scale: 8, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 2000, GoodSteps: 1999},
			[]bool{finite}, 16, 0},
		{"stays a finite float32", optim.LossScaler{Scale: 0x1p127, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 1},
			[]bool{finite, finite}, 0x1p127, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := c.start
			for _, f := range c.steps {
				s.Update(f)
			}
			if s.Scale != c.wantScale || s.GoodSteps != c.wantGood {
				t.Fatalf("scale %g after %d finite steps in a row, want %g after %d", s.Scale, s.GoodSteps, c.wantScale, c.wantGood)
			}
		})
	}
}

package optim_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/optim"
)

// TestParamScales checks AdamW's update with per-parameter scales (mup's
// MuAdamW) over a small flat layout against the reference update of each
// parameter with its own learning rate and weight decay, over a few steps,
// with the momentum constant and cycled.
func TestParamScales(t *testing.T) {
	params := []graph.ParamSlot{
		{Name: "encoder/layer0/attn/in_proj/weight", Shape: graph.Shape{2, 3}, Offset: 0, Size: 6},
		{Name: "encoder/layer0/attn/in_proj/bias", Shape: graph.Shape{3}, Offset: 6, Size: 3},
		{Name: "encoder/layer0/dense/1/weight", Shape: graph.Shape{4, 2}, Offset: 9, Size: 8},
		{Name: "head/0/weight", Shape: graph.Shape{2, 2}, Offset: 17, Size: 4},
	}
	const size = 21
	opt := optim.AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1}
	cases := []struct {
		name   string
		scales map[string]optim.ParamScale
		cycle  bool
		// want is each parameter's (learning rate, weight decay) factors.
		want map[string]optim.ParamScale
	}{
		{
			name:   "MuAdamW width 2 and 4",
			scales: map[string]optim.ParamScale{params[0].Name: optim.MuAdamWScale(2), params[2].Name: optim.MuAdamWScale(4)},
			want:   map[string]optim.ParamScale{params[0].Name: {LR: 0.5, WeightDecay: 2}, params[2].Name: {LR: 0.25, WeightDecay: 4}},
		},
		{
			name:   "learning rate only",
			scales: map[string]optim.ParamScale{params[2].Name: {LR: 0.25, WeightDecay: 1}},
			want:   map[string]optim.ParamScale{params[2].Name: {LR: 0.25, WeightDecay: 1}},
		},
		{
			name:   "decay only, cycled momentum",
			scales: map[string]optim.ParamScale{params[3].Name: {LR: 1, WeightDecay: 3}},
			cycle:  true,
			want:   map[string]optim.ParamScale{params[3].Name: {LR: 1, WeightDecay: 3}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			layout := &optim.Layout{Params: params, Size: size, Slots: opt.Slots(), CycleMomentum: c.cycle}
			g, err := optim.BuildUpdate("update", layout, optim.Step{Optimizer: opt, Master: graph.Float64, Scales: c.scales, CycleMomentum: c.cycle})
			if err != nil {
				t.Fatal(err)
			}
			run := graphtest.Compile(t, g, graph.ModelOptions{})
			r := rand.New(rand.NewPCG(5, 9))
			p := make([]float64, size)
			for i := range p {
				p[i] = r.NormFloat64()
			}
			ref := append([]float64(nil), p...)
			m, v := make([]float64, size), make([]float64, size)
			refM, refV := make([]float64, size), make([]float64, size)
			for k := 1; k <= 3; k++ {
				gr := make([]float64, size)
				for i := range gr {
					gr[i] = r.NormFloat64()
				}
				const rate, beta = 1e-2, 0.87
				feeds := map[string][]float64{optim.ParamsInput: p, optim.GradInput: gr, optim.LRInput: {rate}, optim.StepInput: {float64(k)},
					optim.StateInput("exp_avg"): m, optim.StateInput("exp_avg_sq"): v}
				o := opt
				if c.cycle {
					feeds[optim.MomentumInput] = []float64{beta}
					o.Beta1 = beta
				}
				out, err := run.Run(feeds)
				if err != nil {
					t.Fatal(err)
				}
				for _, ps := range params {
					sc, ok := c.want[ps.Name]
					if !ok {
						sc = optim.ParamScale{LR: 1, WeightDecay: 1}
					}
					// A param group of its own: lr·LR, λ·WeightDecay.
					po := o
					po.WeightDecay = opt.WeightDecay * sc.WeightDecay
					lo, hi := ps.Offset, ps.Offset+ps.Size
					adamwReference(po, ref[lo:hi], refM[lo:hi], refV[lo:hi], gr[lo:hi], rate*sc.LR, k)
				}
				p, m, v = out[optim.NewParams], out[optim.NewStateOutput("exp_avg")], out[optim.NewStateOutput("exp_avg_sq")]
				for i := range p {
					if math.Abs(p[i]-ref[i]) > 1e-12*math.Max(1, math.Abs(ref[i])) {
						t.Fatalf("step %d: p[%d] = %.17g, reference %.17g", k, i, p[i], ref[i])
					}
				}
			}
		})
	}
}

// TestParamScalesErrors checks that scales are refused for an optimizer
// that cannot apply them and for a parameter the model does not have.
func TestParamScalesErrors(t *testing.T) {
	layout := &optim.Layout{Params: []graph.ParamSlot{{Name: "w", Shape: graph.Shape{2}, Size: 2}}, Size: 2}
	for _, c := range []struct {
		name string
		opt  optim.Optimizer
		sc   map[string]optim.ParamScale
		want string
	}{
		{"lion", optim.DefaultLion(), map[string]optim.ParamScale{"w": optim.MuAdamWScale(2)}, "cannot scale"},
		{"unknown parameter", optim.DefaultAdamW(), map[string]optim.ParamScale{"x": optim.MuAdamWScale(2)}, `parameter "x"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := *layout
			l.Slots = c.opt.Slots()
			_, err := optim.BuildUpdate("update", &l, optim.Step{Optimizer: c.opt, Scales: c.sc})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

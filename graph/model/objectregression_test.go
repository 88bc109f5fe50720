package model_test

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/optim"
)

// TestObjectRegressionGraphs checks the object regression of tinyObjects
// against values computed in Go from the same model without target
// scaling (whose head output is the scaled prediction): the evaluation
// output is scaled back (pt log-scaled with op_scale 0.2, deta linear
// with x_off 1 and op_scale 10), the loss is weight × loss weight × the
// L1 loss of the matched valid slots on the scaled targets, the matching
// cost adds the matcher weight × the mean absolute error, and the
// training step's regression term is the evaluation graph's.
func TestObjectRegressionGraphs(t *testing.T) {
	const batch, m, nr = 4, 3, 2
	scaled := tinyObjects()
	scaled.Objects.LossWeights.Regression, scaled.Objects.MatcherWeights.Regression = 2, 3
	scaled.Objects.Regression = &model.ObjectRegression{Name: "regression", Targets: []string{"pt", "deta"}, Hidden: []int{8}, Weight: 0.5,
		Scaling: []model.TargetScaling{{Op: model.LogScaling, XScale: 1, OpScale: 0.2}, {Op: model.LinearScaling, XScale: 1, XOff: 1, OpScale: 10}}}
	plain := tinyObjects()
	plain.Objects.LossWeights.Regression, plain.Objects.MatcherWeights.Regression = 2, 3
	plain.Objects.Regression = &model.ObjectRegression{Name: "regression", Targets: []string{"pt", "deta"}, Hidden: []int{8}, Weight: 0.5}
	none := tinyObjects()

	r := rand.New(rand.NewPCG(5, 6))
	feeds := fakeBatch(scaled, batch, r)
	class := []float64{0, 1, 2, 1, 2, 2, 0, 0, 1, 2, 2, 2}
	masks := make([]float64, batch*m*5)
	for k := range masks {
		masks[k] = float64(r.IntN(2))
	}
	raw := make([]float64, batch*m*nr)
	for k := range raw {
		if class[k/nr] < 2 {
			raw[k] = []float64{5000 + 40000*r.Float64(), 0.4*r.Float64() - 0.2}[k%nr]
		}
	}
	perm := []int{2, 0, 1, 0, 1, 2, 1, 2, 0, 0, 1, 2}
	assign := make([]float64, batch*m*m)
	for k, p := range perm {
		assign[k*m+p] = 1
	}
	feeds[model.ObjectClassInput], feeds[model.ObjectMaskInput] = class, masks
	feeds[model.ObjectRegressionInput], feeds[model.ObjectAssignmentInput] = raw, assign
	evalOut := func(s model.Spec) map[string][]float64 {
		t.Helper()
		g, layout, err := s.Eval(batch)
		if err != nil {
			t.Fatal(err)
		}
		f := maps(feeds)
		f[optim.ParamsInput] = namedParams(layout)
		out, err := graphtest.Compile(t, g, graph.ModelOptions{}).Run(f)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	got, head, base := evalOut(scaled), evalOut(plain)[model.ObjectRegressionOutput], evalOut(none)
	// The outputs in the targets' units.
	for k, h := range head {
		want := math.Exp(h / 0.2)
		if k%nr == 1 {
			want = h/10 - 1
		}
		if g := got[model.ObjectRegressionOutput][k]; math.Abs(g-want) > 1e-4*(1+math.Abs(want)) {
			t.Fatalf("regression output %d: %g, want %g (head %g)", k, g, want, h)
		}
	}
	// The scaled targets, the loss and the cost.
	target := make([]float64, len(raw))
	valid := 0
	for k, y := range raw {
		if class[k/nr] < 2 {
			target[k] = []float64{0.2 * math.Log(y), (y + 1) * 10}[k%nr]
			if k%nr == 0 {
				valid++
			}
		}
	}
	sum := 0.0
	for j := range batch {
		for s := range m {
			if class[j*m+s] == 2 {
				continue
			}
			for i := range nr {
				sum += math.Abs(head[(j*m+perm[j*m+s])*nr+i] - target[(j*m+s)*nr+i])
			}
		}
	}
	wantLoss := 0.5 * 2 * sum / float64(valid*nr)
	if l := got[model.ObjectLossOutput("regression")][0]; math.Abs(l-wantLoss) > 1e-4*(1+wantLoss) {
		t.Errorf("regression loss %g, want %g", l, wantLoss)
	}
	for j := range batch {
		for n := range m {
			for s := range m {
				k := (j*m+n)*m + s
				if class[j*m+s] == 2 {
					continue
				}
				mae := 0.0
				for i := range nr {
					mae += math.Abs(head[(j*m+n)*nr+i]-target[(j*m+s)*nr+i]) / nr
				}
				if c, want := got[model.ObjectCostOutput][k], base[model.ObjectCostOutput][k]+3*mae; math.Abs(c-want) > 1e-4*(1+math.Abs(want)) {
					t.Fatalf("cost of jet %d object %d slot %d: %g, want %g", j, n, s, c, want)
				}
			}
		}
	}
	// The training step's term.
	opts := model.TrainOptions{Batch: batch, Step: optim.Step{Optimizer: optim.DefaultAdamW()}}
	train, layout, err := scaled.TrainStep(opts)
	if err != nil {
		t.Fatal(err)
	}
	f := maps(feeds)
	f[optim.ParamsInput] = namedParams(layout.Params)
	f[optim.LRInput], f[optim.StepInput] = []float64{0}, []float64{1}
	for _, sl := range layout.Slots {
		f[optim.StateInput(sl)] = make([]float64, layout.Size)
	}
	out, err := graphtest.Compile(t, train, graph.ModelOptions{}).Run(f)
	if err != nil {
		t.Fatal(err)
	}
	if l := out[model.ObjectLossOutput("regression")][0]; math.Abs(l-wantLoss) > 1e-4*(1+wantLoss) {
		t.Errorf("training step's regression loss %g, want %g", l, wantLoss)
	}
}

// namedParams initialises each parameter of layout from a stream of its
// own name's, so that models which share parameters by name share their
// values whatever else they hold.
func namedParams(layout []graph.ParamSlot) []float64 {
	var size int64
	for _, s := range layout {
		size = max(size, s.Offset+s.Size)
	}
	p := make([]float64, size)
	for _, s := range layout {
		h := fnv.New64a()
		h.Write([]byte(s.Name))
		copy(p[s.Offset:], s.Init.Sample(rand.New(rand.NewPCG(h.Sum64(), 9)), int(s.Size)))
	}
	return p
}

// maps copies a feed map.
func maps(m map[string][]float64) map[string][]float64 {
	out := make(map[string][]float64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

package model_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/nn"
	"github.com/salt-ort/salt-ort/graph/optim"
)

// tinyObjects is tiny with a mask decoder of 3 objects over its tracks.
func tinyObjects() model.Spec {
	s := tiny()
	w := nn.MaskFormerWeights{ClassCE: 2, MaskCE: 10, MaskDice: 2, MaskFocal: 3}
	s.Objects = &model.Objects{
		Decoder: nn.MaskDecoderConfig{Objects: 3, Layers: 1, Heads: 2, MaskAttention: true, BidirectionalCA: true,
			Classes: 3, ClassHidden: []int{8}, MaskHidden: []int{8}},
		Input: "tracks", NumClasses: 2, NullClassWeight: 0.5, LossWeights: w, MatcherWeights: w,
	}
	return s
}

// TestObjectGraphs checks that the three graphs of a model with a mask
// decoder agree: the cost graph and the evaluation graph read the training
// step's flat parameters in its layout, give the same matching cost, and
// the evaluation graph's object losses on an assignment are the training
// step's.
func TestObjectGraphs(t *testing.T) {
	s := tinyObjects()
	const batch = 4
	opts := model.TrainOptions{Batch: batch, Step: optim.Step{Optimizer: optim.DefaultAdamW()}}
	train, layout, err := s.TrainStep(opts)
	if err != nil {
		t.Fatal(err)
	}
	cost, costLayout, err := s.ObjectCost(opts)
	if err != nil {
		t.Fatal(err)
	}
	eval, evalLayout, err := s.Eval(batch)
	if err != nil {
		t.Fatal(err)
	}
	same := func(a, b graph.ParamSlot) bool { return a.Name == b.Name && a.Offset == b.Offset && a.Size == b.Size }
	if !slices.EqualFunc(costLayout, layout.Params, same) || !slices.EqualFunc(evalLayout, layout.Params, same) {
		t.Fatal("the cost or evaluation graph lays the parameters out unlike the training step")
	}
	r := rand.New(rand.NewPCG(3, 4))
	feeds := fakeBatch(s, batch, r)
	feeds[optim.ParamsInput] = initialParams(layout.Params, layout.Size, 2)
	// Truth: each jet's first track slots belong to a b hadron (and, in
	// odd jets, the next to a c hadron); the last jet is padding.
	const m, tr = 3, 5
	class := make([]float64, batch*m)
	masks := make([]float64, batch*m*tr)
	for j := 0; j < batch; j++ {
		class[j*m], class[j*m+1], class[j*m+2] = 0, 2, 2
		masks[(j*m)*tr] = 1
		if j%2 == 1 {
			class[j*m+1] = 1
			masks[(j*m+1)*tr+1] = 1
		}
	}
	feeds[model.ObjectClassInput], feeds[model.ObjectMaskInput] = class, masks
	perm := []int{1, 0, 2, 2, 1, 0, 0, 2, 1, 0, 1, 2}
	assign := make([]float64, batch*m*m)
	for k, p := range perm {
		assign[k*m+p] = 1
	}
	feeds[model.ObjectAssignmentInput] = assign
	feeds[optim.LRInput], feeds[optim.StepInput] = []float64{0}, []float64{1}
	for _, sl := range layout.Slots {
		feeds[optim.StateInput(sl)] = make([]float64, layout.Size)
	}
	outs := map[string]map[string][]float64{}
	for name, g := range map[string]*graph.Graph{"train": train, "cost": cost, "eval": eval} {
		out, err := graphtest.Compile(t, g, graph.ModelOptions{}).Run(feeds)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		outs[name] = out
	}
	agree := func(what string, a, b []float64) {
		t.Helper()
		if len(a) != len(b) || len(a) == 0 {
			t.Fatalf("%s: %d and %d values", what, len(a), len(b))
		}
		for i := range a {
			if math.IsNaN(a[i]) || math.Abs(a[i]-b[i]) > 1e-5*(1+math.Abs(b[i])) {
				t.Fatalf("%s %d: %g and %g", what, i, a[i], b[i])
			}
		}
	}
	agree("matching cost, cost and evaluation graphs", outs["cost"][model.ObjectCostOutput], outs["eval"][model.ObjectCostOutput])
	for _, term := range s.Objects.ObjectLossTerms() {
		agree(term+", training and evaluation graphs", outs["train"][model.ObjectLossOutput(term)], outs["eval"][model.ObjectLossOutput(term)])
		t.Logf("%s: %.5f", term, outs["train"][model.ObjectLossOutput(term)][0])
	}
	if len(s.Objects.ObjectLossTerms()) != 4 {
		t.Errorf("loss terms %v, want the class, mask BCE, dice and focal terms", s.Objects.ObjectLossTerms())
	}
}

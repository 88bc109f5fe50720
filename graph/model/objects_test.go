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
	for _, aux := range []bool{false, true} {
		t.Run(map[bool]string{false: "final", true: "aux_loss"}[aux], func(t *testing.T) { testObjectGraphs(t, aux) })
	}
}

// testObjectGraphs is TestObjectGraphs with or without the auxiliary
// losses per decoder layer.
func testObjectGraphs(t *testing.T, aux bool) {
	s := tinyObjects()
	s.Objects.AuxLoss = aux
	s.Objects.Decoder.Layers = 2
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
	// Each layer's assignment: the final one's rotated by the layer.
	for i := range 2 {
		a := make([]float64, len(assign))
		for k, p := range perm {
			a[k*m+(p+i+1)%m] = 1
		}
		feeds[model.ObjectLayerAssignmentInput(i)] = a
	}
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
	for _, mt := range s.Objects.ObjectMatchings() {
		agree(mt.Cost+", cost and evaluation graphs", outs["cost"][mt.Cost], outs["eval"][mt.Cost])
	}
	for _, term := range s.Objects.ObjectLossTerms() {
		agree(term+", training and evaluation graphs", outs["train"][model.ObjectLossOutput(term)], outs["eval"][model.ObjectLossOutput(term)])
		t.Logf("%s: %.5f", term, outs["train"][model.ObjectLossOutput(term)][0])
	}
	want := []string{"object_class_ce", "mask_ce", "mask_dice", "mask_focal"}
	if aux {
		for i := range 2 {
			for _, term := range want[:4] {
				want = append(want, model.ObjectLayerTerm(term, i))
			}
		}
		// Each layer's terms are its own: the layers' predictions differ,
		// and so do their assignments.
		if outs["train"][model.ObjectLossOutput("mask_ce_layer0")][0] == outs["train"][model.ObjectLossOutput("mask_ce")][0] {
			t.Error("mask_ce_layer0 equals the final mask_ce")
		}
	}
	if got := s.Objects.ObjectLossTerms(); !slices.Equal(got, want) {
		t.Errorf("loss terms %v, want %v", got, want)
	}
	if n := len(s.Objects.ObjectMatchings()); n != 1+map[bool]int{true: 2}[aux] {
		t.Errorf("%d matchings", n)
	}
}

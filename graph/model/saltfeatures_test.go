package model_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/nn"
	"github.com/salt-ort/salt-ort/graph/optim"
)

// tinySalt is tiny() with the features of Salt's shipped configurations
// that GN2 does not use: dropout in the init net and the heads, Mish,
// binary classifications of jets and of tracks (BCEWithLogitsLoss), L1
// regressions of jets and of tracks, and Salt's mean of weight × loss
// (EntryMean) with sample weights.
func tinySalt() model.Spec {
	s := tiny()
	s.Name = "Salt"
	s.Inputs[0].Dropout = 0.1
	s.Inputs[0].Activation = nn.Mish
	jet := &s.Tasks[0]
	jet.Classes, jet.Loss, jet.Dropout, jet.Mean, jet.SampleWeight = []string{"b"}, model.BCELoss, 0.2, model.EntryMean, true
	jet.Activation = nn.Mish
	origin := &s.Tasks[1]
	origin.Classes, origin.ClassWeights, origin.Loss, origin.Dropout = []string{"late"}, nil, model.BCELoss, 0.1
	l1 := func(name string, kind model.TaskKind, input string) model.Task {
		return model.Task{Name: name, Kind: kind, Input: input, Targets: []string{name + "_a", name + "_b"}, Hidden: []int{6}, Activation: nn.ReLU,
			Weight: 1, Loss: model.L1Loss, Mean: model.EntryMean, Dropout: 0.1}
	}
	s.Tasks = append(s.Tasks, l1("jet_l1", model.JetRegression, ""), l1("track_l1", model.ConstituentRegression, "tracks"))
	s.Tasks[4].SampleWeight = true
	return s
}

// saltBatch is kindBatch with binary labels: 1 for b-jets (class 0) and
// for heavy-flavour tracks (origin 3, 4 or 5), padding left at -1.
func saltBatch(s model.Spec, g *graph.Graph, b int, r *rand.Rand) map[string][]float64 {
	feeds := kindBatch(s, g, b, r)
	binary := func(task string, yes func(float64) bool) {
		l := feeds[model.LabelInput(task)]
		for i, v := range l {
			switch {
			case v < 0:
			case yes(v):
				l[i] = 1
			default:
				l[i] = 0
			}
		}
	}
	binary("jets_classification", func(v float64) bool { return v == 0 })
	binary("track_origin", func(v float64) bool { return v >= 4 })
	return feeds
}

// TestSaltFeatureLossValues recomputes in Go, from the evaluation graph's
// predictions, the losses of tinySalt: the binary cross-entropy of the
// sigmoid probabilities, the L1 loss, and Salt's mean of weight × loss
// over every entry (padding jets excluded, padded tracks and missing
// targets counted) beside the weighted mean.
func TestSaltFeatureLossValues(t *testing.T) {
	s := tinySalt()
	const batch = 10
	g, layout, err := s.Eval(batch)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(g.RandomInputs()); n != 0 {
		t.Fatalf("the evaluation graph has %d random inputs: dropout must be off outside training", n)
	}
	var size int64
	for _, sl := range layout {
		size += sl.Size
	}
	feeds := saltBatch(s, g, batch, rand.New(rand.NewPCG(21, 21)))
	feeds[optim.ParamsInput] = initialParams(layout, size, 22)
	out, err := graphtest.Compile(t, g, graph.ModelOptions{}).Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	tracks := s.Inputs[0].MaxLen
	jw, valid := feeds[model.JetWeightInput], feeds[model.ValidInput("tracks")]
	realJets := 0
	for _, w := range jw {
		if w != 0 {
			realJets++
		}
	}
	if realJets == batch {
		t.Fatal("the batch has no padding jet: the entry count proves less than it claims")
	}
	for _, task := range s.Tasks {
		if task.Kind == model.Vertexing {
			continue
		}
		per, n := 1, 1
		if task.Kind.PerConstituent() {
			per = tracks
		}
		if task.Kind.Regression() {
			n = len(task.Targets)
		}
		pred, y := out[model.PredictionOutput(task.Name)], feeds[model.LabelInput(task.Name)]
		var num, den float64
		for e := 0; e < batch*per; e++ {
			w := jw[e/per]
			if task.Kind.PerConstituent() {
				w *= valid[e]
			}
			if task.SampleWeight {
				w *= feeds[model.SampleWeightInput(task.Name)][e]
			}
			for k := 0; k < n; k++ {
				var l float64
				switch {
				case task.Binary():
					p, label := pred[e], y[e]
					if label != 0 && label != 1 {
						continue // padding: neither in the sum nor in the weights
					}
					l = -(label*math.Log(p) + (1-label)*math.Log(1-p))
				case math.IsNaN(y[e*n+k]):
					continue // missing target
				default:
					l = math.Abs(float64(float32(y[e*n+k])) - pred[e*n+k])
				}
				num += w * l
				den += w
			}
		}
		if task.Mean == model.EntryMean {
			den = float64(realJets * per * n)
		}
		want := num / den
		if got := out[model.TaskLossOutput(task.Name)][0]; math.Abs(got-want) > 1e-5*math.Max(1, math.Abs(want)) {
			t.Errorf("task %s: loss %.7g, recomputed %.7g", task.Name, got, want)
		}
	}
}

// TestSaltFeaturesTrain trains tinySalt, dropout on, and checks that every
// task's validation loss falls clearly.
func TestSaltFeaturesTrain(t *testing.T) {
	s := tinySalt()
	before, after := trainSalt(t, s, 600)
	for _, task := range s.Tasks {
		if after[task.Name] >= 0.9*before[task.Name] {
			t.Errorf("task %s: validation loss %g → %g, want a clear decrease", task.Name, before[task.Name], after[task.Name])
		}
	}
}

// trainSalt is trainKind on saltBatch batches.
func trainSalt(t *testing.T, s model.Spec, steps int) (before, after map[string]float64) {
	t.Helper()
	batchOf = saltBatch
	defer func() { batchOf = kindBatch }()
	return trainKind(t, s, optim.DefaultAdamW(), steps, 3e-3)
}

// TestDropoutPlacement checks that training draws Salt's Dense dropout
// masks (before every linear layer of the init net and of the jet and
// track heads, over the broadcast shape of the first layer's concatenated
// input), none for the vertexing head, and that with masks that keep
// everything the training graph's losses are the evaluation graph's.
func TestDropoutPlacement(t *testing.T) {
	s := tinySalt()
	const batch = 4
	train, layout, err := s.TrainStep(model.TrainOptions{Batch: batch, Step: optim.Step{Optimizer: optim.DefaultAdamW()}})
	if err != nil {
		t.Fatal(err)
	}
	b, tr := int64(batch), int64(s.Inputs[0].MaxLen)
	nj, nv := int64(len(s.JetVars)), int64(len(s.Inputs[0].Vars))
	w := int64(s.Width())
	want := map[string]graph.Shape{
		// The init net reads [jet variables, track variables]; its hidden
		// layer is 8 wide.
		"init/tracks/dropout/0/0/mask": {b, tr, nj},
		"init/tracks/dropout/0/1/mask": {b, tr, nv},
		"init/tracks/dropout/1/mask":   {b, tr, 8},
		// The jet head reads the pooled representation.
		"jets_classification/dropout/0/0/mask": {b, w},
		"jets_classification/dropout/1/mask":   {b, 6},
		// The track head reads [pooled, track], the pooled part per track.
		"track_origin/dropout/0/0/mask": {b, tr, w},
		"track_origin/dropout/0/1/mask": {b, tr, w},
		"track_origin/dropout/1/mask":   {b, tr, 6},
		"jet_l1/dropout/0/0/mask":       {b, w},
		"jet_l1/dropout/1/mask":         {b, 6},
		"track_l1/dropout/0/0/mask":     {b, tr, w},
		"track_l1/dropout/0/1/mask":     {b, tr, w},
		"track_l1/dropout/1/mask":       {b, tr, 6},
	}
	got := map[string]graph.Shape{}
	for _, ri := range train.RandomInputs() {
		if strings.HasPrefix(ri.Tensor.Name(), "track_vertexing/") {
			t.Errorf("random input %s: the vertexing head has no dropout", ri.Tensor.Name())
		}
		got[ri.Tensor.Name()] = ri.Tensor.Shape()
	}
	for name, shape := range want {
		if !slices.Equal(got[name], shape) {
			t.Errorf("dropout mask %s: shape %v, want %v", name, got[name], shape)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d dropout masks, want %d: %v", len(got), len(want), got)
	}

	// Keep-everything masks: the training graph computes the evaluation
	// graph's losses.
	eval, _, err := s.Eval(batch)
	if err != nil {
		t.Fatal(err)
	}
	feeds := saltBatch(s, train, batch, rand.New(rand.NewPCG(5, 5)))
	feeds[optim.ParamsInput] = initialParams(layout.Params, layout.Size, 6)
	evalOut, err := graphtest.Compile(t, eval, graph.ModelOptions{}).Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	for _, ri := range train.RandomInputs() {
		m := make([]float64, ri.Tensor.Shape().Size())
		for i := range m {
			m[i] = 1
		}
		feeds[ri.Tensor.Name()] = m
	}
	feeds[optim.LRInput], feeds[optim.StepInput] = []float64{1e-3}, []float64{1}
	for _, sl := range layout.Slots {
		feeds[optim.StateInput(sl)] = make([]float64, layout.Size)
	}
	trainRun := graphtest.Compile(t, train, graph.ModelOptions{})
	trainOut, err := trainRun.Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range s.Tasks {
		name := model.TaskLossOutput(task.Name)
		if a, e := trainOut[name][0], evalOut[name][0]; math.Abs(a-e) > 1e-6*math.Max(1, math.Abs(e)) {
			t.Errorf("task %s: training loss with nothing dropped %.7g, evaluation loss %.7g", task.Name, a, e)
		}
	}
	// Dropping the first layer's whole input of the jet head leaves it
	// its biases: the jet loss changes, the track losses do not.
	zero := make([]float64, len(feeds["jets_classification/dropout/0/0/mask"]))
	feeds["jets_classification/dropout/0/0/mask"] = zero
	dropped, err := trainRun.Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	if a, e := dropped[model.TaskLossOutput("jets_classification")][0], trainOut[model.TaskLossOutput("jets_classification")][0]; a == e {
		t.Errorf("jet loss %g with the jet head's input dropped, unchanged", a)
	}
	if a, e := dropped[model.TaskLossOutput("track_origin")][0], trainOut[model.TaskLossOutput("track_origin")][0]; a != e {
		t.Errorf("track loss %g with the jet head's input dropped, was %g", a, e)
	}
}

// TestJetInitDropout checks that a model of the jet variables alone (Salt's
// DL1) drops its jet init net's inputs as Salt's Dense does, in training
// only.
func TestJetInitDropout(t *testing.T) {
	s := tinyJetOnly()
	s.JetInit.Dropout = 0.1
	s.JetInit.Activation = nn.Mish
	g, _, err := s.TrainStep(model.TrainOptions{Batch: 3, Step: optim.Step{Optimizer: optim.DefaultAdamW()}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ri := range g.RandomInputs() {
		got = append(got, fmt.Sprintf("%s%v", ri.Tensor.Name(), ri.Tensor.Shape()))
	}
	want := []string{"init/jets/dropout/0/0/mask[3, 3]", "init/jets/dropout/1/mask[3, 8]", "init/jets/dropout/2/mask[3, 8]"}
	if !slices.Equal(got, want) {
		t.Errorf("dropout masks %v, want %v", got, want)
	}
	e, _, err := s.Eval(3)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(e.RandomInputs()); n != 0 {
		t.Errorf("the evaluation graph has %d dropout masks", n)
	}
}

// TestSaltFeaturesRefused checks the spec's refusals of the new options.
func TestSaltFeaturesRefused(t *testing.T) {
	for _, c := range []struct {
		name   string
		modify func(*model.Spec)
		want   string
	}{
		{"binary with two classes", func(s *model.Spec) { s.Tasks[0].Classes = []string{"b", "u"} }, "one class name"},
		{"binary with class weights", func(s *model.Spec) { s.Tasks[1].ClassWeights = []float64{2} }, "no class weights"},
		{"L1 on a classification", func(s *model.Spec) { s.Tasks[1].Loss = model.L1Loss }, "L1 loss is for"},
		{"BCE on a regression", func(s *model.Spec) { s.Tasks[3].Loss = model.BCELoss }, "binary cross-entropy is for classification"},
		{"entry mean on vertexing", func(s *model.Spec) { s.Tasks[2].Mean = model.EntryMean }, "no entry mean"},
		{"dropout of 1", func(s *model.Spec) { s.Inputs[0].Dropout = 1 }, "init net dropout 1 is outside"},
		{"unknown mean", func(s *model.Spec) { s.Tasks[0].Mean = "median" }, "unknown loss mean"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := tinySalt()
			c.modify(&s)
			if err := s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

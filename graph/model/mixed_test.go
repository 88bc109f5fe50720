package model_test

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/optim"
	"github.com/salt-ort/salt-ort/internal/onnxcheck"
)

// stepRun is what a few training steps produced.
type stepRun struct {
	losses [][]float64 // per step: each task's loss, then the total
	preds  [][]float64 // per step: the jet flavour probabilities
	params []float64   // after the last step
	finite []float64   // per step grad_finite, when the step has it
}

// trainSteps runs n training steps of the tiny model from fixed initial
// parameters and batches, feeding scale as loss_scale when the step reads
// it.
func trainSteps(t *testing.T, opts model.TrainOptions, n int, scale float64) stepRun {
	t.Helper()
	s := tiny()
	g, layout, err := s.TrainStep(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range g.Inputs() {
		switch in.Name() {
		case optim.ParamsInput, optim.LRInput, optim.StepInput, optim.LossScaleInput, model.JetsInput, "tracks":
			if in.DType() != graph.Float32 {
				t.Fatalf("input %s, want float32 whatever the compute type", in)
			}
		}
	}
	run := graphtest.Compile(t, g, graph.ModelOptions{})
	params := initialParams(layout.Params, layout.Size, 7)
	state := map[string][]float64{}
	for _, sl := range layout.Slots {
		state[sl] = make([]float64, layout.Size)
	}
	r := rand.New(rand.NewPCG(8, 8))
	var res stepRun
	for step := 1; step <= n; step++ {
		feeds := fakeBatch(s, opts.Batch, r)
		feeds[optim.ParamsInput] = params
		feeds[optim.LRInput] = []float64{1e-3}
		feeds[optim.StepInput] = []float64{float64(step)}
		if layout.LossScaling {
			feeds[optim.LossScaleInput] = []float64{scale}
		}
		for sl, v := range state {
			feeds[optim.StateInput(sl)] = v
		}
		out, err := run.Run(feeds)
		if err != nil {
			t.Fatal(err)
		}
		var l []float64
		for _, task := range s.Tasks {
			l = append(l, out[model.TaskLossOutput(task.Name)][0])
		}
		res.losses = append(res.losses, append(l, out[model.LossOutput][0]))
		res.preds = append(res.preds, out[model.PredictionOutput("jets_classification")])
		if layout.LossScaling {
			res.finite = append(res.finite, out[optim.GradFiniteOutput][0])
		}
		params = out[optim.NewParams]
		for sl := range state {
			state[sl] = out[optim.NewStateOutput(sl)]
		}
	}
	res.params = params
	return res
}

func relClose(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(math.Abs(b), 1e-3) }

// TestMixedPrecisionMatchesFloat32 runs the training step with another
// compute type than float32 and checks that the loss curve is float32's.
// ONNX Runtime's CPU provider has no float16 or bfloat16 kernels, so
// float64 stands in: the casts, the float32 master weights and the loss
// scaling are the same whatever the compute type, and float64 agrees with
// float32 to float32's precision.
func TestMixedPrecisionMatchesFloat32(t *testing.T) {
	const batch, steps = 8, 5
	adam := optim.Step{Optimizer: optim.DefaultAdamW(), ClipNorm: 5}
	scaled := adam
	scaled.LossScaling = true
	want := trainSteps(t, model.TrainOptions{Batch: batch, Step: adam, Predictions: true}, steps, 0)
	cases := []struct {
		name    string
		compute graph.DType
		step    optim.Step
		scale   float64
		tol     float64 // relative, on the losses and predictions
	}{
		{"float32 with loss scaling", graph.Float32, scaled, 65536, 1e-6},
		{"float64", graph.Float64, adam, 0, 1e-5},
		{"float64 with loss scaling", graph.Float64, scaled, 1024, 1e-5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := trainSteps(t, model.TrainOptions{Batch: batch, Step: c.step, Predictions: true, Compute: c.compute}, steps, c.scale)
			for i := range want.losses {
				for j, w := range want.losses[i] {
					if !relClose(got.losses[i][j], w, c.tol) {
						t.Errorf("step %d: loss %d = %.9g, float32 %.9g", i+1, j, got.losses[i][j], w)
					}
				}
				for j, w := range want.preds[i] {
					if !relClose(got.preds[i][j], w, c.tol) {
						t.Fatalf("step %d: prediction %d = %.9g, float32 %.9g", i+1, j, got.preds[i][j], w)
					}
				}
				if c.step.LossScaling && got.finite[i] != 1 {
					t.Errorf("step %d: grad_finite = %g, want 1", i+1, got.finite[i])
				}
			}
			for i, p := range got.params {
				if float64(float32(p)) != p {
					t.Fatalf("params[%d] = %.17g is not a float32", i, p)
				}
			}
		})
	}
}

// TestMixedPrecisionSkipsOverflow checks that a loss scale that overflows
// the float32 loss leaves the master weights and the optimizer state
// unchanged in a mixed-precision step.
func TestMixedPrecisionSkipsOverflow(t *testing.T) {
	s := tiny()
	const batch = 4
	g, layout, err := s.TrainStep(model.TrainOptions{Batch: batch, Compute: graph.Float64,
		Step: optim.Step{Optimizer: optim.DefaultAdamW(), ClipNorm: 1, LossScaling: true}})
	if err != nil {
		t.Fatal(err)
	}
	feeds := fakeBatch(s, batch, rand.New(rand.NewPCG(3, 3)))
	feeds[optim.ParamsInput] = initialParams(layout.Params, layout.Size, 3)
	feeds[optim.LRInput], feeds[optim.StepInput] = []float64{1e-3}, []float64{2}
	for _, sl := range layout.Slots {
		feeds[optim.StateInput(sl)] = make([]float64, layout.Size)
		for i := range feeds[optim.StateInput(sl)] {
			feeds[optim.StateInput(sl)][i] = float64(float32(1e-4 * float64(i%7)))
		}
	}
	feeds[optim.LossScaleInput] = []float64{3e38} // the loss is > 1 on these batches: Inf
	out, err := graphtest.Compile(t, g, graph.ModelOptions{}).Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	if f := out[optim.GradFiniteOutput][0]; f != 0 {
		t.Fatalf("grad_finite = %g with loss %g and scale 3e38, want 0", f, out[model.LossOutput][0])
	}
	check := map[string]string{optim.NewParams: optim.ParamsInput}
	for _, sl := range layout.Slots {
		check[optim.NewStateOutput(sl)] = optim.StateInput(sl)
	}
	for o, in := range check {
		for i, v := range out[o] {
			if v != float64(float32(feeds[in][i])) {
				t.Fatalf("%s[%d] = %g, want the unchanged %g", o, i, v, feeds[in][i])
			}
		}
	}
}

// TestEvalComputeMatchesFloat32 checks the evaluation graph in float64
// compute against float32 on the same float32 parameters.
func TestEvalComputeMatchesFloat32(t *testing.T) {
	s := tiny()
	const batch = 4
	feeds := fakeBatch(s, batch, rand.New(rand.NewPCG(6, 6)))
	outs := map[graph.DType]map[string][]float64{}
	for _, compute := range []graph.DType{graph.Float32, graph.Float64} {
		g, layout, err := s.EvalWith(model.EvalOptions{Batch: batch, Compute: compute})
		if err != nil {
			t.Fatal(err)
		}
		var size int64
		for _, sl := range layout {
			size += sl.Size
		}
		feeds[optim.ParamsInput] = initialParams(layout, size, 6)
		if outs[compute], err = graphtest.Compile(t, g, graph.ModelOptions{}).Run(feeds); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range outs[graph.Float32] {
		for i, w := range want {
			if got := outs[graph.Float64][name][i]; !relClose(got, w, 1e-5) {
				t.Fatalf("%s[%d] = %.9g in float64, %.9g in float32", name, i, got, w)
			}
		}
	}
}

// TestMixedPrecisionGraphs builds the float16 and bfloat16 training-step
// and evaluation graphs of GN2 (which ONNX Runtime runs on CUDA only) and
// checks that they are deterministic, valid ONNX, compute in the compute
// type and keep float32 master weights, inputs, dropout masks and losses.
func TestMixedPrecisionGraphs(t *testing.T) {
	cases := []struct {
		compute     graph.DType
		lossScaling bool
	}{
		{graph.Float16, true},
		{graph.BFloat16, false},
	}
	for _, c := range cases {
		t.Run(c.compute.String(), func(t *testing.T) {
			s := model.GN2()
			s.Tasks[2].OriginWeighting = true
			s.Encoder.Dropout = 0.1
			build := func() (*graph.Graph, *optim.Layout, []byte, []byte) {
				g, layout, err := s.TrainStep(model.TrainOptions{Batch: 8, Compute: c.compute, Predictions: true,
					Step: optim.Step{Optimizer: optim.DefaultAdamW(), ClipNorm: 1}})
				if err != nil {
					t.Fatal(err)
				}
				train, err := g.Marshal(graph.ModelOptions{})
				if err != nil {
					t.Fatal(err)
				}
				ev, _, err := s.EvalWith(model.EvalOptions{Batch: 8, Compute: c.compute})
				if err != nil {
					t.Fatal(err)
				}
				eval, err := ev.Marshal(graph.ModelOptions{})
				if err != nil {
					t.Fatal(err)
				}
				return g, layout, train, eval
			}
			g, layout, train, eval := build()
			_, _, train2, eval2 := build()
			if !bytes.Equal(train, train2) || !bytes.Equal(eval, eval2) {
				t.Fatal("two builds differ")
			}
			if layout.LossScaling != c.lossScaling {
				t.Errorf("layout.LossScaling = %v, want %v", layout.LossScaling, c.lossScaling)
			}
			inputs := map[string]*graph.Tensor{}
			for _, in := range g.Inputs() {
				inputs[in.Name()] = in
				if in.DType() == c.compute {
					t.Errorf("input %s is in the compute type; inputs stay float32", in)
				}
			}
			if _, ok := inputs[optim.LossScaleInput]; ok != c.lossScaling {
				t.Errorf("loss_scale input: %v, want %v", ok, c.lossScaling)
			}
			for _, ri := range g.RandomInputs() {
				if ri.Tensor.DType() != graph.Float32 {
					t.Errorf("dropout mask %s, want float32", ri.Tensor)
				}
			}
			outputs := map[string]bool{}
			for _, o := range g.Outputs() {
				outputs[o.Name()] = true
				if o.DType() != graph.Float32 {
					t.Errorf("output %s, want float32", o)
				}
			}
			if outputs[optim.GradFiniteOutput] != c.lossScaling {
				t.Errorf("grad_finite output: %v, want %v", outputs[optim.GradFiniteOutput], c.lossScaling)
			}
			matmuls := 0
			for _, n := range g.Nodes() {
				if n.Op == "MatMul" && n.Outputs[0].DType() != c.compute {
					t.Errorf("%s computes in %s, want %s", n.Name, n.Outputs[0].DType(), c.compute)
				}
				if n.Op == "MatMul" {
					matmuls++
				}
			}
			if matmuls == 0 {
				t.Fatal("no MatMul in the training step")
			}
			if !onnxcheck.Available() {
				t.Skip(onnxcheck.ErrUnavailable)
			}
			for name, b := range map[string][]byte{"train_step": train, "eval": eval} {
				if err := onnxcheck.Check(b); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			}
		})
	}
}

func TestComputeTypeIsChecked(t *testing.T) {
	s := tiny()
	_, _, err := s.TrainStep(model.TrainOptions{Batch: 2, Compute: graph.Int32, Step: optim.Step{Optimizer: optim.DefaultAdamW()}})
	if err == nil || !strings.Contains(err.Error(), "int32") {
		t.Fatalf("err = %v, want one naming int32", err)
	}
}

// TestMixedPrecisionKinds runs a few training steps of each model kind
// beyond GN2 in float32 and with float64 standing in for a half compute
// type (the casts of mixed precision are the same): the inputs beyond
// GN2's (raw edge variables, parameters, denominators, sample weights)
// stay float32 inputs, the graphs build and run, and the losses agree.
func TestMixedPrecisionKinds(t *testing.T) {
	const batch, steps = 8, 3
	for name, s := range map[string]model.Spec{"deepsets": tinyDeepSets(), "jet only": tinyJetOnly(), "gn3 encoder": tinyGN3(),
		"regressions": tinyRegression(), "edge features": tinyEdges(), "parameterised": tinyParameterised()} {
		t.Run(name, func(t *testing.T) {
			run := func(compute graph.DType) [][]float64 {
				g, layout, err := s.TrainStep(model.TrainOptions{Batch: batch, Step: optim.Step{Optimizer: optim.DefaultAdamW(), ClipNorm: 5}, Compute: compute})
				if err != nil {
					t.Fatal(err)
				}
				random := map[string]bool{} // dropout masks follow float64 (float32 for half types)
				for _, ri := range g.RandomInputs() {
					random[ri.Tensor.Name()] = true
				}
				for _, in := range g.Inputs() {
					if in.DType() == graph.Float64 && !random[in.Name()] {
						t.Fatalf("input %s: the compute type leaked into the inputs", in)
					}
				}
				r := rand.New(rand.NewPCG(8, 8))
				params := initialParams(layout.Params, layout.Size, 7)
				state := map[string][]float64{}
				for _, sl := range layout.Slots {
					state[sl] = make([]float64, layout.Size)
				}
				exe := graphtest.Compile(t, g, graph.ModelOptions{})
				var losses [][]float64
				for step := 1; step <= steps; step++ {
					feeds := kindBatch(s, g, batch, r)
					for _, ri := range g.RandomInputs() {
						m := make([]float64, ri.Tensor.Shape().Size())
						for i := range m {
							m[i] = 1 / (1 - ri.P)
						}
						feeds[ri.Tensor.Name()] = m
					}
					feeds[optim.ParamsInput], feeds[optim.LRInput], feeds[optim.StepInput] = params, []float64{1e-3}, []float64{float64(step)}
					for sl, v := range state {
						feeds[optim.StateInput(sl)] = v
					}
					out, err := exe.Run(feeds)
					if err != nil {
						t.Fatal(err)
					}
					var l []float64
					for _, task := range s.Tasks {
						l = append(l, out[model.TaskLossOutput(task.Name)][0])
					}
					losses = append(losses, l)
					params = out[optim.NewParams]
					for sl := range state {
						state[sl] = out[optim.NewStateOutput(sl)]
					}
				}
				return losses
			}
			want, got := run(graph.Float32), run(graph.Float64)
			for i := range want {
				for j := range want[i] {
					if !relClose(got[i][j], want[i][j], 1e-4) {
						t.Errorf("step %d, task %s: loss %.9g in float64, %.9g in float32", i+1, s.Tasks[j].Name, got[i][j], want[i][j])
					}
				}
			}
		})
	}
}

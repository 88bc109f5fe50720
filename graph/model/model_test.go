package model_test

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/salt-ort/salt-ort/codegen/onnxpb"
	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/nn"
	"github.com/salt-ort/salt-ort/graph/optim"
	"github.com/salt-ort/salt-ort/internal/onnxcheck"
)

// tiny is a GN2-shaped model small enough for tests.
func tiny() model.Spec {
	s := model.GN2()
	s.Inputs[0].Vars = s.Inputs[0].Vars[:3]
	s.Inputs[0].MaxLen = 5
	s.Inputs[0].InitHidden = []int{8}
	s.EmbedDim = 8
	s.Encoder = nn.EncoderConfig{Layers: 1, Heads: 2, DenseRatio: 2, Activation: nn.ReLU, Registers: 1, OutDim: 6}
	for i := range s.Tasks {
		s.Tasks[i].Hidden = []int{6}
	}
	s.Tasks[1].ClassWeights = []float64{1, 2, 1, 1, 1, 1, 1, 1}
	s.Tasks[2].OriginWeighting = true
	return s
}

// fakeBatch makes a batch where the jet label is learnable from the
// first track variable and track labels from the second.
func fakeBatch(s model.Spec, b int, r *rand.Rand) map[string][]float64 {
	t := s.Inputs[0].MaxLen
	nv := len(s.Inputs[0].Vars)
	feeds := map[string][]float64{
		model.JetsInput:        make([]float64, b*len(s.JetVars)),
		"tracks":               make([]float64, b*t*nv),
		"tracks/valid":         make([]float64, b*t),
		model.JetWeightInput:   make([]float64, b),
		model.TaskWeightsInput: {1, 0.5, 1.5},
	}
	jl := make([]float64, b)
	orig := make([]float64, b*t)
	vtx := make([]float64, b*t)
	for j := 0; j < b; j++ {
		feeds[model.JetWeightInput][j] = 1
		if j == b-1 {
			feeds[model.JetWeightInput][j] = 0 // a padding row
		}
		c := r.IntN(4)
		jl[j] = float64(c)
		for k := range s.JetVars {
			feeds[model.JetsInput][j*len(s.JetVars)+k] = r.NormFloat64()
		}
		n := 1 + r.IntN(t)
		for i := 0; i < t; i++ {
			if i >= n {
				orig[j*t+i], vtx[j*t+i] = -1, -1
				continue
			}
			feeds["tracks/valid"][j*t+i] = 1
			o := r.IntN(8)
			orig[j*t+i] = float64(o)
			vtx[j*t+i] = float64(r.IntN(3) - 1)
			x := feeds["tracks"][(j*t+i)*nv:]
			x[0] = float64(c) + 0.3*r.NormFloat64()
			x[1] = float64(o) + 0.1*r.NormFloat64()
			x[2] = vtx[j*t+i] + 0.1*r.NormFloat64()
		}
	}
	feeds[model.LabelInput("jets_classification")] = jl
	feeds[model.LabelInput("track_origin")] = orig
	feeds[model.LabelInput("track_vertexing")] = vtx
	feeds[model.OriginInput("track_vertexing")] = orig
	return feeds
}

func initialParams(layout []graph.ParamSlot, size int64, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 9))
	p := make([]float64, size)
	for _, s := range layout {
		copy(p[s.Offset:], s.Init.Sample(r, int(s.Size)))
	}
	return p
}

func TestTinyModelTrains(t *testing.T) {
	s := tiny()
	const batch = 16
	g, layout, err := s.TrainStep(model.TrainOptions{Batch: batch, Step: optim.Step{Optimizer: optim.DefaultAdamW(), ClipNorm: 5}, Predictions: true})
	if err != nil {
		t.Fatal(err)
	}
	run := graphtest.Compile(t, g, graph.ModelOptions{})
	params := initialParams(layout.Params, layout.Size, 1)
	state := map[string][]float64{}
	for _, sl := range layout.Slots {
		state[sl] = make([]float64, layout.Size)
	}
	r := rand.New(rand.NewPCG(2, 2))
	val := fakeBatch(s, batch, rand.New(rand.NewPCG(99, 99)))
	evalG, _, err := s.Eval(batch)
	if err != nil {
		t.Fatal(err)
	}
	eval := graphtest.Compile(t, evalG, graph.ModelOptions{})
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
	before := evalLoss()
	for step := 1; step <= 300; step++ {
		feeds := fakeBatch(s, batch, r)
		feeds[optim.ParamsInput] = params
		feeds[optim.LRInput] = []float64{3e-3}
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
	after := evalLoss()
	for _, task := range s.Tasks {
		if after[task.Name] >= 0.9*before[task.Name] {
			t.Errorf("task %s: validation loss %g → %g, want a clear decrease", task.Name, before[task.Name], after[task.Name])
		}
	}
}

// TestInferMatchesEval checks that the deployment graph, with the
// parameters as initializers, predicts what the evaluation graph predicts.
func TestInferMatchesEval(t *testing.T) {
	s := tiny()
	const batch = 4
	evalG, layout, err := s.Eval(batch)
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	for _, sl := range layout {
		size += sl.Size
	}
	params := initialParams(layout, size, 3)
	feeds := fakeBatch(s, batch, rand.New(rand.NewPCG(4, 4)))
	feeds[optim.ParamsInput] = params
	evalOut, err := graphtest.Compile(t, evalG, graph.ModelOptions{}).Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	inferG, err := s.Infer(model.InferOptions{Batch: batch})
	if err != nil {
		t.Fatal(err)
	}
	values := map[string][]byte{}
	for _, sl := range layout {
		f := make([]float32, sl.Size)
		for i := range f {
			f[i] = float32(params[sl.Offset+int64(i)])
		}
		values[sl.Name] = graph.Float32Bytes(f)
	}
	inferOut, err := graphtest.Compile(t, inferG, graph.ModelOptions{ParamValues: values}).Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range s.Tasks {
		name := model.PredictionOutput(task.Name)
		a, b := evalOut[name], inferOut[name]
		if len(a) == 0 || len(a) != len(b) {
			t.Fatalf("%s: eval has %d values, infer %d", name, len(a), len(b))
		}
		for i := range a {
			if math.Abs(a[i]-b[i]) > 1e-6 {
				t.Fatalf("%s[%d]: eval %g, infer %g", name, i, a[i], b[i])
			}
		}
	}
}

// TestVertexingLossValue checks the vertexing loss of the graph against a
// Go computation from the pair probabilities the same graph predicts, for
// one jet with four valid tracks (vertex indices 0, 0, -1, 1) and one
// padded track.
func TestVertexingLossValue(t *testing.T) {
	vtx := []int{0, 0, -1, 1, -1}
	origin := []int{3, 3, 1, 1, -1}
	want := func(probs []float64, weighting bool) float64 {
		var num, pos float64
		for i := 0; i < 4; i++ {
			for j := 0; j < 4; j++ {
				if i == j {
					continue
				}
				y := 0.0
				if vtx[i] == vtx[j] && vtx[i] >= 0 {
					y = 1
				}
				p := probs[i*5+j]
				l := -(y*math.Log(p) + (1-y)*math.Log(1-p))
				w := 1.0
				if weighting {
					hi, hj := origin[i] >= 3 && origin[i] <= 5, origin[j] >= 3 && origin[j] <= 5
					fi, fj := origin[i] == 1, origin[j] == 1
					switch {
					case fi && fj:
						w = 0
					case (hi || fi) && (hj || fj) && (hi || hj):
						w = 2
					}
				}
				num += w * l
				pos += y
			}
		}
		return num / pos
	}
	for _, weighting := range []bool{false, true} {
		t.Run(fmt.Sprint("origin_weighting=", weighting), func(t *testing.T) {
			s := tiny()
			s.Tasks = s.Tasks[2:]
			s.Tasks[0].OriginWeighting = weighting
			g, layout, err := s.Eval(1)
			if err != nil {
				t.Fatal(err)
			}
			var size int64
			for _, sl := range layout {
				size += sl.Size
			}
			feeds := fakeBatch(s, 1, rand.New(rand.NewPCG(1, 1)))
			feeds[model.JetWeightInput] = []float64{1}
			feeds["tracks/valid"] = []float64{1, 1, 1, 1, 0}
			feeds[model.LabelInput("track_vertexing")] = []float64{0, 0, -1, 1, -1}
			if weighting {
				feeds[model.OriginInput("track_vertexing")] = []float64{3, 3, 1, 1, -1}
			}
			feeds[model.TaskWeightsInput] = []float64{1}
			feeds[optim.ParamsInput] = initialParams(layout, size, 5)
			out, err := graphtest.Compile(t, g, graph.ModelOptions{}).Run(feeds)
			if err != nil {
				t.Fatal(err)
			}
			got := out[model.TaskLossOutput("track_vertexing")][0]
			if w := want(out[model.PredictionOutput("track_vertexing")], weighting); math.Abs(got-w) > 1e-5*math.Abs(w) {
				t.Fatalf("vertexing loss = %.7g, want %.7g", got, w)
			}
		})
	}
}

func buildAll(t testing.TB, s model.Spec, batch int) map[string][]byte {
	out := map[string][]byte{}
	g, _, err := s.TrainStep(model.TrainOptions{Batch: batch, Step: optim.Step{Optimizer: optim.DefaultAdamW(), ClipNorm: 1}, Predictions: true})
	if err != nil {
		t.Fatal(err)
	}
	if out["train_step"], err = g.Marshal(graph.ModelOptions{}); err != nil {
		t.Fatal(err)
	}
	// As the CPU trains and evaluates: the encoder recomputed and in
	// chunks (3 jets each here).
	defer model.SetEncoderChunkElementsForTest(3 * 41 * 768)()
	g, _, err = s.TrainStep(model.TrainOptions{Batch: batch, Step: optim.Step{Optimizer: optim.DefaultAdamW(), ClipNorm: 1},
		RecomputeEncoder: true, ChunkEncoder: true})
	if err != nil {
		t.Fatal(err)
	}
	if out["train_step_cpu"], err = g.Marshal(graph.ModelOptions{}); err != nil {
		t.Fatal(err)
	}
	if g, _, err = s.EvalWith(model.EvalOptions{Batch: batch, ChunkEncoder: true}); err != nil {
		t.Fatal(err)
	}
	if out["eval_cpu"], err = g.Marshal(graph.ModelOptions{}); err != nil {
		t.Fatal(err)
	}
	if g, _, err = s.Eval(batch); err != nil {
		t.Fatal(err)
	}
	if out["eval"], err = g.Marshal(graph.ModelOptions{}); err != nil {
		t.Fatal(err)
	}
	if g, err = s.Infer(model.InferOptions{Batch: batch}); err != nil {
		t.Fatal(err)
	}
	if out["infer"], err = g.Marshal(graph.ModelOptions{}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGraphsDeterministicAndValid(t *testing.T) {
	s := model.GN2()
	s.Tasks[2].OriginWeighting = true
	s.Encoder.Dropout = 0.1
	first, second := buildAll(t, s, 8), buildAll(t, s, 8)
	for kind, b := range first {
		if !bytes.Equal(b, second[kind]) {
			t.Errorf("%s: two builds differ", kind)
		}
		if !onnxcheck.Available() {
			continue
		}
		if err := onnxcheck.Check(b); err != nil {
			t.Errorf("%s: %v", kind, err)
		}
	}
	if !onnxcheck.Available() {
		t.Log(onnxcheck.ErrUnavailable)
	}
}

func TestValidateNamesTheProblem(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*model.Spec)
		want   string
	}{
		{"heads", func(s *model.Spec) { s.Encoder.Heads = 3 }, "heads"},
		{"class weights", func(s *model.Spec) { s.Tasks[0].ClassWeights = []float64{1, 2} }, "class weights"},
		{"task input", func(s *model.Spec) { s.Tasks[1].Input = "hits" }, `"hits"`},
		{"classes", func(s *model.Spec) { s.Tasks[0].Classes = []string{"b"} }, "class names"},
		{"kind", func(s *model.Spec) { s.Tasks[0].Kind = "clustering" }, "clustering"},
		{"out_dim", func(s *model.Spec) { s.Encoder.OutDim = -1 }, "out_dim"},
		{"attention dropout", func(s *model.Spec) { s.Encoder.AttnDropout = 1 }, "attention dropout"},
	}
	for _, c := range cases {
		s := model.GN2()
		c.modify(&s)
		err := s.Validate()
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
			t.Errorf("%s: err = %v, want one mentioning %s", c.name, err, c.want)
		}
	}
}

// BenchmarkBuildGN2 prints the time to build and serialise the GN2 graphs
// of ../shared/spec/salt-format.md and their node counts (target: < 1 s).
func BenchmarkBuildGN2(b *testing.B) {
	s := model.GN2()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		// As training on the CPU builds it: the encoder recomputed and in
		// chunks.
		g, layout, err := s.TrainStep(model.TrainOptions{Batch: 1000, Step: optim.Step{Optimizer: optim.DefaultAdamW(), ClipNorm: 1},
			RecomputeEncoder: true, ChunkEncoder: true})
		if err != nil {
			b.Fatal(err)
		}
		m, err := g.Model(graph.ModelOptions{})
		if err != nil {
			b.Fatal(err)
		}
		bytes, err := g.Marshal(graph.ModelOptions{})
		if err != nil {
			b.Fatal(err)
		}
		trainTime := time.Since(start)
		ev, _, err := s.EvalWith(model.EvalOptions{Batch: 1000, ChunkEncoder: true})
		if err != nil {
			b.Fatal(err)
		}
		em, err := ev.Model(graph.ModelOptions{})
		if err != nil {
			b.Fatal(err)
		}
		inf, err := s.Infer(model.InferOptions{Batch: 1})
		if err != nil {
			b.Fatal(err)
		}
		im, err := inf.Model(graph.ModelOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			b.Logf("GN2 train_step: built+serialised in %v, %d nodes (%d MatMul), %d parameters, %d bytes; eval %d nodes; infer %d nodes",
				trainTime, len(m.Graph.Node), countOp(m, "MatMul"), layout.Size, len(bytes), len(em.Graph.Node), len(im.Graph.Node))
		}
	}
}

func countOp(m *onnxpb.ModelProto, op string) int {
	n := 0
	for _, node := range m.GetGraph().GetNode() {
		if node.GetOpType() == op {
			n++
		}
	}
	return n
}

// TestDropRegisters checks that Salt's drop_registers changes what the
// pooling reads: with the same parameters, the jet predictions differ
// from pooling with the registers, and the track predictions (which never
// read the registers' outputs directly, only the pooled context) follow.
func TestDropRegisters(t *testing.T) {
	const batch = 4
	run := func(drop bool) map[string][]float64 {
		s := tiny()
		s.Encoder.Registers = 2
		s.DropRegisters = drop
		g, layout, err := s.Eval(batch)
		if err != nil {
			t.Fatal(err)
		}
		var size int64
		for _, sl := range layout {
			size += sl.Size
		}
		feeds := fakeBatch(s, batch, rand.New(rand.NewPCG(4, 4)))
		feeds[optim.ParamsInput] = initialParams(layout, size, 3)
		out, err := graphtest.Compile(t, g, graph.ModelOptions{}).Run(feeds)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	with, without := run(false), run(true)
	name := model.PredictionOutput(tiny().Tasks[0].Name)
	a, b := with[name], without[name]
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("%s: %d and %d values", name, len(a), len(b))
	}
	differ := false
	for i := range a {
		if math.IsNaN(b[i]) {
			t.Fatalf("%s[%d] is NaN with the registers dropped", name, i)
		}
		differ = differ || math.Abs(a[i]-b[i]) > 1e-6
	}
	if !differ {
		t.Fatal("drop_registers left the jet predictions unchanged: the pooling still reads the registers")
	}
}

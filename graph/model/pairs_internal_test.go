package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/nn"
	"github.com/salt-ort/salt-ort/graph/optim"
)

// pairSpec is a GN2-shaped model small enough to compare pair heads on.
func pairSpec() Spec {
	s := GN2()
	s.Inputs[0].Vars = s.Inputs[0].Vars[:3]
	s.Inputs[0].MaxLen = 5
	s.Inputs[0].InitHidden = []int{8}
	s.EmbedDim = 8
	s.Encoder = nn.EncoderConfig{Layers: 2, Heads: 2, DenseRatio: 2, Activation: nn.ReLU, Registers: 1, OutDim: 6}
	for i := range s.Tasks {
		s.Tasks[i].Hidden = []int{7, 4}
	}
	s.Tasks[2].OriginWeighting = true
	return s
}

// pairGradient builds the loss and its flat gradient over the batch with
// the pair head broadcast (chunk false) or in chunks with recomputation,
// the encoder's layers recomputed too when recompute is set.
func pairGradient(t *testing.T, s Spec, batch int, chunk, recompute bool) *graph.Graph {
	t.Helper()
	g := graph.New("pairs")
	in := s.declareInputs(g, int64(batch), true)
	f := s.forwardWith(g, in, forwardOptions{training: true, chunkPairs: chunk})
	if recompute {
		recomputeLayers(g, "encoder/layer", s.Encoder.Layers)
	}
	total := s.totalLoss(g, s.losses(g, f, in), false, nil)
	s.predictions(g, f, func(Task) bool { return true })
	if _, err := optim.BuildGradient(g, total, optim.Step{Optimizer: optim.DefaultAdamW(), Master: graph.Float32}); err != nil {
		t.Fatal(err)
	}
	return g
}

// pairFeeds is a batch for pairSpec with 1 to 5 valid tracks per jet and
// vertex and origin labels in range.
func pairFeeds(s Spec, batch int, size int64) map[string][]float64 {
	r := rand.New(rand.NewPCG(7, 8))
	t, nv := s.Inputs[0].MaxLen, len(s.Inputs[0].Vars)
	normal := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = r.NormFloat64()
		}
		return v
	}
	feeds := map[string][]float64{
		JetsInput: normal(batch * len(s.JetVars)), "tracks": normal(batch * t * nv),
		"tracks/valid": make([]float64, batch*t), JetWeightInput: make([]float64, batch),
		TaskWeightsInput: {1, 0.5, 1.5}, LabelInput(s.Tasks[0].Name): make([]float64, batch),
		LabelInput(s.Tasks[1].Name): make([]float64, batch*t), LabelInput(s.Tasks[2].Name): make([]float64, batch*t),
		OriginInput(s.Tasks[2].Name): make([]float64, batch*t), optim.ParamsInput: make([]float64, size),
	}
	for j := 0; j < batch; j++ {
		feeds[JetWeightInput][j] = 1
		feeds[LabelInput(s.Tasks[0].Name)][j] = float64(r.IntN(4))
		n := 1 + r.IntN(t)
		for i := 0; i < t; i++ {
			k := j*t + i
			feeds[LabelInput(s.Tasks[1].Name)][k], feeds[LabelInput(s.Tasks[2].Name)][k], feeds[OriginInput(s.Tasks[2].Name)][k] = -1, -1, 0
			if i < n {
				feeds["tracks/valid"][k] = 1
				feeds[LabelInput(s.Tasks[1].Name)][k] = float64(r.IntN(8))
				feeds[LabelInput(s.Tasks[2].Name)][k] = float64(r.IntN(3) - 1)
				feeds[OriginInput(s.Tasks[2].Name)][k] = float64(r.IntN(8))
			}
		}
	}
	for i := range feeds[optim.ParamsInput] {
		feeds[optim.ParamsInput][i] = 0.4 * r.NormFloat64()
	}
	return feeds
}

// TestPairHeadInChunks checks the chunked pair head with recomputation
// (and the recomputed encoder) against the broadcast head: the same
// parameters, predictions and losses bit for bit, and the gradient within
// float32 rounding (it sums over the chunks in another order).
func TestPairHeadInChunks(t *testing.T) {
	saved := pairChunkElements
	defer func() { pairChunkElements = saved }()
	pairChunkElements = 2 * 5 * 5 * 7 // two jets per chunk: 3 chunks of 2, 2 and 1
	s := pairSpec()
	const batch = 5
	want := pairGradient(t, s, batch, false, false)
	got := pairGradient(t, s, batch, true, true)
	if len(got.Inputs()) != len(want.Inputs()) {
		t.Fatalf("%d inputs chunked, %d broadcast", len(got.Inputs()), len(want.Inputs()))
	}
	var size int64
	for _, in := range want.Inputs() {
		if in.Name() == optim.ParamsInput {
			size = in.Shape()[0]
		}
	}
	chunks := 0
	for _, n := range got.Nodes() {
		if n.Op == "Concat" && n.Outputs[0].Rank() == 4 && n.Outputs[0].Dim(-1) == 1 {
			chunks = len(n.Inputs)
		}
	}
	if chunks != 3 {
		t.Fatalf("the pair logits concatenate %d chunks, want 3", chunks)
	}
	feeds := pairFeeds(s, batch, size)
	a, err := graphtest.Compile(t, want, graph.ModelOptions{}).Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	b, err := graphtest.Compile(t, got, graph.ModelOptions{}).Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range a {
		g := b[name]
		if len(g) != len(w) {
			t.Fatalf("%s: %d values chunked, %d broadcast", name, len(g), len(w))
		}
		var scale float64
		for _, v := range w {
			scale = max(scale, math.Abs(v))
		}
		for i := range w {
			exact := name != optim.GradOutput
			if exact && g[i] != w[i] || !exact && math.Abs(g[i]-w[i]) > 1e-5*scale {
				t.Fatalf("%s[%d] = %.9g chunked, %.9g broadcast", name, i, g[i], w[i])
			}
		}
	}
}

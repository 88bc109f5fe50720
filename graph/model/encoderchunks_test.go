package model_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/optim"
)

// TestEncoderInChunks checks the gradient graph with the encoder run on
// chunks of jets (TrainOptions.ChunkEncoder) against the one with the
// whole batch, both with the encoder recomputed: the same inputs, random
// inputs and parameters, the same losses and predictions, and the
// gradient within float32 rounding (it sums over the chunks in another
// order). The kinds cover registers, dropout and drop-path masks (random
// inputs, which each chunk reads its rows of), the legacy encoder, edge
// features and feature-wise transformations of each layer's input.
func TestEncoderInChunks(t *testing.T) {
	// Two jets of 6 tokens (5 tracks and a register) at tiny's packed
	// width 3·8 per chunk: a batch of 5 runs as 2, 2 and 1 (GN3's gated
	// dense net is wider: one jet per chunk).
	defer model.SetEncoderChunkElementsForTest(2 * 6 * 24)()
	for _, c := range []struct {
		name string
		spec model.Spec
	}{
		{"GN2", tiny()},
		{"GN3 drop-path", tinyGN3()},
		{"legacy with dropout", tinyLegacy()},
		{"edges", tinyEdges()},
		{"parameterised", tinyParameterised()},
	} {
		t.Run(c.name, func(t *testing.T) {
			const batch = 5
			build := func(chunk bool) *graph.Graph {
				g, _, err := c.spec.GradientStep(model.TrainOptions{Batch: batch, Step: optim.Step{Optimizer: optim.DefaultAdamW()},
					Predictions: true, RecomputeEncoder: true, ChunkEncoder: chunk})
				if err != nil {
					t.Fatal(err)
				}
				return g
			}
			whole, chunked := build(false), build(true)
			if got := encoderReplicas(chunked); got < 3 || got > batch {
				t.Fatalf("the encoder runs in %d chunks, want 3 to %d", got, batch)
			}
			if got := encoderReplicas(whole); got != 0 {
				t.Fatalf("the whole-batch graph has %d encoder chunks", got)
			}
			if a, b := inputSignature(whole), inputSignature(chunked); a != b {
				t.Fatalf("inputs differ:\nwhole   %s\nchunked %s", a, b)
			}
			if len(whole.RandomInputs()) != len(chunked.RandomInputs()) {
				t.Fatalf("%d random inputs whole, %d chunked", len(whole.RandomInputs()), len(chunked.RandomInputs()))
			}
			r := rand.New(rand.NewPCG(5, 6))
			feeds := kindBatch(c.spec, whole, batch, r)
			for _, ri := range whole.RandomInputs() {
				m := make([]float64, ri.Tensor.Shape().Size())
				for i := range m {
					if r.Float64() >= ri.P {
						m[i] = 1 / (1 - ri.P)
					}
				}
				feeds[ri.Tensor.Name()] = m
			}
			for _, in := range whole.Inputs() {
				if in.Name() == optim.ParamsInput {
					feeds[optim.ParamsInput] = make([]float64, in.Shape()[0])
					for i := range feeds[optim.ParamsInput] {
						feeds[optim.ParamsInput][i] = 0.3 * r.NormFloat64()
					}
				}
			}
			want, err := graphtest.Compile(t, whole, graph.ModelOptions{}).Run(feeds)
			if err != nil {
				t.Fatal(err)
			}
			got, err := graphtest.Compile(t, chunked, graph.ModelOptions{}).Run(feeds)
			if err != nil {
				t.Fatal(err)
			}
			for name, w := range want {
				g := got[name]
				if len(g) != len(w) {
					t.Fatalf("%s: %d values chunked, %d whole", name, len(g), len(w))
				}
				var scale float64
				for _, v := range w {
					scale = max(scale, math.Abs(v))
				}
				for i := range w {
					if math.Abs(g[i]-w[i]) > 1e-5*scale {
						t.Fatalf("%s[%d] = %.9g chunked, %.9g whole", name, i, g[i], w[i])
					}
				}
			}
		})
	}
}

// encoderReplicas counts the chunks the encoder of g runs in: the scopes
// chunk<k>/encoder/ its nodes are named under.
func encoderReplicas(g *graph.Graph) int {
	chunks := map[string]bool{}
	for _, n := range g.Nodes() {
		name := strings.TrimPrefix(strings.TrimPrefix(n.Name, "grad/"), "recompute/")
		if i := strings.Index(name, "/encoder/"); i > 0 && strings.HasPrefix(name, "chunk") {
			chunks[name[:i]] = true
		}
	}
	return len(chunks)
}

// inputSignature lists g's inputs with their types and shapes.
func inputSignature(g *graph.Graph) string {
	var b strings.Builder
	for _, in := range g.Inputs() {
		b.WriteString(in.Name() + ":" + in.DType().String() + in.Shape().String() + " ")
	}
	return b.String()
}

package explain

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
)

func TestGaussLegendre(t *testing.T) {
	s3 := 1 / math.Sqrt(3)
	tests := []struct {
		n      int
		alphas []float64
		ws     []float64
	}{
		{1, []float64{0.5}, []float64{1}},
		{2, []float64{(1 - s3) / 2, (1 + s3) / 2}, []float64{0.5, 0.5}},
		{3, []float64{(1 - math.Sqrt(0.6)) / 2, 0.5, (1 + math.Sqrt(0.6)) / 2}, []float64{5.0 / 18, 8.0 / 18, 5.0 / 18}},
	}
	for _, tc := range tests {
		q, err := GaussLegendre(tc.n)
		if err != nil {
			t.Fatal(err)
		}
		for i := range tc.alphas {
			if math.Abs(q.Alphas[i]-tc.alphas[i]) > 1e-12 || math.Abs(q.Weights[i]-tc.ws[i]) > 1e-12 {
				t.Errorf("n=%d: point %d = (%v, %v), want (%v, %v)", tc.n, i, q.Alphas[i], q.Weights[i], tc.alphas[i], tc.ws[i])
			}
		}
	}
	// A 50-point rule integrates polynomials of degree 99 exactly.
	q, _ := GaussLegendre(50)
	got := 0.0
	for i, a := range q.Alphas {
		got += q.Weights[i] * 100 * math.Pow(a, 99)
	}
	if math.Abs(got-1) > 1e-12 {
		t.Errorf("∫₀¹ 100 a^99 da = %v, want 1", got)
	}
	if _, err := GaussLegendre(0); err == nil {
		t.Error("0 steps accepted")
	}
}

// toyNet is out = tanh?(jets·W + Σ_t tracks_t·V) with masks: linear when
// squash is false, then integrated gradients are exactly
// W·(x − x') and V·(x − x').
func toyNet(t *testing.T, batch, tracks int, W, V [][]float64, squash bool) Net {
	t.Helper()
	g := graph.New("toy")
	nj, nv, k := len(W), len(V), len(W[0])
	jets := g.Input("jets", graph.Float32, graph.Shape{int64(batch), int64(nj)})
	trk := g.Input("tracks", graph.Float32, graph.Shape{int64(batch), int64(tracks), int64(nv)})
	valid := g.Input("tracks/valid", graph.Bool, graph.Shape{int64(batch), int64(tracks)})
	flat := func(m [][]float64) []float64 {
		var out []float64
		for _, r := range m {
			out = append(out, r...)
		}
		return out
	}
	w := g.Const("W", graph.Float32, graph.Shape{int64(nj), int64(k)}, flat(W))
	v := g.Const("V", graph.Float32, graph.Shape{int64(nv), int64(k)}, flat(V))
	masked := g.Where(g.Unsqueeze(valid, -1), trk, g.Scalar(graph.Float32, 0))
	out := g.Add(g.MatMul(jets, w), g.ReduceSum(g.MatMul(masked, v), []int{1}, false))
	if squash {
		out = g.Softmax(out, 1)
	}
	g.Output("out", out)
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	var outs []Output
	for c := range k {
		outs = append(outs, Output{Name: string(rune('a' + c)), Task: "toy", Tensor: out, Column: c})
	}
	return Net{Graph: g, Inputs: []*graph.Tensor{jets, trk}, Outputs: outs}
}

// randomJets returns n jets of the toy's inputs, jet j with the first
// 1 + j%tracks tracks valid.
func randomJets(r *rand.Rand, n, nj, tracks, nv int) *Jets {
	js := &Jets{N: n, Float: map[string][]float32{}, Bool: map[string][]bool{}}
	for j := range n {
		for range nj {
			js.Float["jets"] = append(js.Float["jets"], float32(r.NormFloat64()))
		}
		for tr := range tracks {
			ok := tr <= j%tracks
			js.Bool["tracks/valid"] = append(js.Bool["tracks/valid"], ok)
			for range nv {
				x := float32(0)
				if ok {
					x = float32(r.NormFloat64())
				}
				js.Float["tracks"] = append(js.Float["tracks"], x)
			}
		}
	}
	return js
}

// TestLinearExact checks integrated gradients on a linear model, where
// they are exact: attribution = weight × (input − baseline input),
// averaged over the baselines.
func TestLinearExact(t *testing.T) {
	W := [][]float64{{0.5, -1}, {2, 0.25}, {-0.75, 1.5}}
	V := [][]float64{{1.25, -0.5}, {-2, 0.75}}
	const tracks, batch = 4, 16
	a, err := newAttributor(graphtest.OpenRuntime(t), toyNet(t, batch, tracks, W, V, false), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	js := randomJets(rand.New(rand.NewPCG(1, 2)), 12, len(W), tracks, len(V))
	q, _ := GaussLegendre(7)
	for _, tc := range []struct {
		jet       int
		baselines []int
	}{{0, []int{4}}, {1, []int{5, 9}}, {3, []int{7, 11, 3}}, {6, []int{2, 10, 6, 2, 10}}} {
		at, err := a.integrate(js, tc.jet, js, tc.baselines, q)
		if err != nil {
			t.Fatal(err)
		}
		for k := range 2 {
			for v := range W {
				want := 0.0
				for _, b := range tc.baselines {
					want += W[v][k] * float64(js.Float["jets"][tc.jet*len(W)+v]-js.Float["jets"][b*len(W)+v]) / float64(len(tc.baselines))
				}
				if got := at[k][0][v]; math.Abs(got-want) > 1e-5 {
					t.Errorf("jet %d output %d jet var %d: %v, want %v", tc.jet, k, v, got, want)
				}
			}
			for e := range tracks * len(V) {
				v, tr := e%len(V), e/len(V)
				want := 0.0
				if js.Bool["tracks/valid"][tc.jet*tracks+tr] {
					for _, b := range tc.baselines {
						want += V[v][k] * float64(js.Float["tracks"][tc.jet*tracks*len(V)+e]-js.Float["tracks"][b*tracks*len(V)+e]) / float64(len(tc.baselines))
					}
				}
				if got := at[k][1][e]; math.Abs(got-want) > 1e-5 {
					t.Errorf("jet %d output %d track %d var %d: %v, want %v", tc.jet, k, tr, v, got, want)
				}
			}
		}
	}
}

// TestCompleteness checks Σ attributions = F(x) − F(x') on a nonlinear
// (softmax) toy within the quadrature's error.
func TestCompleteness(t *testing.T) {
	W := [][]float64{{0.5, -1, 0.2}, {2, 0.25, -1}}
	V := [][]float64{{1.25, -0.5, 0.3}, {-2, 0.75, 1}, {0.1, 0.2, -0.3}}
	const tracks = 3
	a, err := newAttributor(graphtest.OpenRuntime(t), toyNet(t, 32, tracks, W, V, true), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	js := randomJets(rand.New(rand.NewPCG(3, 4)), 9, len(W), tracks, len(V))
	preds, err := a.predict(js)
	if err != nil {
		t.Fatal(err)
	}
	q, _ := GaussLegendre(20)
	for j := range 6 {
		b := j + 3 // same number of valid tracks
		at, err := a.integrate(js, j, js, []int{b}, q)
		if err != nil {
			t.Fatal(err)
		}
		for k := range 3 {
			if d := sum(at[k]) - (preds[j][k] - preds[b][k]); math.Abs(d) > 1e-5 {
				t.Errorf("jet %d output %d: Σ attributions − ΔF = %v", j, k, d)
			}
		}
	}
}

package model

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/nn"
)

// pairDropoutHead builds a pair head with dropout p over pooled [b, dp]
// and x [b, t, dx] inputs, in chunks of two jets, with the logits as the
// output "logits".
func pairDropoutHead(t *testing.T, b, tr, dp, dx int64, sizes []int, p float64) *graph.Graph {
	t.Helper()
	saved := pairChunkElements
	defer func() { pairChunkElements = saved }()
	width := dp + 2*dx
	pairChunkElements = 2 * tr * tr * width
	g := graph.New("pairdrop")
	pooled := g.Input("pooled", graph.Float32, graph.Shape{b, dp})
	x := g.Input("x", graph.Float32, graph.Shape{b, tr, dx})
	g.Output("logits", pairHead(g, "vtx", pooled, x, sizes, nn.ReLU, p))
	if g.Err() != nil {
		t.Fatal(g.Err())
	}
	return g
}

// TestPairHeadDropoutMatchesLoops checks the vertexing head with dropout
// against loops over the pairs that drop Salt's concatenation [g, x_i, x_j]
// and every hidden layer's input with the masks the uniform inputs define.
func TestPairHeadDropoutMatchesLoops(t *testing.T) {
	const b, tr, dp, dx, p = 5, 4, 3, 2, 0.3
	sizes := []int{6, 5, 1}
	g := pairDropoutHead(t, b, tr, dp, dx, sizes, p)
	r := rand.New(rand.NewPCG(3, 4))
	feeds := map[string][]float64{}
	normal := func(n int64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(float32(r.NormFloat64()))
		}
		return v
	}
	feeds["pooled"], feeds["x"] = normal(b*dp), normal(b*tr*dx)
	params := map[string][]float64{}
	for _, prm := range g.Params() {
		params[prm.Name()] = normal(prm.Shape().Size())
		feeds[prm.Name()] = params[prm.Name()]
	}
	uniform := map[string][]float64{}
	if n := len(g.RandomInputs()); n != 3*len(sizes) {
		t.Fatalf("%d random inputs, want 3 per layer", n)
	}
	for _, ri := range g.RandomInputs() {
		if ri.Kind != graph.RandomUniform {
			t.Fatalf("random input %s is %q, want uniform", ri.Tensor.Name(), ri.Kind)
		}
		v := make([]float64, ri.Tensor.Shape().Size())
		for k := range v {
			v[k] = float64(float32(r.Float64()))
		}
		uniform[ri.Tensor.Name()] = v
		feeds[ri.Tensor.Name()] = v
	}
	out, err := graphtest.Compile(t, g, graph.ModelOptions{}).Run(feeds)
	if err != nil {
		t.Fatal(err)
	}

	// keep is the mask of layer l at (jet, i, j, feature f of width w),
	// computed in float32 in the graph's order.
	keep := func(l int, w int64, jet, i, j, f int64) float64 {
		pre := "vtx/dropout/" + string(rune('0'+l))
		row := float32(uniform[pre+"/row"][(jet*tr+i)*w+f])
		col := float32(uniform[pre+"/col"][(jet*tr+j)*w+f])
		pair := float32(uniform[pre+"/pair"][(jet*tr+i)*tr+j])
		s := (row + col) + pair
		if s-float32(math.Floor(float64(s))) >= float32(p) {
			return 1 / (1 - p)
		}
		return 0
	}
	dropped, total := 0, 0
	for jet := int64(0); jet < b; jet++ {
		for i := int64(0); i < tr; i++ {
			for j := int64(0); j < tr; j++ {
				in := append(append(append([]float64{}, feeds["pooled"][jet*dp:(jet+1)*dp]...),
					feeds["x"][(jet*tr+i)*dx:(jet*tr+i+1)*dx]...), feeds["x"][(jet*tr+j)*dx:(jet*tr+j+1)*dx]...)
				for l, n := range sizes {
					w := int64(len(in))
					for f := range in {
						m := keep(l, w, jet, i, j, int64(f))
						if m == 0 {
							dropped++
						}
						total++
						in[f] *= m
					}
					weight, bias := params["vtx/"+string(rune('0'+l))+"/weight"], params["vtx/"+string(rune('0'+l))+"/bias"]
					next := make([]float64, n)
					for o := range next {
						next[o] = bias[o]
						for f, v := range in {
							next[o] += v * weight[f*n+o]
						}
						if l < len(sizes)-1 {
							next[o] = max(next[o], 0)
						}
					}
					in = next
				}
				got := out["logits"][(jet*tr+i)*tr+j]
				if math.Abs(got-in[0]) > 1e-5*math.Max(1, math.Abs(in[0])) {
					t.Fatalf("jet %d pair (%d, %d): logit %.7g, loops %.7g", jet, i, j, got, in[0])
				}
			}
		}
	}
	if frac := float64(dropped) / float64(total); math.Abs(frac-p) > 0.05 {
		t.Errorf("%.3f of the layer inputs dropped, want about %g", frac, p)
	}
}

// TestPairDropoutMaskDistribution checks the pair masks' statistics: every
// element 0 or 1/(1−p), kept with probability 1−p, and two features of a
// pair, or one feature of two pairs of a row, kept together with
// probability (1−p)², and of four pairs (i, j), (i, j+1), (i+1, j),
// (i+1, j+1) with (1−p)⁴, as independent masks are.
func TestPairDropoutMaskDistribution(t *testing.T) {
	for _, p := range []float64{0.1, 0.5} {
		t.Run(strconv.FormatFloat(p, 'g', -1, 64), func(t *testing.T) { checkPairDropoutMask(t, p) })
	}
}

func checkPairDropoutMask(t *testing.T, p float64) {
	const b, tr, f = 20, 16, 12
	g := graph.New("mask")
	u := nn.NewPairUniforms(g, "drop", b, tr, f)
	g.Output("mask", nn.PairDropoutMask(g, u, p, graph.Float32))
	r := rand.New(rand.NewPCG(5, 6))
	feeds := map[string][]float64{}
	for _, ri := range g.RandomInputs() {
		v := make([]float64, ri.Tensor.Shape().Size())
		for k := range v {
			v[k] = r.Float64()
		}
		feeds[ri.Tensor.Name()] = v
	}
	out, err := graphtest.Compile(t, g, graph.ModelOptions{}).Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	m := out["mask"]
	kept := func(jet, i, j, k int) bool { return m[((jet*tr+i)*tr+j)*f+k] != 0 }
	var n, nKept, nFeat, nFeatKept, nPair, nPairKept, nBlock, nBlockKept float64
	for k, v := range m {
		if v != 0 && math.Abs(v-1/(1-p)) > 1e-6 {
			t.Fatalf("mask[%d] = %g, want 0 or %g", k, v, 1/(1-p))
		}
	}
	for jet := 0; jet < b; jet++ {
		for i := 0; i < tr; i++ {
			for j := 0; j < tr; j++ {
				for k := 0; k < f; k++ {
					n++
					if kept(jet, i, j, k) {
						nKept++
					}
					if k+1 < f {
						nFeat++
						if kept(jet, i, j, k) && kept(jet, i, j, k+1) {
							nFeatKept++
						}
					}
					if j+1 < tr {
						nPair++
						if kept(jet, i, j, k) && kept(jet, i, j+1, k) {
							nPairKept++
						}
					}
					if i+1 < tr && j+1 < tr {
						nBlock++
						if kept(jet, i, j, k) && kept(jet, i, j+1, k) && kept(jet, i+1, j, k) && kept(jet, i+1, j+1, k) {
							nBlockKept++
						}
					}
				}
			}
		}
	}
	// Binomial standard errors; 5σ bounds.
	for _, c := range []struct {
		what      string
		hits, all float64
		want      float64
	}{
		{"kept", nKept, n, 1 - p},
		{"two features of a pair kept", nFeatKept, nFeat, (1 - p) * (1 - p)},
		{"one feature of neighbouring pairs kept", nPairKept, nPair, (1 - p) * (1 - p)},
		{"one feature of a 2×2 block of pairs kept", nBlockKept, nBlock, math.Pow(1-p, 4)},
	} {
		got := c.hits / c.all
		if sigma := math.Sqrt(c.want * (1 - c.want) / c.all); math.Abs(got-c.want) > 5*sigma {
			t.Errorf("%s: fraction %.4f, want %.4f ± %.4f", c.what, got, c.want, 5*sigma)
		}
	}
}

// TestPairHeadDropoutGradient checks the gradient of the dropped-out pair
// head, in chunks with recomputation, against finite differences.
func TestPairHeadDropoutGradient(t *testing.T) {
	saved := pairChunkElements
	defer func() { pairChunkElements = saved }()
	pairChunkElements = 2 * 3 * 3 * 7 // chunks of two jets: 2 and 1
	graphtest.GradCheck{
		Vars: []graphtest.Var{{Name: "pooled", Shape: graph.Shape{3, 3}}, {Name: "x", Shape: graph.Shape{3, 3, 2}}},
		Build: func(g *graph.Graph, v, _ []*graph.Tensor) *graph.Tensor {
			return pairHead(g, "vtx", v[0], v[1], []int{4, 1}, nn.Sigmoid, 0.4)
		},
	}.Run(t)
}

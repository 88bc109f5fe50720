package graph_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
)

// recomputeMLP builds loss = Σ (relu(relu(x·W1)·W2)·W3)² over two chunks of
// the rows of x, each chunk's hidden tensors marked for recomputation when
// recompute is set, and the gradients with respect to x and the weights.
func recomputeMLP(recompute bool) (*graph.Graph, map[*graph.Tensor]bool) {
	g := graph.New("mlp")
	x := g.Input("x", graph.Float32, graph.Shape{6, 3})
	w1 := g.Input("w1", graph.Float32, graph.Shape{3, 5})
	w2 := g.Input("w2", graph.Float32, graph.Shape{5, 4})
	w3 := g.Input("w3", graph.Float32, graph.Shape{4, 1})
	marked := map[*graph.Tensor]bool{}
	var outs []*graph.Tensor
	for _, c := range g.Split(x, 0, 4, 2) {
		first := len(g.Nodes())
		y := g.MatMul(g.Relu(g.MatMul(g.Relu(g.MatMul(c, w1)), w2)), w3)
		var hidden []*graph.Tensor
		for _, n := range g.Nodes()[first : len(g.Nodes())-1] {
			hidden = append(hidden, n.Outputs...)
		}
		if recompute {
			g.Recompute(hidden...)
			for _, h := range hidden {
				marked[h] = true
			}
		}
		outs = append(outs, y)
	}
	y := g.Concat(0, outs...)
	loss := g.ReduceSum(g.Mul(y, y), []int{0, 1}, false)
	grads, err := g.Grad(loss, []*graph.Tensor{x, w1, w2, w3})
	if err != nil {
		panic(err)
	}
	g.Output("loss", loss)
	for i, name := range []string{"dx", "dw1", "dw2", "dw3"} {
		g.Output(name, grads[i])
	}
	return g, marked
}

func TestRecomputeGradientsReadCopies(t *testing.T) {
	g, marked := recomputeMLP(true)
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	copies, barriers := 0, 0
	for _, n := range g.Nodes() {
		if strings.HasPrefix(n.Name, "recompute/") {
			copies++
			if n.Op == "Where" {
				barriers++
			}
			continue
		}
		if !strings.HasPrefix(n.Name, "grad/") {
			continue
		}
		for _, in := range n.Inputs {
			if marked[in] {
				t.Errorf("gradient node %s reads the forward tensor %s, not its recomputed copy", n.Name, in.Name())
			}
		}
	}
	if copies == 0 {
		t.Fatal("no recomputed copies in the graph")
	}
	// The second chunk processed waits for the first one's gradients.
	if barriers != 1 {
		t.Errorf("%d ordering barriers, want 1 (between the two chunks)", barriers)
	}
}

func TestRecomputeGradientsBitForBit(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	feeds := map[string][]float64{}
	for name, n := range map[string]int{"x": 18, "w1": 15, "w2": 20, "w3": 4} {
		v := make([]float64, n)
		for i := range v {
			v[i] = r.NormFloat64()
		}
		feeds[name] = v
	}
	stored, _ := recomputeMLP(false)
	recomputed, _ := recomputeMLP(true)
	want, err := graphtest.Compile(t, stored, graph.ModelOptions{}).Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	got, err := graphtest.Compile(t, recomputed, graph.ModelOptions{}).Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range want {
		for i := range w {
			if got[name][i] != w[i] {
				t.Errorf("%s[%d] = %v recomputed, %v stored", name, i, got[name][i], w[i])
			}
		}
	}
}

func TestRecomputeRejectsNonNodeOutputs(t *testing.T) {
	g := graph.New("bad")
	x := g.Input("x", graph.Float32, graph.Shape{2})
	g.Recompute(x)
	if err := g.Err(); err == nil || !strings.Contains(err.Error(), "not a node output") {
		t.Errorf("err = %v, want one saying x is not a node output", err)
	}
}

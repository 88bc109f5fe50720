package graph_test

import (
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
)

// replicated builds y = relu(x·W + b) ⊙ m over a batch of 5 rows, whole or
// in replicas of 2, 2 and 1 rows, m a dropout mask.
func replicated(parts []int64) *graph.Graph {
	g := graph.New("replicas")
	x := g.Input("x", graph.Float32, graph.Shape{5, 3})
	layer := func(x *graph.Tensor) *graph.Tensor {
		defer g.Scope("dense")()
		w := g.Param("weight", graph.Shape{3, 4}, graph.InitUniform(1))
		b := g.Param("bias", graph.Shape{4}, graph.InitUniform(1))
		h := g.Relu(g.Add(g.MatMul(x, w), b))
		return g.Mul(h, g.Random("dropout", graph.Float32, h.Shape(), graph.RandomDropout, 0.1))
	}
	if len(parts) == 1 {
		g.Output("y", layer(x))
		return g
	}
	var ys []*graph.Tensor
	start := int64(0)
	for i, c := range g.Split(x, 0, parts...) {
		pop := g.Replica("chunk"+string(rune('0'+i)), graph.Rows{Start: start, Len: parts[i], Total: 5})
		ys = append(ys, layer(c))
		pop()
		start += parts[i]
	}
	g.Output("y", g.Concat(0, ys...))
	return g
}

// TestReplicaSharesParamsAndRandomInputs checks that replicas of a block
// declare its parameters and random inputs once, under the block's names
// and with the whole batch's shape, and that their nodes keep the
// replica's scope.
func TestReplicaSharesParamsAndRandomInputs(t *testing.T) {
	whole, parts := replicated([]int64{5}), replicated([]int64{2, 2, 1})
	for _, g := range []*graph.Graph{whole, parts} {
		if err := g.Err(); err != nil {
			t.Fatal(err)
		}
	}
	names := func(g *graph.Graph) (params, random []string) {
		for _, p := range g.Params() {
			params = append(params, p.Tensor.Name()+p.Tensor.Shape().String())
		}
		for _, r := range g.RandomInputs() {
			random = append(random, r.Tensor.Name()+r.Tensor.Shape().String())
		}
		return params, random
	}
	wp, wr := names(whole)
	pp, pr := names(parts)
	if strings.Join(wp, " ") != strings.Join(pp, " ") || strings.Join(wr, " ") != strings.Join(pr, " ") {
		t.Fatalf("whole: params %v random %v; replicas: params %v random %v", wp, wr, pp, pr)
	}
	scopes := map[string]bool{}
	for _, n := range parts.Nodes() {
		if i := strings.Index(n.Name, "/dense/"); i > 0 {
			scopes[n.Name[:i]] = true
		}
	}
	if len(scopes) != 3 || !scopes["chunk0"] || !scopes["chunk2"] {
		t.Fatalf("replica scopes of the nodes: %v", scopes)
	}
}

func TestReplicaRefusals(t *testing.T) {
	for _, c := range []struct {
		name, want string
		build      func(g *graph.Graph)
	}{
		{"nested", "inside replica", func(g *graph.Graph) {
			g.Replica("a", graph.Rows{Len: 1, Total: 2})
			g.Replica("b", graph.Rows{Len: 1, Total: 2})
		}},
		{"rows outside the batch", "rows [1, 3) of 2", func(g *graph.Graph) {
			g.Replica("a", graph.Rows{Start: 1, Len: 2, Total: 2})
		}},
		{"another shape", "replica declares it as float32 [3, 3]", func(g *graph.Graph) {
			g.Param("w", graph.Shape{3, 4}, graph.InitUniform(1))
			g.Replica("a", graph.Rows{Len: 1, Total: 2})
			g.Param("w", graph.Shape{3, 3}, graph.InitUniform(1))
		}},
		{"random input without the replica's rows", "does not have the replica's 1 rows first", func(g *graph.Graph) {
			g.Replica("a", graph.Rows{Len: 1, Total: 2})
			g.Random("m", graph.Float32, graph.Shape{2, 3}, graph.RandomDropout, 0.5)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := graph.New("refusals")
			c.build(g)
			if err := g.Err(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
		})
	}
}

package graph

import (
	"slices"
	"testing"
)

// TestSinks checks which gradients a recompute barrier depends on: those
// no other of them is computed from (within sinkDepth nodes), in order.
func TestSinks(t *testing.T) {
	g := New("sinks")
	x := g.Input("x", Float32, Shape{3})
	a := g.Relu(x)
	b := g.Neg(a)    // from a
	c := g.Add(b, x) // from b, and a two nodes up
	d := g.Relu(x)   // beside the chain
	far := g.Relu(x) // far is 5 nodes up from e: too far to see
	e := g.Neg(g.Neg(g.Neg(g.Neg(g.Neg(far)))))
	got := sinks([]*Tensor{a, b, c, d, far, e})
	if want := []*Tensor{c, d, far, e}; !slices.Equal(got, want) {
		names := func(ts []*Tensor) (n []string) {
			for _, t := range ts {
				n = append(n, t.Name())
			}
			return n
		}
		t.Fatalf("sinks = %v, want %v", names(got), names(want))
	}
}

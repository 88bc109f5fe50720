package graph_test

import (
	"testing"

	"github.com/salt-ort/salt-ort/graph"
)

func TestPlanMemory(t *testing.T) {
	cases := []struct {
		name              string
		build             func(g *graph.Graph)
		input, peak, cnst int64
		node              string
	}{
		{"chain frees as it goes", func(g *graph.Graph) {
			x := g.Input("x", graph.Float32, graph.Shape{100})
			g.Output("y", g.Neg(g.Relu(g.Exp(x)))) // 400 B each, two alive at once
		}, 400, 800, 0, "Relu"},
		{"a tensor kept for a later reader", func(g *graph.Graph) {
			x := g.Input("x", graph.Float32, graph.Shape{100})
			a := g.Exp(x)
			b := g.Neg(g.Relu(a))
			g.Output("y", g.Add(a, b)) // a alive throughout: a, relu, neg → a, neg, add
		}, 400, 1200, 0, "Neg"},
		{"views allocate nothing", func(g *graph.Graph) {
			x := g.Input("x", graph.Float32, graph.Shape{10, 10})
			a := g.Exp(x)
			g.Output("y", g.Neg(g.Reshape(a, 100)))
		}, 400, 800, 8, "Neg"}, // the shape constant of Reshape
		{"dynamic dimensions take the given size", func(g *graph.Graph) {
			x := g.Input("x", graph.Float32, graph.Shape{-1, 10})
			g.Output("y", g.Mul(g.Exp(x), g.Const("c", graph.Float32, graph.Shape{10}, make([]float64, 10))))
		}, 120, 240, 40, "Mul"},
	}
	for _, c := range cases {
		g := graph.New("plan")
		c.build(g)
		if err := g.Err(); err != nil {
			t.Fatal(err)
		}
		p := g.PlanMemory(3)
		if p.InputBytes != c.input || p.PeakBytes != c.peak || p.ConstBytes != c.cnst || p.PeakNode != c.node {
			t.Errorf("%s: inputs %d, peak %d at %s, constants %d; want %d, %d at %s, %d",
				c.name, p.InputBytes, p.PeakBytes, p.PeakNode, p.ConstBytes, c.input, c.peak, c.node, c.cnst)
		}
		if p.TotalBytes() != c.input+c.peak+c.cnst {
			t.Errorf("%s: total %d", c.name, p.TotalBytes())
		}
	}
}

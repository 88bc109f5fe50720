package graph_test

import (
	"bytes"
	"math"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
)

// flattenGraph is tanh(x·w + b)² summed, with w and b of type param read
// from a flat vector of type master, and the gradient with respect to it.
func flattenGraph(t *testing.T, param, master graph.DType, same bool) *graph.Graph {
	t.Helper()
	g := graph.New("flatten")
	x := g.Input("x", param, S{2, 3})
	w := g.ParamOf("w", param, S{3, 2}, graph.InitUniform(1))
	b := g.ParamOf("b", param, S{2}, graph.InitUniform(1))
	y := g.Tanh(g.Add(g.MatMul(x, w), b))
	loss := g.ReduceSum(g.Mul(y, y), []int{0, 1}, false)
	g.Output("loss", loss)
	var flat *T
	var views []*T
	if same {
		flat, views, _ = g.FlattenParams("params")
	} else {
		flat, views, _ = g.FlattenParamsAs("params", master)
	}
	if flat.DType() != master {
		t.Fatalf("flat vector is %s, want %s", flat.DType(), master)
	}
	grads, err := g.Grad(loss, views)
	if err != nil {
		t.Fatal(err)
	}
	for i, gr := range grads {
		if gr.DType() != master {
			t.Fatalf("gradient %d is %s, want the master type %s", i, gr.DType(), master)
		}
		grads[i] = g.Reshape(gr, -1)
	}
	g.Output("grad", g.Concat(0, grads...))
	return g
}

// TestFlattenParamsAs checks master-weight flattening: with one type it is
// FlattenParams byte for byte; with float64 parameters in a float32 vector
// the gradient is the float64 gradient rounded to float32 once, so the
// casts pass the gradient through exactly.
func TestFlattenParamsAs(t *testing.T) {
	cases := []struct {
		name          string
		param, master graph.DType
	}{
		{"float32/float32", graph.Float32, graph.Float32},
		{"float64/float64", graph.Float64, graph.Float64},
		{"float64 in float32", graph.Float64, graph.Float32},
		{"float32 in float64", graph.Float32, graph.Float64},
	}
	feeds := map[string][]float64{
		"x":      {0.5, -1, 0.25, 2, 0.75, -0.5},
		"params": {0.125, -0.5, 0.375, 0.25, -0.75, 0.5, 0.0625, -0.25},
	}
	// The float64 reference: every value above is exact in float32.
	ref, err := graphtest.Compile(t, flattenGraph(t, graph.Float64, graph.Float64, true), graph.ModelOptions{}).Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := flattenGraph(t, c.param, c.master, false)
			got, err := g.Marshal(graph.ModelOptions{})
			if err != nil {
				t.Fatal(err)
			}
			casts := 0
			for _, n := range g.Nodes() {
				if n.Op == "Cast" {
					casts++
				}
			}
			if c.param == c.master {
				want, err := flattenGraph(t, c.param, c.master, true).Marshal(graph.ModelOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatal("FlattenParamsAs with the parameters' type differs from FlattenParams")
				}
			}
			want := 0
			if c.param != c.master {
				want = 4 // per parameter, one for the forward pass and one for its gradient
			}
			if casts != want {
				t.Errorf("%d Cast nodes, want %d", casts, want)
			}
			out, err := graphtest.Compile(t, g, graph.ModelOptions{}).Run(feeds)
			if err != nil {
				t.Fatal(err)
			}
			tol := 1e-15
			if c.param == graph.Float32 {
				tol = 1e-6 // computed in float32
			}
			for i, v := range out["grad"] {
				w := ref["grad"][i]
				if c.param == graph.Float64 && c.master == graph.Float32 {
					w = float64(float32(w)) // one rounding, at the cast
				}
				if math.Abs(v-w) > tol*math.Max(1, math.Abs(w)) {
					t.Errorf("grad[%d] = %.17g, want %.17g", i, v, w)
				}
			}
		})
	}
}

func TestFlattenParamsMixedTypesIsAnError(t *testing.T) {
	g := graph.New("mixed")
	x := g.Input("x", graph.Float32, S{2})
	a := g.ParamOf("a", graph.Float32, S{2}, graph.InitZeros())
	b := g.ParamOf("b", graph.Float64, S{2}, graph.InitZeros())
	g.Output("y", g.Add(g.Mul(x, a), g.Cast(b, graph.Float32)))
	g.FlattenParams("params")
	if g.Err() == nil {
		t.Fatal("FlattenParams of float32 and float64 parameters succeeded, want an error")
	}
}

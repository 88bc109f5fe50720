package graph_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
)

type (
	G = graph.Graph
	T = graph.Tensor
	S = graph.Shape
)

func positive(r *rand.Rand) float64 { return 0.5 + r.Float64()*2 }
func awayFromZero(r *rand.Rand) float64 {
	v := 0.2 + r.Float64()*1.5
	if r.IntN(2) == 0 {
		return -v
	}
	return v
}

func vars(shapes ...S) []graphtest.Var {
	v := make([]graphtest.Var, len(shapes))
	for i, s := range shapes {
		v[i] = graphtest.Var{Name: "x" + string(rune('0'+i)), Shape: s}
	}
	return v
}

func TestOperatorGradients(t *testing.T) {
	one := func(f func(g *G, x *T) *T) func(g *G, v, _ []*T) *T {
		return func(g *G, v, _ []*T) *T { return f(g, v[0]) }
	}
	two := func(f func(g *G, a, b *T) *T) func(g *G, v, _ []*T) *T {
		return func(g *G, v, _ []*T) *T { return f(g, v[0], v[1]) }
	}
	cases := []struct {
		name  string
		check graphtest.GradCheck
	}{
		{"Add/broadcast", graphtest.GradCheck{Vars: vars(S{3, 4}, S{4}), Build: two((*G).Add)}},
		{"Sub/broadcast", graphtest.GradCheck{Vars: vars(S{2, 3, 4}, S{3, 1}), Build: two((*G).Sub)}},
		{"Mul/broadcast", graphtest.GradCheck{Vars: vars(S{2, 3}, S{2, 1}), Build: two((*G).Mul)}},
		{"Div", graphtest.GradCheck{Vars: []graphtest.Var{{Name: "a", Shape: S{3, 4}}, {Name: "b", Shape: S{4}, Gen: awayFromZero}}, Build: two((*G).Div)}},
		{"Pow", graphtest.GradCheck{Vars: []graphtest.Var{{Name: "a", Shape: S{3, 2}, Gen: positive}, {Name: "b", Shape: S{2}}}, Build: two((*G).Pow)}},
		{"Max", graphtest.GradCheck{Vars: vars(S{4, 3}, S{4, 3}), Build: two((*G).Max)}},
		{"Min/broadcast", graphtest.GradCheck{Vars: vars(S{4, 3}, S{3}), Build: two((*G).Min)}},
		{"Where", graphtest.GradCheck{
			Vars:  vars(S{2, 3}, S{3}),
			Fixed: []graphtest.Fixed{{Name: "c", DType: graph.Bool, Shape: S{2, 3}, Values: []float64{1, 0, 1, 0, 0, 1}}},
			Build: func(g *G, v, f []*T) *T { return g.Where(f[0], v[0], v[1]) },
		}},
		{"Sum", graphtest.GradCheck{Vars: vars(S{2, 3}, S{2, 3}, S{3}), Build: func(g *G, v, _ []*T) *T { return g.Sum(v...) }}},
		{"Neg", graphtest.GradCheck{Vars: vars(S{5}), Build: one((*G).Neg)}},
		{"Abs", graphtest.GradCheck{Vars: []graphtest.Var{{Name: "x", Shape: S{6}, Gen: awayFromZero}}, Build: one((*G).Abs)}},
		{"Exp", graphtest.GradCheck{Vars: vars(S{2, 3}), Build: one((*G).Exp)}},
		{"Log", graphtest.GradCheck{Vars: []graphtest.Var{{Name: "x", Shape: S{6}, Gen: positive}}, Build: one((*G).Log)}},
		{"Sqrt", graphtest.GradCheck{Vars: []graphtest.Var{{Name: "x", Shape: S{6}, Gen: positive}}, Build: one((*G).Sqrt)}},
		{"Reciprocal", graphtest.GradCheck{Vars: []graphtest.Var{{Name: "x", Shape: S{6}, Gen: awayFromZero}}, Build: one((*G).Reciprocal)}},
		{"Relu", graphtest.GradCheck{Vars: []graphtest.Var{{Name: "x", Shape: S{3, 4}, Gen: awayFromZero}}, Build: one((*G).Relu)}},
		{"Sigmoid", graphtest.GradCheck{Vars: vars(S{3, 4}), Build: one((*G).Sigmoid)}},
		{"Tanh", graphtest.GradCheck{Vars: vars(S{3, 4}), Build: one((*G).Tanh)}},
		// ONNX Runtime has no float64 CPU kernels for Erf and Softplus.
		{"Erf/float32", graphtest.GradCheck{DType: graph.Float32, Vars: vars(S{3, 4}), Build: one((*G).Erf)}},
		{"Softplus/float32", graphtest.GradCheck{DType: graph.Float32, Vars: vars(S{3, 4}), Build: one((*G).Softplus)}},
		{"Cast/float32", graphtest.GradCheck{Vars: vars(S{3}), Tol: 1e-5, Step: 0.25, Build: one(func(g *G, x *T) *T {
			return g.Cast(g.Mul(g.Cast(x, graph.Float32), g.Scalar(graph.Float32, 3)), graph.Float64)
		})}},
		// The master-weight direction: float32 in, a float64 computation.
		{"Cast/float64", graphtest.GradCheck{DType: graph.Float32, Vars: vars(S{3, 4}), Build: one(func(g *G, x *T) *T {
			return g.Cast(g.Tanh(g.Cast(x, graph.Float64)), graph.Float32)
		})}},
		{"Identity", graphtest.GradCheck{Vars: vars(S{3}), Build: one((*G).Identity)}},
		{"MatMul/2d", graphtest.GradCheck{Vars: vars(S{3, 4}, S{4, 5}), Build: two((*G).MatMul)}},
		{"MatMul/batch-weight", graphtest.GradCheck{Vars: vars(S{2, 3, 4}, S{4, 5}), Build: two((*G).MatMul)}},
		{"MatMul/batched", graphtest.GradCheck{Vars: vars(S{2, 2, 3, 4}, S{2, 2, 4, 3}), Build: two((*G).MatMul)}},
		{"MatMul/broadcast-left", graphtest.GradCheck{Vars: vars(S{3, 4}, S{2, 4, 5}), Build: two((*G).MatMul)}},
		{"Softmax/last", graphtest.GradCheck{Vars: vars(S{2, 3, 5}), Build: one(func(g *G, x *T) *T { return g.Softmax(x, -1) })}},
		{"Softmax/middle", graphtest.GradCheck{Vars: vars(S{2, 3, 5}), Build: one(func(g *G, x *T) *T { return g.Softmax(x, 1) })}},
		{"LogSoftmax", graphtest.GradCheck{Vars: vars(S{4, 5}), Build: one(func(g *G, x *T) *T { return g.LogSoftmax(x, -1) })}},
		{"ReduceSum/keep", graphtest.GradCheck{Vars: vars(S{2, 3, 4}), Build: one(func(g *G, x *T) *T { return g.ReduceSum(x, []int{0, 2}, true) })}},
		{"ReduceSum/drop", graphtest.GradCheck{Vars: vars(S{2, 3, 4}), Build: one(func(g *G, x *T) *T { return g.ReduceSum(x, []int{1}, false) })}},
		{"ReduceSum/all", graphtest.GradCheck{Vars: vars(S{2, 3}), Build: one(func(g *G, x *T) *T { return g.ReduceSum(x, []int{0, 1}, false) })}},
		{"ReduceMean", graphtest.GradCheck{Vars: vars(S{2, 3, 4}), Build: one(func(g *G, x *T) *T { return g.ReduceMean(x, []int{-1}, false) })}},
		{"Reshape", graphtest.GradCheck{Vars: vars(S{2, 3, 4}), Build: one(func(g *G, x *T) *T { return g.Reshape(x, 0, -1) })}},
		{"Unsqueeze", graphtest.GradCheck{Vars: vars(S{2, 3}), Build: one(func(g *G, x *T) *T { return g.Unsqueeze(x, 1, 3) })}},
		{"Squeeze", graphtest.GradCheck{Vars: vars(S{2, 1, 3}), Build: one(func(g *G, x *T) *T { return g.Squeeze(x, 1) })}},
		{"Expand", graphtest.GradCheck{Vars: vars(S{3, 1}), Build: one(func(g *G, x *T) *T { return g.Expand(x, S{2, 3, 4}) })}},
		{"Transpose", graphtest.GradCheck{Vars: vars(S{2, 3, 4}), Build: one(func(g *G, x *T) *T { return g.Transpose(x, 2, 0, 1) })}},
		{"Concat", graphtest.GradCheck{Vars: vars(S{2, 3}, S{2, 1}, S{2, 2}), Build: func(g *G, v, _ []*T) *T { return g.Concat(1, v...) }}},
		{"Split", graphtest.GradCheck{Vars: vars(S{2, 6}), Build: one(func(g *G, x *T) *T {
			p := g.Split(x, 1, 1, 2, 3)
			return g.Concat(1, g.Mul(p[2], p[2]), p[0]) // p[1] unused: its gradient is zero
		})}},
		{"Slice", graphtest.GradCheck{Vars: vars(S{3, 5}), Build: one(func(g *G, x *T) *T {
			return g.Slice(x, []int{0, 1}, []int64{1, -3}, []int64{3, 100})
		})}},
		{"LayerNorm/float64", graphtest.GradCheck{Vars: vars(S{2, 3, 6}, S{6}, S{6}), Build: func(g *G, v, _ []*T) *T {
			return g.LayerNorm(v[0], v[1], v[2], 1e-5)
		}}},
		{"LayerNorm/float32", graphtest.GradCheck{DType: graph.Float32, Vars: vars(S{2, 3, 6}, S{6}, S{6}), Build: func(g *G, v, _ []*T) *T {
			return g.LayerNorm(v[0], v[1], v[2], 1e-5)
		}}},
		{"Pad", graphtest.GradCheck{Vars: vars(S{2, 3}), Build: one(func(g *G, x *T) *T {
			return g.Mul(g.Pad(x, []int64{1, 0}, []int64{0, 2}), g.Scalar(graph.Float64, 2))
		})}},
		{"ReduceMax", graphtest.GradCheck{Vars: vars(S{3, 4}), Build: one(func(g *G, x *T) *T { return g.ReduceMax(x, []int{1}, false) })}},
		{"Sign", graphtest.GradCheck{Vars: []graphtest.Var{{Name: "x", Shape: S{5}, Gen: awayFromZero}}, Build: one(func(g *G, x *T) *T {
			return g.Add(g.Sign(x), x)
		})}},
		{"StopGradient", graphtest.GradCheck{Vars: vars(S{3}), Build: one(func(g *G, x *T) *T {
			// d/dx [x·sg(x)] = sg(x): the finite difference sees 2x, so
			// compare against a graph where the stopped branch is constant.
			return g.Add(x, g.Mul(g.StopGradient(x), g.Scalar(graph.Float64, 0)))
		})}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.check.Run(t) })
	}
}

// TestGradRuleCoverage checks that every operator the builder can emit
// that yields a float has a gradient rule, and that asking for a gradient
// through one without (here a float input cast from an ArgMax index) is an
// error naming it.
func TestGradRuleCoverage(t *testing.T) {
	for _, op := range []string{"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Neg", "Abs", "Sign", "Floor", "Exp", "Log", "Sqrt",
		"Reciprocal", "Relu", "Sigmoid", "Tanh", "Erf", "Softplus", "Identity", "Sum", "Cast", "Where", "MatMul", "Softmax",
		"LogSoftmax", "ReduceSum", "ReduceMean", "ReduceMax", "Reshape", "Transpose", "Concat", "Split", "Slice", "Unsqueeze",
		"Squeeze", "Expand", "Pad", "LayerNormalization"} {
		if !graph.HasGradient(op) {
			t.Errorf("operator %s has no gradient rule", op)
		}
	}
	g := graph.New("g")
	x := g.Input("x", graph.Float32, S{3, 4})
	y := g.Op("Celu", []*T{x}, []graph.TensorType{{DType: graph.Float32, Shape: S{3, 4}}}, graph.FloatAttr("alpha", 1))[0]
	loss := g.ReduceSum(y, []int{0, 1}, false)
	_, err := g.Grad(loss, []*T{x})
	if err == nil || !strings.Contains(err.Error(), "Celu") || !strings.Contains(err.Error(), "no gradient rule") {
		t.Fatalf("err = %v, want one naming Celu", err)
	}
}

func TestGradUnreachableIsZero(t *testing.T) {
	g := graph.New("g")
	x := g.Input("x", graph.Float64, S{2})
	z := g.Input("z", graph.Float64, S{3})
	loss := g.ReduceSum(g.Mul(x, x), []int{0}, false)
	grads, err := g.Grad(loss, []*T{x, z})
	if err != nil {
		t.Fatal(err)
	}
	g.Output("dz", grads[1])
	out, err := graphtest.Compile(t, g, graph.ModelOptions{}).Run(map[string][]float64{"x": {1, 2}, "z": {1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range out["dz"] {
		if v != 0 {
			t.Fatalf("dz = %v, want zeros", out["dz"])
		}
	}
}

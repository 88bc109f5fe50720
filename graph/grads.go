package graph

import "math"

// gradFunc returns the gradients of a node's inputs given the gradients of
// its outputs (nil where an output receives none). It returns nil for
// inputs that are not differentiable.
type gradFunc func(g *Graph, n *Node, dys []*Tensor) []*Tensor

// gradRules maps each differentiable ONNX operator to its gradient rule.
// Operators missing here are not differentiable (comparisons, ArgMax,
// ReduceMax, Sign, Not, …); Gradients reports them by name if a gradient
// must pass through them.
var gradRules = map[string]gradFunc{
	"Identity": func(g *Graph, n *Node, dy []*Tensor) []*Tensor { return []*Tensor{dy[0]} },
	"Neg":      func(g *Graph, n *Node, dy []*Tensor) []*Tensor { return []*Tensor{g.Neg(dy[0])} },
	"Add": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		a, b := n.Inputs[0], n.Inputs[1]
		return []*Tensor{g.sumToShape(dy[0], a.shape), g.sumToShape(dy[0], b.shape)}
	},
	"Sub": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		a, b := n.Inputs[0], n.Inputs[1]
		return []*Tensor{g.sumToShape(dy[0], a.shape), g.sumToShape(g.Neg(dy[0]), b.shape)}
	},
	"Mul": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		a, b := n.Inputs[0], n.Inputs[1]
		return []*Tensor{lazy(a, func() *Tensor { return g.sumToShape(g.Mul(dy[0], b), a.shape) }),
			lazy(b, func() *Tensor { return g.sumToShape(g.Mul(dy[0], a), b.shape) })}
	},
	"Div": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		a, b, y := n.Inputs[0], n.Inputs[1], n.Outputs[0]
		return []*Tensor{lazy(a, func() *Tensor { return g.sumToShape(g.Div(dy[0], b), a.shape) }),
			lazy(b, func() *Tensor { return g.sumToShape(g.Neg(g.Div(g.Mul(dy[0], y), b)), b.shape) })}
	},
	"Pow": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		a, b, y := n.Inputs[0], n.Inputs[1], n.Outputs[0]
		return []*Tensor{
			lazy(a, func() *Tensor {
				return g.sumToShape(g.Mul(dy[0], g.Mul(b, g.Pow(a, g.Sub(b, g.ScalarLike(b, 1))))), a.shape)
			}),
			lazy(b, func() *Tensor { return g.sumToShape(g.Mul(dy[0], g.Mul(y, g.Log(a))), b.shape) }),
		}
	},
	"Max": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		return selectGrad(g, n, dy[0], g.GreaterOrEqual(n.Inputs[0], n.Inputs[1]))
	},
	"Min": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		return selectGrad(g, n, dy[0], g.LessOrEqual(n.Inputs[0], n.Inputs[1]))
	},
	"Where": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		c, a, b := n.Inputs[0], n.Inputs[1], n.Inputs[2]
		zero := g.ScalarLike(dy[0], 0)
		return []*Tensor{nil,
			lazy(a, func() *Tensor { return g.sumToShape(g.Where(c, dy[0], zero), a.shape) }),
			lazy(b, func() *Tensor { return g.sumToShape(g.Where(c, zero, dy[0]), b.shape) })}
	},
	"Sum": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		out := make([]*Tensor, len(n.Inputs))
		for i, x := range n.Inputs {
			out[i] = g.sumToShape(dy[0], x.shape)
		}
		return out
	},
	"Abs": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		return []*Tensor{g.Mul(dy[0], g.Sign(n.Inputs[0]))}
	},
	"Exp": func(g *Graph, n *Node, dy []*Tensor) []*Tensor { return []*Tensor{g.Mul(dy[0], n.Outputs[0])} },
	"Log": func(g *Graph, n *Node, dy []*Tensor) []*Tensor { return []*Tensor{g.Div(dy[0], n.Inputs[0])} },
	"Sqrt": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		y := n.Outputs[0]
		return []*Tensor{g.Div(dy[0], g.Mul(g.ScalarLike(y, 2), y))}
	},
	"Reciprocal": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		y := n.Outputs[0]
		return []*Tensor{g.Neg(g.Mul(dy[0], g.Mul(y, y)))}
	},
	// Relu's gradient reads its output, not its input: relu(x) > 0 exactly
	// where x > 0 (NaN and −0 included), and the input then need not be
	// kept from the forward pass to the backward.
	"Relu": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		y := n.Outputs[0]
		return []*Tensor{g.Where(g.Greater(y, g.ScalarLike(y, 0)), dy[0], g.ScalarLike(y, 0))}
	},
	"Sigmoid": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		y := n.Outputs[0]
		return []*Tensor{g.Mul(dy[0], g.Mul(y, g.Sub(g.ScalarLike(y, 1), y)))}
	},
	"Tanh": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		y := n.Outputs[0]
		return []*Tensor{g.Mul(dy[0], g.Sub(g.ScalarLike(y, 1), g.Mul(y, y)))}
	},
	"Erf": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		x := n.Inputs[0]
		return []*Tensor{g.Mul(dy[0], g.Mul(g.ScalarLike(x, 2/math.Sqrt(math.Pi)), g.Exp(g.Neg(g.Mul(x, x)))))}
	},
	"Softplus": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		return []*Tensor{g.Mul(dy[0], g.Sigmoid(n.Inputs[0]))}
	},
	"Cast": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		x := n.Inputs[0]
		if !x.dtype.IsFloat() {
			return []*Tensor{nil}
		}
		return []*Tensor{g.Cast(dy[0], x.dtype)}
	},
	"MatMul": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		a, b := n.Inputs[0], n.Inputs[1]
		return []*Tensor{
			lazy(a, func() *Tensor { return g.sumToShape(g.MatMul(dy[0], transposeLast2(g, b)), a.shape) }),
			lazy(b, func() *Tensor {
				if b.Rank() == 2 && a.Rank() > 2 {
					// Fold the batch into the rows: one [K, M]·[M, N] product.
					k, m := a.Dim(-1), dy[0].Dim(-1)
					return g.MatMul(transposeLast2(g, g.Reshape(a, -1, k)), g.Reshape(dy[0], -1, m))
				}
				return g.sumToShape(g.MatMul(transposeLast2(g, a), dy[0]), b.shape)
			}),
		}
	},
	"Softmax": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		y := n.Outputs[0]
		axis := int(n.Attr("axis").Int)
		dot := g.ReduceSum(g.Mul(dy[0], y), []int{axis}, true)
		return []*Tensor{g.Mul(y, g.Sub(dy[0], dot))}
	},
	"LogSoftmax": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		y := n.Outputs[0]
		axis := int(n.Attr("axis").Int)
		return []*Tensor{g.Sub(dy[0], g.Mul(g.Exp(y), g.ReduceSum(dy[0], []int{axis}, true)))}
	},
	"ReduceSum": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		x := n.Inputs[0]
		axes, _ := g.constInt64s(n.Inputs[1])
		return []*Tensor{expandReduced(g, dy[0], x.shape, axes, n.Attr("keepdims").Int == 1)}
	},
	"ReduceMean": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		x := n.Inputs[0]
		axes := n.Attr("axes").Ints
		count := int64(1)
		for _, a := range axes {
			count *= x.shape[a]
		}
		scaled := g.Mul(dy[0], g.ScalarLike(dy[0], 1/float64(count)))
		return []*Tensor{expandReduced(g, scaled, x.shape, axes, n.Attr("keepdims").Int == 1)}
	},
	"Reshape": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		return []*Tensor{g.Reshape(dy[0], n.Inputs[0].shape...)}
	},
	"Unsqueeze": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		return []*Tensor{g.Reshape(dy[0], n.Inputs[0].shape...)}
	},
	"Squeeze": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		return []*Tensor{g.Reshape(dy[0], n.Inputs[0].shape...)}
	},
	"Expand": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		return []*Tensor{g.sumToShape(dy[0], n.Inputs[0].shape)}
	},
	"Transpose": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		perm := n.Attr("perm").Ints
		inv := make([]int64, len(perm))
		for i, p := range perm {
			inv[p] = int64(i)
		}
		return []*Tensor{g.Transpose(dy[0], inv...)}
	},
	"Concat": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		axis := int(n.Attr("axis").Int)
		sizes := make([]int64, len(n.Inputs))
		for i, x := range n.Inputs {
			sizes[i] = x.shape[axis]
		}
		return g.Split(dy[0], axis, sizes...)
	},
	"Split": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		axis := int(n.Attr("axis").Int)
		parts := make([]*Tensor, len(dy))
		for i, d := range dy {
			if d == nil {
				d = g.Zeros(n.Outputs[i].dtype, n.Outputs[i].shape)
			}
			parts[i] = d
		}
		return []*Tensor{g.Concat(axis, parts...)}
	},
	"Slice": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		x := n.Inputs[0]
		starts, _ := g.constInt64s(n.Inputs[1])
		ends, _ := g.constInt64s(n.Inputs[2])
		axes, _ := g.constInt64s(n.Inputs[3])
		before := make([]int64, x.Rank())
		after := make([]int64, x.Rank())
		for i, a := range axes {
			d := x.shape[a]
			s, e := clampIndex(starts[i], d), clampIndex(ends[i], d)
			before[a], after[a] = s, d-max(e, s)
		}
		return []*Tensor{g.Pad(dy[0], before, after)}
	},
	"LayerNormalization": layerNormGrad,
	"Pad": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		x := n.Inputs[0]
		pads, _ := g.constInt64s(n.Inputs[1])
		r := x.Rank()
		axes := make([]int, r)
		starts, ends := make([]int64, r), make([]int64, r)
		for i := 0; i < r; i++ {
			axes[i], starts[i], ends[i] = i, pads[i], pads[i]+x.shape[i]
		}
		return []*Tensor{g.Slice(dy[0], axes, starts, ends), nil}
	},
	// Sign is piecewise constant: its gradient is zero where it exists.
	"Sign": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		return []*Tensor{g.Zeros(n.Inputs[0].dtype, n.Inputs[0].shape)}
	},
	// Floor is piecewise constant too.
	"Floor": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		return []*Tensor{g.Zeros(n.Inputs[0].dtype, n.Inputs[0].shape)}
	},
	// ReduceMax passes the gradient to the maxima, shared equally among ties.
	"ReduceMax": func(g *Graph, n *Node, dy []*Tensor) []*Tensor {
		x, y := n.Inputs[0], n.Outputs[0]
		axes := n.Attr("axes").Ints
		keep := n.Attr("keepdims").Int == 1
		ax := make([]int, len(axes))
		for i, a := range axes {
			ax[i] = int(a)
		}
		yk := expandReduced(g, y, x.shape, axes, keep)
		hit := g.Cast(g.Equal(x, yk), x.dtype)
		ties := expandReduced(g, g.ReduceSum(hit, ax, keep), x.shape, axes, keep)
		return []*Tensor{g.Div(g.Mul(hit, expandReduced(g, dy[0], x.shape, axes, keep)), ties)}
	},
}

// lazy computes an input's gradient only when the input is not a constant,
// so that e.g. Mul by a constant does not emit a dead gradient branch.
func lazy(x *Tensor, f func() *Tensor) *Tensor {
	if x.kind == constValue || !x.dtype.IsFloat() {
		return nil
	}
	return f()
}

// selectGrad routes dy to a where mask holds and to b elsewhere (Max, Min).
func selectGrad(g *Graph, n *Node, dy, mask *Tensor) []*Tensor {
	a, b := n.Inputs[0], n.Inputs[1]
	zero := g.ScalarLike(dy, 0)
	return []*Tensor{
		lazy(a, func() *Tensor { return g.sumToShape(g.Where(mask, dy, zero), a.shape) }),
		lazy(b, func() *Tensor { return g.sumToShape(g.Where(mask, zero, dy), b.shape) }),
	}
}

// transposeLast2 swaps the last two dimensions.
func transposeLast2(g *Graph, x *Tensor) *Tensor {
	perm := make([]int64, x.Rank())
	for i := range perm {
		perm[i] = int64(i)
	}
	r := len(perm)
	perm[r-1], perm[r-2] = perm[r-2], perm[r-1]
	return g.Transpose(x, perm...)
}

// expandReduced broadcasts the gradient of a reduction back over the
// reduced axes.
func expandReduced(g *Graph, dy *Tensor, shape Shape, axes []int64, keep bool) *Tensor {
	if !keep {
		ax := make([]int, len(axes))
		for i, a := range axes {
			ax[i] = int(a)
		}
		if len(ax) > 0 {
			dy = g.Unsqueeze(dy, ax...)
		} else {
			dy = g.Reshape(dy, onesShape(len(shape))...)
		}
	}
	return g.Expand(dy, shape)
}

func onesShape(rank int) []int64 {
	s := make([]int64, rank)
	for i := range s {
		s[i] = 1
	}
	return s
}

// layerNormGrad is the gradient of LayerNormalization over the last axis:
//
//	x̂ = (x − μ)·σ⁻¹,  dx̂ = dy·γ
//	dx = σ⁻¹·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)),  dγ = Σ dy·x̂,  dβ = Σ dy
//
// μ and σ⁻¹ come from the node's extra outputs when it has them, else they
// are recomputed (float64 graphs).
func layerNormGrad(g *Graph, n *Node, dys []*Tensor) []*Tensor {
	x, scale := n.Inputs[0], n.Inputs[1]
	dy := dys[0]
	out := make([]*Tensor, len(n.Inputs))
	if dy == nil {
		return out
	}
	eps := float64(n.Attr("epsilon").Float)
	var mean, inv *Tensor
	if len(n.Outputs) == 3 {
		mean, inv = g.Cast(n.Outputs[1], x.dtype), g.Cast(n.Outputs[2], x.dtype)
	} else {
		mean = g.ReduceMean(x, []int{-1}, true)
		c := g.Sub(x, mean)
		variance := g.ReduceMean(g.Mul(c, c), []int{-1}, true)
		inv = g.Reciprocal(g.Sqrt(g.Add(variance, g.ScalarLike(x, eps))))
	}
	xhat := g.Mul(g.Sub(x, mean), inv)
	if x.kind != constValue {
		dxhat := g.Mul(dy, scale)
		m1 := g.ReduceMean(dxhat, []int{-1}, true)
		m2 := g.ReduceMean(g.Mul(dxhat, xhat), []int{-1}, true)
		out[0] = g.Mul(inv, g.Sub(g.Sub(dxhat, m1), g.Mul(xhat, m2)))
	}
	out[1] = lazy(scale, func() *Tensor { return g.sumToShape(g.Mul(dy, xhat), scale.shape) })
	if len(n.Inputs) > 2 {
		bias := n.Inputs[2]
		out[2] = lazy(bias, func() *Tensor { return g.sumToShape(dy, bias.shape) })
	}
	return out
}

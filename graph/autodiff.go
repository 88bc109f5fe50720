package graph

import "fmt"

// StopGradient returns x unchanged in the forward pass; Grad treats the
// result as a constant.
func (g *Graph) StopGradient(x *Tensor) *Tensor {
	y := g.node("Identity", []*Tensor{x}, []outSpec{{x.dtype, x.shape}})[0]
	y.producer.noGrad = true
	return y
}

// Grad appends to the graph the gradient of the scalar loss with respect to
// each of xs and returns the gradient tensors (same shapes as xs). A tensor
// of xs that the loss does not depend on gets a zero gradient.
func (g *Graph) Grad(loss *Tensor, xs []*Tensor) ([]*Tensor, error) {
	if loss.shape.Size() != 1 {
		return nil, fmt.Errorf("graph %s: Grad: loss %s is not a scalar", g.name, loss)
	}
	return g.Gradients([]*Tensor{loss}, []*Tensor{g.Expand(g.ScalarLike(loss, 1), loss.shape)}, xs)
}

// Gradients appends the vector-Jacobian product of ys with seeds (the
// gradient of Σ_i <seeds[i], ys[i]>) with respect to xs. Every operator on
// a path from xs to ys must have a gradient rule; otherwise the error names
// the operator and the node.
func (g *Graph) Gradients(ys, seeds, xs []*Tensor) ([]*Tensor, error) {
	if g.err != nil {
		return nil, g.err
	}
	if len(ys) != len(seeds) {
		return nil, fmt.Errorf("graph %s: Gradients: %d outputs but %d seeds", g.name, len(ys), len(seeds))
	}
	for i, y := range ys {
		if !seeds[i].shape.Equal(y.shape) || seeds[i].dtype != y.dtype {
			return nil, fmt.Errorf("graph %s: Gradients: seed %s does not match %s", g.name, seeds[i], y)
		}
	}

	// Tensors that depend on some x (through float values).
	active := make(map[*Tensor]bool)
	for _, x := range xs {
		if !x.dtype.IsFloat() {
			return nil, fmt.Errorf("graph %s: Gradients: %s is not a float tensor", g.name, x)
		}
		active[x] = true
	}
	for _, n := range g.nodes {
		if n.noGrad {
			continue
		}
		for _, in := range n.Inputs {
			if in != nil && active[in] {
				for _, o := range n.Outputs {
					if o.dtype.IsFloat() {
						active[o] = true
					}
				}
				break
			}
		}
	}
	// Nodes some y depends on.
	needed := make(map[*Node]bool)
	var stack []*Node
	push := func(t *Tensor) {
		if t != nil && t.producer != nil && !needed[t.producer] {
			needed[t.producer] = true
			stack = append(stack, t.producer)
		}
	}
	for _, y := range ys {
		push(y)
	}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, in := range n.Inputs {
			push(in)
		}
	}

	contrib := make(map[*Tensor][]*Tensor)
	for i, y := range ys {
		if active[y] {
			contrib[y] = append(contrib[y], seeds[i])
		}
	}
	saved := g.scope
	defer func() { g.scope = saved }()
	recomp := newRecomputation()

	nodes := g.nodes // rules append nodes; walk only the forward ones
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		if !needed[n] || n.noGrad {
			continue
		}
		dys := make([]*Tensor, len(n.Outputs))
		any := false
		for j, o := range n.Outputs {
			if cs := contrib[o]; len(cs) > 0 {
				g.scope = []string{"grad", o.name, "accumulate"}
				dys[j] = g.Sum(cs...)
				any = true
			}
		}
		if !any {
			continue
		}
		wants := false
		for _, in := range n.Inputs {
			if in != nil && active[in] {
				wants = true
			}
		}
		if !wants {
			continue
		}
		rule, ok := gradRules[n.Op]
		if !ok {
			return nil, fmt.Errorf("graph %s: Gradients: operator %s (node %s) has no gradient rule", g.name, n.Op, n.Name)
		}
		g.scope = []string{"grad", n.Name}
		g.enter(recomp, n)
		dxs := rule(g, g.recomputed(recomp, n), dys)
		g.record(recomp, n, dxs)
		if g.err != nil {
			return nil, fmt.Errorf("gradient of node %s: %w", n.Name, g.err)
		}
		for j, in := range n.Inputs {
			if in == nil || !active[in] || j >= len(dxs) || dxs[j] == nil {
				continue
			}
			if !dxs[j].shape.Equal(in.shape) || dxs[j].dtype != in.dtype {
				return nil, fmt.Errorf("graph %s: gradient rule of %s (node %s) gave %s for input %s",
					g.name, n.Op, n.Name, dxs[j], in)
			}
			contrib[in] = append(contrib[in], dxs[j])
		}
	}

	out := make([]*Tensor, len(xs))
	for i, x := range xs {
		cs := contrib[x]
		if len(cs) == 0 {
			g.scope = []string{"grad", x.name, "zero"}
			out[i] = g.Zeros(x.dtype, x.shape)
			continue
		}
		g.scope = []string{"grad", x.name, "accumulate"}
		out[i] = g.Sum(cs...)
	}
	if g.err != nil {
		return nil, g.err
	}
	return out, nil
}

// HasGradient reports whether Grad can differentiate through op.
func HasGradient(op string) bool {
	_, ok := gradRules[op]
	return ok
}

// sumToShape reduces a broadcast gradient back to the shape of the operand
// it was broadcast from.
func (g *Graph) sumToShape(dy *Tensor, target Shape) *Tensor {
	if dy.shape.Equal(target) {
		return dy
	}
	lead := dy.Rank() - len(target)
	var axes []int
	for i := 0; i < dy.Rank(); i++ {
		if i < lead || (target[i-lead] == 1 && dy.shape[i] != 1) {
			axes = append(axes, i)
		}
	}
	r := dy
	if len(axes) > 0 {
		r = g.ReduceSum(dy, axes, true)
	}
	if !r.shape.Equal(target) {
		r = g.Reshape(r, target...)
	}
	return r
}

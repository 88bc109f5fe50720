package graph

// Recompute marks node outputs so that the backward pass does not keep
// them: a gradient rule that reads one of them reads instead a copy
// recomputed in the backward pass by the same operator from the same
// inputs (themselves recomputed where they are marked too). Each copy is
// built once, where the first rule that reads it is emitted. The forward
// values are then freed as soon as the forward pass is done with them, at
// the price of computing them again: activation checkpointing, for
// tensors that are large to keep and cheap to recompute from small ones.
//
// Each call marks one group. The copies of a group that read no marked
// tensor read their first float input through an exact identity (Where on a constant true condition) that also
// depends on every gradient the rules of the group processed before it
// computed, so that ONNX Runtime, whatever order it picks among
// independent nodes, finishes one group's backward pass before it
// recomputes the next: one group's copies are alive at a time. The first
// group's copies read their first float input through Max(x, x), an exact
// identity too, so that ONNX Runtime's common-subexpression elimination
// does not merge them with the forward nodes (which would keep the forward
// values alive through the backward pass again). The copies are computed by
// the same operators on the same values as the forward tensors, so they are
// equal to them bit for bit.
func (g *Graph) Recompute(ts ...*Tensor) {
	if g.recompute == nil {
		g.recompute = map[*Tensor]int{}
	}
	g.recomputeGroups++
	for _, t := range ts {
		if t.g != g || t.producer == nil {
			g.Errorf("Recompute: %s is not a node output of graph %s", t.name, g.name)
			return
		}
		g.recompute[t] = g.recomputeGroups
	}
}

// recomputation is the state of the recomputed copies while Gradients
// walks the graph backwards.
type recomputation struct {
	copies map[*Tensor]*Tensor
	// order lists the groups in the order their first rule ran; grads
	// holds the gradients each group's rules computed.
	order []int
	grads map[int][]*Tensor
}

func newRecomputation() *recomputation {
	return &recomputation{copies: map[*Tensor]*Tensor{}, grads: map[int][]*Tensor{}}
}

// group returns the recompute group of n's outputs, or else of its
// inputs, 0 for none.
func (g *Graph) group(n *Node) int {
	for _, ts := range [][]*Tensor{n.Outputs, n.Inputs} {
		for _, t := range ts {
			if k := g.recompute[t]; t != nil && k > 0 {
				return k
			}
		}
	}
	return 0
}

// enter records that the rule of n is about to run.
func (g *Graph) enter(r *recomputation, n *Node) {
	k := g.group(n)
	if k == 0 {
		return
	}
	if len(r.order) == 0 || r.order[len(r.order)-1] != k {
		r.order = append(r.order, k)
	}
}

// record keeps the gradients the rule of n computed.
func (g *Graph) record(r *recomputation, n *Node, dxs []*Tensor) {
	if k := g.group(n); k > 0 {
		for _, d := range dxs {
			if d != nil {
				r.grads[k] = append(r.grads[k], d)
			}
		}
	}
}

// recomputed returns n with its marked inputs and outputs replaced by
// their recomputed copies, or n itself when it has none.
func (g *Graph) recomputed(r *recomputation, n *Node) *Node {
	marked := false
	for _, t := range append(append([]*Tensor{}, n.Inputs...), n.Outputs...) {
		marked = marked || (t != nil && g.recompute[t] > 0)
	}
	if !marked {
		return n
	}
	c := *n
	c.Inputs = make([]*Tensor, len(n.Inputs))
	for i, t := range n.Inputs {
		c.Inputs[i] = g.recomputedTensor(r, t)
	}
	c.Outputs = make([]*Tensor, len(n.Outputs))
	for i, t := range n.Outputs {
		c.Outputs[i] = g.recomputedTensor(r, t)
	}
	return &c
}

// recomputedTensor returns the recomputed copy of t when t is marked, else
// t.
func (g *Graph) recomputedTensor(r *recomputation, t *Tensor) *Tensor {
	if t == nil || g.recompute[t] == 0 {
		return t
	}
	if c, ok := r.copies[t]; ok {
		return c
	}
	n := t.producer
	ins := make([]*Tensor, len(n.Inputs))
	for i, in := range n.Inputs {
		ins[i] = g.recomputedTensor(r, in)
	}
	saved := g.scope
	defer func() { g.scope = saved }()
	g.scope = []string{"recompute", n.Name}
	root := true
	for _, in := range n.Inputs {
		root = root && (in == nil || g.recompute[in] == 0)
	}
	for i, in := range n.Inputs {
		if root && in != nil && in.kind != constValue && in.dtype.IsFloat() {
			ins[i] = g.after(r, g.recompute[t], in)
			break
		}
	}
	outs := make([]outSpec, len(n.Outputs))
	for i, o := range n.Outputs {
		outs[i] = outSpec{o.dtype, o.shape}
	}
	made := g.node(n.Op, ins, outs, n.Attrs...)
	for i, o := range n.Outputs {
		r.copies[o] = made[i]
	}
	return r.copies[t]
}

// after returns x through an exact identity that depends on the gradients
// of the group processed before group k (Max(x, x) for the first group).
func (g *Graph) after(r *recomputation, k int, x *Tensor) *Tensor {
	prev := 0
	for i, o := range r.order {
		if o == k && i > 0 {
			prev = r.order[i-1]
		}
	}
	deps := r.grads[prev]
	if prev == 0 || len(deps) == 0 {
		return g.Max(x, x)
	}
	firsts := make([]*Tensor, len(deps))
	for i, d := range deps {
		firsts[i] = g.Cast(g.Slice(g.Reshape(d, -1), []int{0}, []int64{0}, []int64{1}), x.dtype)
	}
	dep := firsts[0]
	if len(firsts) > 1 {
		dep = g.Slice(g.Concat(0, firsts...), []int{0}, []int64{0}, []int64{1})
	}
	return g.Where(g.Scalar(Bool, 1), x, dep)
}

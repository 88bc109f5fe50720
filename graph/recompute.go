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
	// barriers holds each group's dependency on the group before it
	// (after), built once and shared by the group's copies.
	barriers map[int]barrier
}

func newRecomputation() *recomputation {
	return &recomputation{copies: map[*Tensor]*Tensor{}, grads: map[int][]*Tensor{}, barriers: map[int]barrier{}}
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
// of the group processed before group k (Max(x, x) for the first group):
// Where(true, x, d), d the sum of the first element of each of those
// gradients, built once per group (and again only if the earlier group
// has computed more gradients since) and shared by all its copies.
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
	b, ok := r.barriers[k]
	if !ok || b.grads != len(deps) || b.dep.dtype != x.dtype {
		b = barrier{grads: len(deps), dep: g.barrier(deps, x.dtype)}
		r.barriers[k] = b
	}
	return g.Where(g.Scalar(Bool, 1), x, b.dep)
}

// barrier is a group's dependency on the gradients of the group before it.
type barrier struct {
	grads int     // how many of those gradients it depends on
	dep   *Tensor // the scalar it computes from them
}

// barrier returns a scalar of type dt computed from the first element of
// each of deps that no other of deps is computed from (sinks): one Slice
// per tensor (a single element, whatever its rank), a Cast where its type
// is not dt, their Sum and a Reshape to a scalar. Its value is never used (Where's condition is always true); it
// orders the nodes.
func (g *Graph) barrier(deps []*Tensor, dt DType) *Tensor {
	deps = sinks(deps)
	firsts := make([]*Tensor, len(deps))
	rank := 0
	for i, d := range deps {
		axes := make([]int, d.Rank())
		starts, ends := make([]int64, d.Rank()), make([]int64, d.Rank())
		for a := range axes {
			axes[a], ends[a] = a, 1
		}
		first := d
		if d.Rank() > 0 {
			first = g.Slice(d, axes, starts, ends)
		}
		if first.dtype != dt {
			first = g.Cast(first, dt)
		}
		firsts[i] = first
		rank = max(rank, d.Rank())
	}
	sum := firsts[0]
	if len(firsts) > 1 {
		sum = g.Sum(firsts...)
	}
	if rank == 0 {
		return sum
	}
	return g.Reshape(sum)
}

// sinkDepth is how many nodes up from each tensor sinks looks.
const sinkDepth = 4

// sinks returns, in their order, the tensors of ts from which no other
// of ts is computed within sinkDepth nodes: depending on those, a node
// depends on all of ts. (A tensor found further up stays: it costs one
// more Slice, never a missed dependency.)
func sinks(ts []*Tensor) []*Tensor {
	upstream := map[*Tensor]bool{}
	for _, t := range ts {
		level := []*Tensor{t}
		for d := 0; d < sinkDepth && len(level) > 0; d++ {
			var next []*Tensor
			for _, x := range level {
				if x.producer == nil {
					continue
				}
				for _, u := range x.producer.Inputs {
					if u != nil && !upstream[u] {
						upstream[u] = true
						next = append(next, u)
					}
				}
			}
			level = next
		}
	}
	var out []*Tensor
	for _, t := range ts {
		if !upstream[t] {
			out = append(out, t)
		}
	}
	return out
}

package graph

import "strings"

// Rows are the rows [Start, Start+Len) of a batch of Total rows: the
// part of the batch one replica (see Replica) computes.
type Rows struct {
	Start, Len, Total int64
}

// replica is an open Replica scope.
type replica struct {
	depth int // its index in g.scope
	rows  Rows
}

// Replica pushes a name scope for one more copy of a block of the graph
// that computes rows of the batch with the block's parameters: a block
// built for a batch in parts, one replica per part, so that each part's
// tensors are small (the training step's encoder, built per chunk of
// jets). Inside it:
//   - ParamOf returns the parameter declared under the same name without
//     the replica's scope where there is one (declared by an earlier
//     replica of the block), and declares it under that name otherwise;
//     the gradient then sums over the replicas that read it.
//   - Random declares the random input under its name without the
//     replica's scope, with dimension 0 the whole batch (rows.Total), once,
//     and returns the replica's rows of it: every row of the batch gets
//     the random numbers it gets in the block built whole.
//
// Node names keep the replica's scope, so that each replica's nodes can be
// told apart (for example to mark them for recomputation per replica).
// Replicas do not nest.
func (g *Graph) Replica(name string, rows Rows) func() {
	if g.replica != nil {
		g.Errorf("replica %q inside replica %q", name, g.scope[g.replica.depth])
	}
	if rows.Len < 1 || rows.Start < 0 || rows.Start+rows.Len > rows.Total {
		g.Errorf("replica %q: rows [%d, %d) of %d", name, rows.Start, rows.Start+rows.Len, rows.Total)
	}
	pop := g.Scope(name)
	g.replica = &replica{depth: len(g.scope) - 1, rows: rows}
	return func() {
		g.replica = nil
		pop()
	}
}

// sharedName is name under the current scope without the open replica's
// scope: the name parameters and random inputs take.
func (g *Graph) sharedName(name string) string {
	if g.replica == nil {
		return g.scoped(name)
	}
	parts := make([]string, 0, len(g.scope))
	parts = append(parts, g.scope[:g.replica.depth]...)
	parts = append(parts, g.scope[g.replica.depth+1:]...)
	return strings.Join(append(parts, name), "/")
}

// sharedParam returns the parameter declared as full, checking its type
// and shape, or nil if there is none.
func (g *Graph) sharedParam(full string, dtype DType, shape Shape) *Tensor {
	for _, p := range g.params {
		if p.Tensor.name != full {
			continue
		}
		if p.Tensor.dtype != dtype || !p.Tensor.shape.Equal(shape) {
			g.Errorf("parameter %q: replica declares it as %s %v, the block as %s %v", full, dtype, shape, p.Tensor.dtype, p.Tensor.shape)
		}
		return p.Tensor
	}
	return nil
}

// replicaRandom is Random inside a replica: the replica's rows of the
// random input of the whole batch.
func (g *Graph) replicaRandom(name string, dtype DType, shape Shape, kind string, p float64) *Tensor {
	rows := g.replica.rows
	if len(shape) == 0 || shape[0] != rows.Len {
		g.Errorf("random input %q: shape %v does not have the replica's %d rows first", name, shape, rows.Len)
		return g.Input(g.sharedName(name), dtype, shape)
	}
	full := g.sharedName(name)
	whole := shape.Clone()
	whole[0] = rows.Total
	var t *Tensor
	for _, r := range g.random {
		if r.Tensor.name == full {
			if r.Tensor.dtype != dtype || !r.Tensor.shape.Equal(whole) || r.Kind != kind || r.P != p {
				g.Errorf("random input %q: replica declares it as %s %v (%s, %g), the block as %s %v (%s, %g)",
					full, dtype, whole, kind, p, r.Tensor.dtype, r.Tensor.shape, r.Kind, r.P)
			}
			t = r.Tensor
			break
		}
	}
	if t == nil {
		t = g.Input(full, dtype, whole)
		g.random = append(g.random, &RandomInput{Tensor: t, Kind: kind, P: p})
	}
	if rows.Len == rows.Total {
		return t
	}
	return g.Slice(t, []int{0}, []int64{rows.Start}, []int64{rows.Start + rows.Len})
}

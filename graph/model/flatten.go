package model

import (
	"fmt"

	"github.com/salt-ort/salt-ort/graph"
)

// validateFlatten checks a FlattenPooling model (Salt's R21Xbb): one
// constituent group and nothing that would read its constituents one by
// one.
func (s *Spec) validateFlatten() error {
	switch {
	case len(s.Inputs) != 1:
		return fmt.Errorf("model %s: flatten pooling reads one constituent group, got %d", s.Name, len(s.Inputs))
	case s.JetInit != nil || s.HasEncoder():
		return fmt.Errorf("model %s: flatten pooling has neither a jet init net nor an encoder", s.Name)
	case s.Edges != nil || s.Objects != nil || len(s.Parameters) > 0 || len(s.Featurewise) > 0:
		return fmt.Errorf("model %s: flatten pooling has no edge features, object decoder, parameters or featurewise nets", s.Name)
	}
	in := s.Inputs[0]
	if want := in.MaxLen * len(in.Vars); s.EmbedDim != want {
		return fmt.Errorf("model %s: flatten pooling of %s: the jet representation has %d×%d = %d features, embed_dim is %d", s.Name, in.Name, in.MaxLen, len(in.Vars), want, s.EmbedDim)
	}
	if len(in.Fill) != 0 && len(in.Fill) != len(in.Vars) {
		return fmt.Errorf("model %s: flatten pooling of %s: %d fill values for %d variables", s.Name, in.Name, len(in.Fill), len(in.Vars))
	}
	for _, t := range s.Tasks {
		if t.Kind.PerConstituent() {
			return fmt.Errorf("model %s: task %s: flatten pooling keeps no per-constituent features, so only jet tasks can read it", s.Name, t.Name)
		}
	}
	return nil
}

// flatten is the jet representation of a FlattenPooling model: the
// normalised constituents x [B, T, V] with invalid slots holding the
// group's Fill (Salt's normalised zero), padded with Fill or truncated to
// MaxLen constituents, as [B, MaxLen·V]. valid is nil where every
// constituent of x is valid (the deployment graph, whose T is the jet's
// own number of constituents).
func (s *Spec) flatten(g *graph.Graph, x, valid *graph.Tensor) *graph.Tensor {
	defer g.Scope("flatten")()
	grp := s.Inputs[0]
	v := int64(len(grp.Vars))
	fill := make([]float64, v)
	copy(fill, grp.Fill)
	empty := g.Cast(g.Const("fill", graph.Float32, graph.Shape{1, 1, v}, fill), x.DType())
	if valid != nil {
		x = g.Where(g.Unsqueeze(valid, -1), x, empty)
	}
	if t := x.Dim(1); t != int64(grp.MaxLen) {
		// Append MaxLen empty slots, then keep the first MaxLen.
		pad := g.Expand(empty, graph.Shape{x.Dim(0), int64(grp.MaxLen), v})
		x = g.Concat(1, x, pad)
		x = g.Slice(x, []int{1}, []int64{0}, []int64{int64(grp.MaxLen)})
	}
	b := x.Dim(0)
	if b < 0 {
		b = -1
	}
	return g.Reshape(x, b, int64(grp.MaxLen)*v)
}

package model

import (
	"fmt"
	"math"
	"slices"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/nn"
)

// Edges are Salt's edge features (its EdgeConstructor and edge init net):
// quantities of each ordered pair of constituents of one group, computed
// in the graph from the constituents' raw variables, embedded by a dense
// network and used by every encoder layer's attention (a bias and a gate
// per head; see nn.EdgeAttention).
type Edges struct {
	// Input is the constituent group, the first of Spec.Inputs (Salt puts
	// the group with edges first).
	Input string
	// Features are Salt's edge features, in the order of the embedding's
	// input: "dR", "kt", "z", "mass", "isSelfLoop", "subjetIndex".
	Features []string
	// Vars maps the variables the features are computed from, by Salt's
	// names ("eta", "phi", "pt", "energy", "subjetIndex"), to variables of
	// the group; a name it does not map is the group's variable of that
	// name (Salt's indices_map, by name).
	Vars map[string]string
	// Hidden, Activation and FinalActivation configure the edge init net,
	// whose output is Encoder.EdgeDim wide.
	Hidden          []int
	Activation      nn.Activation
	FinalActivation nn.Activation
}

// EdgeFeatures are the edge features Salt computes, with the variables
// each needs.
var EdgeFeatures = map[string][]string{
	"dR":          {"eta", "phi"},
	"kt":          {"eta", "phi", "pt"},
	"z":           {"pt"},
	"mass":        {"pt", "eta", "phi", "energy"},
	"isSelfLoop":  nil,
	"subjetIndex": {"subjetIndex"},
}

// edgeVarOrder is the order of the variables an EdgeVariablesInput holds.
var edgeVarOrder = []string{"eta", "phi", "pt", "energy", "subjetIndex"}

// Needs returns the variables (Salt's names) the features are computed
// from, in the order of EdgeVariablesInput's last axis.
func (e *Edges) Needs() []string {
	var out []string
	for _, v := range edgeVarOrder {
		for _, f := range e.Features {
			if slices.Contains(EdgeFeatures[f], v) && !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out
}

// Variable returns the group variable that Salt's variable name v is read
// from.
func (e *Edges) Variable(v string) string {
	if m, ok := e.Vars[v]; ok {
		return m
	}
	return v
}

// EdgeVariablesInput is the float32 [B, T, k] input of the training and
// evaluation graphs holding a group's raw (unnormalised) variables that
// its edge features are computed from, in the order of Edges.Needs.
func EdgeVariablesInput(group string) string { return group + "/edge_variables" }

// validateEdges checks the edge features against the model.
func (s *Spec) validateEdges() error {
	e := s.Edges
	if e == nil {
		if s.Encoder.EdgeDim != 0 || s.Encoder.UpdateEdges {
			return fmt.Errorf("model %s: encoder edge_embed_dim %d and update_edges need edge features", s.Name, s.Encoder.EdgeDim)
		}
		return nil
	}
	switch {
	case !s.HasEncoder():
		return fmt.Errorf("model %s: edge features are used by the encoder's attention: they need an encoder", s.Name)
	case s.Encoder.EdgeDim <= 0:
		return fmt.Errorf("model %s: edge features need the encoder's edge_embed_dim", s.Name)
	case len(s.Inputs) == 0 || s.Inputs[0].Name != e.Input:
		return fmt.Errorf("model %s: the edge features' group %q must be the first constituent group", s.Name, e.Input)
	case len(e.Features) == 0:
		return fmt.Errorf("model %s: no edge features", s.Name)
	}
	for _, f := range e.Features {
		if _, ok := EdgeFeatures[f]; !ok {
			return fmt.Errorf("model %s: unknown edge feature %q", s.Name, f)
		}
	}
	vars := s.Inputs[0].Vars
	for _, v := range e.Needs() {
		if !slices.Contains(vars, e.Variable(v)) {
			return fmt.Errorf("model %s: edge features need %s, read from %q, which is not a variable of %s", s.Name, v, e.Variable(v), e.Input)
		}
	}
	return nil
}

// edgeVariables returns the raw variables [B, T, k] the edge features are
// computed from: the EdgeVariablesInput of training and evaluation graphs,
// or columns of the raw group input of the deployment graphs.
func (s *Spec) edgeVariables(g *graph.Graph, in *inputs) *graph.Tensor {
	if in.edgeVars != nil {
		return in.edgeVars
	}
	raw := in.rawSeqs[0]
	if raw == nil {
		g.Errorf("edge features: the raw %s are not inputs of this graph", s.Edges.Input)
		return nil
	}
	defer g.Scope("edge_features/variables")()
	var cols []*graph.Tensor
	for _, v := range s.Edges.Needs() {
		c := int64(slices.Index(s.Inputs[0].Vars, s.Edges.Variable(v)))
		cols = append(cols, g.Slice(raw, []int{2}, []int64{c}, []int64{c + 1}))
	}
	if len(cols) == 0 {
		return raw
	}
	if len(cols) == 1 {
		return cols[0]
	}
	return g.Concat(2, cols...)
}

// edgeFeatures computes Salt's edge features [B, T, T, F] (pair (i, j)
// at [i, j]) from the raw variables x [B, T, k] (Edges.Needs order),
// as salt/utils/edge_features.py does: Δφ and Δη of j minus i (Δφ less 2π
// above π), ln ΔR, ln(min(pT)·ΔR) for kt, ln(min(pT)/(pT_i + pT_j)) for z,
// ½·ln(max(m², 1e-8)) of the pair's invariant mass, the self-loop flag and
// whether both share a subjet (index ≥ 0). NaN and ±Inf (the logarithms
// of zero) become 0, as Salt's nan_to_num makes them.
func (s *Spec) edgeFeatures(g *graph.Graph, x *graph.Tensor) *graph.Tensor {
	defer g.Scope("edge_features")()
	e := s.Edges
	needs := e.Needs()
	col := func(v string) *graph.Tensor { // [B, T]
		k := int64(slices.Index(needs, v))
		return g.Squeeze(g.Slice(x, []int{2}, []int64{k}, []int64{k + 1}), 2)
	}
	// pair returns (a_j, a_i) broadcast to [B, T, T] at [i, j].
	pair := func(a *graph.Tensor) (*graph.Tensor, *graph.Tensor) { return g.Unsqueeze(a, 1), g.Unsqueeze(a, 2) }
	c := func(v float64) *graph.Tensor { return g.Scalar(x.DType(), v) }
	var dR2, ptMin *graph.Tensor
	if slices.Contains(e.Features, "dR") || slices.Contains(e.Features, "kt") {
		pj, pi := pair(col("phi"))
		dphi := g.Sub(pj, pi)
		dphi = g.Sub(dphi, g.Mul(g.Cast(g.Greater(dphi, c(math.Pi)), x.DType()), c(2*math.Pi)))
		ej, ei := pair(col("eta"))
		deta := g.Sub(ej, ei)
		dR2 = g.Add(g.Mul(deta, deta), g.Mul(dphi, dphi))
	}
	if slices.Contains(e.Features, "kt") || slices.Contains(e.Features, "z") {
		pj, pi := pair(col("pt"))
		ptMin = g.Min(pj, pi)
	}
	var feats []*graph.Tensor
	for _, f := range e.Features {
		var v *graph.Tensor
		switch f {
		case "dR":
			v = g.Log(g.Sqrt(dR2))
		case "kt":
			v = g.Log(g.Mul(ptMin, g.Sqrt(dR2)))
		case "z":
			pj, pi := pair(col("pt"))
			v = g.Log(g.Div(ptMin, g.Add(pj, pi)))
		case "isSelfLoop":
			// The identity [B, T, T], from the positions 1..T (a cumulative
			// sum of ones of x's [B, T] shape, dynamic when T is).
			bt := g.Op("Shape", []*graph.Tensor{x}, []graph.TensorType{{DType: graph.Int64, Shape: graph.Shape{2}}},
				graph.IntAttr("start", 0), graph.IntAttr("end", 2))[0]
			ones := g.Op("Expand", []*graph.Tensor{c(1), bt}, []graph.TensorType{{DType: x.DType(), Shape: graph.Shape{x.Dim(0), x.Dim(1)}}})[0]
			pos := g.Op("CumSum", []*graph.Tensor{ones, g.Int64s(1)}, []graph.TensorType{{DType: x.DType(), Shape: ones.Shape()}})[0]
			pj, pi := pair(pos)
			v = g.Cast(g.Equal(pj, pi), x.DType())
		case "subjetIndex":
			sj, si := pair(col("subjetIndex"))
			v = g.Cast(g.And(g.Equal(sj, si), g.GreaterOrEqual(sj, c(0))), x.DType())
		case "mass":
			pt, eta, phi, en := col("pt"), col("eta"), col("phi"), col("energy")
			px := g.Mul(pt, g.Op("Cos", []*graph.Tensor{phi}, []graph.TensorType{{DType: phi.DType(), Shape: phi.Shape()}})[0])
			py := g.Mul(pt, g.Op("Sin", []*graph.Tensor{phi}, []graph.TensorType{{DType: phi.DType(), Shape: phi.Shape()}})[0])
			pz := g.Mul(pt, g.Mul(g.Sub(g.Exp(eta), g.Exp(g.Neg(eta))), c(0.5)))
			sum := func(a *graph.Tensor) *graph.Tensor { aj, ai := pair(a); return g.Add(aj, ai) }
			es, xs, ys, zs := sum(en), sum(px), sum(py), sum(pz)
			m2 := g.Sub(g.Sub(g.Sub(g.Mul(es, es), g.Mul(xs, xs)), g.Mul(ys, ys)), g.Mul(zs, zs))
			v = g.Mul(g.Log(g.Max(m2, c(1e-8))), c(0.5))
		}
		feats = append(feats, g.Unsqueeze(v, 3))
	}
	out := feats[0]
	if len(feats) > 1 {
		out = g.Concat(3, feats...)
	}
	// nan_to_num(nan=0, posinf=0, neginf=0).
	bad := g.Or(g.Op("IsNaN", []*graph.Tensor{out}, []graph.TensorType{{DType: graph.Bool, Shape: out.Shape()}})[0],
		g.Op("IsInf", []*graph.Tensor{out}, []graph.TensorType{{DType: graph.Bool, Shape: out.Shape()}})[0])
	return g.Where(bad, c(0), out)
}

// edgeEmbedding runs the edge init net over the edge features of the
// first group and pads them with zeros to the whole sequence of every
// group (x [B, L, D], the concatenated init net outputs), as Salt pads
// them for the other groups.
func (s *Spec) edgeEmbedding(g *graph.Graph, in *inputs, x *graph.Tensor) *graph.Tensor {
	e := s.Edges
	feats := s.edgeFeatures(g, s.edgeVariables(g, in))
	if feats.DType() != x.DType() {
		// The features are computed from the raw float32 variables; the
		// edge init net runs in the sequence's (compute) type.
		feats = g.Cast(feats, x.DType())
	}
	sizes := append(append([]int{}, e.Hidden...), s.Encoder.EdgeDim)
	emb := nn.Activate(g, head(g, "edge_init/"+e.Input, []*graph.Tensor{feats}, sizes, e.Activation), e.FinalActivation)
	t := emb.Dim(1)
	l := x.Dim(1)
	if t == l {
		return emb
	}
	if t >= 0 && l >= 0 {
		return g.Pad(emb, []int64{0, 0, 0, 0}, []int64{0, l - t, l - t, 0})
	}
	// Dynamic lengths (the deployment graph): pad by the length of the
	// sequence less the group's, read at run time.
	defer g.Scope("edge_pad")()
	shape := func(v *graph.Tensor) *graph.Tensor {
		return g.Op("Shape", []*graph.Tensor{v}, []graph.TensorType{{DType: graph.Int64, Shape: graph.Shape{1}}}, graph.IntAttr("start", 1), graph.IntAttr("end", 2))[0]
	}
	extra := g.Sub(shape(x), shape(emb))
	zero := g.Int64s(0)
	pads := g.Concat(0, zero, zero, zero, zero, zero, extra, extra, zero)
	out := emb.Shape().Clone()
	out[1], out[2] = -1, -1
	return g.Op("Pad", []*graph.Tensor{emb, pads}, []graph.TensorType{{DType: emb.DType(), Shape: out}})[0]
}

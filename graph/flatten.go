package graph

// ParamSlot locates one parameter inside a flat parameter vector.
type ParamSlot struct {
	Name   string
	Shape  Shape
	Offset int64 // first element in the flat vector
	Size   int64 // number of elements
	Init   Init  // how its initial value is drawn
}

// FlattenParams makes every parameter a view of one flat input vector of
// the given name: the input holds all parameters back to back in
// declaration order, and each parameter's uses read a Slice+Reshape of it.
// A training step then moves one buffer of weights (and one per optimizer
// slot) instead of hundreds, and its update is a handful of elementwise
// operators. It returns the flat input, the per-parameter views (to take
// gradients with respect to) and the layout. All parameters must share one
// element type. Parameters declared afterwards are not affected.
func (g *Graph) FlattenParams(name string) (flat *Tensor, views []*Tensor, layout []ParamSlot) {
	if len(g.params) == 0 {
		g.Errorf("FlattenParams: the graph has no parameters")
		return g.dummy(Float32, Shape{0}), nil, nil
	}
	dtype := g.params[0].Tensor.dtype
	for _, p := range g.params {
		if p.Tensor.dtype != dtype {
			g.Errorf("FlattenParams: parameter %s is %s, others %s", p.Tensor.name, p.Tensor.dtype, dtype)
		}
	}
	return g.FlattenParamsAs(name, dtype)
}

// FlattenParamsAs is FlattenParams with a flat vector of type master
// (the "master weights" of mixed-precision training): a parameter declared
// with another float type is read as Cast(view, its type), so the forward
// pass computes in the parameters' type while the vector, its gradient and
// whatever updates it stay in master. The returned views are of type
// master, before the casts, so gradients with respect to them arrive in
// master through Cast's gradient rule. With every parameter of type master
// the graph is exactly the one FlattenParams builds.
func (g *Graph) FlattenParamsAs(name string, master DType) (flat *Tensor, views []*Tensor, layout []ParamSlot) {
	if len(g.params) == 0 {
		g.Errorf("FlattenParams: the graph has no parameters")
		return g.dummy(master, Shape{0}), nil, nil
	}
	if !master.IsFloat() {
		g.Errorf("FlattenParams: master type %s is not a float type", master)
	}
	var total int64
	for _, p := range g.params {
		if p.Tensor.dtype != master && !p.Tensor.dtype.IsFloat() {
			g.Errorf("FlattenParams: parameter %s is %s, not a float type to cast from %s", p.Tensor.name, p.Tensor.dtype, master)
		}
		layout = append(layout, ParamSlot{Name: p.Tensor.name, Shape: p.Tensor.shape.Clone(), Offset: total, Size: p.Tensor.shape.Size(), Init: p.Init})
		total += p.Tensor.shape.Size()
	}
	flat = g.Input(name, master, Shape{total})

	// The views are built at the top level and moved to the front of the
	// node list, since the nodes using the parameters already exist.
	saved, savedNodes := g.scope, g.nodes
	g.scope, g.nodes = nil, nil
	replace := make(map[*Tensor]*Tensor, len(g.params))
	for i, p := range g.params {
		pop := g.Scope("params/" + p.Tensor.name)
		s := layout[i]
		v := g.Slice(flat, []int{0}, []int64{s.Offset}, []int64{s.Offset + s.Size})
		if s.Shape.Rank() != 1 {
			v = g.Reshape(v, s.Shape...)
		}
		views = append(views, v)
		replace[p.Tensor] = g.Cast(v, p.Tensor.dtype)
		pop()
	}
	g.nodes = append(g.nodes, savedNodes...)
	g.scope = saved
	for _, n := range g.nodes {
		for j, in := range n.Inputs {
			if v, ok := replace[in]; ok {
				n.Inputs[j] = v
			}
		}
	}
	for i, o := range g.outputs {
		if v, ok := replace[o]; ok {
			g.outputs[i] = v
		}
	}
	g.flattened = append(g.flattened, g.params...)
	g.params = nil
	return flat, views, layout
}

// Package graph builds ONNX graphs in Go: typed tensors with static shapes,
// operator nodes with stable, readable names, parameters, constants and
// reverse-mode automatic differentiation that emits the gradient as more
// standard ONNX operators.
//
// A Graph is built with methods that return *Tensor values, as in
//
//	g := graph.New("dense")
//	x := g.Input("x", graph.Float32, graph.Shape{8, 4})
//	w := g.Param("dense/weight", graph.Shape{4, 3}, graph.InitUniform(0.5))
//	y := g.Relu(g.MatMul(x, w))
//	g.Output("y", y)
//	model, err := g.Model(graph.ModelOptions{})
//
// Builder methods do not return errors: the first error (a shape mismatch, an
// unknown axis) is kept, later calls do nothing harmful, and Err, Model and
// Grad report it with the name of the node that caused it. This keeps layer
// code as readable as the mathematics it writes down.
//
// Shapes are static by default; a dimension of -1 is dynamic (known only
// when the graph runs). Training graphs are fully static so that ONNX
// Runtime can plan memory once and CUDA graphs can capture them;
// deployment graphs may have a dynamic number of tracks.
package graph

import (
	"fmt"
	"strconv"
	"strings"
)

// Opset is the ONNX operator set version of every graph salt-ort writes.
// Opset 17 is the newest that Debian's python3-onnx (1.12) checks, and the
// first with LayerNormalization; ONNX Runtime 1.29 runs it on every
// execution provider, and Athena's ONNX Runtime accepts it (≤ 20).
const Opset = 17

// IRVersion is the ONNX IR version written into models (IR 8 goes with
// opset 17).
const IRVersion = 8

// DType is a tensor element type, numbered as ONNX's TensorProto.DataType.
type DType int32

// The element types salt-ort uses.
const (
	Float32  DType = 1
	Uint8    DType = 2
	Int8     DType = 3
	Int32    DType = 6
	Int64    DType = 7
	Bool     DType = 9
	Float16  DType = 10
	Float64  DType = 11
	BFloat16 DType = 16
)

// String returns the ONNX name of the type.
func (d DType) String() string {
	switch d {
	case Float32:
		return "float32"
	case Uint8:
		return "uint8"
	case Int8:
		return "int8"
	case Int32:
		return "int32"
	case Int64:
		return "int64"
	case Bool:
		return "bool"
	case Float16:
		return "float16"
	case Float64:
		return "float64"
	case BFloat16:
		return "bfloat16"
	}
	return "dtype(" + strconv.Itoa(int(d)) + ")"
}

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool {
	return d == Float32 || d == Float64 || d == Float16 || d == BFloat16
}

// Size returns the size of one element in bytes.
func (d DType) Size() int {
	switch d {
	case Uint8, Int8, Bool:
		return 1
	case Float16, BFloat16:
		return 2
	case Float32, Int32:
		return 4
	case Int64, Float64:
		return 8
	}
	return 0
}

// Shape is a tensor shape; a dimension of -1 is dynamic.
type Shape []int64

// Rank returns the number of dimensions.
func (s Shape) Rank() int { return len(s) }

// Static reports whether every dimension is known.
func (s Shape) Static() bool {
	for _, d := range s {
		if d < 0 {
			return false
		}
	}
	return true
}

// Size returns the number of elements, or -1 if a dimension is dynamic.
func (s Shape) Size() int64 {
	n := int64(1)
	for _, d := range s {
		if d < 0 {
			return -1
		}
		n *= d
	}
	return n
}

// Equal reports whether two shapes are identical.
func (s Shape) Equal(o Shape) bool {
	if len(s) != len(o) {
		return false
	}
	for i := range s {
		if s[i] != o[i] {
			return false
		}
	}
	return true
}

// Clone returns a copy of s.
func (s Shape) Clone() Shape { return append(Shape(nil), s...) }

// String formats the shape as [B, 40, 256] with ? for dynamic dimensions.
func (s Shape) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		if d < 0 {
			parts[i] = "?"
		} else {
			parts[i] = strconv.FormatInt(d, 10)
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// Tensor is a value in a graph: a graph input, a parameter, a constant or
// the output of a node.
type Tensor struct {
	g        *Graph
	name     string
	dtype    DType
	shape    Shape
	producer *Node // nil for inputs, parameters and constants
	kind     tensorKind
}

type tensorKind int

const (
	nodeOutput tensorKind = iota
	graphInput
	paramValue
	constValue
)

// Name returns the value name the tensor has in the ONNX graph.
func (t *Tensor) Name() string { return t.name }

// DType returns the element type.
func (t *Tensor) DType() DType { return t.dtype }

// Shape returns the shape; the caller must not modify it.
func (t *Tensor) Shape() Shape { return t.shape }

// Rank returns the number of dimensions.
func (t *Tensor) Rank() int { return len(t.shape) }

// Dim returns dimension i; negative i counts from the end.
func (t *Tensor) Dim(i int) int64 {
	if i < 0 {
		i += len(t.shape)
	}
	return t.shape[i]
}

// Graph returns the graph the tensor belongs to.
func (t *Tensor) Graph() *Graph { return t.g }

// Producer returns the node that computes t, or nil for inputs, parameters
// and constants.
func (t *Tensor) Producer() *Node { return t.producer }

// String describes the tensor for error messages.
func (t *Tensor) String() string {
	return fmt.Sprintf("%s %s%s", t.name, t.dtype, t.shape)
}

// Node is one ONNX operator invocation.
type Node struct {
	Op      string    // ONNX operator type, e.g. "MatMul"
	Name    string    // unique readable name, e.g. "encoder/layer2/attn/q_proj/MatMul"
	Inputs  []*Tensor // nil for an omitted optional input
	Outputs []*Tensor
	Attrs   []Attr

	// noGrad marks a node that gradients do not flow through
	// (StopGradient).
	noGrad bool
}

// Attr returns the attribute with the given name, or nil.
func (n *Node) Attr(name string) *Attr {
	for i := range n.Attrs {
		if n.Attrs[i].Name == name {
			return &n.Attrs[i]
		}
	}
	return nil
}

// AttrKind is the type of an attribute value.
type AttrKind int

// Attribute kinds.
const (
	AttrInt AttrKind = iota
	AttrFloat
	AttrInts
	AttrFloats
	AttrString
)

// Attr is a node attribute.
type Attr struct {
	Name   string
	Kind   AttrKind
	Int    int64
	Float  float32
	Ints   []int64
	Floats []float32
	String string
}

// IntAttr makes an integer attribute.
func IntAttr(name string, v int64) Attr { return Attr{Name: name, Kind: AttrInt, Int: v} }

// FloatAttr makes a float attribute.
func FloatAttr(name string, v float32) Attr { return Attr{Name: name, Kind: AttrFloat, Float: v} }

// IntsAttr makes an integer-list attribute.
func IntsAttr(name string, v ...int64) Attr { return Attr{Name: name, Kind: AttrInts, Ints: v} }

// StringAttr makes a string attribute.
func StringAttr(name, v string) Attr { return Attr{Name: name, Kind: AttrString, String: v} }

// Init describes how a parameter's initial value is drawn.
type Init struct {
	// Kind is "zeros", "ones", "constant", "uniform", "normal" or
	// "normal_zero_lead".
	Kind string
	// Value is the constant for "constant", the bound a of U(-a, a) for
	// "uniform" and the standard deviation for "normal" and
	// "normal_zero_lead".
	Value float64
	// Period and Lead shape "normal_zero_lead": in the parameter's
	// elements taken Period at a time (a row of a row-major matrix), the
	// first Lead are zero and the others normal.
	Period, Lead int64
}

// InitZeros initialises a parameter to zero.
func InitZeros() Init { return Init{Kind: "zeros"} }

// InitOnes initialises a parameter to one.
func InitOnes() Init { return Init{Kind: "ones"} }

// InitConstant initialises every element to v.
func InitConstant(v float64) Init { return Init{Kind: "constant", Value: v} }

// InitUniform draws from U(-bound, bound).
func InitUniform(bound float64) Init { return Init{Kind: "uniform", Value: bound} }

// InitNormal draws from N(0, std²).
func InitNormal(std float64) Init { return Init{Kind: "normal", Value: std} }

// InitNormalZeroLead initialises, in each run of period elements (a row of
// a row-major matrix with period columns), the first lead elements to zero
// and the others from N(0, std²): Salt's μP attention projection, whose
// query part starts at zero.
func InitNormalZeroLead(std float64, period, lead int64) Init {
	return Init{Kind: "normal_zero_lead", Value: std, Period: period, Lead: lead}
}

// Param is a trainable parameter of a graph.
type Param struct {
	Tensor *Tensor
	Init   Init
}

// Name returns the parameter's name, e.g. "encoder/layer0/attn/qkv/weight".
func (p *Param) Name() string { return p.Tensor.name }

// Shape returns the parameter's shape.
func (p *Param) Shape() Shape { return p.Tensor.shape }

// Graph is an ONNX graph under construction. A Graph is not safe for
// concurrent use.
type Graph struct {
	name     string
	nodes    []*Node
	inputs   []*Tensor
	outputs  []*Tensor
	params   []*Param
	consts   []*constant
	constKey map[string]*Tensor
	constOf  map[*Tensor]*constant
	used     map[string]bool
	scope    []string
	err      error
	meta     [][2]string
	random   []*RandomInput

	// flattened holds parameters that FlattenParams turned into views of
	// a flat input; they are no longer written to the model.
	flattened []*Param

	// recompute holds the node outputs that gradient rules read as copies
	// recomputed in the backward pass (Recompute), with their group
	// (1, 2, … in the order they were marked).
	recompute       map[*Tensor]int
	recomputeGroups int

	// replica is the open Replica scope, or nil.
	replica *replica
}

// RandomInput is a graph input that the caller fills with fresh random
// values for every run (e.g. a dropout mask). Randomness comes from the
// caller rather than from ONNX random operators so that a run is
// reproducible from the caller's seed and can be resumed exactly.
type RandomInput struct {
	Tensor *Tensor
	// Kind is RandomDropout or RandomUniform.
	Kind string
	// P is a dropout mask's probability of 0 (unused by RandomUniform).
	P float64
}

// The kinds of random input.
const (
	// RandomDropout: each element is 0 with probability P and 1/(1-P)
	// otherwise.
	RandomDropout = "dropout"
	// RandomUniform: each element is uniform in [0, 1), from which the
	// graph computes what it needs (the pair dropout masks of
	// nn.PairDropoutMask).
	RandomUniform = "uniform"
)

// Random declares a random input (see RandomInput) named under the
// current scope (inside a Replica: see there).
func (g *Graph) Random(name string, dtype DType, shape Shape, kind string, p float64) *Tensor {
	if g.replica != nil {
		return g.replicaRandom(name, dtype, shape, kind, p)
	}
	full := g.scoped(name)
	t := g.Input(full, dtype, shape)
	g.random = append(g.random, &RandomInput{Tensor: t, Kind: kind, P: p})
	return t
}

// RandomInputs returns the random inputs in declaration order.
func (g *Graph) RandomInputs() []*RandomInput { return g.random }

type constant struct {
	tensor *Tensor
	raw    []byte // little-endian element bytes
}

// New returns an empty graph with the given name.
func New(name string) *Graph {
	return &Graph{
		name:     name,
		constKey: make(map[string]*Tensor),
		constOf:  make(map[*Tensor]*constant),
		used:     make(map[string]bool),
	}
}

// Name returns the graph's name.
func (g *Graph) Name() string { return g.name }

// Err returns the first error met while building, or nil.
func (g *Graph) Err() error { return g.err }

// Errorf records an error (the first one wins) with the current scope.
func (g *Graph) Errorf(format string, args ...any) {
	if g.err != nil {
		return
	}
	where := strings.Join(g.scope, "/")
	if where == "" {
		where = "(top level)"
	}
	g.err = fmt.Errorf("graph %s: %s: %s", g.name, where, fmt.Sprintf(format, args...))
}

// Scope pushes a name scope: nodes and parameters created until the
// returned function is called are named under it. Use it as
//
//	defer g.Scope("attn")()
func (g *Graph) Scope(name string) func() {
	g.scope = append(g.scope, name)
	n := len(g.scope)
	return func() { g.scope = g.scope[:n-1] }
}

// ScopeName returns the current scope joined with "/".
func (g *Graph) ScopeName() string { return strings.Join(g.scope, "/") }

// Nodes returns the nodes in topological (creation) order.
func (g *Graph) Nodes() []*Node { return g.nodes }

// Inputs returns the graph inputs in declaration order (parameters are
// not included).
func (g *Graph) Inputs() []*Tensor { return g.inputs }

// Outputs returns the graph outputs in declaration order.
func (g *Graph) Outputs() []*Tensor { return g.outputs }

// Params returns the trainable parameters in declaration order.
func (g *Graph) Params() []*Param { return g.params }

// SetMetadata adds or replaces a metadata_props entry of the model.
func (g *Graph) SetMetadata(key, value string) {
	for i := range g.meta {
		if g.meta[i][0] == key {
			g.meta[i][1] = value
			return
		}
	}
	g.meta = append(g.meta, [2]string{key, value})
}

// unique returns name, or name_1, name_2, … if it is taken, and reserves it.
func (g *Graph) unique(name string) string {
	candidate := name
	for i := 1; g.used[candidate]; i++ {
		candidate = name + "_" + strconv.Itoa(i)
	}
	g.used[candidate] = true
	return candidate
}

// scoped joins the current scope and name.
func (g *Graph) scoped(name string) string {
	if len(g.scope) == 0 {
		return name
	}
	return g.ScopeName() + "/" + name
}

// Input declares a graph input. The name is used as given (not scoped) since
// inputs form the interface of the model.
func (g *Graph) Input(name string, dtype DType, shape Shape) *Tensor {
	if g.used[name] {
		g.Errorf("input %q: name already used", name)
	}
	g.used[name] = true
	t := &Tensor{g: g, name: name, dtype: dtype, shape: shape.Clone(), kind: graphInput}
	g.inputs = append(g.inputs, t)
	return t
}

// Param declares a float32 trainable parameter named under the current
// scope. How it appears in the ONNX model is chosen when the model is
// written: a graph input in training graphs, an initializer holding trained
// values in deployment graphs.
func (g *Graph) Param(name string, shape Shape, init Init) *Tensor {
	return g.ParamOf(name, Float32, shape, init)
}

// ParamOf declares a trainable parameter of the given type (inside a
// Replica: see there).
func (g *Graph) ParamOf(name string, dtype DType, shape Shape, init Init) *Tensor {
	if !shape.Static() {
		g.Errorf("parameter %q: shape %v must be static", name, shape)
	}
	full := g.sharedName(name)
	if g.replica != nil {
		if t := g.sharedParam(full, dtype, shape); t != nil {
			return t
		}
	}
	if g.used[full] {
		g.Errorf("parameter %q: name already used", full)
	}
	g.used[full] = true
	t := &Tensor{g: g, name: full, dtype: dtype, shape: shape.Clone(), kind: paramValue}
	g.params = append(g.params, &Param{Tensor: t, Init: init})
	return t
}

// Output marks t as a graph output called name. A tensor computed by a node
// takes the name directly; anything else (an input, a parameter, a value
// already output under another name) goes through an Identity node.
func (g *Graph) Output(name string, t *Tensor) *Tensor {
	if t.g != g {
		g.Errorf("output %q: tensor %s belongs to another graph", name, t.name)
		return t
	}
	if t.kind == nodeOutput && !g.isOutput(t) && t.name != name {
		if g.used[name] {
			g.Errorf("output %q: name already used", name)
			return t
		}
		// The old value name stays reserved: it is also the node's name.
		g.used[name] = true
		t.name = name
	} else if t.name != name {
		if g.used[name] {
			g.Errorf("output %q: name already used", name)
			return t
		}
		id := g.node("Identity", []*Tensor{t}, []outSpec{{t.dtype, t.shape}})[0]
		g.used[name] = true
		id.name = name
		t = id
	}
	g.outputs = append(g.outputs, t)
	return t
}

func (g *Graph) isOutput(t *Tensor) bool {
	for _, o := range g.outputs {
		if o == t {
			return true
		}
	}
	return false
}

type outSpec struct {
	dtype DType
	shape Shape
}

// node appends a node of type op under the current scope and returns its
// outputs. Inputs of another graph are an error.
func (g *Graph) node(op string, inputs []*Tensor, outs []outSpec, attrs ...Attr) []*Tensor {
	for _, in := range inputs {
		if in != nil && in.g != g {
			g.Errorf("%s: input %s belongs to another graph", op, in.name)
		}
	}
	n := &Node{Op: op, Name: g.unique(g.scoped(op)), Inputs: inputs, Attrs: attrs}
	for i, o := range outs {
		name := n.Name
		if len(outs) > 1 {
			name = n.Name + ":" + strconv.Itoa(i)
		}
		if name != n.Name {
			name = g.unique(name)
		}
		n.Outputs = append(n.Outputs, &Tensor{g: g, name: name, dtype: o.dtype, shape: o.shape, producer: n})
	}
	g.nodes = append(g.nodes, n)
	return n.Outputs
}

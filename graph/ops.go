package graph

import "sort"

// This file holds the operator constructors. Each one checks its operands,
// infers the output type and shape in Go (so that every tensor's shape is
// known while building) and appends one ONNX node.

// broadcastShapes applies numpy broadcasting to two shapes.
func broadcastShapes(a, b Shape) (Shape, bool) {
	n := max(len(a), len(b))
	out := make(Shape, n)
	for i := 0; i < n; i++ {
		da, db := int64(1), int64(1)
		if j := len(a) - n + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db:
			out[i] = da
		case da == 1:
			out[i] = db
		case db == 1:
			out[i] = da
		case da < 0:
			out[i] = db
		case db < 0:
			out[i] = da
		default:
			return nil, false
		}
	}
	return out, true
}

// normAxis maps a possibly negative axis into [0, rank).
func (g *Graph) normAxis(op string, axis, rank int) int {
	if axis < 0 {
		axis += rank
	}
	if axis < 0 || axis >= rank {
		g.Errorf("%s: axis %d out of range for rank %d", op, axis, rank)
		return 0
	}
	return axis
}

func (g *Graph) normAxes(op string, axes []int, rank int) []int64 {
	out := make([]int64, len(axes))
	for i, a := range axes {
		out[i] = int64(g.normAxis(op, a, rank))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (g *Graph) unary(op string, x *Tensor, attrs ...Attr) *Tensor {
	return g.node(op, []*Tensor{x}, []outSpec{{x.dtype, x.shape}}, attrs...)[0]
}

func (g *Graph) binary(op string, a, b *Tensor, outType DType) *Tensor {
	if a.dtype != b.dtype {
		g.Errorf("%s: operand types differ: %s and %s", op, a, b)
	}
	shape, ok := broadcastShapes(a.shape, b.shape)
	if !ok {
		g.Errorf("%s: shapes %v and %v do not broadcast (%s, %s)", op, a.shape, b.shape, a.name, b.name)
		shape = a.shape
	}
	if outType == 0 {
		outType = a.dtype
	}
	return g.node(op, []*Tensor{a, b}, []outSpec{{outType, shape}})[0]
}

// TensorType is the element type and shape of a value.
type TensorType struct {
	DType DType
	Shape Shape
}

// Op appends a node of any ONNX operator the builder does not wrap, with
// the output types the caller states (they are not checked). Grad reports
// such an operator by name if a gradient must pass through it, unless it
// has a rule (see HasGradient).
func (g *Graph) Op(op string, inputs []*Tensor, outputs []TensorType, attrs ...Attr) []*Tensor {
	outs := make([]outSpec, len(outputs))
	for i, o := range outputs {
		outs[i] = outSpec{o.DType, o.Shape.Clone()}
	}
	return g.node(op, inputs, outs, attrs...)
}

// Add returns a + b with broadcasting.
func (g *Graph) Add(a, b *Tensor) *Tensor { return g.binary("Add", a, b, 0) }

// Sub returns a - b with broadcasting.
func (g *Graph) Sub(a, b *Tensor) *Tensor { return g.binary("Sub", a, b, 0) }

// Mul returns a · b elementwise with broadcasting.
func (g *Graph) Mul(a, b *Tensor) *Tensor { return g.binary("Mul", a, b, 0) }

// Div returns a / b elementwise with broadcasting.
func (g *Graph) Div(a, b *Tensor) *Tensor { return g.binary("Div", a, b, 0) }

// Pow returns a^b elementwise with broadcasting.
func (g *Graph) Pow(a, b *Tensor) *Tensor { return g.binary("Pow", a, b, 0) }

// Max returns the elementwise maximum of a and b.
func (g *Graph) Max(a, b *Tensor) *Tensor { return g.binary("Max", a, b, 0) }

// Min returns the elementwise minimum of a and b.
func (g *Graph) Min(a, b *Tensor) *Tensor { return g.binary("Min", a, b, 0) }

// Equal returns a == b as bool.
func (g *Graph) Equal(a, b *Tensor) *Tensor { return g.binary("Equal", a, b, Bool) }

// Less returns a < b as bool.
func (g *Graph) Less(a, b *Tensor) *Tensor { return g.binary("Less", a, b, Bool) }

// Greater returns a > b as bool.
func (g *Graph) Greater(a, b *Tensor) *Tensor { return g.binary("Greater", a, b, Bool) }

// GreaterOrEqual returns a >= b as bool.
func (g *Graph) GreaterOrEqual(a, b *Tensor) *Tensor { return g.binary("GreaterOrEqual", a, b, Bool) }

// And returns the logical and of two bool tensors.
func (g *Graph) And(a, b *Tensor) *Tensor { return g.binary("And", a, b, Bool) }

// Or returns the logical or of two bool tensors.
func (g *Graph) Or(a, b *Tensor) *Tensor { return g.binary("Or", a, b, Bool) }

// Not returns the logical negation of a bool tensor.
func (g *Graph) Not(x *Tensor) *Tensor { return g.unary("Not", x) }

// Neg returns -x.
func (g *Graph) Neg(x *Tensor) *Tensor { return g.unary("Neg", x) }

// Floor returns the largest whole number not above x (gradient zero).
func (g *Graph) Floor(x *Tensor) *Tensor { return g.unary("Floor", x) }

// Abs returns |x|.
func (g *Graph) Abs(x *Tensor) *Tensor { return g.unary("Abs", x) }

// Sign returns the sign of x (-1, 0 or 1).
func (g *Graph) Sign(x *Tensor) *Tensor { return g.unary("Sign", x) }

// Exp returns e^x.
func (g *Graph) Exp(x *Tensor) *Tensor { return g.unary("Exp", x) }

// Log returns ln x.
func (g *Graph) Log(x *Tensor) *Tensor { return g.unary("Log", x) }

// Sqrt returns √x.
func (g *Graph) Sqrt(x *Tensor) *Tensor { return g.unary("Sqrt", x) }

// Reciprocal returns 1/x.
func (g *Graph) Reciprocal(x *Tensor) *Tensor { return g.unary("Reciprocal", x) }

// Relu returns max(x, 0).
func (g *Graph) Relu(x *Tensor) *Tensor { return g.unary("Relu", x) }

// Sigmoid returns 1/(1+e^-x).
func (g *Graph) Sigmoid(x *Tensor) *Tensor { return g.unary("Sigmoid", x) }

// Tanh returns tanh x.
func (g *Graph) Tanh(x *Tensor) *Tensor { return g.unary("Tanh", x) }

// Erf returns the error function of x.
func (g *Graph) Erf(x *Tensor) *Tensor { return g.unary("Erf", x) }

// Softplus returns ln(1+e^x).
func (g *Graph) Softplus(x *Tensor) *Tensor { return g.unary("Softplus", x) }

// Identity returns a copy of x.
func (g *Graph) Identity(x *Tensor) *Tensor { return g.unary("Identity", x) }

// Sum returns the elementwise sum of one or more tensors of one shape.
func (g *Graph) Sum(xs ...*Tensor) *Tensor {
	if len(xs) == 0 {
		g.Errorf("Sum: no operands")
		return g.dummy(Float32, Shape{})
	}
	if len(xs) == 1 {
		return xs[0]
	}
	shape := xs[0].shape
	for _, x := range xs[1:] {
		s, ok := broadcastShapes(shape, x.shape)
		if !ok || x.dtype != xs[0].dtype {
			g.Errorf("Sum: operand %s does not match %s", x, xs[0])
		}
		shape = s
	}
	return g.node("Sum", xs, []outSpec{{xs[0].dtype, shape}})[0]
}

// Cast converts x to dtype.
func (g *Graph) Cast(x *Tensor, dtype DType) *Tensor {
	if x.dtype == dtype {
		return x
	}
	return g.node("Cast", []*Tensor{x}, []outSpec{{dtype, x.shape}}, IntAttr("to", int64(dtype)))[0]
}

// Where returns cond ? a : b elementwise with broadcasting.
func (g *Graph) Where(cond, a, b *Tensor) *Tensor {
	if cond.dtype != Bool {
		g.Errorf("Where: condition %s is not bool", cond)
	}
	if a.dtype != b.dtype {
		g.Errorf("Where: branch types differ: %s and %s", a, b)
	}
	s, ok := broadcastShapes(a.shape, b.shape)
	if ok {
		s, ok = broadcastShapes(cond.shape, s)
	}
	if !ok {
		g.Errorf("Where: shapes %v, %v, %v do not broadcast", cond.shape, a.shape, b.shape)
		s = a.shape
	}
	return g.node("Where", []*Tensor{cond, a, b}, []outSpec{{a.dtype, s}})[0]
}

// MatMul returns the matrix product a·b with numpy semantics for batch
// dimensions; both operands must have rank ≥ 2.
func (g *Graph) MatMul(a, b *Tensor) *Tensor {
	if a.Rank() < 2 || b.Rank() < 2 {
		g.Errorf("MatMul: operands must have rank >= 2: %s, %s", a, b)
		return g.dummy(a.dtype, a.shape)
	}
	if a.dtype != b.dtype {
		g.Errorf("MatMul: operand types differ: %s and %s", a, b)
	}
	k1, k2 := a.Dim(-1), b.Dim(-2)
	if k1 >= 0 && k2 >= 0 && k1 != k2 {
		g.Errorf("MatMul: inner dimensions differ: %s · %s", a, b)
	}
	batch, ok := broadcastShapes(a.shape[:a.Rank()-2], b.shape[:b.Rank()-2])
	if !ok {
		g.Errorf("MatMul: batch dimensions do not broadcast: %s · %s", a, b)
	}
	shape := append(batch, a.Dim(-2), b.Dim(-1))
	return g.node("MatMul", []*Tensor{a, b}, []outSpec{{a.dtype, shape}})[0]
}

// Softmax normalises exp(x) along axis.
func (g *Graph) Softmax(x *Tensor, axis int) *Tensor {
	return g.unary("Softmax", x, IntAttr("axis", int64(g.normAxis("Softmax", axis, x.Rank()))))
}

// LogSoftmax returns log(softmax(x)) along axis, computed stably.
func (g *Graph) LogSoftmax(x *Tensor, axis int) *Tensor {
	return g.unary("LogSoftmax", x, IntAttr("axis", int64(g.normAxis("LogSoftmax", axis, x.Rank()))))
}

// reducedShape returns x's shape with axes removed or set to 1.
func reducedShape(s Shape, axes []int64, keep bool) Shape {
	out := Shape{}
	for i, d := range s {
		reduced := false
		for _, a := range axes {
			if int64(i) == a {
				reduced = true
			}
		}
		switch {
		case !reduced:
			out = append(out, d)
		case keep:
			out = append(out, 1)
		}
	}
	return out
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// ReduceSum sums x over axes.
func (g *Graph) ReduceSum(x *Tensor, axes []int, keepDims bool) *Tensor {
	ax := g.normAxes("ReduceSum", axes, x.Rank())
	return g.node("ReduceSum", []*Tensor{x, g.Int64s(ax...)},
		[]outSpec{{x.dtype, reducedShape(x.shape, ax, keepDims)}}, IntAttr("keepdims", boolInt(keepDims)))[0]
}

// ReduceMean averages x over axes.
func (g *Graph) ReduceMean(x *Tensor, axes []int, keepDims bool) *Tensor {
	ax := g.normAxes("ReduceMean", axes, x.Rank())
	return g.node("ReduceMean", []*Tensor{x}, []outSpec{{x.dtype, reducedShape(x.shape, ax, keepDims)}},
		IntsAttr("axes", ax...), IntAttr("keepdims", boolInt(keepDims)))[0]
}

// ReduceMax takes the maximum of x over axes. It is not differentiable.
func (g *Graph) ReduceMax(x *Tensor, axes []int, keepDims bool) *Tensor {
	ax := g.normAxes("ReduceMax", axes, x.Rank())
	return g.node("ReduceMax", []*Tensor{x}, []outSpec{{x.dtype, reducedShape(x.shape, ax, keepDims)}},
		IntsAttr("axes", ax...), IntAttr("keepdims", boolInt(keepDims)))[0]
}

// ArgMax returns the int64 index of the maximum of x along axis.
func (g *Graph) ArgMax(x *Tensor, axis int, keepDims bool) *Tensor {
	a := int64(g.normAxis("ArgMax", axis, x.Rank()))
	return g.node("ArgMax", []*Tensor{x}, []outSpec{{Int64, reducedShape(x.shape, []int64{a}, keepDims)}},
		IntAttr("axis", a), IntAttr("keepdims", boolInt(keepDims)))[0]
}

// Reshape gives x a new shape. As in ONNX, a 0 copies the input dimension
// at that position and one -1 is inferred from the element count.
func (g *Graph) Reshape(x *Tensor, dims ...int64) *Tensor {
	out := make(Shape, len(dims))
	infer := -1
	known := int64(1)
	dynamic := false
	for i, d := range dims {
		switch {
		case d == 0:
			if i >= x.Rank() {
				g.Errorf("Reshape: 0 at position %d copies a dimension %s lacks", i, x)
				return g.dummy(x.dtype, x.shape)
			}
			out[i] = x.shape[i]
		case d == -1:
			if infer >= 0 {
				g.Errorf("Reshape: more than one -1 in %v", dims)
			}
			infer = i
			continue
		default:
			out[i] = d
		}
		if out[i] < 0 {
			dynamic = true
		} else {
			known *= out[i]
		}
	}
	total := x.shape.Size()
	if infer >= 0 {
		if total < 0 || dynamic {
			out[infer] = -1
		} else if known == 0 || total%known != 0 {
			g.Errorf("Reshape: cannot reshape %s to %v", x, dims)
		} else {
			out[infer] = total / known
		}
	} else if total >= 0 && !dynamic && out.Size() != total {
		g.Errorf("Reshape: cannot reshape %s to %v", x, dims)
	}
	return g.node("Reshape", []*Tensor{x, g.Int64s(dims...)}, []outSpec{{x.dtype, out}})[0]
}

// Transpose permutes the dimensions of x.
func (g *Graph) Transpose(x *Tensor, perm ...int64) *Tensor {
	if len(perm) != x.Rank() {
		g.Errorf("Transpose: permutation %v for %s", perm, x)
		return g.dummy(x.dtype, x.shape)
	}
	seen := make([]bool, len(perm))
	out := make(Shape, len(perm))
	for i, p := range perm {
		if p < 0 || int(p) >= len(perm) || seen[p] {
			g.Errorf("Transpose: invalid permutation %v", perm)
			return g.dummy(x.dtype, x.shape)
		}
		seen[p] = true
		out[i] = x.shape[p]
	}
	return g.node("Transpose", []*Tensor{x}, []outSpec{{x.dtype, out}}, IntsAttr("perm", perm...))[0]
}

// Concat joins tensors along axis.
func (g *Graph) Concat(axis int, xs ...*Tensor) *Tensor {
	if len(xs) == 0 {
		g.Errorf("Concat: no operands")
		return g.dummy(Float32, Shape{})
	}
	a := g.normAxis("Concat", axis, xs[0].Rank())
	out := xs[0].shape.Clone()
	for _, x := range xs[1:] {
		if x.Rank() != len(out) || x.dtype != xs[0].dtype {
			g.Errorf("Concat: %s does not match %s", x, xs[0])
			return g.dummy(xs[0].dtype, out)
		}
		for i := range out {
			switch {
			case i == a:
				if out[i] < 0 || x.shape[i] < 0 {
					out[i] = -1
				} else {
					out[i] += x.shape[i]
				}
			case out[i] != x.shape[i] && out[i] >= 0 && x.shape[i] >= 0:
				g.Errorf("Concat: %s does not match %s off axis %d", x, xs[0], a)
			}
		}
	}
	return g.node("Concat", xs, []outSpec{{xs[0].dtype, out}}, IntAttr("axis", int64(a)))[0]
}

// Split cuts x along axis into pieces of the given sizes.
func (g *Graph) Split(x *Tensor, axis int, sizes ...int64) []*Tensor {
	a := g.normAxis("Split", axis, x.Rank())
	var total int64
	outs := make([]outSpec, len(sizes))
	for i, s := range sizes {
		total += s
		sh := x.shape.Clone()
		sh[a] = s
		outs[i] = outSpec{x.dtype, sh}
	}
	if x.shape[a] >= 0 && total != x.shape[a] {
		g.Errorf("Split: sizes %v do not add up to dimension %d of %s", sizes, a, x)
	}
	return g.node("Split", []*Tensor{x, g.Int64s(sizes...)}, outs, IntAttr("axis", int64(a)))
}

// Slice takes x[start:end] along each of axes (step 1). Negative starts and
// ends count from the end of the dimension, as in ONNX.
func (g *Graph) Slice(x *Tensor, axes []int, starts, ends []int64) *Tensor {
	if len(axes) != len(starts) || len(axes) != len(ends) {
		g.Errorf("Slice: %d axes, %d starts, %d ends", len(axes), len(starts), len(ends))
		return g.dummy(x.dtype, x.shape)
	}
	out := x.shape.Clone()
	ax := make([]int64, len(axes))
	for i, axis := range axes {
		a := g.normAxis("Slice", axis, x.Rank())
		ax[i] = int64(a)
		d := x.shape[a]
		if d < 0 {
			if starts[i] < 0 || ends[i] < 0 {
				out[a] = -1
			} else {
				out[a] = ends[i] - starts[i]
			}
			continue
		}
		s, e := clampIndex(starts[i], d), clampIndex(ends[i], d)
		out[a] = max(e-s, 0)
	}
	return g.node("Slice", []*Tensor{x, g.Int64s(starts...), g.Int64s(ends...), g.Int64s(ax...)},
		[]outSpec{{x.dtype, out}})[0]
}

func clampIndex(i, d int64) int64 {
	if i < 0 {
		i += d
	}
	return min(max(i, 0), d)
}

// Unsqueeze inserts dimensions of size 1 at the given output positions.
func (g *Graph) Unsqueeze(x *Tensor, axes ...int) *Tensor {
	rank := x.Rank() + len(axes)
	ax := g.normAxes("Unsqueeze", axes, rank)
	out := make(Shape, 0, rank)
	src := 0
	for i := 0; i < rank; i++ {
		inserted := false
		for _, a := range ax {
			if int64(i) == a {
				inserted = true
			}
		}
		if inserted {
			out = append(out, 1)
		} else {
			out = append(out, x.shape[src])
			src++
		}
	}
	return g.node("Unsqueeze", []*Tensor{x, g.Int64s(ax...)}, []outSpec{{x.dtype, out}})[0]
}

// Squeeze removes the given dimensions, which must have size 1.
func (g *Graph) Squeeze(x *Tensor, axes ...int) *Tensor {
	ax := g.normAxes("Squeeze", axes, x.Rank())
	for _, a := range ax {
		if x.shape[a] != 1 {
			g.Errorf("Squeeze: dimension %d of %s is not 1", a, x)
		}
	}
	return g.node("Squeeze", []*Tensor{x, g.Int64s(ax...)}, []outSpec{{x.dtype, reducedShape(x.shape, ax, false)}})[0]
}

// Expand broadcasts x to shape.
func (g *Graph) Expand(x *Tensor, shape Shape) *Tensor {
	out, ok := broadcastShapes(x.shape, shape)
	if !ok {
		g.Errorf("Expand: %s does not broadcast to %v", x, shape)
		return g.dummy(x.dtype, shape)
	}
	return g.node("Expand", []*Tensor{x, g.Int64s(shape...)}, []outSpec{{x.dtype, out}})[0]
}

// Pad pads x with zeros: before[i] elements before and after[i] after
// dimension i.
func (g *Graph) Pad(x *Tensor, before, after []int64) *Tensor {
	if len(before) != x.Rank() || len(after) != x.Rank() {
		g.Errorf("Pad: pads %v/%v for %s", before, after, x)
		return g.dummy(x.dtype, x.shape)
	}
	out := x.shape.Clone()
	for i := range out {
		if out[i] >= 0 {
			out[i] += before[i] + after[i]
		}
	}
	pads := append(append([]int64{}, before...), after...)
	return g.node("Pad", []*Tensor{x, g.Int64s(pads...)}, []outSpec{{x.dtype, out}})[0]
}

// LayerNorm normalises x over its last dimension and applies scale and bias
// (ONNX LayerNormalization). The mean and inverse standard deviation are
// kept as extra outputs, which the gradient reuses; they are dropped from
// the written model when nothing uses them.
func (g *Graph) LayerNorm(x, scale, bias *Tensor, epsilon float32) *Tensor {
	d := x.Dim(-1)
	if scale.Rank() != 1 || scale.shape[0] != d || (bias != nil && !bias.shape.Equal(scale.shape)) {
		g.Errorf("LayerNorm: scale %v / bias for %s", scale.shape, x)
	}
	stat := x.shape.Clone()
	stat[len(stat)-1] = 1
	outs := []outSpec{{x.dtype, x.shape}}
	if stashable(x.dtype) {
		outs = append(outs, outSpec{Float32, stat}, outSpec{Float32, stat})
	}
	ins := []*Tensor{x, scale}
	if bias != nil {
		ins = append(ins, bias)
	}
	return g.node("LayerNormalization", ins, outs,
		IntAttr("axis", -1), FloatAttr("epsilon", epsilon), IntAttr("stash_type", 1))[0]
}

// stashable reports whether LayerNormalization may return its statistics
// for inputs of type d: ONNX types them float32 (or bfloat16), so a float64
// graph recomputes them in the gradient instead.
func stashable(d DType) bool { return d == Float32 || d == Float16 || d == BFloat16 }

// LessOrEqual returns a <= b as bool.
func (g *Graph) LessOrEqual(a, b *Tensor) *Tensor { return g.binary("LessOrEqual", a, b, Bool) }

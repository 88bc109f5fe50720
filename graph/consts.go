package graph

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"
)

// Const adds a constant tensor of the given type and shape with values
// converted from float64 (for integer types they must be whole numbers).
// The constant is named under the current scope.
func (g *Graph) Const(name string, dtype DType, shape Shape, values []float64) *Tensor {
	if !shape.Static() || int64(len(values)) != shape.Size() {
		g.Errorf("constant %q: %d values for shape %v", name, len(values), shape)
		return g.dummy(dtype, shape)
	}
	raw, err := encode(dtype, values)
	if err != nil {
		g.Errorf("constant %q: %v", name, err)
		return g.dummy(dtype, shape)
	}
	return g.addConst(g.unique(g.scoped(name)), dtype, shape, raw)
}

// ConstRaw adds a constant whose elements are given as little-endian bytes.
func (g *Graph) ConstRaw(name string, dtype DType, shape Shape, raw []byte) *Tensor {
	if !shape.Static() || int64(len(raw)) != shape.Size()*int64(dtype.Size()) {
		g.Errorf("constant %q: %d bytes for %s%v", name, len(raw), dtype, shape)
		return g.dummy(dtype, shape)
	}
	return g.addConst(g.unique(g.scoped(name)), dtype, shape, append([]byte(nil), raw...))
}

func (g *Graph) addConst(name string, dtype DType, shape Shape, raw []byte) *Tensor {
	t := &Tensor{g: g, name: name, dtype: dtype, shape: shape.Clone(), kind: constValue}
	c := &constant{tensor: t, raw: raw}
	g.consts = append(g.consts, c)
	g.constOf[t] = c
	return t
}

// shared returns a constant shared by every user in the graph, keyed by its
// type, shape and values, so that e.g. the scalar 1.0 exists once.
func (g *Graph) shared(dtype DType, shape Shape, values []float64) *Tensor {
	var key strings.Builder
	key.WriteString("const/")
	key.WriteString(dtype.String())
	if len(shape) > 0 {
		key.WriteString("/shape")
		for _, d := range shape {
			key.WriteString("_" + strconv.FormatInt(d, 10))
		}
	}
	key.WriteString("/")
	for i, v := range values {
		if i > 0 {
			key.WriteString("_")
		}
		key.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	}
	k := key.String()
	if t, ok := g.constKey[k]; ok {
		return t
	}
	raw, err := encode(dtype, values)
	if err != nil {
		g.Errorf("constant %s: %v", k, err)
		return g.dummy(dtype, shape)
	}
	name := k
	if len(name) > 80 {
		name = g.unique("const/" + dtype.String() + "/values")
	} else {
		name = g.unique(name)
	}
	t := g.addConst(name, dtype, shape, raw)
	g.constKey[k] = t
	return t
}

// Scalar returns a shared rank-0 constant of the given type.
func (g *Graph) Scalar(dtype DType, v float64) *Tensor {
	return g.shared(dtype, Shape{}, []float64{v})
}

// ScalarLike returns a shared rank-0 constant with the type of t.
func (g *Graph) ScalarLike(t *Tensor, v float64) *Tensor { return g.Scalar(t.dtype, v) }

// Int64s returns a shared 1-D int64 constant, as ONNX wants for shapes,
// axes and indices.
func (g *Graph) Int64s(v ...int64) *Tensor {
	f := make([]float64, len(v))
	for i, x := range v {
		f[i] = float64(x)
	}
	return g.shared(Int64, Shape{int64(len(v))}, f)
}

// Zeros returns a shared constant of zeros with the given type and shape,
// stored as a scalar expanded to the shape.
func (g *Graph) Zeros(dtype DType, shape Shape) *Tensor {
	return g.Expand(g.Scalar(dtype, 0), shape)
}

// dummy returns a stand-in tensor after an error, so that building can go
// on and report the first error later.
func (g *Graph) dummy(dtype DType, shape Shape) *Tensor {
	return &Tensor{g: g, name: "invalid", dtype: dtype, shape: shape.Clone(), kind: constValue}
}

// encode converts values to little-endian element bytes of dtype.
func encode(dtype DType, values []float64) ([]byte, error) {
	size := dtype.Size()
	if size == 0 {
		return nil, errUnsupported(dtype)
	}
	out := make([]byte, len(values)*size)
	for i, v := range values {
		b := out[i*size:]
		switch dtype {
		case Float32:
			binary.LittleEndian.PutUint32(b, math.Float32bits(float32(v)))
		case Float64:
			binary.LittleEndian.PutUint64(b, math.Float64bits(v))
		case Float16:
			binary.LittleEndian.PutUint16(b, Float32ToFloat16(float32(v)))
		case BFloat16:
			binary.LittleEndian.PutUint16(b, Float32ToBFloat16(float32(v)))
		case Int64:
			binary.LittleEndian.PutUint64(b, uint64(int64(v)))
		case Int32:
			binary.LittleEndian.PutUint32(b, uint32(int32(v)))
		case Int8:
			b[0] = byte(int8(v))
		case Uint8:
			b[0] = byte(uint8(v))
		case Bool:
			if v != 0 {
				b[0] = 1
			}
		}
		if !dtype.IsFloat() && v != math.Trunc(v) {
			return nil, errNotWhole(v, dtype)
		}
	}
	return out, nil
}

type encodeError string

func (e encodeError) Error() string { return string(e) }

func errUnsupported(d DType) error { return encodeError("unsupported element type " + d.String()) }

func errNotWhole(v float64, d DType) error {
	return encodeError(strconv.FormatFloat(v, 'g', -1, 64) + " is not a whole number for " + d.String())
}

// Float32ToFloat16 converts to IEEE half precision, rounding to nearest even.
func Float32ToFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	switch {
	case exp == 0xff: // Inf or NaN
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp-127 > 15: // overflow
		return sign | 0x7c00
	case exp-127 >= -14: // normal
		e := uint32(exp-127+15) << 10
		m := mant >> 13
		h := uint32(sign) | e | m
		rest := mant & 0x1fff
		if rest > 0x1000 || (rest == 0x1000 && m&1 == 1) {
			h++ // may carry into the exponent, which is correct rounding
		}
		return uint16(h)
	case exp-127 >= -25: // subnormal
		mant |= 0x800000
		shift := uint32(-(exp - 127) - 14 + 13)
		m := mant >> shift
		rest := mant & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rest > half || (rest == half && m&1 == 1) {
			m++
		}
		return sign | uint16(m)
	}
	return sign
}

// Float16ToFloat32 converts from IEEE half precision.
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		f := float32(mant) / 1024 / 16384
		if sign != 0 {
			return -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// Float32ToBFloat16 converts to bfloat16, rounding to nearest even.
func Float32ToBFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40 // quiet NaN
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// constInt64s returns the values of an int64 constant such as a Reshape
// shape or ReduceSum axes, or false if t is not one.
func (g *Graph) constInt64s(t *Tensor) ([]int64, bool) {
	c, ok := g.constOf[t]
	if !ok || t.dtype != Int64 {
		return nil, false
	}
	v := make([]int64, len(c.raw)/8)
	for i := range v {
		v[i] = int64(binary.LittleEndian.Uint64(c.raw[8*i:]))
	}
	return v, true
}

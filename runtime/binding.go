package runtime

import (
	"fmt"
)

// ElementType is an ONNX tensor element type (TensorProto.DataType).
type ElementType int32

// The element types a Binding can hold.
const (
	TypeFloat32  ElementType = 1
	TypeUint8    ElementType = 2
	TypeInt8     ElementType = 3
	TypeInt32    ElementType = 6
	TypeInt64    ElementType = 7
	TypeBool     ElementType = 9
	TypeFloat16  ElementType = 10
	TypeFloat64  ElementType = 11
	TypeBFloat16 ElementType = 16
)

// TensorSpec describes a session input or output: its name, element type
// and static shape.
type TensorSpec struct {
	Name  string
	Type  ElementType
	Shape []int64
}

// Binding owns one Go-memory tensor for every input and output of a
// session, so that a loop can fill inputs in place, run, and read outputs
// without allocating. Swap exchanges an input's tensor with an output's,
// which is how a training step hands its new parameters to the next step
// without copying them.
type Binding struct {
	sess    *Session
	inputs  []Value
	outputs []Value
	index   map[string]slot
}

type slot struct {
	output bool
	i      int
}

// NewBinding allocates the tensors of every input and output of sess from
// specs, which must describe each of them.
func NewBinding(sess *Session, specs []TensorSpec) (*Binding, error) {
	byName := make(map[string]TensorSpec, len(specs))
	for _, s := range specs {
		byName[s.Name] = s
	}
	b := &Binding{sess: sess, index: map[string]slot{}}
	alloc := func(names []string, output bool) ([]Value, error) {
		vals := make([]Value, len(names))
		for i, n := range names {
			s, ok := byName[n]
			if !ok {
				return vals, fmt.Errorf("runtime: binding: no spec for %q", n)
			}
			v, err := newZeroValue(s)
			if err != nil {
				return vals, fmt.Errorf("runtime: binding %q: %w", n, err)
			}
			vals[i] = v
			b.index[n] = slot{output: output, i: i}
		}
		return vals, nil
	}
	var err error
	if b.inputs, err = alloc(sess.InputNames(), false); err != nil {
		b.Close()
		return nil, err
	}
	if b.outputs, err = alloc(sess.OutputNames(), true); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func newZeroValue(s TensorSpec) (Value, error) {
	n := int64(1)
	for _, d := range s.Shape {
		if d < 0 {
			return nil, fmt.Errorf("dynamic shape %v", s.Shape)
		}
		n *= d
	}
	if len(s.Shape) == 0 {
		switch s.Type {
		case TypeFloat32:
			return NewScalar[float32](0)
		case TypeFloat64:
			return NewScalar[float64](0)
		case TypeInt64:
			return NewScalar[int64](0)
		}
		return nil, fmt.Errorf("unsupported scalar type %d", s.Type)
	}
	switch s.Type {
	case TypeFloat32:
		return NewTensor(s.Shape, make([]float32, n))
	case TypeFloat64:
		return NewTensor(s.Shape, make([]float64, n))
	case TypeInt64:
		return NewTensor(s.Shape, make([]int64, n))
	case TypeInt32:
		return NewTensor(s.Shape, make([]int32, n))
	case TypeInt8:
		return NewTensor(s.Shape, make([]int8, n))
	case TypeUint8:
		return NewTensor(s.Shape, make([]uint8, n))
	case TypeBool:
		return NewTensor(s.Shape, make([]bool, n))
	}
	return nil, fmt.Errorf("unsupported element type %d", s.Type)
}

// Value returns the tensor bound to name (an input or an output).
func (b *Binding) Value(name string) (Value, error) {
	s, ok := b.index[name]
	if !ok {
		return nil, fmt.Errorf("runtime: binding has no value %q", name)
	}
	if s.output {
		return b.outputs[s.i], nil
	}
	return b.inputs[s.i], nil
}

// data returns the Go slice behind name, which must hold elements of T.
func data[T float32 | float64 | int64 | bool | int32 | int8 | uint8](b *Binding, name string) ([]T, error) {
	v, err := b.Value(name)
	if err != nil {
		return nil, err
	}
	t, ok := v.(*Tensor[T])
	if !ok {
		return nil, fmt.Errorf("runtime: binding %q holds %T", name, v)
	}
	return t.GetData(), nil
}

// Float32 returns the data of a float32 tensor, to fill or read in place.
func (b *Binding) Float32(name string) ([]float32, error) { return data[float32](b, name) }

// Float64 returns the data of a float64 tensor.
func (b *Binding) Float64(name string) ([]float64, error) { return data[float64](b, name) }

// Int64 returns the data of an int64 tensor.
func (b *Binding) Int64(name string) ([]int64, error) { return data[int64](b, name) }

// Bool returns the data of a bool tensor.
func (b *Binding) Bool(name string) ([]bool, error) { return data[bool](b, name) }

// Write copies src into the float32 tensor name. (Float32 gives the
// buffer itself; Write and Read exist so that code can move state the same
// way through a Binding and a DeviceBinding.)
func (b *Binding) Write(name string, src []float32) error {
	dst, err := b.Float32(name)
	if err != nil {
		return err
	}
	if len(dst) != len(src) {
		return fmt.Errorf("runtime: writing %d values to %q of %d", len(src), name, len(dst))
	}
	copy(dst, src)
	return nil
}

// Read copies the float32 tensor name into dst.
func (b *Binding) Read(name string, dst []float32) error {
	src, err := b.Float32(name)
	if err != nil {
		return err
	}
	if len(dst) != len(src) {
		return fmt.Errorf("runtime: reading %q of %d values into %d", name, len(src), len(dst))
	}
	copy(dst, src)
	return nil
}

// SetScalar sets a rank-0 float32 input. (onnxruntime_go's Scalar.Set
// does not reach the memory ONNX Runtime reads, so the value is replaced.)
func (b *Binding) SetScalar(name string, v float32) error {
	s, ok := b.index[name]
	if !ok || s.output {
		return fmt.Errorf("runtime: binding has no input %q", name)
	}
	if _, ok := b.inputs[s.i].(*Scalar[float32]); !ok {
		return fmt.Errorf("runtime: binding %q is %T, not a float32 scalar", name, b.inputs[s.i])
	}
	fresh, err := NewScalar(v)
	if err != nil {
		return err
	}
	old := b.inputs[s.i]
	b.inputs[s.i] = fresh
	return old.Destroy()
}

// Scalar reads a rank-0 float32 value.
func (b *Binding) Scalar(name string) (float32, error) {
	val, err := b.Value(name)
	if err != nil {
		return 0, err
	}
	s, ok := val.(*Scalar[float32])
	if !ok {
		return 0, fmt.Errorf("runtime: binding %q is %T, not a float32 scalar", name, val)
	}
	return s.GetData(), nil
}

// Swap exchanges the tensors bound to input in and output out, which must
// have the same type and shape: after a training step, Swap("params",
// "new/params") makes the new parameters the next step's input, and the
// old buffer receives the step after that.
func (b *Binding) Swap(in, out string) error {
	si, ok1 := b.index[in]
	so, ok2 := b.index[out]
	if !ok1 || !ok2 || si.output || !so.output {
		return fmt.Errorf("runtime: swap %q/%q: need an input and an output of the binding", in, out)
	}
	a, c := b.inputs[si.i], b.outputs[so.i]
	if a.DataType() != c.DataType() || !a.GetShape().Equals(c.GetShape()) {
		return fmt.Errorf("runtime: swap %q/%q: shapes %v and %v differ", in, out, a.GetShape(), c.GetShape())
	}
	b.inputs[si.i], b.outputs[so.i] = c, a
	return nil
}

// Run runs the session on the bound tensors.
func (b *Binding) Run() error { return b.sess.Run(b.inputs, b.outputs) }

// Close releases every tensor of the binding (not the session).
func (b *Binding) Close() error {
	err := Destroy(append(append([]Value{}, b.inputs...), b.outputs...)...)
	b.inputs, b.outputs = nil, nil
	return err
}

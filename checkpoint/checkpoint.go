// Package checkpoint reads and writes training checkpoints in the
// safetensors format, so that a checkpoint written by salt-ort opens in
// Python with the safetensors library or with nothing but json and numpy.
//
// A safetensors file is an 8-byte little-endian unsigned header length N,
// then N bytes of UTF-8 JSON header, then the raw little-endian, row-major
// tensor bytes (the data section). The header maps every tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]}, offsets relative to the
// start of the data section, and may hold string-to-string metadata under
// the reserved key "__metadata__".
//
// # Canonical form
//
// [Encode] and [Write] always produce the same bytes for the same content:
// "__metadata__" first (omitted when there is no metadata) with its keys in
// sorted order, then the tensors in sorted-name order, each entry's fields
// in the order dtype, shape, data_offsets; no whitespace; the header padded
// with trailing spaces to a multiple of 8 bytes, so the data section starts
// 8-byte aligned; the tensors' bytes laid out in the same sorted-name order,
// contiguous and without gaps.
//
// [Decode] and [Read] accept any valid safetensors file, not only the
// canonical form: tensors in any order in the data section (the Python
// library orders them by dtype alignment, then name), any JSON whitespace
// and key order. They reject everything the format forbids. A file they
// accept re-encodes to its canonical form, and a canonical file re-encodes
// to identical bytes.
//
// # Checksum
//
// [Write] adds a CRC-32C of the tensor data to the metadata
// ([ChecksumKey]) and [Read] checks it, so that a checkpoint corrupted on
// disk is refused rather than loaded as another model. [Encode] and
// [Decode] leave the metadata as given.
package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// DType names a tensor element type, spelled as in the safetensors header.
type DType string

// The element types this package knows. All multi-byte types are stored
// little-endian. The typed accessors of [File] cover F32, F64, I32 and I64;
// the others are carried as raw bytes in [Tensor.Data].
const (
	BOOL DType = "BOOL" // one byte per element, 0 or 1 (as numpy's bool)
	U8   DType = "U8"
	I8   DType = "I8"
	I16  DType = "I16"
	U16  DType = "U16"
	F16  DType = "F16" // IEEE 754 half precision
	BF16 DType = "BF16"
	I32  DType = "I32"
	U32  DType = "U32"
	F32  DType = "F32"
	I64  DType = "I64"
	U64  DType = "U64"
	F64  DType = "F64"
)

// Size returns the number of bytes one element of d occupies, or 0 when d
// is not a known dtype.
func (d DType) Size() int {
	switch d {
	case BOOL, U8, I8:
		return 1
	case I16, U16, F16, BF16:
		return 2
	case I32, U32, F32:
		return 4
	case I64, U64, F64:
		return 8
	}
	return 0
}

// MetadataKey is the reserved header key that holds the file's metadata; no
// tensor may have this name.
const MetadataKey = "__metadata__"

// MaxHeaderSize is the largest header [Decode] accepts, in bytes: the limit
// the reference safetensors implementation enforces.
const MaxHeaderSize = 100_000_000

// ErrTruncated reports a file shorter than its header says it is, as left
// behind by an interrupted copy. Errors from [Decode] and [Read] wrap it.
var ErrTruncated = errors.New("truncated")

// ErrNotFound reports that a tensor is not in the [File].
var ErrNotFound = errors.New("not in checkpoint")

// ErrMismatch reports that a checkpoint does not fit a model; [Compare]
// wraps it.
var ErrMismatch = errors.New("checkpoint does not match the model")

// Tensor is one named array: its element type, its shape (row-major; an
// empty shape is a scalar) and its raw little-endian bytes, whose length must
// be the product of Shape times DType.Size().
type Tensor struct {
	DType DType
	Shape []int64
	Data  []byte
}

// File is the content of one checkpoint: free-form string metadata (for
// example the model configuration, the epoch and the optimizer step) and
// the tensors by name. The zero value is an empty checkpoint; the Set
// methods allocate the maps as needed.
type File struct {
	Metadata map[string]string
	Tensors  map[string]Tensor
}

// Names returns the tensor names in sorted order, which is the order of
// their bytes in the data section of an encoded file.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.Tensors))
	for name := range f.Tensors {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Set stores t under name, replacing any tensor of that name. It keeps t's
// slices; [Encode] validates the tensor.
func (f *File) Set(name string, t Tensor) {
	if f.Tensors == nil {
		f.Tensors = make(map[string]Tensor)
	}
	f.Tensors[name] = t
}

// SetFloat32 stores v as an F32 tensor of the given shape under name,
// copying both. A shape whose element count differs from len(v) is
// reported by [Encode] and [Write], naming the tensor.
func (f *File) SetFloat32(name string, shape []int64, v []float32) {
	f.Set(name, Tensor{DType: F32, Shape: slices.Clone(shape), Data: pack(v, 4, func(b []byte, x float32) {
		binary.LittleEndian.PutUint32(b, math.Float32bits(x))
	})})
}

// SetFloat64 stores v as an F64 tensor of the given shape under name,
// copying both; see [File.SetFloat32].
func (f *File) SetFloat64(name string, shape []int64, v []float64) {
	f.Set(name, Tensor{DType: F64, Shape: slices.Clone(shape), Data: pack(v, 8, func(b []byte, x float64) {
		binary.LittleEndian.PutUint64(b, math.Float64bits(x))
	})})
}

// SetInt32 stores v as an I32 tensor of the given shape under name, copying
// both; see [File.SetFloat32].
func (f *File) SetInt32(name string, shape []int64, v []int32) {
	f.Set(name, Tensor{DType: I32, Shape: slices.Clone(shape), Data: pack(v, 4, func(b []byte, x int32) {
		binary.LittleEndian.PutUint32(b, uint32(x))
	})})
}

// SetInt64 stores v as an I64 tensor of the given shape under name, copying
// both; see [File.SetFloat32].
func (f *File) SetInt64(name string, shape []int64, v []int64) {
	f.Set(name, Tensor{DType: I64, Shape: slices.Clone(shape), Data: pack(v, 8, func(b []byte, x int64) {
		binary.LittleEndian.PutUint64(b, uint64(x))
	})})
}

// Float32 returns a copy of the F32 tensor name and its shape. It fails
// when the tensor is missing (wrapping [ErrNotFound]), has another dtype,
// or its data does not match its shape.
func (f *File) Float32(name string) ([]float32, []int64, error) {
	return unpack(f, name, F32, func(b []byte) float32 {
		return math.Float32frombits(binary.LittleEndian.Uint32(b))
	})
}

// Float64 returns a copy of the F64 tensor name and its shape; see
// [File.Float32].
func (f *File) Float64(name string) ([]float64, []int64, error) {
	return unpack(f, name, F64, func(b []byte) float64 {
		return math.Float64frombits(binary.LittleEndian.Uint64(b))
	})
}

// Int32 returns a copy of the I32 tensor name and its shape; see
// [File.Float32].
func (f *File) Int32(name string) ([]int32, []int64, error) {
	return unpack(f, name, I32, func(b []byte) int32 {
		return int32(binary.LittleEndian.Uint32(b))
	})
}

// Int64 returns a copy of the I64 tensor name and its shape; see
// [File.Float32].
func (f *File) Int64(name string) ([]int64, []int64, error) {
	return unpack(f, name, I64, func(b []byte) int64 {
		return int64(binary.LittleEndian.Uint64(b))
	})
}

func pack[T any](v []T, size int, put func([]byte, T)) []byte {
	b := make([]byte, len(v)*size)
	for i, x := range v {
		put(b[i*size:], x)
	}
	return b
}

func unpack[T any](f *File, name string, want DType, get func([]byte) T) ([]T, []int64, error) {
	t, ok := f.Tensors[name]
	if !ok {
		return nil, nil, fmt.Errorf("checkpoint: tensor %q: %w", name, ErrNotFound)
	}
	if t.DType != want {
		return nil, nil, fmt.Errorf("checkpoint: tensor %q: dtype %s, want %s", name, t.DType, want)
	}
	if err := t.check(); err != nil {
		return nil, nil, fmt.Errorf("checkpoint: tensor %q: %w", name, err)
	}
	size := want.Size()
	v := make([]T, len(t.Data)/size)
	for i := range v {
		v[i] = get(t.Data[i*size:])
	}
	return v, slices.Clone(t.Shape), nil
}

// numElements returns the product of shape, or an error for a negative
// dimension or a product that overflows int64.
func numElements(shape []int64) (int64, error) {
	n := int64(1)
	for i, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v: dimension %d is negative", shape, i)
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, fmt.Errorf("shape %v: element count overflows int64", shape)
		}
		n *= d
	}
	return n, nil
}

// byteSize returns the number of bytes a tensor of dtype d and the given
// shape occupies, checking d and the shape.
func byteSize(d DType, shape []int64) (int64, error) {
	size := int64(d.Size())
	if size == 0 {
		return 0, fmt.Errorf("unknown dtype %q", string(d))
	}
	n, err := numElements(shape)
	if err != nil {
		return 0, err
	}
	if n > math.MaxInt64/size {
		return 0, fmt.Errorf("shape %v of %s: byte size overflows int64", shape, d)
	}
	return n * size, nil
}

// check reports whether t's dtype is known and its data matches its shape.
func (t Tensor) check() error {
	n, err := byteSize(t.DType, t.Shape)
	if err != nil {
		return err
	}
	if n != int64(len(t.Data)) {
		return fmt.Errorf("shape %v of %s needs %d bytes, data has %d", t.Shape, t.DType, n, len(t.Data))
	}
	return nil
}

// Compare reports the first structural difference between the tensors of a
// checkpoint and those a model expects, in sorted-name order: a tensor in
// one but not the other, a different dtype, or a different shape. Tensor
// data and metadata are not compared. The error wraps [ErrMismatch] and
// counts any further differences, for example
//
//	checkpoint: checkpoint does not match the model: tensor "encoder/layer0/attn/in_proj/weight": shape [256 768] in checkpoint, [128 384] in model (and 11 more differences)
//
// Compare returns nil when every tensor matches.
func Compare(checkpoint, model *File) error {
	names := make([]string, 0, len(checkpoint.Tensors)+len(model.Tensors))
	for name := range checkpoint.Tensors {
		names = append(names, name)
	}
	for name := range model.Tensors {
		if _, ok := checkpoint.Tensors[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var first string
	more := 0
	for _, name := range names {
		c, inC := checkpoint.Tensors[name]
		m, inM := model.Tensors[name]
		var diff string
		switch {
		case !inM:
			diff = fmt.Sprintf("tensor %q: in checkpoint, not in model", name)
		case !inC:
			diff = fmt.Sprintf("tensor %q: in model, not in checkpoint", name)
		case c.DType != m.DType:
			diff = fmt.Sprintf("tensor %q: dtype %s in checkpoint, %s in model", name, c.DType, m.DType)
		case !slices.Equal(c.Shape, m.Shape):
			diff = fmt.Sprintf("tensor %q: shape %v in checkpoint, %v in model", name, c.Shape, m.Shape)
		default:
			continue
		}
		if first == "" {
			first = diff
		} else {
			more++
		}
	}
	switch {
	case first == "":
		return nil
	case more == 0:
		return fmt.Errorf("checkpoint: %w: %s", ErrMismatch, first)
	case more == 1:
		return fmt.Errorf("checkpoint: %w: %s (and 1 more difference)", ErrMismatch, first)
	default:
		return fmt.Errorf("checkpoint: %w: %s (and %d more differences)", ErrMismatch, first, more)
	}
}

package loader

import (
	"encoding/binary"
	"fmt"
	"math"
)

// numKind is a numeric storage type the reader converts from.
type numKind uint8

const (
	kInvalid numKind = iota
	kU8
	kI8
	kU16
	kI16
	kU32
	kI32
	kU64
	kI64
	kF16
	kF32
	kF64
)

var numKindNames = [...]string{"invalid", "u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f2", "f4", "f8"}

// String is numpy's code for the kind.
func (k numKind) String() string { return numKindNames[k] }

func (k numKind) isFloat() bool { return k >= kF16 }

// fieldConv reads one compound member from a raw row.
type fieldConv struct {
	name string
	off  int
	kind numKind
	be   bool
}

// typeKind maps an HDF5 member type to a numKind, or explains why it cannot
// be read as a number.
func typeKind(t h5Type) (numKind, bool, error) {
	switch t.class {
	case h5Enum:
		if t.enumBase == nil || t.enumBase.class != h5Integer {
			return kInvalid, false, fmt.Errorf("enum with a non-integer base")
		}
		return typeKind(*t.enumBase)
	case h5Integer:
		var k numKind
		switch t.size {
		case 1:
			k = kU8
		case 2:
			k = kU16
		case 4:
			k = kU32
		case 8:
			k = kU64
		default:
			return kInvalid, false, fmt.Errorf("%d-byte integer", t.size)
		}
		if t.signed {
			k++
		}
		return k, t.bigEndian, nil
	case h5Float:
		type layout struct{ spos, epos, esize, mpos, msize, ebias int }
		got := layout{t.spos, t.epos, t.esize, t.mpos, t.msize, t.ebias}
		var want layout
		var k numKind
		switch t.size {
		case 2:
			k, want = kF16, layout{15, 10, 5, 0, 10, 15}
		case 4:
			k, want = kF32, layout{31, 23, 8, 0, 23, 127}
		case 8:
			k, want = kF64, layout{63, 52, 11, 0, 52, 1023}
		default:
			return kInvalid, false, fmt.Errorf("%d-byte float", t.size)
		}
		if got != want {
			return kInvalid, false, fmt.Errorf("non-IEEE %d-byte float layout %+v", t.size, got)
		}
		return k, t.bigEndian, nil
	}
	return kInvalid, false, fmt.Errorf("%s member", t.className)
}

// f32 converts the member of the row starting at row[0] to float32.
func (c *fieldConv) f32(row []byte) float32 {
	b := row[c.off:]
	if c.be {
		return loadBE(b, c.kind)
	}
	switch c.kind {
	case kF32:
		return math.Float32frombits(binary.LittleEndian.Uint32(b))
	case kU8:
		return float32(b[0])
	case kI8:
		return float32(int8(b[0]))
	case kF16:
		return halfToFloat32(binary.LittleEndian.Uint16(b))
	case kF64:
		return float32(math.Float64frombits(binary.LittleEndian.Uint64(b)))
	case kI32:
		return float32(int32(binary.LittleEndian.Uint32(b)))
	case kU32:
		return float32(binary.LittleEndian.Uint32(b))
	case kI16:
		return float32(int16(binary.LittleEndian.Uint16(b)))
	case kU16:
		return float32(binary.LittleEndian.Uint16(b))
	case kI64:
		return float32(int64(binary.LittleEndian.Uint64(b)))
	case kU64:
		return float32(binary.LittleEndian.Uint64(b))
	}
	return 0
}

func loadBE(b []byte, k numKind) float32 {
	switch k {
	case kF32:
		return math.Float32frombits(binary.BigEndian.Uint32(b))
	case kU8:
		return float32(b[0])
	case kI8:
		return float32(int8(b[0]))
	case kF16:
		return halfToFloat32(binary.BigEndian.Uint16(b))
	case kF64:
		return float32(math.Float64frombits(binary.BigEndian.Uint64(b)))
	case kI32:
		return float32(int32(binary.BigEndian.Uint32(b)))
	case kU32:
		return float32(binary.BigEndian.Uint32(b))
	case kI16:
		return float32(int16(binary.BigEndian.Uint16(b)))
	case kU16:
		return float32(binary.BigEndian.Uint16(b))
	case kI64:
		return float32(int64(binary.BigEndian.Uint64(b)))
	case kU64:
		return float32(binary.BigEndian.Uint64(b))
	}
	return 0
}

// i64 converts the member to int64; floats truncate toward zero and
// non-finite floats report ok = false.
func (c *fieldConv) i64(row []byte) (v int64, ok bool) {
	b := row[c.off:]
	var o binary.ByteOrder = binary.LittleEndian
	if c.be {
		o = binary.BigEndian
	}
	switch c.kind {
	case kU8:
		return int64(b[0]), true
	case kI8:
		return int64(int8(b[0])), true
	case kU16:
		return int64(o.Uint16(b)), true
	case kI16:
		return int64(int16(o.Uint16(b))), true
	case kU32:
		return int64(o.Uint32(b)), true
	case kI32:
		return int64(int32(o.Uint32(b))), true
	case kU64:
		return int64(o.Uint64(b)), true
	case kI64:
		return int64(o.Uint64(b)), true
	}
	var f float64
	switch c.kind {
	case kF16:
		f = float64(halfToFloat32(o.Uint16(b)))
	case kF32:
		f = float64(math.Float32frombits(o.Uint32(b)))
	case kF64:
		f = math.Float64frombits(o.Uint64(b))
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return int64(f), true
}

// f64 converts the member to float64, exactly for integers up to 2^53
// (cuts on eventNumber, labels stored as any type).
func (c *fieldConv) f64(row []byte) float64 {
	if !c.kind.isFloat() {
		v, _ := c.i64(row)
		if c.kind == kU64 {
			var o binary.ByteOrder = binary.LittleEndian
			if c.be {
				o = binary.BigEndian
			}
			return float64(o.Uint64(row[c.off:]))
		}
		return float64(v)
	}
	if c.kind == kF64 {
		b := row[c.off:]
		if c.be {
			return math.Float64frombits(binary.BigEndian.Uint64(b))
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(b))
	}
	return float64(c.f32(row))
}

// isNonFinite reports NaN or ±Inf.
func isNonFinite(x float32) bool { return x != x || x > math.MaxFloat32 || x < -math.MaxFloat32 }

// f32le loads a little-endian float32.
func f32le(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) }

// rowPlan converts one group's variables from a compound row, grouped by
// storage type so that each inner loop is branch-free: little-endian f4
// first, then u1, then everything else.
type rowPlan struct {
	f32 []planVar
	u8  []planVar
	gen []planVar
}

type planVar struct {
	off       int // byte offset in the row
	pos       int // position in the output row (variable index)
	mean, std float32
	conv      fieldConv
}

func newRowPlan(convs []fieldConv, mean, std []float32) rowPlan {
	var p rowPlan
	for i, c := range convs {
		v := planVar{off: c.off, pos: i, mean: mean[i], std: std[i], conv: c}
		switch {
		case c.kind == kF32 && !c.be:
			p.f32 = append(p.f32, v)
		case c.kind == kU8:
			p.u8 = append(p.u8, v)
		default:
			p.gen = append(p.gen, v)
		}
	}
	return p
}

// run writes (x-mean)/std of every variable of the rows listed in idx
// into out (F values per row), row idx[k] to output row dst[k]. It
// returns false, leaving out partly written, if it meets a non-finite
// value.
func (p *rowPlan) run(out []float32, jet []byte, idx, dst []int, rs, f int) bool {
	for k, tt := range idx {
		row := jet[tt*rs : tt*rs+rs]
		o := out[dst[k]*f : dst[k]*f+f]
		for i := range p.f32 {
			v := &p.f32[i]
			x := math.Float32frombits(binary.LittleEndian.Uint32(row[v.off:]))
			if x-x != 0 {
				return false
			}
			o[v.pos] = (x - v.mean) / v.std
		}
		for i := range p.u8 {
			v := &p.u8[i]
			o[v.pos] = (float32(row[v.off]) - v.mean) / v.std
		}
		for i := range p.gen {
			v := &p.gen[i]
			x := v.conv.f32(row)
			if x-x != 0 {
				return false
			}
			o[v.pos] = (x - v.mean) / v.std
		}
	}
	return true
}

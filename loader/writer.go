package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// FieldType is the storage type of one member of a compound (structured)
// dataset, named as numpy names it.
type FieldType int

// The member types the writer creates and the reader converts.
const (
	Float16 FieldType = iota + 1 // "f2": IEEE half precision, as h5py writes float16
	Float32                      // "f4"
	Float64                      // "f8"
	Int8                         // "i1"
	Int16                        // "i2"
	Int32                        // "i4"
	Int64                        // "i8"
	Uint8                        // "u1"
	Uint16                       // "u2"
	Uint32                       // "u4"
	Uint64                       // "u8"
	Bool                         // "?": an HDF5 enum of int8 {FALSE=0, TRUE=1}, as h5py writes numpy bool
)

var fieldTypeNames = [...]string{"", "f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "?"}
var fieldTypeSizes = [...]int{0, 2, 4, 8, 1, 2, 4, 8, 1, 2, 4, 8, 1}

// String returns numpy's type code for t ("f4", "u1", "?", ...).
func (t FieldType) String() string {
	if t <= 0 || int(t) >= len(fieldTypeNames) {
		return fmt.Sprintf("FieldType(%d)", int(t))
	}
	return fieldTypeNames[t]
}

// Size is the number of bytes one value of t occupies.
func (t FieldType) Size() int {
	if t <= 0 || int(t) >= len(fieldTypeSizes) {
		return 0
	}
	return fieldTypeSizes[t]
}

// Field is one member of a compound row.
type Field struct {
	Name      string
	Type      FieldType
	BigEndian bool // store big-endian (for tests of foreign files); default little-endian
}

// RowLayout is a packed compound row: members in order without padding,
// which is numpy's layout for a structured dtype and so what h5py writes.
type RowLayout struct {
	Fields  []Field
	Offsets []int // byte offset of each field
	Size    int   // bytes per row
	index   map[string]int
}

// NewRowLayout packs fields in order. Names must be unique and non-empty.
func NewRowLayout(fields ...Field) (*RowLayout, error) {
	l := &RowLayout{Fields: append([]Field(nil), fields...), index: map[string]int{}}
	for i, f := range fields {
		if f.Name == "" {
			return nil, fmt.Errorf("loader: field %d has no name", i)
		}
		if err := checkName("field", f.Name); err != nil {
			return nil, fmt.Errorf("loader: %w", err)
		}
		if _, dup := l.index[f.Name]; dup {
			return nil, fmt.Errorf("loader: field %q appears twice", f.Name)
		}
		if f.Type.Size() == 0 {
			return nil, fmt.Errorf("loader: field %q: unknown type %v", f.Name, f.Type)
		}
		l.index[f.Name] = i
		l.Offsets = append(l.Offsets, l.Size)
		l.Size += f.Type.Size()
	}
	return l, nil
}

// checkName refuses a name that HDF5 would cut short: its C API takes
// NUL-terminated strings, so "pt\x00x" would name the field or dataset
// "pt".
func checkName(what, s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%s %q contains a NUL byte, which HDF5 names cannot hold", what, s)
	}
	return nil
}

// Index returns the position of the named field, or -1.
func (l *RowLayout) Index(name string) int {
	if i, ok := l.index[name]; ok {
		return i
	}
	return -1
}

func (l *RowLayout) order(i int) binary.ByteOrder {
	if l.Fields[i].BigEndian {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// Put stores v in field i of row, converting to the field's type: integers
// truncate toward zero, Bool stores v != 0, Float16 rounds to nearest even.
func (l *RowLayout) Put(row []byte, i int, v float64) {
	b := row[l.Offsets[i]:]
	o := l.order(i)
	switch l.Fields[i].Type {
	case Float16:
		o.PutUint16(b, float32ToHalf(float32(v)))
	case Float32:
		o.PutUint32(b, math.Float32bits(float32(v)))
	case Float64:
		o.PutUint64(b, math.Float64bits(v))
	case Int8:
		b[0] = byte(int8(v))
	case Int16:
		o.PutUint16(b, uint16(int16(v)))
	case Int32:
		o.PutUint32(b, uint32(int32(v)))
	case Int64:
		o.PutUint64(b, uint64(int64(v)))
	case Uint8:
		b[0] = uint8(v)
	case Uint16:
		o.PutUint16(b, uint16(v))
	case Uint32:
		o.PutUint32(b, uint32(v))
	case Uint64:
		o.PutUint64(b, uint64(v))
	case Bool:
		if v != 0 {
			b[0] = 1
		} else {
			b[0] = 0
		}
	}
}

// Get reads field i of row as float64.
func (l *RowLayout) Get(row []byte, i int) float64 {
	b := row[l.Offsets[i]:]
	o := l.order(i)
	switch l.Fields[i].Type {
	case Float16:
		return float64(halfToFloat32(o.Uint16(b)))
	case Float32:
		return float64(math.Float32frombits(o.Uint32(b)))
	case Float64:
		return math.Float64frombits(o.Uint64(b))
	case Int8:
		return float64(int8(b[0]))
	case Int16:
		return float64(int16(o.Uint16(b)))
	case Int32:
		return float64(int32(o.Uint32(b)))
	case Int64:
		return float64(int64(o.Uint64(b)))
	case Uint8, Bool:
		return float64(b[0])
	case Uint16:
		return float64(o.Uint16(b))
	case Uint32:
		return float64(o.Uint32(b))
	case Uint64:
		return float64(o.Uint64(b))
	}
	return 0
}

// Writer creates an HDF5 file of compound datasets in Salt's layout. Object
// time tracking is off, so the same content gives byte-identical files. A
// Writer is not safe for concurrent use.
type Writer struct {
	path   string
	id     int64
	tables []*Table
}

// Create creates (or truncates) an HDF5 file for writing.
func Create(path string) (*Writer, error) {
	if err := setupFilters(); err != nil {
		return nil, err
	}
	if err := checkName("path", path); err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	id, err := h5CreateFile(path)
	if err != nil {
		return nil, fmt.Errorf("loader: %s: %w", path, err)
	}
	return &Writer{path: path, id: id}, nil
}

// TableOptions sets a dataset's storage. The zero value is contiguous
// storage without compression (the fastest to read).
type TableOptions struct {
	ChunkRows int  // rows (jets) per chunk; 0 = contiguous
	Deflate   int  // gzip level 1-9 with byte shuffle, chunked only; 0 = none
	LZF       bool // LZF (filter 32000) as h5py writes it, chunked only; what atlas-ftag-tools' H5Writer (and so Salt's PredictionWriter) wrote by default until it moved to LZ4 in 2026
}

// Table is one compound dataset being written: 1-D (n_jets) or 2-D
// (n_jets, max_len).
type Table struct {
	w      *Writer
	name   string
	layout *RowLayout
	dims   []int
	id     int64
	typ    int64
}

// CreateTable creates dataset name with the given row layout and shape:
// dims = [n] for per-jet rows or [n, maxLen] for per-constituent rows.
func (w *Writer) CreateTable(name string, layout *RowLayout, dims []int, opts TableOptions) (*Table, error) {
	wrap := func(err error) error { return fmt.Errorf("loader: %s: dataset %q: %w", w.path, name, err) }
	if err := checkName("dataset name", name); err != nil {
		return nil, wrap(err)
	}
	if len(dims) < 1 || len(dims) > 2 {
		return nil, wrap(fmt.Errorf("rank %d not supported (want 1 or 2)", len(dims)))
	}
	for _, d := range dims {
		if d < 0 {
			return nil, wrap(fmt.Errorf("negative dimension in %v", dims))
		}
	}
	types := make([]int64, len(layout.Fields))
	names := make([]string, len(layout.Fields))
	defer func() {
		for _, t := range types {
			if t > 0 {
				h5CloseType(t)
			}
		}
	}()
	for i, f := range layout.Fields {
		t, err := h5MakeType(int(f.Type), f.BigEndian)
		if err != nil {
			return nil, wrap(err)
		}
		types[i], names[i] = t, f.Name
	}
	ct, err := h5Compound(layout.Size, names, layout.Offsets, types)
	if err != nil {
		return nil, wrap(err)
	}
	var chunk []int
	if opts.ChunkRows > 0 {
		chunk = []int{opts.ChunkRows}
		if len(dims) == 2 {
			chunk = append(chunk, max(dims[1], 1))
		}
	} else if opts.Deflate > 0 || opts.LZF {
		h5CloseType(ct)
		return nil, wrap(errors.New("compression needs ChunkRows > 0"))
	}
	filter := writeNoFilter
	switch {
	case opts.Deflate > 0 && opts.LZF:
		h5CloseType(ct)
		return nil, wrap(errors.New("choose one of Deflate and LZF"))
	case opts.Deflate > 0:
		filter = writeDeflate
	case opts.LZF:
		filter = writeLZF
	}
	id, err := h5CreateDataset(w.id, name, ct, dims, chunk, filter, opts.Deflate)
	if err != nil {
		h5CloseType(ct)
		return nil, wrap(err)
	}
	t := &Table{w: w, name: name, layout: layout, dims: append([]int(nil), dims...), id: id, typ: ct}
	w.tables = append(w.tables, t)
	return t, nil
}

// WriteRows writes whole rows starting at row start (jet index). rows holds
// k*RowsPer() packed rows for k jets.
func (t *Table) WriteRows(start int, rows []byte) error {
	per := t.RowsPer() * t.layout.Size
	if per == 0 {
		return nil
	}
	if len(rows)%per != 0 {
		return fmt.Errorf("loader: %s: dataset %q: %d bytes is not a whole number of %d-byte jets", t.w.path, t.name, len(rows), per)
	}
	k := len(rows) / per
	if start < 0 || start+k > t.dims[0] {
		return fmt.Errorf("loader: %s: dataset %q: rows %d..%d outside 0..%d", t.w.path, t.name, start, start+k, t.dims[0])
	}
	dim1 := 0
	if len(t.dims) == 2 {
		dim1 = t.dims[1]
	}
	if err := h5WriteRows(t.id, t.typ, len(t.dims), start, k, dim1, rows); err != nil {
		return fmt.Errorf("loader: %s: dataset %q: %w", t.w.path, t.name, err)
	}
	return nil
}

// SetStringsAttr writes vals as attribute name of the dataset: a
// one-dimensional array of variable-length UTF-8 strings, as h5py writes
// attrs[name] = list_of_str (the ftag preprocessing records its class
// names so: attrs["flavour_label"] = ["bjets", "cjets", ...]). An
// attribute of that name is replaced. ReadStringsAttr reads it back.
func (t *Table) SetStringsAttr(name string, vals []string) error {
	wrap := func(err error) error {
		return fmt.Errorf("loader: %s: dataset %q: attribute %q: %w", t.w.path, t.name, name, err)
	}
	if t.id == 0 {
		return wrap(errors.New("the dataset is closed"))
	}
	if name == "" {
		return wrap(errors.New("an attribute needs a name"))
	}
	if err := checkName("attribute name", name); err != nil {
		return wrap(err)
	}
	for i, v := range vals {
		if err := checkName(fmt.Sprintf("string %d", i), v); err != nil {
			return wrap(err)
		}
		if !utf8.ValidString(v) {
			return wrap(fmt.Errorf("string %d (%q) is not valid UTF-8", i, v))
		}
	}
	if err := h5WriteStringsAttr(t.id, name, vals); err != nil {
		return wrap(err)
	}
	return nil
}

// RowsPer is the number of compound rows per jet: 1 for 1-D tables,
// max_len for 2-D ones.
func (t *Table) RowsPer() int {
	if len(t.dims) == 2 {
		return t.dims[1]
	}
	return 1
}

// Close closes the dataset. Writer.Close closes any table left open.
func (t *Table) Close() error {
	if t.id != 0 {
		h5CloseDataset(t.id)
		h5CloseType(t.typ)
		t.id = 0
	}
	return nil
}

// Close closes all tables and the file.
func (w *Writer) Close() error {
	if w.id == 0 {
		return nil
	}
	for _, t := range w.tables {
		t.Close()
	}
	err := h5CloseFile(w.id)
	w.id = 0
	if err != nil {
		return fmt.Errorf("loader: %s: %w", w.path, err)
	}
	return nil
}

// halfToFloat32 converts IEEE 754 binary16 bits to float32 exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// subnormal: value = mant * 2^-24
	f := float32(mant) * (1.0 / (1 << 24))
	if sign != 0 {
		f = -f
	}
	return f
}

// float32ToHalf converts to binary16 with round-to-nearest-even; values too
// large become ±Inf, NaN stays NaN.
func float32ToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - e)
		half := mant >> shift
		rem := mant & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || (rem == mid && half&1 == 1) {
			half++
		}
		return sign | uint16(half)
	}
	half := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++ // may carry into the exponent, which is correct (up to Inf)
	}
	return sign | uint16(half)
}

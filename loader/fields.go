package loader

// This file reads named fields of a compound dataset in their own types,
// for copying them exactly into other files (an int64 eventNumber stays an
// int64; batches hand every value over as float32). HDF5 converts between compound types by member name, so a
// memory type holding only the wanted members at the offsets of the output
// row reads just those fields, as h5py's dataset.fields(...) does.

/*
#include <hdf5.h>
#include "h5quiet.h"
#include <stdlib.h>

// fr_dopen: the dataset, -2 when there is no such link, -1 on other errors.
static hid_t fr_dopen(hid_t f, const char *name) {
	h5_quiet q; h5_quiet_on(&q);
	hid_t d = -1;
	htri_t ex = H5Lexists(f, name, H5P_DEFAULT);
	if (ex == 0) d = -2;
	else if (ex > 0) d = H5Dopen2(f, name, H5P_DEFAULT);
	h5_quiet_off(&q);
	return d;
}

static void fr_dclose(hid_t d) { if (d >= 0) H5Dclose(d); }
static void fr_tclose(hid_t t) { if (t >= 0) H5Tclose(t); }

static int fr_dims(hid_t d, hsize_t *dims) {
	h5_quiet q; h5_quiet_on(&q);
	int rank = -1;
	hid_t s = H5Dget_space(d);
	if (s >= 0) {
		rank = H5Sget_simple_extent_ndims(s);
		if (rank >= 1 && rank <= 2) H5Sget_simple_extent_dims(s, dims, NULL);
		H5Sclose(s);
	}
	h5_quiet_off(&q);
	return rank;
}

// fr_nmembers: the number of members of the dataset's compound type, -1
// when it is not compound.
static int fr_nmembers(hid_t d) {
	h5_quiet q; h5_quiet_on(&q);
	int n = -1;
	hid_t t = H5Dget_type(d);
	if (t >= 0) {
		if (H5Tget_class(t) == H5T_COMPOUND) n = H5Tget_nmembers(t);
		H5Tclose(t);
	}
	h5_quiet_off(&q);
	return n;
}

// fr_member describes member i: its name (free with fr_free), class, size
// and whether an integer is signed.
static char *fr_member(hid_t d, unsigned i, int *cls, size_t *size, int *sign) {
	h5_quiet q; h5_quiet_on(&q);
	char *name = NULL;
	hid_t t = H5Dget_type(d);
	if (t >= 0) {
		hid_t m = H5Tget_member_type(t, i);
		if (m >= 0) {
			*cls = (int)H5Tget_class(m);
			*size = H5Tget_size(m);
			*sign = *cls == H5T_INTEGER ? (int)H5Tget_sign(m) == H5T_SGN_2 : 0;
			name = H5Tget_member_name(t, i);
			H5Tclose(m);
		}
		H5Tclose(t);
	}
	h5_quiet_off(&q);
	return name;
}

static void fr_free(void *p) { H5free_memory(p); }

// fr_atomic returns a new little-endian memory type for a kind (the values
// of the fieldKinds table).
static hid_t fr_atomic(int kind) {
	switch (kind) {
	case 1: {
		hid_t t = H5Tcopy(H5T_IEEE_F32LE);
		H5Tset_fields(t, 15, 10, 5, 0, 10);
		H5Tset_size(t, 2);
		H5Tset_ebias(t, 15);
		return t;
	}
	case 2: return H5Tcopy(H5T_IEEE_F32LE);
	case 3: return H5Tcopy(H5T_IEEE_F64LE);
	case 4: return H5Tcopy(H5T_STD_I8LE);
	case 5: return H5Tcopy(H5T_STD_I16LE);
	case 6: return H5Tcopy(H5T_STD_I32LE);
	case 7: return H5Tcopy(H5T_STD_I64LE);
	case 8: return H5Tcopy(H5T_STD_U8LE);
	case 9: return H5Tcopy(H5T_STD_U16LE);
	case 10: return H5Tcopy(H5T_STD_U32LE);
	case 11: return H5Tcopy(H5T_STD_U64LE);
	case 12: {
		hid_t t = H5Tenum_create(H5T_NATIVE_INT8);
		signed char v = 0;
		H5Tenum_insert(t, "FALSE", &v);
		v = 1;
		H5Tenum_insert(t, "TRUE", &v);
		return t;
	}
	}
	return -1;
}

static hid_t fr_compound(size_t size) { return H5Tcreate(H5T_COMPOUND, size); }

static int fr_insert(hid_t ct, const char *name, size_t off, int kind) {
	hid_t t = fr_atomic(kind);
	if (t < 0) return -1;
	int rc = H5Tinsert(ct, name, off, t) < 0 ? -1 : 0;
	H5Tclose(t);
	return rc;
}

// fr_read reads rows [start, start+count) of a rank 1 or 2 dataset, the
// first tread entries of each row of a rank 2 one, into a buffer of count
// (× tmem) elements of the memory type mt.
static int fr_read(hid_t d, hid_t mt, int rank, hsize_t start, hsize_t count, hsize_t tread, hsize_t tmem, void *buf) {
	h5_quiet q; h5_quiet_on(&q);
	int rc = -1;
	hsize_t off[2] = {start, 0}, cnt[2] = {count, tread}, mdims[2] = {count, tmem}, moff[2] = {0, 0};
	hid_t fs = H5Dget_space(d);
	hid_t ms = H5Screate_simple(rank, mdims, NULL);
	if (fs >= 0 && ms >= 0 &&
	    H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL) >= 0 &&
	    H5Sselect_hyperslab(ms, H5S_SELECT_SET, moff, NULL, cnt, NULL) >= 0) {
		rc = H5Dread(d, mt, ms, fs, H5P_DEFAULT, buf) < 0 ? -1 : 0;
	}
	if (ms >= 0) H5Sclose(ms);
	if (fs >= 0) H5Sclose(fs);
	h5_quiet_off(&q);
	return rc;
}
*/
import "C"

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"unsafe"

	"github.com/salt-ort/salt-ort/internal/nearest"
)

// fieldKinds maps the field types to fr_atomic's kind numbers.
var fieldKinds = map[FieldType]C.int{
	Float16: 1, Float32: 2, Float64: 3,
	Int8: 4, Int16: 5, Int32: 6, Int64: 7,
	Uint8: 8, Uint16: 9, Uint32: 10, Uint64: 11,
	Bool: 12,
}

// FieldTable is one compound dataset of a file, opened to read fields by
// name in their stored types.
type FieldTable struct {
	path, name string
	file, dset C.hid_t
	dims       []int
	types      map[string]FieldType // the readable fields
	other      map[string]string    // the fields of other types: a description
}

// OpenFieldTable opens dataset name of the HDF5 file at path. A dataset
// needing a filter this process cannot apply is an error naming the filter;
// a virtual dataset with a missing source is an error naming the source.
func OpenFieldTable(path, name string) (*FieldTable, error) {
	if err := checkName("path", path); err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	if err := checkName("dataset name", name); err != nil {
		return nil, fmt.Errorf("loader: %s: %w", path, err)
	}
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	if err := setupFilters(); err != nil {
		return nil, err
	}
	t := &FieldTable{path: path, name: name, file: -1, dset: -1, types: map[string]FieldType{}, other: map[string]string{}}
	if t.file = C.h5_fopen_quiet(cp); t.file < 0 {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("loader: %w", err)
		}
		if err := h5CheckOpen(path); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("loader: %s: cannot open as an HDF5 file", path)
	}
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	switch t.dset = C.fr_dopen(t.file, cn); t.dset {
	case -2:
		t.Close()
		return nil, fmt.Errorf("loader: %s: no dataset %q", path, name)
	case -1:
		t.Close()
		return nil, fmt.Errorf("loader: %s: dataset %q: cannot open", path, name)
	}
	l, err := h5Describe(int64(t.dset))
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("loader: %s: dataset %q: %w", path, name, err)
	}
	if err := missingFilterError(l.filters); err != nil {
		t.Close()
		return nil, fmt.Errorf("loader: %s: dataset %q: %w", path, name, err)
	}
	if l.virtual {
		if err := checkVirtual(path, name, int64(t.dset), l, 0); err != nil {
			t.Close()
			return nil, fmt.Errorf("loader: %s: dataset %q: %w", path, name, err)
		}
	}
	var dims [2]C.hsize_t
	rank := int(C.fr_dims(t.dset, &dims[0]))
	if rank < 1 || rank > 2 {
		t.Close()
		return nil, fmt.Errorf("loader: %s: dataset %q: rank %d, want 1 or 2", path, name, rank)
	}
	for i := range rank {
		t.dims = append(t.dims, int(dims[i]))
	}
	n := int(C.fr_nmembers(t.dset))
	if n < 0 {
		t.Close()
		return nil, fmt.Errorf("loader: %s: dataset %q is not a compound (structured) dataset", path, name)
	}
	for i := range n {
		var cls, sign C.int
		var size C.size_t
		cname := C.fr_member(t.dset, C.uint(i), &cls, &size, &sign)
		if cname == nil {
			t.Close()
			return nil, fmt.Errorf("loader: %s: dataset %q: cannot read member %d", path, name, i)
		}
		field := C.GoString(cname)
		C.fr_free(unsafe.Pointer(cname))
		if ft, ok := memberFieldType(int(cls), int(size), sign != 0); ok {
			t.types[field] = ft
		} else {
			t.other[field] = fmt.Sprintf("HDF5 class %d of %d bytes", int(cls), int(size))
		}
	}
	return t, nil
}

// memberFieldType maps an HDF5 member type to the writer's field type: integers
// and floats of their own size and signedness, and 1-byte enums (numpy
// bools as h5py writes them) to Bool.
func memberFieldType(cls, size int, signed bool) (FieldType, bool) {
	switch {
	case cls == int(C.H5T_FLOAT) && size == 2:
		return Float16, true
	case cls == int(C.H5T_FLOAT) && size == 4:
		return Float32, true
	case cls == int(C.H5T_FLOAT) && size == 8:
		return Float64, true
	case cls == int(C.H5T_ENUM) && size == 1:
		return Bool, true
	case cls != int(C.H5T_INTEGER):
		return 0, false
	}
	ints := map[int][2]FieldType{1: {Uint8, Int8}, 2: {Uint16, Int16},
		4: {Uint32, Int32}, 8: {Uint64, Int64}}
	t, ok := ints[size]
	if !ok {
		return 0, false
	}
	if signed {
		return t[1], true
	}
	return t[0], true
}

// Fields lists the dataset's readable fields, sorted.
func (t *FieldTable) Fields() []string {
	names := make([]string, 0, len(t.types))
	for n := range t.types {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Dims returns the dataset's dimensions: [jets] or [jets, constituents].
func (t *FieldTable) Dims() []int { return append([]int(nil), t.dims...) }

// Rows is the number of jets (the first dimension).
func (t *FieldTable) Rows() int { return t.dims[0] }

// Rank is the number of dimensions: 1 for per-jet datasets, 2 for
// per-constituent ones.
func (t *FieldTable) Rank() int { return len(t.dims) }

// Width is the number of constituents per jet (the second dimension) of a
// per-constituent dataset, 0 for a per-jet one.
func (t *FieldTable) Width() int {
	if len(t.dims) < 2 {
		return 0
	}
	return t.dims[1]
}

// Has reports whether the dataset has a readable field of that name.
func (t *FieldTable) Has(field string) bool {
	_, ok := t.types[field]
	return ok
}

// Type returns the stored type of a field, or an error naming the file,
// dataset and field.
func (t *FieldTable) Type(field string) (FieldType, error) {
	if ft, ok := t.types[field]; ok {
		return ft, nil
	}
	if d, ok := t.other[field]; ok {
		return 0, fmt.Errorf("loader: %s: dataset %q: field %q has a type that cannot be copied (%s)", t.path, t.name, field, d)
	}
	var names []string
	for n := range t.types {
		names = append(names, n)
	}
	for n := range t.other {
		names = append(names, n)
	}
	slices.Sort(names)
	hint := ""
	if n := nearest.Name(field, names); n != "" {
		hint = fmt.Sprintf("; did you mean %q?", n)
	}
	return 0, fmt.Errorf("loader: %s: dataset %q has no field %q%s (it has: %s)", t.path, t.name, field, hint, strings.Join(names, ", "))
}

// Close closes the dataset and the file.
func (t *FieldTable) Close() {
	C.fr_dclose(t.dset)
	C.h5_fclose(t.file)
	t.dset, t.file = -1, -1
}

// FieldReader reads some fields of an input table into rows of an output
// layout, leaving the other bytes of each row to the caller.
type FieldReader struct {
	t      *FieldTable
	mt     C.hid_t
	size   int // bytes per row of the output layout
	maxLen int // entries per jet in the output (rank 2)
	tRead  int // entries per jet read: min(file, maxLen)
}

// NewFieldReader prepares reading fields (indices into layout) of t; for
// a rank 2 table each jet has maxLen rows in the output, the first
// min(maxLen, file length) read from the file. Without fields it reads
// nothing.
func (t *FieldTable) NewFieldReader(layout *RowLayout, fields []int, maxLen int) (*FieldReader, error) {
	r := &FieldReader{t: t, mt: -1, size: layout.Size, maxLen: 1, tRead: 1}
	if len(t.dims) == 2 {
		r.maxLen, r.tRead = maxLen, min(maxLen, t.dims[1])
	}
	if len(fields) == 0 {
		return r, nil
	}
	r.mt = C.fr_compound(C.size_t(layout.Size))
	if r.mt < 0 {
		return nil, fmt.Errorf("loader: %s: dataset %q: cannot create a memory type", t.path, t.name)
	}
	for _, i := range fields {
		f := layout.Fields[i]
		cn := C.CString(f.Name)
		rc := C.fr_insert(r.mt, cn, C.size_t(layout.Offsets[i]), fieldKinds[f.Type])
		C.free(unsafe.Pointer(cn))
		if rc < 0 {
			r.Close()
			return nil, fmt.Errorf("loader: %s: dataset %q: field %q: cannot build its memory type", t.path, t.name, f.Name)
		}
	}
	return r, nil
}

// Read reads jets start..start+count into buf (count × maxLen rows of the
// layout); entries past the file's length are left as they are.
func (r *FieldReader) Read(start, count int, buf []byte) error {
	if r.mt < 0 || count == 0 || r.tRead == 0 {
		return nil
	}
	if len(buf) < count*r.maxLen*r.size {
		return fmt.Errorf("loader: %s: dataset %q: buffer of %d bytes for %d jets", r.t.path, r.t.name, len(buf), count)
	}
	if C.fr_read(r.t.dset, r.mt, C.int(len(r.t.dims)), C.hsize_t(start), C.hsize_t(count), C.hsize_t(r.tRead), C.hsize_t(r.maxLen), unsafe.Pointer(&buf[0])) < 0 {
		return fmt.Errorf("loader: %s: dataset %q: reading jets %d..%d failed", r.t.path, r.t.name, start, start+count)
	}
	return nil
}

// Close releases the memory type.
func (r *FieldReader) Close() {
	C.fr_tclose(r.mt)
	r.mt = -1
}

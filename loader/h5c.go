package loader

// This file is the thin cgo layer over <hdf5.h> for what gonum.org/v1/hdf5
// lacks: member type details (byte order, float layout, enum bases), filter
// availability, quiet existence checks with HDF5's own error text, and a
// writer that controls layout, h5py-style bool enums, float16 members and
// object time tracking (so that generated files are byte-identical).
//
// Every helper silences HDF5's automatic error printing for the duration of
// its own C call (the setting is per thread in the thread-safe library, and a
// cgo call stays on one thread) and copies the error stack into a buffer.

/*
#include <hdf5.h>
#include "h5quiet.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "h5filter.h"

typedef struct { char *buf; size_t cap; size_t len; } sa_errbuf;

static herr_t sa_err_walk(unsigned n, const H5E_error2_t *e, void *data) {
	sa_errbuf *b = (sa_errbuf *)data;
	(void)n;
	if (e->desc == NULL || e->desc[0] == 0 || b->len + 1 >= b->cap) return 0;
	int w = snprintf(b->buf + b->len, b->cap - b->len, "%s%s", b->len ? ": " : "", e->desc);
	if (w > 0) {
		b->len += (size_t)w;
		if (b->len >= b->cap) b->len = b->cap - 1;
	}
	return 0;
}

static void sa_err_capture(char *buf, size_t cap) {
	sa_errbuf b = {buf, cap, 0};
	if (cap == 0) return;
	buf[0] = 0;
	H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, sa_err_walk, &b);
}

static int sa_is_hdf5(const char *path, char *err, size_t cap) {
	h5_quiet q; h5_quiet_on(&q);
	htri_t r = H5Fis_hdf5(path);
	if (r < 0) sa_err_capture(err, cap);
	h5_quiet_off(&q);
	return (int)r;
}

// sa_open_check opens and closes the file read-only, capturing HDF5's
// error text when it cannot.
static int sa_open_check(const char *path, char *err, size_t cap) {
	h5_quiet q; h5_quiet_on(&q);
	int rc = 0;
	hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	if (f < 0) {
		sa_err_capture(err, cap);
		rc = -1;
	} else {
		H5Fclose(f);
	}
	h5_quiet_off(&q);
	return rc;
}

// sa_object_kind: 1 dataset, 2 another kind of object, 0 missing, -1 error.
static int sa_object_kind(hid_t loc, const char *name, char *err, size_t cap) {
	h5_quiet q; h5_quiet_on(&q);
	int out;
	htri_t ex = H5Lexists(loc, name, H5P_DEFAULT);
	if (ex < 0) {
		sa_err_capture(err, cap);
		out = -1;
	} else if (ex == 0) {
		out = 0;
	} else {
		H5O_info_t info;
		if (H5Oget_info_by_name2(loc, name, &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) {
			sa_err_capture(err, cap);
			out = -1;
		} else {
			out = info.type == H5O_TYPE_DATASET ? 1 : 2;
		}
	}
	h5_quiet_off(&q);
	return out;
}

static long sa_num_links(hid_t loc) {
	h5_quiet q; h5_quiet_on(&q);
	H5G_info_t info;
	long n = H5Gget_info(loc, &info) < 0 ? -1 : (long)info.nlinks;
	h5_quiet_off(&q);
	return n;
}

static long sa_link_name(hid_t loc, unsigned long i, char *buf, size_t cap) {
	h5_quiet q; h5_quiet_on(&q);
	long n = (long)H5Lget_name_by_idx(loc, ".", H5_INDEX_NAME, H5_ITER_INC, (hsize_t)i, buf, cap, H5P_DEFAULT);
	h5_quiet_off(&q);
	return n;
}

typedef struct {
	int cls;
	size_t size;
	int sign;
	int order;
	size_t spos, epos, esize, mpos, msize, ebias;
	int nmembers;
} sa_tinfo;

static int sa_type_info(hid_t t, sa_tinfo *o) {
	h5_quiet q; h5_quiet_on(&q);
	int rc = 0;
	memset(o, 0, sizeof *o);
	o->cls = (int)H5Tget_class(t);
	o->size = H5Tget_size(t);
	if (o->cls == H5T_INTEGER) {
		o->sign = (int)H5Tget_sign(t);
		o->order = (int)H5Tget_order(t);
	} else if (o->cls == H5T_FLOAT) {
		o->order = (int)H5Tget_order(t);
		if (H5Tget_fields(t, &o->spos, &o->epos, &o->esize, &o->mpos, &o->msize) < 0) rc = -1;
		o->ebias = H5Tget_ebias(t);
	} else if (o->cls == H5T_COMPOUND || o->cls == H5T_ENUM) {
		o->nmembers = H5Tget_nmembers(t);
	}
	if (o->cls < 0 || o->size == 0) rc = -1;
	h5_quiet_off(&q);
	return rc;
}

static hid_t sa_dset_type(hid_t dset) {
	h5_quiet q; h5_quiet_on(&q);
	hid_t t = H5Dget_type(dset);
	h5_quiet_off(&q);
	return t;
}

static hid_t sa_member_type(hid_t t, unsigned i) {
	h5_quiet q; h5_quiet_on(&q);
	hid_t m = H5Tget_member_type(t, i);
	h5_quiet_off(&q);
	return m;
}

static hid_t sa_super(hid_t t) {
	h5_quiet q; h5_quiet_on(&q);
	hid_t m = H5Tget_super(t);
	h5_quiet_off(&q);
	return m;
}

static char *sa_member_name(hid_t t, unsigned i) { return H5Tget_member_name(t, i); }
static void sa_free(void *p) { H5free_memory(p); }
static size_t sa_member_offset(hid_t t, unsigned i) { return H5Tget_member_offset(t, i); }
static void sa_tclose(hid_t t) { if (t >= 0) H5Tclose(t); }

static int sa_dset_dims(hid_t dset, hsize_t *dims, int max) {
	h5_quiet q; h5_quiet_on(&q);
	int rank = -1;
	hid_t s = H5Dget_space(dset);
	if (s >= 0) {
		rank = H5Sget_simple_extent_ndims(s);
		if (rank >= 0 && rank <= max) H5Sget_simple_extent_dims(s, dims, NULL);
		H5Sclose(s);
	}
	h5_quiet_off(&q);
	return rank;
}

// sa_filters lists the dataset's filters: ids, names (each name_cap bytes
// in names) and whether this libhdf5 can apply them (loading plugins as
// needed). It returns the number of filters, at most max, or -1.
static int sa_filters(hid_t dset, int *ids, char *names, size_t name_cap, int *avail, int max) {
	h5_quiet q; h5_quiet_on(&q);
	int n = -1;
	hid_t pl = H5Dget_create_plist(dset);
	if (pl >= 0) {
		n = H5Pget_nfilters(pl);
		if (n > max) n = max;
		for (int i = 0; i < n; i++) {
			unsigned flags = 0, cfg = 0;
			size_t ncd = 0;
			char *name = names + (size_t)i * name_cap;
			name[0] = 0;
			H5Z_filter_t id = H5Pget_filter2(pl, (unsigned)i, &flags, &ncd, NULL, name_cap, name, &cfg);
			ids[i] = (int)id;
			avail[i] = id >= 0 && H5Zfilter_avail(id) > 0;
		}
		H5Pclose(pl);
	}
	h5_quiet_off(&q);
	return n;
}

// sa_is_virtual: 1 for a virtual dataset, 0 for another layout, -1 error.
static int sa_is_virtual(hid_t dset) {
	h5_quiet q; h5_quiet_on(&q);
	int out = -1;
	hid_t pl = H5Dget_create_plist(dset);
	if (pl >= 0) {
		H5D_layout_t l = H5Pget_layout(pl);
		if (l >= 0) out = l == H5D_VIRTUAL;
		H5Pclose(pl);
	}
	h5_quiet_off(&q);
	return out;
}

// Writer side. Kinds match the Go FieldType constants.
static hid_t sa_make_type(int kind, int be) {
	hid_t base = -1;
	switch (kind) {
	case 1: {
		hid_t t = H5Tcopy(be ? H5T_IEEE_F32BE : H5T_IEEE_F32LE);
		// h5py's IEEE half precision: sign 15, exponent 10..14, mantissa 0..9.
		H5Tset_fields(t, 15, 10, 5, 0, 10);
		H5Tset_size(t, 2);
		H5Tset_ebias(t, 15);
		return t;
	}
	case 2: base = be ? H5T_IEEE_F32BE : H5T_IEEE_F32LE; break;
	case 3: base = be ? H5T_IEEE_F64BE : H5T_IEEE_F64LE; break;
	case 4: base = be ? H5T_STD_I8BE : H5T_STD_I8LE; break;
	case 5: base = be ? H5T_STD_I16BE : H5T_STD_I16LE; break;
	case 6: base = be ? H5T_STD_I32BE : H5T_STD_I32LE; break;
	case 7: base = be ? H5T_STD_I64BE : H5T_STD_I64LE; break;
	case 8: base = be ? H5T_STD_U8BE : H5T_STD_U8LE; break;
	case 9: base = be ? H5T_STD_U16BE : H5T_STD_U16LE; break;
	case 10: base = be ? H5T_STD_U32BE : H5T_STD_U32LE; break;
	case 11: base = be ? H5T_STD_U64BE : H5T_STD_U64LE; break;
	case 12: {
		// numpy bool as h5py writes it: an enum of int8 with FALSE=0, TRUE=1.
		hid_t t = H5Tenum_create(H5T_NATIVE_INT8);
		signed char v = 0;
		H5Tenum_insert(t, "FALSE", &v);
		v = 1;
		H5Tenum_insert(t, "TRUE", &v);
		return t;
	}
	default: return -1;
	}
	return H5Tcopy(base);
}

static hid_t sa_compound_create(size_t size) { return H5Tcreate(H5T_COMPOUND, size); }
static int sa_compound_insert(hid_t ct, const char *name, size_t off, hid_t mt) { return H5Tinsert(ct, name, off, mt); }

static hid_t sa_create_file(const char *path, char *err, size_t cap) {
	h5_quiet q; h5_quiet_on(&q);
	hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
	H5Pset_obj_track_times(fcpl, 0);
	hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
	if (f < 0) sa_err_capture(err, cap);
	H5Pclose(fcpl);
	h5_quiet_off(&q);
	return f;
}

static hid_t sa_create_dataset(hid_t file, const char *name, hid_t type, int rank, const hsize_t *dims,
                               const hsize_t *chunk, int filter, int level, char *err, size_t cap) {
	h5_quiet q; h5_quiet_on(&q);
	hid_t d = -1;
	hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
	hid_t space = H5Screate_simple(rank, dims, NULL);
	// A name with slashes ("attributions/jets") creates its groups.
	hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
	H5Pset_create_intermediate_group(lcpl, 1);
	H5Pset_obj_track_times(dcpl, 0);
	if (chunk != NULL) {
		H5Pset_chunk(dcpl, rank, chunk);
		if (filter == 1) {
			H5Pset_shuffle(dcpl);
			H5Pset_deflate(dcpl, (unsigned)level);
		} else if (filter == 2) {
			// LZF as h5py applies it: optional, so incompressible chunks
			// are stored as they are; set_local fills in the client data.
			H5Pset_filter(dcpl, SF_FILTER_LZF, H5Z_FLAG_OPTIONAL, 0, NULL);
		}
	}
	if (dcpl >= 0 && space >= 0 && lcpl >= 0) d = H5Dcreate2(file, name, type, space, lcpl, dcpl, H5P_DEFAULT);
	if (d < 0) sa_err_capture(err, cap);
	if (lcpl >= 0) H5Pclose(lcpl);
	if (space >= 0) H5Sclose(space);
	if (dcpl >= 0) H5Pclose(dcpl);
	h5_quiet_off(&q);
	return d;
}

// sa_write_rows writes rows [start, start+count) of a rank 1 or 2 dataset
// whose second dimension (if any) is dim1, from a buffer in the file type.
static int sa_write_rows(hid_t dset, hid_t type, int rank, hsize_t start, hsize_t count, hsize_t dim1,
                         const void *buf, char *err, size_t cap) {
	h5_quiet q; h5_quiet_on(&q);
	int rc = -1;
	hsize_t off[2] = {start, 0}, cnt[2] = {count, dim1};
	hid_t fs = H5Dget_space(dset);
	hid_t ms = H5Screate_simple(rank, cnt, NULL);
	if (fs >= 0 && ms >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL) >= 0) {
		rc = H5Dwrite(dset, type, ms, fs, H5P_DEFAULT, buf) < 0 ? -1 : 0;
	}
	if (rc < 0) sa_err_capture(err, cap);
	if (ms >= 0) H5Sclose(ms);
	if (fs >= 0) H5Sclose(fs);
	h5_quiet_off(&q);
	return rc;
}

static int sa_dclose(hid_t d) { return H5Dclose(d); }

// sa_open_objects counts the files, datasets, groups, named datatypes and
// attributes open in every file.
static long sa_open_objects(void) { return (long)H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL); }

static int sa_fclose(hid_t f, char *err, size_t cap) {
	h5_quiet q; h5_quiet_on(&q);
	int rc = H5Fclose(f) < 0 ? -1 : 0;
	if (rc < 0) sa_err_capture(err, cap);
	h5_quiet_off(&q);
	return rc;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"unsafe"
)

const h5ErrCap = 1024

// h5errbuf is a C buffer for HDF5's error text.
type h5errbuf struct{ p *C.char }

func newErrBuf() h5errbuf { return h5errbuf{(*C.char)(C.calloc(h5ErrCap, 1))} }
func (b h5errbuf) free()  { C.free(unsafe.Pointer(b.p)) }
func (b h5errbuf) err(what string) error {
	msg := C.GoString(b.p)
	if msg == "" {
		return errors.New(what + " failed")
	}
	return fmt.Errorf("%s: %s", what, msg)
}

// h5IsHDF5 reports whether path holds an HDF5 file.
func h5IsHDF5(path string) (bool, error) {
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	eb := newErrBuf()
	defer eb.free()
	r := C.sa_is_hdf5(cp, eb.p, h5ErrCap)
	if r < 0 {
		return false, eb.err("H5Fis_hdf5")
	}
	return r > 0, nil
}

var truncatedRE = regexp.MustCompile(`truncated file: eof = (\d+), sblock->base_addr = (\d+), stored_eof = (\d+)`)

// h5CheckOpen opens the file once to turn HDF5's failure into a message:
// a truncated file (a copy or transfer cut short, a job killed while
// writing) says so, with its size and the size its superblock records.
func h5CheckOpen(path string) error {
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	eb := newErrBuf()
	defer eb.free()
	if C.sa_open_check(cp, eb.p, h5ErrCap) == 0 {
		return nil
	}
	text := C.GoString(eb.p)
	if m := truncatedRE.FindStringSubmatch(text); m != nil {
		eof, _ := strconv.ParseInt(m[1], 10, 64)
		base, _ := strconv.ParseInt(m[2], 10, 64)
		stored, _ := strconv.ParseInt(m[3], 10, 64)
		want := base + stored
		return fmt.Errorf("loader: %s: the file is truncated: it has %d bytes, but its HDF5 superblock says it should have %d (%d missing); the copy or download was cut short, or the job writing it stopped before closing it: copy or write it again",
			path, eof, want, want-eof)
	}
	if text == "" {
		text = "H5Fopen failed"
	}
	return fmt.Errorf("loader: %s: cannot open as an HDF5 file: %s", path, text)
}

// Object kinds returned by h5ObjectKind.
const (
	objMissing = 0
	objDataset = 1
	objOther   = 2
)

// h5ObjectKind says whether name under loc is a dataset, something else or
// missing, without printing HDF5 errors.
func h5ObjectKind(loc int64, name string) (int, error) {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	eb := newErrBuf()
	defer eb.free()
	r := C.sa_object_kind(C.hid_t(loc), cn, eb.p, h5ErrCap)
	if r < 0 {
		return 0, eb.err("H5Lexists")
	}
	return int(r), nil
}

// h5LinkNames lists the names directly under loc (a file or group).
func h5LinkNames(loc int64) []string {
	n := int(C.sa_num_links(C.hid_t(loc)))
	var names []string
	buf := (*C.char)(C.calloc(1024, 1))
	defer C.free(unsafe.Pointer(buf))
	for i := 0; i < n; i++ {
		if C.sa_link_name(C.hid_t(loc), C.ulong(i), buf, 1024) > 0 {
			names = append(names, C.GoString(buf))
		}
	}
	return names
}

// HDF5 type classes (H5T_class_t) used here.
const (
	h5Integer       = int(C.H5T_INTEGER)
	h5Float         = int(C.H5T_FLOAT)
	h5ClassCompound = int(C.H5T_COMPOUND)
	h5Enum          = int(C.H5T_ENUM)
	h5OrderBE       = int(C.H5T_ORDER_BE)
	h5SignNone      = int(C.H5T_SGN_NONE)
)

// h5Type describes one HDF5 atomic type: what convert needs.
type h5Type struct {
	class                          int
	size                           int
	signed, bigEndian              bool
	spos, epos, esize, mpos, msize int
	ebias                          int
	enumBase                       *h5Type
	className                      string
}

func h5ClassName(c int) string {
	switch c {
	case int(C.H5T_INTEGER):
		return "integer"
	case int(C.H5T_FLOAT):
		return "float"
	case int(C.H5T_TIME):
		return "time"
	case int(C.H5T_STRING):
		return "string"
	case int(C.H5T_BITFIELD):
		return "bitfield"
	case int(C.H5T_OPAQUE):
		return "opaque"
	case int(C.H5T_COMPOUND):
		return "compound"
	case int(C.H5T_REFERENCE):
		return "reference"
	case int(C.H5T_ENUM):
		return "enum"
	case int(C.H5T_VLEN):
		return "variable-length"
	case int(C.H5T_ARRAY):
		return "array"
	}
	return fmt.Sprintf("class %d", c)
}

func h5DescribeType(t C.hid_t) (h5Type, error) {
	var info C.sa_tinfo
	if C.sa_type_info(t, &info) < 0 {
		return h5Type{}, errors.New("cannot inspect HDF5 datatype")
	}
	ty := h5Type{
		class:     int(info.cls),
		size:      int(info.size),
		signed:    int(info.sign) != h5SignNone,
		bigEndian: int(info.order) == h5OrderBE,
		spos:      int(info.spos), epos: int(info.epos), esize: int(info.esize),
		mpos: int(info.mpos), msize: int(info.msize), ebias: int(info.ebias),
	}
	ty.className = h5ClassName(ty.class)
	if ty.class == h5Enum {
		st := C.sa_super(t)
		if st < 0 {
			return ty, errors.New("cannot inspect enum base type")
		}
		defer C.sa_tclose(st)
		base, err := h5DescribeType(st)
		if err != nil {
			return ty, err
		}
		ty.enumBase = &base
	}
	return ty, nil
}

// h5Member is one member of a compound dataset type.
type h5Member struct {
	name   string
	offset int
	typ    h5Type
}

// h5Layout is what h5Describe learns about a dataset.
type h5Layout struct {
	dims    []int
	class   string
	rowSize int
	members []h5Member
	filters []h5Filter
	virtual bool // a virtual dataset (VDS): its data live in source datasets
}

// h5Describe inspects an open dataset: its shape, its compound members,
// the filters it needs and whether it is virtual.
func h5Describe(dset int64) (*h5Layout, error) {
	var cdims [8]C.hsize_t
	rank := int(C.sa_dset_dims(C.hid_t(dset), &cdims[0], 8))
	if rank < 0 || rank > 8 {
		return nil, errors.New("cannot read the dataspace")
	}
	l := &h5Layout{dims: make([]int, rank)}
	for i := range rank {
		l.dims[i] = int(cdims[i])
	}
	t := C.sa_dset_type(C.hid_t(dset))
	if t < 0 {
		return nil, errors.New("cannot read the datatype")
	}
	defer C.sa_tclose(t)
	var info C.sa_tinfo
	if C.sa_type_info(t, &info) < 0 {
		return nil, errors.New("cannot inspect the datatype")
	}
	l.class = h5ClassName(int(info.cls))
	l.rowSize = int(info.size)
	if int(info.cls) == h5ClassCompound {
		for i := 0; i < int(info.nmembers); i++ {
			cname := C.sa_member_name(t, C.uint(i))
			name := C.GoString(cname)
			C.sa_free(unsafe.Pointer(cname))
			mt := C.sa_member_type(t, C.uint(i))
			if mt < 0 {
				return nil, fmt.Errorf("cannot read the type of member %q", name)
			}
			ty, err := h5DescribeType(mt)
			C.sa_tclose(mt)
			if err != nil {
				return nil, fmt.Errorf("member %q: %w", name, err)
			}
			l.members = append(l.members, h5Member{name: name, offset: int(C.sa_member_offset(t, C.uint(i))), typ: ty})
		}
	}
	const maxFilters, nameCap = 32, 128
	var ids, avail [maxFilters]C.int
	names := (*C.char)(C.calloc(maxFilters*nameCap, 1))
	defer C.free(unsafe.Pointer(names))
	n := int(C.sa_filters(C.hid_t(dset), &ids[0], names, nameCap, &avail[0], maxFilters))
	if n < 0 {
		return nil, errors.New("cannot read the filter pipeline")
	}
	for i := range n {
		name := C.GoString((*C.char)(unsafe.Add(unsafe.Pointer(names), i*nameCap)))
		l.filters = append(l.filters, h5Filter{id: int(ids[i]), name: name, avail: avail[i] != 0})
	}
	switch C.sa_is_virtual(C.hid_t(dset)) {
	case 1:
		l.virtual = true
	case -1:
		return nil, errors.New("cannot read the storage layout")
	}
	return l, nil
}

// Writer wrappers; the public API is in writer.go.

// h5MakeType returns a new HDF5 type for kind (a FieldType value), big-endian
// if be. The caller closes it with h5CloseType.
func h5MakeType(kind int, be bool) (int64, error) {
	b := C.int(0)
	if be {
		b = 1
	}
	t := C.sa_make_type(C.int(kind), b)
	if t < 0 {
		return 0, fmt.Errorf("cannot make HDF5 type for kind %d", kind)
	}
	return int64(t), nil
}

func h5CloseType(t int64) { C.sa_tclose(C.hid_t(t)) }

// h5Compound builds a compound type of the given size from members.
func h5Compound(size int, names []string, offsets []int, types []int64) (int64, error) {
	ct := C.sa_compound_create(C.size_t(size))
	if ct < 0 {
		return 0, errors.New("cannot create compound type")
	}
	for i, n := range names {
		cn := C.CString(n)
		rc := C.sa_compound_insert(ct, cn, C.size_t(offsets[i]), C.hid_t(types[i]))
		C.free(unsafe.Pointer(cn))
		if rc < 0 {
			C.sa_tclose(ct)
			return 0, fmt.Errorf("cannot insert member %q into compound type", n)
		}
	}
	return int64(ct), nil
}

func h5CreateFile(path string) (int64, error) {
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	eb := newErrBuf()
	defer eb.free()
	f := C.sa_create_file(cp, eb.p, h5ErrCap)
	if f < 0 {
		return 0, eb.err("H5Fcreate")
	}
	return int64(f), nil
}

func h5CloseFile(f int64) error {
	eb := newErrBuf()
	defer eb.free()
	if C.sa_fclose(C.hid_t(f), eb.p, h5ErrCap) < 0 {
		return eb.err("H5Fclose")
	}
	return nil
}

// Filters the writer applies, as sa_create_dataset numbers them.
const (
	writeNoFilter = 0
	writeDeflate  = 1
	writeLZF      = 2
)

func h5CreateDataset(file int64, name string, typ int64, dims, chunk []int, filter, level int) (int64, error) {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	eb := newErrBuf()
	defer eb.free()
	var cd, cc [2]C.hsize_t
	for i, d := range dims {
		cd[i] = C.hsize_t(d)
	}
	var pc *C.hsize_t
	if chunk != nil {
		for i, c := range chunk {
			cc[i] = C.hsize_t(c)
		}
		pc = &cc[0]
	}
	d := C.sa_create_dataset(C.hid_t(file), cn, C.hid_t(typ), C.int(len(dims)), &cd[0], pc, C.int(filter), C.int(level), eb.p, h5ErrCap)
	if d < 0 {
		return 0, eb.err("H5Dcreate2")
	}
	return int64(d), nil
}

func h5WriteRows(dset, typ int64, rank, start, count, dim1 int, buf []byte) error {
	if count == 0 {
		return nil
	}
	eb := newErrBuf()
	defer eb.free()
	if C.sa_write_rows(C.hid_t(dset), C.hid_t(typ), C.int(rank), C.hsize_t(start), C.hsize_t(count), C.hsize_t(dim1),
		unsafe.Pointer(&buf[0]), eb.p, h5ErrCap) < 0 {
		return eb.err("H5Dwrite")
	}
	return nil
}

func h5CloseDataset(d int64) { C.sa_dclose(C.hid_t(d)) }

// h5OpenObjects is the number of HDF5 objects open in the process (files,
// datasets, groups, named datatypes, attributes), for tests that check
// nothing leaks.
func h5OpenObjects() int { return int(C.sa_open_objects()) }

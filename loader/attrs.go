package loader

// This file reads and writes string attributes of HDF5 objects: the class
// names the ftag preprocessing (UPP) records on the jets dataset
// (attrs["flavour_label"] = ["bjets", "cjets", ...]), which h5py stores as a
// one-dimensional array of variable-length UTF-8 strings.

/*
#include <hdf5.h>
#include "h5quiet.h"
#include <stdlib.h>
#include <string.h>

// at_oopen opens the object (dataset or group) name under f: -2 when
// there is no such link, -1 on other errors.
static hid_t at_oopen(hid_t f, const char *name) {
	h5_quiet q; h5_quiet_on(&q);
	hid_t o = -1;
	htri_t ex = H5Lexists(f, name, H5P_DEFAULT);
	if (ex == 0) o = -2;
	else if (ex > 0) o = H5Oopen(f, name, H5P_DEFAULT);
	h5_quiet_off(&q);
	return o;
}

static void at_oclose(hid_t o) { if (o >= 0) H5Oclose(o); }

// at_aopen opens attribute name of o: -2 when o has none of that name,
// -1 on other errors.
static hid_t at_aopen(hid_t o, const char *name) {
	h5_quiet q; h5_quiet_on(&q);
	hid_t a = -1;
	htri_t ex = H5Aexists(o, name);
	if (ex == 0) a = -2;
	else if (ex > 0) a = H5Aopen(o, name, H5P_DEFAULT);
	h5_quiet_off(&q);
	return a;
}

static void at_aclose(hid_t a) { if (a >= 0) H5Aclose(a); }

static long at_num_attrs(hid_t o) {
	h5_quiet q; h5_quiet_on(&q);
	H5O_info_t info;
	long n = H5Oget_info2(o, &info, H5O_INFO_NUM_ATTRS) < 0 ? -1 : (long)info.num_attrs;
	h5_quiet_off(&q);
	return n;
}

static long at_attr_name(hid_t o, unsigned long i, char *buf, size_t cap) {
	h5_quiet q; h5_quiet_on(&q);
	long n = (long)H5Aget_name_by_idx(o, ".", H5_INDEX_NAME, H5_ITER_INC, (hsize_t)i, buf, cap, H5P_DEFAULT);
	h5_quiet_off(&q);
	return n;
}

typedef struct {
	int cls;           // H5T_class_t of the attribute's type
	int vlen;          // a variable-length string
	size_t size;       // bytes per fixed-length string
	int pad;           // H5T_str_t of a fixed-length string
	int cset;          // H5T_cset_t
	int rank;          // 0 for a scalar
	long long npoints; // number of elements (0 for a null dataspace)
} at_info;

static int at_describe(hid_t a, at_info *o) {
	h5_quiet q; h5_quiet_on(&q);
	int rc = -1;
	memset(o, 0, sizeof *o);
	hid_t t = H5Aget_type(a);
	hid_t s = H5Aget_space(a);
	if (t >= 0 && s >= 0) {
		o->cls = (int)H5Tget_class(t);
		o->size = H5Tget_size(t);
		if (o->cls == H5T_STRING) {
			o->vlen = H5Tis_variable_str(t) > 0;
			o->pad = (int)H5Tget_strpad(t);
			o->cset = (int)H5Tget_cset(t);
		}
		o->rank = H5Sget_simple_extent_ndims(s);
		o->npoints = (long long)H5Sget_simple_extent_npoints(s);
		rc = o->cls < 0 || o->rank < 0 || o->npoints < 0 ? -1 : 0;
	}
	if (s >= 0) H5Sclose(s);
	if (t >= 0) H5Tclose(t);
	h5_quiet_off(&q);
	return rc;
}

static hid_t at_vlen_type(int cset) {
	hid_t t = H5Tcopy(H5T_C_S1);
	H5Tset_size(t, H5T_VARIABLE);
	H5Tset_cset(t, (H5T_cset_t)cset);
	return t;
}

// at_read_vlen reads the attribute's variable-length strings into ptrs
// (one per element; HDF5 allocates them, NULL for an unset one); release
// them with at_reclaim_vlen.
static int at_read_vlen(hid_t a, int cset, char **ptrs) {
	h5_quiet q; h5_quiet_on(&q);
	hid_t t = at_vlen_type(cset);
	int rc = H5Aread(a, t, ptrs) < 0 ? -1 : 0;
	H5Tclose(t);
	h5_quiet_off(&q);
	return rc;
}

static void at_reclaim_vlen(hid_t a, int cset, char **ptrs) {
	h5_quiet q; h5_quiet_on(&q);
	hid_t t = at_vlen_type(cset);
	hid_t s = H5Aget_space(a);
	if (s >= 0) {
		H5Dvlen_reclaim(t, s, H5P_DEFAULT, ptrs);
		H5Sclose(s);
	}
	H5Tclose(t);
	h5_quiet_off(&q);
}

// at_read_fixed reads the attribute's fixed-length strings, in their own
// type, into buf (npoints × size bytes).
static int at_read_fixed(hid_t a, void *buf) {
	h5_quiet q; h5_quiet_on(&q);
	int rc = -1;
	hid_t t = H5Aget_type(a);
	if (t >= 0) {
		rc = H5Aread(a, t, buf) < 0 ? -1 : 0;
		H5Tclose(t);
	}
	h5_quiet_off(&q);
	return rc;
}

// at_write_vlen writes n strings as attribute name of o, a
// one-dimensional array of variable-length UTF-8 strings (what h5py writes
// for a list of str), replacing an attribute of that name.
static int at_write_vlen(hid_t o, const char *name, const char **vals, hsize_t n) {
	h5_quiet q; h5_quiet_on(&q);
	int rc = -1;
	hid_t t = at_vlen_type(H5T_CSET_UTF8);
	hid_t s = H5Screate_simple(1, &n, NULL);
	if (H5Aexists(o, name) > 0) H5Adelete(o, name);
	hid_t a = s >= 0 ? H5Acreate2(o, name, t, s, H5P_DEFAULT, H5P_DEFAULT) : -1;
	if (a >= 0) {
		rc = H5Awrite(a, t, vals) < 0 ? -1 : 0;
		if (H5Aclose(a) < 0) rc = -1;
	}
	if (s >= 0) H5Sclose(s);
	H5Tclose(t);
	h5_quiet_off(&q);
	return rc;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Bounds on what ReadStringsAttr allocates: a class list is a few names,
// and an attribute claiming more is damaged or something else.
const (
	maxAttrStrings = 1 << 16 // elements
	maxAttrBytes   = 1 << 24 // bytes of text in all
	maxAttrNames   = 64      // attribute names listed in a message
)

// AttrError is a string attribute that ReadStringsAttr cannot read: the
// object lacks it (Missing, with the attributes it has) or it is not an
// array of strings (Reason).
type AttrError struct {
	File    string   // the HDF5 file
	Dataset string   // the dataset (or group) holding the attribute
	Attr    string   // the attribute's name
	Missing bool     // the dataset has no attribute of that name
	Attrs   []string // with Missing: the attributes it has, sorted
	Reason  string   // without Missing: why the attribute cannot be read
}

// Error names the file, the dataset and the attribute and says what to
// do.
func (e *AttrError) Error() string {
	if e.Missing {
		has := "it has none"
		if len(e.Attrs) > 0 {
			has = "it has " + strings.Join(e.Attrs, ", ")
		}
		return fmt.Sprintf("loader: %s: dataset %q has no attribute %q (%s): the program that wrote the file did not record it; list the values in the configuration instead (for flavour_label: list class_names in the configuration, in label order)",
			e.File, e.Dataset, e.Attr, has)
	}
	return fmt.Sprintf("loader: %s: dataset %q: attribute %q %s", e.File, e.Dataset, e.Attr, e.Reason)
}

// ReadStringsAttr reads attribute attr of the dataset (or group) named
// dataset in the HDF5 file at file as a list of strings: an array of
// variable-length strings (what h5py writes for a list of str, and so
// what the ftag preprocessing writes for flavour_label), an array of
// fixed-length strings (a numpy "S" array; padding is removed) or a
// single string of either kind. An attribute that is missing or holds no
// strings is an *AttrError; one of more than 65536 strings or 16 MiB of
// text is refused before it is read.
func ReadStringsAttr(file, dataset, attr string) ([]string, error) {
	for _, n := range []struct{ what, s string }{{"path", file}, {"dataset name", dataset}, {"attribute name", attr}} {
		if err := checkName(n.what, n.s); err != nil {
			return nil, fmt.Errorf("loader: %w", err)
		}
	}
	cp := C.CString(file)
	defer C.free(unsafe.Pointer(cp))
	f := C.h5_fopen_quiet(cp)
	if f < 0 {
		if _, err := os.Stat(file); err != nil {
			return nil, fmt.Errorf("loader: %w", err)
		}
		if err := h5CheckOpen(file); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("loader: %s: cannot open as an HDF5 file", file)
	}
	defer C.h5_fclose(f)
	cd := C.CString(dataset)
	defer C.free(unsafe.Pointer(cd))
	o := C.at_oopen(f, cd)
	switch o {
	case -2:
		return nil, fmt.Errorf("loader: %s: no dataset %q (the file has %s)", file, dataset, strings.Join(h5LinkNames(int64(f)), ", "))
	case -1:
		return nil, fmt.Errorf("loader: %s: dataset %q: cannot open", file, dataset)
	}
	defer C.at_oclose(o)
	ca := C.CString(attr)
	defer C.free(unsafe.Pointer(ca))
	a := C.at_aopen(o, ca)
	switch a {
	case -2:
		return nil, &AttrError{File: file, Dataset: dataset, Attr: attr, Missing: true, Attrs: attrNames(o)}
	case -1:
		return nil, &AttrError{File: file, Dataset: dataset, Attr: attr, Reason: "cannot be opened"}
	}
	defer C.at_aclose(a)
	vals, reason := readStrings(a)
	if reason != "" {
		return nil, &AttrError{File: file, Dataset: dataset, Attr: attr, Reason: reason}
	}
	return vals, nil
}

// attrNames lists the names of o's attributes (at most maxAttrNames).
func attrNames(o C.hid_t) []string {
	n := int(C.at_num_attrs(o))
	buf := (*C.char)(C.calloc(1024, 1))
	defer C.free(unsafe.Pointer(buf))
	var names []string
	for i := 0; i < min(n, maxAttrNames); i++ {
		if C.at_attr_name(o, C.ulong(i), buf, 1024) > 0 {
			names = append(names, C.GoString(buf))
		}
	}
	if n > maxAttrNames {
		names = append(names, fmt.Sprintf("and %d more", n-maxAttrNames))
	}
	return names
}

// readStrings reads an open attribute as strings, or says why it cannot.
func readStrings(a C.hid_t) ([]string, string) {
	var info C.at_info
	if C.at_describe(a, &info) < 0 {
		return nil, "cannot be inspected"
	}
	if int(info.cls) != int(C.H5T_STRING) {
		return nil, fmt.Sprintf("holds %s values, not strings", h5ClassName(int(info.cls)))
	}
	if info.rank > 1 {
		return nil, fmt.Sprintf("is a %d-dimensional array; want a list of strings", int(info.rank))
	}
	n := int64(info.npoints)
	if n > maxAttrStrings {
		return nil, fmt.Sprintf("holds %d strings, more than the %d a list of names may have", n, maxAttrStrings)
	}
	if n == 0 {
		return []string{}, ""
	}
	var vals []string
	var reason string
	if info.vlen != 0 {
		vals, reason = readVlen(a, int(n), info.cset)
	} else {
		vals, reason = readFixed(a, int(n), int(info.size), int(info.pad))
	}
	if reason != "" {
		return nil, reason
	}
	for i, v := range vals {
		if !utf8.ValidString(v) {
			return nil, fmt.Sprintf("string %d (%q) is not valid UTF-8", i, v)
		}
	}
	return vals, ""
}

// readVlen reads n variable-length strings, copying at most
// maxAttrBytes of text.
func readVlen(a C.hid_t, n int, cset C.int) ([]string, string) {
	ptrs := (**C.char)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(ptrs))
	if C.at_read_vlen(a, cset, ptrs) < 0 {
		return nil, "cannot be read as variable-length strings"
	}
	defer C.at_reclaim_vlen(a, cset, ptrs)
	budget := maxAttrBytes
	vals := make([]string, n)
	for i, p := range unsafe.Slice(ptrs, n) {
		if p == nil {
			continue
		}
		l := int(C.strnlen(p, C.size_t(budget+1)))
		if l > budget {
			return nil, fmt.Sprintf("holds more than %d bytes of text", maxAttrBytes)
		}
		budget -= l
		vals[i] = C.GoStringN(p, C.int(l))
	}
	return vals, ""
}

// readFixed reads n fixed-length strings of size bytes each and removes
// their padding.
func readFixed(a C.hid_t, n, size, pad int) ([]string, string) {
	if size <= 0 || int64(size)*int64(n) > maxAttrBytes {
		return nil, fmt.Sprintf("holds %d strings of %d bytes, more than %d bytes of text", n, size, maxAttrBytes)
	}
	buf := make([]byte, n*size)
	if C.at_read_fixed(a, unsafe.Pointer(&buf[0])) < 0 {
		return nil, "cannot be read as fixed-length strings"
	}
	vals := make([]string, n)
	for i := range vals {
		s := buf[i*size : (i+1)*size]
		if pad == int(C.H5T_STR_SPACEPAD) {
			s = []byte(strings.TrimRight(string(s), " "))
		} else if j := strings.IndexByte(string(s), 0); j >= 0 {
			s = s[:j]
		}
		vals[i] = string(s)
	}
	return vals, ""
}

// h5WriteStringsAttr writes vals as attribute name of the open object
// obj (a dataset), as h5py writes a list of str.
func h5WriteStringsAttr(obj int64, name string, vals []string) error {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	cvals := make([]*C.char, max(len(vals), 1))
	for i, v := range vals {
		cvals[i] = C.CString(v)
	}
	defer func() {
		for _, p := range cvals {
			C.free(unsafe.Pointer(p))
		}
	}()
	// The C side reads the array of pointers, so it lives in C memory.
	arr := (**C.char)(C.calloc(C.size_t(len(cvals)), C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(arr))
	copy(unsafe.Slice(arr, len(cvals)), cvals)
	if C.at_write_vlen(C.hid_t(obj), cn, arr, C.hsize_t(len(vals))) < 0 {
		return errors.New("H5Awrite failed")
	}
	return nil
}

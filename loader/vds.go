package loader

// This file checks virtual datasets (VDS), such as those atlas-ftag-tools'
// vds.py and Salt build over a wildcard of files. HDF5 reads a VDS whose
// source file or dataset is missing, or part of whose extent maps to no
// source, as the dataset's fill value (zeros) without any error, so a moved
// or deleted input silently becomes zero jets. Open therefore checks every
// mapping first: it finds each source file the way HDF5 does, opens the
// source dataset and checks that it covers the mapped rows, has the
// virtual dataset's fields and filters this process can apply.

/*
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	int vrank, srank;
	hsize_t vstart[H5S_MAX_RANK], vend[H5S_MAX_RANK];
	hssize_t vpoints;
	hsize_t send[H5S_MAX_RANK];
	int srcall;
	int unlimited;
} vd_map;

// vd_count: the number of mappings of a virtual dataset, -1 on error.
static long vd_count(hid_t dset) {
	H5E_auto2_t f; void *d;
	H5Eget_auto2(H5E_DEFAULT, &f, &d);
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	long n = -1;
	hid_t pl = H5Dget_create_plist(dset);
	if (pl >= 0) {
		size_t c = 0;
		if (H5Pget_virtual_count(pl, &c) >= 0) n = (long)c;
		H5Pclose(pl);
	}
	H5Eset_auto2(H5E_DEFAULT, f, d);
	return n;
}

// vd_unlimited: whether a selection is an unlimited hyperslab (a mapping
// whose extent follows its source's).
static int vd_unlimited(hid_t space) {
	if (H5Sget_select_type(space) != H5S_SEL_HYPERSLABS || H5Sis_regular_hyperslab(space) <= 0) return 0;
	hsize_t start[H5S_MAX_RANK], stride[H5S_MAX_RANK], count[H5S_MAX_RANK], block[H5S_MAX_RANK];
	if (H5Sget_regular_hyperslab(space, start, stride, count, block) < 0) return 0;
	int rank = H5Sget_simple_extent_ndims(space);
	for (int i = 0; i < rank; i++)
		if (count[i] == H5S_UNLIMITED || block[i] == H5S_UNLIMITED) return 1;
	return 0;
}

// vd_mapping describes mapping i: the source file and dataset names, the
// bounds and size of the virtual selection and the end of the source one.
static int vd_mapping(hid_t dset, size_t i, char *file, size_t fcap, char *src, size_t scap, vd_map *m) {
	H5E_auto2_t f; void *d;
	H5Eget_auto2(H5E_DEFAULT, &f, &d);
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	int rc = -1;
	hid_t vs = -1, ss = -1;
	memset(m, 0, sizeof *m);
	hid_t pl = H5Dget_create_plist(dset);
	if (pl < 0) goto done;
	if (H5Pget_virtual_filename(pl, i, file, fcap) < 0 || H5Pget_virtual_dsetname(pl, i, src, scap) < 0) goto done;
	vs = H5Pget_virtual_vspace(pl, i);
	ss = H5Pget_virtual_srcspace(pl, i);
	if (vs < 0 || ss < 0) goto done;
	m->unlimited = vd_unlimited(vs) || vd_unlimited(ss);
	// A source selection of "all" (h5py's VirtualSource without slicing)
	// is stored without the source's extent: the whole source dataset
	// then fills the virtual selection.
	m->srcall = H5Sget_select_type(ss) == H5S_SEL_ALL;
	m->vrank = H5Sget_simple_extent_ndims(vs);
	m->srank = H5Sget_simple_extent_ndims(ss);
	if (m->vrank < 0 || m->srank < 0) goto done;
	if (!m->unlimited) {
		hsize_t sstart[H5S_MAX_RANK];
		m->vpoints = H5Sget_select_npoints(vs);
		if (m->vpoints > 0 && H5Sget_select_bounds(vs, m->vstart, m->vend) < 0) goto done;
		if (!m->srcall && H5Sget_select_npoints(ss) > 0 && H5Sget_select_bounds(ss, sstart, m->send) < 0) goto done;
	}
	rc = 0;
done:
	if (vs >= 0) H5Sclose(vs);
	if (ss >= 0) H5Sclose(ss);
	if (pl >= 0) H5Pclose(pl);
	H5Eset_auto2(H5E_DEFAULT, f, d);
	return rc;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unsafe"

	"gonum.org/v1/hdf5"
)

// vdsMapping is one mapping of a virtual dataset onto a source dataset.
type vdsMapping struct {
	file, dset   string // as stored: "." is the virtual dataset's own file
	vStart, vEnd []int  // bounds of the selection in the virtual dataset
	vPoints      int64  // elements selected in the virtual dataset
	sEnd         []int  // last element selected in the source dataset (unless srcAll)
	srcAll       bool   // the whole source dataset fills the virtual selection
	unlimited    bool   // extent follows the source (printf-style or unlimited mapping)
	srcRank      int
}

// h5VirtualMappings lists the mappings of an open virtual dataset.
func h5VirtualMappings(dset int64) ([]vdsMapping, error) {
	n := int(C.vd_count(C.hid_t(dset)))
	if n < 0 {
		return nil, errors.New("cannot read the virtual dataset's mappings")
	}
	const bufCap = 4096
	file := (*C.char)(C.calloc(bufCap, 1))
	defer C.free(unsafe.Pointer(file))
	src := (*C.char)(C.calloc(bufCap, 1))
	defer C.free(unsafe.Pointer(src))
	var out []vdsMapping
	for i := range n {
		var m C.vd_map
		if C.vd_mapping(C.hid_t(dset), C.size_t(i), file, bufCap, src, bufCap, &m) < 0 {
			return nil, fmt.Errorf("cannot read mapping %d of the virtual dataset", i)
		}
		vm := vdsMapping{file: C.GoString(file), dset: C.GoString(src), vPoints: int64(m.vpoints),
			unlimited: m.unlimited != 0, srcAll: m.srcall != 0, srcRank: int(m.srank)}
		for d := 0; d < int(m.vrank); d++ {
			vm.vStart = append(vm.vStart, int(m.vstart[d]))
			vm.vEnd = append(vm.vEnd, int(m.vend[d]))
		}
		for d := 0; d < int(m.srank); d++ {
			vm.sEnd = append(vm.sEnd, int(m.send[d]))
		}
		out = append(out, vm)
	}
	return out, nil
}

// vdsSourceCandidates lists where HDF5 (1.10) looks for the source file
// src of a virtual dataset in the file vdsPath, in its order: the name
// itself if absolute; each directory of HDF5_VDS_PREFIX; the virtual file's
// directory; the name relative to the working directory; the directory of
// the virtual file with symbolic links resolved. An absolute name that is
// not found is looked up by its base name in the other places.
func vdsSourceCandidates(vdsPath, src string) []string {
	var out []string
	add := func(p string) {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	name := src
	if filepath.IsAbs(src) {
		add(src)
		name = filepath.Base(src)
	}
	abs, err := filepath.Abs(vdsPath)
	if err != nil {
		abs = vdsPath
	}
	dir := filepath.Dir(abs)
	for _, p := range strings.Split(os.Getenv("HDF5_VDS_PREFIX"), ":") {
		if p != "" {
			add(filepath.Join(strings.ReplaceAll(p, "${ORIGIN}", dir), name))
		}
	}
	add(filepath.Join(dir, name))
	if wd, err := os.Getwd(); err == nil {
		add(filepath.Join(wd, name))
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		add(filepath.Join(filepath.Dir(real), name))
	}
	return out
}

// findVDSSource returns the file HDF5 reads for source file src, or "" and
// the places it looked.
func findVDSSource(vdsPath, src string) (string, []string) {
	if src == "." {
		return vdsPath, nil
	}
	cands := vdsSourceCandidates(vdsPath, src)
	for _, c := range cands {
		if st, err := os.Stat(c); err != nil || st.IsDir() {
			continue
		}
		if ok, err := h5IsHDF5(c); err == nil && ok {
			return c, nil
		}
	}
	return "", cands
}

// rowsOf formats the rows a mapping covers in the virtual dataset.
func (m vdsMapping) rowsOf() string {
	if len(m.vStart) == 0 {
		return "no rows"
	}
	return fmt.Sprintf("rows %d..%d", m.vStart[0], m.vEnd[0]+1)
}

// checkVirtual checks that virtual dataset name (open as dset, described
// by l) of the file at path reads real data everywhere: its mappings cover
// its whole extent and every source file and dataset is there, large
// enough, with the same fields and usable filters. Errors name each
// missing source. depth bounds virtual datasets whose sources are virtual.
func checkVirtual(path, name string, dset int64, l *h5Layout, depth int) error {
	maps, err := h5VirtualMappings(dset)
	if err != nil {
		return err
	}
	if len(maps) == 0 {
		return errors.New("virtual dataset maps no source datasets: every value would read as the fill value")
	}
	if err := checkCoverage(maps, l.dims); err != nil {
		return err
	}
	type key struct{ file, dset string }
	checked := map[key]bool{}
	var missing, bad []string
	for _, m := range maps {
		k := key{m.file, m.dset}
		if checked[k] {
			continue
		}
		checked[k] = true
		found, tried := findVDSSource(path, m.file)
		if found == "" {
			missing = append(missing, fmt.Sprintf("%q (dataset %q, %s; looked for %s)", m.file, m.dset, m.rowsOf(), strings.Join(tried, ", ")))
			continue
		}
		if err := checkVDSSource(found, m, l, depth); err != nil {
			bad = append(bad, err.Error())
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, fmt.Sprintf("virtual dataset: %d source file(s) missing, whose jets HDF5 would read as zeros: %s; recreate the virtual file (e.g. with atlas-ftag-tools' vds) or restore the files",
			len(missing), strings.Join(missing, "; ")))
	}
	parts = append(parts, bad...)
	if len(parts) > 0 {
		return errors.New(strings.Join(parts, "; "))
	}
	return nil
}

// checkCoverage reports rows of a virtual dataset of shape dims that no
// mapping covers, which HDF5 reads as the fill value.
func checkCoverage(maps []vdsMapping, dims []int) error {
	total := int64(1)
	for _, d := range dims {
		total *= int64(d)
	}
	if total == 0 {
		return nil
	}
	perRow := total / int64(dims[0])
	type span struct{ a, b int }
	var spans []span
	var points int64
	fullRows := true
	for _, m := range maps {
		if m.unlimited {
			return errors.New("virtual dataset has an unlimited (printf-style) mapping, whose extent salt-ort cannot check; recreate it with fixed mappings (atlas-ftag-tools' vds does)")
		}
		if m.vPoints == 0 {
			continue
		}
		points += m.vPoints
		rows := int64(m.vEnd[0] - m.vStart[0] + 1)
		whole := m.vPoints == rows*perRow
		for d := 1; d < len(dims) && whole; d++ {
			whole = m.vStart[d] == 0 && m.vEnd[d] == dims[d]-1
		}
		fullRows = fullRows && whole
		spans = append(spans, span{m.vStart[0], m.vEnd[0] + 1})
	}
	if !fullRows {
		// Mappings of part of a row: count values only where the bounds
		// do not describe the selections, since overlapping mappings
		// can reach the total and still leave values unmapped.
		if rows, cols, found, exact := unmappedEntries(maps, dims); found {
			return fmt.Errorf("virtual dataset maps no source to rows %d..%d, entries %d..%d (of %v): they would read as the fill value", rows[0], rows[1], cols[0], cols[1], dims)
		} else if exact {
			return nil
		}
		if points < total {
			return fmt.Errorf("virtual dataset maps %d of its %d values to sources; the rest would read as the fill value", points, total)
		}
		return nil
	}
	slices.SortFunc(spans, func(x, y span) int { return x.a - y.a })
	next := 0
	for _, s := range spans {
		if s.a > next {
			break
		}
		next = max(next, s.b)
	}
	if next < dims[0] {
		end := dims[0]
		for _, s := range spans {
			if s.a > next {
				end = s.a
				break
			}
		}
		return fmt.Errorf("virtual dataset maps no source to rows %d..%d (of %d): they would read as the fill value", next, end, dims[0])
	}
	return nil
}

// unmappedEntries finds the first block of a 2-D virtual dataset of shape
// dims that no mapping covers: rows [rows[0], rows[1]) and entries
// [cols[0], cols[1]). exact is false, and nothing is found, when the
// dataset is not 2-D or a mapping does not select the whole rectangle
// its bounds span (a point or irregular selection).
func unmappedEntries(maps []vdsMapping, dims []int) (rows, cols [2]int, found, exact bool) {
	if len(dims) != 2 {
		return rows, cols, false, false
	}
	type rect struct{ r0, r1, c0, c1 int } // half-open
	var rects []rect
	cuts := []int{0, dims[0]}
	for _, m := range maps {
		if m.vPoints == 0 {
			continue
		}
		if len(m.vStart) != 2 || len(m.vEnd) != 2 {
			return rows, cols, false, false
		}
		r := rect{m.vStart[0], m.vEnd[0] + 1, m.vStart[1], m.vEnd[1] + 1}
		if int64(r.r1-r.r0)*int64(r.c1-r.c0) != m.vPoints {
			return rows, cols, false, false
		}
		rects = append(rects, r)
		cuts = append(cuts, r.r0, r.r1)
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	// Between consecutive row boundaries the same mappings span every
	// row: the union of their entries must be [0, dims[1]).
	for i := 0; i+1 < len(cuts) && cuts[i] < dims[0]; i++ {
		a, b := cuts[i], cuts[i+1]
		var spans [][2]int
		for _, r := range rects {
			if r.r0 <= a && r.r1 >= b {
				spans = append(spans, [2]int{r.c0, r.c1})
			}
		}
		slices.SortFunc(spans, func(x, y [2]int) int { return x[0] - y[0] })
		next := 0
		for _, sp := range spans {
			if sp[0] > next {
				break
			}
			next = max(next, sp[1])
		}
		if next < dims[1] {
			end := dims[1]
			for _, sp := range spans {
				if sp[0] > next {
					end = sp[0]
					break
				}
			}
			return [2]int{a, b}, [2]int{next, end}, true, true
		}
	}
	return rows, cols, false, true
}

// checkVDSSource opens the source dataset of mapping m in file path and
// checks it against the virtual dataset described by vl.
func checkVDSSource(path string, m vdsMapping, vl *h5Layout, depth int) error {
	where := fmt.Sprintf("source %s, dataset %q (%s)", path, m.dset, m.rowsOf())
	f, err := hdf5.OpenFile(path, hdf5.F_ACC_RDONLY)
	if err != nil {
		return fmt.Errorf("%s: cannot open: %w", where, err)
	}
	defer f.Close()
	kind, err := h5ObjectKind(f.ID(), m.dset)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	switch kind {
	case objMissing:
		return fmt.Errorf("%s: no such dataset (the file has: %s)", where, strings.Join(h5LinkNames(f.ID()), ", "))
	case objOther:
		return fmt.Errorf("%s: not a dataset", where)
	}
	d, err := f.OpenDataset(m.dset)
	if err != nil {
		return fmt.Errorf("%s: cannot open: %w", where, err)
	}
	defer d.Close()
	sl, err := h5Describe(d.ID())
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	changed := "the file changed after the virtual file was made: recreate it (e.g. with atlas-ftag-tools' vds)"
	if m.srcAll {
		size := int64(1)
		for _, d := range sl.dims {
			size *= int64(d)
		}
		if size != m.vPoints {
			return fmt.Errorf("%s: has shape %v, %d values, but the virtual dataset maps %d values to it; %s", where, sl.dims, size, m.vPoints, changed)
		}
	} else {
		if len(sl.dims) != len(m.sEnd) {
			return fmt.Errorf("%s: has %d dimensions, the virtual dataset maps %d; %s", where, len(sl.dims), len(m.sEnd), changed)
		}
		for i, e := range m.sEnd {
			if e >= sl.dims[i] {
				return fmt.Errorf("%s: has shape %v but the virtual dataset maps elements up to %v; %s", where, sl.dims, plusOne(m.sEnd), changed)
			}
		}
	}
	if err := missingFilterError(sl.filters); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	have := map[string]bool{}
	for _, mb := range sl.members {
		have[mb.name] = true
	}
	var lack []string
	for _, mb := range vl.members {
		if !have[mb.name] {
			lack = append(lack, mb.name)
		}
	}
	if len(lack) > 0 {
		return fmt.Errorf("%s: lacks field(s) %s of the virtual dataset, which would read as zeros; give the sources the same fields or leave this one out of the virtual file", where, strings.Join(lack, ", "))
	}
	if sl.virtual {
		if depth >= 4 {
			return fmt.Errorf("%s: virtual datasets nested too deep", where)
		}
		if err := checkVirtual(path, m.dset, d.ID(), sl, depth+1); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	return nil
}

func plusOne(v []int) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = x + 1
	}
	return out
}

package loader

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/internal/testkit/fuzztest"
)

// maxFuzzVDS bounds FuzzVDSCoverage's inputs: a dozen mappings and a
// short source name.
const maxFuzzVDS = 128

// FuzzVDSCoverage checks what salt-ort decides about a virtual dataset
// before HDF5 would read its missing parts as zeros: checkCoverage (do the
// mappings cover the whole extent?) against a count of every cell, and
// findVDSSource (where is a mapping's source file?) on the names a
// virtual file records. Run it with
//
//	go test -run '^$' -fuzz '^FuzzVDSCoverage$' -fuzztime 1m ./loader
//
// rows and cols give the extent, [rows] when cols is 0, else [rows,
// cols], modulo 1024 and 64; maps holds 7 bytes per mapping: the first
// row and the row count (little-endian uint16s), the first column and the
// column count, each taken within the extent (a count of 0 is all that
// remain), and flags (bit 0: an unlimited mapping). src is a source file
// name as stored: a missing file, which must be looked for where HDF5
// looks.
//
// The seeds are the mappings of the virtual files that broke salt-ort:
// atlas-ftag-tools' vds over two files, one since deleted (rows 0..130
// and 130..300 of jets and of tracks [300, 5]), made from an absolute,
// a relative and a "../" wildcard; a gap between the files; and part of
// the tracks' entries mapped.
func FuzzVDSCoverage(f *testing.F) {
	fuzztest.BoundMinimization(f)
	dir := fuzztest.ScratchDir(f)
	halves := []byte{0, 0, 130, 0, 0, 0, 0, 130, 0, 170, 0, 0, 0, 0}
	f.Add(uint16(300), uint8(0), halves, "/data/inputs/part_1.h5")
	f.Add(uint16(300), uint8(5), halves, "inputs/part_1.h5")
	f.Add(uint16(300), uint8(5), halves, "../part_1.h5")
	f.Add(uint16(20), uint8(5), []byte{0, 0, 8, 0, 0, 0, 0, 10, 0, 10, 0, 0, 0, 0}, "part_0.h5")
	f.Add(uint16(20), uint8(5), []byte{0, 0, 0, 0, 0, 3, 0}, ".")
	f.Add(uint16(20), uint8(5), []byte{0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 3, 0}, "a.h5")
	f.Add(uint16(4), uint8(0), []byte{0, 0, 0, 0, 0, 0, 1}, "%b_%b.h5")
	f.Fuzz(func(t *testing.T, rows uint16, cols uint8, maps []byte, src string) {
		if len(maps)+len(src) > maxFuzzVDS || strings.ContainsRune(src, 0) {
			return
		}
		dims := []int{int(rows % 1024)}
		if cols%64 != 0 {
			dims = append(dims, int(cols%64))
		}
		width := 1
		if len(dims) == 2 {
			width = dims[1]
		}
		// The mappings, and the cells they cover.
		covered := make([]bool, dims[0]*width)
		var ms []vdsMapping
		unlimited := false
		within := func(start, count, n int) (int, int) {
			start %= n
			if count %= n - start + 1; count == 0 {
				count = n - start
			}
			return start, count
		}
		for i := 0; i+7 <= len(maps) && dims[0] > 0; i += 7 {
			r0, nr := within(int(binary.LittleEndian.Uint16(maps[i:])), int(binary.LittleEndian.Uint16(maps[i+2:])), dims[0])
			c0, nc := 0, 1
			if len(dims) == 2 {
				c0, nc = within(int(maps[i+4]), int(maps[i+5]), dims[1])
			}
			m := vdsMapping{file: src, dset: "tracks", vStart: []int{r0}, vEnd: []int{r0 + nr - 1}, vPoints: int64(nr * nc), unlimited: maps[i+6]&1 != 0}
			if len(dims) == 2 {
				m.vStart, m.vEnd = append(m.vStart, c0), append(m.vEnd, c0+nc-1)
			}
			unlimited = unlimited || m.unlimited
			ms = append(ms, m)
			for r := r0; r < r0+nr; r++ {
				for c := c0; c < c0+nc; c++ {
					covered[r*width+c] = true
				}
			}
		}
		hole := -1
		for i, ok := range covered {
			if !ok {
				hole = i
				break
			}
		}
		err := checkCoverage(ms, dims)
		switch {
		case unlimited && len(covered) > 0:
			if err == nil || !strings.Contains(err.Error(), "unlimited") {
				t.Fatalf("an unlimited mapping: error %v", err)
			}
		case hole >= 0 && err == nil:
			t.Fatalf("extent %v, mappings %+v: row %d, entry %d maps to no source, and checkCoverage finds nothing", dims, ms, hole/width, hole%width)
		case hole < 0 && err != nil:
			t.Fatalf("extent %v, mappings %+v cover every value, yet: %v", dims, ms, err)
		case err != nil && !strings.Contains(err.Error(), "fill value"):
			t.Fatalf("error %q does not say what HDF5 would read", err)
		}

		// The source file is missing (the scratch directory is empty), so
		// findVDSSource must say where it looked, as HDF5 would.
		if src == "" || src == "." {
			return
		}
		vds := filepath.Join(dir, "vds.h5")
		found, tried := findVDSSource(vds, src)
		if found != "" {
			if _, err := os.Stat(found); err != nil {
				t.Fatalf("source %q found as %s, which does not exist", src, found)
			}
			return // a name that exists on this machine (/etc/passwd is no HDF5 file, so rarely)
		}
		if len(tried) == 0 {
			t.Fatalf("source %q: not found, and no place looked at", src)
		}
		base := filepath.Base(src)
		for _, p := range tried {
			if !filepath.IsAbs(p) {
				t.Fatalf("source %q: looked for %q, not an absolute path", src, p)
			}
			if base != "/" && base != "." && base != ".." && filepath.Base(p) != base {
				t.Fatalf("source %q: looked for %q, not a file %q", src, p, base)
			}
		}
		if filepath.IsAbs(src) && tried[0] != filepath.Clean(src) && tried[0] != src {
			t.Fatalf("absolute source %q: first looked for %q", src, tried[0])
		}
		// HDF5 looks next to the virtual file for a relative name as it
		// is, for an absolute one by its base name.
		name := src
		if filepath.IsAbs(src) {
			name = base
		}
		if want := filepath.Join(dir, name); !strings.Contains(strings.Join(tried, "\n")+"\n", want+"\n") {
			t.Fatalf("source %q: never looked next to the virtual file (%s): %v", src, want, tried)
		}
	})
}

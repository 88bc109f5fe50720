package loader

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestVirtualDataset reads virtual datasets built the way atlas-ftag-tools'
// vds.py builds them (what Salt makes from a wildcard) over two LZF files
// written like ftag's H5Writer, and checks that a VDS with a missing,
// shortened or changed source is an error naming the source, where HDF5
// (and so h5py) reads the lost jets as zeros.
func TestVirtualDataset(t *testing.T) {
	const n0, n1 = 130, 170
	parts := func(dir string) []string {
		return []string{filepath.Join(dir, "inputs", "part_0.h5"), filepath.Join(dir, "inputs", "part_1.h5")}
	}
	cases := []struct {
		name   string
		stored func(dir string) []string // source file names as the VDS records them
		after  func(t *testing.T, dir string)
		want   []string // error text; nil when the VDS must read like h5py reads it
		zeros  [2]int   // jets whose pt (or eventNumber, with event) h5py reads as zeros: the silent failure the error replaces
		event  bool
	}{
		{name: "absolute sources (vds.py on an absolute glob)", stored: parts},
		{name: "sources relative to the virtual file", stored: func(string) []string { return []string{"../part_0.h5", "../part_1.h5"} }},
		{
			name:   "absolute sources moved next to the virtual file",
			stored: parts,
			after: func(t *testing.T, dir string) {
				for _, p := range parts(dir) {
					if err := os.Rename(p, filepath.Join(dir, "inputs", "vds", filepath.Base(p))); err != nil {
						t.Fatal(err)
					}
				}
			},
		},
		{
			name:   "relative glob, virtual file used from another directory",
			stored: func(string) []string { return []string{"inputs/part_0.h5", "inputs/part_1.h5"} },
			want:   []string{"2 source file(s) missing", `"inputs/part_0.h5" (dataset "jets", rows 0..130`, `"inputs/part_1.h5" (dataset "jets", rows 130..300`},
			zeros:  [2]int{0, n0 + n1},
		},
		{
			name:   "a source file deleted",
			stored: parts,
			after: func(t *testing.T, dir string) {
				if err := os.Remove(parts(dir)[1]); err != nil {
					t.Fatal(err)
				}
			},
			want:  []string{"1 source file(s) missing", "part_1.h5\" (dataset \"jets\", rows 130..300", "restore the files"},
			zeros: [2]int{n0, n0 + n1},
		},
		{
			name:   "a source rewritten with fewer jets",
			stored: parts,
			after: func(t *testing.T, dir string) {
				runFtag(t, nil, "h5writer", parts(dir)[1], "100", "130", "lzf", "null")
			},
			// HDF5 fails this read with "insufficient elements in
			// destination selection", which names nothing.
			want: []string{"part_1.h5, dataset \"jets\" (rows 130..300): has shape [100], 100 values, but the virtual dataset maps 170", "recreate it"},
		},
		{
			name:   "a source rewritten without a field",
			stored: parts,
			after: func(t *testing.T, dir string) {
				runFtag(t, nil, "h5writer", parts(dir)[1], "170", "130", "lzf", "null", "eventNumber")
			},
			want:  []string{"part_1.h5, dataset \"jets\" (rows 130..300): lacks field(s) eventNumber"},
			zeros: [2]int{n0, n0 + n1},
			event: true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "inputs", "vds"), 0o755); err != nil {
				t.Fatal(err)
			}
			real := parts(dir)
			runFtag(t, nil, "h5writer", real[0], "130", "0", "lzf", "null")
			runFtag(t, nil, "h5writer", real[1], "170", "130", "lzf", "null")
			vds := filepath.Join(dir, "inputs", "vds", "vds.h5")
			stored, _ := json.Marshal(c.stored(dir))
			realJSON, _ := json.Marshal(real)
			runFtag(t, nil, "vds", vds, string(stored), string(realJSON))
			if c.after != nil {
				c.after(t, dir)
			}
			if fs := datasetFilters(t, vds, "jets"); len(fs) != 0 {
				t.Fatalf("virtual dataset has filters %+v", fs)
			}
			if c.want == nil {
				h5py := dumpFtag(t, vds)
				pt, d0, valid := readFtag(t, vds)
				if len(pt) != n0+n1 {
					t.Fatalf("read %d jets, want %d", len(pt), n0+n1)
				}
				checkFtagValues(t, 0, pt, d0, valid)
				if !slices.Equal(pt, h5py.Pt) || !slices.Equal(d0, h5py.D0) || !slices.Equal(valid, h5py.Valid) {
					t.Fatal("the loader and h5py read the virtual dataset differently")
				}
				return
			}
			if c.zeros[1] > 0 {
				h5py := dumpFtag(t, vds)
				for j := c.zeros[0]; j < c.zeros[1]; j++ {
					if (!c.event && h5py.Pt[j] != 0) || (c.event && h5py.Event[j] != 0) {
						t.Fatalf("h5py reads jet %d of the broken VDS as pt %v, eventNumber %d, not the fill value: the case does not test what it says",
							j, h5py.Pt[j], h5py.Event[j])
					}
				}
			}
			_, err := Open(ftagConfig(vds))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range append([]string{vds, `dataset "jets"`}, c.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if _, err := OpenFieldTable(vds, "jets"); err == nil || !strings.Contains(err.Error(), "part_1.h5") {
				t.Errorf("OpenFieldTable: %v", err)
			}
		})
	}
}

// TestCheckCoverage checks the detection of virtual rows no source maps.
func TestCheckCoverage(t *testing.T) {
	rows := func(a, b int) vdsMapping {
		return vdsMapping{vStart: []int{a, 0}, vEnd: []int{b - 1, 4}, vPoints: int64(5 * (b - a))}
	}
	cases := []struct {
		name string
		maps []vdsMapping
		want string // "" for no error
	}{
		{"two halves", []vdsMapping{rows(0, 10), rows(10, 20)}, ""},
		{"out of order and overlapping", []vdsMapping{rows(8, 20), rows(0, 10)}, ""},
		{"a gap", []vdsMapping{rows(0, 8), rows(10, 20)}, "rows 8..10 (of 20)"},
		{"short", []vdsMapping{rows(0, 15)}, "rows 15..20 (of 20)"},
		{"part of the tracks", []vdsMapping{{vStart: []int{0, 0}, vEnd: []int{19, 2}, vPoints: 60}}, "rows 0..20, entries 3..5 (of [20 5])"},
		// Twice the same part maps 120 values, more than the 100, and
		// still leaves entries 3..5 of every row to the fill value.
		{"the same part of the tracks twice", []vdsMapping{{vStart: []int{0, 0}, vEnd: []int{19, 2}, vPoints: 60}, {vStart: []int{0, 0}, vEnd: []int{19, 2}, vPoints: 60}}, "rows 0..20, entries 3..5"},
		{"the tracks in two parts", []vdsMapping{{vStart: []int{0, 0}, vEnd: []int{19, 2}, vPoints: 60}, {vStart: []int{0, 3}, vEnd: []int{19, 4}, vPoints: 40}}, ""},
		{"a part missing in some rows", []vdsMapping{{vStart: []int{0, 0}, vEnd: []int{19, 2}, vPoints: 60}, {vStart: []int{0, 3}, vEnd: []int{9, 4}, vPoints: 20}}, "rows 10..20, entries 3..5"},
		{"an irregular selection: values counted", []vdsMapping{{vStart: []int{0, 0}, vEnd: []int{19, 4}, vPoints: 90}}, "maps 90 of its 100 values"},
		{"unlimited", []vdsMapping{{unlimited: true}}, "unlimited"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := checkCoverage(c.maps, []int{20, 5})
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

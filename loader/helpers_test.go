package loader

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// col is one field of a hand-made table and its value at (jet, entry).
type col struct {
	f   Field
	val func(j, t int) float64
}

// tbl is a hand-made compound dataset: dims [n] or [n, T].
type tbl struct {
	name string
	dims []int
	cols []col
	opts TableOptions
}

// writeH5 writes tables into a new file at path.
func writeH5(t testing.TB, path string, tables ...tbl) {
	t.Helper()
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		var fs []Field
		for _, c := range tb.cols {
			fs = append(fs, c.f)
		}
		l, err := NewRowLayout(fs...)
		if err != nil {
			t.Fatal(err)
		}
		tab, err := w.CreateTable(tb.name, l, tb.dims, tb.opts)
		if err != nil {
			t.Fatal(err)
		}
		per := tab.RowsPer()
		buf := make([]byte, tb.dims[0]*per*l.Size)
		for j := range tb.dims[0] {
			for tt := range per {
				row := buf[(j*per+tt)*l.Size:]
				for i, c := range tb.cols {
					l.Put(row, i, c.val(j, tt))
				}
			}
		}
		if err := tab.WriteRows(0, buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// smallFile writes a Salt-like file of n jets with maxLen track slots:
// jet j has j%(maxLen+1) valid tracks (so some have none), jets field
// "id" = j + idBase, track values derived from (j, t).
func smallFile(t testing.TB, dir, name string, n, maxLen, idBase int) string {
	t.Helper()
	path := filepath.Join(dir, name)
	nValid := func(j int) int { return j % (maxLen + 1) }
	writeH5(t, path,
		tbl{name: "jets", dims: []int{n}, cols: []col{
			{Field{Name: "pt_btagJes", Type: Float32}, func(j, _ int) float64 { return 1000 * float64(j+idBase) }},
			{Field{Name: "eta_btagJes", Type: Float32}, func(j, _ int) float64 { return 0.5 }},
			{Field{Name: "flavour_label", Type: Int32}, func(j, _ int) float64 { return float64(j % 4) }},
			{Field{Name: "id", Type: Int64}, func(j, _ int) float64 { return float64(j + idBase) }},
			{Field{Name: "w", Type: Float32}, func(j, _ int) float64 { return 0.5 + float64(j%3) }},
		}},
		tbl{name: "tracks", dims: []int{n, maxLen}, cols: []col{
			{Field{Name: "valid", Type: Bool}, func(j, tt int) float64 { return float64(btoi(tt < nValid(j))) }},
			{Field{Name: "d0", Type: Float32}, func(j, tt int) float64 {
				if tt >= nValid(j) {
					return 0
				}
				return float64(j+idBase) + float64(tt)/100
			}},
			{Field{Name: "hits", Type: Uint8}, func(j, tt int) float64 { return float64(tt % 7) }},
			{Field{Name: "origin", Type: Int8}, func(j, tt int) float64 { return float64(tt%8) - float64(btoi(tt == 3)*8) }},
			{Field{Name: "vtx", Type: Int32}, func(j, tt int) float64 { return float64(tt%3) - 1 }},
		}},
	)
	return path
}

// smallConfig reads smallFile's layout.
func smallConfig(files ...string) Config {
	return Config{
		Files: files,
		Groups: []Group{
			{Name: "jets", Variables: []string{"pt_btagJes", "eta_btagJes"}},
			{Name: "tracks", Variables: []string{"d0", "hits"}},
		},
		Labels: []Label{
			{Name: "flavour", Dataset: "jets", Field: "flavour_label", Kind: ClassLabel},
			{Name: "id", Dataset: "jets", Field: "id", Kind: IndexLabel},
			{Name: "origin", Dataset: "tracks", Field: "origin", Kind: ClassLabel},
			{Name: "vertex", Dataset: "tracks", Field: "vtx", Kind: IndexLabel},
		},
		BatchSize: 8,
	}
}

// collect reads a whole epoch, returning its batches (not released).
func collect(t testing.TB, ds *Dataset, epoch, start int) []*Batch {
	t.Helper()
	var out []*Batch
	batches, errc := ds.Batches(context.Background(), epoch, start)
	for b := range batches {
		out = append(out, b)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return out
}

// ids lists the "id" label of the real jets of batches, in order.
func ids(bs []*Batch) []int64 {
	var out []int64
	for _, b := range bs {
		out = append(out, b.Labels["id"][:b.N]...)
	}
	return out
}

func writeText(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

func TestPackValid(t *testing.T) {
	// Two jets of 4 slots and 2 features; jet 0 interleaved, jet 1 packed.
	tn := &Tensor{
		Shape: []int{2, 4, 2},
		Valid: []bool{false, true, false, true, true, true, false, false},
		Data:  []float32{9, 9, 1, 2, 9, 9, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0},
	}
	tn.PackValid()
	wantValid := []bool{true, true, false, false, true, true, false, false}
	wantData := []float32{1, 2, 3, 4, 0, 0, 0, 0, 5, 6, 7, 8, 0, 0, 0, 0}
	if !slices.Equal(tn.Valid, wantValid) || !slices.Equal(tn.Data, wantData) {
		t.Fatalf("packed valid %v data %v\nwant         %v data %v", tn.Valid, tn.Data, wantValid, wantData)
	}
	jets := &Tensor{Shape: []int{2, 1}, Data: []float32{1, 2}}
	jets.PackValid()
	if !slices.Equal(jets.Data, []float32{1, 2}) {
		t.Fatal("a 1-D group changed")
	}
}

// btoi is 1 for true and 0 for false.
func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

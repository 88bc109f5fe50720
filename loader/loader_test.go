package loader

import (
	"context"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"
)

// TestReadValues checks every converted value, mask and label of a small
// file against what was written, with and without shuffling.
func TestReadValues(t *testing.T) {
	dir := t.TempDir()
	const n, T = 21, 5
	path := smallFile(t, dir, "a.h5", n, T, 0)
	for _, shuffle := range []bool{false, true} {
		cfg := smallConfig(path)
		cfg.Shuffle = shuffle
		cfg.ChunkSize = 4
		cfg.Weight = "w"
		ds, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if ds.Len() != n || ds.NumBatches() != 3 {
			t.Fatalf("Len %d NumBatches %d, want %d, 3", ds.Len(), ds.NumBatches(), n)
		}
		if got := ds.Shape("tracks"); !slices.Equal(got, []int{8, T, 2}) {
			t.Fatalf("tracks shape %v", got)
		}
		seen := map[int64]bool{}
		for bi, b := range collect(t, ds, 0, 0) {
			if b.Index != bi {
				t.Fatalf("batch %d has Index %d", bi, b.Index)
			}
			tr, jets := b.Inputs["tracks"], b.Inputs["jets"]
			for s := range 8 {
				id := b.Labels["id"][s]
				if s >= b.N {
					if id != -1 || b.JetMask[s] != 0 || b.Weights[s] != 0 || jets.Data[2*s] != 0 {
						t.Fatalf("padding slot %d not cleared: id %d mask %v", s, id, b.JetMask[s])
					}
					continue
				}
				j := int(id)
				if seen[id] {
					t.Fatalf("jet %d twice", j)
				}
				seen[id] = true
				if jets.Data[2*s] != float32(1000*j) || jets.Data[2*s+1] != 0.5 || b.JetMask[s] != 1 {
					t.Fatalf("jet %d: jets data %v", j, jets.Data[2*s:2*s+2])
				}
				if b.Weights[s] != float32(0.5+float64(j%3)) || b.Labels["flavour"][s] != int64(j%4) {
					t.Fatalf("jet %d: weight %v flavour %d", j, b.Weights[s], b.Labels["flavour"][s])
				}
				for tt := range T {
					k := s*T + tt
					valid := tt < j%(T+1)
					if tr.Valid[k] != valid {
						t.Fatalf("jet %d track %d valid %v", j, tt, tr.Valid[k])
					}
					wantD0, wantHits := float32(0), float32(0)
					wantOrigin, wantVtx := int64(-1), int64(-1)
					if valid {
						wantD0 = float32(float64(j) + float64(tt)/100)
						wantHits = float32(tt % 7)
						wantOrigin = int64(tt % 8)
						if tt == 3 {
							wantOrigin = -1 // negative class → -1
						}
						wantVtx = max(int64(tt%3)-1, -1)
					}
					if tr.Data[2*k] != wantD0 || tr.Data[2*k+1] != wantHits {
						t.Fatalf("jet %d track %d: %v, want %v %v", j, tt, tr.Data[2*k:2*k+2], wantD0, wantHits)
					}
					if b.Labels["origin"][k] != wantOrigin || b.Labels["vertex"][k] != wantVtx {
						t.Fatalf("jet %d track %d: origin %d vertex %d", j, tt, b.Labels["origin"][k], b.Labels["vertex"][k])
					}
				}
			}
			b.Release()
		}
		if len(seen) != n {
			t.Fatalf("shuffle=%v: saw %d jets, want %d", shuffle, len(seen), n)
		}
		ds.Close()
	}
}

// TestFieldTypes reads every supported member type, big-endian ones and a
// member order with valid first, and checks the converted values.
func TestFieldTypes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "types.h5")
	types := []struct {
		name string
		typ  FieldType
		be   bool
		val  float64
	}{
		{"f2", Float16, false, 1.5}, {"f2be", Float16, true, -0.25}, {"f4", Float32, false, 3.25},
		{"f4be", Float32, true, -7.5}, {"f8", Float64, false, 1e10}, {"f8be", Float64, true, -2.5},
		{"i1", Int8, false, -5}, {"i2", Int16, true, -300}, {"i4", Int32, false, -70000},
		{"i8", Int64, true, -1 << 40}, {"u1", Uint8, false, 250}, {"u2", Uint16, false, 65000},
		{"u4", Uint32, true, 4e9}, {"u8", Uint64, false, 1 << 50}, {"b", Bool, false, 1},
	}
	jetCols := []col{{Field{Name: "flavour_label", Type: Int8}, func(j, _ int) float64 { return float64(j % 4) }}}
	trkCols := []col{{Field{Name: "valid", Type: Bool}, func(j, tt int) float64 { return float64(btoi(tt < 2)) }}}
	var vars []string
	for _, ty := range types {
		v := ty.val
		jetCols = append(jetCols, col{Field{Name: ty.name, Type: ty.typ, BigEndian: ty.be}, func(j, _ int) float64 { return v }})
		trkCols = append(trkCols, col{Field{Name: ty.name, Type: ty.typ, BigEndian: ty.be}, func(j, tt int) float64 { return v }})
		vars = append(vars, ty.name)
	}
	writeH5(t, path, tbl{name: "jets", dims: []int{3}, cols: jetCols}, tbl{name: "tracks", dims: []int{3, 4}, cols: trkCols})
	ds, err := Open(Config{Files: []string{path}, BatchSize: 3,
		Groups: []Group{{Name: "jets", Variables: vars}, {Name: "tracks", Variables: vars}},
		Labels: []Label{
			{Name: "f", Dataset: "jets", Field: "flavour_label"},
			{Name: "i8", Dataset: "tracks", Field: "i8", Kind: IndexLabel},
			{Name: "u2", Dataset: "tracks", Field: "u2", Kind: FloatLabel},
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	bs := collect(t, ds, 0, 0)
	b := bs[0]
	F := len(vars)
	for vi, ty := range types {
		want := float32(ty.val)
		if got := b.Inputs["jets"].Data[F+vi]; got != want {
			t.Errorf("jets %s = %v, want %v", ty.name, got, want)
		}
		if got := b.Inputs["tracks"].Data[4*F+F+vi]; got != want { // jet 1, track 1
			t.Errorf("tracks %s = %v, want %v", ty.name, got, want)
		}
		if got := b.Inputs["tracks"].Data[4*F+2*F+vi]; got != 0 { // jet 1, track 2 (invalid)
			t.Errorf("invalid track %s = %v, want 0", ty.name, got)
		}
	}
	if got := b.Labels["i8"][1]; got != -1 { // negative index → -1
		t.Errorf("i8 index label = %d, want -1", got)
	}
	if got := b.Targets["u2"][1]; got != 65000 {
		t.Errorf("u2 float label = %v", got)
	}
	if got := b.Labels["f"][:3]; !slices.Equal(got, []int64{0, 1, 2}) {
		t.Errorf("i1 class labels %v", got)
	}
}

// TestOpenErrors checks that each broken input gives a clear error naming
// what is wrong.
func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	good := smallFile(t, dir, "good.h5", 10, 4, 0)
	empty := smallFile(t, dir, "empty.h5", 0, 4, 0)
	text := filepath.Join(dir, "text.h5")
	writeText(t, text, "not hdf5")
	noValid := filepath.Join(dir, "novalid.h5")
	writeH5(t, noValid,
		tbl{name: "jets", dims: []int{2}, cols: []col{{Field{Name: "pt_btagJes", Type: Float32}, func(j, _ int) float64 { return 1 }}}},
		tbl{name: "tracks", dims: []int{2, 3}, cols: []col{{Field{Name: "d0", Type: Float32}, func(j, tt int) float64 { return 1 }}}})
	mismatch := filepath.Join(dir, "mismatch.h5")
	writeH5(t, mismatch,
		tbl{name: "jets", dims: []int{2}, cols: []col{{Field{Name: "pt_btagJes", Type: Float32}, func(j, _ int) float64 { return 1 }}}},
		tbl{name: "tracks", dims: []int{3, 3}, cols: []col{{Field{Name: "valid", Type: Bool}, func(j, tt int) float64 { return 1 }}, {Field{Name: "d0", Type: Float32}, func(j, tt int) float64 { return 1 }}}})
	group := func(name string, vars ...string) []Group {
		return []Group{{Name: name, Variables: vars}}
	}
	cases := []struct {
		name string
		cfg  Config
		want []string // substrings of the error
	}{
		{"no files", Config{BatchSize: 2, Groups: group("jets", "pt_btagJes")}, []string{"no input files"}},
		{"batch size", Config{Files: []string{good}, Groups: group("jets", "pt_btagJes")}, []string{"batch size 0"}},
		{"missing file", Config{Files: []string{filepath.Join(dir, "nope.h5")}, BatchSize: 2, Groups: group("jets", "pt_btagJes")}, []string{"nope.h5", "no such file"}},
		{"not hdf5", Config{Files: []string{text}, BatchSize: 2, Groups: group("jets", "pt_btagJes")}, []string{"text.h5", "not an HDF5 file"}},
		{"dataset missing", Config{Files: []string{good}, BatchSize: 2, Groups: group("hits", "x")}, []string{"good.h5", `dataset "hits" not found`, "jets, tracks"}},
		{"variable missing", Config{Files: []string{good}, BatchSize: 2, Groups: group("tracks", "d0", "z0")}, []string{"good.h5", `dataset "tracks"`, `variable "z0"`, "not found", "d0, hits, origin, valid, vtx"}},
		{"renamed variable missing", Config{Files: []string{good}, BatchSize: 2, Groups: []Group{{Name: "tracks", Variables: []string{"d"}, Rename: map[string]string{"d": "dd"}}}}, []string{`variable "d" (field "dd")`}},
		{"label missing", Config{Files: []string{good}, BatchSize: 2, Labels: []Label{{Name: "x", Dataset: "jets", Field: "HadronConeExclTruthLabelID"}}}, []string{`label "x"`, `field "HadronConeExclTruthLabelID"`, "not found"}},
		{"weight missing", Config{Files: []string{good}, BatchSize: 2, Groups: group("jets", "pt_btagJes"), Weight: "mcw"}, []string{`weight field "mcw"`}},
		{"2-D weight", Config{Files: []string{good}, BatchSize: 2, Groups: group("jets", "pt_btagJes"), Weight: "d0", WeightDataset: "tracks"}, []string{"weights are per jet"}},
		{"no valid field", Config{Files: []string{noValid}, BatchSize: 2, Groups: group("tracks", "d0")}, []string{"novalid.h5", `"valid"`}},
		{"row mismatch", Config{Files: []string{mismatch}, BatchSize: 2, Groups: append(group("jets", "pt_btagJes"), group("tracks", "d0")...)}, []string{"mismatch.h5", "3 rows", "2"}},
		{"MaxLen on 1-D", Config{Files: []string{good}, BatchSize: 2, Groups: []Group{{Name: "jets", Variables: []string{"pt_btagJes"}, MaxLen: 3}}}, []string{"MaxLen 3", "1-D"}},
		{"all empty", Config{Files: []string{empty}, BatchSize: 2, Groups: group("jets", "pt_btagJes")}, []string{"no jets", "empty.h5"}},
		{"drop leaves nothing", Config{Files: []string{good}, BatchSize: 20, Partial: DropPartial, Groups: group("jets", "pt_btagJes")}, []string{"no full batch"}},
		{"norm missing var", Config{Files: []string{good}, BatchSize: 2, Groups: group("tracks", "d0", "hits"), Norm: NormDict{"tracks": {"d0": {0, 1}}}}, []string{"no entry for tracks.hits"}},
		{"norm zero std", Config{Files: []string{good}, BatchSize: 2, Groups: group("tracks", "d0"), Norm: NormDict{"tracks": {"d0": {0, 0}}}}, []string{"tracks.d0", "zero std"}},
		{"norm nan", Config{Files: []string{good}, BatchSize: 2, Groups: group("tracks", "d0"), Norm: NormDict{"tracks": {"d0": {math.NaN(), 1}}}}, []string{"tracks.d0", "non-finite"}},
		{"repeated variable", Config{Files: []string{good}, BatchSize: 2, Groups: group("tracks", "d0", "d0")}, []string{`"d0" is empty or repeated`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ds, err := Open(c.cfg)
			if err == nil {
				ds.Close()
				t.Fatalf("Open succeeded, want an error containing %q", c.want)
			}
			for _, w := range c.want {
				if !contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestEdgeCases covers empty files among others, jets without valid
// tracks, several files with different track lengths, MaxLen cuts, Limit
// and renamed variables.
func TestEdgeCases(t *testing.T) {
	dir := t.TempDir()
	a := smallFile(t, dir, "a.h5", 7, 3, 0)
	empty := smallFile(t, dir, "empty.h5", 0, 3, 0)
	b := smallFile(t, dir, "b.h5", 9, 6, 100)
	cases := []struct {
		name   string
		mod    func(*Config)
		jets   int
		shapeT int
		check  func(t *testing.T, bs []*Batch)
	}{
		{"empty file skipped, T is the longest", func(c *Config) { c.Files = []string{a, empty, b} }, 16, 6, func(t *testing.T, bs []*Batch) {
			got := ids(bs)
			want := []int64{0, 1, 2, 3, 4, 5, 6, 100, 101, 102, 103, 104, 105, 106, 107, 108}
			if !slices.Equal(got, want) {
				t.Fatalf("ids %v", got)
			}
			// jet 3 of a.h5 has 3 valid tracks of 3 in its file, padded to 6.
			tr := bs[0].Inputs["tracks"]
			if v := tr.Valid[3*6 : 4*6]; !slices.Equal(v, []bool{true, true, true, false, false, false}) {
				t.Fatalf("valid %v", v)
			}
			// jet 0 has no valid track.
			if slices.Contains(tr.Valid[:6], true) || slices.ContainsFunc(tr.Data[:12], func(x float32) bool { return x != 0 }) {
				t.Fatal("jet without tracks has data")
			}
			if bs[0].Labels["origin"][0] != -1 || bs[0].JetMask[0] != 1 {
				t.Fatal("jet without tracks: labels or mask wrong")
			}
		}},
		{"MaxLen cut", func(c *Config) { c.Files = []string{b}; c.Groups[1].MaxLen = 2 }, 9, 2, func(t *testing.T, bs []*Batch) {
			tr := bs[0].Inputs["tracks"]
			// jet 5 (id 105) has 5 valid tracks; the first 2 survive.
			if v := tr.Valid[5*2 : 6*2]; !slices.Equal(v, []bool{true, true}) || tr.Data[(5*2+1)*2] != 105.01 {
				t.Fatalf("valid %v data %v", v, tr.Data[5*4:6*4])
			}
			if len(bs[0].Labels["origin"]) != 16*2 {
				t.Fatalf("origin labels have %d entries, want 32", len(bs[0].Labels["origin"]))
			}
		}},
		{"limit across files", func(c *Config) { c.Files = []string{a, b}; c.Limit = 10 }, 10, 6, func(t *testing.T, bs []*Batch) {
			if got := ids(bs); !slices.Equal(got, []int64{0, 1, 2, 3, 4, 5, 6, 100, 101, 102}) {
				t.Fatalf("ids %v", got)
			}
		}},
		{"rename", func(c *Config) {
			c.Files = []string{a}
			c.Groups[1] = Group{Name: "trk", Dataset: "tracks", Variables: []string{"ip", "hits"}, Rename: map[string]string{"ip": "d0"}}
		}, 7, 3, func(t *testing.T, bs []*Batch) {
			if got := bs[0].Inputs["trk"].Data[(2*3+1)*2]; got != 2.01 {
				t.Fatalf("renamed ip of jet 2 track 1 = %v", got)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := smallConfig()
			cfg.BatchSize = 16
			c.mod(&cfg)
			ds, err := Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer ds.Close()
			if ds.Len() != c.jets {
				t.Fatalf("Len %d, want %d", ds.Len(), c.jets)
			}
			name := cfg.Groups[1].Name
			if got := ds.Shape(name)[1]; got != c.shapeT {
				t.Fatalf("T = %d, want %d", got, c.shapeT)
			}
			c.check(t, collect(t, ds, 0, 0))
		})
	}
}

// TestNonFinite checks the default error and the documented replacement.
func TestNonFinite(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		typ  FieldType
		bad  float64
	}{{"nan f4", Float32, math.NaN()}, {"inf f4", Float32, math.Inf(1)}, {"nan f2", Float16, math.NaN()}, {"-inf f8", Float64, math.Inf(-1)}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name+".h5")
			// jet 2 track 1 is bad; jet 3 track 3 is bad but invalid (ignored).
			writeH5(t, path,
				tbl{name: "jets", dims: []int{5}, cols: []col{{Field{Name: "pt", Type: Float32}, func(j, _ int) float64 { return 1 }}}},
				tbl{name: "tracks", dims: []int{5, 4}, cols: []col{
					{Field{Name: "valid", Type: Bool}, func(j, tt int) float64 { return float64(btoi(tt < 3)) }},
					{Field{Name: "d0", Type: c.typ}, func(j, tt int) float64 {
						if (j == 2 && tt == 1) || (j == 3 && tt == 3) {
							return c.bad
						}
						return 1
					}},
				}})
			cfg := Config{Files: []string{path}, BatchSize: 5, Groups: []Group{{Name: "tracks", Variables: []string{"d0"}}},
				Norm: NormDict{"tracks": {"d0": {Mean: 0.5, Std: 2}}}}
			ds, err := Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			batches, errc := ds.Batches(context.Background(), 0, 0)
			for range batches {
			}
			err = <-errc
			ds.Close()
			if err == nil {
				t.Fatal("no error for a non-finite input")
			}
			for _, w := range []string{path, `dataset "tracks"`, `field "d0"`, "jet 2, entry 1", `data.non_finite = "zero"`} {
				if !contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			cfg.NonFinite = ZeroNonFinite
			ds, err = Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer ds.Close()
			b := collect(t, ds, 0, 0)[0]
			if got, want := b.Inputs["tracks"].Data[2*4+1], float32((0-0.5)/2.0); got != want {
				t.Errorf("replaced value normalises to %v, want %v", got, want)
			}
			if got := b.Inputs["tracks"].Data[2*4]; got != 0.25 {
				t.Errorf("neighbour = %v, want 0.25", got)
			}
			if b.NonFinite != 1 || ds.NonFiniteCount() != 1 {
				t.Errorf("counted %d in batch, %d in dataset; want 1", b.NonFinite, ds.NonFiniteCount())
			}
		})
	}
}

// TestValidGaps reads tracks whose valid entries are not first (every
// other slot), as an unsorted producer might write them.
func TestValidGaps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gaps.h5")
	writeH5(t, path,
		tbl{name: "tracks", dims: []int{3, 6}, cols: []col{
			{Field{Name: "d0", Type: Float32}, func(j, tt int) float64 { return float64(10*j + tt) }},
			{Field{Name: "valid", Type: Int8}, func(j, tt int) float64 { return float64(tt % 2) }}, // plain i1 also works
		}})
	ds, err := Open(Config{Files: []string{path}, BatchSize: 3, Groups: []Group{{Name: "tracks", Variables: []string{"d0"}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	b := collect(t, ds, 0, 0)[0]
	for j := range 3 {
		for tt := range 6 {
			k := j*6 + tt
			want := float32(0)
			if tt%2 == 1 {
				want = float32(10*j + tt)
			}
			if b.Inputs["tracks"].Valid[k] != (tt%2 == 1) || b.Inputs["tracks"].Data[k] != want {
				t.Fatalf("jet %d slot %d: valid %v data %v", j, tt, b.Inputs["tracks"].Valid[k], b.Inputs["tracks"].Data[k])
			}
		}
	}
}

// TestOrder checks the batch order: fixed by (seed, epoch), independent
// of the worker count, different across epochs, exact on resume, and each
// jet once per epoch.
func TestOrder(t *testing.T) {
	dir := t.TempDir()
	files := []string{smallFile(t, dir, "a.h5", 300, 3, 0), smallFile(t, dir, "b.h5", 157, 3, 1000)}
	epochIDs := func(workers, epoch, start int, seed uint64) []int64 {
		cfg := smallConfig(files...)
		cfg.Shuffle, cfg.Seed, cfg.Workers, cfg.Prefetch = true, seed, workers, 1
		cfg.ChunkSize, cfg.ShuffleBuffer, cfg.BatchSize = 16, 64, 32
		ds, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer ds.Close()
		bs := collect(t, ds, epoch, start)
		for i, b := range bs {
			if b.Index != start+i {
				t.Fatalf("batch %d has Index %d", start+i, b.Index)
			}
			if b.N != 32 && i != len(bs)-1 {
				t.Fatalf("partial batch %d before the end", b.Index)
			}
		}
		return ids(bs)
	}
	base := epochIDs(1, 0, 0, 5)
	if len(base) != 457 {
		t.Fatalf("epoch has %d jets, want 457", len(base))
	}
	sorted := slices.Sorted(slices.Values(base))
	if len(slices.Compact(sorted)) != 457 {
		t.Fatal("a jet appears twice")
	}
	if slices.IsSorted(base) {
		t.Fatal("shuffled epoch is in file order")
	}
	for _, w := range []int{2, 3} {
		if got := epochIDs(w, 0, 0, 5); !slices.Equal(got, base) {
			t.Fatalf("%d workers give another order", w)
		}
	}
	if got := epochIDs(1, 0, 0, 5); !slices.Equal(got, base) {
		t.Fatal("same seed, another order")
	}
	if got := epochIDs(2, 1, 0, 5); slices.Equal(got, base) {
		t.Fatal("epoch 1 repeats epoch 0")
	}
	if got := epochIDs(1, 0, 0, 6); slices.Equal(got, base) {
		t.Fatal("seed 6 repeats seed 5")
	}
	for _, start := range []int{1, 2, 5, 14} {
		if got := epochIDs(2, 0, start, 5); !slices.Equal(got, base[start*32:]) {
			t.Fatalf("resume at batch %d differs from the full epoch", start)
		}
	}
}

// TestPartialPolicies checks PadPartial and DropPartial.
func TestPartialPolicies(t *testing.T) {
	path := smallFile(t, t.TempDir(), "a.h5", 45, 3, 0)
	for _, c := range []struct {
		policy  PartialPolicy
		batches int
		lastN   int
	}{{PadPartial, 5, 5}, {DropPartial, 4, 10}} {
		cfg := smallConfig(path)
		cfg.BatchSize, cfg.Partial, cfg.Shuffle, cfg.ChunkSize, cfg.Weight = 10, c.policy, true, 4, "w"
		ds, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if ds.NumBatches() != c.batches {
			t.Fatalf("policy %d: %d batches, want %d", c.policy, ds.NumBatches(), c.batches)
		}
		// Two epochs, releasing batches, so that recycled buffers are reused.
		for epoch := range 2 {
			bs := collect(t, ds, epoch, 0)
			last := bs[len(bs)-1]
			if len(bs) != c.batches || last.N != c.lastN {
				t.Fatalf("policy %d: %d batches, last has %d jets", c.policy, len(bs), last.N)
			}
			for s := last.N; s < 10; s++ {
				tr := last.Inputs["tracks"]
				if last.JetMask[s] != 0 || last.Weights[s] != 0 || last.Labels["flavour"][s] != -1 ||
					slices.ContainsFunc(tr.Data[s*6:(s+1)*6], func(x float32) bool { return x != 0 }) ||
					slices.Contains(tr.Valid[s*3:(s+1)*3], true) || last.Labels["origin"][s*3] != -1 {
					t.Fatalf("policy %d: padded slot %d not clean", c.policy, s)
				}
			}
			for _, b := range bs {
				b.Release()
			}
		}
		ds.Close()
	}
}

// TestCancel stops an epoch midway and checks that every goroutine exits.
func TestCancel(t *testing.T) {
	dir := t.TempDir()
	path := smallFile(t, dir, "a.h5", 2000, 4, 0)
	before := runtime.NumGoroutine()
	for _, workers := range []int{1, 3} {
		cfg := smallConfig(path)
		cfg.Workers, cfg.Shuffle, cfg.BatchSize, cfg.Prefetch = workers, true, 10, 1
		ds, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		batches, errc := ds.Batches(ctx, 0, 0)
		for range 3 {
			<-batches
		}
		time.Sleep(10 * time.Millisecond) // let the workers fill the queues
		cancel()
		for range batches {
		}
		if err := <-errc; err != context.Canceled {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		if err := ds.Close(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before, %d after:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

// TestBatchesArgs checks bad Batches arguments and use after Close.
func TestBatchesArgs(t *testing.T) {
	ds, err := Open(smallConfig(smallFile(t, t.TempDir(), "a.h5", 20, 2, 0)))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ epoch, start int }{{0, -1}, {0, 4}, {-1, 0}} {
		batches, errc := ds.Batches(context.Background(), c.epoch, c.start)
		if _, ok := <-batches; ok {
			t.Fatal("got a batch")
		}
		if err := <-errc; err == nil {
			t.Fatalf("epoch %d start %d: no error", c.epoch, c.start)
		}
	}
	if bs := collect(t, ds, 0, 3); len(bs) != 0 {
		t.Fatal("start = NumBatches should give an empty epoch")
	}
	ds.Close()
	_, errc := ds.Batches(context.Background(), 0, 0)
	if err := <-errc; err == nil || !contains(err.Error(), "closed") {
		t.Fatalf("after Close: %v", err)
	}
}

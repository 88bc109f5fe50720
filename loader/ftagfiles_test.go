package loader_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/internal/testkit/fixture"
	"github.com/salt-ort/salt-ort/loader"
)

// This file reads files written by Debian's h5py the way
// atlas-ftag-tools writes them (fixture.Ftag: LZF, float16, int8 and bool
// fields, int32 truth labels, valid tracks interleaved with padding).

// ftagFile writes an Ftag file into a test directory.
func ftagFile(t *testing.T, f fixture.Ftag) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mock.h5")
	fixture.WriteFtag(t, path, f)
	return path
}

// epoch reads every batch of one epoch in file order.
func epoch(t *testing.T, cfg loader.Config) ([]*loader.Batch, *loader.Dataset) {
	t.Helper()
	ds, err := loader.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	var out []*loader.Batch
	ch, errc := ds.Batches(context.Background(), 0, 0)
	for b := range ch {
		out = append(out, b)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return out, ds
}

// rawJet is one jet of a file as read without selections.
type rawJet struct {
	pt     float32
	d0     []float32 // per file entry
	origin []int64
	valid  []bool
}

// readRaw reads every jet and every track slot of an Ftag file.
func readRaw(t *testing.T, path string, slots int) []rawJet {
	t.Helper()
	bs, _ := epoch(t, loader.Config{Files: []string{path}, BatchSize: 64,
		Groups: []loader.Group{{Name: "jets", Variables: []string{"pt_btagJes"}}, {Name: "tracks", Variables: []string{"d0"}}},
		Labels: []loader.Label{{Name: "origin", Dataset: "tracks", Field: "ftagTruthOriginLabel", Kind: loader.ClassLabel}}})
	var jets []rawJet
	for _, b := range bs {
		tr := b.Inputs["tracks"]
		if tr.Shape[1] != slots {
			t.Fatalf("raw read: %d slots, want %d", tr.Shape[1], slots)
		}
		for j := range b.N {
			jets = append(jets, rawJet{pt: b.Inputs["jets"].Data[j], d0: tr.Data[j*slots : (j+1)*slots],
				origin: b.Labels["origin"][j*slots : (j+1)*slots], valid: tr.Valid[j*slots : (j+1)*slots]})
		}
	}
	return jets
}

// TestSelectionsOnFtagFiles applies jet and track cuts to an
// ftag-style file: jets failing a jet cut are skipped, tracks failing a
// track cut are dropped before the max_len truncation (the ones that pass
// packed to the front, in file order), and the counts say what was kept.
func TestSelectionsOnFtagFiles(t *testing.T) {
	const slots = 30
	path := ftagFile(t, fixture.Ftag{Jets: 400, Tracks: slots, Seed: 7})
	raw := readRaw(t, path, slots)
	for _, c := range []struct {
		name       string
		jetCut     string
		trackCut   string
		maxLen     int
		wantPacked bool
	}{
		{"no cuts", "", "", 6, false},
		{"jet cut", "pt_btagJes > 60e3", "", 6, false},
		{"track cut before truncation", "", "d0 < 0.02", 6, true},
		{"both", "pt_btagJes >= 40000", "d0 < 0.02", 4, true},
		{"track cut, every slot", "", "d0 > -0.05", slots, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			sel := map[string][]loader.Cut{}
			var jc, tc *loader.Cut
			for ds, text := range map[string]string{"jets": c.jetCut, "tracks": c.trackCut} {
				if text == "" {
					continue
				}
				cut, err := loader.ParseCut(text)
				if err != nil {
					t.Fatal(err)
				}
				sel[ds] = []loader.Cut{cut}
				if ds == "jets" {
					jc = &sel[ds][0]
				} else {
					tc = &sel[ds][0]
				}
			}
			bs, ds := epoch(t, loader.Config{Files: []string{path}, BatchSize: 32, Selections: sel,
				Groups: []loader.Group{{Name: "jets", Variables: []string{"pt_btagJes"}}, {Name: "tracks", Variables: []string{"d0"}, MaxLen: c.maxLen}},
				Labels: []loader.Label{{Name: "origin", Dataset: "tracks", Field: "ftagTruthOriginLabel", Kind: loader.ClassLabel}}})
			// What the selections should give, from the raw read.
			var wantRows []int
			var seen, kept int64
			for r, j := range raw {
				if jc == nil || jc.Holds(float64(j.pt)) {
					wantRows = append(wantRows, r)
				}
			}
			got := 0
			for _, b := range bs {
				tr := b.Inputs["tracks"]
				if (tr.Source != nil) != c.wantPacked {
					t.Fatalf("Source set: %v, want %v", tr.Source != nil, c.wantPacked)
				}
				for j := range b.N {
					if got >= len(wantRows) {
						t.Fatalf("more than the %d selected jets", len(wantRows))
					}
					r := wantRows[got]
					got++
					if b.Rows[j] != r || b.Inputs["jets"].Data[j] != raw[r].pt {
						t.Fatalf("jet %d: row %d pt %v, want row %d pt %v", got-1, b.Rows[j], b.Inputs["jets"].Data[j], r, raw[r].pt)
					}
					// The file entries each slot should hold.
					var entries []int
					for e := range slots {
						if !raw[r].valid[e] {
							continue
						}
						if !c.wantPacked && e >= c.maxLen {
							break // positional truncation, as Salt's
						}
						seen++
						if tc == nil || tc.Holds(float64(raw[r].d0[e])) {
							kept++
							entries = append(entries, e)
						}
					}
					if !c.wantPacked {
						seen, kept = 0, 0
					}
					for s := range c.maxLen {
						k := j*c.maxLen + s
						want := -1
						if c.wantPacked && s < len(entries) {
							want = entries[s]
						} else if !c.wantPacked && raw[r].valid[s] {
							want = s
						}
						if got := tr.SourceOf(j, s); got != want {
							t.Fatalf("row %d slot %d holds entry %d, want %d", r, s, got, want)
						}
						if want < 0 {
							if tr.Valid[k] || tr.Data[k] != 0 || b.Labels["origin"][k] != -1 {
								t.Fatalf("row %d slot %d: padding reads %v %v %d", r, s, tr.Valid[k], tr.Data[k], b.Labels["origin"][k])
							}
							continue
						}
						if !tr.Valid[k] || tr.Data[k] != raw[r].d0[want] || b.Labels["origin"][k] != raw[r].origin[want] {
							t.Fatalf("row %d slot %d: d0 %v origin %d, want entry %d: %v %d", r, s, tr.Data[k], b.Labels["origin"][k], want, raw[r].d0[want], raw[r].origin[want])
						}
					}
				}
			}
			if got != len(wantRows) || ds.Len() != len(wantRows) || ds.FileJets() != len(raw) {
				t.Fatalf("read %d jets, Len %d, FileJets %d; want %d of %d", got, ds.Len(), ds.FileJets(), len(wantRows), len(raw))
			}
			for _, s := range ds.Selections() {
				switch s.Dataset {
				case "jets":
					if s.Seen != int64(len(raw)) || s.Kept != int64(len(wantRows)) {
						t.Errorf("jet counts %d of %d, want %d of %d", s.Kept, s.Seen, len(wantRows), len(raw))
					}
				case "tracks":
					if s.Seen != seen || s.Kept != kept || kept == seen || kept == 0 {
						t.Errorf("track counts %d of %d, want %d of %d (some, not all)", s.Kept, s.Seen, kept, seen)
					}
				}
			}
		})
	}
}

// TestLabelMapsOnFtagFiles turns ftag's HadronConeExclTruthLabelID into
// class indices with a value map and with flavour cuts, and checks both
// against the file's flavour_label (b 0, c 1, light 2, tau 3); values no
// class covers are an error naming them, or ignored when asked.
func TestLabelMapsOnFtagFiles(t *testing.T) {
	path := ftagFile(t, fixture.Ftag{Jets: 300, Tracks: 10, Seed: 3})
	eq := func(v float64) []loader.Cut {
		return []loader.Cut{{Field: "HadronConeExclTruthLabelID", Op: "==", Values: []float64{v}}}
	}
	cone := "HadronConeExclTruthLabelID"
	for _, c := range []struct {
		name  string
		label loader.Label
		want  func(flavour int64) int64
		err   []string
	}{
		{"value map", loader.Label{Field: cone, Map: map[int64]int{5: 0, 4: 1, 0: 2, 15: 3}, NumClasses: 4},
			func(f int64) int64 { return f }, nil},
		{"flavour cuts", loader.Label{Field: cone, NumClasses: 4, Rules: []loader.ClassRule{{Class: 0, Cuts: eq(5)}, {Class: 1, Cuts: eq(4)}, {Class: 2, Cuts: eq(0)}, {Class: 3, Cuts: eq(15)}}},
			func(f int64) int64 { return f }, nil},
		{"tau not mapped", loader.Label{Field: cone, Map: map[int64]int{5: 0, 4: 1, 0: 2}, NumClasses: 3, ClassNames: []string{"bjets", "cjets", "ujets"}},
			nil, []string{"HadronConeExclTruthLabelID = 15", "matches none of the 3 classes (bjets, cjets, ujets)"}},
		{"tau ignored", loader.Label{Field: cone, Map: map[int64]int{5: 0, 4: 1, 0: 2}, NumClasses: 3, IgnoreUnmatched: true},
			func(f int64) int64 {
				if f == 3 {
					return -1
				}
				return f
			}, nil},
		{"light and c merged by cuts", loader.Label{Field: cone, NumClasses: 2, IgnoreUnmatched: true,
			Rules: []loader.ClassRule{{Class: 0, Cuts: eq(5)}, {Class: 1, Cuts: []loader.Cut{{Field: cone, Op: "in", Values: []float64{0, 4}}}}}},
			func(f int64) int64 {
				switch f {
				case 0:
					return 0
				case 1, 2:
					return 1
				}
				return -1
			}, nil},
		{"truth label read as indices", loader.Label{Field: cone, NumClasses: 4},
			nil, []string{`label field "HadronConeExclTruthLabelID"`, "0..3", "label map"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := c.label
			l.Name, l.Dataset, l.Kind = "flavour", "jets", loader.ClassLabel
			ds, err := loader.Open(loader.Config{Files: []string{path}, BatchSize: 50,
				Groups: []loader.Group{{Name: "jets", Variables: []string{"pt_btagJes"}}},
				Labels: []loader.Label{l, {Name: "truth", Dataset: "jets", Field: "flavour_label", Kind: loader.ClassLabel}}})
			if err != nil {
				t.Fatal(err)
			}
			defer ds.Close()
			ch, errc := ds.Batches(context.Background(), 0, 0)
			n := 0
			for b := range ch {
				for j := range b.N {
					if want := c.want(b.Labels["truth"][j]); b.Labels["flavour"][j] != want {
						t.Fatalf("jet %d: class %d, want %d (flavour_label %d)", b.Rows[j], b.Labels["flavour"][j], want, b.Labels["truth"][j])
					}
					n++
				}
			}
			err = <-errc
			if c.err == nil {
				if err != nil || n != 300 {
					t.Fatalf("%d jets, error %v", n, err)
				}
				return
			}
			var le *loader.LabelError
			if !errors.As(err, &le) {
				t.Fatalf("error %v is not a *LabelError", err)
			}
			for _, w := range append(c.err, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestFtagFileErrors checks the messages for a truncated file and for
// misspelt fields: the size the file has and should have; the field the
// name most likely meant.
func TestFtagFileErrors(t *testing.T) {
	path := ftagFile(t, fixture.Ftag{Jets: 300, Tracks: 20, Seed: 5})
	whole, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.h5")
	if err := os.WriteFile(cut, whole[:len(whole)*2/3], 0o644); err != nil {
		t.Fatal(err)
	}
	base := func(files ...string) loader.Config {
		return loader.Config{Files: files, BatchSize: 10,
			Groups: []loader.Group{{Name: "jets", Variables: []string{"pt_btagJes"}}, {Name: "tracks", Variables: []string{"d0"}}}}
	}
	for _, c := range []struct {
		name    string
		edit    func(*loader.Config)
		nearest string
		want    []string
	}{
		{"truncated", func(c *loader.Config) { c.Files = []string{cut} }, "",
			[]string{"cut.h5", "truncated", strconv.Itoa(len(whole)*2/3) + " bytes", "should have " + strconv.Itoa(len(whole))}},
		{"misspelt variable", func(c *loader.Config) { c.Groups[1].Variables = []string{"d00"} }, "d0",
			[]string{`variable "d00"`, `did you mean "d0"?`, `dataset "tracks"`}},
		{"variable in the wrong case", func(c *loader.Config) { c.Groups[1].Variables = []string{"Z0SinTheta"} }, "z0SinTheta",
			[]string{`did you mean "z0SinTheta"?`}},
		{"misspelt label", func(c *loader.Config) {
			c.Labels = []loader.Label{{Name: "jets_classification", Dataset: "jets", Field: "HadronConeExclTruthLabelId", Kind: loader.ClassLabel}}
		}, "HadronConeExclTruthLabelID", []string{`label "jets_classification"`, `did you mean "HadronConeExclTruthLabelID"?`}},
		{"misspelt cut field", func(c *loader.Config) {
			c.Selections = map[string][]loader.Cut{"tracks": {{Field: "d_0", Op: "<", Values: []float64{3.5}}}}
		}, "d0", []string{`selection "d_0 < 3.5"`, `did you mean "d0"?`}},
		{"unknown variable", func(c *loader.Config) { c.Groups[0].Variables = []string{"jetCharge"} }, "", []string{`variable "jetCharge": not found (the dataset has`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := base(path)
			c.edit(&cfg)
			_, err := loader.Open(cfg)
			if err == nil {
				t.Fatal("opened")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			var fe *loader.FieldError
			if errors.As(err, &fe) != (c.name != "truncated") {
				t.Fatalf("FieldError: %v", err)
			}
			if fe != nil && fe.Nearest != c.nearest {
				t.Errorf("nearest %q, want %q", fe.Nearest, c.nearest)
			}
		})
	}
	if _, err := loader.OpenFieldTable(cut, "jets"); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("OpenFieldTable on a truncated file: %v", err)
	}
}

// TestNormOnFtagFiles computes norm dictionaries from ftag-style files
// whose hit counts are all zero, as the mock writer's are: every constant
// variable is named at once; they can be dropped or kept; a NaN is an
// error naming the configuration key, or counted as 0 when asked.
func TestNormOnFtagFiles(t *testing.T) {
	path := ftagFile(t, fixture.Ftag{Jets: 300, Tracks: 20, Seed: 9})
	withNaN := ftagFile(t, fixture.Ftag{Jets: 300, Tracks: 20, Seed: 9, NaN: true})
	groups := []loader.Group{{Name: "jets", Variables: []string{"pt_btagJes", "softMuon_pt", "hasSoftMuon"}},
		{Name: "tracks", Variables: []string{"d0", "numberOfPixelHits", "IP3D_signed_d0_significance", "numberOfSCTHits", "numberOfPixelHoles", "leptonID"}, MaxLen: 10}}
	constants := []string{"tracks.numberOfPixelHits = 0", "tracks.numberOfSCTHits = 0", "tracks.numberOfPixelHoles = 0"}
	for _, c := range []struct {
		name  string
		file  string
		opts  loader.NormOptions
		err   []string
		check func(t *testing.T, r *loader.NormResult)
	}{
		{"constants listed at once", path, loader.NormOptions{}, append([]string{"3 variable(s) are constant"}, constants...), nil},
		{"constants dropped", path, loader.NormOptions{Constant: loader.ConstantDrop}, nil, func(t *testing.T, r *loader.NormResult) {
			if len(r.Constant) != 3 || len(r.Norm["tracks"]) != 3 {
				t.Errorf("constant %v, tracks dict %v", r.Constant, r.Norm["tracks"])
			}
			if _, ok := r.Norm["tracks"]["numberOfSCTHits"]; ok {
				t.Error("a dropped variable is in the dict")
			}
		}},
		{"constants kept", path, loader.NormOptions{Constant: loader.ConstantKeep}, nil, func(t *testing.T, r *loader.NormResult) {
			if e := r.Norm["tracks"]["numberOfPixelHoles"]; e.Mean != 0 || e.Std != 1 || len(r.Norm["tracks"]) != 6 {
				t.Errorf("kept constant: %+v (dict %v)", e, r.Norm["tracks"])
			}
		}},
		{"NaN", withNaN, loader.NormOptions{Constant: loader.ConstantDrop}, []string{"NaN", `field "d0"`, "jet 3", `data.non_finite = "zero"`, "--non-finite zero"}, nil},
		{"NaN as zero", withNaN, loader.NormOptions{Constant: loader.ConstantDrop, NonFinite: loader.ZeroNonFinite}, nil, func(t *testing.T, r *loader.NormResult) {
			if r.NonFinite != 1 || math.IsNaN(r.Norm["tracks"]["d0"].Mean) {
				t.Errorf("%d non-finite values, d0 %+v", r.NonFinite, r.Norm["tracks"]["d0"])
			}
		}},
		{"track selection", path, loader.NormOptions{Constant: loader.ConstantDrop,
			Selections: map[string][]loader.Cut{"tracks": {{Field: "d0", Op: "<", Values: []float64{0}}}}}, nil, func(t *testing.T, r *loader.NormResult) {
			if e := r.Norm["tracks"]["d0"]; e.Mean >= 0 {
				t.Errorf("d0 mean %v over tracks with d0 < 0", e.Mean)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := c.opts
			o.Files, o.Groups = []string{c.file}, groups
			r, err := loader.ComputeNormWith(o)
			if c.err != nil {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range c.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, r)
		})
	}
}

// TestMaxLenBeyondTheFile reports a max_len longer than the file's slots:
// the batches pad, and FileLength says by how much.
func TestMaxLenBeyondTheFile(t *testing.T) {
	path := ftagFile(t, fixture.Ftag{Jets: 50, Tracks: 12, Seed: 1})
	for _, c := range []struct{ maxLen, file, batch int }{{0, 12, 12}, {8, 12, 8}, {20, 12, 20}} {
		ds, err := loader.Open(loader.Config{Files: []string{path}, BatchSize: 10, Limit: 1000,
			Groups: []loader.Group{{Name: "tracks", Variables: []string{"d0"}, MaxLen: c.maxLen}}})
		if err != nil {
			t.Fatal(err)
		}
		file, batch := ds.FileLength("tracks")
		if file != c.file || batch != c.batch || ds.Available() != 50 || ds.Len() != 50 {
			t.Errorf("max_len %d: FileLength %d, %d; Available %d, Len %d", c.maxLen, file, batch, ds.Available(), ds.Len())
		}
		ds.Close()
	}
}

// TestReplacementsOnFtagFiles reads float labels with conditional
// replacements (Salt's data.multi_target) and checks each jet against
// its fields: the source of the last condition that holds, else the
// label's field, or NaN for a label the files do not hold.
func TestReplacementsOnFtagFiles(t *testing.T) {
	path := ftagFile(t, fixture.Ftag{Jets: 300, Tracks: 10, Seed: 4})
	const cone = "HadronConeExclTruthLabelID"
	when := func(op string, v float64, src string) loader.Replacement {
		return loader.Replacement{Cut: loader.Cut{Field: cone, Op: op, Values: []float64{v}}, Source: src}
	}
	for _, c := range []struct {
		name  string
		field string
		repl  []loader.Replacement
		want  func(id, pt, eta float32) float32
	}{
		{"custom target from two sources", "", []loader.Replacement{when("==", 15, "eta"), when("!=", 15, "pt")},
			func(id, pt, eta float32) float32 {
				if id == 15 {
					return eta
				}
				return pt
			}},
		{"custom target where one holds", "", []loader.Replacement{when("==", 5, "pt")},
			func(id, pt, eta float32) float32 {
				if id == 5 {
					return pt
				}
				return float32(math.NaN())
			}},
		{"target replaced where one holds", "eta", []loader.Replacement{when(">=", 4, "pt")},
			func(id, pt, eta float32) float32 {
				if id >= 4 {
					return pt
				}
				return eta
			}},
		{"the last that holds wins", "", []loader.Replacement{when(">=", 0, "eta"), when("==", 5, "pt")},
			func(id, pt, eta float32) float32 {
				if id == 5 {
					return pt
				}
				return eta
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw := func(f string) loader.Label {
				return loader.Label{Name: "raw/" + f, Dataset: "jets", Field: f, Kind: loader.FloatLabel}
			}
			ds, err := loader.Open(loader.Config{Files: []string{path}, BatchSize: 50,
				Groups: []loader.Group{{Name: "jets", Variables: []string{"pt_btagJes"}}},
				Labels: []loader.Label{{Name: "handle", Dataset: "jets", Field: c.field, Kind: loader.FloatLabel, KeepNaN: true, Replace: c.repl},
					raw(cone), raw("pt"), raw("eta")}})
			if err != nil {
				t.Fatal(err)
			}
			defer ds.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel() // before Close, which waits for the epoch to end
			ch, errc := ds.Batches(ctx, 0, 0)
			n, replaced := 0, 0
			for b := range ch {
				for j := range b.N {
					id, pt, eta := b.Targets["raw/"+cone][j], b.Targets["raw/pt"][j], b.Targets["raw/eta"][j]
					got, want := b.Targets["handle"][j], c.want(id, pt, eta)
					if got != want && !(got != got && want != want) {
						t.Fatalf("jet %d (%s %g, pt %g, eta %g): %g, want %g", b.Rows[j], cone, id, pt, eta, got, want)
					}
					if c.field == "" && got == got || c.field != "" && got != eta {
						replaced++
					}
					n++
				}
			}
			if err := <-errc; err != nil || n != 300 {
				t.Fatalf("%d jets, error %v", n, err)
			}
			if replaced == 0 || replaced == n && len(c.repl) == 1 {
				t.Errorf("%d of %d jets replaced: the fixture does not exercise the condition", replaced, n)
			}
		})
	}
}

package deploy

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/internal/onnxcheck"
	"github.com/salt-ort/salt-ort/runtime/ortcompat"
)

// testReleases are the releases `make deps` installs besides 1.29.
var testReleases = []string{"1.14.0", "1.17.3", "1.23.2", "1.31.1"}

// needReleases fails the test, with the fix, where `make deps` has not
// installed the releases: make test installs them, so a missing one is a
// broken install, not a reason to pass.
func needReleases(t *testing.T) {
	t.Helper()
	for _, v := range testReleases {
		if _, err := ortcompat.Library(v); err != nil {
			t.Fatal(err)
		}
	}
}

func exportOpts(t *testing.T, run, out string) ExportOptions {
	return ExportOptions{RunDir: run, Out: out, ValidationJets: 200, Version: "test", Runtime: graphtest.OpenRuntime(t), Checker: onnxcheck.Checker{}}
}

// TestExportReleases: the exported opset-17 model reproduces its vectors
// in ONNX Runtime 1.14, 1.17, 1.23 and 1.31, jets without tracks included
// (1.14 refuses ArgMax over an axis of length 0, which the vertex index
// once reduced on such a jet). Export records the releases in the
// metadata and the model card, and stays bit-identical.
func TestExportReleases(t *testing.T) {
	needReleases(t)
	_, run := trainedRun(t)
	dir := t.TempDir()
	var sums []string
	for _, sub := range []string{"a", "b"} {
		opts := exportOpts(t, run, filepath.Join(dir, sub, "model.onnx"))
		opts.Releases = testReleases
		opts.Opset = 17
		ex, err := Export(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, ex.SHA256)
		if sub == "b" {
			continue
		}
		m, err := Open(graphtest.OpenRuntime(t), ex.Model, 1)
		if err != nil {
			t.Fatal(err)
		}
		v, err := m.ReadVectors(ex.Vectors)
		m.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(v.group("tracks").N, 0) {
			t.Fatal("the validation vectors hold no jet without tracks, the case ONNX Runtime 1.14 once failed")
		}
		if m.Meta.Opset != 17 || len(m.Meta.Runtimes) != len(testReleases) {
			t.Fatalf("metadata: opset %d, runtimes %+v; want opset 17 and %d releases", m.Meta.Opset, m.Meta.Runtimes, len(testReleases))
		}
		for i, r := range m.Meta.Runtimes {
			if r.Version != testReleases[i] || !r.Reproduced || r.Error != "" || r.Reference != graphtest.OpenRuntime(t).Version() ||
				r.MaxAbs > DefaultTolerance || r.FromReference > DefaultTolerance {
				t.Errorf("release %d: %+v", i, r)
			}
			t.Logf("ONNX Runtime %s: max abs diff %.3g from the vectors, %.3g from %s", r.Version, r.MaxAbs, r.FromReference, r.Reference)
		}
		card := string(readBytes(t, ex.Card))
		if !strings.Contains(card, "## ONNX Runtime releases") || !strings.Contains(card, "| 1.17.3 | yes |") || !strings.Contains(card, "| 1.14.0 | yes |") {
			t.Errorf("the model card does not list the releases:\n%s", card)
		}
	}
	if sums[0] != sums[1] {
		t.Error("two exports of one checkpoint with --ort differ")
	}
}

// TestOpsetChoice: the opset export writes, the oldest release that loads
// it, and the clear refusal of an older release.
func TestOpsetChoice(t *testing.T) {
	needReleases(t)
	_, run := trainedRun(t)
	dir := t.TempDir()

	opts := exportOpts(t, run, filepath.Join(dir, "low", "model.onnx"))
	opts.Opset = 13
	if _, err := Export(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "uses Shape's attribute ") || !strings.Contains(err.Error(), "which opset 15 introduced: export with --opset 15 or later") {
		t.Errorf("--opset 13: err = %v, want a refusal naming Shape's start or end", err)
	}
	// By default, the lowest opset the graph needs.
	opts.Opset = 0
	ex, err := Export(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Metadata.Opset != 15 {
		t.Errorf("default opset %d, want 15 (Shape with start and end)", ex.Metadata.Opset)
	}

	opts = exportOpts(t, run, filepath.Join(dir, "new", "model.onnx"))
	opts.Opset = 19
	ex, err = Export(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Metadata.Opset != 19 {
		t.Errorf("metadata opset %d, want 19", ex.Metadata.Opset)
	}
	vo := ValidateOptions{Model: ex.Model}
	old, err := ValidateRelease(context.Background(), vo, "1.14.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	if old.Err == nil || !strings.Contains(old.Err.Error(), "ONNX Runtime 1.14.0 could not load the model") || !strings.Contains(old.Err.Error(), "Unsupported model IR version: 9, max supported IR version: 8") {
		t.Errorf("opset 19 in 1.14.0: %v, want a refusal naming the IR version", old.Err)
	}
	// The reductions rewritten for opset 18 still compute what they did.
	newer, err := ValidateRelease(context.Background(), vo, "1.17.3", nil)
	if err != nil {
		t.Fatal(err)
	}
	if newer.Err != nil || !newer.Report.Pass() {
		t.Errorf("opset 19 in 1.17.3: %v %+v", newer.Err, newer.Report)
	}
}

func TestDefaultReleases(t *testing.T) {
	for _, c := range []struct {
		opset int
		want  []string
	}{
		{13, []string{"1.14.0", "1.17.3", "1.31.1"}},
		{17, []string{"1.14.0", "1.17.3", "1.31.1"}},
		{19, []string{"1.17.3", "1.31.1"}},
		{21, []string{"1.23.2", "1.31.1"}},
		{26, []string{"1.31.1"}},
	} {
		got, err := DefaultReleases(c.opset)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("DefaultReleases(%d) = %v, %v; want %v", c.opset, got, err, c.want)
		}
	}
	if _, err := DefaultReleases(27); err == nil || !strings.Contains(err.Error(), "no pinned ONNX Runtime release loads opset 27") {
		t.Errorf("DefaultReleases(27): err = %v", err)
	}
}

func TestMaxDiff(t *testing.T) {
	ref := map[string][][]float32{"p": {{0.5}, {0.25}}, "c": {{1, 2}, {}}}
	for _, c := range []struct {
		name string
		got  map[string][][]float32
		want float64
		ok   bool
	}{
		{"equal", map[string][][]float32{"p": {{0.5}, {0.25}}, "c": {{1, 2}, {}}}, 0, true},
		{"one value", map[string][][]float32{"p": {{0.5}, {0.375}}, "c": {{1, 2}, {}}}, 0.125, true},
		{"class", map[string][][]float32{"p": {{0.5}, {0.25}}, "c": {{1, 0}, {}}}, 2, true},
		{"missing jet", map[string][][]float32{"p": {{0.5}}, "c": {{1, 2}, {}}}, 0, false},
		{"missing constituent", map[string][][]float32{"p": {{0.5}, {0.25}}, "c": {{1}, {}}}, 0, false},
	} {
		got, ok := maxDiff(c.got, ref)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: maxDiff = %g, %v; want %g, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

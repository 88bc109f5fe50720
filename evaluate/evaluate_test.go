package evaluate

import (
	"context"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/loader"
)

// evaluated is the shared result of Run on the fixture.
var evaluated struct {
	once sync.Once
	rep  *Report
	err  error
}

// runFixture runs Run on the trained fixture once, into a temporary
// directory, with two threads.
func runFixture(t *testing.T) *Report {
	t.Helper()
	run, _ := trainedRun(t)
	evaluated.once.Do(func() {
		evaluated.rep, evaluated.err = Run(context.Background(), Options{
			RunDir: run, OutDir: filepath.Join(shared.data, "eval"), FC: DefaultFC, Runtime: graphtest.OpenRuntime(t), Threads: 2,
		})
	})
	if evaluated.err != nil {
		t.Fatal(evaluated.err)
	}
	return evaluated.rep
}

// TestRunSummary checks the summary of the fixture run on its test file:
// every task is reported, numbers are in range, and the JSON file holds
// the same summary.
func TestRunSummary(t *testing.T) {
	rep := runFixture(t)
	if len(rep.Files) != 1 {
		t.Fatalf("%d files evaluated, want 1", len(rep.Files))
	}
	fr := rep.Files[0]
	s := fr.Summary
	var sb strings.Builder
	if err := WriteTable(&sb, s); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + sb.String())
	if s.Jets != fixtureTestJets || s.Model != "Tiny" || len(s.Loss) != 4 {
		t.Errorf("jets %d, model %s, losses %v", s.Jets, s.Model, s.Loss)
	}
	f := s.Flavour
	if f == nil || f.SignalJets == 0 || len(f.Backgrounds) != 3 {
		t.Fatalf("flavour performance %+v", f)
	}
	total := 0
	for _, n := range f.Jets {
		total += n
	}
	if total != fixtureTestJets {
		t.Errorf("flavour counts %v add up to %d", f.Jets, total)
	}
	for _, b := range f.Backgrounds {
		if len(b.WorkingPoints) != 4 || !(b.AUC > 0 && b.AUC <= 1) {
			t.Errorf("%s: %d working points, AUC %v", b.Name, len(b.WorkingPoints), b.AUC)
		}
		for i, wp := range b.WorkingPoints {
			if i > 0 && wp.Cut > b.WorkingPoints[i-1].Cut {
				t.Errorf("%s: cuts rise with efficiency: %+v", b.Name, b.WorkingPoints)
			}
			if math.Abs(wp.SignalEfficiency-wp.Efficiency) > 0.02 {
				t.Errorf("%s: signal efficiency %v at target %v", b.Name, wp.SignalEfficiency, wp.Efficiency)
			}
		}
	}
	if len(s.Constituents) != 1 || len(s.Constituents[0].Accuracy) != 8 || !(s.Constituents[0].Overall > 0) {
		t.Errorf("track origin %+v", s.Constituents)
	}
	if len(s.Vertexing) != 1 || s.Vertexing[0].TruePositive+s.Vertexing[0].FalseNegative == 0 {
		t.Errorf("vertexing %+v", s.Vertexing)
	}
	if len(s.Regression) != 1 || s.Regression[0].Jets != fixtureTestJets || !(s.Regression[0].Resolution > 0) {
		t.Errorf("regression %+v", s.Regression)
	}
	data, err := os.ReadFile(fr.JSON)
	if err != nil {
		t.Fatal(err)
	}
	var back Summary
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Jets != s.Jets || back.Flavour.Backgrounds[1].WorkingPoints[2].Cut != f.Backgrounds[1].WorkingPoints[2].Cut {
		t.Errorf("%s does not hold the summary", fr.JSON)
	}
}

// h5pyCheck reads a prediction file with h5py, checks it against the
// input file and prints its layout as JSON.
const h5pyCheck = `
import json, sys
import h5py, numpy as np
pred, src, fc = sys.argv[1], sys.argv[2], float(sys.argv[3])
out = {}
with h5py.File(pred, "r") as f, h5py.File(src, "r") as s:
    for name in f:
        d = f[name]
        out[name] = {"shape": list(d.shape), "fields": [[n, d.dtype[n].str] for n in d.dtype.names]}
    j, sj = f["jets"][:], s["jets"][:]
    assert (j["eventNumber"] == sj["eventNumber"]).all(), "eventNumber differs"
    assert (j["pt"] == sj["pt"]).all(), "pt differs"
    assert (j["flavour_label"] == sj["flavour_label"]).all(), "flavour_label differs"
    p = np.stack([j["Tiny_pb"], j["Tiny_pc"], j["Tiny_pu"], j["Tiny_ptau"]], -1)
    assert np.allclose(p.sum(-1), 1, atol=1e-5), "jet probabilities do not sum to 1"
    t, st = f["tracks"][:], s["tracks"][:, : f["tracks"].shape[1]]
    assert (t["valid"] == st["valid"]).all(), "valid differs"
    assert (t["ftagTruthOriginLabel"][t["valid"]] == st["ftagTruthOriginLabel"][st["valid"]]).all(), "origin labels differ"
    assert (t["Tiny_VertexIndex"][~t["valid"]] == -1).all(), "padding has vertex indices"
    assert (t["Tiny_VertexIndex"][t["valid"]] >= 0).all(), "valid tracks lack vertex indices"
    names = [n for n in t.dtype.names if n.startswith("Tiny_p")]
    q = np.stack([t[n] for n in names], -1)
    assert np.allclose(q[t["valid"]].sum(-1), 1, atol=1e-5), "track probabilities do not sum to 1"
    # D_b and the light rejection at 77 %, as puma computes them.
    eps = 1e-10
    disc = np.log((j["Tiny_pb"] + eps) / (fc * j["Tiny_pc"] + (1 - fc) * j["Tiny_pu"] + eps))
    b = disc[j["flavour_label"] == 0]
    u = disc[j["flavour_label"] == 2]
    cut = np.percentile(b, 100 * (1 - 0.77))
    out["light_rejection_77"] = float(len(u) / max((u >= cut).sum(), 1))
    out["cut_77"] = float(cut)
print(json.dumps(out))
`

// TestPredictionFileWithH5py opens the prediction file with h5py and
// checks its datasets, fields, types and shapes, its agreement with the
// input file, and the 77 % working point against numpy.
func TestPredictionFileWithH5py(t *testing.T) {
	py, why := pythonH5py()
	if py == "" {
		t.Skipf("skipped: %s", why)
	}
	rep := runFixture(t)
	_, data := trainedRun(t)
	fr := rep.Files[0]
	cmd := exec.Command(py, "-c", h5pyCheck, fr.Predictions, filepath.Join(data, "test.h5"), "0.2")
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("h5py: %v\n%s", err, msg)
	}
	type ds struct {
		Shape  []int
		Fields [][2]string
	}
	var got struct {
		Jets   ds
		Tracks ds
		Rej77  float64 `json:"light_rejection_77"`
		Cut77  float64 `json:"cut_77"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	fields := func(d ds) string {
		var s []string
		for _, f := range d.Fields {
			s = append(s, f[0]+":"+f[1])
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct {
		name   string
		d      ds
		shape  []int
		fields string
	}{
		{"jets", got.Jets, []int{fixtureTestJets},
			"pt:<f4 eta:<f4 HadronConeExclTruthLabelID:<i4 flavour_label:<i4 eventNumber:<i8 " +
				"Tiny_pb:<f4 Tiny_pc:<f4 Tiny_pu:<f4 Tiny_ptau:<f4 Tiny_eta:<f4 Tiny_eta_stddev:<f4"},
		{"tracks", got.Tracks, []int{fixtureTestJets, 20},
			"ftagTruthOriginLabel:|i1 ftagTruthVertexIndex:<i4 Tiny_ppileup:<f4 Tiny_pfake:<f4 Tiny_pprimary:<f4 Tiny_pfromB:<f4 " +
				"Tiny_pfromBC:<f4 Tiny_pfromC:<f4 Tiny_pfromTau:<f4 Tiny_potherSecondary:<f4 Tiny_VertexIndex:|i1 valid:|b1"},
	} {
		if !slices.Equal(tc.d.Shape, tc.shape) {
			t.Errorf("%s: shape %v, want %v", tc.name, tc.d.Shape, tc.shape)
		}
		if f := fields(tc.d); f != tc.fields {
			t.Errorf("%s fields:\n got %s\nwant %s", tc.name, f, tc.fields)
		}
	}
	var light Background
	for _, b := range fr.Summary.Flavour.Backgrounds {
		if b.Name == "light" {
			light = b
		}
	}
	wp := light.WorkingPoints[2]
	if math.Abs(float64(wp.Cut)-got.Cut77) > 1e-4 || (!math.IsInf(float64(wp.Rejection), 1) && math.Abs(float64(wp.Rejection)-got.Rej77) > 1e-6*got.Rej77) {
		t.Errorf("77 %% working point: cut %v, rejection %v; numpy from the file: %v, %v", wp.Cut, wp.Rejection, got.Cut77, got.Rej77)
	}
}

// TestPlotsDecode decodes every PNG Run wrote and checks its size.
func TestPlotsDecode(t *testing.T) {
	rep := runFixture(t)
	plots := append(append([]string(nil), rep.Files[0].Plots...), rep.LossPlot)
	want := []string{"test_disc_b.png", "test_roc.png", LossPlot}
	if len(plots) != len(want) {
		t.Fatalf("plots %v, want %v", plots, want)
	}
	for i, p := range plots {
		if filepath.Base(p) != want[i] {
			t.Errorf("plot %s, want %s", p, want[i])
		}
		checkPNG(t, p)
	}
}

// checkPNG decodes a PNG and checks it is a non-trivial image.
func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b := img.Bounds()
	if b.Dx() < 600 || b.Dy() < 400 || st.Size() < 10_000 {
		t.Errorf("%s: %d×%d pixels, %d bytes", path, b.Dx(), b.Dy(), st.Size())
	}
	// Not a blank canvas: count the non-white pixels.
	ink := 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			if r, g, bl, _ := img.At(x, y).RGBA(); r != 0xffff || g != 0xffff || bl != 0xffff {
				ink++
			}
		}
	}
	if ink < 2000 {
		t.Errorf("%s: only %d non-white pixels sampled", path, ink)
	}
}

// TestKeepFields checks explicit --keep lists: the fields are copied in
// the given order, and a missing field is an error naming the file, the
// dataset and the field.
func TestKeepFields(t *testing.T) {
	run, data := trainedRun(t)
	test := filepath.Join(data, "test.h5")
	rt := graphtest.OpenRuntime(t)
	out := t.TempDir()
	_, err := Run(context.Background(), Options{RunDir: run, Files: []string{test}, OutDir: out, Keep: []string{"eventNumber", "nope"}, FC: DefaultFC, Runtime: rt, Threads: 2, NoPlots: true})
	if err == nil {
		t.Fatal("a missing --keep field gave no error")
	}
	for _, want := range []string{test, `"jets"`, `"nope"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	rep, err := Run(context.Background(), Options{RunDir: run, Files: []string{test}, OutDir: out, Keep: []string{"n_tracks", "eventNumber"}, FC: DefaultFC, Runtime: rt, Threads: 2, NoPlots: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.LossPlot != "" || len(rep.Files[0].Plots) != 0 {
		t.Errorf("NoPlots wrote plots: %v %v", rep.LossPlot, rep.Files[0].Plots)
	}
	in, err := loader.OpenFieldTable(rep.Files[0].Predictions, "jets")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	for _, f := range []string{"n_tracks", "eventNumber", "Tiny_pb"} {
		if !in.Has(f) {
			t.Errorf("the prediction file lacks %s", f)
		}
	}
	if in.Has("pt") || in.Has("flavour_label") {
		t.Error("an explicit keep list still copied default fields")
	}
}

// TestCompare compares the fixture run with itself: the ratio is 1 and
// the comparison plot decodes.
func TestCompare(t *testing.T) {
	run, _ := trainedRun(t)
	out := t.TempDir()
	cmps, err := Compare(context.Background(), run, run, Options{OutDir: out, FC: DefaultFC, Runtime: graphtest.OpenRuntime(t), Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(cmps) != 1 || cmps[0].Plot != filepath.Join(out, "compare_test_roc.png") {
		t.Fatalf("comparisons %+v", cmps)
	}
	c := cmps[0]
	for i := range c.ROCA {
		for k := range c.ROCA[i].Rejection {
			if a, b := c.ROCA[i].Rejection[k], c.ROCB[i].Rejection[k]; a != b {
				t.Fatalf("the same run gave rejections %v and %v", a, b)
			}
		}
	}
	checkPNG(t, c.Plot)
	if _, err := Compare(context.Background(), run, filepath.Join(out, "missing"), Options{OutDir: out, FC: DefaultFC, Runtime: graphtest.OpenRuntime(t)}); err == nil {
		t.Error("comparing with a missing run gave no error")
	}
}

// TestStems refuses two test files that would write the same outputs.
func TestStems(t *testing.T) {
	if _, err := stems([]string{"a/test.h5", "b/test.h5"}); err == nil {
		t.Error("two files with one stem were accepted")
	}
	s, err := stems([]string{"a/ttbar.h5", "b/zprime.h5"})
	if err != nil || s[0] != "ttbar" || s[1] != "zprime" {
		t.Errorf("stems %v, %v", s, err)
	}
}

// TestClassField checks prediction-file names against Salt's: ftag's
// flavour names give their short names.
func TestClassField(t *testing.T) {
	spec := model.GN2()
	task := spec.Tasks[0]
	for _, tc := range []struct {
		class string
		first bool
		want  string
	}{
		{"b", true, "GN2_pb"},
		{"bjets", true, "GN2_pb"},
		{"taujets", true, "GN2_ptau"},
		{"pileup", true, "GN2_ppileup"},
		{"cjets", false, "GN2_jets_classification_pc"},
	} {
		if got := ClassField(&spec, task, tc.first, tc.class); got != tc.want {
			t.Errorf("ClassField(%s, first %v) = %s, want %s", tc.class, tc.first, got, tc.want)
		}
	}
}

package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/gendata"
	"github.com/salt-ort/salt-ort/internal/testkit/fixture"
)

func TestVariableUnit(t *testing.T) {
	for _, c := range []struct{ name, want string }{
		{"pt_btagJes", "MeV"}, {"pt", "MeV"}, {"mass", "MeV"}, {"energy", "MeV"},
		{"eta_btagJes", "1"}, {"deta", "1"}, {"abs_eta", "1"},
		{"d0", "mm"}, {"z0SinTheta", "mm"}, {"Lxy", "mm"},
		{"dphi", "rad"}, {"phiUncertainty", "rad"}, {"thetaUncertainty", "rad"},
		{"qOverP", "1/MeV"}, {"qOverPUncertainty", "1/MeV"},
		{"IP3D_signed_d0_significance", "1"}, {"d0RelativeToBeamspotSignificance", "1"},
		{"numberOfPixelHits", "1"}, {"ptfrac", "1"}, {"dr", "1"},
		{"eProbabilityHT", "unknown"}, {"leptonID", "unknown"},
	} {
		if got := VariableUnit(c.name); got != c.want {
			t.Errorf("VariableUnit(%q) = %q, want %q", c.name, got, c.want)
		}
	}
}

// TestPerformanceNote: without an eval summary of the exported checkpoint
// the card has no performance and says which command gives it, naming
// the checkpoint eval did evaluate.
func TestPerformanceNote(t *testing.T) {
	run := t.TempDir()
	hash := memoHash()
	perf, note, err := performance(run, "/x/checkpoints/epoch=002.safetensors", hash)
	if err != nil || perf != nil || !strings.Contains(note, "run `salt-ort eval RUN --checkpoint epoch=002.safetensors`") {
		t.Errorf("no eval: %v %v %q", perf, err, note)
	}
	if err := os.MkdirAll(filepath.Join(run, "eval"), 0o755); err != nil {
		t.Fatal(err)
	}
	summary := `{"file": "test.h5", "model": "GN2", "checkpoint": "runs/x/checkpoints/epoch=001.safetensors", "jets": 3,
		"flavour": {"task": "jets_classification", "fc": 0.2, "signal": "b", "jets": {"b": 1, "u": 2}, "signal_jets": 1, "backgrounds": []}}`
	if err := os.WriteFile(filepath.Join(run, "eval", "test.json"), []byte(summary), 0o644); err != nil {
		t.Fatal(err)
	}
	perf, note, err = performance(run, "/x/checkpoints/epoch=002.safetensors", hash)
	if err != nil || perf != nil || !strings.Contains(note, "(eval evaluated epoch=001.safetensors)") {
		t.Errorf("eval of another checkpoint: %v %v %q", perf, err, note)
	}
	perf, _, err = performance(run, "/y/epoch=001.safetensors", hash)
	if err != nil || len(perf) != 1 || perf[0].SHA256 != "" || perf[0].File != "test.h5" {
		t.Errorf("eval of the checkpoint, test file not here: %+v %v", perf, err)
	}
}

// TestKinematicFallback: where pt or eta is no jet input, the card takes
// the jets field of that name and says so; where the files have neither,
// it says the range is unknown.
func TestKinematicFallback(t *testing.T) {
	data := datasets.Get(t, gendata.Config{Seed: 4, Train: 800, Val: 300, Test: 100})
	files := []string{filepath.Join(data, "train.h5")}
	for _, c := range []struct {
		jets   string
		fields []string
		notes  []string
	}{
		{`["pt_btagJes", "eta_btagJes"]`, []string{"pt_btagJes", "eta_btagJes"}, nil},
		{`["mass", "eta_btagJes"]`, []string{"pt", "eta_btagJes"}, []string{"no jet input is pt: its range is that of the jets field pt, which the model does not read"}},
		{`["mass"]`, []string{"pt", "eta"}, []string{"no jet input is pt", "no jet input is eta"}},
	} {
		toml := strings.Replace(fixture.Tiny(data, fixture.Options{}), `jets = ["pt_btagJes", "eta_btagJes"]`, "jets = "+c.jets, 1)
		cfg, err := config.Parse(filepath.Join(t.TempDir(), "c.toml"), []byte(toml))
		if err != nil {
			t.Fatal(err)
		}
		vars, notes := kinematicVars(cfg, files)
		var fields []string
		for _, v := range vars {
			fields = append(fields, v.field)
		}
		if !slices.Equal(fields, c.fields) || len(notes) != len(c.notes) {
			t.Errorf("jets %s: fields %v, notes %q", c.jets, fields, notes)
			continue
		}
		for i, n := range c.notes {
			if !strings.HasPrefix(notes[i], n) {
				t.Errorf("jets %s: note %q, want %q", c.jets, notes[i], n)
			}
		}
	}
	// Files without the fields: the range is unknown.
	toml := strings.Replace(fixture.Tiny(data, fixture.Options{}), `jets = ["pt_btagJes", "eta_btagJes"]`, `jets = ["mass"]`, 1)
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "c.toml"), []byte(toml))
	if err != nil {
		t.Fatal(err)
	}
	if vars, notes := kinematicVars(cfg, []string{filepath.Join(t.TempDir(), "none.h5")}); len(vars) != 0 || len(notes) != 2 ||
		notes[0] != "no jet input is pt and the jets have no field pt: the pt range of the training jets is unknown" {
		t.Errorf("no fields: %v %q", vars, notes)
	}
}

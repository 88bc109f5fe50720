package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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

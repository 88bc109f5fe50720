package evaluate

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/gendata"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/internal/testkit/fixture"
	"github.com/salt-ort/salt-ort/train"
)

// regressionTasks regress the b or c hadron's decay length, which light
// jets lack (NaN), with Salt's log scaler, and each track's eta.
const regressionTasks = `[[model.tasks]]
name = "lxy"
kind = "regression"
targets = ["HadronConeExclTruthLabelLxy"]
hidden = [8]
[model.tasks.scaler.HadronConeExclTruthLabelLxy]
op = "log"
x_off = 1.0
[[model.tasks]]
name = "track_eta"
kind = "gaussian_regression"
input = "tracks"
targets = ["eta"]
hidden = [8]
`

// TestRegressionEvaluation evaluates a run with a regression whose target
// is missing for light jets and a regression of each track: the summary
// counts only the jets with a target, and the prediction file holds each
// valid track's prediction (in the target's units) and none for padding.
func TestRegressionEvaluation(t *testing.T) {
	py, why := pythonH5py()
	if py == "" {
		t.Fatalf("%s: run `make deps`", why)
	}
	data := datasets.Get(t, gendata.Config{Seed: 8, Train: 600, Val: 200, Test: 200})
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "model.toml")
	text := fixture.Tiny(data, fixture.Options{Name: "Reg", Seed: 3, JetTasksOnly: true, ExtraTasks: regressionTasks})
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "run")
	if _, err := train.Run(context.Background(), train.Options{Config: c, RunDir: run, Runtime: graphtest.OpenRuntime(t)}); err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), Options{RunDir: run, OutDir: filepath.Join(dir, "eval"), FC: DefaultFC, Runtime: graphtest.OpenRuntime(t), Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	fr := rep.Files[0]
	const check = `
import json, sys
import h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    j, t = f["jets"][:], f["tracks"][:]
    lxy = j["HadronConeExclTruthLabelLxy"]
    print(json.dumps({
        "with_target": int(np.isfinite(lxy).sum()),
        "lxy_positive": bool((j["Reg_HadronConeExclTruthLabelLxy"] > -1).all()),
        "eta_valid": bool(np.isfinite(t["Reg_eta"][t["valid"]]).all() and (np.abs(t["Reg_eta"][t["valid"]]) < 10).all()),
        "eta_padding_zero": bool((t["Reg_eta"][~t["valid"]] == 0).all()),
        "stddev_positive": bool((t["Reg_eta_stddev"][t["valid"]] > 0).all()),
        "valid_tracks": int(t["valid"].sum()),
    }))
`
	out, err := exec.Command(py, "-c", check, fr.Predictions).CombinedOutput()
	if err != nil {
		t.Fatalf("h5py: %v\n%s", err, out)
	}
	var got struct {
		WithTarget     int  `json:"with_target"`
		LxyPositive    bool `json:"lxy_positive"`
		EtaValid       bool `json:"eta_valid"`
		EtaPaddingZero bool `json:"eta_padding_zero"`
		StddevPositive bool `json:"stddev_positive"`
		ValidTracks    int  `json:"valid_tracks"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !got.LxyPositive || !got.EtaValid || !got.EtaPaddingZero || !got.StddevPositive || got.WithTarget == 0 || got.WithTarget == 200 {
		t.Errorf("prediction file: %+v", got)
	}
	counts := map[string]int{}
	for _, r := range fr.Summary.Regression {
		counts[r.Task] = r.Jets
		if !(r.Resolution > 0) {
			t.Errorf("%s: resolution %v", r.Task, r.Resolution)
		}
	}
	if counts["lxy"] != got.WithTarget || counts["track_eta"] != got.ValidTracks {
		t.Errorf("regression counts %v, want %d jets with a decay length and %d valid tracks", counts, got.WithTarget, got.ValidTracks)
	}
}

package evaluate

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/gendata"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/internal/testkit/fixture"
	"github.com/salt-ort/salt-ort/train"
)

// binaryTasks are binary classifications (Salt's BCEWithLogitsLoss with
// one output) of jets, b or not, and of tracks, primary or not.
const binaryTasks = `[[model.tasks]]
name = "bjets"
kind = "jet_classification"
label = "flavour_label"
class_names = ["b"]
loss = "BCEWithLogitsLoss"
hidden = [8]
[model.tasks.label_map]
0 = "b"
1 = 0
2 = 0
3 = 0
[[model.tasks]]
name = "primary"
kind = "track_classification"
input = "tracks"
label = "ftagTruthOriginLabel"
class_names = ["primary"]
loss = "BCEWithLogitsLoss"
dropout = 0.1
hidden = [8]
[model.tasks.label_map]
0 = 0
1 = 0
2 = 1
3 = 0
4 = 0
5 = 0
6 = 0
7 = 0
`

// TestBinaryEvaluation evaluates a run with binary tasks: the prediction
// file holds one probability per jet and per valid track, as Salt's writer
// names and computes it (the sigmoid of the logit), the summary counts the
// tracks' accuracy over the label's two values, and no flavour
// performance is computed from a binary task.
func TestBinaryEvaluation(t *testing.T) {
	py, why := pythonH5py()
	if py == "" {
		t.Fatalf("%s: run `make deps`", why)
	}
	data := datasets.Get(t, gendata.Config{Seed: 8, Train: 600, Val: 200, Test: 200})
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "model.toml")
	text := fixture.Tiny(data, fixture.Options{Name: "Bin", Seed: 3, NoGN2Tasks: true, NoClassDict: true, ExtraTasks: binaryTasks})
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
    pj, pt, v = j["Bin_pb"], t["Bin_pprimary"], t["valid"]
    print(json.dumps({
        "jet_fields": [n for n in j.dtype.names if n.startswith("Bin_")],
        "track_fields": [n for n in t.dtype.names if n.startswith("Bin_")],
        "jets_in_range": bool(((pj > 0) & (pj < 1)).all()),
        "tracks_in_range": bool(((pt[v] > 0) & (pt[v] < 1)).all()),
        "valid_tracks": int(v.sum()),
    }))
`
	out, err := exec.Command(py, "-c", check, fr.Predictions).CombinedOutput()
	if err != nil {
		t.Fatalf("h5py: %v\n%s", err, out)
	}
	var got struct {
		JetFields     []string `json:"jet_fields"`
		TrackFields   []string `json:"track_fields"`
		JetsInRange   bool     `json:"jets_in_range"`
		TracksInRange bool     `json:"tracks_in_range"`
		ValidTracks   int64    `json:"valid_tracks"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !slices.Equal(got.JetFields, []string{"Bin_pb"}) || !slices.Equal(got.TrackFields, []string{"Bin_pprimary"}) || !got.JetsInRange || !got.TracksInRange {
		t.Errorf("prediction file: %+v", got)
	}
	s := fr.Summary
	if s.Flavour != nil {
		t.Errorf("flavour performance %+v from a binary task", s.Flavour)
	}
	if len(s.Constituents) != 1 {
		t.Fatalf("constituent accuracies %+v, want the binary track task's", s.Constituents)
	}
	a := s.Constituents[0]
	var n int64
	for _, k := range a.Count {
		n += k
	}
	if !slices.Equal(a.Classes, []string{"not primary", "primary"}) || n != got.ValidTracks || a.Count[0] == 0 || a.Count[1] == 0 {
		t.Errorf("track accuracy %+v over %d valid tracks, want counts of both label values", a, got.ValidTracks)
	}
}

package loader_test

// These tests read files made by the gendata package, which imports the
// loader; they live in the external test package so that the loader's own
// tests never depend on its generator.

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/gendata"
	"github.com/salt-ort/salt-ort/loader"
)

// TestShards checks that N shards of every batch, put side by side, are
// the batches one process reads: the same jets in the same slots, the
// same masks and labels, for a shuffled epoch with a partial last batch
// and from a resumed position.
func TestShards(t *testing.T) {
	dir := t.TempDir()
	if _, err := gendata.Generate(gendata.Config{Seed: 7, Train: 250, NoDicts: true}, dir); err != nil {
		t.Fatal(err)
	}
	cfg := loader.Config{Files: []string{filepath.Join(dir, "train.h5")}, Groups: loader.GN2Groups(), Labels: loader.GN2Labels(),
		BatchSize: 12, Shuffle: true, Seed: 3, ChunkSize: 16, ShuffleBuffer: 48, Workers: 2}
	open := func(c loader.Config) *loader.Dataset {
		ds, err := loader.Open(c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ds.Close() })
		return ds
	}
	whole := open(cfg)
	for _, n := range []int{2, 3, 4} {
		shards := make([]*loader.Dataset, n)
		for r := range shards {
			c := cfg
			c.Shards, c.Shard = n, r
			shards[r] = open(c)
			if got := shards[r].BatchSize(); got != 12/n {
				t.Fatalf("%d shards: batches of %d rows, want %d", n, got, 12/n)
			}
		}
		for _, pos := range []struct{ epoch, start int }{{0, 0}, {1, 0}, {1, 13}} {
			want := loader.CollectEpoch(t, whole, pos.epoch, pos.start)
			got := make([][]*loader.Batch, n)
			for r, ds := range shards {
				got[r] = loader.CollectEpoch(t, ds, pos.epoch, pos.start)
				if len(got[r]) != len(want) {
					t.Fatalf("%d shards: rank %d read %d batches, one process %d", n, r, len(got[r]), len(want))
				}
			}
			for k, w := range want {
				var mask []float32
				var data []float32
				var origin []int64
				real := 0
				for r := range got {
					b := got[r][k]
					if b.Index != w.Index {
						t.Fatalf("batch %d: index %d, want %d", k, b.Index, w.Index)
					}
					mask = append(mask, b.JetMask...)
					data = append(data, b.Inputs["tracks"].Data...)
					origin = append(origin, b.Labels["origin"]...)
					real += b.N
				}
				if real != w.N || !slices.Equal(mask, w.JetMask) || !slices.Equal(data, w.Inputs["tracks"].Data) || !slices.Equal(origin, w.Labels["origin"]) {
					t.Fatalf("%d shards, epoch %d, batch %d: the shards side by side differ from the batch (real jets %d, want %d)", n, pos.epoch, k, real, w.N)
				}
			}
		}
	}
	for _, bad := range []loader.Config{{Shards: 5}, {Shards: 2, Shard: 2}, {Shards: -1}, {Shard: 1}} {
		c := cfg
		c.Shards, c.Shard = bad.Shards, bad.Shard
		if _, err := loader.Open(c); err == nil {
			t.Errorf("shard %d of %d of batches of 12 opened", c.Shard, c.Shards)
		}
	}
}

// TestClassLabelOutOfRange checks that a class label beyond the configured
// number of classes is an error naming the file, field and the fix.
func TestClassLabelOutOfRange(t *testing.T) {
	dir := t.TempDir()
	if _, err := gendata.Generate(gendata.Config{Seed: 1, Train: 200, NoDicts: true}, dir); err != nil {
		t.Fatal(err)
	}
	for _, classes := range []int{3, 7} { // flavour_label reaches 3, origins 7
		cfg := loader.Config{Files: []string{filepath.Join(dir, "train.h5")}, BatchSize: 50, Groups: loader.GN2Groups(),
			Labels: []loader.Label{{Name: "flavour", Dataset: "jets", Field: "flavour_label", Kind: loader.ClassLabel, NumClasses: classes},
				{Name: "origin", Dataset: "tracks", Field: "ftagTruthOriginLabel", Kind: loader.ClassLabel, NumClasses: classes}}}
		ds, err := loader.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ch, errc := ds.Batches(context.Background(), 0, 0)
		for b := range ch {
			b.Release()
		}
		err = <-errc
		ds.Close()
		if err == nil || !strings.Contains(err.Error(), "train.h5") || !strings.Contains(err.Error(), "class_names") {
			t.Errorf("%d classes: err = %v, want one naming the file and class_names", classes, err)
		}
	}
}

// TestH5pyReadsGenerated checks that h5py sees the generator's files in
// Salt's layout: field names and dtypes, valid as numpy bool.
func TestH5pyReadsGenerated(t *testing.T) {
	py := loader.NeedH5py(t)
	res, err := gendata.Generate(gendata.Config{Seed: 1, Train: 200, NoDicts: true}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "-c", `
import json, sys
import numpy as np, h5py
with h5py.File(sys.argv[1], "r") as f:
    j, t = f["jets"][:], f["tracks"][:]
    print(json.dumps({
        "jets": {n: j.dtype[n].str for n in j.dtype.names},
        "tracks": {n: t.dtype[n].str for n in t.dtype.names},
        "shape": list(t.shape),
        "valid_is_bool": bool(t.dtype["valid"] == np.dtype(bool)),
        "n_valid": int(t["valid"].sum()),
        "ntrk_ok": bool((t["valid"].sum(axis=1) <= j["n_tracks"]).all()),
        "padded_zero": bool((t["d0"][~t["valid"]] == 0).all()),
    }))`, res.Train).Output()
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Jets, Tracks map[string]string
		Shape        []int
		ValidIsBool  bool `json:"valid_is_bool"`
		NValid       int  `json:"n_valid"`
		NtrkOK       bool `json:"ntrk_ok"`
		PaddedZero   bool `json:"padded_zero"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := map[string]string{"pt_btagJes": "<f4", "n_tracks": "<i4", "flavour_label": "<i4", "eventNumber": "<i8", "HadronConeExclTruthLabelLxy": "<f4"}
	for k, v := range want {
		if got.Jets[k] != v {
			t.Errorf("jets %s dtype %q, want %q", k, got.Jets[k], v)
		}
	}
	want = map[string]string{"d0": "<f4", "numberOfPixelHits": "|u1", "ftagTruthOriginLabel": "|i1", "ftagTruthVertexIndex": "<i4", "valid": "|b1", "phi": "<f4"}
	for k, v := range want {
		if got.Tracks[k] != v {
			t.Errorf("tracks %s dtype %q, want %q", k, got.Tracks[k], v)
		}
	}
	if len(got.Tracks) != len(gendata.TrackFields()) || len(got.Jets) != len(gendata.JetFields()) {
		t.Errorf("%d track fields, %d jet fields", len(got.Tracks), len(got.Jets))
	}
	if !got.ValidIsBool || got.NValid == 0 || !got.NtrkOK || !got.PaddedZero || got.Shape[0] != 200 || got.Shape[1] != 40 {
		t.Errorf("h5py view: %+v", got)
	}
}

package loader

import (
	"path/filepath"
	"slices"
	"testing"
)

// TestShards checks that N shards of every batch, put side by side, are
// the batches one process reads: the same jets in the same slots, the
// same masks and labels, for a shuffled epoch with a partial last batch
// and from a resumed position.
func TestShards(t *testing.T) {
	dir := t.TempDir()
	if _, err := Generate(GenConfig{Seed: 7, Train: 250, NoDicts: true}, dir); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Files: []string{filepath.Join(dir, "train.h5")}, Groups: GN2Groups(), Labels: GN2Labels(),
		BatchSize: 12, Shuffle: true, Seed: 3, ChunkSize: 16, ShuffleBuffer: 48, Workers: 2}
	open := func(c Config) *Dataset {
		ds, err := Open(c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ds.Close() })
		return ds
	}
	whole := open(cfg)
	for _, n := range []int{2, 3, 4} {
		shards := make([]*Dataset, n)
		for r := range shards {
			c := cfg
			c.Shards, c.Shard = n, r
			shards[r] = open(c)
			if got := shards[r].BatchSize(); got != 12/n {
				t.Fatalf("%d shards: batches of %d rows, want %d", n, got, 12/n)
			}
		}
		for _, pos := range []struct{ epoch, start int }{{0, 0}, {1, 0}, {1, 13}} {
			want := collect(t, whole, pos.epoch, pos.start)
			got := make([][]*Batch, n)
			for r, ds := range shards {
				got[r] = collect(t, ds, pos.epoch, pos.start)
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
	for _, bad := range []Config{{Shards: 5}, {Shards: 2, Shard: 2}, {Shards: -1}, {Shard: 1}} {
		c := cfg
		c.Shards, c.Shard = bad.Shards, bad.Shard
		if _, err := Open(c); err == nil {
			t.Errorf("shard %d of %d of batches of 12 opened", c.Shard, c.Shards)
		}
	}
}

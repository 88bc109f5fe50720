package loader

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// h5pyWriteScript writes Salt-like files the way physicists' tools do:
// numpy structured dtypes (bool, f2, big-endian f4, i1, u1, i2, f8, a
// string), chunked and gzip-compressed; jet j has j % 5 valid tracks.
// A second file uses h5py's LZF filter, which libhdf5 itself lacks.
const h5pyWriteScript = `
import sys
import numpy as np, h5py
path, lzf_path = sys.argv[1], sys.argv[2]
n, T = 50, 6
jets = np.zeros(n, dtype=[("name", "S8"), ("flavour_label", "<i4"), ("pt_btagJes", "<f4"),
                          ("eta_btagJes", "<f2"), ("weight", "<f8")])
jets["name"] = b"jet"
jets["flavour_label"] = np.arange(n) % 4
jets["pt_btagJes"] = 1000.0 * np.arange(n)
jets["eta_btagJes"] = 0.25 * (np.arange(n) % 9) - 1
jets["weight"] = 1.0 + np.arange(n) / 10
tracks = np.zeros((n, T), dtype=[("d0", ">f4"), ("valid", "?"), ("hits", "u1"),
                                 ("ftagTruthOriginLabel", "i1"), ("ftagTruthVertexIndex", "<i2"), ("z0", "<f8")])
j = np.arange(n)[:, None]
t = np.arange(T)[None, :]
valid = t < (j % 5)
tracks["valid"] = valid
tracks["d0"] = np.where(valid, j + t / 8, 0)
tracks["hits"] = np.where(valid, t + 1, 0)
tracks["ftagTruthOriginLabel"] = np.where(valid, t % 8, -1)
tracks["ftagTruthVertexIndex"] = np.where(valid, t - 1, -2)
tracks["z0"] = np.where(valid, -j * 0.5, np.nan)  # NaN in padding is never read
with h5py.File(path, "w") as f:
    f.create_dataset("jets", data=jets, chunks=(16,), compression="gzip")
    f.create_dataset("tracks", data=tracks, chunks=(16, T), compression="gzip", shuffle=True)
with h5py.File(lzf_path, "w") as f:
    f.create_dataset("jets", data=jets, chunks=(16,), compression="lzf")
`

// TestReadH5pyFile reads a file written by h5py with the structured dtypes
// Salt files use.
func TestReadH5pyFile(t *testing.T) {
	py := needH5py(t)
	dir := t.TempDir()
	path, lzf := filepath.Join(dir, "h5py.h5"), filepath.Join(dir, "lzf.h5")
	if out, err := exec.Command(py, "-c", h5pyWriteScript, path, lzf).CombinedOutput(); err != nil {
		t.Fatalf("writing with h5py: %v\n%s", err, out)
	}
	cfg := Config{
		Files: []string{path}, BatchSize: 16, Shuffle: true, ChunkSize: 7, Seed: 2, Weight: "weight",
		Groups: []Group{{Name: "jets", Variables: []string{"pt_btagJes", "eta_btagJes"}}, {Name: "tracks", Variables: []string{"d0", "hits", "z0"}}},
		Labels: []Label{
			{Name: "flavour", Dataset: "jets", Field: "flavour_label", Kind: ClassLabel},
			{Name: "origin", Dataset: "tracks", Field: "ftagTruthOriginLabel", Kind: ClassLabel},
			{Name: "vertex", Dataset: "tracks", Field: "ftagTruthVertexIndex", Kind: IndexLabel},
		},
	}
	ds, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	const T = 6
	seen := 0
	for _, b := range collect(t, ds, 0, 0) {
		jets, tr := b.Inputs["jets"].Data, b.Inputs["tracks"]
		for s := range b.N {
			j := int(jets[2*s] / 1000)
			seen++
			if want := float32(0.25*float64(j%9) - 1); jets[2*s+1] != want {
				t.Fatalf("jet %d eta (f2) = %v, want %v", j, jets[2*s+1], want)
			}
			if b.Weights[s] != float32(1+float64(j)/10) || b.Labels["flavour"][s] != int64(j%4) {
				t.Fatalf("jet %d weight %v flavour %d", j, b.Weights[s], b.Labels["flavour"][s])
			}
			for tt := range T {
				k := s*T + tt
				valid := tt < j%5
				if tr.Valid[k] != valid {
					t.Fatalf("jet %d track %d valid = %v (numpy bool as HDF5 enum)", j, tt, tr.Valid[k])
				}
				d0, hits, z0 := tr.Data[3*k], tr.Data[3*k+1], tr.Data[3*k+2]
				o, v := b.Labels["origin"][k], b.Labels["vertex"][k]
				if !valid {
					if d0 != 0 || hits != 0 || z0 != 0 || o != -1 || v != -1 {
						t.Fatalf("jet %d padded track %d: %v %v %v %d %d", j, tt, d0, hits, z0, o, v)
					}
					continue
				}
				if d0 != float32(float64(j)+float64(tt)/8) || hits != float32(tt+1) || z0 != float32(-float64(j)*0.5) {
					t.Fatalf("jet %d track %d: d0 %v hits %v z0 %v", j, tt, d0, hits, z0)
				}
				if o != int64(tt%8) || v != max(int64(tt-1), -1) {
					t.Fatalf("jet %d track %d: origin %d vertex %d", j, tt, o, v)
				}
			}
		}
	}
	if seen != 50 {
		t.Fatalf("read %d jets, want 50", seen)
	}
	// A string member cannot be an input.
	cfg.Groups = []Group{{Name: "jets", Variables: []string{"name"}}}
	if _, err := Open(cfg); err == nil || !contains(err.Error(), `variable "name"`) || !contains(err.Error(), "string") {
		t.Errorf("string field: %v", err)
	}
	// h5py's LZF filter, which libhdf5 itself lacks, reads through
	// salt-ort's in-process LZF filter.
	cfg = Config{Files: []string{lzf}, BatchSize: 64, Groups: []Group{{Name: "jets", Variables: []string{"pt_btagJes"}}}}
	ds, err = Open(cfg)
	if err != nil {
		t.Fatalf("lzf file: %v", err)
	}
	defer ds.Close()
	b := collect(t, ds, 0, 0)[0]
	for j := range 50 {
		if got := b.Inputs["jets"].Data[j]; got != float32(1000*j) {
			t.Fatalf("lzf file: jet %d pt %v", j, got)
		}
	}
}

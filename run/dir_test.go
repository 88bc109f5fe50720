package run

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/salt-ort/salt-ort/checkpoint"
)

// TestRemoveTemporaries leaves a run directory as a run killed while
// writing would, and checks that exactly the temporary files go: those of
// the atomic writes (checkpoints included) in the directory, checkpoints/
// and metrics/, not other hidden files nor the files they replace.
func TestRemoveTemporaries(t *testing.T) {
	dir := t.TempDir()
	for _, sub := range []string{CheckpointDir, MetricsDir} {
		if err := os.MkdirAll(filepath.Join(dir, sub), DirMode); err != nil {
			t.Fatal(err)
		}
	}
	// A checkpoint written as training writes one, for its name's pattern.
	f := &checkpoint.File{Metadata: map[string]string{}}
	f.SetFloat32("w", []int64{1}, []float32{1})
	if err := checkpoint.Write(filepath.Join(dir, LastCheckpoint), f); err != nil {
		t.Fatal(err)
	}
	files := []struct {
		name string
		temp bool
	}{
		{TempPrefix + "resolved.toml-123", true},
		{filepath.Join(CheckpointDir, TempPrefix+"last.safetensors-4567"), true},
		{filepath.Join(MetricsDir, TempPrefix+"val.csv-89"), true},
		{ResolvedFile, false},
		{".keep", false},
		{filepath.Join(MetricsDir, "val.csv"), false},
		{filepath.Join("eval", TempPrefix+"x-1"), false}, // not a directory of the run's own
	}
	for _, c := range files {
		path := filepath.Join(dir, c.name)
		if err := os.MkdirAll(filepath.Dir(path), DirMode); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("x"), FileMode); err != nil {
			t.Fatal(err)
		}
	}
	RemoveTemporaries(dir)
	for _, c := range files {
		_, err := os.Stat(filepath.Join(dir, c.name))
		if gone := os.IsNotExist(err); gone != c.temp {
			t.Errorf("%s: removed %v, want %v", c.name, gone, c.temp)
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, CheckpointDir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"last.safetensors"}; !slices.Equal(names, want) {
		t.Errorf("checkpoints/ holds %q, want %q", names, want)
	}
}

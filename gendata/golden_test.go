package gendata

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"testing"

	"github.com/salt-ort/salt-ort/loader"
)

// goldenData is the SHA-256 of the jets and tracks datasets' values (every
// field of JetFields and TrackFields, as stored) of 300 training jets of
// seed 3. The optional datasets draw from random streams of their own, so
// adding one must not move it. A deliberate change of the generator's
// physics changes it: then update it, and say so in the commit message.
const goldenData = "536212705684a95226bf95642cb26f076db211b843b8a702a2b82ee14531f3e0"

// TestGenerateGolden checks that the jets and tracks are the ones earlier
// versions generated: the files the default configuration writes stay the
// same, whatever optional datasets are added.
func TestGenerateGolden(t *testing.T) {
	dir := t.TempDir()
	if _, err := Generate(Config{Seed: 3, Train: 300, NoDicts: true}, dir); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for _, ds := range []struct {
		name   string
		fields []loader.Field
		maxLen int
	}{{"jets", JetFields(), 1}, {"tracks", TrackFields(), 40}} {
		h.Write(readFields(t, filepath.Join(dir, "train.h5"), ds.name, ds.fields, ds.maxLen))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != goldenData {
		t.Errorf("the generated jets and tracks changed: SHA-256 %s, want %s", got, goldenData)
	}
}

// readFields reads every row of the named fields of a dataset.
func readFields(t *testing.T, path, name string, fields []loader.Field, maxLen int) []byte {
	t.Helper()
	layout, err := loader.NewRowLayout(fields...)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := loader.OpenFieldTable(path, name)
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	idx := make([]int, len(fields))
	for i := range idx {
		idx[i] = i
	}
	r, err := tab.NewFieldReader(layout, idx, maxLen)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, tab.Rows()*maxLen*layout.Size)
	if err := r.Read(0, tab.Rows(), buf); err != nil {
		t.Fatal(err)
	}
	return buf
}

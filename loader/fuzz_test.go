package loader

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

func sameFloat(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }

// FuzzReadNormDict checks that no YAML makes the norm-dict reader panic and
// that a dictionary it accepts survives WriteNormDict and ReadNormDict.
func FuzzReadNormDict(f *testing.F) {
	f.Add([]byte("jets:\n  pt_btagJes: {mean: 1.2e5, std: 9.0e4}\n  eta_btagJes: {mean: 0.0, std: 1.2}\ntracks:\n  d0: {mean: 0.01, std: 0.9}\n"))
	f.Add([]byte("jets:\n  pt: {mean: 1}\n"))
	f.Add([]byte("jets: [1, 2]\n"))
	f.Add([]byte("{"))
	f.Add([]byte("jets:\n  pt: {mean: .nan, std: .inf}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		in := filepath.Join(dir, "norm.yaml")
		if err := os.WriteFile(in, data, 0o644); err != nil {
			t.Fatal(err)
		}
		nd, err := ReadNormDict(in)
		if err != nil {
			return
		}
		out := filepath.Join(dir, "again.yaml")
		if err := WriteNormDict(out, nd); err != nil {
			t.Fatal(err)
		}
		back, err := ReadNormDict(out)
		if err != nil {
			t.Fatalf("a written norm dict does not read back: %v", err)
		}
		for ds, vars := range nd {
			for v, e := range vars {
				b := back[ds][v]
				if !sameFloat(b.Mean, e.Mean) || !sameFloat(b.Std, e.Std) {
					t.Fatalf("%s.%s: %+v read back as %+v", ds, v, e, b)
				}
			}
		}
	})
}

// FuzzReadClassDict is FuzzReadNormDict for class dictionaries.
func FuzzReadClassDict(f *testing.F) {
	f.Add([]byte("jets:\n  flavour_label: [0.8, 1.2, 0.5, 4.9]\n"))
	f.Add([]byte("jets:\n  flavour_label: [-1]\n"))
	f.Add([]byte("jets: 3\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		in := filepath.Join(dir, "class.yaml")
		if err := os.WriteFile(in, data, 0o644); err != nil {
			t.Fatal(err)
		}
		cd, err := ReadClassDict(in)
		if err != nil {
			return
		}
		out := filepath.Join(dir, "again.yaml")
		if err := WriteClassDict(out, cd); err != nil {
			t.Fatal(err)
		}
		back, err := ReadClassDict(out)
		if err != nil {
			t.Fatalf("a written class dict does not read back: %v", err)
		}
		for ds, labels := range cd {
			for l, ws := range labels {
				if len(back[ds][l]) != len(ws) {
					t.Fatalf("%s.%s: %v read back as %v", ds, l, ws, back[ds][l])
				}
				for i := range ws {
					if back[ds][l][i] != ws[i] {
						t.Fatalf("%s.%s: %v read back as %v", ds, l, ws, back[ds][l])
					}
				}
			}
		}
	})
}

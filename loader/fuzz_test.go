package loader

import (
	"math"
	"testing"

	"github.com/salt-ort/salt-ort/internal/testkit/fuzztest"
)

func sameFloat(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }

// maxFuzzDict bounds the dictionary text the dictionary fuzz targets try:
// a norm dict of about 50 variables, more than the mutator needs to reach
// every branch of the readers, while keeping each input, and its
// minimisation, cheap. Larger texts are the job of TestDictLimits.
const maxFuzzDict = 2 << 10

// FuzzReadNormDict checks that no YAML makes the norm-dict reader panic and
// that a dictionary it accepts survives EncodeNormDict and ParseNormDict
// (what WriteNormDict and ReadNormDict do, without the files). Run it with
//
//	go test -run '^$' -fuzz '^FuzzReadNormDict$' -fuzztime 1m ./loader
func FuzzReadNormDict(f *testing.F) {
	fuzztest.BoundMinimization(f)
	f.Add([]byte("jets:\n  pt_btagJes: {mean: 1.2e5, std: 9.0e4}\n  eta_btagJes: {mean: 0.0, std: 1.2}\ntracks:\n  d0: {mean: 0.01, std: 0.9}\n"))
	f.Add([]byte("jets:\n  pt_btagJes:\n    mean: 1.2e5\n    std: 9.0e4\n"))
	f.Add([]byte("jets:\n  pt: {mean: 1}\n"))
	f.Add([]byte("jets: [1, 2]\n"))
	f.Add([]byte("{"))
	f.Add([]byte("jets:\n  pt: {mean: .nan, std: .inf}\n"))
	f.Add([]byte("jets:\n  pt: &e {mean: 1, std: 2}\n  eta: *e\ntracks:\n  <<: {d0: *e}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzDict {
			return
		}
		nd, err := ParseNormDict("norm.yaml", data)
		if err != nil {
			return
		}
		text, err := EncodeNormDict(nd)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseNormDict("again.yaml", text)
		if err != nil {
			t.Fatalf("a written norm dict does not read back: %v\n%s", err, text)
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
	fuzztest.BoundMinimization(f)
	f.Add([]byte("jets:\n  flavour_label: [0.8, 1.2, 0.5, 4.9]\n"))
	f.Add([]byte("jets:\n  flavour_label:\n  - 0.8\n  - 1.2\ntracks:\n  ftagTruthOriginLabel: [1.9, 7.8, 0.17]\n"))
	f.Add([]byte("jets:\n  flavour_label: [-1]\n"))
	f.Add([]byte("jets: 3\n"))
	f.Add([]byte("jets:\n  a: &w [1, 2]\n  b: *w\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzDict {
			return
		}
		cd, err := ParseClassDict("class.yaml", data)
		if err != nil {
			return
		}
		text, err := EncodeClassDict(cd)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseClassDict("again.yaml", text)
		if err != nil {
			t.Fatalf("a written class dict does not read back: %v\n%s", err, text)
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

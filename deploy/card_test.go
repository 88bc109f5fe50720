package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/evaluate"
	"github.com/salt-ort/salt-ort/gendata"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/internal/testkit/fixture"
	"github.com/salt-ort/salt-ort/loader"
)

// cardPtCut is the jet selection of the card test's run, and cardLimit its
// num_train (fewer than the jets that pass).
const (
	cardPtCut = 100000.0
	cardLimit = 300
	cardFC    = 0.07 // eval's f_c, not the default, so the card must read it
)

// readColumns reads fields of every row of a file's jets as float64,
// without the loader's Dataset (its selections, limits and labels), for
// an independent count.
func readColumns(t *testing.T, path string, fields ...string) [][]float64 {
	t.Helper()
	var fs []loader.Field
	for _, f := range fields {
		fs = append(fs, loader.Field{Name: f, Type: loader.Float64})
	}
	layout, err := loader.NewRowLayout(fs...)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := loader.OpenFieldTable(path, "jets")
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	idx := make([]int, len(fields))
	for i := range idx {
		idx[i] = i
	}
	r, err := tab.NewFieldReader(layout, idx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, tab.Rows()*layout.Size)
	if err := r.Read(0, tab.Rows(), buf); err != nil {
		t.Fatal(err)
	}
	cols := make([][]float64, len(fields))
	for j := range tab.Rows() {
		for i := range fields {
			cols[i] = append(cols[i], layout.Get(buf[j*layout.Size:], i))
		}
	}
	return cols
}

// sha256File hashes a whole file in memory (the export streams it).
func sha256File(t *testing.T, path string) string {
	t.Helper()
	sum := sha256.Sum256(readBytes(t, path))
	return hex.EncodeToString(sum[:])
}

// numpyQuantile is numpy.quantile's linear interpolation, written out
// again for the test.
func numpyQuantile(v []float64, q float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	h := (float64(len(s)) - 1) * q
	lo := math.Floor(h)
	if int(lo)+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[int(lo)] + (h-lo)*(s[int(lo)+1]-s[int(lo)])
}

// TestModelCard exports a run trained with a jet selection and num_train,
// evaluated by `salt-ort eval` with a non-default f_c, and checks each
// section of the JSON card against a computation of its own: the files'
// SHA-256, the jets that pass the selection counted per class, their pt
// and |eta| range, the AUC's Hanley–McNeil error, D_b's f_c, the units,
// the validation command; and that the Markdown card shows them.
func TestModelCard(t *testing.T) {
	data := datasets.Get(t, gendata.Config{Seed: 4, Train: 800, Val: 300, Test: 100})
	dir := t.TempDir()
	cfg := filepath.Join(dir, "card.toml")
	// The training file is given as a pattern (Salt's wildcards): the
	// metadata and the card name the file it matched.
	toml := strings.Replace(fixture.Tiny(data, fixture.Options{Name: "Card", NumTrain: cardLimit, Epochs: 1, Seed: 3}), "/train.h5", "/trai?.h5", 1) +
		"\n[data.selections]\njets = [\"pt_btagJes < 100000\"]\n"
	if err := os.WriteFile(cfg, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "run")
	trainRun(t, cfg, run)
	rep, err := evaluate.Run(context.Background(), evaluate.Options{RunDir: run, FC: cardFC, NoPlots: true, Runtime: graphtest.OpenRuntime(t)})
	if err != nil {
		t.Fatal(err)
	}
	summary := rep.Files[0].Summary
	ex, err := Export(context.Background(), exportOpts(t, run, filepath.Join(dir, "out", "card.onnx")))
	if err != nil {
		t.Fatal(err)
	}
	var card Card
	if err := json.Unmarshal(readBytes(t, ex.CardJSON), &card); err != nil {
		t.Fatal(err)
	}
	md := string(readBytes(t, ex.Card))

	// The jets training read, found without the loader's Dataset.
	trainFile := filepath.Join(data, "train.h5")
	cols := readColumns(t, trainFile, "pt_btagJes", "eta_btagJes", "flavour_label")
	var pts, etas []float64
	counts := make([]int64, 4)
	for j := range cols[0] {
		if !(cols[0][j] < cardPtCut) || len(pts) == cardLimit {
			continue
		}
		pts, etas = append(pts, cols[0][j]), append(etas, math.Abs(cols[1][j]))
		counts[int(cols[2][j])]++
	}

	checks := []struct {
		section string
		check   func() string // "" when the section is right
		md      []string      // what the Markdown card must show
	}{
		{"intended use: selections", func() string {
			if got := card.IntendedUse.Selections["jets"]; !slices.Equal(got, []string{"pt_btagJes < 100000"}) {
				return "selections " + strings.Join(got, ", ")
			}
			return ""
		}, []string{"## Intended use and domain", "selections on `jets`: `pt_btagJes < 100000`", "classes b, c, u, tau"}},
		{"intended use: kinematic range", func() string {
			k := card.IntendedUse.Kinematics
			if card.IntendedUse.Jets != len(pts) || len(k) != 2 || k[0].Field != "pt_btagJes" || k[1].Variable != "|eta|" || k[0].Unit != "MeV" {
				return "jets or variables differ"
			}
			for i, v := range [][]float64{pts, etas} {
				want := []float64{numpyQuantile(v, 0.01), numpyQuantile(v, 0.5), numpyQuantile(v, 0.99)}
				if k[i].Min != slices.Min(v) || k[i].Max != slices.Max(v) || !slices.EqualFunc(k[i].Quantiles, want, func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Abs(b) }) {
					return k[i].Variable + " range differs"
				}
			}
			return ""
		}, []string{"| pt | `pt_btagJes` | MeV |", "| \\|eta\\| | `eta_btagJes` | 1 |"}},
		{"inputs: units and normalisation", func() string {
			units := map[string]string{}
			for _, in := range card.Inputs {
				for _, v := range in.Variables {
					units[v.Name] = v.Unit
					if v.Std <= 0 {
						return v.Name + ": no std"
					}
				}
			}
			if units["d0"] != "mm" || units["IP3D_signed_d0_significance"] != "1" || units["pt_btagJes"] != "MeV" || units["numberOfPixelHits"] != "1" {
				return "units " + units["d0"] + " " + units["IP3D_signed_d0_significance"]
			}
			return ""
		}, []string{"| `d0` | mm |", "(x − mean)/std"}},
		{"outputs: D_b with eval's f_c", func() string {
			d := card.Discriminants
			if len(d) != 2 || d[0].Name != "D_b" || d[0].Fraction == nil || *d[0].Fraction != cardFC || d[0].Formula != "ln(Card_pb / (f_c·Card_pc + (1 − f_c)·Card_pu))" || d[1].Name != "D_c" {
				return "discriminants"
			}
			return ""
		}, []string{"D_b = ln(Card_pb / (f_c·Card_pc + (1 − f_c)·Card_pu)), with f_c = 0.07"}},
		{"provenance: hashes and counts", func() string {
			if len(ex.Metadata.TrainingData) != 1 || ex.Metadata.TrainingData[0].SHA256 != sha256File(t, trainFile) {
				return "the metadata's training file hashes"
			}
			if len(card.Data) != 2 || card.Data[0].Files[0].SHA256 != sha256File(t, trainFile) || card.Data[1].Files[0].SHA256 != sha256File(t, filepath.Join(data, "val.h5")) {
				return "file hashes"
			}
			tr := card.Data[0]
			if tr.FileJets != len(cols[0]) || tr.Jets != len(pts) || tr.Limit != cardLimit || !slices.Equal(tr.Counts, counts) || !slices.Equal(tr.Classes, []string{"b", "c", "u", "tau"}) {
				return "training jets or counts"
			}
			return ""
		}, []string{"## Training data provenance", sha256File(t, trainFile), "(limit 300)"}},
		{"performance with uncertainties", func() string {
			if len(card.Performance) != 1 || card.Performance[0].FC != cardFC || card.Performance[0].SHA256 != sha256File(t, filepath.Join(data, "test.h5")) {
				return "performance files"
			}
			f := summary.Flavour
			for i, b := range card.Performance[0].Backgrounds {
				a, n1, n2 := float64(b.AUC), float64(f.SignalJets), float64(b.Jets)
				q1, q2 := a/(2-a), 2*a*a/(1+a)
				se := math.Sqrt((a*(1-a) + (n1-1)*(q1-a*a) + (n2-1)*(q2-a*a)) / (n1 * n2))
				if b.AUC != f.Backgrounds[i].AUC || math.Abs(float64(b.AUCUncertainty)-se) > 1e-12 || len(b.WorkingPoints) != 4 || b.WorkingPoints[0].Uncertainty != f.Backgrounds[i].WorkingPoints[0].Uncertainty {
					return "background " + b.Name
				}
			}
			return ""
		}, []string{"## Performance on the test set", "Hanley–McNeil", "binomial", "f_c = 0.07"}},
		{"validation instructions", func() string {
			v := card.Validation
			if v.Command != "salt-ort validate card.onnx" || v.CppCommand != "salt-ort validate card.onnx --cpp" || v.Vectors.SHA256 != sha256File(t, ex.Vectors) {
				return v.Command
			}
			return ""
		}, []string{"## Validation", "salt-ort validate card.onnx\n"}},
		{"model hash", func() string {
			if card.SHA256 != sha256File(t, ex.Model) || card.Format != CardFormat {
				return card.SHA256
			}
			return ""
		}, nil},
	}
	for _, c := range checks {
		if msg := c.check(); msg != "" {
			t.Errorf("%s: %s\n%s", c.section, msg, readBytes(t, ex.CardJSON))
		}
		for _, s := range c.md {
			if !strings.Contains(md, s) {
				t.Errorf("%s: the Markdown card lacks %q:\n%s", c.section, s, md)
			}
		}
	}
}

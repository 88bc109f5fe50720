package evaluate

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// near reports whether a and b agree to 1e-9 (both +Inf or both NaN count
// as equal).
func near(a, b float64) bool {
	if math.IsInf(a, 1) || math.IsInf(b, 1) || math.IsNaN(a) || math.IsNaN(b) {
		return math.IsInf(a, 1) && math.IsInf(b, 1) || math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= 1e-9*max(1, math.Abs(b))
}

// wantWP is a hand-computed working point of one background.
type wantWP struct {
	eff, cut, sigEff, bkgEff, rej, unc float64
}

// TestFlavourPerformanceHandComputed checks cuts, efficiencies,
// rejections with their binomial uncertainties and AUCs against values
// worked out by hand with puma's conventions: the cut is the weighted
// (1−eff) percentile of the b scores (c_i = i/(n−1) for n equal weights,
// linear interpolation), a jet is tagged when D_b ≥ cut, the rejection is
// 1/eff_bkg with uncertainty rej²·sqrt(eff(1−eff)/N).
func TestFlavourPerformanceHandComputed(t *testing.T) {
	classes := []string{"b", "c", "u"}
	const b, c, u = 0, 1, 2
	type bkgWant struct {
		name string
		jets int
		auc  float64 // NaN: undefined
		wps  []wantWP
	}
	cases := []struct {
		name   string
		scores []float64
		labels []int32
		effs   []float64
		sig    int
		want   []bkgWant
	}{{
		// b: 1..5 (c_i = 0, .25, .5, .75, 1). eff 0.6 → q = 0.4 → 2 + 0.15/0.25 = 2.6:
		// b ≥ 2.6: 3 of 5; light ≥ 2.6: 3, 4.5 → 2/5, rej 2.5 ± 6.25·sqrt(.4·.6/5).
		// eff 0.8 → q = 0.2 → 1 + 0.2/0.25 = 1.8: light 2.5, 3, 4.5 → 3/5.
		// AUC: light below b = 1 + 2 + (3 + ½ tie) + 4 + 5 = 15.5 of 25 pairs.
		// No c jets: counts only.
		name:   "distinct scores, empty c class",
		scores: []float64{1, 2, 3, 4, 5, 0, 1.5, 2.5, 3, 4.5},
		labels: []int32{b, b, b, b, b, u, u, u, u, u},
		effs:   []float64{0.6, 0.8},
		sig:    5,
		want: []bkgWant{
			{"c", 0, math.NaN(), nil},
			{"light", 5, 0.62, []wantWP{
				{0.6, 2.6, 0.6, 0.4, 2.5, 6.25 * math.Sqrt(0.4*0.6/5)},
				{0.8, 1.8, 0.8, 0.6, 1 / 0.6, (1 / 0.36) * math.Sqrt(0.6*0.4/5)},
			}},
		},
	}, {
		// All b scores tie at 2: every cut is 2 and keeps all b jets; light
		// 2, 2, 3 pass (≥), 3 of 4; c: 2 passes, 1 of 2. AUC b vs light: per b
		// jet 1 (beats 1) + ½ + ½ (ties) = 2 of 4; vs c: ½ + 1 = 1.5 of 2.
		name:   "ties",
		scores: []float64{2, 2, 2, 2, 1, 2, 2, 3, 2, 0},
		labels: []int32{b, b, b, b, u, u, u, u, c, c},
		effs:   []float64{0.7},
		sig:    4,
		want: []bkgWant{
			{"c", 2, 0.75, []wantWP{{0.7, 2, 1, 0.5, 2, 4 * math.Sqrt(0.5*0.5/2)}}},
			{"light", 4, 0.5, []wantWP{{0.7, 2, 1, 0.75, 4.0 / 3, (16.0 / 9) * math.Sqrt(0.75*0.25/4)}}},
		},
	}, {
		// b: 10, 11, 12 (c_i = 0, .5, 1); eff 0.6 → q 0.4 → 10.8, 2 of 3 b
		// pass; no light or c jet passes: infinite rejection. A label of -1
		// (unknown flavour) is skipped.
		name:   "no background passes, unknown label",
		scores: []float64{10, 11, 12, 0, 1, 5, 99},
		labels: []int32{b, b, b, u, u, c, -1},
		effs:   []float64{0.6},
		sig:    3,
		want: []bkgWant{
			{"c", 1, 1, []wantWP{{0.6, 10.8, 2.0 / 3, 0, math.Inf(1), math.Inf(1)}}},
			{"light", 2, 1, []wantWP{{0.6, 10.8, 2.0 / 3, 0, math.Inf(1), math.Inf(1)}}},
		},
	}, {
		name:   "no b jets",
		scores: []float64{1, 2, 3},
		labels: []int32{u, c, u},
		sig:    0,
		want:   []bkgWant{{"c", 1, math.NaN(), nil}, {"light", 2, math.NaN(), nil}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := FlavourPerformance("jets", classes, tc.scores, tc.labels, 0.2, tc.effs)
			if err != nil {
				t.Fatal(err)
			}
			if f.SignalJets != tc.sig || f.Signal != "b" {
				t.Errorf("signal %s with %d jets, want b with %d", f.Signal, f.SignalJets, tc.sig)
			}
			if len(f.Backgrounds) != len(tc.want) {
				t.Fatalf("%d backgrounds, want %d", len(f.Backgrounds), len(tc.want))
			}
			for i, w := range tc.want {
				g := f.Backgrounds[i]
				if g.Name != w.name || g.Jets != w.jets || !near(float64(g.AUC), w.auc) {
					t.Errorf("background %d: %s, %d jets, AUC %v; want %s, %d, %v", i, g.Name, g.Jets, g.AUC, w.name, w.jets, w.auc)
				}
				if len(g.WorkingPoints) != len(w.wps) {
					t.Fatalf("%s: %d working points, want %d", w.name, len(g.WorkingPoints), len(w.wps))
				}
				for k, ww := range w.wps {
					gw := g.WorkingPoints[k]
					got := []float64{gw.Efficiency, float64(gw.Cut), gw.SignalEfficiency, gw.BackgroundEfficiency, float64(gw.Rejection), float64(gw.Uncertainty)}
					want := []float64{ww.eff, ww.cut, ww.sigEff, ww.bkgEff, ww.rej, ww.unc}
					for q := range got {
						if !near(got[q], want[q]) {
							t.Errorf("%s at %g: got (eff, cut, sig eff, bkg eff, rej, unc) = %v, want %v", w.name, ww.eff, got, want)
							break
						}
					}
				}
			}
		})
	}
}

// TestDiscriminantFromProbabilities checks D_b = ln(p_b/(f_c·p_c +
// (1−f_c)·p_u)) on class probabilities in the task's class order, also
// without a c class, and the working points default to 60/70/77/85 %.
func TestDiscriminantFromProbabilities(t *testing.T) {
	d, err := Discriminant([]string{"u", "b", "c", "tau"}, []float32{0.25, 0.5, 0.25, 0, 0.5, 0.25, 0.125, 0.125}, 0.2)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{math.Log(0.5 / (0.2*0.25 + 0.8*0.25)), math.Log(0.25 / (0.2*0.125 + 0.8*0.5))}
	for i := range want {
		if math.Abs(d[i]-want[i]) > 1e-6 {
			t.Errorf("D_b[%d] = %v, want %v", i, d[i], want[i])
		}
	}
	d, err = Discriminant([]string{"bjets", "light"}, []float32{0.75, 0.25}, 0.2)
	if err != nil || math.Abs(d[0]-math.Log(0.75/(0.8*0.25))) > 1e-6 {
		t.Errorf("without c: %v, %v", d, err)
	}
	if _, err := Discriminant([]string{"b", "c"}, []float32{1, 0}, 0.2); err == nil || !strings.Contains(err.Error(), "light") {
		t.Errorf("no light class: error %v", err)
	}
	f, err := FlavourPerformance("t", []string{"b", "u"}, []float64{1, 2, 3, 0}, []int32{0, 0, 0, 1}, 0.2, nil)
	if err != nil {
		t.Fatal(err)
	}
	var effs []float64
	for _, wp := range f.Backgrounds[0].WorkingPoints {
		effs = append(effs, wp.Efficiency)
	}
	if len(effs) != 4 || effs[0] != 0.6 || effs[1] != 0.7 || effs[2] != 0.77 || effs[3] != 0.85 {
		t.Errorf("default working points %v", effs)
	}
}

// TestFloatJSON checks that non-finite numbers become null and read back
// as NaN.
func TestFloatJSON(t *testing.T) {
	for _, tc := range []struct {
		v    Float
		want string
	}{{1.5, "1.5"}, {Float(math.Inf(1)), "null"}, {Float(math.NaN()), "null"}, {0, "0"}} {
		b, err := json.Marshal(tc.v)
		if err != nil || string(b) != tc.want {
			t.Errorf("Marshal(%v) = %s, %v; want %s", tc.v, b, err, tc.want)
		}
		var back Float
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if !near(float64(back), float64(tc.v)) && !(math.IsInf(float64(tc.v), 0) && math.IsNaN(float64(back))) {
			t.Errorf("round trip of %v gave %v", tc.v, back)
		}
	}
}

// TestWriteTable checks the printed table of a summary with an empty
// class and an infinite rejection.
func TestWriteTable(t *testing.T) {
	f, err := FlavourPerformance("jets", []string{"b", "c", "u"}, []float64{10, 11, 12, 0, 1}, []int32{0, 0, 0, 2, 2}, 0.2, []float64{0.6, 0.77})
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	s := &Summary{File: "x.h5", Jets: 5, Model: "M", Checkpoint: "ck", Flavour: f,
		Constituents: []ClassAccuracy{{Task: "origin", Classes: []string{"a", "b"}, Count: []int64{2, 0}, Accuracy: []Float{0.5, Float(math.NaN())}, Overall: 0.5}},
		Vertexing:    []Vertexing{{Task: "vtx", TruePositive: 3, FalsePositive: 1, FalseNegative: 1, Efficiency: 0.75, Purity: 0.75}},
		Regression:   []Regression{{Task: "r", Target: "eta", Jets: 5, Bias: 0.1, Resolution: 0.2, RelativeBias: 0, RelativeResolution: 0.3}}}
	if err := WriteTable(&sb, s); err != nil {
		t.Fatal(err)
	}
	out := sb.String()
	t.Log("\n" + out)
	for _, want := range []string{"b-eff", "c-rej", "light-rej", "60%", "77%", "10.800", "– (no jets)", "inf (no jet passes)", "AUC", "origin: accuracy 0.5 over 2 tracks", "vtx: pair efficiency 0.75, purity 0.75", "r eta: bias 0.1, resolution 0.2"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q", want)
		}
	}
}

// TestSummaryJSONNonFinite checks that a summary of a model whose losses
// or D_b are not finite (a true class given probability 0, a diverged
// or corrupted model) writes, with null where the numbers are not finite:
// encoding/json refuses NaN and ±Inf, and eval failed with "json:
// unsupported value: +Inf".
func TestSummaryJSONNonFinite(t *testing.T) {
	inf := math.Inf(1)
	cases := []struct {
		name string
		disc []float64 // D_b of b, b, b, light, light
		loss float64
		want []string // in the JSON
	}{
		{"infinite loss", []float64{3, 4, 5, 0, 1}, inf, []string{`"loss":{"jets":null}`}},
		{"NaN loss", []float64{3, 4, 5, 0, 1}, math.NaN(), []string{`"loss":{"jets":null}`}},
		{"b jets with p_b = 0", []float64{-inf, -inf, -inf, 0, 1}, 2.5, []string{`"loss":{"jets":2.5}`, `"cut":null`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := FlavourPerformance("jets", []string{"b", "u"}, c.disc, []int32{0, 0, 0, 1, 1}, 0.2, []float64{0.6})
			if err != nil {
				t.Fatal(err)
			}
			s := &Summary{File: "x.h5", Jets: 5, Model: "M", Checkpoint: "ck", Flavour: f, Loss: map[string]Float{"jets": Float(c.loss)}}
			b, err := json.Marshal(s)
			if err != nil {
				t.Fatalf("json.Marshal: %v", err)
			}
			for _, w := range c.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("%s lacks %s", b, w)
				}
			}
			var back Summary
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("the summary does not read back: %v", err)
			}
		})
	}
}

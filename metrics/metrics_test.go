package metrics

import (
	"math"
	"strings"
	"testing"
)

// approxEqual reports whether a and b agree to a relative 1e-12 (or are both the
// same infinity).
func approxEqual(a, b float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-12*math.Max(math.Abs(a), math.Abs(b))
}

// wantErr checks that err is non-nil and contains want, or is nil when want
// is empty.
func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q, want it to contain %q", err, want)
	}
}

func TestAUC(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name    string
		scores  []float64
		labels  []bool
		weights []float64
		want    float64
		err     string
	}{
		{"perfect", []float64{0.9, 0.1, 0.8, 0.2}, []bool{true, false, true, false}, nil, 1, ""},
		{"inverted", []float64{0.9, 0.1, 0.8, 0.2}, []bool{false, true, false, true}, nil, 0, ""},
		// pairs (sig, bkg): (0.5,0.5) ½, (0.5,0.3) 1, (0.7,0.5) 1, (0.7,0.3) 1 → 3.5/4
		{"ties count half", []float64{0.5, 0.7, 0.5, 0.3}, []bool{true, true, false, false}, nil, 0.875, ""},
		{"all scores equal", []float64{2, 2, 2, 2, 2}, []bool{true, false, false, true, false}, nil, 0.5, ""},
		// sig 0.6 (w 2) beats bkg 0.4 (w 1): 2; ties bkg 0.6 (w 3): ½·6 = 3; sig 0.2 (w 1) wins nothing.
		// (2+3) / (3·4)
		{"weighted", []float64{0.6, 0.2, 0.4, 0.6}, []bool{true, true, false, false}, []float64{2, 1, 1, 3}, 5.0 / 12, ""},
		{"zero weight removes a jet", []float64{0.9, 0.1, 0.95}, []bool{true, false, false}, []float64{1, 1, 0}, 1, ""},
		{"infinite scores", []float64{math.Inf(1), math.Inf(-1), 0}, []bool{true, false, false}, nil, 1, ""},
		// 3 signal × 2 background; sig 3 beats 2; sig 1 loses to 2; sig 2 ties 2 and beats 0 → (2+0... )
		// sig {3,1,2} vs bkg {2,0}: 3>2,3>0 → 2; 1<2,1>0 → 1; 2=2,2>0 → 1.5; total 4.5/6
		{"mann-whitney", []float64{3, 1, 2, 2, 0}, []bool{true, true, true, false, false}, nil, 0.75, ""},
		{"no signal", []float64{1, 2}, []bool{false, false}, nil, 0, "no signal jets"},
		{"no background", []float64{1, 2}, []bool{true, true}, nil, 0, "no background jets"},
		{"signal weighs 0", []float64{1, 2}, []bool{true, false}, []float64{0, 1}, 0, "no signal jets"},
		{"empty", nil, nil, nil, 0, "no signal jets"},
		{"NaN score", []float64{1, 2, nan}, []bool{true, false, true}, nil, 0, "metrics: AUC: scores[2] is NaN"},
		{"NaN weight", []float64{1, 2}, []bool{true, false}, []float64{1, nan}, 0, "metrics: AUC: weights[1] = NaN"},
		{"negative weight", []float64{1, 2}, []bool{true, false}, []float64{-1, 1}, 0, "weights[0] = -1, want a finite weight ≥ 0"},
		{"length mismatch", []float64{1, 2}, []bool{true}, nil, 0, "metrics: AUC: 1 labels for 2 scores"},
		{"weights mismatch", []float64{1, 2}, []bool{true, false}, []float64{1}, 0, "metrics: AUC: 1 weights for 2 scores"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AUC(tt.scores, tt.labels, tt.weights)
			wantErr(t, err, tt.err)
			if err == nil && !approxEqual(got, tt.want) {
				t.Errorf("AUC = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDiscriminant(t *testing.T) {
	const eps = Epsilon
	tests := []struct {
		name       string
		pb, pc, pu []float64
		fc         float64
		want       []float64
		err        string
	}{
		{"fc 0.2", []float64{0.5}, []float64{0.25}, []float64{0.25}, 0.2,
			[]float64{math.Log((0.5 + eps) / (0.2*0.25 + 0.8*0.25 + eps))}, ""},
		{"fc weights c and light", []float64{0.6, 0.1}, []float64{0.3, 0.1}, []float64{0.1, 0.8}, 0.018,
			[]float64{math.Log((0.6 + eps) / (0.018*0.3 + 0.982*0.1 + eps)), math.Log((0.1 + eps) / (0.018*0.1 + 0.982*0.8 + eps))}, ""},
		{"pure b", []float64{1}, []float64{0}, []float64{0}, 0.2, []float64{math.Log((1 + eps) / eps)}, ""},
		{"no b", []float64{0}, []float64{0.5}, []float64{0.5}, 0.5, []float64{math.Log(eps / (0.5 + eps))}, ""},
		{"all zero", []float64{0}, []float64{0}, []float64{0}, 0.1, []float64{0}, ""},
		{"fc 0 ignores c", []float64{0.5}, []float64{0.5}, []float64{0}, 0, []float64{math.Log((0.5 + eps) / eps)}, ""},
		{"fc 1 ignores light", []float64{0.5}, []float64{0}, []float64{0.5}, 1, []float64{math.Log((0.5 + eps) / eps)}, ""},
		{"empty", nil, nil, nil, 0.2, []float64{}, ""},
		{"lengths", []float64{0.5}, []float64{0.5, 0.1}, []float64{0}, 0.2, nil, "lengths differ: 1 pb, 2 pc, 1 pu"},
		{"fc above 1", []float64{0.5}, []float64{0.5}, []float64{0}, 1.5, nil, "fc = 1.5, want it in [0, 1]"},
		{"fc NaN", []float64{0.5}, []float64{0.5}, []float64{0}, math.NaN(), nil, "fc = NaN"},
		{"NaN probability", []float64{0.5, 0.2}, []float64{0.5, math.NaN()}, []float64{0, 0}, 0.2, nil, "metrics: Discriminant: pc[1] = NaN"},
		{"negative probability", []float64{0.5}, []float64{0.5}, []float64{-0.1}, 0.2, nil, "pu[0] = -0.1, want a probability ≥ 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Discriminant(tt.pb, tt.pc, tt.pu, tt.fc)
			wantErr(t, err, tt.err)
			if err != nil {
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Discriminant = %v, want %v", got, tt.want)
			}
			for i := range got {
				if !approxEqual(got[i], tt.want[i]) {
					t.Errorf("D[%d] = %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
	// The guard is the documented 1e-10: a jet with p_b = 1 and nothing else
	// sits at ln(1/ε) ≈ 23.03.
	if d, _ := Discriminant([]float64{1}, []float64{0}, []float64{0}, 0.2); math.Abs(d[0]-23.025850929940457) > 1e-9 {
		t.Errorf("D(pb=1) = %v, want ln(1e10)", d[0])
	}
}

func TestCutForEfficiency(t *testing.T) {
	ramp := []float64{5, 1, 4, 2, 3} // sorted 1..5: c = 0, ¼, ½, ¾, 1
	tests := []struct {
		name    string
		scores  []float64
		weights []float64
		eff     float64
		want    float64
		err     string
	}{
		{"median", ramp, nil, 0.5, 3, ""},
		// q = 1−0.7 = 0.3 lies between c=¼ (score 2) and c=½ (score 3): 2 + (0.3−0.25)/0.25
		{"interpolated", ramp, nil, 0.7, 2 + (1-0.7-0.25)/0.25, ""},
		{"node", ramp, nil, 0.75, 2, ""},
		{"keep all", ramp, nil, 1, 1, ""},
		{"keep none", ramp, nil, 0, 5, ""},
		// weights 1,2,1 on scores 1,2,3: cumsum−w/2 = ½, 2, 3½ → c = 0, ½, 1
		{"weighted", []float64{3, 1, 2}, []float64{1, 1, 2}, 0.5, 2, ""},
		{"weighted interpolated", []float64{1, 2, 3}, []float64{1, 2, 1}, 0.75, 1.5, ""},
		// a zero weight still places its score in the interpolation, as in puma:
		// weights 1,0,1 → cumsum−w/2 = ½, 1, 1½ → c = 0, ½, 1
		{"zero weight node", []float64{1, 2, 10}, []float64{1, 0, 1}, 0.5, 2, ""},
		// ties: sorted 1,2,3,3 → c = 0, ⅓, ⅔, 1; q = ½ → 2 + (½−⅓)·3
		{"ties", []float64{3, 1, 3, 2}, nil, 0.5, 2 + (0.5-1.0/3)*3, ""},
		{"all equal", []float64{4, 4, 4}, nil, 0.77, 4, ""},
		{"single jet", []float64{7}, nil, 0.6, 7, ""},
		{"infinite score", []float64{math.Inf(-1), 1, 2}, nil, 0.9, math.Inf(-1), ""},
		{"efficiency above 1", ramp, nil, 1.01, 0, "efficiency 1.01, want it in [0, 1]"},
		{"efficiency NaN", ramp, nil, math.NaN(), 0, "efficiency NaN"},
		{"no jets", nil, nil, 0.7, 0, "metrics: CutForEfficiency: no jets in sigScores"},
		{"zero weights", []float64{1, 2}, []float64{0, 0}, 0.7, 0, "no jets in sigScores (or all weights are 0)"},
		{"NaN score", []float64{1, math.NaN()}, nil, 0.7, 0, "metrics: CutForEfficiency: sigScores[1] is NaN"},
		{"weights mismatch", []float64{1, 2}, []float64{1}, 0.7, 0, "1 sigWeights for 2 scores"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CutForEfficiency(tt.scores, tt.weights, tt.eff)
			wantErr(t, err, tt.err)
			if err == nil && !approxEqual(got, tt.want) {
				t.Errorf("CutForEfficiency = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRejection(t *testing.T) {
	tests := []struct {
		name     string
		scores   []float64
		weights  []float64
		cut      float64
		rej, unc float64
		err      string
	}{
		// eff ½ of N=4: rej 2, unc = 2²·sqrt(½·½/4) = 4·¼ = 1
		{"half", []float64{0.1, 0.2, 0.3, 0.4}, nil, 0.25, 2, 1, ""},
		// a score equal to the cut is selected (puma's histogram convention)
		{"cut on a score", []float64{1, 2, 3, 4}, nil, 3, 2, 1, ""},
		// eff ¼ of N=8: rej 4, unc = 16·sqrt(¼·¾/8)
		{"quarter", []float64{1, 2, 3, 4, 5, 6, 7, 8}, nil, 6.5, 4, 16 * math.Sqrt(0.25*0.75/8), ""},
		// weights 1,1,2: eff = 2/4, N_eff = 4²/(1+1+4) = 8/3, unc = 4·sqrt(¼·3/8)
		{"weighted", []float64{1, 2, 3}, []float64{1, 1, 2}, 2.5, 2, 4 * math.Sqrt(0.25*3/8), ""},
		{"uniform weights = unweighted", []float64{0.1, 0.2, 0.3, 0.4}, []float64{3, 3, 3, 3}, 0.25, 2, 1, ""},
		{"nothing passes", []float64{1, 2}, nil, 10, math.Inf(1), math.Inf(1), ""},
		{"everything passes", []float64{1, 2}, nil, -10, 1, 0, ""},
		{"all equal below", []float64{2, 2, 2}, nil, 2.5, math.Inf(1), math.Inf(1), ""},
		{"all equal at cut", []float64{2, 2, 2}, nil, 2, 1, 0, ""},
		{"no background", nil, nil, 0.5, 0, 0, "metrics: Rejection: no jets in bkgScores"},
		{"zero weights", []float64{1}, []float64{0}, 0.5, 0, 0, "no jets in bkgScores (or all weights are 0)"},
		{"NaN score", []float64{1, 2, 3, math.NaN()}, nil, 0.5, 0, 0, "metrics: Rejection: bkgScores[3] is NaN"},
		{"NaN cut", []float64{1}, nil, math.NaN(), 0, 0, "metrics: Rejection: cut is NaN"},
		{"infinite weight", []float64{1}, []float64{math.Inf(1)}, 0.5, 0, 0, "bkgWeights[0] = +Inf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rej, unc, err := Rejection(tt.scores, tt.weights, tt.cut)
			wantErr(t, err, tt.err)
			if err == nil && (!approxEqual(rej, tt.rej) || !approxEqual(unc, tt.unc)) {
				t.Errorf("Rejection = %v ± %v, want %v ± %v", rej, unc, tt.rej, tt.unc)
			}
		})
	}
}

func TestEfficiency(t *testing.T) {
	eff, unc, err := Efficiency([]float64{1, 2, 3, 4, 5}, nil, 2)
	if err != nil || !approxEqual(eff, 0.8) || !approxEqual(unc, math.Sqrt(0.8*0.2/5)) {
		t.Errorf("Efficiency = %v ± %v, %v; want 0.8 ± %v", eff, unc, err, math.Sqrt(0.8*0.2/5))
	}
	if _, _, err := Efficiency(nil, nil, 0); err == nil || !strings.Contains(err.Error(), "metrics: Efficiency: no jets") {
		t.Errorf("Efficiency(no jets) error = %v", err)
	}
}

func TestRejectionsAt(t *testing.T) {
	// 101 signal jets scored 0..100: c_i = i/100, so the cut for efficiency
	// e is 100·(1−e). 20 background jets at 2.5, 7.5, …, 97.5.
	sig := make([]float64, 101)
	for i := range sig {
		sig[i] = float64(i)
	}
	bkg := make([]float64, 20)
	for i := range bkg {
		bkg[i] = 2.5 + 5*float64(i)
	}
	wps, err := RejectionsAt(sig, nil, bkg, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		eff, cut, sigEff, bkgEff float64
	}{
		{0.60, 40, 61.0 / 101, 12.0 / 20}, // 1−0.6 is 0.4 exactly: cut 40, signal 40…100, background 42.5…97.5
		{0.70, 30, 70.0 / 101, 14.0 / 20}, // 1−0.7 rounds up: cut just above 30, signal 31…100
		{0.77, 23, 78.0 / 101, 15.0 / 20}, // 1−0.77 rounds down: cut just below 23, signal 23…100
		{0.85, 15, 85.0 / 101, 17.0 / 20}, // 1−0.85 rounds up: cut just above 15, signal 16…100
	}
	if len(wps) != len(want) {
		t.Fatalf("%d working points, want %d", len(wps), len(want))
	}
	for i, w := range want {
		wp := wps[i]
		rej := 1 / w.bkgEff
		unc := rej * rej * math.Sqrt(w.bkgEff*(1-w.bkgEff)/20)
		if wp.Efficiency != w.eff || math.Abs(wp.Cut-w.cut) > 1e-9 || !approxEqual(wp.SignalEfficiency, w.sigEff) ||
			!approxEqual(wp.Rejection, rej) || !approxEqual(wp.Uncertainty, unc) {
			t.Errorf("working point %d = %+v, want eff %v cut %v signal eff %v rejection %v ± %v",
				i, wp, w.eff, w.cut, w.sigEff, rej, unc)
		}
		// The convenience must agree with the two building blocks.
		cut, _ := CutForEfficiency(sig, nil, w.eff)
		r, u, _ := Rejection(bkg, nil, cut)
		if cut != wp.Cut || r != wp.Rejection || u != wp.Uncertainty {
			t.Errorf("working point %d disagrees with CutForEfficiency and Rejection", i)
		}
	}
	if wps, err := RejectionsAt(sig, nil, bkg, nil, 0.5); err != nil || len(wps) != 1 || wps[0].Cut != 50 {
		t.Errorf("RejectionsAt(0.5) = %+v, %v", wps, err)
	}
	errTests := []struct {
		name     string
		sig, bkg []float64
		effs     []float64
		want     string
	}{
		{"no signal", nil, bkg, nil, "metrics: RejectionsAt: no jets in sigScores"},
		{"no background", sig, nil, nil, "metrics: RejectionsAt: no jets in bkgScores"},
		{"NaN background", sig, []float64{1, math.NaN()}, nil, "metrics: RejectionsAt: bkgScores[1] is NaN"},
		{"bad efficiency", sig, bkg, []float64{0.7, -0.1}, "metrics: RejectionsAt: efficiency -0.1"},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := RejectionsAt(tt.sig, nil, tt.bkg, nil, tt.effs...)
			wantErr(t, err, tt.want)
		})
	}
	effs := StandardEfficiencies()
	effs[0] = 0
	if StandardEfficiencies()[0] != 0.60 {
		t.Error("StandardEfficiencies shares its slice")
	}
}

func TestAccuracy(t *testing.T) {
	// rows: argmax 2 (label 2 ✓), argmax 0 (label 1 ✗), tie 0/1 → 0 (label 0 ✓), argmax 1 (label 1 ✓, masked out)
	probs := []float64{
		0.1, 0.2, 0.7,
		0.5, 0.4, 0.1,
		0.4, 0.4, 0.2,
		0.1, 0.8, 0.1,
	}
	labels := []int{2, 1, 0, 1}
	tests := []struct {
		name     string
		probs    []float64
		nClass   int
		labels   []int
		mask     []bool
		acc      float64
		perClass []float64 // NaN for an absent class
		err      string
	}{
		{"no mask", probs, 3, labels, nil, 0.75, []float64{1, 0.5, 1}, ""},
		{"masked", probs, 3, labels, []bool{true, true, true, false}, 2.0 / 3, []float64{1, 0, 1}, ""},
		{"absent class", probs[:6], 3, []int{2, 2}, nil, 0.5, []float64{math.NaN(), math.NaN(), 0.5}, ""},
		{"masked label ignored", probs, 3, []int{2, 1, 0, -1}, []bool{true, true, true, false}, 2.0 / 3, []float64{1, 0, 1}, ""},
		{"label out of range", probs, 3, []int{2, 3, 0, 1}, nil, 0, nil, "labels[1] = 3, want a class in [0, 3)"},
		{"NaN probability", []float64{0.1, math.NaN()}, 2, []int{0}, nil, 0, nil, "probs[0][1] is NaN"},
		{"length mismatch", probs[:5], 3, []int{0, 1}, nil, 0, nil, "5 probabilities for 2 labels × 3 classes"},
		{"mask mismatch", probs, 3, labels, []bool{true}, 0, nil, "mask of 1 for 4 labels"},
		{"no classes", nil, 0, nil, nil, 0, nil, "0 classes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acc, err := Accuracy(tt.probs, tt.nClass, tt.labels, tt.mask)
			wantErr(t, err, tt.err)
			if err == nil && !approxEqual(acc, tt.acc) {
				t.Errorf("Accuracy = %v, want %v", acc, tt.acc)
			}
			per, err := ClassAccuracy(tt.probs, tt.nClass, tt.labels, tt.mask)
			wantErr(t, err, tt.err)
			for k := range tt.perClass {
				if !(approxEqual(per[k], tt.perClass[k]) || math.IsNaN(per[k]) && math.IsNaN(tt.perClass[k])) {
					t.Errorf("ClassAccuracy = %v, want %v", per, tt.perClass)
					break
				}
			}
		})
	}
	if _, err := Accuracy(probs, 3, labels, []bool{false, false, false, false}); err == nil || !strings.Contains(err.Error(), "no valid samples") {
		t.Errorf("Accuracy with everything masked: %v", err)
	}
}

func TestCountPairs(t *testing.T) {
	const T, F = true, false
	// Tracks 0 and 1 share a vertex, track 2 is alone; the prediction joins
	// 1 and 2 as well (and writes junk below the diagonal).
	truth := []bool{
		T, T, F,
		T, T, F,
		F, F, T,
	}
	pred := []bool{
		T, T, F,
		F, T, T,
		T, T, T,
	}
	tests := []struct {
		name        string
		pred, truth []bool
		n           int
		mask        []bool
		want        PairCounts
		eff, purity float64
		err         string
	}{
		{"all tracks", pred, truth, 3, nil, PairCounts{1, 1, 0}, 1, 0.5, ""},
		{"track 2 masked", pred, truth, 3, []bool{T, T, F}, PairCounts{1, 0, 0}, 1, 1, ""},
		{"missed pair", truth, pred, 3, nil, PairCounts{1, 0, 1}, 0.5, 1, ""},
		{"no pairs", []bool{T}, []bool{T}, 1, nil, PairCounts{}, math.NaN(), math.NaN(), ""},
		{"wrong size", pred[:8], truth, 3, nil, PairCounts{}, 0, 0, "predicted matrix of 8 for 3×3 tracks"},
		{"mask size", pred, truth, 3, []bool{T}, PairCounts{}, 0, 0, "mask of 1 for 3 tracks"},
	}
	same := func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CountPairs(tt.pred, tt.truth, tt.n, tt.mask)
			wantErr(t, err, tt.err)
			if err != nil {
				return
			}
			if got != tt.want || !same(got.Efficiency(), tt.eff) || !same(got.Purity(), tt.purity) {
				t.Errorf("CountPairs = %+v (eff %v, purity %v), want %+v (eff %v, purity %v)",
					got, got.Efficiency(), got.Purity(), tt.want, tt.eff, tt.purity)
			}
		})
	}
	sum := PairCounts{1, 2, 3}.Add(PairCounts{4, 5, 6})
	if sum != (PairCounts{5, 7, 9}) || !approxEqual(sum.Efficiency(), 5.0/14) || !approxEqual(sum.Purity(), 5.0/12) {
		t.Errorf("Add = %+v", sum)
	}
}

package metrics

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestAUCUncertainty(t *testing.T) {
	tests := []struct {
		name            string
		auc, nSig, nBkg float64
		want            float64
		err             string
	}{
		// (0.25 + 1·(1/3−1/4) + 1·(1/3−1/4)) / 4, by hand.
		{"chance, two of each", 0.5, 2, 2, math.Sqrt((0.25 + 2*(1.0/3-0.25)) / 4), ""},
		// One jet of each: the Bernoulli variance A(1−A).
		{"one of each", 0.7, 1, 1, math.Sqrt(0.7 * 0.3), ""},
		{"perfect", 1, 100, 100, 0, ""},
		{"auc above 1", 1.2, 10, 10, 0, "AUC 1.2"},
		{"auc NaN", math.NaN(), 10, 10, 0, "AUC NaN"},
		{"no signal", 0.9, 0, 10, 0, "want at least one of each"},
		{"no background", 0.9, 10, 0.5, 0, "want at least one of each"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AUCUncertainty(tc.auc, tc.nSig, tc.nBkg)
			wantErr(t, err, tc.err)
			if tc.err == "" && !approxEqual(got, tc.want) {
				t.Errorf("AUCUncertainty(%g, %g, %g) = %.15g, want %.15g", tc.auc, tc.nSig, tc.nBkg, got, tc.want)
			}
		})
	}
}

// TestAUCUncertaintyCoverage: the Hanley–McNeil error is the spread of the
// AUC over independent samples. Signal and background scores are drawn
// from exponential distributions (the model the method assumes), the AUC
// measured on each of many samples, and their standard deviation compared
// with the formula's error at the true AUC.
func TestAUCUncertaintyCoverage(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const nSig, nBkg, samples = 150, 300, 2000
	// Background ~ Exp(1), signal ~ Exp(λ) with λ < 1: P(s > b) = 1/(1+λ).
	lambda := 0.25
	trueAUC := 1 / (1 + lambda)
	scores := make([]float64, nSig+nBkg)
	labels := make([]bool, nSig+nBkg)
	var sum, sumSq float64
	for range samples {
		for i := range scores {
			labels[i] = i < nSig
			scores[i] = r.ExpFloat64()
			if labels[i] {
				scores[i] /= lambda
			}
		}
		auc, err := AUC(scores, labels, nil)
		if err != nil {
			t.Fatal(err)
		}
		sum += auc
		sumSq += auc * auc
	}
	mean := sum / samples
	spread := math.Sqrt(sumSq/samples - mean*mean)
	se, err := AUCUncertainty(trueAUC, nSig, nBkg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("AUC %.4f (true %.4f): spread over %d samples %.5f, Hanley–McNeil %.5f", mean, trueAUC, samples, spread, se)
	if math.Abs(spread-se) > 0.05*spread {
		t.Errorf("Hanley–McNeil error %.5f, spread of the AUC %.5f: differ by more than 5%%", se, spread)
	}
}

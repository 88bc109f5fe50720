package metrics_test

import (
	"fmt"

	"github.com/salt-ort/salt-ort/metrics"
)

// Example computes the b-tagging discriminant of a few jets, then the AUC
// and the light-jet rejection at the standard working points.
func Example() {
	// Tagger probabilities (p_b, p_c, p_u) of five b-jets, then five light jets.
	pb := []float64{0.90, 0.70, 0.80, 0.40, 0.95, 0.10, 0.75, 0.30, 0.02, 0.60}
	pc := []float64{0.05, 0.20, 0.10, 0.30, 0.04, 0.20, 0.15, 0.30, 0.08, 0.10}
	pu := []float64{0.05, 0.10, 0.10, 0.30, 0.01, 0.70, 0.10, 0.40, 0.90, 0.30}
	isB := []bool{true, true, true, true, true, false, false, false, false, false}

	db, err := metrics.Discriminant(pb, pc, pu, 0.2)
	if err != nil {
		fmt.Println(err)
		return
	}
	auc, err := metrics.AUC(db, isB, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("AUC %.3f\n", auc)

	wps, err := metrics.RejectionsAt(db[:5], nil, db[5:], nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, wp := range wps {
		fmt.Printf("%.0f%% WP: D_b ≥ %.3f keeps %.0f%% of b-jets, light rejection %.2f ± %.2f\n",
			100*wp.Efficiency, wp.Cut, 100*wp.SignalEfficiency, wp.Rejection, wp.Uncertainty)
	}
	// Output:
	// AUC 0.880
	// 60% WP: D_b ≥ 1.953 keeps 60% of b-jets, light rejection +Inf ± +Inf
	// 70% WP: D_b ≥ 1.827 keeps 60% of b-jets, light rejection 5.00 ± 4.47
	// 77% WP: D_b ≥ 1.646 keeps 80% of b-jets, light rejection 5.00 ± 4.47
	// 85% WP: D_b ≥ 1.173 keeps 80% of b-jets, light rejection 5.00 ± 4.47
}

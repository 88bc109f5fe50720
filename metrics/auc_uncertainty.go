package metrics

import (
	"fmt"
	"math"
)

// AUCUncertainty returns the standard error of an AUC measured on nSig
// signal and nBkg background jets, by the method of Hanley and McNeil
// (Radiology 143 (1982) 29, eq. 1):
//
//	SE² = (A(1−A) + (nSig−1)(Q1−A²) + (nBkg−1)(Q2−A²)) / (nSig·nBkg)
//
// with Q1 = A/(2−A) and Q2 = 2A²/(1+A), the probabilities that two random
// signal jets both score above one random background jet and that one
// signal jet scores above two background jets, in the exponential model
// the method assumes. It needs only the AUC and the counts, so it can be
// given for any summary that records them; for weighted jets pass the
// effective numbers (Σw)²/Σw². It fails for an AUC outside [0, 1] or
// fewer than one jet of either class.
func AUCUncertainty(auc, nSig, nBkg float64) (float64, error) {
	if !(auc >= 0 && auc <= 1) {
		return 0, fmt.Errorf("metrics: AUCUncertainty: AUC %v, want it in [0, 1]", auc)
	}
	if !(nSig >= 1 && nBkg >= 1) || math.IsInf(nSig, 0) || math.IsInf(nBkg, 0) {
		return 0, fmt.Errorf("metrics: AUCUncertainty: %v signal and %v background jets, want at least one of each", nSig, nBkg)
	}
	a2 := auc * auc
	q1 := auc / (2 - auc)
	q2 := 2 * a2 / (1 + auc)
	v := (auc*(1-auc) + (nSig-1)*(q1-a2) + (nBkg-1)*(q2-a2)) / (nSig * nBkg)
	return math.Sqrt(max(v, 0)), nil
}

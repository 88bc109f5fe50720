// Package metrics computes the flavour-tagging performance numbers that
// physicists read, following the conventions of Salt and of puma
// (github.com/umami-hep/puma): the b-tagging discriminant, the cut on it
// that keeps a given signal efficiency, background rejection with its
// binomial uncertainty at the standard working points, the area under the
// ROC curve, multi-class accuracy and track-pair vertexing efficiency and
// purity.
//
// Scores are float64 slices; per-jet weights are optional everywhere (nil
// means every jet weighs 1) and must be finite and non-negative. NaN in any
// input is an error that names the index, never a silently wrong number.
package metrics

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Epsilon is added to the numerator and the denominator of [Discriminant],
// as puma's calc_disc_b does by default, so that probabilities of exactly 0
// give a finite discriminant.
const Epsilon = 1e-10

// checkScores reports the first NaN in scores, naming fn, the argument and
// the index.
func checkScores(fn, arg string, scores []float64) error {
	for i, s := range scores {
		if math.IsNaN(s) {
			return fmt.Errorf("metrics: %s: %s[%d] is NaN", fn, arg, i)
		}
	}
	return nil
}

// checkWeights validates optional weights for n samples and returns their
// sum; nil weights sum to n.
func checkWeights(fn, arg string, weights []float64, n int) (float64, error) {
	if weights == nil {
		return float64(n), nil
	}
	if len(weights) != n {
		return 0, fmt.Errorf("metrics: %s: %d %s for %d scores", fn, len(weights), arg, n)
	}
	sum := 0.0
	for i, w := range weights {
		if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
			return 0, fmt.Errorf("metrics: %s: %s[%d] = %v, want a finite weight ≥ 0", fn, arg, i, w)
		}
		sum += w
	}
	return sum, nil
}

// weight returns weights[i], or 1 for nil weights.
func weight(weights []float64, i int) float64 {
	if weights == nil {
		return 1
	}
	return weights[i]
}

// AUC returns the area under the ROC curve of scores separating signal
// (labels[i] true) from background: the (weighted) probability that a
// random signal jet scores above a random background jet, ties counting one
// half — the Mann–Whitney U statistic divided by the number of pairs, which
// is also what sklearn's roc_auc_score gives. weights may be nil. It fails
// when the lengths differ, a score is NaN, a weight is invalid, or either
// class is empty or has zero total weight.
func AUC(scores []float64, labels []bool, weights []float64) (float64, error) {
	if len(labels) != len(scores) {
		return 0, fmt.Errorf("metrics: AUC: %d labels for %d scores", len(labels), len(scores))
	}
	if err := checkScores("AUC", "scores", scores); err != nil {
		return 0, err
	}
	if _, err := checkWeights("AUC", "weights", weights, len(scores)); err != nil {
		return 0, err
	}
	order := make([]int, len(scores))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(scores[a], scores[b]) })
	// Walk groups of equal scores upwards. Each signal jet in a group beats
	// all background below the group and ties with the group's background.
	var sig, bkg, below, pairs float64
	for start := 0; start < len(order); {
		end := start
		var gs, gb float64
		for ; end < len(order) && scores[order[end]] == scores[order[start]]; end++ {
			i := order[end]
			if labels[i] {
				gs += weight(weights, i)
			} else {
				gb += weight(weights, i)
			}
		}
		pairs += gs * (below + 0.5*gb)
		below += gb
		sig += gs
		bkg += gb
		start = end
	}
	switch {
	case sig == 0:
		return 0, errors.New("metrics: AUC: no signal jets (or all signal weights are 0)")
	case bkg == 0:
		return 0, errors.New("metrics: AUC: no background jets (or all background weights are 0)")
	}
	return pairs / (sig * bkg), nil
}

// Discriminant returns the b-tagging discriminant of each jet,
//
//	D_b = ln((p_b + ε) / (f_c·p_c + (1−f_c)·p_u + ε))
//
// with ε = [Epsilon], exactly as puma's calc_disc_b. pb, pc and pu are the
// per-jet b, c and light probabilities and must have equal lengths, hold no
// NaN and no negative values; fc must lie in [0, 1].
func Discriminant(pb, pc, pu []float64, fc float64) ([]float64, error) {
	if len(pc) != len(pb) || len(pu) != len(pb) {
		return nil, fmt.Errorf("metrics: Discriminant: lengths differ: %d pb, %d pc, %d pu", len(pb), len(pc), len(pu))
	}
	if !(fc >= 0 && fc <= 1) {
		return nil, fmt.Errorf("metrics: Discriminant: fc = %v, want it in [0, 1]", fc)
	}
	for _, p := range []struct {
		name string
		v    []float64
	}{{"pb", pb}, {"pc", pc}, {"pu", pu}} {
		for i, x := range p.v {
			if !(x >= 0) {
				return nil, fmt.Errorf("metrics: Discriminant: %s[%d] = %v, want a probability ≥ 0", p.name, i, x)
			}
		}
	}
	d := make([]float64, len(pb))
	for i := range d {
		d[i] = math.Log((pb[i] + Epsilon) / (fc*pc[i] + (1-fc)*pu[i] + Epsilon))
	}
	return d, nil
}

// sample is one score with its weight.
type sample struct{ score, weight float64 }

// sortedSamples validates scores and weights and returns them sorted by
// score with their total weight.
func sortedSamples(fn, scoresArg, weightsArg string, scores, weights []float64) ([]sample, float64, error) {
	if err := checkScores(fn, scoresArg, scores); err != nil {
		return nil, 0, err
	}
	total, err := checkWeights(fn, weightsArg, weights, len(scores))
	if err != nil {
		return nil, 0, err
	}
	if len(scores) == 0 || total == 0 {
		return nil, 0, fmt.Errorf("metrics: %s: no jets in %s (or all weights are 0)", fn, scoresArg)
	}
	s := make([]sample, len(scores))
	for i, x := range scores {
		s[i] = sample{x, weight(weights, i)}
	}
	slices.SortStableFunc(s, func(a, b sample) int { return cmp.Compare(a.score, b.score) })
	return s, total, nil
}

// CutForEfficiency returns the cut on the score that keeps the fraction eff
// of the (weighted) signal, computed as puma's calc_eff does: the weighted
// (1−eff) percentile of the signal scores. With the n scores sorted
// ascending, s_1 ≤ … ≤ s_n, with weights w_i, the percentile is the linear
// interpolation (numpy.interp) of the points (c_i, s_i), where
//
//	c_i = (Σ_{k≤i} w_k − w_i/2 − w_1/2) / (Σ_k w_k − w_n/2 − w_1/2)
//
// runs from 0 to 1. A jet is selected when its score ≥ cut, the convention
// of puma's histogram-based efficiency (a score equal to the cut falls in
// the upper bin). With many distinct scores the selected signal fraction is
// eff up to interpolation; with ties or few jets it can differ (all scores
// equal: every eff gives that score as the cut, which keeps all signal).
// Unlike puma, which sums weights in float32 when their total is at most
// 10⁶, the sums here are float64, so cuts can differ from puma's in the
// last digits.
//
// sigWeights may be nil. It fails for eff outside [0, 1], no signal jets,
// zero total weight, a NaN score or an invalid weight.
func CutForEfficiency(sigScores, sigWeights []float64, eff float64) (float64, error) {
	if !(eff >= 0 && eff <= 1) {
		return 0, fmt.Errorf("metrics: CutForEfficiency: efficiency %v, want it in [0, 1]", eff)
	}
	s, _, err := sortedSamples("CutForEfficiency", "sigScores", "sigWeights", sigScores, sigWeights)
	if err != nil {
		return 0, err
	}
	return percentile(s, 1-eff), nil
}

// percentile is puma's weighted_percentile of sorted samples at q in [0, 1],
// with numpy.interp's rules for repeated abscissae (zero weights).
func percentile(s []sample, q float64) float64 {
	n := len(s)
	if n == 1 {
		return s[0].score
	}
	cdf := make([]float64, n)
	sum := 0.0
	for i, x := range s {
		sum += x.weight
		cdf[i] = sum - 0.5*x.weight
	}
	first, last := cdf[0], cdf[n-1]-cdf[0]
	for i := range cdf {
		cdf[i] = (cdf[i] - first) / last
	}
	// numpy.interp: the last j with cdf[j] ≤ q, then the exact node value
	// or a linear interpolation towards j+1.
	j := lastAtMost(cdf, q)
	switch {
	case j < 0:
		return s[0].score
	case j == n-1, q == cdf[j]:
		return s[j].score
	}
	slope := (s[j+1].score - s[j].score) / (cdf[j+1] - cdf[j])
	v := slope*(q-cdf[j]) + s[j].score
	if math.IsNaN(v) { // infinite scores: try from the other end, as numpy does
		v = slope*(q-cdf[j+1]) + s[j+1].score
		if math.IsNaN(v) && s[j].score == s[j+1].score {
			v = s[j].score
		}
	}
	return v
}

// lastAtMost returns the last index j with cdf[j] ≤ q, or -1.
func lastAtMost(cdf []float64, q float64) int {
	i, _ := slices.BinarySearchFunc(cdf, q, func(c, q float64) int {
		if c <= q {
			return -1
		}
		return 1
	})
	return i - 1
}

// Efficiency returns the (weighted) fraction of jets with score ≥ cut and
// its binomial uncertainty sqrt(eff·(1−eff)/N), where N is the effective
// number of jets (Σw)²/Σw² — the number of jets when weights is nil or
// uniform. weights may be nil. It fails for no jets, zero total weight, a
// NaN score or an invalid weight.
func Efficiency(scores, weights []float64, cut float64) (eff, unc float64, err error) {
	eff, n, err := efficiency("Efficiency", "scores", "weights", scores, weights, cut)
	if err != nil {
		return 0, 0, err
	}
	return eff, math.Sqrt(eff * (1 - eff) / n), nil
}

// efficiency returns the selected fraction and the effective count.
func efficiency(fn, scoresArg, weightsArg string, scores, weights []float64, cut float64) (eff, n float64, err error) {
	if math.IsNaN(cut) {
		return 0, 0, fmt.Errorf("metrics: %s: cut is NaN", fn)
	}
	if err := checkScores(fn, scoresArg, scores); err != nil {
		return 0, 0, err
	}
	total, err := checkWeights(fn, weightsArg, weights, len(scores))
	if err != nil {
		return 0, 0, err
	}
	if len(scores) == 0 || total == 0 {
		return 0, 0, fmt.Errorf("metrics: %s: no jets in %s (or all weights are 0)", fn, scoresArg)
	}
	var pass, sumSq float64
	for i, s := range scores {
		w := weight(weights, i)
		if s >= cut {
			pass += w
		}
		sumSq += w * w
	}
	return pass / total, total * total / sumSq, nil
}

// Rejection returns the background rejection at cut, 1/eff with eff the
// (weighted) fraction of background jets with score ≥ cut, and its binomial
// uncertainty as puma's rej_err gives it,
//
//	unc = rej² · sqrt(eff·(1−eff)/N)
//
// where N is the effective number of background jets (Σw)²/Σw², which is
// their number when bkgWeights is nil or uniform (puma passes the number of
// jets). When no background passes the cut, rej and unc are both +Inf.
// bkgWeights may be nil. It fails for no background jets, zero total
// weight, a NaN score or an invalid weight.
func Rejection(bkgScores, bkgWeights []float64, cut float64) (rej, unc float64, err error) {
	eff, n, err := efficiency("Rejection", "bkgScores", "bkgWeights", bkgScores, bkgWeights, cut)
	if err != nil {
		return 0, 0, err
	}
	rej, unc = rejection(eff, n)
	return rej, unc, nil
}

func rejection(eff, n float64) (rej, unc float64) {
	if eff == 0 {
		return math.Inf(1), math.Inf(1)
	}
	rej = 1 / eff
	return rej, rej * rej * math.Sqrt(eff*(1-eff)/n)
}

// StandardEfficiencies returns the b-tagging working points, the signal
// efficiencies 0.60, 0.70, 0.77 and 0.85, in a new slice.
func StandardEfficiencies() []float64 {
	return []float64{0.60, 0.70, 0.77, 0.85}
}

// WorkingPoint is the performance at one target signal efficiency.
type WorkingPoint struct {
	Efficiency       float64 // target signal efficiency
	Cut              float64 // cut from CutForEfficiency; jets with score ≥ Cut are selected
	SignalEfficiency float64 // signal fraction actually selected by Cut
	Rejection        float64 // background rejection at Cut; +Inf when no background passes
	Uncertainty      float64 // binomial uncertainty of Rejection, as from Rejection
}

// RejectionsAt returns, for each target signal efficiency in effs (the
// [StandardEfficiencies] when none are given), the cut, the signal
// efficiency it achieves and the background rejection with its
// uncertainty, as [CutForEfficiency] and [Rejection] compute them. Weights
// may be nil. Errors are those of the two functions.
func RejectionsAt(sigScores, sigWeights, bkgScores, bkgWeights []float64, effs ...float64) ([]WorkingPoint, error) {
	if len(effs) == 0 {
		effs = StandardEfficiencies()
	}
	for _, eff := range effs {
		if !(eff >= 0 && eff <= 1) {
			return nil, fmt.Errorf("metrics: RejectionsAt: efficiency %v, want it in [0, 1]", eff)
		}
	}
	sig, _, err := sortedSamples("RejectionsAt", "sigScores", "sigWeights", sigScores, sigWeights)
	if err != nil {
		return nil, err
	}
	wps := make([]WorkingPoint, len(effs))
	for i, eff := range effs {
		cut := percentile(sig, 1-eff)
		sigEff, _, err := efficiency("RejectionsAt", "sigScores", "sigWeights", sigScores, sigWeights, cut)
		if err != nil {
			return nil, err
		}
		bkgEff, n, err := efficiency("RejectionsAt", "bkgScores", "bkgWeights", bkgScores, bkgWeights, cut)
		if err != nil {
			return nil, err
		}
		rej, unc := rejection(bkgEff, n)
		wps[i] = WorkingPoint{Efficiency: eff, Cut: cut, SignalEfficiency: sigEff, Rejection: rej, Uncertainty: unc}
	}
	return wps, nil
}

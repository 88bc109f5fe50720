package metrics

import (
	"fmt"
	"math"
)

// argmaxCounts walks the valid rows of probs (n rows of nClass values, row
// major, as an ONNX output [n, nClass] is laid out), and returns per true
// class the number of rows and the number whose argmax equals the label.
// Ties go to the lowest class index, as numpy.argmax.
func argmaxCounts(fn string, probs []float64, nClass int, labels []int, mask []bool) (total, correct []int, err error) {
	if nClass <= 0 {
		return nil, nil, fmt.Errorf("metrics: %s: %d classes, want at least 1", fn, nClass)
	}
	n := len(labels)
	if len(probs)%nClass != 0 || len(probs)/nClass != n {
		return nil, nil, fmt.Errorf("metrics: %s: %d probabilities for %d labels × %d classes", fn, len(probs), n, nClass)
	}
	if mask != nil && len(mask) != n {
		return nil, nil, fmt.Errorf("metrics: %s: mask of %d for %d labels", fn, len(mask), n)
	}
	total, correct = make([]int, nClass), make([]int, nClass)
	for i, label := range labels {
		if mask != nil && !mask[i] {
			continue
		}
		if label < 0 || label >= nClass {
			return nil, nil, fmt.Errorf("metrics: %s: labels[%d] = %d, want a class in [0, %d)", fn, i, label, nClass)
		}
		row := probs[i*nClass : (i+1)*nClass]
		best := 0
		for c, p := range row {
			if math.IsNaN(p) {
				return nil, nil, fmt.Errorf("metrics: %s: probs[%d][%d] is NaN", fn, i, c)
			}
			if p > row[best] {
				best = c
			}
		}
		total[label]++
		if best == label {
			correct[label]++
		}
	}
	return total, correct, nil
}

// Accuracy returns the fraction of valid samples whose most probable class
// (argmax over nClass scores, ties to the lowest index) is their label.
// probs holds len(labels) rows of nClass scores, row major; mask marks the
// valid samples (nil: all), so padded tracks or jets can be skipped, and
// labels of masked-out samples are ignored. It fails on mismatched lengths,
// a label outside [0, nClass), a NaN score or no valid samples.
func Accuracy(probs []float64, nClass int, labels []int, mask []bool) (float64, error) {
	total, correct, err := argmaxCounts("Accuracy", probs, nClass, labels, mask)
	if err != nil {
		return 0, err
	}
	var t, c int
	for k := range total {
		t += total[k]
		c += correct[k]
	}
	if t == 0 {
		return 0, fmt.Errorf("metrics: Accuracy: no valid samples")
	}
	return float64(c) / float64(t), nil
}

// ClassAccuracy returns, per true class, the fraction of its valid samples
// that Accuracy counts correct (the recall of each class): element k is
// correct/total over the samples labelled k, and NaN when no valid sample
// has label k. Arguments and errors are those of [Accuracy], except that no
// valid samples at all is not an error.
func ClassAccuracy(probs []float64, nClass int, labels []int, mask []bool) ([]float64, error) {
	total, correct, err := argmaxCounts("ClassAccuracy", probs, nClass, labels, mask)
	if err != nil {
		return nil, err
	}
	acc := make([]float64, nClass)
	for k := range acc {
		if total[k] == 0 {
			acc[k] = math.NaN()
		} else {
			acc[k] = float64(correct[k]) / float64(total[k])
		}
	}
	return acc, nil
}

// PairCounts counts track pairs for vertexing performance: pairs predicted
// to share a vertex that truly do (TruePositive), predicted but not true
// (FalsePositive) and true but not predicted (FalseNegative). Counts from
// several jets add up with [PairCounts.Add].
type PairCounts struct {
	TruePositive, FalsePositive, FalseNegative int64
}

// CountPairs compares the predicted and true same-vertex relations of the n
// tracks of one jet, given as n×n row-major matrices (pred[i*n+j] says
// tracks i and j share a vertex). Only the unordered pairs i < j of tracks
// valid in mask (nil: all) count, so the matrices are read from their upper
// triangle and need not be symmetric; the diagonal is ignored.
func CountPairs(pred, truth []bool, n int, mask []bool) (PairCounts, error) {
	var c PairCounts
	switch {
	case n < 0 || n > math.MaxInt32:
		return c, fmt.Errorf("metrics: CountPairs: %d tracks", n)
	case len(pred) != n*n:
		return c, fmt.Errorf("metrics: CountPairs: predicted matrix of %d for %d×%d tracks", len(pred), n, n)
	case len(truth) != n*n:
		return c, fmt.Errorf("metrics: CountPairs: true matrix of %d for %d×%d tracks", len(truth), n, n)
	case mask != nil && len(mask) != n:
		return c, fmt.Errorf("metrics: CountPairs: mask of %d for %d tracks", len(mask), n)
	}
	for i := range n {
		if mask != nil && !mask[i] {
			continue
		}
		for j := i + 1; j < n; j++ {
			if mask != nil && !mask[j] {
				continue
			}
			p, t := pred[i*n+j], truth[i*n+j]
			switch {
			case p && t:
				c.TruePositive++
			case p:
				c.FalsePositive++
			case t:
				c.FalseNegative++
			}
		}
	}
	return c, nil
}

// Add returns the sum of c and o.
func (c PairCounts) Add(o PairCounts) PairCounts {
	return PairCounts{c.TruePositive + o.TruePositive, c.FalsePositive + o.FalsePositive, c.FalseNegative + o.FalseNegative}
}

// Efficiency returns the fraction of true same-vertex pairs that were
// predicted, TP/(TP+FN), or NaN when there are no true pairs.
func (c PairCounts) Efficiency() float64 {
	return ratio(c.TruePositive, c.TruePositive+c.FalseNegative)
}

// Purity returns the fraction of predicted same-vertex pairs that are true,
// TP/(TP+FP), or NaN when no pair was predicted.
func (c PairCounts) Purity() float64 {
	return ratio(c.TruePositive, c.TruePositive+c.FalsePositive)
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

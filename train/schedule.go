// Package train runs salt-ort's training: it reads batches from the
// loader, feeds them with the parameters, optimizer state, learning rate
// and task weights to the training-step graph in ONNX Runtime, validates
// each epoch with the evaluation graph, and writes the run directory
// (configuration, checkpoints, metrics, logs).
package train

import "math"

// OneCycle is the one-cycle learning-rate schedule as PyTorch's
// OneCycleLR computes it with cosine annealing: from Initial up to Max over
// the first WarmupFraction of the steps, then down to End at the last step.
type OneCycle struct {
	Initial, Max, End float64
	WarmupFraction    float64
	TotalSteps        int
}

// At returns the learning rate of the 0-based step.
func (s OneCycle) At(step int) float64 {
	last := float64(s.TotalSteps - 1)
	peak := s.WarmupFraction*float64(s.TotalSteps) - 1
	x := float64(step)
	switch {
	case s.TotalSteps <= 1:
		return s.Max
	case x <= peak && peak > 0:
		return cosine(s.Initial, s.Max, x/peak)
	case x >= last:
		return s.End
	default:
		start := math.Max(peak, 0)
		return cosine(s.Max, s.End, (x-start)/(last-start))
	}
}

// cosine anneals from a to b as pct goes from 0 to 1.
func cosine(a, b, pct float64) float64 {
	return b + (a-b)/2*(1+math.Cos(math.Pi*pct))
}

// Package train runs salt-ort's training: it reads batches from the
// loader, feeds them with the parameters, optimizer state, learning rate
// and task weights to the training-step graph in ONNX Runtime, validates
// each epoch with the evaluation graph, and writes the run directory
// (configuration, checkpoints, metrics, logs).
package train

import "math"

// OneCycle is the one-cycle schedule as PyTorch's OneCycleLR computes it
// with cosine annealing (Salt's schedule): the learning rate goes from
// Initial up to Max over the first WarmupFraction of the steps, then down
// to End at the last step; with CycleMomentum the momentum (AdamW's β₁)
// goes the other way, from MaxMomentum down to BaseMomentum at the peak and
// back up to MaxMomentum.
type OneCycle struct {
	Initial, Max, End float64
	WarmupFraction    float64
	TotalSteps        int
	// CycleMomentum, BaseMomentum and MaxMomentum are OneCycleLR's
	// cycle_momentum, base_momentum and max_momentum.
	CycleMomentum             bool
	BaseMomentum, MaxMomentum float64
}

// phase returns where the 0-based step lies as OneCycleLR places it: in
// the warm-up (warm true) or the annealing phase, and the fraction pct of
// that phase done. The warm-up ends at step WarmupFraction·TotalSteps − 1
// and the annealing starts there (even where that is before step 0, as
// PyTorch computes it) and ends at step TotalSteps − 1; past it pct stays 1.
func (s OneCycle) phase(step int) (warm bool, pct float64) {
	last := float64(s.TotalSteps - 1)
	peak := s.WarmupFraction*float64(s.TotalSteps) - 1
	x := float64(step)
	switch {
	case x <= peak && peak > 0:
		return true, x / peak
	case x >= last:
		return false, 1
	default:
		return false, (x - peak) / (last - peak)
	}
}

// At returns the learning rate of the 0-based step.
func (s OneCycle) At(step int) float64 {
	warm, pct := s.phase(step)
	if warm {
		return cosine(s.Initial, s.Max, pct)
	}
	return cosine(s.Max, s.End, pct)
}

// Momentum returns the momentum coefficient (AdamW's β₁) of the 0-based
// step; only meaningful with CycleMomentum.
func (s OneCycle) Momentum(step int) float64 {
	warm, pct := s.phase(step)
	if warm {
		return cosine(s.MaxMomentum, s.BaseMomentum, pct)
	}
	return cosine(s.BaseMomentum, s.MaxMomentum, pct)
}

// cosine anneals from a to b as pct goes from 0 to 1.
func cosine(a, b, pct float64) float64 {
	return b + (a-b)/2*(1+math.Cos(math.Pi*pct))
}

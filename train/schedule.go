package train

import (
	"math"

	"github.com/salt-ort/salt-ort/config"
)

// Schedule is the one-cycle schedule training.lr describes
// (config.OneCycle) over TotalSteps optimizer steps, as PyTorch's
// OneCycleLR computes it with cosine annealing (Salt's schedule): the
// learning rate goes from Initial up to Max over the first WarmupFraction
// of the steps, then down to End at the last step; with CycleMomentum the
// momentum (AdamW's β₁) goes the other way, from MaxMomentum down to
// BaseMomentum at the peak and back up to MaxMomentum.
type Schedule struct {
	config.OneCycle
	TotalSteps int
}

// phase returns where the 0-based step lies as OneCycleLR places it: in
// the warm-up (warm true) or the annealing phase, and the fraction pct of
// that phase done. The warm-up ends at step WarmupFraction·TotalSteps − 1
// and the annealing starts there (even where that is before step 0, as
// PyTorch computes it) and ends at step TotalSteps − 1; past it pct stays 1.
func (s Schedule) phase(step int) (warm bool, pct float64) {
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
func (s Schedule) At(step int) float64 {
	warm, pct := s.phase(step)
	if warm {
		return cosine(s.Initial, s.Max, pct)
	}
	return cosine(s.Max, s.End, pct)
}

// Momentum returns the momentum coefficient (AdamW's β₁) of the 0-based
// step; only meaningful with CycleMomentum.
func (s Schedule) Momentum(step int) float64 {
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

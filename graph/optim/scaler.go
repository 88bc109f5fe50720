package optim

import "math"

// LossScaler is the dynamic loss-scaling policy of torch.cuda.amp.GradScaler,
// run in Go around a step built with Step.LossScaling: feed Scale as the
// "loss_scale" input, then call Update with the step's "grad_finite"
// output. An overflow halves the scale (BackoffFactor); GrowthInterval
// finite steps in a row double it (GrowthFactor), as long as it stays a
// finite float32. The fields are plain values so that a checkpoint can save
// and restore them.
type LossScaler struct {
	Scale          float64 // the current scale, fed as loss_scale
	GrowthFactor   float64 // multiplies Scale after GrowthInterval finite steps
	BackoffFactor  float64 // multiplies Scale after a non-finite step
	GrowthInterval int     // finite steps in a row before the scale grows
	GoodSteps      int     // finite steps since the scale last changed
}

// DefaultLossScaler returns GradScaler's defaults: scale 2¹⁶, growth 2,
// backoff 0.5, interval 2000.
func DefaultLossScaler() LossScaler {
	return LossScaler{Scale: 65536, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 2000}
}

// Update records whether the last step's gradient was finite (that is,
// whether the step applied its update) and adjusts Scale for the next one.
// A skipped step should not advance the optimizer's step count (see
// BuildStep).
func (s *LossScaler) Update(finite bool) {
	if !finite {
		s.Scale *= s.BackoffFactor
		s.GoodSteps = 0
		return
	}
	s.GoodSteps++
	if s.GoodSteps < s.GrowthInterval {
		return
	}
	s.GoodSteps = 0
	if grown := s.Scale * s.GrowthFactor; grown <= math.MaxFloat32 {
		s.Scale = grown
	}
}

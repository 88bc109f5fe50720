package train

import (
	"fmt"
	"math"
)

// LossWeighting chooses the weight of each task's loss for the next step;
// the weights are inputs of the training-step graph, so the combination of
// the losses is decided in Go.
type LossWeighting interface {
	// Weights returns the weights for the next step.
	Weights() []float64
	// Observe receives the task losses of the step just run (with the
	// learning rate it ran at) and updates any learned state.
	Observe(losses []float64, lr float64)
	// State and SetState save and restore the learned state for
	// checkpoints.
	State() []float64
	SetState([]float64) error
}

// Static uses the configured task weights unchanged, as Salt does.
type Static struct{ W []float64 }

// Weights implements LossWeighting.
func (s *Static) Weights() []float64 { return s.W }

// Observe implements LossWeighting.
func (s *Static) Observe([]float64, float64) {}

// State implements LossWeighting.
func (s *Static) State() []float64 { return nil }

// SetState implements LossWeighting.
func (s *Static) SetState(v []float64) error {
	if len(v) != 0 {
		return fmt.Errorf("static loss weighting has no state, checkpoint has %d values", len(v))
	}
	return nil
}

// Uncertainty is homoscedastic-uncertainty weighting (Kendall, Gal and
// Cipolla 2018): the objective is Σ_i exp(−s_i)·L_i + s_i with a learned
// log-variance s_i per task. The graph receives w_i = exp(−s_i); the s_i
// are updated here with Adam on ∂/∂s_i = 1 − exp(−s_i)·L_i at the step's
// learning rate. Tasks with a configured weight of 0 stay off.
type Uncertainty struct {
	enabled []bool
	s, m, v []float64
	t       int
}

// NewUncertainty starts every enabled task (configured weight > 0) at
// s = 0, i.e. weight 1.
func NewUncertainty(configured []float64) *Uncertainty {
	n := len(configured)
	u := &Uncertainty{enabled: make([]bool, n), s: make([]float64, n), m: make([]float64, n), v: make([]float64, n)}
	for i, w := range configured {
		u.enabled[i] = w > 0
	}
	return u
}

// Weights implements LossWeighting.
func (u *Uncertainty) Weights() []float64 {
	w := make([]float64, len(u.s))
	for i, s := range u.s {
		if u.enabled[i] {
			w[i] = math.Exp(-s)
		}
	}
	return w
}

// Observe implements LossWeighting.
func (u *Uncertainty) Observe(losses []float64, lr float64) {
	const b1, b2, eps = 0.9, 0.999, 1e-8
	u.t++
	for i := range u.s {
		if !u.enabled[i] {
			continue
		}
		g := 1 - math.Exp(-u.s[i])*losses[i]
		u.m[i] = b1*u.m[i] + (1-b1)*g
		u.v[i] = b2*u.v[i] + (1-b2)*g*g
		mh := u.m[i] / (1 - math.Pow(b1, float64(u.t)))
		vh := u.v[i] / (1 - math.Pow(b2, float64(u.t)))
		u.s[i] -= lr * mh / (math.Sqrt(vh) + eps)
	}
}

// State implements LossWeighting: s, m, v and the step count.
func (u *Uncertainty) State() []float64 {
	st := append(append(append([]float64{}, u.s...), u.m...), u.v...)
	return append(st, float64(u.t))
}

// SetState implements LossWeighting.
func (u *Uncertainty) SetState(st []float64) error {
	n := len(u.s)
	if len(st) != 3*n+1 {
		return fmt.Errorf("uncertainty loss weighting for %d tasks needs %d state values, checkpoint has %d", n, 3*n+1, len(st))
	}
	copy(u.s, st[:n])
	copy(u.m, st[n:2*n])
	copy(u.v, st[2*n:3*n])
	u.t = int(st[3*n])
	return nil
}

package salttwin

import "testing"

// MuP sets the base widths of a twin in Salt's μP parametrisation
// (mup_twin.py).
type MuP struct {
	Base, Delta int // embedding widths of mup's base and delta models
	// WeightDecay is AdamW's weight decay (Salt's lrs_config.weight_decay),
	// large enough for MuAdamW's scaling of it to show in one step.
	WeightDecay float64
}

// BuildMuP is Build with the twin in Salt's μP parametrisation: mup on
// its init net and encoder (1/head_dim attention, μP initialisation, a
// MuReadout), trained with MuAdamW's parameter groups under Salt's
// OneCycleLR, and config.yaml with model.mup_config. Expected holds the
// same outputs as Build's.
func BuildMuP(t testing.TB, dir string, m MuP) *Twin {
	t.Helper()
	return build(t, dir, "mup_twin.py", func(spec map[string]any) {
		spec["registers"] = 1
		spec["mup_base"], spec["mup_delta"], spec["weight_decay"] = m.Base, m.Delta, m.WeightDecay
	})
}

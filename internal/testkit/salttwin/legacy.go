package salttwin

import "testing"

// Legacy configures the encoder of a twin with Salt's legacy
// TransformerEncoder (legacy_twin.py): its dense block and attention.
type Legacy struct {
	Hidden      []int   // dense_config.hidden_layers (nil: Salt's default, 2 × embed)
	Dropout     float64 // dense_config.dropout, before each Linear
	Activation  string  // dense_config.activation
	AttnDropout float64 // ScaledDotProductAttention's dropout
	NoOutProj   bool    // mha_config.out_proj false: no linear_out
}

// BuildLegacy is Build with Salt's legacy TransformerEncoder in place of
// its Transformer (and its GlobalAttentionPooling with a masked softmax):
// the twin is trained, checkpointed and described in config.yaml as a Salt
// of before 2026 would have it. Expected holds the same outputs as
// Build's; with dropout, the training step in it used PyTorch's draws.
func BuildLegacy(t testing.TB, dir string, l Legacy) *Twin {
	t.Helper()
	return build(t, dir, "legacy_twin.py", func(spec map[string]any) { legacySpec(l, spec) })
}

// CountLegacy is Count for the legacy encoder l (spec as Count's, without
// registers).
func CountLegacy(t testing.TB, spec map[string]any, l Legacy) int64 {
	t.Helper()
	return count(t, "legacy_twin.py", legacySpec(l, spec))
}

// legacySpec adds l's settings to a twin spec.
func legacySpec(l Legacy, spec map[string]any) map[string]any {
	spec["legacy_dropout"], spec["legacy_attn_dropout"] = l.Dropout, l.AttnDropout
	if l.Hidden != nil {
		spec["legacy_hidden"] = l.Hidden
	}
	if l.Activation != "" {
		spec["legacy_activation"] = l.Activation
	}
	if l.NoOutProj {
		spec["legacy_out_proj"] = false
	}
	return spec
}

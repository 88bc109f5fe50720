package saltimport_test

import (
	"testing"

	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/nn"
	"github.com/salt-ort/salt-ort/saltimport"
)

// TestParamsCoverEncoderOptions checks that Params names every parameter
// of salt-ort's layout once, with as many values as salt-ort's, for the
// encoder options of Salt's GN3 configurations.
func TestParamsCoverEncoderOptions(t *testing.T) {
	for _, c := range []struct {
		name   string
		modify func(*nn.EncoderConfig)
	}{
		{"gn2", func(*nn.EncoderConfig) {}},
		{"gated", func(e *nn.EncoderConfig) { e.Gated = true }},
		{"rmsnorm", func(e *nn.EncoderConfig) { e.Norm = nn.RMSNormKind }},
		{"rmsnorm post-norm", func(e *nn.EncoderConfig) { e.Norm = nn.RMSNormKind; e.NormType = nn.PostNorm }},
		{"layerscale", func(e *nn.EncoderConfig) { e.LayerScale = 1e-3 }},
		{"qk and v norm", func(e *nn.EncoderConfig) { e.QKNorm, e.VNorm = true, true }},
		{"GN3V01: hybrid RMSNorm, gated, 8 registers", func(e *nn.EncoderConfig) {
			e.Norm, e.NormType, e.Gated, e.Registers = nn.RMSNormKind, nn.HybridNorm, true, 8
		}},
		// Salt's legacy TransformerEncoder: GN2's, GN2v01's dense block
		// (two hidden layers, dropout shifting the Linear indices), and
		// without an output projection.
		{"legacy", func(e *nn.EncoderConfig) { e.Kind, e.Registers = nn.LegacyKind, 0 }},
		{"legacy with dropout and two hidden layers", func(e *nn.EncoderConfig) {
			e.Kind, e.Registers, e.Dropout, e.Hidden = nn.LegacyKind, 0, 0.1, []int{512, 96}
		}},
		{"legacy without out_dim", func(e *nn.EncoderConfig) { e.Kind, e.Registers, e.OutDim = nn.LegacyKind, 0, 0 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := model.GN2()
			spec.Encoder.Layers = 3
			c.modify(&spec.Encoder)
			_, layout, err := spec.Eval(1)
			if err != nil {
				t.Fatal(err)
			}
			sizes := map[string]int64{}
			for _, p := range layout {
				sizes[p.Name] = p.Size
			}
			for _, p := range saltimport.Params(spec) {
				n := int64(1)
				for _, d := range p.SaltShape {
					n *= int64(d)
				}
				if got, ok := sizes[p.Ort]; !ok || got != n {
					t.Errorf("Params maps %s (%v) to %s, which salt-ort has with %d values", p.Salt, p.SaltShape, p.Ort, got)
				}
				delete(sizes, p.Ort)
			}
			for n := range sizes {
				t.Errorf("salt-ort's parameter %s has no Salt name in Params", n)
			}
		})
	}
}

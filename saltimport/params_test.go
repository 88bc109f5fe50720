package saltimport_test

import (
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/nn"
	"github.com/salt-ort/salt-ort/internal/testkit/fixture"
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
			checkParamsCover(t, spec)
		})
	}
}

// checkParamsCover checks that Params names every parameter of the
// layout of spec once, with as many values as salt-ort's.
func checkParamsCover(t *testing.T, spec model.Spec) {
	t.Helper()
	_, layout, err := spec.Eval(1)
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int64{}
	for _, p := range layout {
		sizes[p.Name] = p.Size
	}
	salt := map[string]bool{}
	for _, p := range saltimport.Params(spec) {
		if salt[p.Salt] {
			t.Errorf("Params names %s twice", p.Salt)
		}
		salt[p.Salt] = true
		if p.Ort == "" {
			continue // registered by Salt, unused, not carried
		}
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
}

// TestParamsCoverModelKinds checks Params on the model kinds of Salt's
// configurations: global variables, a second group without the jet
// variables, DeepSets, a jet-only network, and regressions of jets and
// constituents.
func TestParamsCoverModelKinds(t *testing.T) {
	const regressions = `
[[model.tasks]]
name = "pt_regression"
kind = "regression"
targets = ["pt"]
hidden = [8]
[[model.tasks]]
name = "mass_regression"
kind = "gaussian_regression"
targets = ["mass"]
hidden = [8]
[[model.tasks]]
name = "track_eta"
kind = "gaussian_regression"
input = "tracks"
targets = ["eta"]
hidden = [8]
`
	for _, c := range []struct {
		name string
		opts fixture.Options
		edit func(string) string
	}{
		{"global variables", fixture.Options{Electrons: 4}, func(s string) string {
			return strings.Replace(s, "[data.variables]", "[data.variables]\nglobal = [\"mass\", \"n_tracks\"]", 1)
		}},
		{"electrons without the jet variables", fixture.Options{Electrons: 4, Extra: ""}, func(s string) string {
			return strings.Replace(s, "input = \"electrons\"", "input = \"electrons\"\nattach_global = false", 1)
		}},
		{"deepsets", fixture.Options{NoEncoder: true}, nil},
		{"jet only", fixture.Options{JetOnly: true}, nil},
		{"regressions", fixture.Options{NoGN2Tasks: true, ExtraTasks: regressions}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.opts.NoClassDict = true
			text := fixture.Tiny(t.TempDir(), c.opts)
			if c.edit != nil {
				text = c.edit(text)
			}
			cfg, err := config.Parse(fixture.WriteConfig(t, text), []byte(text))
			if err != nil {
				t.Fatal(err)
			}
			spec, err := cfg.Spec(nil)
			if err != nil {
				t.Fatal(err)
			}
			checkParamsCover(t, spec)
		})
	}
}

// TestParamsCoverConditioningAndEdges checks Params on parameterised
// models with featurewise nets of each layer (and on one that attaches the
// parameters to the init nets' inputs instead), on a jet-only network
// with an input featurewise net, and on edge features with and without
// their update, under LayerNorm and RMSNorm.
func TestParamsCoverConditioningAndEdges(t *testing.T) {
	dense := func(final nn.Activation) *model.FeaturewiseDense {
		return &model.FeaturewiseDense{Hidden: []int{4}, Activation: nn.ReLU, FinalActivation: final}
	}
	parameterised := func(s *model.Spec, fw ...model.Featurewise) {
		s.Parameters = []model.Parameter{{Name: "mass_hypothesis", Train: []float64{1, 2, 3}, Test: 2}}
		s.Featurewise = fw
	}
	edges := func(s *model.Spec, update bool) {
		s.Inputs[0].Vars = append(s.Inputs[0].Vars, "pt", "energy")
		s.Edges = &model.Edges{Input: s.Inputs[0].Name, Features: []string{"dR", "z", "isSelfLoop"},
			Vars: map[string]string{"eta": "deta", "phi": "dphi"}, Hidden: []int{4}, Activation: nn.SiLU}
		s.Encoder.EdgeDim, s.Encoder.UpdateEdges = 4, update
	}
	crossAttention := func(s *model.Spec, every bool) {
		s.Inputs = append(s.Inputs, model.Input{Name: "neutral", Vars: []string{"a", "b"}, MaxLen: 4, InitHidden: []int{8}, Activation: nn.ReLU})
		s.Encoder = nn.EncoderConfig{Kind: nn.CrossAttentionKind, Layers: 3, Heads: 2, Hidden: []int{12}, Activation: nn.ReLU, OutDim: 6,
			Dropout: 0.1, CAEveryLayer: every}
		if every {
			s.Encoder.OutDim = 0
		}
	}
	for _, c := range []struct {
		name   string
		modify func(*model.Spec)
	}{
		{"featurewise input, encoder with norm, global", func(s *model.Spec) {
			parameterised(s,
				model.Featurewise{Layer: model.FeaturewiseInput, Scale: dense(nn.None), Bias: dense(nn.None)},
				model.Featurewise{Layer: model.FeaturewiseEncoder, Scale: dense(nn.None), Bias: dense(nn.None), Norm: true},
				model.Featurewise{Layer: model.FeaturewiseGlobal, Scale: dense(nn.Sigmoid)})
		}},
		{"featurewise bias of the encoder alone", func(s *model.Spec) {
			parameterised(s, model.Featurewise{Layer: model.FeaturewiseEncoder, Bias: dense(nn.None)})
		}},
		{"parameters attached to the init nets", func(s *model.Spec) { parameterised(s) }},
		{"edges", func(s *model.Spec) { edges(s, false) }},
		{"updated edges", func(s *model.Spec) { edges(s, true) }},
		{"updated edges, RMSNorm", func(s *model.Spec) { edges(s, true); s.Encoder.Norm = nn.RMSNormKind }},
		{"cross-attention encoder", func(s *model.Spec) { crossAttention(s, false) }},
		{"cross-attention encoder, every layer, no out_dim", func(s *model.Spec) { crossAttention(s, true) }},
		{"edges, hybrid RMSNorm with featurewise nets", func(s *model.Spec) {
			edges(s, true)
			s.Encoder.Norm, s.Encoder.NormType = nn.RMSNormKind, nn.HybridNorm
			parameterised(s, model.Featurewise{Layer: model.FeaturewiseEncoder, Scale: dense(nn.None)})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := model.GN2()
			spec.Encoder.Layers = 2
			c.modify(&spec)
			checkParamsCover(t, spec)
		})
	}
}

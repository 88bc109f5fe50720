package model_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/nn"
	"github.com/salt-ort/salt-ort/internal/onnxcheck"
)

// TestOneJetMatchesReference builds the deployment graph of each model
// twice, as Deploy builds it (the one-jet pass) and from the shared
// forward pass (DeployOptions.Reference), with the same random weights,
// and runs both on the same jets with 0 to 23 constituents per group:
// probabilities and regression values must agree within 1e-5 (relative
// above 1), classes and vertex indices exactly.
func TestOneJetMatchesReference(t *testing.T) {
	plain := tiny()
	plain.Encoder = nn.EncoderConfig{Layers: 2, Heads: 4, DenseRatio: 1, Activation: nn.GELU, Registers: 0, OutDim: 0, NoFinalNorm: true}
	plain.Inputs[0].FinalActivation = nn.SiLU
	for i := range plain.Tasks {
		plain.Tasks[i].Activation = nn.SiLU
	}
	bare := tiny()
	bare.AttachVars = []string{}
	bare.Encoder.Registers = 3
	for i := range bare.Tasks {
		bare.Tasks[i].Hidden = nil
	}
	for _, c := range []struct {
		name string
		spec model.Spec
	}{
		{"gn2", tiny()},
		{"two groups and regressions", tinyMulti()},
		{"global variables", tinyGlobal()},
		{"no registers, projection or final norm; GELU and SiLU", plain},
		{"no jet variables, three registers, heads without hidden layers", bare},
		{"dropout, Mish, binary and L1 tasks", oneJetSalt()},
		{"Salt's legacy encoder, empty jets included", tinyLegacy()},
		{"Salt's legacy encoder without projections", tinyLegacyNoProjection()},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := c.spec
			_, _, values := trainedTiny(t, s, 1)
			norm := tinyNorm(s)
			fast, err := s.Deploy(norm, model.DeployOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ref, err := s.Deploy(norm, model.DeployOptions{Reference: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range fast.Nodes() {
				if n.Op == "LayerNormalization" {
					t.Fatalf("Deploy built the reference graph (it has %s)", n.Name)
				}
			}
			fastRun := graphtest.Compile(t, fast, graph.ModelOptions{ParamValues: values})
			refRun := graphtest.Compile(t, ref, graph.ModelOptions{ParamValues: values})
			if onnxcheck.Available() {
				if err := onnxcheck.Check(fastRun.Model); err != nil {
					t.Fatal(err)
				}
			}
			outs, err := s.DeployOutputs(model.DeployOptions{})
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(4, 4))
			for trial, n := range []int{0, 1, 2, 5, 9, 23} {
				in := map[string][]float64{model.JetFeaturesInput: make([]float64, len(s.JetVars))}
				for i := range in[model.JetFeaturesInput] {
					in[model.JetFeaturesInput][i] = 20 * r.NormFloat64()
				}
				shapes := map[string][]int64{}
				for g, grp := range s.Inputs {
					name := model.DeployInputName(grp.Name)
					k := (n + g*trial) % 24 // groups of different sizes
					if k == 0 && s.Encoder.Appended() == 0 {
						// Without registers (or the legacy encoder's zero
						// token) an empty jet leaves the attention nothing
						// to attend to; ONNX Runtime's Softmax then divides
						// by zero in either graph.
						k = 1
					}
					in[name] = make([]float64, k*len(grp.Vars))
					for i := range in[name] {
						in[name][i] = 3 * r.NormFloat64()
					}
					shapes[name] = []int64{int64(k), int64(len(grp.Vars))}
				}
				got, err := fastRun.RunShaped(in, shapes)
				if err != nil {
					t.Fatalf("%d constituents: %v", n, err)
				}
				want, err := refRun.RunShaped(in, shapes)
				if err != nil {
					t.Fatalf("%d constituents: reference: %v", n, err)
				}
				for _, o := range outs {
					g, w := got[o.Name], want[o.Name]
					if len(g) != len(w) {
						t.Fatalf("%d constituents: %s has %d values, reference %d", n, o.Name, len(g), len(w))
					}
					for i := range g {
						bad := g[i] != w[i]
						if !o.PerConstituent() {
							bad = math.Abs(g[i]-w[i]) > 1e-5*math.Max(1, math.Abs(w[i]))
						}
						if bad {
							t.Errorf("%d constituents: %s[%d] = %v, reference %v", n, o.Name, i, g[i], w[i])
						}
					}
				}
			}
		})
	}
}

// oneJetSalt is tinySalt without what the one-jet graph does not build
// (a track regression) and without sample weights, which it does not know
// to be irrelevant to inference.
func oneJetSalt() model.Spec {
	s := tinySalt()
	s.Tasks = slices.DeleteFunc(slices.Clone(s.Tasks), func(t model.Task) bool { return t.Name == "track_l1" })
	for i := range s.Tasks {
		s.Tasks[i].SampleWeight = false
	}
	return s
}

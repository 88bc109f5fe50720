package model_test

import (
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/graph/model"
)

// tinyGlobal is tinyMulti() with Salt's global variables: pt and eta are
// attached to every track, softMuon_pt and pt are joined to the pooled
// representation, and the electrons see no jet variables
// (attach_global = false).
func tinyGlobal() model.Spec {
	s := tinyMulti()
	s.JetVars = []string{"pt_btagJes", "eta_btagJes", "softMuon_pt"}
	s.AttachVars = []string{"pt_btagJes", "eta_btagJes"}
	s.GlobalVars = []string{"softMuon_pt", "pt_btagJes"}
	s.Inputs[1].NoJetVars = true
	return s
}

// TestGlobalVariables checks where the jet variables go: the widths of
// the init nets' and the heads' first layers, and the refusals.
func TestGlobalVariables(t *testing.T) {
	widths := func(s model.Spec) map[string]int64 {
		g, err := s.Infer(model.InferOptions{Batch: 4})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, p := range g.Params() {
			if strings.HasSuffix(p.Name(), "/weight") {
				out[p.Name()] = p.Tensor.Shape()[0]
			}
		}
		return out
	}
	plain, global := widths(tinyMulti()), widths(tinyGlobal())
	out := int64(tinyMulti().Encoder.OutDim)
	for _, c := range []struct {
		name        string
		param       string
		plain, glob int64 // input width of the first layer
	}{
		{"tracks see the attached jet variables", "init/tracks/0/weight", 3 + 2, 3 + 2},
		{"electrons see none with attach_global = false", "init/electrons/0/weight", 2 + 2, 2},
		{"jet heads read the global variables", "jets_classification/0/weight", out, out + 2},
		{"track heads read them with the pooled representation", "track_origin/0/weight", 2 * out, 2*out + 2},
		{"vertexing heads too", "track_vertexing/0/weight", 3 * out, 3*out + 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			if plain[c.param] != c.plain || global[c.param] != c.glob {
				t.Errorf("%s: %d without global variables (want %d), %d with (want %d)", c.param, plain[c.param], c.plain, global[c.param], c.glob)
			}
		})
	}
	bad := tinyGlobal()
	bad.GlobalVars = []string{"softMuon_ptt"}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), `"softMuon_ptt"`) {
		t.Errorf("unknown global variable: %v", err)
	}
}

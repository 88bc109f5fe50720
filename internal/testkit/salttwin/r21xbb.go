package salttwin

import "testing"

// R21Xbb configures a twin of Salt's R21Xbb (r21xbb_twin.py): the first
// MaxLen tracks of each jet, their variables Vars, flattened into one
// classification head.
type R21Xbb struct {
	MaxLen  int      // data.num_inputs.tracks
	Vars    []string // the track variables
	Hidden  []int    // the head's hidden_layers
	Dropout float64  // the head's dropout, before each Linear
}

// BuildR21Xbb trains a twin of Salt's R21Xbb in a new directory under dir:
// config.yaml (Baseline_Xbb.yaml's model), a Lightning checkpoint after
// Steps steps, and in Expected eval/jets_classification, the checkpoint's
// class probabilities [TestJets, 4] on the test file, and step/..., the
// next step as Build's (with PyTorch's dropout draws where Dropout > 0).
func BuildR21Xbb(t testing.TB, dir string, r R21Xbb) *Twin {
	t.Helper()
	return build(t, dir, "r21xbb_twin.py", func(spec map[string]any) {
		spec["r21_max_len"], spec["r21_vars"], spec["r21_hidden"], spec["r21_dropout"] = r.MaxLen, r.Vars, r.Hidden, r.Dropout
	})
}

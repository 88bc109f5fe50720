package model

import (
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/nn"
)

// TestFeaturewiseGradients checks the gradients of featurewise
// transformations, of sequences and of jets, with respect to the
// features, the parameters and the networks' weights.
func TestFeaturewiseGradients(t *testing.T) {
	dense := func(final nn.Activation) *FeaturewiseDense {
		return &FeaturewiseDense{Hidden: []int{3}, Activation: nn.SiLU, FinalActivation: final}
	}
	for _, c := range []struct {
		name  string
		f     Featurewise
		shape graph.Shape
	}{
		{"scale and bias of a sequence", Featurewise{Scale: dense(nn.Sigmoid), Bias: dense(nn.None)}, graph.Shape{2, 3, 4}},
		{"bias and norm of jets", Featurewise{Bias: dense(nn.None), Norm: true}, graph.Shape{2, 4}},
		{"all of a sequence", Featurewise{Scale: dense(nn.None), Bias: dense(nn.None), Norm: true}, graph.Shape{2, 3, 4}},
	} {
		t.Run(c.name, func(t *testing.T) {
			graphtest.GradCheck{
				Vars: []graphtest.Var{{Name: "x", Shape: c.shape}, {Name: "p", Shape: graph.Shape{2, 2}}},
				Build: func(g *graph.Graph, v, _ []*graph.Tensor) *graph.Tensor {
					return applyFeaturewise(g, "fw", &c.f, v[1], v[0])
				},
			}.Run(t)
		})
	}
}

package model_test

import (
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/nn"
	"github.com/salt-ort/salt-ort/graph/optim"
	"github.com/salt-ort/salt-ort/internal/onnxcheck"
)

// TestLegacyMixedPrecisionGraphs builds the float16 and bfloat16
// training-step and evaluation graphs of GN2 with Salt's legacy encoder
// (dropout in the dense blocks and on the scores) and checks them with
// the reference ONNX checker where it is installed: ONNX Runtime runs them
// on CUDA only.
func TestLegacyMixedPrecisionGraphs(t *testing.T) {
	s := model.GN2()
	s.Encoder = nn.EncoderConfig{Kind: nn.LegacyKind, Layers: 2, Heads: 8, Hidden: []int{512}, Activation: nn.ReLU, OutDim: 128,
		Dropout: 0.1, AttnDropout: 0.1}
	for _, dt := range []graph.DType{graph.Float16, graph.BFloat16} {
		t.Run(dt.String(), func(t *testing.T) {
			g, _, err := s.TrainStep(model.TrainOptions{Batch: 4, Compute: dt, Predictions: true,
				Step: optim.Step{Optimizer: optim.DefaultAdamW(), ClipNorm: 1}})
			if err != nil {
				t.Fatal(err)
			}
			ev, _, err := s.EvalWith(model.EvalOptions{Batch: 4, Compute: dt})
			if err != nil {
				t.Fatal(err)
			}
			for _, gr := range []*graph.Graph{g, ev} {
				data, err := gr.Marshal(graph.ModelOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if onnxcheck.Available() {
					if err := onnxcheck.Check(data); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

package model

import (
	"fmt"
	"slices"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/nn"
)

// ObjectRegression is Salt's RegressionTask on the mask decoder's objects
// (input_name objects): an MLP on each object's embedding regresses the
// matched truth object's properties, scaled for the loss and the matching
// cost (Salt's RegressionTargetScaler) and scaled back in the outputs.
type ObjectRegression struct {
	// Name is the task's name, which names its loss term (Salt's
	// losses[task.name]).
	Name string
	// Targets are the truth objects' fields regressed, in output order.
	Targets []string
	// Hidden and Activation are the head's hidden layer sizes and their
	// activation.
	Hidden     []int
	Activation nn.Activation
	// Weight is the task's weight; the loss term is the L1 loss × Weight ×
	// the loss weight Regression (Salt's task.weight and
	// loss_weights.regression).
	Weight float64
	// Scaling scales each target (one per target, or nil for none); only
	// the scaler's operations (log, exp, linear) and none are allowed.
	Scaling []TargetScaling
}

// The object regression's graph input and output.
const (
	// ObjectRegressionInput is the float32 [B, M, R] raw regression
	// targets of each truth slot, in the order of the valid slots of
	// ObjectClassInput; entries of empty slots are ignored (0 by
	// convention).
	ObjectRegressionInput = "objects/regression_targets"
	// ObjectRegressionOutput is the float32 [B, M, R] regressed properties
	// of each predicted object, in the targets' units (scaled back).
	ObjectRegressionOutput = "objects/regression"
)

// task is the regression as a jet task, for the scaling helpers.
func (r *ObjectRegression) task() Task {
	return Task{Name: r.Name, Kind: JetRegression, Targets: r.Targets, Scaling: r.Scaling}
}

// validate checks the regression against the object loss term names.
func (r *ObjectRegression) validate(model string) error {
	switch {
	case r.Name == "" || slices.Contains([]string{ObjectClassCE, ObjectMaskCE, ObjectDice, ObjectFocal}, r.Name):
		return fmt.Errorf("model %s: object regression: name %q must be given and differ from the mask decoder's loss terms", model, r.Name)
	case len(r.Targets) == 0:
		return fmt.Errorf("model %s: object regression %s: no targets", model, r.Name)
	case r.Scaling != nil && len(r.Scaling) != len(r.Targets):
		return fmt.Errorf("model %s: object regression %s: %d scalings for %d targets", model, r.Name, len(r.Scaling), len(r.Targets))
	case !(r.Weight >= 0):
		return fmt.Errorf("model %s: object regression %s: weight %g must be ≥ 0", model, r.Name, r.Weight)
	}
	for k, sc := range r.Scaling {
		if !slices.Contains([]ScalingOp{NoScaling, LogScaling, ExpScaling, LinearScaling}, sc.Op) {
			return fmt.Errorf("model %s: object regression %s: target %s: scaling %q is not one of Salt's scaler operations", model, r.Name, r.Targets[k], sc.Op)
		}
	}
	return nil
}

// regressObjects is the object regression's head on the decoder's object
// embeddings: the scaled predictions [B, M, R] in float32.
func (s *Spec) regressObjects(g *graph.Graph, embed *graph.Tensor) *graph.Tensor {
	r := s.Objects.Regression
	defer g.Scope("objects/" + r.Name)()
	out := nn.MLP(g, "head", embed, append(slices.Clone(r.Hidden), len(r.Targets)), r.Activation, false)
	return castTo32(g, out)
}

// castTo32 returns x in float32.
func castTo32(g *graph.Graph, x *graph.Tensor) *graph.Tensor {
	if x.DType() == graph.Float32 {
		return x
	}
	return g.Cast(x, graph.Float32)
}

// scaledObjectTargets reads ObjectRegressionInput and scales it as the
// regression says; entries of slots that are not valid (class int64
// [B, M] of no object) are 0.
func (s *Spec) scaledObjectTargets(g *graph.Graph, raw, class *graph.Tensor) *graph.Tensor {
	r := s.Objects.Regression
	defer g.Scope("objects/" + r.Name + "/targets")()
	valid := g.Less(class, g.Scalar(graph.Int64, float64(s.Objects.NumClasses)))
	valid = g.Expand(g.Unsqueeze(valid, 2), raw.Shape())
	scaled := s.scale(g, r.task(), raw, nil)
	return g.Where(valid, scaled, g.ScalarLike(scaled, 0))
}

// objectRegressionCost is the regression term of the matching cost, ×
// the matcher's regression weight (nil without one).
func (s *Spec) objectRegressionCost(g *graph.Graph, pred, target *graph.Tensor) *graph.Tensor {
	w := s.Objects.MatcherWeights.Regression
	if pred == nil || !(w > 0) {
		return nil
	}
	defer g.Scope("objects/cost/" + s.Objects.Regression.Name)()
	return g.Mul(nn.MaskFormerRegressionCost(g, pred, target), g.Scalar(graph.Float32, w))
}

// objectRegressionLoss is the regression loss term, × the task weight and
// the loss weight regression.
func (s *Spec) objectRegressionLoss(g *graph.Graph, pred, target, class, a, present *graph.Tensor) *graph.Tensor {
	r := s.Objects.Regression
	defer g.Scope("objects/loss/" + r.Name)()
	valid := g.Mul(g.Cast(g.Less(class, g.Scalar(graph.Int64, float64(s.Objects.NumClasses))), graph.Float32), g.Unsqueeze(present, 1))
	l := nn.MaskFormerRegressionLoss(g, pred, target, a, valid)
	return g.Mul(l, g.Scalar(graph.Float32, r.Weight*s.Objects.LossWeights.Regression))
}

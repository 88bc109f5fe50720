package model

import (
	"fmt"
	"strings"

	"github.com/salt-ort/salt-ort/graph"
)

// ObjectIndexNone is the ObjectIndex of a constituent that no object
// claims: -1, the value the one-jet interface's other int8 outputs use for
// none, and the least ATLAS's loader check accepts (Salt's exporter gives
// -2, its indices_from_mask's value for none, in a model that has no
// padding to tell apart).
const ObjectIndexNone = -1

// objectDeployOutputs are the object outputs of the deployment interface
// that opts ask for: with opts.ObjectName (Salt's exporter's
// --object_name), <ObjectName>Index, the object of each constituent of
// the mask decoder's group (the model name is prefixed later).
func (s *Spec) objectDeployOutputs(opts DeployOptions) ([]DeployOutput, error) {
	if opts.ObjectName == "" {
		return nil, nil
	}
	switch {
	case s.Objects == nil:
		return nil, fmt.Errorf("model %s: object name %q: the model has no mask decoder (model.mask_decoder) whose objects could be exported; export without an object name", s.Name, opts.ObjectName)
	case strings.ContainsAny(opts.ObjectName, " \t\n/"):
		return nil, fmt.Errorf("model %s: object name %q has white space or '/'", s.Name, opts.ObjectName)
	}
	return []DeployOutput{{Name: opts.ObjectName + "Index", Kind: ObjectIndex, Task: ObjectTask, Label: opts.ObjectName, Group: s.Objects.Input}}, nil
}

// ObjectTask is the task name the object outputs of the deployment
// interface carry: the mask decoder's objects.
const ObjectTask = "objects"

// deployObjectIndex builds the ObjectIndex output of the one-jet graph
// from the mask decoder's predictions of the jet (class probabilities
// [M, C], the last class no object, and mask logits [M, n]), as
// ObjectIndices computes it.
func deployObjectIndex(g *graph.Graph, probs, logits *graph.Tensor) *graph.Tensor {
	defer g.Scope("objects/deploy")()
	c := probs.Dim(1)
	m := probs.Dim(0)
	zero, half := g.Scalar(graph.Float32, 0), g.Scalar(graph.Float32, 0.5)
	keep := g.LessOrEqual(g.Slice(probs, []int{1}, []int64{c - 1}, []int64{c}), half) // [M, 1]
	claim := g.And(keep, g.Greater(logits, zero))                                     // [M, n]
	score := g.Where(claim, logits, g.Scalar(graph.Float32, -1))
	best := g.ArgMax(score, 0, false)                                // [n], the first largest
	assigned := g.Greater(g.ReduceMax(score, []int{0}, false), zero) // [n]
	// The smallest object claiming a constituent becomes 0; a sentinel
	// of M keeps the minimum defined for a jet without constituents.
	sentinel := g.Const("objects/deploy/sentinel", graph.Int64, graph.Shape{1}, []float64{float64(m)})
	claimed := g.Concat(0, g.Where(assigned, best, g.Scalar(graph.Int64, float64(m))), sentinel)
	first := g.Neg(g.ReduceMax(g.Neg(claimed), []int{0}, false))
	idx := g.Where(assigned, g.Sub(best, first), g.Scalar(graph.Int64, ObjectIndexNone))
	return g.Cast(idx, graph.Int8)
}

// ObjectIndices computes the ObjectIndex output of one jet, as the
// deployment graph does, from the mask decoder's class probabilities
// probs [objects, classes] (the last class no object) and mask logits
// [objects, t] of its first n constituents, into out[:n]:
//   - an object whose probability of no object exceeds ½ claims no
//     constituent (Salt's get_maskformer_outputs);
//   - a constituent belongs to the object claiming it (mask probability
//     above ½, logit above 0) with the largest logit, the first on ties;
//     ObjectIndexNone where no object claims it;
//   - the indices are shifted so that the smallest object claiming a
//     constituent of the jet is 0, as Salt's indices_from_mask does.
func ObjectIndices(probs, logits []float32, objects, t, n int, out []int) {
	c := len(probs) / objects
	first := objects
	for i := 0; i < n; i++ {
		best := -1
		for m := 0; m < objects; m++ {
			x := logits[m*t+i]
			if probs[m*c+c-1] <= 0.5 && x > 0 && (best < 0 || x > logits[best*t+i]) {
				best = m
			}
		}
		out[i] = best
		if best >= 0 {
			first = min(first, best)
		}
	}
	for i := 0; i < n; i++ {
		if out[i] < 0 {
			out[i] = ObjectIndexNone
		} else {
			out[i] -= first
		}
	}
}

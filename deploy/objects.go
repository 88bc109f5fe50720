package deploy

import (
	"fmt"

	"github.com/salt-ort/salt-ort/graph/model"
)

// deriveObjectIndex fills v's expected ObjectIndex output o from the
// evaluation graph's object predictions (model.ObjectClassProbsOutput,
// model.ObjectMasksOutput), jet by jet with model.ObjectIndices; -1
// beyond each jet's valid constituents.
func deriveObjectIndex(spec model.Spec, o model.DeployOutput, v *Vectors, preds map[string][]float32) error {
	if spec.Objects == nil {
		return fmt.Errorf("deploy: output %s: the model has no mask decoder", o.Name)
	}
	g := v.group(o.Group)
	if g == nil {
		return fmt.Errorf("deploy: output %s: no constituent group %s", o.Name, o.Group)
	}
	nobj, c, t := spec.Objects.Decoder.Objects, spec.Objects.NumClasses+1, g.MaxLen
	probs, logits := preds[model.ObjectClassProbsOutput], preds[model.ObjectMasksOutput]
	if len(probs) < v.Jets*nobj*c || len(logits) < v.Jets*nobj*t {
		return fmt.Errorf("deploy: output %s: %d class probabilities and %d mask logits of the objects for %d jets, want %d and %d",
			o.Name, len(probs), len(logits), v.Jets, v.Jets*nobj*c, v.Jets*nobj*t)
	}
	out := make([]float32, v.Jets*t)
	idx := make([]int, t)
	for j := 0; j < v.Jets; j++ {
		for i := range out[j*t : (j+1)*t] {
			out[j*t+i] = -1
		}
		n := g.N[j]
		model.ObjectIndices(probs[j*nobj*c:(j+1)*nobj*c], logits[j*nobj*t:(j+1)*nobj*t], nobj, t, n, idx)
		for i := 0; i < n; i++ {
			out[j*t+i] = float32(idx[i])
		}
	}
	v.Expected[o.Name] = out
	return nil
}

// objectMeaning says in words what an ObjectIndex output holds.
func objectMeaning(o model.DeployOutput) string {
	return fmt.Sprintf("%s of each of the %s from the mask decoder: among the objects with a probability of no object at most 0.5, the one whose mask claims it (mask probability above 0.5) with the largest mask logit, numbered so that the first object claiming one of the jet's %s is 0; -1 where no object claims it", o.Label, o.Group, o.Group)
}

// deriveObjectLeading fills v's expected ObjectLeading output o from the
// evaluation graph's object predictions (model.ObjectClassProbsOutput,
// model.ObjectRegressionOutput), jet by jet with model.LeadingObject.
func deriveObjectLeading(spec model.Spec, o model.DeployOutput, v *Vectors, preds map[string][]float32) error {
	if spec.Objects == nil || spec.Objects.Regression == nil {
		return fmt.Errorf("deploy: output %s: the model has no object regression", o.Name)
	}
	nobj, c, nr := spec.Objects.Decoder.Objects, spec.Objects.NumClasses+1, len(spec.Objects.Regression.Targets)
	probs, reg := preds[model.ObjectClassProbsOutput], preds[model.ObjectRegressionOutput]
	if len(probs) < v.Jets*nobj*c || len(reg) < v.Jets*nobj*nr {
		return fmt.Errorf("deploy: output %s: %d class probabilities and %d regressed values of the objects for %d jets, want %d and %d",
			o.Name, len(probs), len(reg), v.Jets, v.Jets*nobj*c, v.Jets*nobj*nr)
	}
	out := make([]float32, v.Jets)
	lead := make([]float32, nr)
	for j := range v.Jets {
		model.LeadingObject(probs[j*nobj*c:(j+1)*nobj*c], reg[j*nobj*nr:(j+1)*nobj*nr], nobj, lead)
		out[j] = lead[o.Index]
	}
	v.Expected[o.Name] = out
	return nil
}

// leadingMeaning says in words what an ObjectLeading output holds.
func leadingMeaning(o model.DeployOutput) string {
	return fmt.Sprintf("predicted %s of the leading object from the mask decoder: among the objects with a probability of no object at most 0.5, the one with the largest first regressed target; -1 where there is none", o.Label)
}

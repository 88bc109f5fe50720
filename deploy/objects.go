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

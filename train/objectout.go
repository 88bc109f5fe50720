package train

import (
	"fmt"

	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/loader"
)

// objectPredictionNames are the evaluation graph's object outputs handed
// to EvalOptions.Each with the tasks' predictions: the class
// probabilities [jet, object, class] and the mask logits [jet, object,
// constituent] (none without a mask decoder).
func (e *evaluator) objectPredictionNames() []string {
	if e.spec.Objects == nil {
		return nil
	}
	return []string{model.ObjectClassProbsOutput, model.ObjectMasksOutput}
}

// ObjectTargets writes the truth objects of a loaded batch b of a model
// with a mask decoder (spec.Objects) into class ([jet, slot], the mapped
// class index; no object, spec.Objects.NumClasses, for empty slots) and
// masks ([jet, slot, constituent]: whether the constituent belongs to the
// slot's object), as the evaluation graph reads them: the valid slots
// first, in file order. A batch loaded without the truth objects (the
// file lacks them) gives every slot no object. class must hold
// len(b.JetMask)·num_objects values, masks that times the group's
// constituent slots.
func ObjectTargets(spec model.Spec, b *loader.Batch, class []int64, masks []bool) error {
	m := newObjectEval(spec)
	if m == nil {
		return fmt.Errorf("train: the model has no mask decoder (model.mask_decoder): it has no truth objects")
	}
	jets, nobj := len(b.JetMask), m.objects.Decoder.Objects
	if len(class) != jets*nobj || len(masks) != jets*nobj*m.maxLen {
		return fmt.Errorf("train: truth objects of %d jets need %d classes and %d mask entries, got %d and %d",
			jets, jets*nobj, jets*nobj*m.maxLen, len(class), len(masks))
	}
	return m.fillTruth(class, masks, b)
}

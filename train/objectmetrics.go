package train

import (
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/metrics"
)

// addObjectCounts adds the first n jets of an evaluated batch in bind to
// cnt: the predictions before matching (model.ObjectClassProbsOutput,
// model.ObjectMasksOutput), the truth objects and the matching m.perm.
func (m *objectMatcher) addObjectCounts(bind tensors, cnt *metrics.ObjectCounts, n int) error {
	b := metrics.ObjectBatch{Jets: n, Objects: m.objects.Decoder.Objects, Classes: m.objects.NumClasses + 1,
		Constituents: m.maxLen, Perm: m.perm}
	var err error
	if b.Probs, err = bind.Float32(model.ObjectClassProbsOutput); err != nil {
		return err
	}
	if b.Logits, err = bind.Float32(model.ObjectMasksOutput); err != nil {
		return err
	}
	if b.Class, err = bind.Int64(model.ObjectClassInput); err != nil {
		return err
	}
	if b.Target, err = bind.Bool(model.ObjectMaskInput); err != nil {
		return err
	}
	if b.Valid, err = bind.Bool(model.ValidInput(m.objects.Input)); err != nil {
		return err
	}
	return cnt.Add(b)
}

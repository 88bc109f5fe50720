package run

import (
	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/loader"
)

// objectRegressionLabel is the loader label of one regression target of
// the truth objects (a field of data.mf_config.object.name).
func objectRegressionLabel(target string) string { return ObjectTruth + "/regression/" + target }

// objectRegressionLabels are the loader labels of the objects' regression
// targets ([model.mask_decoder.regression]); none without one.
func objectRegressionLabels(c *config.Config) []loader.Label {
	r := c.Model.MaskDecoder.Regression
	if r == nil {
		return nil
	}
	ds := c.Data.DatasetOf(c.Data.MFConfig.Object.Name)
	out := make([]loader.Label, len(r.Targets))
	for i, t := range r.Targets {
		out[i] = loader.Label{Name: objectRegressionLabel(t), Dataset: ds, Field: t, Kind: loader.FloatLabel}
	}
	return out
}

// fillRegression writes batch b's regression targets into dst ([jet, slot,
// target], model.ObjectRegressionInput), in the slots eachTruthSlot gives
// the valid truth objects; the other slots get 0. A batch without the
// truth objects gives 0 everywhere.
func (m *ObjectMatcher) fillRegression(dst []float32, b *loader.Batch) {
	clear(dst)
	r := m.objects.Regression
	nobj, nt := m.objects.Decoder.Objects, len(r.Targets)
	src := make([][]float32, nt)
	for i, t := range r.Targets {
		src[i] = b.Targets[objectRegressionLabel(t)]
	}
	m.eachTruthSlot(b, len(dst)/(nobj*nt), func(j, s, k int) {
		for i, v := range src {
			if v != nil {
				dst[(j*nobj+k)*nt+i] = v[s]
			}
		}
	})
}

// fillObjectRegression fills the step's model.ObjectRegressionInput from
// batch b where the model regresses the objects.
func (m *ObjectMatcher) fillObjectRegression(bind Tensors, b *loader.Batch) error {
	if m.objects.Regression == nil {
		return nil
	}
	dst, err := bind.Float32(model.ObjectRegressionInput)
	if err != nil {
		return err
	}
	m.fillRegression(dst, b)
	return nil
}

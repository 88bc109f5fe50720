package evaluate

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/loader"
	"github.com/salt-ort/salt-ort/metrics"
	"github.com/salt-ort/salt-ort/train"
)

// ObjectsDataset is the dataset of the prediction file that holds a mask
// decoder's objects, one row per object slot of each jet, as Salt's
// prediction writer names it.
const ObjectsDataset = "objects"

// ObjectClassTargetField is the field of ObjectsDataset with the truth
// class (the mapped index of data.mf_config.object.object_classes) of each
// truth slot, the valid slots first; the null class for empty slots and
// files without truth objects.
const ObjectClassTargetField = "class_label"

// Values of MaskIndexField for a constituent that no object claims, and
// for a padding slot.
const (
	MaskIndexNone    = -2
	MaskIndexPadding = -1
)

// ObjectClassField is the field of ObjectsDataset with an object's
// probability of class (a key of data.mf_config.object.object_classes,
// "null" included): <model>_p<class>, as Salt's writer names it.
func ObjectClassField(spec *model.Spec, class string) string {
	return spec.Name + "_p" + class
}

// MaskIndexField is the field added to the constituent group of the
// objects' masks (data.mf_config.constituent.name): the object slot each
// constituent is assigned to, <model>_MaskIndex as in Salt's writer.
func MaskIndexField(spec *model.Spec) string { return spec.Name + "_MaskIndex" }

// objectOut writes a mask decoder's objects into the prediction file:
// each object's class probabilities and each truth slot's class in
// ObjectsDataset, and each constituent's object in MaskIndexField of the
// constituent group's table.
type objectOut struct {
	objects *model.Objects
	maxLen  int
	classes []string // class names by mapped index, null last
	layout  *loader.RowLayout
	buf     []byte
	table   *loader.Table // nil when not writing
	// group is the constituent table and index its MaskIndexField.
	group *outTable
	index int
	// class and masks are the batch's truth objects.
	class []int64
	masks []bool
}

// newObjectOut lays out the objects' outputs of a model with a mask
// decoder (nil without one).
func newObjectOut(cfg *config.Config, spec *model.Spec) (*objectOut, error) {
	if spec.Objects == nil || cfg.Data.MFConfig == nil {
		return nil, nil
	}
	o := &objectOut{objects: spec.Objects, classes: make([]string, spec.Objects.NumClasses+1)}
	for _, in := range spec.Inputs {
		if in.Name == spec.Objects.Input {
			o.maxLen = in.MaxLen
		}
	}
	for name, c := range cfg.Data.MFConfig.Object.ObjectClasses {
		if c.Mapped < 0 || c.Mapped >= len(o.classes) {
			return nil, fmt.Errorf("evaluate: data.mf_config.object.object_classes.%s: mapped = %d is not a class index of the model's %d object classes", name, c.Mapped, len(o.classes))
		}
		o.classes[c.Mapped] = name
	}
	var fields []loader.Field
	for _, c := range o.classes {
		fields = append(fields, loader.Field{Name: ObjectClassField(spec, c), Type: loader.Float32})
	}
	fields = append(fields, loader.Field{Name: ObjectClassTargetField, Type: loader.Int64})
	var err error
	if o.layout, err = loader.NewRowLayout(fields...); err != nil {
		return nil, fmt.Errorf("evaluate: the fields of dataset %q: %w", ObjectsDataset, err)
	}
	bs, nobj := cfg.Data.BatchSize, spec.Objects.Decoder.Objects
	o.buf = make([]byte, bs*nobj*o.layout.Size)
	o.class = make([]int64, bs*nobj)
	o.masks = make([]bool, bs*nobj*o.maxLen)
	return o, nil
}

// groupFields appends MaskIndexField to the fields of the constituent
// table t when the objects' masks are over its group, and notes where.
func (o *objectOut) groupFields(spec *model.Spec, t *outTable, fields []loader.Field) []loader.Field {
	if !o.wantsGroup(t.name) {
		return fields
	}
	o.group, o.index = t, len(fields)
	return append(fields, loader.Field{Name: MaskIndexField(spec), Type: loader.Int64})
}

// wantsGroup says whether the constituent group named group gets a table
// of the prediction file for the objects' sake.
func (o *objectOut) wantsGroup(group string) bool {
	return o != nil && group == o.objects.Input
}

// create creates ObjectsDataset for jets jets.
func (o *objectOut) create(w *loader.Writer, jets int) error {
	if o == nil {
		return nil
	}
	var err error
	o.table, err = w.CreateTable(ObjectsDataset, o.layout, []int{jets, o.objects.Decoder.Objects},
		loader.TableOptions{ChunkRows: min(max(jets, 1), 1024), Deflate: 4})
	return err
}

// batch fills the objects of the first k jets of batch b, whose
// constituent table group has been read, from the predictions, and writes
// ObjectsDataset's rows (from row start) when writing.
func (o *objectOut) batch(spec model.Spec, b *loader.Batch, preds map[string][]float32, k, start int) error {
	if o == nil {
		return nil
	}
	nobj, nc, t := o.objects.Decoder.Objects, len(o.classes), o.maxLen
	probs, err := output(preds, model.ObjectClassProbsOutput, k*nobj*nc)
	if err != nil {
		return err
	}
	logits, err := output(preds, model.ObjectMasksOutput, k*nobj*t)
	if err != nil {
		return err
	}
	bs := len(b.JetMask)
	if err := train.ObjectTargets(spec, b, o.class[:bs*nobj], o.masks[:bs*nobj*t]); err != nil {
		return err
	}
	l := o.layout
	buf := o.buf[:k*nobj*l.Size]
	for r := range k * nobj {
		row := buf[r*l.Size:]
		for c := range nc {
			l.Put(row, c, float64(probs[r*nc+c]))
		}
		l.Put(row, nc, float64(o.class[r]))
	}
	if o.group != nil {
		valid := b.Inputs[o.group.name].Valid
		gl := o.group.layout
		for j := range k {
			for i := range t {
				row := o.group.buf[(j*t+i)*gl.Size:]
				gl.Put(row, o.index, float64(maskIndex(logits[j*nobj*t:(j+1)*nobj*t], nobj, t, i, valid[j*t+i])))
			}
		}
	}
	if o.table == nil {
		return nil
	}
	return o.table.WriteRows(start, buf)
}

// maskIndex is the object slot constituent i of a jet is assigned to,
// from the jet's mask logits [object, constituent]: among the objects
// whose mask probability exceeds ½ (logit above 0), the one with the
// largest logit; MaskIndexNone when there is none, MaskIndexPadding for a
// padding slot.
func maskIndex(logits []float32, nobj, t, i int, valid bool) int {
	if !valid {
		return MaskIndexPadding
	}
	best := MaskIndexNone
	for m := range nobj {
		if x := logits[m*t+i]; x > 0 && (best < 0 || x > logits[best*t+i]) {
			best = m
		}
	}
	return best
}

// ObjectPerformance is the performance of a mask decoder's objects on a
// test file with truth objects: the MaskFormer loss terms (weighted by
// loss_weights, as Salt logs them) averaged over the jets, and Salt's
// MaskFormer metrics of the matched objects (metrics.ObjectCounts.Metrics,
// by the names of metrics.ObjectMetricNames).
type ObjectPerformance struct {
	Loss    map[string]Float `json:"loss"`
	Metrics map[string]Float `json:"metrics"`
}

// collectObjects keeps the objects' losses and metrics of an evaluation
// res, unless the file has no truth objects.
func (p *predictor) collectObjects(res *train.Result) {
	if p.objects == nil || p.unlabelled[train.ObjectTruth] || res.ObjectMetrics == nil {
		return
	}
	perf := &ObjectPerformance{Loss: map[string]Float{}, Metrics: map[string]Float{}}
	for k, v := range res.ObjectLoss {
		perf.Loss[k] = Float(v)
	}
	for k, v := range res.ObjectMetrics {
		perf.Metrics[k] = Float(v)
	}
	p.coll.objects = perf
}

// writeObjects prints the objects' performance.
func writeObjects(w io.Writer, o *ObjectPerformance) error {
	if o == nil {
		return nil
	}
	terms := slices.Sorted(maps.Keys(o.Loss))
	var loss []string
	for _, t := range terms {
		loss = append(loss, t+" "+fmtFloat(o.Loss[t]))
	}
	if _, err := fmt.Fprintf(w, "objects: loss %s\n", strings.Join(loss, ", ")); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, name := range metrics.ObjectMetricNames {
		fmt.Fprintf(tw, "  %s\t%s\n", name, fmtFloat(o.Metrics[name]))
	}
	return tw.Flush()
}

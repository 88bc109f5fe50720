package run

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/optim"
	"github.com/salt-ort/salt-ort/loader"
	"github.com/salt-ort/salt-ort/matching"
	"github.com/salt-ort/salt-ort/metrics"
	"github.com/salt-ort/salt-ort/runtime"
)

// ObjectTruth names the truth objects of a mask decoder where the names
// of tasks without truth go (EvalOptions.Unlabelled): a file without them
// is evaluated with every truth slot empty.
const ObjectTruth = "objects"

// The loader label names of the truth objects of a mask decoder; their
// prefix is ObjectTruth, so that WithoutLabels drops them with it.
const (
	objectClassLabel = ObjectTruth + "/class"           // mapped class index per truth slot
	objectIDLabel    = ObjectTruth + "/id"              // the slot's id (barcode), -1 for none
	objectOfLabel    = ObjectTruth + "/constituent_ids" // each constituent's object id, -1 for none
)

// objectLabels are the loader labels of data.mf_config: the truth objects'
// classes (mapped as object_classes says) and ids, and the constituents'
// object ids.
func objectLabels(c *config.Config) []loader.Label {
	mf := c.Data.MFConfig
	if c.Model.MaskDecoder == nil || mf == nil {
		return nil
	}
	classes := map[int64]int{}
	for _, oc := range mf.Object.ObjectClasses {
		raw := -1
		if oc.Raw != nil {
			raw = *oc.Raw
		}
		classes[int64(raw)] = oc.Mapped
	}
	obj := c.Data.DatasetOf(mf.Object.Name)
	return append(objectRegressionLabels(c), []loader.Label{
		{Name: objectClassLabel, Dataset: obj, Field: mf.Object.ClassLabel, Kind: loader.ClassLabel, Map: classes},
		{Name: objectIDLabel, Dataset: obj, Field: mf.Object.IDLabel, Kind: loader.IndexLabel},
		{Name: objectOfLabel, Dataset: c.Data.DatasetOf(mf.Constituent.Name), Field: mf.Constituent.IDLabel, Kind: loader.IndexLabel},
	}...)
}

// ObjectMatcher matches a mask decoder's objects to the truth objects
// before each training step: it fills the truth objects into the step's
// inputs, runs the cost graph (model.Spec.ObjectCost) on the step's
// inputs and parameters, solves the assignment of every jet
// (matching.Solver.MatchObjects) and writes it into the step's
// model.ObjectAssignmentInput; with the auxiliary losses, likewise for
// each decoder layer's cost and assignment (model.ObjectMatchings). It also keeps the MaskFormer loss terms
// of the steps for the log and the summary.
//
// An evaluation graph computes the cost itself (model.ObjectCostOutput):
// there the matcher has no cost graph and the graph runs twice a batch
// (prepareEval).
type ObjectMatcher struct {
	objects *model.Objects
	maxLen  int // constituent slots per jet
	// costG and cost are the training step's cost graph and session (nil
	// for an evaluation graph).
	costG  *graph.Graph
	cost   *Session
	solver matching.Solver
	params []float32
	valid  []int
	perm   []int64
	// terms are the loss terms' names; sums their totals over the epoch's
	// steps so far, steps their number, and matchTime the time spent
	// matching (the cost graph and the solver).
	terms     []string
	sums      []float64
	steps     int
	matchTime time.Duration
	solveTime time.Duration
}

// NewObjectMatcher opens the cost graph of spec's training step with
// options opts (nil without a mask decoder).
func NewObjectMatcher(p *Placement, spec model.Spec, opts model.TrainOptions, step *optim.Layout) (*ObjectMatcher, error) {
	m := newObjectEval(spec)
	if m == nil {
		return nil, nil
	}
	g, layout, err := spec.ObjectCost(opts)
	if err != nil {
		return nil, err
	}
	if !slices.EqualFunc(layout, step.Params, func(a, b graph.ParamSlot) bool { return a.Name == b.Name && a.Offset == b.Offset && a.Size == b.Size }) {
		return nil, fmt.Errorf("run: the matching cost graph lays its parameters out unlike the training step (a bug: report it)")
	}
	if m.cost, err = p.Open(g, nil, false); err != nil {
		return nil, fmt.Errorf("run: the matching cost graph: %w", err)
	}
	m.costG = g
	return m, nil
}

// newObjectEval returns the matcher of spec's evaluation graph (nil
// without a mask decoder).
func newObjectEval(spec model.Spec) *ObjectMatcher {
	if spec.Objects == nil {
		return nil
	}
	m := &ObjectMatcher{objects: spec.Objects, terms: spec.Objects.ObjectLossTerms()}
	for _, in := range spec.Inputs {
		if in.Name == spec.Objects.Input {
			m.maxLen = in.MaxLen
		}
	}
	m.sums = make([]float64, len(m.terms))
	return m
}

// Close releases the cost graph's session.
func (m *ObjectMatcher) Close() error {
	if m == nil || m.cost == nil {
		return nil
	}
	return m.cost.Close()
}

// Fill writes batch b's truth objects into the step's inputs: each slot's
// class (no object for slots without a class, and for padding rows), the
// valid slots first in file order, and each valid slot's target mask over
// the constituents whose object id is the slot's.
func (m *ObjectMatcher) Fill(bind Tensors, b *loader.Batch) error {
	class, err := bind.Int64(model.ObjectClassInput)
	if err != nil {
		return err
	}
	masks, err := bind.Bool(model.ObjectMaskInput)
	if err != nil {
		return err
	}
	if err := m.fillTruth(class, masks, b); err != nil {
		return err
	}
	return m.fillObjectRegression(bind, b)
}

// fillTruth writes batch b's truth objects into class ([jet, slot]) and
// masks ([jet, slot, constituent]), as Fill describes.
func (m *ObjectMatcher) fillTruth(class []int64, masks []bool, b *loader.Batch) error {
	nobj, nc, t := m.objects.Decoder.Objects, m.objects.NumClasses, m.maxLen
	jets := len(class) / nobj
	srcClass, srcID, srcOf := b.Labels[objectClassLabel], b.Labels[objectIDLabel], b.Labels[objectOfLabel]
	if slots := truthSlots(b, jets); slots > nobj {
		return fmt.Errorf("run: the truth objects (data.mf_config.object.name) have %d slots per jet, more than model.mask_decoder.num_objects = %d: Salt's MaskFormer loss needs a query for every truth slot; set num_objects = %d",
			slots, nobj, slots)
	}
	clear(masks)
	for i := range class {
		class[i] = int64(nc) // no object, unless a truth object takes the slot
	}
	m.eachTruthSlot(b, jets, func(j, src, k int) {
		class[j*nobj+k] = srcClass[src]
		if srcID == nil || srcOf == nil || srcID[src] < 0 {
			return
		}
		row := masks[(j*nobj+k)*t : (j*nobj+k+1)*t]
		for c := range row {
			row[c] = srcOf[j*t+c] == srcID[src]
		}
	})
	return nil
}

// truthSlots is the number of truth-object slots per jet in batch b of
// jets jets (0 without the truth objects).
func truthSlots(b *loader.Batch, jets int) int {
	if n := len(b.Labels[objectClassLabel]); jets > 0 && n > 0 {
		return n / jets
	}
	return 0
}

// eachTruthSlot calls place for every valid truth object of batch b (of
// jets jets): j is its jet, src its index in the batch's truth arrays
// ([jet, slot], flattened) and k the slot it takes, the jet's valid
// objects first in file order, at most model.mask_decoder.num_objects of
// them. Every input made from the truth objects (classes, masks,
// regression targets) is placed by it, so that they stay aligned.
func (m *ObjectMatcher) eachTruthSlot(b *loader.Batch, jets int, place func(j, src, k int)) {
	srcClass := b.Labels[objectClassLabel]
	slots := truthSlots(b, jets)
	nobj, nc := m.objects.Decoder.Objects, int64(m.objects.NumClasses)
	for j := range jets {
		k := 0
		for s := 0; s < slots && k < nobj; s++ {
			if cl := srcClass[j*slots+s]; cl < 0 || cl >= nc {
				continue
			}
			place(j, j*slots+s, k)
			k++
		}
	}
}

// Match computes the matching cost of the batch in bind (the training
// step's inputs, filled, with the parameters the step reads), solves the
// assignment of every jet and writes it into bind's
// model.ObjectAssignmentInput.
func (m *ObjectMatcher) Match(bind Tensors) error {
	start := time.Now()
	cb := m.cost.Bind
	for _, in := range m.costG.Inputs() {
		if err := copyInput(cb, bind, in, &m.params); err != nil {
			return fmt.Errorf("run: the matching cost's input %s: %w", in.Name(), err)
		}
	}
	if err := cb.Run(); err != nil {
		return fmt.Errorf("run: the matching cost: %w", err)
	}
	err := m.assignAll(bind, cb)
	m.matchTime += time.Since(start)
	return err
}

// assignAll matches every jet on each cost that costs holds (one per
// model.Objects.ObjectMatchings: each decoder layer's with the auxiliary
// losses, then the final predictions') and writes each assignment into
// bind's input of it. The final matching is solved last, so that m.perm
// holds it for the metrics.
func (m *ObjectMatcher) assignAll(bind, costs Tensors) error {
	for _, mt := range m.objects.ObjectMatchings() {
		cost, err := costs.Float32(mt.Cost)
		if err != nil {
			return err
		}
		if err := m.assign(bind, cost, mt.Assignment); err != nil {
			return err
		}
	}
	return nil
}

// prepareEval readies an evaluation graph's binding, whose batch is
// filled in, for its losses: it fills batch b's truth objects, runs the
// graph for the matching cost, and writes the assignment matched from it.
// The caller's run then computes the losses on it.
func (m *ObjectMatcher) prepareEval(bind Tensors, b *loader.Batch) error {
	if err := m.Fill(bind, b); err != nil {
		return err
	}
	if err := bind.Run(); err != nil {
		return err
	}
	return m.assignAll(bind, bind)
}

// assign matches every jet on cost (a model.ObjectCostOutput or layer's
// cost) and writes the one-hot assignment into bind's input named input.
func (m *ObjectMatcher) assign(bind Tensors, cost []float32, input string) error {
	class, err := bind.Int64(model.ObjectClassInput)
	if err != nil {
		return err
	}
	nobj := m.objects.Decoder.Objects
	jets := len(class) / nobj
	m.valid = m.valid[:0]
	for j := 0; j < jets; j++ {
		n := 0
		for _, c := range class[j*nobj : (j+1)*nobj] {
			if c < int64(m.objects.NumClasses) {
				n++
			}
		}
		m.valid = append(m.valid, n)
	}
	if cap(m.perm) < len(class) {
		m.perm = make([]int64, len(class))
	}
	m.perm = m.perm[:len(class)]
	solve := time.Now()
	if err := m.solver.MatchObjects(cost, jets, nobj, nobj, m.valid, m.perm); err != nil {
		return fmt.Errorf("run: matching the objects: %w", err)
	}
	m.solveTime += time.Since(solve)
	a, err := bind.Float32(input)
	if err != nil {
		return err
	}
	clear(a)
	for k, n := range m.perm {
		a[k*nobj+int(n)] = 1 // row (jet, truth slot), column: its object
	}
	return nil
}

// copyInput copies the input in of the cost graph from the training
// step's binding; the parameters through buf.
func copyInput(dst, src Tensors, in *graph.Tensor, buf *[]float32) error {
	name := in.Name()
	if name == optim.ParamsInput {
		n := int(in.Shape().Size())
		if cap(*buf) < n {
			*buf = make([]float32, n)
		}
		*buf = (*buf)[:n]
		if err := src.Read(name, *buf); err != nil {
			return err
		}
		return dst.Write(name, *buf)
	}
	switch runtime.ElementType(in.DType()) {
	case runtime.TypeFloat32:
		return copySlice(dst.Float32, src.Float32, name)
	case runtime.TypeInt64:
		return copySlice(dst.Int64, src.Int64, name)
	case runtime.TypeBool:
		return copySlice(dst.Bool, src.Bool, name)
	}
	return fmt.Errorf("element type %s is not copied", in.DType())
}

// copySlice copies one named buffer of a binding into another's.
func copySlice[E any](dst, src func(string) ([]E, error), name string) error {
	d, err := dst(name)
	if err != nil {
		return err
	}
	s, err := src(name)
	if err != nil {
		return err
	}
	if len(d) != len(s) {
		return fmt.Errorf("%d values, the training step has %d", len(d), len(s))
	}
	copy(d, s)
	return nil
}

// Observe adds the loss terms of the step that has run in bind.
func (m *ObjectMatcher) Observe(bind Tensors) error {
	for i, term := range m.terms {
		v, err := bind.Scalar(model.ObjectLossOutput(term))
		if err != nil {
			return err
		}
		m.sums[i] += float64(v)
	}
	m.steps++
	return nil
}

// addEval adds the loss terms of an evaluated batch of n jets to res,
// weighted by n as the evaluator weighs the tasks' losses.
func (m *ObjectMatcher) addEval(bind Tensors, res *Result, n int) error {
	if m == nil {
		return nil
	}
	if res.ObjectLoss == nil {
		res.ObjectLoss = map[string]float64{}
	}
	for _, term := range m.terms {
		v, err := bind.Scalar(model.ObjectLossOutput(term))
		if err != nil {
			return err
		}
		res.ObjectLoss[term] += float64(v) * float64(n)
	}
	return m.addObjectCounts(bind, &res.objects, n)
}

// finishEval turns res's summed loss terms into means over its jets and
// adds them to the total loss, as Salt's validation loss sums every loss.
func (m *ObjectMatcher) finishEval(res *Result) {
	if m == nil || res.Jets == 0 {
		return
	}
	for _, term := range m.terms {
		res.ObjectLoss[term] /= float64(res.Jets)
		res.Total += res.ObjectLoss[term]
	}
	res.ObjectMetrics = res.objects.Metrics()
}

// objectValColumns are the validation table's columns of the object loss
// terms and metrics (none without a mask decoder).
func objectValColumns(objects *model.Objects) []string {
	if objects == nil {
		return nil
	}
	var cols []string
	for _, term := range objects.ObjectLossTerms() {
		cols = append(cols, "val_loss/objects/"+term)
	}
	for _, name := range metrics.ObjectMetricNames {
		cols = append(cols, "val_objects/"+name)
	}
	return cols
}

// ValRow are the validation table's entries of val, in
// objectValColumns' order.
func (m *ObjectMatcher) ValRow(val *Result) []string {
	if m == nil {
		return nil
	}
	var row []string
	for _, term := range m.terms {
		row = append(row, FormatValue(val.ObjectLoss[term]))
	}
	for _, name := range metrics.ObjectMetricNames {
		row = append(row, FormatValue(val.ObjectMetrics[name]))
	}
	return row
}

// Log writes val's object losses and metrics to the log line of a
// validation.
func (m *ObjectMatcher) Log(w io.Writer, val *Result) {
	if m == nil {
		return
	}
	for _, term := range m.terms {
		fmt.Fprintf(w, ", objects/%s %.5f", term, val.ObjectLoss[term])
	}
	fmt.Fprintf(w, ", objects found (loose) %.4f, fake %.4f, track assignment efficiency %.4f, purity %.4f",
		val.ObjectMetrics["query_loose_match_eff"], val.ObjectMetrics["query_loose_match_fake"],
		val.ObjectMetrics["assignment_eff"], val.ObjectMetrics["assignment_pur"])
}

// EndEpoch logs the epoch's mean loss terms and matching time to log,
// returns the means by loss term (nil without steps) and starts the next
// epoch's sums.
func (m *ObjectMatcher) EndEpoch(log io.Writer, epoch int) map[string]float64 {
	if m == nil || m.steps == 0 {
		return nil
	}
	means := map[string]float64{}
	line := fmt.Sprintf("epoch %d: objects", epoch+1)
	for i, term := range m.terms {
		means[term] = m.sums[i] / float64(m.steps)
		line += fmt.Sprintf(" %s %.5g", term, means[term])
		m.sums[i] = 0
	}
	fmt.Fprintf(log, "%s; matching %.2f ms per batch (of which solving %.2f ms)\n", line,
		float64(m.matchTime.Microseconds())/1000/float64(m.steps), float64(m.solveTime.Microseconds())/1000/float64(m.steps))
	m.steps, m.matchTime, m.solveTime = 0, 0, 0
	return means
}

package model

import (
	"fmt"
	"strconv"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/nn"
	"github.com/salt-ort/salt-ort/graph/optim"
)

// Objects is Salt's MaskFormer object decoder (salt.models.maskformer):
// nn.MaskDecoder on the encoded constituents of one input group, whose
// object predictions are matched to the truth objects jet by jet (in Go,
// between the forward pass and the loss: ObjectCost, then the
// ObjectAssignmentInput of the training step) and trained with Salt's
// MaskFormerLoss. The decoder is a branch of its own: the pooling and the
// task heads read the encoder's output, as in Salt.
type Objects struct {
	// Decoder configures the decoder; Decoder.Classes is NumClasses + 1.
	Decoder nn.MaskDecoderConfig
	// Input is the constituent group the objects' masks are over (Salt's
	// data.mf_config.constituent.name).
	Input string
	// Slots is the number of truth object slots per jet, which Salt's
	// loss requires to equal the number of objects (Decoder.Objects).
	// NumClasses is the number of object classes; class NumClasses is no
	// object.
	NumClasses int
	// NullClassWeight is the weight of the no-object class in the object
	// class cross-entropy (Salt's null_class_weight; the others weigh 1).
	NullClassWeight float64
	// LossWeights weigh the loss terms, MatcherWeights the matching costs
	// (Salt's loss_weights and matcher_weights).
	LossWeights, MatcherWeights nn.MaskFormerWeights
	// Regression regresses the matched truth objects' properties (Salt's
	// regression task on the objects); nil for none.
	Regression *ObjectRegression
	// AuxLoss adds the auxiliary losses per decoder layer (Salt's
	// aux_loss): the predictions of the queries entering each layer are
	// matched on their own cost (ObjectLayerCostOutput, then
	// ObjectLayerAssignmentInput) and trained with the object class and
	// mask terms and weights, named by ObjectLayerTerm.
	AuxLoss bool
}

// The MaskFormer graph inputs and outputs.
const (
	// ObjectClassInput is the int64 [B, M] class index of each truth
	// object slot: 0…NumClasses-1, NumClasses for an empty slot (and for
	// every slot of a padding row). The valid slots come first.
	ObjectClassInput = "objects/class"
	// ObjectMaskInput is the bool [B, M, T] target mask: whether
	// constituent t belongs to truth object m (Salt's build_target_masks).
	ObjectMaskInput = "objects/masks"
	// ObjectAssignmentInput is the float32 [B, M, M] one-hot assignment of
	// the training step: row m of jet b has its 1 at the predicted object
	// matched to truth slot m (matching.Solver.MatchObjects' permutation).
	ObjectAssignmentInput = "objects/assignment"
	// ObjectCostOutput is the float32 [B, M, M] matching cost of ObjectCost,
	// [jet][predicted object][truth slot] as Salt's get_batch_cost lays
	// it out; entries of empty truth slots are not meaningful.
	ObjectCostOutput = "objects/cost"
	// ObjectClassProbsOutput and ObjectMasksOutput are the object class
	// probabilities [B, M, C] and mask logits [B, M, T] (the objects'
	// predictions, before matching).
	ObjectClassProbsOutput = "objects/class_probs"
	ObjectMasksOutput      = "objects/masks_logits"
)

// ObjectLayerCostOutput names the matching cost [B, M, M] of the
// predictions of the queries entering decoder layer i (Objects.AuxLoss),
// laid out as ObjectCostOutput.
func ObjectLayerCostOutput(i int) string { return ObjectCostOutput + "_layer" + strconv.Itoa(i) }

// ObjectLayerAssignmentInput names the one-hot assignment [B, M, M] of the
// predictions of the queries entering decoder layer i, matched on
// ObjectLayerCostOutput(i); laid out as ObjectAssignmentInput.
func ObjectLayerAssignmentInput(i int) string {
	return ObjectAssignmentInput + "_layer" + strconv.Itoa(i)
}

// ObjectLayerTerm names a loss term of the predictions of the queries
// entering decoder layer i, as Salt suffixes its auxiliary losses.
func ObjectLayerTerm(term string, i int) string { return term + "_layer" + strconv.Itoa(i) }

// ObjectMatching is one matching of a training step or an evaluation:
// the cost output it is solved on and the assignment input it fills.
type ObjectMatching struct {
	Cost, Assignment string
}

// ObjectMatchings are the matchings of a step: one per decoder layer with
// the auxiliary losses, then the final predictions' (ObjectCostOutput,
// ObjectAssignmentInput), which is last.
func (o *Objects) ObjectMatchings() []ObjectMatching {
	var ms []ObjectMatching
	for i := range o.auxLayers() {
		ms = append(ms, ObjectMatching{ObjectLayerCostOutput(i), ObjectLayerAssignmentInput(i)})
	}
	return append(ms, ObjectMatching{ObjectCostOutput, ObjectAssignmentInput})
}

// auxLayers is the number of decoder layers with auxiliary losses.
func (o *Objects) auxLayers() int {
	if !o.AuxLoss {
		return 0
	}
	return o.Decoder.Layers
}

// The names of the MaskFormer loss terms, as Salt logs them.
const (
	ObjectClassCE = "object_class_ce"
	ObjectMaskCE  = "mask_ce"
	ObjectDice    = "mask_dice"
	ObjectFocal   = "mask_focal"
)

// maskTerms are the class and mask terms with a positive loss weight, in
// the order of the loss terms.
func (o *Objects) maskTerms() []string {
	terms := []string{ObjectClassCE}
	for _, t := range []struct {
		name string
		w    float64
	}{{ObjectMaskCE, o.LossWeights.MaskCE}, {ObjectDice, o.LossWeights.MaskDice}, {ObjectFocal, o.LossWeights.MaskFocal}} {
		if t.w > 0 {
			terms = append(terms, t.name)
		}
	}
	return terms
}

// ObjectLossOutput names the scalar output of one MaskFormer loss term,
// weighted by its loss weight as Salt's MaskFormerLoss returns it.
func ObjectLossOutput(term string) string { return "loss/objects/" + term }

// ObjectLossTerms are the loss terms the training step computes: the
// object class cross-entropy always (Salt's "labels" loss), the mask terms
// with a positive weight, the regression; then, with the auxiliary losses,
// the class and mask terms of each decoder layer (ObjectLayerTerm).
func (o *Objects) ObjectLossTerms() []string {
	terms := o.maskTerms()
	if o.Regression != nil {
		terms = append(terms, o.Regression.Name)
	}
	for i := range o.auxLayers() {
		for _, t := range o.maskTerms() {
			terms = append(terms, ObjectLayerTerm(t, i))
		}
	}
	return terms
}

// validateObjects checks the object decoder against the model.
func (s *Spec) validateObjects() error {
	o := s.Objects
	if o == nil {
		return nil
	}
	switch {
	case s.groupIndex(o.Input) < 0:
		return fmt.Errorf("model %s: mask decoder: its constituents %q are not an input", s.Name, o.Input)
	case o.NumClasses < 1 || o.Decoder.Classes != o.NumClasses+1:
		return fmt.Errorf("model %s: mask decoder: %d object classes and a class net of %d outputs: want num_classes + 1", s.Name, o.NumClasses, o.Decoder.Classes)
	case o.Decoder.Objects < 1 || o.Decoder.Layers < 1:
		return fmt.Errorf("model %s: mask decoder: %d objects and %d layers: want at least 1 of each", s.Name, o.Decoder.Objects, o.Decoder.Layers)
	case !(o.NullClassWeight > 0):
		return fmt.Errorf("model %s: mask decoder: the no-object class weight %g must be positive", s.Name, o.NullClassWeight)
	case s.LossMode == GeometricMean:
		return fmt.Errorf("model %s: mask decoder: the geometric loss strategy (GLS) is not combined with the MaskFormer losses; use the weighted sum", s.Name)
	}
	for _, w := range []nn.MaskFormerWeights{o.LossWeights, o.MatcherWeights} {
		if w.ClassCE < 0 || w.MaskCE < 0 || w.MaskDice < 0 || w.MaskFocal < 0 || w.Regression < 0 || w.ClassCE+w.MaskCE+w.MaskDice+w.MaskFocal+w.Regression <= 0 {
			return fmt.Errorf("model %s: mask decoder: weights %+v must be ≥ 0 with a positive sum", s.Name, w)
		}
	}
	if o.Regression == nil {
		if o.LossWeights.Regression > 0 || o.MatcherWeights.Regression > 0 {
			return fmt.Errorf("model %s: mask decoder: a regression weight without an object regression", s.Name)
		}
		return nil
	}
	return o.Regression.validate(s.Name)
}

// objectInputs are the truth objects a graph with MaskFormer losses reads.
type objectInputs struct {
	class *graph.Tensor // int64 [B, M]
	masks *graph.Tensor // float32 [B, M, T]
	// reg are the scaled regression targets [B, M, R] (nil without an
	// object regression).
	reg *graph.Tensor
}

// declareObjectInputs declares ObjectClassInput and ObjectMaskInput for a
// batch of b jets.
func (s *Spec) declareObjectInputs(g *graph.Graph, b int64) objectInputs {
	m := int64(s.Objects.Decoder.Objects)
	t := int64(s.group(s.Objects.Input).MaxLen)
	class := g.Input(ObjectClassInput, graph.Int64, graph.Shape{b, m})
	masks := g.Input(ObjectMaskInput, graph.Bool, graph.Shape{b, m, t})
	in := objectInputs{class: class, masks: g.Cast(masks, graph.Float32)}
	if r := s.Objects.Regression; r != nil {
		raw := g.Input(ObjectRegressionInput, graph.Float32, graph.Shape{b, m, int64(len(r.Targets))})
		in.reg = s.scaledObjectTargets(g, raw, class)
	}
	return in
}

// decodeObjects runs the mask decoder on the encoded constituents of its
// group and returns its predictions in float32.
// With losses, it also returns the predictions the auxiliary losses read.
func (s *Spec) decodeObjects(g *graph.Graph, f *forward, in *inputs, losses bool) nn.MaskDecoderOutput {
	i := s.groupIndex(s.Objects.Input)
	cfg := s.Objects.Decoder
	cfg.Intermediate = losses && s.Objects.AuxLoss
	out := nn.MaskDecoder(g, "mask_decoder", f.seq[i], in.valid[i], cfg)
	if s.Objects.Regression != nil && out.Embed != nil {
		f.objectReg = s.regressObjects(g, out.Embed)
	}
	if out.ClassLogits == nil || out.ClassLogits.DType() == graph.Float32 {
		return out
	}
	defer g.Scope("mask_decoder/to_float32")()
	return predsTo32(g, out)
}

// predsTo32 casts the class logits and mask logits of out and of its
// intermediate predictions to float32 and recomputes the probabilities.
func predsTo32(g *graph.Graph, out nn.MaskDecoderOutput) nn.MaskDecoderOutput {
	out.ClassLogits = g.Cast(out.ClassLogits, graph.Float32)
	out.ClassProbs = g.Softmax(out.ClassLogits, -1)
	out.Masks = g.Cast(out.Masks, graph.Float32)
	inter := make([]nn.MaskDecoderOutput, len(out.Intermediate))
	for i, p := range out.Intermediate {
		inter[i] = predsTo32(g, p)
	}
	out.Intermediate = inter
	return out
}

// objectCost is the matching cost of the decoder's predictions against
// the truth objects (nn.MaskFormerCost with the matcher weights).
func (s *Spec) objectCost(g *graph.Graph, f *forward, truth objectInputs) *graph.Tensor {
	cost := func() *graph.Tensor {
		defer g.Scope("objects/cost")()
		return nn.MaskFormerCost(g, f.objects, truth.class, truth.masks, s.Objects.NumClasses, s.Objects.MatcherWeights)
	}()
	if reg := s.objectRegressionCost(g, f.objectReg, truth.reg); reg != nil {
		cost = g.Add(cost, reg)
	}
	return cost
}

// objectLayerCosts adds the matching cost of each decoder layer's
// predictions (ObjectLayerCostOutput) with the auxiliary losses: the class
// and mask terms with the matcher weights. Salt's auxiliary path adds the
// regression of the layer's queries to its cost as well, but calls the
// task in a way that cannot run; salt-ort's layers have no regression.
func (s *Spec) objectLayerCosts(g *graph.Graph, f *forward, truth objectInputs) {
	for i, p := range f.objects.Intermediate {
		pop := g.Scope("objects/cost_layer" + strconv.Itoa(i))
		g.Output(ObjectLayerCostOutput(i), nn.MaskFormerCost(g, p, truth.class, truth.masks, s.Objects.NumClasses, s.Objects.MatcherWeights))
		pop()
	}
}

// objectLosses are the MaskFormer loss terms (nn.MaskFormerLoss) of the
// predictions permuted by the assignments a (one per ObjectMatchings,
// the final predictions' last), in ObjectLossTerms' order;
// padding rows (jet weight 0) count in none.
func (s *Spec) objectLosses(g *graph.Graph, f *forward, truth objectInputs, a []*graph.Tensor, jetWeight *graph.Tensor) []*graph.Tensor {
	o := s.Objects
	present := g.Cast(g.Greater(jetWeight, g.Scalar(graph.Float32, 0)), graph.Float32)
	cfg := nn.MaskFormerLossConfig{NumClasses: o.NumClasses, NullClassWeight: o.NullClassWeight, Weights: o.LossWeights}
	final := a[len(a)-1]
	terms := s.maskLosses(g, "objects/loss", f.objects, truth, final, present, cfg)
	if o.Regression != nil {
		terms = append(terms, s.objectRegressionLoss(g, f.objectReg, truth.reg, truth.class, final, present))
	}
	for i, p := range f.objects.Intermediate {
		terms = append(terms, s.maskLosses(g, "objects/loss_layer"+strconv.Itoa(i), p, truth, a[i], present, cfg)...)
	}
	return terms
}

// maskLosses are the class and mask terms of nn.MaskFormerLoss on pred
// permuted by a, in maskTerms' order.
func (s *Spec) maskLosses(g *graph.Graph, scope string, pred nn.MaskDecoderOutput, truth objectInputs, a, present *graph.Tensor, cfg nn.MaskFormerLossConfig) []*graph.Tensor {
	defer g.Scope(scope)()
	l := nn.MaskFormerLoss(g, pred, truth.class, truth.masks, a, present, cfg)
	terms := []*graph.Tensor{l.ClassCE}
	for _, t := range []*graph.Tensor{l.MaskCE, l.MaskDice, l.MaskFocal} {
		if t != nil {
			terms = append(terms, t)
		}
	}
	return terms
}

// objectTrainingLoss adds the MaskFormer inputs, outputs and losses to a
// training graph: the truth objects and the assignment as inputs, each
// weighted term as ObjectLossOutput, and their sum, which it returns.
func (s *Spec) objectTrainingLoss(g *graph.Graph, f *forward, in *inputs, b int64) *graph.Tensor {
	return s.objectLoss(g, f, in, s.declareObjectInputs(g, b), b)
}

// objectLoss adds the assignment input, the weighted loss terms as
// ObjectLossOutput and returns their sum.
func (s *Spec) objectLoss(g *graph.Graph, f *forward, in *inputs, truth objectInputs, b int64) *graph.Tensor {
	m := int64(s.Objects.Decoder.Objects)
	var a []*graph.Tensor
	for _, mt := range s.Objects.ObjectMatchings() {
		a = append(a, g.Input(mt.Assignment, graph.Float32, graph.Shape{b, m, m}))
	}
	terms := s.objectLosses(g, f, truth, a, in.jetWeight)
	for i, name := range s.Objects.ObjectLossTerms() {
		g.Output(ObjectLossOutput(name), terms[i])
	}
	return g.Sum(terms...)
}

// objectEvalOutputs adds the objects' predictions, their matching cost and
// their losses on the assignment input to an evaluation graph, which is
// run twice on a batch: once for the cost, then with the assignment
// matched from it for the losses. It returns the losses' sum.
func (s *Spec) objectEvalOutputs(g *graph.Graph, f *forward, in *inputs, b int64) *graph.Tensor {
	truth := s.declareObjectInputs(g, b)
	total := s.objectLoss(g, f, in, truth, b)
	g.Output(ObjectCostOutput, s.objectCost(g, f, truth))
	s.objectLayerCosts(g, f, truth)
	g.Output(ObjectClassProbsOutput, f.objects.ClassProbs)
	g.Output(ObjectMasksOutput, f.objects.Masks)
	if r := s.Objects.Regression; r != nil {
		g.Output(ObjectRegressionOutput, s.unscale(g, r.task(), f.objectReg, nil))
	}
	return total
}

// ObjectCost builds the graph that computes the matching cost of a
// training batch (ObjectCostOutput), from the inputs of the training step
// that opts describes and the same flat parameters (optim.ParamsInput): the
// forward pass with the step's dropout masks (inputs of the same names),
// so that the cost is of the very predictions the step's loss reads. It
// returns the graph and the layout of its flat parameters, which is the
// training step's.
func (s *Spec) ObjectCost(opts TrainOptions) (*graph.Graph, []graph.ParamSlot, error) {
	if err := s.Validate(); err != nil {
		return nil, nil, err
	}
	if s.Objects == nil {
		return nil, nil, fmt.Errorf("model %s: matching cost: the model has no mask decoder", s.Name)
	}
	compute, err := computeType(opts.Compute)
	if err != nil {
		return nil, nil, fmt.Errorf("model %s: matching cost: %w", s.Name, err)
	}
	g := graph.New(s.Name + "_object_cost")
	in := s.declareInputs(g, int64(opts.Batch), true)
	in.toCompute(g, compute)
	f := s.forwardWith(g, in, forwardOptions{training: true, chunkPairs: true, objectLosses: true, chunkEncoder: opts.ChunkEncoder})
	truth := s.declareObjectInputs(g, int64(opts.Batch))
	g.Output(ObjectCostOutput, s.objectCost(g, f, truth))
	s.objectLayerCosts(g, f, truth)
	_, _, layout := g.FlattenParamsAs(optim.ParamsInput, graph.Float32)
	if err := g.Err(); err != nil {
		return nil, nil, fmt.Errorf("model %s: matching cost: %w", s.Name, err)
	}
	return g, layout, nil
}

package model

import (
	"fmt"
	"math"
	"slices"

	"github.com/salt-ort/salt-ort/graph/nn"
)

// Spec is a model definition.
type Spec struct {
	// Name prefixes the deployment outputs, e.g. "GN2" → GN2_pb.
	Name string
	// JetVars are the jet-level input variables: the columns of the jet
	// input (jets, and jet_features when deployed). Those of AttachVars
	// are concatenated to every constituent of every sequence input, those
	// of GlobalVars to the pooled representation.
	JetVars []string
	// AttachVars are the jet variables concatenated to every constituent
	// (Salt's jet-dataset variables); nil means all of JetVars.
	AttachVars []string
	// GlobalVars are jet variables concatenated to the pooled
	// representation before the task heads (Salt's global variables);
	// each must be one of JetVars.
	GlobalVars []string
	// Inputs are the constituent groups (tracks, hits, electrons, …), in
	// the order their elements are concatenated for the encoder. A model
	// without constituents (JetInit) has none.
	Inputs []Input
	// JetInit, when set, is the init net of a model that reads the jet
	// variables alone (Salt's init net on the jet dataset, as DL1's): its
	// output is the jet representation the task heads read, with neither
	// encoder nor pooling (Pooling must be NoPooling).
	JetInit *JetInit
	// EmbedDim is the encoder width; every init net ends at it.
	EmbedDim int
	// Encoder configures the transformer encoder (its output width,
	// Encoder.Width(EmbedDim), is that of the pooled representation and of
	// the constituent features the heads see). Encoder.Layers = 0 means no
	// encoder (Salt's SaltModel without encoder): the init nets' outputs
	// are pooled directly, a DeepSets model.
	Encoder nn.EncoderConfig
	// Pooling says how the constituents become the jet representation.
	Pooling Pooling
	// DropRegisters leaves the encoder's registers out of the pooling
	// (Salt's drop_registers): the pooled representation is of the
	// constituents alone.
	DropRegisters bool
	// Edges, when set, are edge features between the constituents of the
	// first group, which the encoder's layers attend with
	// (Encoder.EdgeDim wide, updated with Encoder.UpdateEdges).
	Edges *Edges
	// Parameters are the variables the model is conditioned on (Salt's
	// parameters); Featurewise the transformations they drive (Salt's
	// featurewise_nets). Without an input featurewise transformation the
	// parameters are attached to every init net's input, first.
	Parameters  []Parameter
	Featurewise []Featurewise
	// Tasks are the training objectives and outputs.
	Tasks []Task
	// LossMode is how the task losses combine into the loss training
	// minimises.
	LossMode LossMode
	// MuP, when set, holds the base widths of Salt's μP parametrisation
	// (Salt's mup_config), which a μP encoder needs (see MuP).
	MuP *MuP
	// Objects, when set, is Salt's MaskFormer object decoder, whose
	// losses are added to the tasks' (see objects.go).
	Objects *Objects
}

// LossMode is how the task losses combine.
type LossMode string

// The loss modes.
const (
	// WeightedSum is Σ w_i·L_i with the task weights (Salt's wsum), the
	// default.
	WeightedSum LossMode = ""
	// GeometricMean is the geometric loss strategy (Salt's GLS, Chennupati
	// et al. 2019): (Π L_i)^(1/n) over the n tasks, computed as
	// exp(Σ w_i·ln L_i / n), so that a task's weight is its exponent (Salt
	// requires every weight to be 1, which gives its GLS). Its gradient
	// scales each task's by the total over n·L_i: no task's scale dominates.
	GeometricMean LossMode = "gls"
)

// Input is one constituent group.
type Input struct {
	Name       string        // e.g. "tracks"
	Vars       []string      // per-constituent input variables
	MaxLen     int           // constituents per jet
	InitHidden []int         // hidden layer sizes of the init net (the output is EmbedDim)
	Activation nn.Activation // of the init net's hidden layers
	// FinalActivation follows the init net's last layer ("" or None: none,
	// as Salt's Dense without final_activation).
	FinalActivation nn.Activation
	// NoJetVars keeps the jet variables away from this group's
	// constituents (Salt's attach_global = false).
	NoJetVars bool
	// Dropout is the probability with which training drops each input of
	// each of the init net's linear layers, as Salt's Dense applies
	// dense_config.dropout (0: none; no effect outside training).
	Dropout float64
	// MuP initialises the init net as Salt's Dense with mup does:
	// weights N(0, 1/fan_out), biases zero.
	MuP bool
	// Fill is, per variable, what an empty slot holds in the normalised
	// input a FlattenPooling model flattens (nil: 0). Salt's dataset
	// writes 0 into the raw variables of padded slots and its model
	// normalises them with the rest, so Salt's value is −mean/std.
	Fill []float64
}

// JetInit is the init net of a jet-only model: a dense network from the
// jet variables that are not only global (AttachVars, or all of JetVars)
// to EmbedDim.
type JetInit struct {
	Name       string        // the jet dataset, which scopes the parameters: init/<Name>
	Hidden     []int         // hidden layer sizes (the output is EmbedDim)
	Activation nn.Activation // of the hidden layers
	// FinalActivation follows the last layer (None: none, as Salt's Dense
	// without final_activation).
	FinalActivation nn.Activation
	// Dropout is the init net's dropout, as Input's.
	Dropout float64
	// MuP is Salt's μP initialisation, as Input's.
	MuP bool
}

// Pooling is how constituents are pooled into the jet representation.
type Pooling string

// The poolings.
const (
	// AttentionPooling is Salt's GlobalAttentionPooling (the default).
	AttentionPooling Pooling = ""
	// NoPooling is a model without constituents (Salt's pool_net unset):
	// the jet representation is JetInit's output.
	NoPooling Pooling = "none"
	// FlattenPooling is Salt's R21Xbb: the one constituent group, its
	// normalised variables with empty slots holding Input.Fill, is
	// flattened from [B, MaxLen, V] to [B, MaxLen·V], which is the jet
	// representation (EmbedDim = MaxLen·V) the jet task heads read, with
	// neither init net nor encoder. A deployed model pads (with Fill) or
	// truncates the jet's constituents to MaxLen, as the training files
	// did.
	FlattenPooling Pooling = "flatten"
)

// HasEncoder reports whether the model has a transformer encoder.
func (s *Spec) HasEncoder() bool { return s.Encoder.Layers > 0 }

// Width is the width of the jet representation before the global
// variables are joined, and of the constituent features the heads read:
// the encoder's output width, or EmbedDim without an encoder.
func (s *Spec) Width() int {
	if s.HasEncoder() {
		return s.Encoder.Width(s.EmbedDim)
	}
	return s.EmbedDim
}

// TaskKind is the kind of a task.
type TaskKind string

// Task kinds.
const (
	// JetClassification classifies jets from the pooled representation.
	JetClassification TaskKind = "jet_classification"
	// ConstituentClassification classifies each constituent of an input
	// from [x_i, pooled] (e.g. track origin).
	ConstituentClassification TaskKind = "constituent_classification"
	// Vertexing classifies each ordered pair of distinct valid constituents
	// as from the same vertex from [x_i, x_j, pooled].
	Vertexing TaskKind = "vertexing"
	// JetRegression regresses jet-level targets with MSE or Huber loss.
	JetRegression TaskKind = "jet_regression"
	// JetGaussianRegression predicts a mean and a variance per target with
	// the Gaussian negative log-likelihood.
	JetGaussianRegression TaskKind = "jet_gaussian_regression"
	// ConstituentRegression regresses targets of each constituent of an
	// input from [pooled, x_i] (Salt's RegressionTask on tracks).
	ConstituentRegression TaskKind = "constituent_regression"
	// ConstituentGaussianRegression is the Gaussian regression of targets
	// of each constituent.
	ConstituentGaussianRegression TaskKind = "constituent_gaussian_regression"
)

// PerConstituent reports whether the task has an output per constituent
// (or pair of constituents) of its Input.
func (k TaskKind) PerConstituent() bool {
	switch k {
	case ConstituentClassification, Vertexing, ConstituentRegression, ConstituentGaussianRegression:
		return true
	}
	return false
}

// Regression reports whether the task regresses targets.
func (k TaskKind) Regression() bool {
	switch k {
	case JetRegression, JetGaussianRegression, ConstituentRegression, ConstituentGaussianRegression:
		return true
	}
	return false
}

// Gaussian reports whether the task predicts a mean and a variance per
// target.
func (k TaskKind) Gaussian() bool {
	return k == JetGaussianRegression || k == ConstituentGaussianRegression
}

// ScalingOp is how a regression target is scaled for the loss; the
// predictions are scaled back (Salt's norm_params, target_denominators and
// RegressionTargetScaler).
type ScalingOp string

// The target scalings.
const (
	// NoScaling leaves the target as it is.
	NoScaling ScalingOp = ""
	// NormScaling is (y − Mean)/Std (Salt's norm_params).
	NormScaling ScalingOp = "norm"
	// DenominatorScaling is y/d with d the variable Denominator of the
	// task's input (Salt's target_denominators).
	DenominatorScaling ScalingOp = "denominator"
	// LogScaling is ln(y·XScale + XOff)·OpScale + OpOff (Salt's scaler op
	// log).
	LogScaling ScalingOp = "log"
	// ExpScaling is exp(y·XScale + XOff)·OpScale + OpOff (op exp).
	ExpScaling ScalingOp = "exp"
	// LinearScaling is (y·XScale + XOff)·OpScale + OpOff (op linear).
	LinearScaling ScalingOp = "linear"
)

// TargetScaling is the scaling of one regression target.
type TargetScaling struct {
	Op        ScalingOp
	Mean, Std float64 // NormScaling
	// Denominator is a variable of the task's input: a jet variable
	// (JetVars) for jet tasks, one of the group's Vars for constituent
	// tasks, so that the deployed model can scale its predictions back.
	Denominator string
	// XScale, XOff, OpScale and OpOff are the constants of Salt's scaler
	// (1, 0, 1, 0 by default; zero scales are errors).
	XScale, XOff, OpScale, OpOff float64
}

// linearFactor returns the factor by which the scaling multiplies
// deviations of the target (the inverse maps a predicted spread s to
// s/factor), for the scalings that are affine; ok is false for log and
// exp.
func (ts TargetScaling) linearFactor() (factor float64, ok bool) {
	switch ts.Op {
	case NoScaling, DenominatorScaling:
		return 1, true
	case NormScaling:
		return 1 / ts.Std, true
	case LinearScaling:
		return ts.XScale * ts.OpScale, true
	}
	return 0, false
}

// Task is one objective.
type Task struct {
	Name       string
	Kind       TaskKind
	Input      string   // the constituent group of constituent and vertexing tasks
	Classes    []string // class names of classification tasks, in label order
	Targets    []string // target names of regression tasks
	Hidden     []int    // hidden layer sizes of the head
	Activation nn.Activation
	// Weight is the task's static loss weight (Salt's weight).
	Weight float64
	// ClassWeights are per-class loss weights (Salt's class_dict), or nil.
	ClassWeights []float64
	// HuberDelta selects the Huber loss for regression (0: MSE).
	HuberDelta float64
	// OriginWeighting weights vertexing pairs by track origin as Salt does
	// (pairs with a heavy-flavour track count twice, pairs of two fake
	// tracks not at all); it needs the group's origin labels as an input.
	OriginWeighting bool
	// Scaling scales each regression target for the loss (one per target,
	// or nil for none); predictions are scaled back, so they, the
	// evaluation's outputs and the deployed model's are in the targets'
	// units.
	Scaling []TargetScaling
	// SampleWeight makes the task's loss weigh each jet (or constituent)
	// by a weight of its own, read from SampleWeightInput(task) (Salt's
	// per-task sample_weight), on top of the jet weight.
	SampleWeight bool
	// Loss is the loss of the task when it is not the kind's default
	// (cross-entropy for classification, MSE or Huber for regression).
	Loss Loss
	// Mean is how the task's loss averages over its entries.
	Mean LossMean
	// NoContext makes a constituent task's head read the constituent's
	// features alone, without the pooled representation (Salt's Dense
	// with context_size 0).
	NoContext bool
	// Dropout is the probability with which training drops each input of
	// each of the head's linear layers, as Salt's Dense applies
	// dense_config.dropout (0: none; not for vertexing tasks).
	Dropout float64
}

// Loss is a task's loss where the kind allows a choice.
type Loss string

// The losses a task may choose.
const (
	// DefaultLoss is the kind's loss: cross-entropy for classification,
	// MSE (Huber with HuberDelta) for regression.
	DefaultLoss Loss = ""
	// BCELoss makes a classification with one class binary (Salt's
	// BCEWithLogitsLoss with output_size 1): one logit per jet or
	// constituent, label 1 for the class and 0 otherwise, and the
	// sigmoid of the logit as the class's probability.
	BCELoss Loss = "bce"
	// L1Loss is the mean absolute error of a regression (Salt's L1Loss).
	L1Loss Loss = "l1"
)

// Binary reports whether the task is a binary classification (BCELoss).
func (t Task) Binary() bool { return t.Loss == BCELoss }

// LossMean is how a task's loss averages the per-entry losses l with
// their weights w (sample weights, class weights, validity).
type LossMean string

// The loss means.
const (
	// WeightedMean is Σ w·l / Σ w, the default: the weights' sum
	// normalises, so padding and missing targets do not count.
	WeightedMean LossMean = ""
	// EntryMean is Σ w·l / N with N the number of entries of the batch's
	// jets (constituent slots and targets included, padding too): Salt's
	// form with reduction "none", the mean over the loss tensor of
	// weight × loss. A jet of jet weight 0 (data.sample_weight 0, or the
	// padding of a short last batch) is not counted.
	EntryMean LossMean = "entries"
)

// HasDenominators reports whether a target of the task is scaled by a
// variable of its input.
func (t Task) HasDenominators() bool {
	for _, sc := range t.Scaling {
		if sc.Op == DenominatorScaling {
			return true
		}
	}
	return false
}

// Outputs returns the number of network outputs of the task's head per
// jet, constituent or pair.
func (t Task) Outputs() int {
	switch t.Kind {
	case JetClassification, ConstituentClassification:
		if t.Binary() {
			return 1
		}
		return len(t.Classes)
	case Vertexing:
		return 1
	case JetRegression, ConstituentRegression:
		return len(t.Targets)
	case JetGaussianRegression, ConstituentGaussianRegression:
		return 2 * len(t.Targets)
	}
	return 0
}

// Validate checks the spec for consistency and returns the first problem,
// naming the field.
func (s *Spec) Validate() error {
	if s.Name == "" {
		return fmt.Errorf("model: name is empty")
	}
	if s.EmbedDim <= 0 {
		return fmt.Errorf("model %s: embed_dim must be positive, got %d", s.Name, s.EmbedDim)
	}
	switch s.Pooling {
	case AttentionPooling:
		if s.JetInit != nil {
			return fmt.Errorf("model %s: a jet init net (a model without constituents) needs pooling none", s.Name)
		}
		if len(s.Inputs) == 0 {
			return fmt.Errorf("model %s: no constituent inputs", s.Name)
		}
	case NoPooling:
		if s.JetInit == nil || len(s.Inputs) > 0 || s.HasEncoder() {
			return fmt.Errorf("model %s: without pooling the model reads the jet variables alone: one jet init net, no constituent inputs, no encoder", s.Name)
		}
		if d := s.JetInit.Dropout; d < 0 || d >= 1 {
			return fmt.Errorf("model %s: jet init net dropout %g is outside [0, 1)", s.Name, d)
		}
	case FlattenPooling:
		if err := s.validateFlatten(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("model %s: unknown pooling %q", s.Name, s.Pooling)
	}
	if err := s.validateEncoder(); err != nil {
		return err
	}
	if err := s.validateMuP(); err != nil {
		return err
	}
	if err := s.validateEdges(); err != nil {
		return err
	}
	if err := s.validateObjects(); err != nil {
		return err
	}
	if err := s.validateConditioning(); err != nil {
		return err
	}
	for _, list := range []struct {
		name string
		vars []string
	}{{"attached", s.AttachVars}, {"global", s.GlobalVars}} {
		for _, v := range list.vars {
			if s.jetColumn(v) < 0 {
				return fmt.Errorf("model %s: %s jet variable %q is not among the jet variables %v", s.Name, list.name, v, s.JetVars)
			}
		}
	}
	seen := map[string]bool{}
	for _, in := range s.Inputs {
		if in.Name == "" || seen[in.Name] {
			return fmt.Errorf("model %s: input name %q is empty or repeated", s.Name, in.Name)
		}
		seen[in.Name] = true
		if len(in.Vars) == 0 || in.MaxLen <= 0 {
			return fmt.Errorf("model %s: input %s needs variables and a positive max_len", s.Name, in.Name)
		}
		if in.Dropout < 0 || in.Dropout >= 1 {
			return fmt.Errorf("model %s: input %s: init net dropout %g is outside [0, 1)", s.Name, in.Name, in.Dropout)
		}
	}
	if len(s.Tasks) == 0 {
		return fmt.Errorf("model %s: no tasks", s.Name)
	}
	if s.LossMode != WeightedSum && s.LossMode != GeometricMean {
		return fmt.Errorf("model %s: unknown loss mode %q", s.Name, s.LossMode)
	}
	names := map[string]bool{}
	for _, t := range s.Tasks {
		if t.Name == "" || names[t.Name] {
			return fmt.Errorf("model %s: task name %q is empty or repeated", s.Name, t.Name)
		}
		names[t.Name] = true
		if err := s.validateLoss(t); err != nil {
			return err
		}
		switch t.Kind {
		case JetClassification, ConstituentClassification:
			if t.Binary() {
				if len(t.Classes) != 1 || len(t.ClassWeights) > 0 {
					return fmt.Errorf("model %s: task %s: a binary classification has one class name and no class weights, got %d names and %d weights", s.Name, t.Name, len(t.Classes), len(t.ClassWeights))
				}
				break
			}
			if len(t.Classes) < 2 {
				return fmt.Errorf("model %s: task %s: a classification needs at least 2 class names, got %d", s.Name, t.Name, len(t.Classes))
			}
			if len(t.ClassWeights) > 0 && len(t.ClassWeights) != len(t.Classes) {
				return fmt.Errorf("model %s: task %s: %d class weights for %d classes", s.Name, t.Name, len(t.ClassWeights), len(t.Classes))
			}
		case Vertexing:
		case JetRegression, JetGaussianRegression, ConstituentRegression, ConstituentGaussianRegression:
			if len(t.Targets) == 0 {
				return fmt.Errorf("model %s: task %s: a regression needs targets", s.Name, t.Name)
			}
			if err := s.validateScaling(t); err != nil {
				return err
			}
		default:
			return fmt.Errorf("model %s: task %s: unknown kind %q", s.Name, t.Name, t.Kind)
		}
		if !t.Kind.Regression() && len(t.Scaling) > 0 {
			return fmt.Errorf("model %s: task %s: target scaling is for regression tasks", s.Name, t.Name)
		}
		if t.Kind.PerConstituent() {
			if !seen[t.Input] {
				return fmt.Errorf("model %s: task %s: input %q is not one of the model's inputs", s.Name, t.Name, t.Input)
			}
		}
		if t.Weight < 0 {
			return fmt.Errorf("model %s: task %s: negative weight %g", s.Name, t.Name, t.Weight)
		}
	}
	return nil
}

// validateLoss checks a task's loss, mean and dropout against its kind.
func (s *Spec) validateLoss(t Task) error {
	switch t.Loss {
	case DefaultLoss:
	case BCELoss:
		if t.Kind != JetClassification && t.Kind != ConstituentClassification {
			return fmt.Errorf("model %s: task %s: binary cross-entropy is for classification tasks", s.Name, t.Name)
		}
	case L1Loss:
		if t.Kind != JetRegression && t.Kind != ConstituentRegression {
			return fmt.Errorf("model %s: task %s: the L1 loss is for (non-Gaussian) regression tasks", s.Name, t.Name)
		}
		if t.HuberDelta > 0 {
			return fmt.Errorf("model %s: task %s: a Huber delta with the L1 loss", s.Name, t.Name)
		}
	default:
		return fmt.Errorf("model %s: task %s: unknown loss %q", s.Name, t.Name, t.Loss)
	}
	switch {
	case t.Mean != WeightedMean && t.Mean != EntryMean:
		return fmt.Errorf("model %s: task %s: unknown loss mean %q", s.Name, t.Name, t.Mean)
	case t.Mean == EntryMean && t.Kind == Vertexing:
		return fmt.Errorf("model %s: task %s: vertexing divides by the number of true pairs, as Salt's; it has no entry mean", s.Name, t.Name)
	case t.Dropout < 0 || t.Dropout >= 1:
		return fmt.Errorf("model %s: task %s: dropout %g is outside [0, 1)", s.Name, t.Name, t.Dropout)
	}
	return nil
}

// validateScaling checks a regression task's target scaling.
func (s *Spec) validateScaling(t Task) error {
	if t.Scaling == nil {
		return nil
	}
	if len(t.Scaling) != len(t.Targets) {
		return fmt.Errorf("model %s: task %s: %d target scalings for %d targets", s.Name, t.Name, len(t.Scaling), len(t.Targets))
	}
	for k, sc := range t.Scaling {
		target := t.Targets[k]
		switch sc.Op {
		case NoScaling:
		case NormScaling:
			if !(sc.Std > 0) || math.IsInf(sc.Std, 0) || math.IsNaN(sc.Mean) || math.IsInf(sc.Mean, 0) {
				return fmt.Errorf("model %s: task %s: target %s: norm_params need a finite mean and a positive std, got %g and %g", s.Name, t.Name, target, sc.Mean, sc.Std)
			}
		case DenominatorScaling:
			vars := s.JetVars
			if t.Kind.PerConstituent() {
				vars = s.group(t.Input).Vars
			}
			if !slices.Contains(vars, sc.Denominator) {
				return fmt.Errorf("model %s: task %s: target %s: denominator %q is not an input variable of %s (%v), which the deployed model needs to scale its prediction back", s.Name, t.Name, target, sc.Denominator, t.inputName(), vars)
			}
		case LogScaling, ExpScaling, LinearScaling:
			if sc.XScale == 0 || sc.OpScale == 0 {
				return fmt.Errorf("model %s: task %s: target %s: scaler x_scale and op_scale must not be 0", s.Name, t.Name, target)
			}
		default:
			return fmt.Errorf("model %s: task %s: target %s: unknown scaling %q", s.Name, t.Name, target, sc.Op)
		}
		if _, affine := sc.linearFactor(); t.Kind.Gaussian() && !affine {
			return fmt.Errorf("model %s: task %s: target %s: a Gaussian regression's spread cannot be scaled back through %s; use norm_params, target_denominators or a linear scaler", s.Name, t.Name, target, sc.Op)
		}
	}
	return nil
}

// inputName names the dataset a task reads its targets and weights from.
func (t Task) inputName() string {
	if t.Kind.PerConstituent() {
		return t.Input
	}
	return "the jets"
}

// validateEncoder checks the encoder's settings; without an encoder
// (Layers 0) it needs none of them.
func (s *Spec) validateEncoder() error {
	e := s.Encoder
	switch {
	case e.Layers < 0:
		return fmt.Errorf("model %s: encoder layers %d is negative (0: no encoder)", s.Name, e.Layers)
	case e.Layers == 0:
		if e.Registers != 0 || e.OutDim != 0 {
			return fmt.Errorf("model %s: encoder registers %d and out_dim %d need an encoder (layers > 0)", s.Name, e.Registers, e.OutDim)
		}
		return nil
	case e.Heads <= 0 || s.EmbedDim%e.Heads != 0:
		return fmt.Errorf("model %s: embed_dim %d must be a positive multiple of heads %d", s.Name, s.EmbedDim, e.Heads)
	case e.DenseRatio <= 0 && len(e.Hidden) == 0:
		return fmt.Errorf("model %s: encoder dense_ratio must be positive, got %d", s.Name, e.DenseRatio)
	case e.Dropout < 0 || e.Dropout >= 1:
		return fmt.Errorf("model %s: encoder dropout %g is outside [0, 1)", s.Name, e.Dropout)
	case e.OutDim < 0:
		return fmt.Errorf("model %s: encoder out_dim %d is negative (0: no output projection)", s.Name, e.OutDim)
	case e.AttnDropout < 0 || e.AttnDropout >= 1:
		return fmt.Errorf("model %s: encoder attention dropout %g is outside [0, 1)", s.Name, e.AttnDropout)
	case e.DropPath < 0 || e.DropPath >= 1:
		return fmt.Errorf("model %s: encoder drop_path %g is outside [0, 1)", s.Name, e.DropPath)
	case e.LayerScale < 0:
		return fmt.Errorf("model %s: encoder ls_init %g is negative (0: no LayerScale)", s.Name, e.LayerScale)
	case e.NoOutProj && e.Kind != nn.LegacyKind:
		return fmt.Errorf("model %s: Salt's Transformer always projects the attention's output; only the legacy encoder may leave it out", s.Name)
	case e.Norm != nn.LayerNormKind && e.Norm != nn.RMSNormKind:
		return fmt.Errorf("model %s: unknown encoder norm %q", s.Name, e.Norm)
	case e.NormType != nn.PreNorm && e.NormType != nn.PostNorm && e.NormType != nn.HybridNorm:
		return fmt.Errorf("model %s: unknown encoder norm_type %q", s.Name, e.NormType)
	}
	switch e.Kind {
	case nn.TransformerKind:
		if len(e.Hidden) > 0 {
			return fmt.Errorf("model %s: encoder hidden sizes %v are the legacy encoder's; Salt's Transformer sizes its dense block by dense_ratio", s.Name, e.Hidden)
		}
	case nn.LegacyKind:
		return s.validateLegacyEncoder()
	case nn.CrossAttentionKind:
		return s.validateCrossAttentionEncoder()
	default:
		return fmt.Errorf("model %s: unknown encoder kind %q", s.Name, e.Kind)
	}
	return nil
}

// validateLegacyEncoder checks that a legacy encoder (Salt's
// TransformerEncoder) sets none of the options of Salt's later
// Transformer, which it does not have.
func (s *Spec) validateLegacyEncoder() error {
	e := s.Encoder
	for _, h := range e.Hidden {
		if h <= 0 {
			return fmt.Errorf("model %s: legacy encoder hidden sizes %v must be positive", s.Name, e.Hidden)
		}
	}
	for _, o := range []struct {
		set  bool
		what string
	}{
		{e.Registers != 0, "registers"},
		{e.NoFinalNorm, "no final norm"},
		{e.Gated, "a gated dense block"},
		{e.Norm != nn.LayerNormKind, "norm " + string(e.Norm)},
		{e.NormType != nn.PreNorm, "norm_type " + string(e.NormType)},
		{e.LayerScale != 0, "LayerScale"},
		{e.DropPath != 0, "drop_path"},
		{e.QKNorm || e.VNorm, "q/k/v norms"},
		{e.EdgeDim != 0 || e.UpdateEdges || s.Edges != nil, "edge features"},
	} {
		if o.set {
			return fmt.Errorf("model %s: the legacy encoder (Salt's TransformerEncoder) has no %s", s.Name, o.what)
		}
	}
	return nil
}

// validateCrossAttentionEncoder checks a cross-attention encoder (Salt's
// TransformerCrossAttentionEncoder): legacy layers, so none of the later
// Transformer's options, at least two constituent groups, and neither
// featurewise nets of its layers nor μP, which Salt's class does not have.
func (s *Spec) validateCrossAttentionEncoder() error {
	e := s.Encoder
	e.Kind = nn.LegacyKind
	legacy := *s
	legacy.Encoder = e
	if err := legacy.validateLegacyEncoder(); err != nil {
		return fmt.Errorf("%w (the cross-attention encoder is built of legacy layers)", err)
	}
	switch {
	case len(s.Inputs) < 2:
		return fmt.Errorf("model %s: the cross-attention encoder attends between constituent groups: it needs two or more, the model has %d", s.Name, len(s.Inputs))
	case s.featurewise(FeaturewiseEncoder) != nil:
		return fmt.Errorf("model %s: Salt's cross-attention encoder has no featurewise nets of its layers", s.Name)
	case e.MuP:
		return fmt.Errorf("model %s: μP is not built for the cross-attention encoder", s.Name)
	}
	return nil
}

// jetColumn returns the column of jet variable v in the jet input, or -1.
func (s *Spec) jetColumn(v string) int {
	for i, x := range s.JetVars {
		if x == v {
			return i
		}
	}
	return -1
}

// ParameterNames lists the parameters' names, in the order of the
// parameter inputs.
func (s *Spec) ParameterNames() []string {
	var out []string
	for _, p := range s.Parameters {
		out = append(out, p.Name)
	}
	return out
}

// attached returns the jet variables concatenated to constituents.
func (s *Spec) attached() []string {
	if s.AttachVars == nil {
		return s.JetVars
	}
	return s.AttachVars
}

// GN2 returns Salt's GN2 configuration (configs/GN2/GN2.yaml): 2 jet and
// 19 track variables, an init net 21→256→256 without a final activation, a
// 4-layer, 8-head, 256-wide encoder with one register and a 128-wide
// output, and the jet flavour, track origin and vertexing tasks.
func GN2() Spec {
	return Spec{
		Name:    "GN2",
		JetVars: []string{"pt_btagJes", "eta_btagJes"},
		Inputs: []Input{{
			Name: "tracks",
			Vars: []string{"d0", "z0SinTheta", "dphi", "deta", "qOverP",
				"IP3D_signed_d0_significance", "IP3D_signed_z0_significance",
				"phiUncertainty", "thetaUncertainty", "qOverPUncertainty",
				"numberOfPixelHits", "numberOfSCTHits", "numberOfInnermostPixelLayerHits",
				"numberOfNextToInnermostPixelLayerHits", "numberOfInnermostPixelLayerSharedHits",
				"numberOfInnermostPixelLayerSplitHits", "numberOfPixelSharedHits",
				"numberOfPixelSplitHits", "numberOfSCTSharedHits"},
			MaxLen:          40,
			InitHidden:      []int{256},
			Activation:      nn.ReLU,
			FinalActivation: nn.None,
		}},
		EmbedDim: 256,
		Encoder:  nn.EncoderConfig{Layers: 4, Heads: 8, DenseRatio: 2, Activation: nn.ReLU, Registers: 1, OutDim: 128},
		Tasks: []Task{
			{Name: "jets_classification", Kind: JetClassification, Classes: []string{"b", "c", "u", "tau"},
				Hidden: []int{128, 64, 32}, Activation: nn.ReLU, Weight: 1},
			{Name: "track_origin", Kind: ConstituentClassification, Input: "tracks",
				Classes: []string{"pileup", "fake", "primary", "fromB", "fromBC", "fromC", "fromTau", "otherSecondary"},
				Hidden:  []int{128, 64, 32}, Activation: nn.ReLU, Weight: 0.5},
			{Name: "track_vertexing", Kind: Vertexing, Input: "tracks",
				Hidden: []int{128, 64, 32}, Activation: nn.ReLU, Weight: 1.5},
		},
	}
}

package model

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/nn"
	"github.com/salt-ort/salt-ort/graph/optim"
)

// Graph input and output names. Constituent groups and tasks use their
// own names: the tracks of GN2 arrive as "tracks" and "tracks/valid", the
// flavour labels as "jets_classification/label".
const (
	JetsInput        = "jets"         // [B, n_jet_vars] normalised jet variables
	JetWeightInput   = "jet_weight"   // [B] per-jet loss weight: 0 for padding rows, else the sample weight
	TaskWeightsInput = "task_weights" // [n_tasks] loss weight of each task, fed by Go every step
	LossOutput       = "loss"         // Σ task_weight·task_loss
)

// ValidInput is the [B, T] bool mask input of a constituent group.
func ValidInput(group string) string { return group + "/valid" }

// LabelInput is the label input of a task: int64 [B] for jet
// classification, int64 [B, T] class or vertex indices for constituent
// tasks (-1 on padding), float32 [B, n_targets] for regression.
func LabelInput(task string) string { return task + "/label" }

// OriginInput is the int64 [B, T] origin-label input a vertexing task with
// origin weighting reads.
func OriginInput(task string) string { return task + "/origin" }

// DenominatorInput is the float32 input of a regression task whose
// targets are scaled by denominators (TargetScaling DenominatorScaling):
// the raw values of each target's denominator, [B, n_targets] for jet
// tasks, [B, T, n_targets] for constituent tasks (1 for targets without
// one).
func DenominatorInput(task string) string { return task + "/denominator" }

// SampleWeightInput is the float32 input of a task with SampleWeight: each
// jet's ([B]) or constituent's ([B, T]) weight in the task's loss.
func SampleWeightInput(task string) string { return task + "/sample_weight" }

// TaskLossOutput is the unweighted scalar loss of a task.
func TaskLossOutput(task string) string { return "loss/" + task }

// LossDenInput is the scalar input of a sharded graph (TrainOptions.Sharded)
// holding a task's loss denominator over the whole batch, the sum over the
// ranks of LossDenOutput.
func LossDenInput(task string) string { return "loss_den/" + task }

// LossDenOutput is a task's loss denominator over the graph's batch (the
// summed mask and class weights of the entries its mean divides by), an
// output of the Denominators graph.
func LossDenOutput(task string) string { return "loss_den/" + task }

// PredictionOutput names a task's prediction: class probabilities
// [B, C] or [B, T, C], vertexing pair probabilities [B, T, T], regression
// values [B, n] ("<task>/pred"; Gaussian tasks also "<task>/variance").
func PredictionOutput(task string) string { return task + "/pred" }

// VarianceOutput is the predicted variance [B, n] of a Gaussian regression.
func VarianceOutput(task string) string { return task + "/variance" }

// inputs are the graph inputs the forward pass and the losses read.
type inputs struct {
	jets      *graph.Tensor
	seqs      []*graph.Tensor // per constituent group
	valid     []*graph.Tensor // per group, nil when every constituent is valid
	jetWeight *graph.Tensor
	labels    map[string]*graph.Tensor
	origins   map[string]*graph.Tensor
	// denoms are the raw denominators of regression tasks that have them
	// (DenominatorInput), sampleWeights the weights of tasks with
	// SampleWeight.
	denoms, sampleWeights map[string]*graph.Tensor
	// rawJets and rawSeqs are the inputs before normalisation, in graphs
	// that read raw variables (the deployment graphs); nil otherwise.
	rawJets *graph.Tensor
	rawSeqs []*graph.Tensor
	// edgeVars are the raw variables the edge features are computed from
	// (EdgeVariablesInput), in graphs that do not read raw constituents.
	edgeVars *graph.Tensor
	// params are the parameters' values [B, P] (nil without parameters).
	params *graph.Tensor
}

// declareInputs declares the batch inputs of a graph with batch size b;
// labels only for graphs that compute losses.
func (s *Spec) declareInputs(g *graph.Graph, b int64, labels bool) *inputs {
	return s.declareInputsWith(g, b, labels, false)
}

// declareInputsWith is declareInputs; with jetParams the parameters are
// the last columns of the jets input, as deployed models read them, rather
// than an input of their own.
func (s *Spec) declareInputsWith(g *graph.Graph, b int64, labels, jetParams bool) *inputs {
	in := &inputs{labels: map[string]*graph.Tensor{}, origins: map[string]*graph.Tensor{},
		denoms: map[string]*graph.Tensor{}, sampleWeights: map[string]*graph.Tensor{}}
	nj, np := int64(len(s.JetVars)), int64(len(s.Parameters))
	switch {
	case np > 0 && jetParams:
		jets := g.Input(JetsInput, graph.Float32, graph.Shape{b, nj + np})
		in.jets = g.Slice(jets, []int{1}, []int64{0}, []int64{nj})
		in.params = g.Slice(jets, []int{1}, []int64{nj}, []int64{nj + np})
	case np > 0:
		in.jets = g.Input(JetsInput, graph.Float32, graph.Shape{b, nj})
		in.params = g.Input(ParametersInput, graph.Float32, graph.Shape{b, np})
	default:
		in.jets = g.Input(JetsInput, graph.Float32, graph.Shape{b, nj})
	}
	for _, grp := range s.Inputs {
		t := int64(grp.MaxLen)
		in.seqs = append(in.seqs, g.Input(grp.Name, graph.Float32, graph.Shape{b, t, int64(len(grp.Vars))}))
		in.valid = append(in.valid, g.Input(ValidInput(grp.Name), graph.Bool, graph.Shape{b, t}))
	}
	if !labels {
		return in
	}
	if e := s.Edges; e != nil {
		t := int64(s.Inputs[0].MaxLen)
		in.edgeVars = g.Input(EdgeVariablesInput(e.Input), graph.Float32, graph.Shape{b, t, int64(max(len(e.Needs()), 1))})
	}
	in.jetWeight = g.Input(JetWeightInput, graph.Float32, graph.Shape{b})
	for _, task := range s.Tasks {
		switch task.Kind {
		case JetClassification:
			in.labels[task.Name] = g.Input(LabelInput(task.Name), graph.Int64, graph.Shape{b})
		case ConstituentClassification, Vertexing:
			t := int64(s.group(task.Input).MaxLen)
			in.labels[task.Name] = g.Input(LabelInput(task.Name), graph.Int64, graph.Shape{b, t})
			if task.Kind == Vertexing && task.OriginWeighting {
				in.origins[task.Name] = g.Input(OriginInput(task.Name), graph.Int64, graph.Shape{b, t})
			}
		case JetRegression, JetGaussianRegression, ConstituentRegression, ConstituentGaussianRegression:
			shape := s.entryShape(task, b).Clone()
			shape = append(shape, int64(len(task.Targets)))
			in.labels[task.Name] = g.Input(LabelInput(task.Name), graph.Float32, shape)
			if task.HasDenominators() {
				in.denoms[task.Name] = g.Input(DenominatorInput(task.Name), graph.Float32, shape)
			}
		}
		if task.SampleWeight {
			in.sampleWeights[task.Name] = g.Input(SampleWeightInput(task.Name), graph.Float32, s.entryShape(task, b))
		}
	}
	return in
}

// entryShape is the shape of a task's entries in a batch of b jets: [b]
// for jet tasks, [b, T] for constituent tasks (vertexing's pairs are
// weighed by their constituents).
func (s *Spec) entryShape(task Task, b int64) graph.Shape {
	if task.Kind.PerConstituent() {
		return graph.Shape{b, int64(s.group(task.Input).MaxLen)}
	}
	return graph.Shape{b}
}

func (s *Spec) group(name string) Input {
	for _, in := range s.Inputs {
		if in.Name == name {
			return in
		}
	}
	return Input{}
}

func (s *Spec) groupIndex(name string) int {
	for i, in := range s.Inputs {
		if in.Name == name {
			return i
		}
	}
	return -1
}

// forward holds what the forward pass computes.
type forward struct {
	pooled *graph.Tensor            // [B, O]
	seq    []*graph.Tensor          // per group [B, T, O]
	heads  map[string]*graph.Tensor // raw head output per task
	// denoms are the denominators of the regression tasks that have them
	// (see denominators), which scale their predictions back.
	denoms map[string][]*graph.Tensor
	// objects are the mask decoder's predictions (Spec.Objects), in
	// float32; zero without a decoder.
	objects nn.MaskDecoderOutput
	// objectReg is the objects' scaled regression [B, M, R]
	// (Objects.Regression); nil without one.
	objectReg *graph.Tensor
	// encoderScopes are the node-name prefixes of the encoder's scopes
	// (see runEncoder); nil without an encoder of layers.
	encoderScopes []string
}

// head is an MLP whose first layer reads the concatenation of parts
// (broadcast against each other) without materialising it.
func head(g *graph.Graph, name string, parts []*graph.Tensor, sizes []int, a nn.Activation) *graph.Tensor {
	defer g.Scope(name)()
	x := nn.ConcatLinear(g, "0", parts, sizes[0])
	for i := 1; i < len(sizes); i++ {
		x = nn.Linear(g, strconv.Itoa(i), nn.Activate(g, x, a), sizes[i], true)
	}
	return x
}

// denseHead is head with Salt's Dense dropout: in training with p > 0,
// each linear layer's input is dropped out with probability p, the first
// layer's over the concatenation as Salt builds it (each part expanded to
// the broadcast shape first, so that every constituent draws its own mask
// for the jet-level part too). Otherwise it is head, with the same
// parameters either way.
func denseHead(g *graph.Graph, name string, parts []*graph.Tensor, sizes []int, a nn.Activation, p float64, training bool) *graph.Tensor {
	if !training || p == 0 {
		return head(g, name, parts, sizes, a)
	}
	defer g.Scope(name)()
	lead := parts[0].Shape()[:parts[0].Rank()-1].Clone()
	for _, part := range parts[1:] {
		for i, d := range part.Shape()[:part.Rank()-1] {
			lead[i] = max(lead[i], d)
		}
	}
	dropped := make([]*graph.Tensor, len(parts))
	for k, part := range parts {
		full := append(lead.Clone(), part.Dim(-1))
		if !slices.Equal(part.Shape(), full) {
			part = g.Expand(part, full)
		}
		dropped[k] = nn.Dropout(g, "dropout/0/"+strconv.Itoa(k), part, p, true)
	}
	x := nn.ConcatLinear(g, "0", dropped, sizes[0])
	for i := 1; i < len(sizes); i++ {
		h := nn.Dropout(g, "dropout/"+strconv.Itoa(i), nn.Activate(g, x, a), p, true)
		x = nn.Linear(g, strconv.Itoa(i), h, sizes[i], true)
	}
	return x
}

// forward computes the model on the inputs; training adds dropout.
func (s *Spec) forward(g *graph.Graph, in *inputs, training bool) *forward {
	return s.forwardWith(g, in, forwardOptions{training: training})
}

// forwardWith computes the model on the inputs as opts say.
func (s *Spec) forwardWith(g *graph.Graph, in *inputs, opts forwardOptions) *forward {
	training := opts.training
	f := &forward{heads: map[string]*graph.Tensor{}, denoms: map[string][]*graph.Tensor{}}
	if s.JetInit != nil {
		// A model without constituents: the jet init net reads the jet
		// dataset's variables and its output is the jet representation
		// (Salt's global_rep without pool_net); global variables join it
		// below.
		j := s.JetInit
		sizes := append(append([]int{}, j.Hidden...), s.EmbedDim)
		x := s.jetColumns(g, in.jets, s.attached())
		f.pooled = nn.Activate(g, denseHead(g, "init/"+j.Name, s.initParts(g, j.Name, in, x, nil), sizes, j.Activation, j.Dropout, training), j.FinalActivation)
		if fw := s.featurewise(FeaturewiseGlobal); fw != nil {
			f.pooled = applyFeaturewise(g, "featurewise/global", fw, in.params, f.pooled)
		}
	} else if s.Pooling == FlattenPooling {
		f.pooled = s.flatten(g, in.seqs[0], in.valid[0])
	} else {
		s.encode(g, in, opts, f)
		if s.Objects != nil {
			f.objects = s.decodeObjects(g, f, in, opts.objectLosses)
		}
	}
	pooled := f.pooled
	if len(s.GlobalVars) > 0 {
		pooled = g.Concat(1, pooled, s.jetColumns(g, in.jets, s.GlobalVars))
	}
	// The heads of constituent tasks read the pooled jet representation
	// as context in front of the constituent features, as Salt's Dense
	// attaches it: [g, x_i] per constituent and [g, x_i, x_j] per pair.
	for _, task := range s.Tasks {
		sizes := append(append([]int{}, task.Hidden...), task.Outputs())
		switch task.Kind {
		case JetClassification, JetRegression, JetGaussianRegression:
			if task.Kind.Regression() {
				f.denoms[task.Name] = s.denominators(g, task, in)
			}
			f.heads[task.Name] = denseHead(g, task.Name, []*graph.Tensor{pooled}, sizes, task.Activation, task.Dropout, training)
		case ConstituentClassification, ConstituentRegression, ConstituentGaussianRegression:
			if task.Kind.Regression() {
				f.denoms[task.Name] = s.denominators(g, task, in)
			}
			x := f.seq[s.groupIndex(task.Input)]
			parts := []*graph.Tensor{g.Unsqueeze(pooled, 1), x}
			if task.NoContext {
				parts = parts[1:]
			}
			f.heads[task.Name] = denseHead(g, task.Name, parts, sizes, task.Activation, task.Dropout, training)
		case Vertexing:
			x := f.seq[s.groupIndex(task.Input)]
			if opts.chunkPairs || training && task.Dropout > 0 {
				p := 0.0
				if training {
					p = task.Dropout
				}
				f.heads[task.Name] = g.Squeeze(pairHead(g, task.Name, pooled, x, sizes, task.Activation, p), -1) // [B, T, T]
				continue
			}
			parts := []*graph.Tensor{g.Unsqueeze(pooled, 1, 2), g.Unsqueeze(x, 2), g.Unsqueeze(x, 1)}
			f.heads[task.Name] = g.Squeeze(head(g, task.Name, parts, sizes, task.Activation), -1) // [B, T, T]
		}
	}
	if s.usesMuP() {
		s.muPInitNets(g)
	}
	return f
}

// encode runs the init nets of the constituent groups, the encoder (if
// any) and the pooling, and sets f.pooled and f.seq.
func (s *Spec) encode(g *graph.Graph, in *inputs, opts forwardOptions, f *forward) {
	training := opts.training
	var jets *graph.Tensor // [B, 1, J] the attached jet variables
	if att := s.attached(); len(att) > 0 {
		jets = g.Unsqueeze(s.jetColumns(g, in.jets, att), 1)
	}
	var xs, valids []*graph.Tensor
	for i, grp := range s.Inputs {
		// Salt's InitNet attaches the jet variables in front of each
		// constituent's ([jets, constituent], attach_context) and runs a
		// Dense with no activation after its last layer unless
		// final_activation asks for one.
		sizes := append(append([]int{}, grp.InitHidden...), s.EmbedDim)
		var att *graph.Tensor
		if jets != nil && !grp.NoJetVars {
			att = jets
		}
		parts := s.initParts(g, grp.Name, in, att, in.seqs[i])
		x := nn.Activate(g, denseHead(g, "init/"+grp.Name, parts, sizes, grp.Activation, grp.Dropout, training), grp.FinalActivation)
		xs = append(xs, x)
		if in.valid[i] != nil {
			valids = append(valids, in.valid[i])
		}
	}
	x := xs[0]
	var valid *graph.Tensor
	if len(xs) > 1 {
		x = g.Concat(1, xs...)
	}
	if len(valids) == len(xs) {
		valid = valids[0]
		if len(valids) > 1 {
			valid = g.Concat(1, valids...)
		}
	}
	global := s.featurewise(FeaturewiseGlobal)
	if !s.HasEncoder() {
		// A DeepSets model: the init nets' outputs are pooled as they are.
		// Without registers a jet may have no valid constituent, so the
		// pooling zeroes the weights of padding as Salt's masked softmax
		// does (an empty jet pools to zeros, as it does deployed).
		if global != nil {
			x = applyFeaturewise(g, "featurewise/global", global, in.params, x)
		}
		f.pooled = nn.MaskedAttentionPool(g, "pooling", x, valid)
		f.seq = s.groupSequences(g, x, xs, 0)
		return
	}
	cfg := s.Encoder
	cfg.Training = training
	if cfg.MuP {
		// MuReadout: output_mult (1, as Salt leaves it) over width_mult.
		cfg.ReadoutMult = 1 / s.WidthMult()
	}
	if cfg.Kind == nn.CrossAttentionKind {
		cfg.BeforeLayer = s.encoderFeaturewise(in.params)
		s.encodeCrossAttention(g, in, xs, valids, cfg, f)
		return
	}
	var edges *graph.Tensor
	if s.Edges != nil {
		edges = s.edgeEmbedding(g, in, x)
	}
	enc, bias, scopes := s.runEncoder(g, x, valid, edges, in.params, cfg, opts.chunkEncoder)
	f.encoderScopes = scopes
	if global != nil {
		// Salt transforms the encoder's output, which the pooling and the
		// constituent tasks read.
		enc = applyFeaturewise(g, "featurewise/global", global, in.params, enc)
	}
	switch {
	case cfg.Kind == nn.LegacyKind:
		// The legacy encoder's masked zero token keeps every softmax
		// non-empty; a jet without constituents pools to zeros, as in
		// Salt's pooling.
		f.pooled = nn.BiasMaskedAttentionPool(g, "pooling", enc, bias)
	case cfg.Registers > 0 && s.DropRegisters:
		// Salt's drop_registers: the pooling sees the constituents alone.
		f.pooled = nn.MaskedAttentionPool(g, "pooling", g.Slice(enc, []int{1}, []int64{0}, []int64{-int64(cfg.Registers)}), valid)
	case cfg.Registers > 0:
		f.pooled = nn.AttentionPool(g, "pooling", enc, bias)
	default:
		f.pooled = nn.MaskedAttentionPool(g, "pooling", enc, valid)
	}
	f.seq = s.groupSequences(g, enc, xs, int64(cfg.Appended()))
}

// encodeCrossAttention runs Salt's TransformerCrossAttentionEncoder over
// the groups' embeddings xs with their masks valids (empty: all valid,
// the deployment graph's) and pools their concatenation as Salt's
// GlobalAttentionPooling does, padded entries weighted zero.
func (s *Spec) encodeCrossAttention(g *graph.Graph, in *inputs, xs, valids []*graph.Tensor, cfg nn.EncoderConfig, f *forward) {
	names := make([]string, len(s.Inputs))
	for i, grp := range s.Inputs {
		names[i] = grp.Name
	}
	if len(valids) != len(xs) {
		valids = make([]*graph.Tensor, len(xs))
	}
	seqs := nn.CrossAttentionEncoder(g, "encoder", names, xs, valids, cfg)
	enc := g.Concat(1, seqs...)
	var valid *graph.Tensor
	if valids[0] != nil {
		valid = g.Concat(1, valids...)
	}
	if global := s.featurewise(FeaturewiseGlobal); global != nil {
		for i := range seqs {
			seqs[i] = applyFeaturewise(g, "featurewise/global/"+names[i], global, in.params, seqs[i])
		}
		enc = g.Concat(1, seqs...)
	}
	f.pooled = nn.MaskedAttentionPool(g, "pooling", enc, valid)
	f.seq = seqs
}

// groupSequences splits the encoder output [B, Σ T_g + registers, O] into
// each constituent group's part, the registers (or whatever tokens the
// encoder appended, registers of them) dropped. Groups of dynamic
// length (the deployment graph's) are split at their lengths read from
// the group tensors at run time.
func (s *Spec) groupSequences(g *graph.Graph, enc *graph.Tensor, xs []*graph.Tensor, registers int64) []*graph.Tensor {
	if len(xs) == 1 {
		if registers == 0 {
			return []*graph.Tensor{enc}
		}
		return []*graph.Tensor{g.Slice(enc, []int{1}, []int64{0}, []int64{-registers})}
	}
	dynamic := false
	for _, x := range xs {
		dynamic = dynamic || x.Dim(1) < 0
	}
	if !dynamic {
		var seqs []*graph.Tensor
		var offset int64
		for _, x := range xs {
			t := x.Dim(1)
			seqs = append(seqs, g.Slice(enc, []int{1}, []int64{offset}, []int64{offset + t}))
			offset += t
		}
		return seqs
	}
	defer g.Scope("group_split")()
	lengths := make([]*graph.Tensor, 0, len(xs)+1)
	outs := make([]graph.TensorType, 0, len(xs)+1)
	for _, x := range xs {
		lengths = append(lengths, g.Op("Shape", []*graph.Tensor{x}, []graph.TensorType{{DType: graph.Int64, Shape: graph.Shape{1}}},
			graph.IntAttr("start", 1), graph.IntAttr("end", 2))[0])
		sh := enc.Shape().Clone()
		sh[1] = x.Dim(1)
		outs = append(outs, graph.TensorType{DType: enc.DType(), Shape: sh})
	}
	if registers > 0 {
		lengths = append(lengths, g.Int64s(registers))
		sh := enc.Shape().Clone()
		sh[1] = registers
		outs = append(outs, graph.TensorType{DType: enc.DType(), Shape: sh})
	}
	split := g.Op("Split", []*graph.Tensor{enc, g.Concat(0, lengths...)}, outs, graph.IntAttr("axis", 1))
	return split[:len(xs)]
}

// predictions adds each task's prediction output.
func (s *Spec) predictions(g *graph.Graph, f *forward, tasks func(Task) bool) {
	for _, task := range s.Tasks {
		if !tasks(task) {
			continue
		}
		pop := g.Scope(task.Name + "/predict")
		h := f.heads[task.Name]
		switch task.Kind {
		case JetClassification, ConstituentClassification:
			g.Output(PredictionOutput(task.Name), classProbabilities(g, task, h))
		case Vertexing:
			g.Output(PredictionOutput(task.Name), g.Sigmoid(h))
		case JetRegression, ConstituentRegression:
			g.Output(PredictionOutput(task.Name), s.unscale(g, task, h, f.denoms[task.Name]))
		case JetGaussianRegression, ConstituentGaussianRegression:
			n := int64(len(task.Targets))
			parts := g.Split(h, -1, n, n)
			g.Output(PredictionOutput(task.Name), s.unscale(g, task, parts[0], f.denoms[task.Name]))
			g.Output(VarianceOutput(task.Name), s.unscaleVariance(g, task, nn.GaussianVariance(g, parts[1]), f.denoms[task.Name]))
		}
		pop()
	}
}

// classProbabilities are a classification's probabilities from its
// logits [..., C]: the softmax, or the sigmoid of a binary task's one
// logit (Salt's run_inference for BCEWithLogitsLoss).
func classProbabilities(g *graph.Graph, task Task, logits *graph.Tensor) *graph.Tensor {
	if task.Binary() {
		return g.Sigmoid(logits)
	}
	return g.Softmax(logits, -1)
}

// columns applies f to each target's column k of x [..., n] and
// concatenates the results; x itself where f leaves every column as it is.
func columns(g *graph.Graph, x *graph.Tensor, n int, f func(k int, col *graph.Tensor) *graph.Tensor) *graph.Tensor {
	sizes := make([]int64, n)
	for i := range sizes {
		sizes[i] = 1
	}
	cols := []*graph.Tensor{x}
	if n > 1 {
		// A copy: Split returns its node's own list of outputs.
		cols = append([]*graph.Tensor(nil), g.Split(x, -1, sizes...)...)
	}
	changed := false
	for k, c := range cols {
		if y := f(k, c); y != c {
			cols[k], changed = y, true
		}
	}
	if !changed {
		return x
	}
	if n == 1 {
		return cols[0]
	}
	return g.Concat(-1, cols...)
}

// denominators returns each target's raw denominator [..., 1] of a task
// with DenominatorScaling (nil for targets without one): from the
// DenominatorInput in graphs with labels, else from the raw inputs of the
// deployment graphs.
func (s *Spec) denominators(g *graph.Graph, task Task, in *inputs) []*graph.Tensor {
	if !task.HasDenominators() {
		return nil
	}
	defer g.Scope(task.Name + "/denominators")()
	out := make([]*graph.Tensor, len(task.Targets))
	for k, sc := range task.Scaling {
		if sc.Op != DenominatorScaling {
			continue
		}
		if d := in.denoms[task.Name]; d != nil {
			out[k] = g.Slice(d, []int{d.Rank() - 1}, []int64{int64(k)}, []int64{int64(k + 1)})
			continue
		}
		if task.Kind.PerConstituent() {
			gi := s.groupIndex(task.Input)
			raw := in.rawSeqs[gi]
			if raw == nil {
				g.Errorf("task %s: the raw %s the denominators are read from are not inputs of this graph", task.Name, task.Input)
				return out
			}
			c := int64(slices.Index(s.Inputs[gi].Vars, sc.Denominator))
			out[k] = g.Slice(raw, []int{raw.Rank() - 1}, []int64{c}, []int64{c + 1})
			continue
		}
		if in.rawJets == nil {
			g.Errorf("task %s: the raw jet variables the denominators are read from are not inputs of this graph", task.Name)
			return out
		}
		c := int64(s.jetColumn(sc.Denominator))
		out[k] = g.Slice(in.rawJets, []int{1}, []int64{c}, []int64{c + 1})
	}
	return out
}

// scale applies a task's target scaling to raw targets y [..., n], with
// the denominators that denominators returns.
func (s *Spec) scale(g *graph.Graph, task Task, y *graph.Tensor, den []*graph.Tensor) *graph.Tensor {
	if task.Scaling == nil {
		return y
	}
	defer g.Scope("scale")()
	n := len(task.Targets)
	return columns(g, y, n, func(k int, c *graph.Tensor) *graph.Tensor {
		sc := task.Scaling[k]
		v := func(x float64) *graph.Tensor { return g.ScalarLike(c, x) }
		switch sc.Op {
		case NormScaling:
			return g.Div(g.Sub(c, v(sc.Mean)), v(sc.Std))
		case DenominatorScaling:
			return g.Div(c, den[k])
		case LogScaling:
			return g.Add(g.Mul(g.Log(g.Add(g.Mul(c, v(sc.XScale)), v(sc.XOff))), v(sc.OpScale)), v(sc.OpOff))
		case ExpScaling:
			return g.Add(g.Mul(g.Exp(g.Add(g.Mul(c, v(sc.XScale)), v(sc.XOff))), v(sc.OpScale)), v(sc.OpOff))
		case LinearScaling:
			return g.Add(g.Mul(g.Add(g.Mul(c, v(sc.XScale)), v(sc.XOff)), v(sc.OpScale)), v(sc.OpOff))
		}
		return c
	})
}

// unscale maps predictions [..., n] in the scaled space back to the
// targets' units: the inverse of scale.
func (s *Spec) unscale(g *graph.Graph, task Task, h *graph.Tensor, den []*graph.Tensor) *graph.Tensor {
	if task.Scaling == nil {
		return h
	}
	defer g.Scope("unscale")()
	n := len(task.Targets)
	return columns(g, h, n, func(k int, c *graph.Tensor) *graph.Tensor {
		sc := task.Scaling[k]
		v := func(x float64) *graph.Tensor { return g.ScalarLike(c, x) }
		switch sc.Op {
		case NormScaling:
			return g.Add(g.Mul(c, v(sc.Std)), v(sc.Mean))
		case DenominatorScaling:
			return g.Mul(c, den[k])
		case LogScaling:
			return g.Div(g.Sub(g.Exp(g.Div(g.Sub(c, v(sc.OpOff)), v(sc.OpScale))), v(sc.XOff)), v(sc.XScale))
		case ExpScaling:
			return g.Div(g.Sub(g.Log(g.Div(g.Sub(c, v(sc.OpOff)), v(sc.OpScale))), v(sc.XOff)), v(sc.XScale))
		case LinearScaling:
			return g.Div(g.Sub(g.Div(g.Sub(c, v(sc.OpOff)), v(sc.OpScale)), v(sc.XOff)), v(sc.XScale))
		}
		return c
	})
}

// unscaleVariance maps predicted variances [..., n] in the scaled space
// to the targets' units: an affine scaling y' = a·y + c divides them by a².
func (s *Spec) unscaleVariance(g *graph.Graph, task Task, v *graph.Tensor, den []*graph.Tensor) *graph.Tensor {
	if task.Scaling == nil {
		return v
	}
	defer g.Scope("unscale_variance")()
	n := len(task.Targets)
	return columns(g, v, n, func(k int, c *graph.Tensor) *graph.Tensor {
		sc := task.Scaling[k]
		if sc.Op == DenominatorScaling {
			return g.Mul(c, g.Mul(den[k], den[k]))
		}
		a, _ := sc.linearFactor()
		if a == 1 {
			return c
		}
		return g.Mul(c, g.ScalarLike(c, 1/(a*a)))
	})
}

// losses returns each task's unweighted loss as a numerator and a
// denominator (see nn.Mean).
func (s *Spec) losses(g *graph.Graph, f *forward, in *inputs) []nn.Mean {
	out := make([]nn.Mean, len(s.Tasks))
	for i, task := range s.Tasks {
		pop := g.Scope(task.Name + "/loss")
		h, label := f.heads[task.Name], in.labels[task.Name]
		switch task.Kind {
		case JetClassification, ConstituentClassification:
			if task.Binary() {
				out[i] = nn.BinaryCrossEntropyMean(g, "bce", h, label, s.entryMask(g, task, in))
			} else {
				out[i] = nn.CrossEntropyMean(g, "ce", h, label, s.entryMask(g, task, in), task.ClassWeights)
			}
		case Vertexing:
			out[i] = s.vertexingLoss(g, task, h, label, in)
		case JetRegression, JetGaussianRegression, ConstituentRegression, ConstituentGaussianRegression:
			out[i] = s.regressionLoss(g, task, h, label, in, f.denoms[task.Name])
		}
		if task.Mean == EntryMean {
			out[i] = nn.Mean{Num: out[i].Num, Den: s.entryCount(g, task, in), Floor: 1}
		}
		pop()
	}
	return out
}

// entryMask is the weight of each entry of a task in the loss ([B] or
// [B, T]): the jet weight, times validity for constituent tasks, times the
// task's sample weight.
func (s *Spec) entryMask(g *graph.Graph, task Task, in *inputs) *graph.Tensor {
	mask := in.jetWeight
	if task.Kind.PerConstituent() {
		mask = g.Mul(g.Cast(in.valid[s.groupIndex(task.Input)], graph.Float32), g.Unsqueeze(in.jetWeight, 1))
	}
	if w := in.sampleWeights[task.Name]; w != nil {
		mask = g.Mul(mask, w)
	}
	return mask
}

// entryCount is the denominator of a task's EntryMean: the number of
// entries of the batch's jets, Salt's mean over its loss tensor. A jet
// counts where its jet weight is not 0 (padding rows are 0); a
// constituent task counts every slot of the group (max_len per jet,
// padding included, as Salt's loss tensor has them), a regression every
// target.
func (s *Spec) entryCount(g *graph.Graph, task Task, in *inputs) *graph.Tensor {
	defer g.Scope("entries")()
	jets := g.Cast(g.Not(g.Equal(in.jetWeight, g.ScalarLike(in.jetWeight, 0))), graph.Float32)
	per := int64(1)
	if task.Kind.PerConstituent() {
		per *= int64(s.group(task.Input).MaxLen)
	}
	if task.Kind.Regression() {
		per *= int64(len(task.Targets))
	}
	n := g.ReduceSum(jets, []int{0}, false)
	if per == 1 {
		return n
	}
	return g.Mul(n, g.Scalar(graph.Float32, float64(per)))
}

// regressionLoss is a regression task's loss on the scaled targets (Salt's
// norm_params, target_denominators or scaler): MSE, Huber or the Gaussian
// NLL, a mean over the entries that have a target. A target that is NaN
// (missing) or that the scaling makes non-finite weighs 0 and is replaced
// by 0 before the loss, so it neither counts nor turns the loss into NaN.
func (s *Spec) regressionLoss(g *graph.Graph, task Task, h, label *graph.Tensor, in *inputs, den []*graph.Tensor) nn.Mean {
	if den == nil {
		den = s.denominators(g, task, in)
	}
	y := s.scale(g, task, label, den)
	finite := g.Not(g.Or(g.Op("IsNaN", []*graph.Tensor{y}, []graph.TensorType{{DType: graph.Bool, Shape: y.Shape()}})[0],
		g.Op("IsInf", []*graph.Tensor{y}, []graph.TensorType{{DType: graph.Bool, Shape: y.Shape()}})[0]))
	y = g.Where(finite, y, g.ScalarLike(y, 0))
	mask := g.Mul(g.Unsqueeze(s.entryMask(g, task, in), -1), g.Cast(finite, graph.Float32))
	if task.Kind.Gaussian() {
		n := int64(len(task.Targets))
		parts := g.Split(h, -1, n, n)
		return nn.GaussianNLLMean(g, "nll", parts[0], nn.GaussianVariance(g, parts[1]), y, mask)
	}
	if task.HuberDelta > 0 {
		return nn.HuberMean(g, "huber", h, y, mask, task.HuberDelta)
	}
	if task.Loss == L1Loss {
		return nn.L1Mean(g, "l1", h, y, mask)
	}
	return nn.MSEMean(g, "mse", h, y, mask)
}

// vertexingLoss is Salt's vertexing loss (VertexingTask.calculate_loss):
// binary cross-entropy on every ordered pair (i, j), i ≠ j, of valid
// constituents, with target 1 when both carry the same vertex index and it
// is not negative (negative means "no vertex"), summed with optional origin
// weights and divided by the number of true pairs in the batch, as Salt
// divides by match_matrix.sum(). Where a batch has no true pair at all
// Salt divides by zero (an infinite or NaN loss); salt-ort divides by 1
// there instead, so the value is Salt's whenever Salt's is finite.
func (s *Spec) vertexingLoss(g *graph.Graph, task Task, logits, vertex *graph.Tensor, in *inputs) nn.Mean {
	valid := in.valid[s.groupIndex(task.Input)]
	t := valid.Dim(1)
	eye := make([]float64, t*t)
	for i := int64(0); i < t; i++ {
		eye[i*t+i] = 1
	}
	notSelf := g.Not(g.Cast(g.Const("identity", graph.Bool, graph.Shape{t, t}, eye), graph.Bool))
	pairs := g.And(g.And(g.Unsqueeze(valid, 2), g.Unsqueeze(valid, 1)), notSelf) // [B,T,T]
	mask := g.Mul(g.Cast(pairs, graph.Float32), g.Unsqueeze(in.jetWeight, 1, 2))
	hasVertex := g.GreaterOrEqual(vertex, g.Scalar(graph.Int64, 0))
	same := g.And(g.Equal(g.Unsqueeze(vertex, 2), g.Unsqueeze(vertex, 1)),
		g.And(g.Unsqueeze(hasVertex, 2), g.Unsqueeze(hasVertex, 1)))
	target := g.Cast(same, graph.Float32)
	weight := mask
	if task.OriginWeighting {
		weight = g.Mul(mask, originPairWeights(g, in.origins[task.Name]))
	}
	terms := nn.BCEWithLogitsTerms(g, logits, target)
	all := []int{0, 1, 2}
	num := g.ReduceSum(g.Mul(terms, weight), all, false)
	positives := g.ReduceSum(g.Mul(target, mask), all, false)
	return nn.Mean{Num: num, Den: positives, Floor: 1}
}

// originPairWeights is Salt's vertexing pair weight from track origin
// labels (fromB, fromBC, fromC = 3, 4, 5 are heavy flavour; 1 is fake):
// 2 when both tracks are heavy or fake and at least one is heavy, 0 when
// both are fake, 1 otherwise.
func originPairWeights(g *graph.Graph, origin *graph.Tensor) *graph.Tensor {
	is := func(v float64) *graph.Tensor { return g.Equal(origin, g.Scalar(graph.Int64, v)) }
	heavy := g.Or(g.Or(is(3), is(4)), is(5))
	fake := is(1)
	flagged := g.Or(heavy, fake)
	pairFlagged := g.And(g.Unsqueeze(flagged, 2), g.Unsqueeze(flagged, 1))
	pairHeavy := g.Or(g.Unsqueeze(heavy, 2), g.Unsqueeze(heavy, 1))
	pairFake := g.And(g.Unsqueeze(fake, 2), g.Unsqueeze(fake, 1))
	one, two, zero := g.Scalar(graph.Float32, 1), g.Scalar(graph.Float32, 2), g.Scalar(graph.Float32, 0)
	return g.Where(pairFake, zero, g.Where(g.And(pairFlagged, pairHeavy), two, one))
}

// totalLoss returns Σ task_weights[i]·losses[i] with task_weights a graph
// input (or, with the GeometricMean loss mode, their weighted geometric
// mean), and adds the per-task and total loss outputs. With sharded, each
// task's loss divides by its whole-batch denominator, an input
// (LossDenInput), so that the outputs are this shard's share of the
// batch's losses and the ranks' gradients sum to the batch's gradient.
//
// extra, when not nil, is added to the total unweighted: the MaskFormer
// losses (objectTrainingLoss), which carry Salt's loss weights.
func (s *Spec) totalLoss(g *graph.Graph, means []nn.Mean, sharded bool, extra *graph.Tensor) *graph.Tensor {
	losses := make([]*graph.Tensor, len(means))
	for i, m := range means {
		pop := g.Scope(s.Tasks[i].Name + "/loss")
		if sharded {
			losses[i] = m.Over(g, g.Input(LossDenInput(s.Tasks[i].Name), graph.Float32, graph.Shape{}))
		} else {
			losses[i] = m.Value(g)
		}
		pop()
	}
	w := g.Input(TaskWeightsInput, graph.Float32, graph.Shape{int64(len(s.Tasks))})
	pop := g.Scope("loss")
	stacked := make([]*graph.Tensor, len(losses))
	for i, l := range losses {
		stacked[i] = g.Reshape(l, 1)
	}
	var total *graph.Tensor
	if s.LossMode == GeometricMean {
		// exp(Σ w_i·ln L_i / n): the n-th root of the product, without
		// forming a product that under- or overflows.
		logs := g.Mul(g.Log(g.Concat(0, stacked...)), w)
		total = g.Exp(g.Mul(g.ReduceSum(logs, []int{0}, false), g.Scalar(graph.Float32, 1/float64(len(losses)))))
	} else {
		total = g.ReduceSum(g.Mul(g.Concat(0, stacked...), w), []int{0}, false)
	}
	if extra != nil {
		total = g.Add(total, extra)
	}
	pop()
	for i, task := range s.Tasks {
		g.Output(TaskLossOutput(task.Name), losses[i])
	}
	g.Output(LossOutput, total)
	return total
}

// ErrShardedGLS is the error of a sharded graph with the GeometricMean loss
// mode: its gradient scales each task's by a ratio of the whole batch's
// losses, which the ranks of a data-parallel job know only after their
// gradients are computed, so their gradients do not sum to the batch's.
var ErrShardedGLS = errors.New("the geometric loss strategy (GLS) combines the whole batch's task losses nonlinearly, so the ranks of a data-parallel job cannot sum their gradients to the batch's: train GLS in one process, or combine the losses with training.loss_weighting = \"static\" or \"uncertainty\"")

// TrainOptions configure the training-step graph.
type TrainOptions struct {
	Batch int
	Step  optim.Step
	// Predictions adds the jet- and constituent-level predictions (not the
	// pair probabilities) to the outputs, for training metrics.
	Predictions bool
	// Compute is the element type the forward pass and its gradient run
	// in (0: Float32, the graph salt-ort has always built). Float16 or
	// BFloat16 make a mixed-precision step: the flat parameters, the
	// optimizer state and update, lr and step stay float32 ("master
	// weights", Step.Master), and each parameter is cast to Compute where
	// the forward pass reads it; the jet and constituent inputs are
	// declared float32 as usual and cast after declaration, dropout masks
	// stay float32 inputs, and the heads' outputs are cast back to float32
	// before the losses and predictions, so the losses, their sums and the
	// outputs are float32. LayerNormalization runs in Compute with
	// stash_type 1, which computes its statistics in float32. Float16 turns
	// on Step.LossScaling (bfloat16 has float32's range and does not need
	// it). Float64 is accepted too: ONNX Runtime's CPU provider has no
	// float16 kernels, so tests check the casts with float64.
	Compute graph.DType
	// RecomputeEncoder keeps only each encoder layer's input from the
	// forward pass to the backward and recomputes the layer's other
	// activations there, one layer at a time (see recomputeLayers): the
	// step then holds a quarter of the activations of a 4-layer encoder at
	// the price of computing the encoder's forward pass twice.
	RecomputeEncoder bool
	// ChunkEncoder runs the encoder on chunks of jets, one after the
	// other, in the forward pass and in the backward, rather than on the
	// whole batch at once (see runEncoder: about 20 GN2 jets per chunk).
	// Jets do not meet in the encoder, so the step computes the same, its
	// parameters' gradients summed over the chunks in another order
	// (equal within float32 rounding); its tensors are a chunk's, which on
	// the CPU keeps them in the caches at large batches and, with
	// RecomputeEncoder, lowers the step's peak memory.
	ChunkEncoder bool
	// Sharded makes the batch one rank's shard of a data-parallel batch:
	// each task's loss divides by the whole batch's denominator, read from
	// LossDenInput(task), so that the loss outputs are the shard's shares
	// of the batch's losses and the ranks' gradients sum to its gradient.
	Sharded bool
}

// computeType checks a compute type and maps 0 to Float32.
func computeType(d graph.DType) (graph.DType, error) {
	switch d {
	case 0:
		return graph.Float32, nil
	case graph.Float32, graph.Float64, graph.Float16, graph.BFloat16:
		return d, nil
	}
	return 0, fmt.Errorf("compute type %s is not float32, float64, float16 or bfloat16", d)
}

// toCompute casts the inputs the forward pass reads (jets and
// constituents) to the compute type; for Float32 it changes nothing.
func (in *inputs) toCompute(g *graph.Graph, compute graph.DType) {
	defer g.Scope("to_" + compute.String())()
	in.jets = g.Cast(in.jets, compute)
	for i := range in.seqs {
		in.seqs[i] = g.Cast(in.seqs[i], compute)
	}
}

// headsToFloat32 casts each task's head output to float32 for the losses
// and predictions, in task order so that node names are deterministic.
func (s *Spec) headsToFloat32(g *graph.Graph, f *forward) {
	for _, task := range s.Tasks {
		pop := g.Scope(task.Name + "/to_float32")
		f.heads[task.Name] = g.Cast(f.heads[task.Name], graph.Float32)
		pop()
	}
}

// TrainStep builds the training step: the forward pass with dropout, the
// task losses, their weighted sum with weights from the task_weights
// input, the gradient and the optimizer update over the flat parameters
// (see optim.BuildStep), optionally in mixed precision (see
// TrainOptions.Compute).
func (s *Spec) TrainStep(opts TrainOptions) (*graph.Graph, *optim.Layout, error) {
	if err := s.Validate(); err != nil {
		return nil, nil, err
	}
	compute, err := computeType(opts.Compute)
	if err != nil {
		return nil, nil, fmt.Errorf("model %s: training step: %w", s.Name, err)
	}
	if opts.Sharded && s.LossMode == GeometricMean {
		return nil, nil, fmt.Errorf("model %s: training step: %w", s.Name, ErrShardedGLS)
	}
	g, total := s.trainingLoss(s.Name+"_train_step", opts, compute)
	layout, err := optim.BuildStep(g, total, trainStepConfig(opts, compute))
	if err != nil {
		return nil, nil, fmt.Errorf("model %s: training step: %w", s.Name, err)
	}
	return g, layout, nil
}

// trainingLoss starts a training graph: the batch inputs, the forward pass
// with dropout in the compute type, the task losses (sharded with
// opts.Sharded), their weighted sum, which it returns, and with
// opts.Predictions the predictions other than pair probabilities.
func (s *Spec) trainingLoss(name string, opts TrainOptions, compute graph.DType) (*graph.Graph, *graph.Tensor) {
	g := graph.New(name)
	in := s.declareInputs(g, int64(opts.Batch), true)
	in.toCompute(g, compute)
	f := s.forwardWith(g, in, forwardOptions{training: true, chunkPairs: true, objectLosses: true, chunkEncoder: opts.ChunkEncoder})
	if opts.RecomputeEncoder {
		for _, scope := range f.encoderScopes {
			recomputeLayers(g, scope+"layer", s.Encoder.Layers)
		}
	}
	s.headsToFloat32(g, f)
	var objects *graph.Tensor
	if s.Objects != nil {
		if opts.Sharded {
			g.Errorf("the MaskFormer losses are not split over the ranks of a data-parallel job yet: train a mask decoder in one process")
		}
		objects = s.objectTrainingLoss(g, f, in, int64(opts.Batch))
	}
	total := s.totalLoss(g, s.losses(g, f, in), opts.Sharded, objects)
	if opts.Predictions {
		s.predictions(g, f, func(t Task) bool { return t.Kind != Vertexing })
	}
	return g, total
}

// GradientStep builds the first half of a training step split for
// data-parallel training: TrainStep's forward pass and losses (sharded
// with opts.Sharded) and the flat gradient as the output optim.GradOutput
// (see optim.BuildGradient); UpdateStep builds the second half.
func (s *Spec) GradientStep(opts TrainOptions) (*graph.Graph, *optim.Layout, error) {
	if err := s.Validate(); err != nil {
		return nil, nil, err
	}
	compute, err := computeType(opts.Compute)
	if err != nil {
		return nil, nil, fmt.Errorf("model %s: gradient graph: %w", s.Name, err)
	}
	if opts.Sharded && s.LossMode == GeometricMean {
		return nil, nil, fmt.Errorf("model %s: gradient graph: %w", s.Name, ErrShardedGLS)
	}
	g, total := s.trainingLoss(s.Name+"_gradient", opts, compute)
	layout, err := optim.BuildGradient(g, total, trainStepConfig(opts, compute))
	if err != nil {
		return nil, nil, fmt.Errorf("model %s: gradient graph: %w", s.Name, err)
	}
	return g, layout, nil
}

// UpdateStep builds the second half of a split training step: the
// optimizer update of the summed gradient (optim.BuildUpdate) for the
// layout GradientStep returned with the same options.
func (s *Spec) UpdateStep(opts TrainOptions, layout *optim.Layout) (*graph.Graph, error) {
	compute, err := computeType(opts.Compute)
	if err != nil {
		return nil, fmt.Errorf("model %s: update graph: %w", s.Name, err)
	}
	g, err := optim.BuildUpdate(s.Name+"_update", layout, trainStepConfig(opts, compute))
	if err != nil {
		return nil, fmt.Errorf("model %s: update graph: %w", s.Name, err)
	}
	return g, nil
}

// trainStepConfig completes opts.Step for the compute type: float32 master
// weights by default, loss scaling for float16.
func trainStepConfig(opts TrainOptions, compute graph.DType) optim.Step {
	step := opts.Step
	if step.Master == 0 {
		step.Master = graph.Float32
	}
	if compute == graph.Float16 {
		step.LossScaling = true
	}
	return step
}

// Denominators builds the graph that computes, from a batch's masks,
// weights and labels alone, each task's loss denominator
// (LossDenOutput): what data-parallel training sums over the ranks'
// shards before their gradient graphs divide by it. The forward pass is
// not part of it: the losses' numerators, which would need it, are not
// outputs, and the graph keeps only what its outputs need.
func (s *Spec) Denominators(batch int) (*graph.Graph, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	g := graph.New(s.Name + "_denominators")
	in := s.declareInputs(g, int64(batch), true)
	f := &forward{heads: map[string]*graph.Tensor{}}
	for _, task := range s.Tasks {
		// Stand-ins of the heads' shapes: the denominators do not read them.
		var shape graph.Shape
		switch task.Kind {
		case JetClassification, JetRegression, JetGaussianRegression:
			shape = graph.Shape{int64(batch), int64(task.Outputs())}
		case ConstituentClassification, ConstituentRegression, ConstituentGaussianRegression:
			shape = graph.Shape{int64(batch), int64(s.group(task.Input).MaxLen), int64(task.Outputs())}
		case Vertexing:
			t := int64(s.group(task.Input).MaxLen)
			shape = graph.Shape{int64(batch), t, t}
		}
		f.heads[task.Name] = g.Zeros(graph.Float32, shape)
	}
	for i, m := range s.losses(g, f, in) {
		g.Output(LossDenOutput(s.Tasks[i].Name), m.Den)
	}
	if err := g.Err(); err != nil {
		return nil, fmt.Errorf("model %s: denominator graph: %w", s.Name, err)
	}
	return g, nil
}

// EvalOptions configure the evaluation graph.
type EvalOptions struct {
	Batch int
	// Compute is the element type of the forward pass, as in
	// TrainOptions (0: Float32); the parameters stay a float32 vector.
	Compute graph.DType
	// ChunkEncoder runs the encoder on chunks of jets, as in
	// TrainOptions; the outputs are the same.
	ChunkEncoder bool
}

// Eval builds the evaluation graph: the forward pass without dropout, the
// task losses and every prediction, reading the same flat parameter vector
// as the training step.
func (s *Spec) Eval(batch int) (*graph.Graph, []graph.ParamSlot, error) {
	return s.EvalWith(EvalOptions{Batch: batch})
}

// EvalWith is Eval with options, such as the compute type of a
// mixed-precision training run.
func (s *Spec) EvalWith(opts EvalOptions) (*graph.Graph, []graph.ParamSlot, error) {
	if err := s.Validate(); err != nil {
		return nil, nil, err
	}
	compute, err := computeType(opts.Compute)
	if err != nil {
		return nil, nil, fmt.Errorf("model %s: evaluation graph: %w", s.Name, err)
	}
	g := graph.New(s.Name + "_eval")
	in := s.declareInputs(g, int64(opts.Batch), true)
	in.toCompute(g, compute)
	f := s.forwardWith(g, in, forwardOptions{chunkPairs: true, objectLosses: true, chunkEncoder: opts.ChunkEncoder})
	s.headsToFloat32(g, f)
	var objects *graph.Tensor
	if s.Objects != nil {
		objects = s.objectEvalOutputs(g, f, in, int64(opts.Batch))
	}
	s.totalLoss(g, s.losses(g, f, in), false, objects)
	s.predictions(g, f, func(Task) bool { return true })
	_, _, layout := g.FlattenParamsAs(optim.ParamsInput, graph.Float32)
	if err := g.Err(); err != nil {
		return nil, nil, fmt.Errorf("model %s: evaluation graph: %w", s.Name, err)
	}
	return g, layout, nil
}

package model

import (
	"math"
	"reflect"
	"strconv"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/nn"
)

// This file builds the forward pass of the deployment graph for one jet at
// a time, the way ATLAS calls it: the same parameters (names, shapes) and
// the same function as forward, in operators that ONNX Runtime runs fast
// on one CPU thread.
//
//   - Everything is two-dimensional: constituents [n, d], the jet [1, d]. A
//     matrix product with its bias is one Gemm, which ONNX Runtime fuses
//     with a following ReLU; forward's [B, T, d] layout keeps them apart.
//   - Layer normalisation is written out (ReduceMean, Sub, Mul, ReduceMean,
//     Add, Sqrt, Div): ONNX Runtime 1.29's LayerNormalization kernel takes
//     about 5× as long on GN2's [41, 256] rows.
//   - Constant factors move into the weights in the graph, where ONNX
//     Runtime folds them when it loads the model: the division by the
//     input standard deviation into the init nets' first layers, the
//     attention's 1/√d_head into the query columns of the packed
//     projection.
//   - Attention splits the packed q, k, v with one Reshape and one
//     Transpose to [3, H, T, d_head], and gets no mask: the one-jet
//     interface has no padding.
//   - The heads on [pooled, x_i] and [pooled, x_i, x_j] apply their first
//     layer to each part and add the products (as forward does), the
//     pooled part once per jet, folded into the bias of the constituent
//     part's Gemm.
//
// The results equal forward's up to float32 rounding (the folded factors
// and summation orders differ); TestOneJetMatchesReference checks them.

// oneJetFields lists, per struct type of a Spec, the fields oneJetForward
// implements. A field it does not know that holds a non-zero value (a
// model option added later) makes Deploy build the reference graph from
// forward instead, so that an option is never silently ignored.
var oneJetFields = map[reflect.Type][]string{
	reflect.TypeOf(Spec{}):             {"Name", "JetVars", "AttachVars", "GlobalVars", "Inputs", "EmbedDim", "Encoder", "Tasks", "MuP"},
	reflect.TypeOf(Input{}):            {"Name", "Vars", "MaxLen", "InitHidden", "Activation", "FinalActivation", "NoJetVars", "Dropout", "MuP"},
	reflect.TypeOf(nn.EncoderConfig{}): {"Kind", "Hidden", "Layers", "Heads", "DenseRatio", "Activation", "Registers", "OutDim", "NoFinalNorm", "NoOutProj", "Dropout", "AttnDropout", "Training", "MuP", "ReadoutMult"},
	reflect.TypeOf(Task{}):             {"Name", "Kind", "Input", "Classes", "Targets", "Hidden", "Activation", "Weight", "ClassWeights", "HuberDelta", "OriginWeighting", "Loss", "Mean", "Dropout"},
}

// onlyKnownFields reports whether every field of the struct v that
// oneJetFields does not list holds its zero value.
func onlyKnownFields(v reflect.Value) bool {
	known := map[string]bool{}
	for _, f := range oneJetFields[v.Type()] {
		known[f] = true
	}
	for i := 0; i < v.NumField(); i++ {
		if !known[v.Type().Field(i).Name] && !v.Field(i).IsZero() {
			return false
		}
	}
	return true
}

// oneJetSupported reports whether oneJetForward builds the model s
// describes: every option it has is one oneJetForward implements.
func (s *Spec) oneJetSupported() bool {
	known := func(a nn.Activation) bool {
		return a == nn.ReLU || a == nn.SiLU || a == nn.GELU || a == nn.Mish || a == nn.None || a == ""
	}
	if !onlyKnownFields(reflect.ValueOf(*s)) || !onlyKnownFields(reflect.ValueOf(s.Encoder)) || !known(s.Encoder.Activation) {
		return false
	}
	if s.Encoder.Kind == nn.CrossAttentionKind {
		return false // the reference graph from forward deploys it
	}
	for _, in := range s.Inputs {
		if !onlyKnownFields(reflect.ValueOf(in)) || !known(in.Activation) || !known(in.FinalActivation) {
			return false
		}
	}
	for _, t := range s.Tasks {
		if !onlyKnownFields(reflect.ValueOf(t)) || !known(t.Activation) {
			return false
		}
		switch t.Kind {
		case JetClassification, JetRegression, JetGaussianRegression, ConstituentClassification, Vertexing:
		default:
			return false
		}
	}
	// A model without an encoder (DeepSets, jet-only) pools differently.
	return len(s.Inputs) > 0 && s.Encoder.Layers > 0
}

// gemm returns a·b + c for a [M, K], b [K, N] and c nil, [N] or [1, N]
// (ONNX Gemm).
func gemm(g *graph.Graph, a, b, c *graph.Tensor) *graph.Tensor {
	ins := []*graph.Tensor{a, b}
	if c != nil {
		ins = append(ins, c)
	}
	return g.Op("Gemm", ins, []graph.TensorType{{DType: a.DType(), Shape: graph.Shape{a.Dim(0), b.Dim(1)}}})[0]
}

// linear2 is nn.Linear for x [M, in]: the same parameters, as one Gemm.
func linear2(g *graph.Graph, name string, x *graph.Tensor, out int) *graph.Tensor {
	defer g.Scope(name)()
	in := x.Dim(-1)
	bound := 1 / math.Sqrt(float64(in))
	w := g.ParamOf("weight", x.DType(), graph.Shape{in, int64(out)}, graph.InitUniform(bound))
	b := g.ParamOf("bias", x.DType(), graph.Shape{int64(out)}, graph.InitUniform(bound))
	return gemm(g, x, w, b)
}

// concatLinearParams declares nn.ConcatLinear's parameters for parts of
// the given sizes and returns the weight's row blocks, one per part, and
// the bias.
func concatLinearParams(g *graph.Graph, dt graph.DType, sizes []int64, out int) ([]*graph.Tensor, *graph.Tensor) {
	var in int64
	for _, s := range sizes {
		in += s
	}
	bound := 1 / math.Sqrt(float64(in))
	w := g.ParamOf("weight", dt, graph.Shape{in, int64(out)}, graph.InitUniform(bound))
	b := g.ParamOf("bias", dt, graph.Shape{int64(out)}, graph.InitUniform(bound))
	if len(sizes) == 1 {
		return []*graph.Tensor{w}, b
	}
	return g.Split(w, 0, sizes...), b
}

// layerNorm2 is nn.Norm (no affine parameters, ε = 1e-5) over the last
// axis, written out in elementary operators.
func layerNorm2(g *graph.Graph, name string, x *graph.Tensor) *graph.Tensor {
	defer g.Scope(name)()
	c := g.Sub(x, g.ReduceMean(x, []int{-1}, true))
	v := g.ReduceMean(g.Mul(c, c), []int{-1}, true)
	return g.Div(c, g.Sqrt(g.Add(v, g.ScalarLike(x, 1e-5))))
}

// oneJetForward computes the model on one jet: raw jet variables jets
// [1, n_jet_vars] and the raw variables of each group's constituents
// feats[i] [n_i, n_vars], every constituent valid. It declares the
// parameters forward declares and returns the same heads, without the
// batch axis: [1, k] per jet task, [n, k] per constituent task, [n, n]
// per vertexing task.
func (s *Spec) oneJetForward(g *graph.Graph, jets *graph.Tensor, feats []*graph.Tensor, norm Normalisation) *forward {
	jn := normalise(g, "jets", jets, norm.Jets)
	var att *graph.Tensor // [1, J] the attached jet variables
	if a := s.attached(); len(a) > 0 {
		att = s.jetColumns(g, jn, a)
	}
	xs := make([]*graph.Tensor, len(s.Inputs))
	for i, grp := range s.Inputs {
		jetPart := att
		if grp.NoJetVars {
			jetPart = nil
		}
		xs[i] = s.oneJetInit(g, grp, jetPart, feats[i], norm.Inputs[grp.Name])
	}
	x := xs[0]
	if len(xs) > 1 {
		x = g.Concat(0, xs...)
	}
	sj := *s
	if sj.Encoder.MuP {
		// The μP readout's factor, as encode sets it.
		sj.Encoder.ReadoutMult = 1 / s.WidthMult()
	}
	enc, pooled := sj.oneJetEncode(g, x)
	f := &forward{pooled: pooled, heads: map[string]*graph.Tensor{}}
	f.seq = oneJetSplit(g, enc, xs, int64(s.Encoder.Appended()))
	if len(s.GlobalVars) > 0 {
		pooled = g.Concat(1, pooled, s.jetColumns(g, jn, s.GlobalVars))
	}
	for _, task := range s.Tasks {
		sizes := append(append([]int{}, task.Hidden...), task.Outputs())
		switch task.Kind {
		case JetClassification, JetRegression, JetGaussianRegression:
			f.heads[task.Name] = oneJetHead(g, task.Name, pooled, nil, false, sizes, task.Activation)
		case ConstituentClassification:
			f.heads[task.Name] = oneJetHead(g, task.Name, pooled, f.seq[s.groupIndex(task.Input)], false, sizes, task.Activation)
		case Vertexing:
			f.heads[task.Name] = oneJetHead(g, task.Name, pooled, f.seq[s.groupIndex(task.Input)], true, sizes, task.Activation)
		}
	}
	return f
}

// oneJetSplit splits the encoder output enc [Σ n_g + registers, O] into
// each group's constituents, registers dropped, at the groups' lengths
// read from xs at run time.
func oneJetSplit(g *graph.Graph, enc *graph.Tensor, xs []*graph.Tensor, registers int64) []*graph.Tensor {
	if len(xs) == 1 {
		if registers == 0 {
			return []*graph.Tensor{enc}
		}
		return []*graph.Tensor{g.Slice(enc, []int{0}, []int64{0}, []int64{-registers})}
	}
	defer g.Scope("group_split")()
	lengths := make([]*graph.Tensor, 0, len(xs)+1)
	outs := make([]graph.TensorType, 0, len(xs)+1)
	for _, x := range xs {
		lengths = append(lengths, g.Op("Shape", []*graph.Tensor{x}, []graph.TensorType{{DType: graph.Int64, Shape: graph.Shape{1}}},
			graph.IntAttr("start", 0), graph.IntAttr("end", 1))[0])
		outs = append(outs, graph.TensorType{DType: enc.DType(), Shape: graph.Shape{-1, enc.Dim(1)}})
	}
	if registers > 0 {
		lengths = append(lengths, g.Int64s(registers))
		outs = append(outs, graph.TensorType{DType: enc.DType(), Shape: graph.Shape{registers, enc.Dim(1)}})
	}
	split := g.Op("Split", []*graph.Tensor{enc, g.Concat(0, lengths...)}, outs, graph.IntAttr("axis", 0))
	return split[:len(xs)]
}

// oneJetInit is the init net of one group on raw constituents x [n, V]:
// forward's head over [jets, x], with the normalisation (x − mean)/std
// applied as x − mean and a first-layer weight divided by std.
func (s *Spec) oneJetInit(g *graph.Graph, grp Input, jets, x *graph.Tensor, a Affine) *graph.Tensor {
	defer g.Scope("init/" + grp.Name)()
	sizes := append(append([]int{}, grp.InitHidden...), s.EmbedDim)
	v := x.Dim(-1)
	if int64(len(a.Mean)) != v || len(a.Std) != len(a.Mean) {
		g.Errorf("normalisation of %s: %d means, %d stds for %d variables", grp.Name, len(a.Mean), len(a.Std), v)
		return x
	}
	mean := make([]float64, v)
	inv := make([]float64, v)
	for i := range mean {
		mean[i], inv[i] = float64(a.Mean[i]), 1/float64(a.Std[i])
	}
	xc := g.Sub(x, g.Const("mean", graph.Float32, graph.Shape{v}, mean))
	pop := g.Scope("0")
	parts := []int64{v}
	if jets != nil {
		parts = []int64{jets.Dim(-1), v}
	}
	ws, b := concatLinearParams(g, x.DType(), parts, sizes[0])
	wx := g.Mul(ws[len(ws)-1], g.Const("inv_std", graph.Float32, graph.Shape{v, 1}, inv))
	c := b
	if jets != nil {
		c = gemm(g, jets, ws[0], b)
	}
	y := gemm(g, xc, wx, c)
	pop()
	for i := 1; i < len(sizes); i++ {
		y = linear2(g, strconv.Itoa(i), nn.Activate(g, y, grp.Activation), sizes[i])
	}
	return nn.Activate(g, y, grp.FinalActivation)
}

// oneJetEncoder is nn.Encoder on one jet's constituents x [n, D], all
// valid: the registers appended, the pre-norm layers, the output
// projection and the final norm. It returns [n + registers, O].
func oneJetEncoder(g *graph.Graph, name string, x *graph.Tensor, cfg nn.EncoderConfig) *graph.Tensor {
	defer g.Scope(name)()
	if cfg.Registers > 0 {
		reg := g.ParamOf("registers", x.DType(), graph.Shape{int64(cfg.Registers), x.Dim(-1)}, graph.InitNormal(1e-4))
		x = g.Concat(0, x, reg)
	}
	for i := 0; i < cfg.Layers; i++ {
		x = oneJetLayer(g, "layer"+strconv.Itoa(i), x, cfg)
	}
	if cfg.OutDim > 0 {
		if cfg.MuP && cfg.ReadoutMult != 0 {
			// μP's MuReadout: the input times output_mult/width_mult.
			pop := g.Scope("out_proj")
			x = g.Mul(x, g.ScalarLike(x, cfg.ReadoutMult))
			pop()
		}
		x = linear2(g, "out_proj", x, cfg.OutDim)
	}
	if !cfg.NoFinalNorm {
		x = layerNorm2(g, "out_norm", x)
	}
	return x
}

// oneJetLayer is nn.EncoderLayer on x [T, D] without padding.
func oneJetLayer(g *graph.Graph, name string, x *graph.Tensor, cfg nn.EncoderConfig) *graph.Tensor {
	defer g.Scope(name)()
	d := x.Dim(-1)
	x = g.Add(x, oneJetAttention(g, "attn", layerNorm2(g, "attn_norm", x), int64(cfg.Heads), cfg.MuP))
	pop := g.Scope("dense")
	hid := nn.Activate(g, linear2(g, "0", layerNorm2(g, "norm", x), cfg.DenseRatio*int(d)), cfg.Activation)
	f := linear2(g, "1", hid, int(d))
	pop()
	return g.Add(x, f)
}

// oneJetAttention is nn.SelfAttention on x [T, D] without a mask, with
// μP's 1/d_h score scale when mup is set.
func oneJetAttention(g *graph.Graph, name string, x *graph.Tensor, h int64, mup bool) *graph.Tensor {
	defer g.Scope(name)()
	d := x.Dim(-1)
	dh := d / h
	dt := x.DType()
	pop := g.Scope("in_proj")
	w := g.ParamOf("weight", dt, graph.Shape{d, 3 * d}, graph.InitUniform(math.Sqrt(6/float64(4*d))))
	b := g.ParamOf("bias", dt, graph.Shape{3 * d}, graph.InitZeros())
	// 1/√d_h (μP: 1/d_h) on the query columns of the weight and bias.
	scale := make([]float64, 3*d)
	for i := range scale {
		scale[i] = 1
		if int64(i) < d {
			scale[i] = nn.AttentionScale(int(dh), mup)
		}
	}
	sc := g.Const("query_scale", dt, graph.Shape{3 * d}, scale)
	qkv := gemm(g, x, g.Mul(w, sc), g.Mul(b, sc)) // [T, 3D]
	pop()
	heads := g.Transpose(g.Reshape(qkv, -1, 3, h, dh), 1, 2, 0, 3) // [3, H, T, dh]
	qkvs := g.Split(heads, 0, 1, 1, 1)                             // [1, H, T, dh] each
	scores := g.MatMul(qkvs[0], g.Transpose(qkvs[1], 0, 1, 3, 2))  // [1, H, T, T]
	o := g.MatMul(g.Softmax(scores, -1), qkvs[2])                  // [1, H, T, dh]
	o = g.Reshape(g.Transpose(o, 0, 2, 1, 3), -1, d)               // [T, D]
	return linear2(g, "out_proj", o, int(d))
}

// oneJetPool is nn.AttentionPool on x [T, O]: softmax over T of the gate,
// then the weighted sum as one [1, T]·[T, O] product.
func oneJetPool(g *graph.Graph, name string, x *graph.Tensor) *graph.Tensor {
	defer g.Scope(name)()
	w := g.Softmax(g.Reshape(linear2(g, "gate", x, 1), 1, -1), -1) // [1, T]
	return g.MatMul(w, x)
}

// oneJetHead is forward's head on one jet: an MLP whose first layer reads
// [pooled] (x nil), [pooled, x_i] per constituent (pairs false) or
// [pooled, x_i, x_j] per pair (pairs true). It returns [1, k], [n, k] or
// the pair logits [n, n].
func oneJetHead(g *graph.Graph, name string, pooled, x *graph.Tensor, pairs bool, sizes []int, a nn.Activation) *graph.Tensor {
	defer g.Scope(name)()
	pop := g.Scope("0")
	var y *graph.Tensor
	switch {
	case x == nil:
		ws, b := concatLinearParams(g, pooled.DType(), []int64{pooled.Dim(-1)}, sizes[0])
		y = gemm(g, pooled, ws[0], b)
	case !pairs:
		ws, b := concatLinearParams(g, pooled.DType(), []int64{pooled.Dim(-1), x.Dim(-1)}, sizes[0])
		y = gemm(g, x, ws[1], gemm(g, pooled, ws[0], b))
	default:
		ws, b := concatLinearParams(g, pooled.DType(), []int64{pooled.Dim(-1), x.Dim(-1), x.Dim(-1)}, sizes[0])
		xi := gemm(g, x, ws[1], gemm(g, pooled, ws[0], b)) // [n, h]
		xj := g.MatMul(x, ws[2])                           // [n, h]
		y = g.Add(g.Unsqueeze(xi, 1), g.Unsqueeze(xj, 0))  // [n, n, h]
	}
	pop()
	var square *graph.Tensor
	if pairs {
		square = g.Op("Shape", []*graph.Tensor{y}, []graph.TensorType{{DType: graph.Int64, Shape: graph.Shape{2}}},
			graph.IntAttr("start", 0), graph.IntAttr("end", 2))[0]
		y = g.Reshape(y, -1, int64(sizes[0])) // [n², h]
	}
	for i := 1; i < len(sizes); i++ {
		y = linear2(g, strconv.Itoa(i), nn.Activate(g, y, a), sizes[i])
	}
	if pairs {
		y = g.Op("Reshape", []*graph.Tensor{y, square}, []graph.TensorType{{DType: y.DType(), Shape: graph.Shape{x.Dim(0), x.Dim(0)}}})[0]
	}
	return y
}

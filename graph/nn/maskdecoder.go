package nn

import (
	"math"
	"strconv"

	"github.com/salt-ort/salt-ort/graph"
)

// MaskDecoderConfig configures MaskDecoder, Salt's MaskFormer object
// decoder (salt.models.maskformer.MaskDecoder).
type MaskDecoderConfig struct {
	// Objects is the number of learnable object queries (num_objects).
	Objects int
	// Layers is the number of decoder layers (num_layers).
	Layers int
	// Heads is the number of attention heads (md_config.n_heads).
	Heads int
	// MaskAttention restricts each object's cross-attention to the
	// constituents its current mask selects (md_config.mask_attention).
	MaskAttention bool
	// BidirectionalCA also updates the constituents from the objects
	// (md_config.bidirectional_ca).
	BidirectionalCA bool
	// Classes is the class net's output size: the object classes and no
	// object (loss_config.num_classes + 1); at least 2.
	Classes int
	// ClassHidden and MaskHidden are the hidden layer sizes of the class
	// and mask nets (Salt's Dense, whose default is one layer of twice the
	// width); Activation is their activation.
	ClassHidden, MaskHidden []int
	Activation              Activation
	// Intermediate also returns the predictions of the queries before
	// each layer (Salt's aux_loss, its intermediate_outputs), for the
	// auxiliary losses per layer.
	Intermediate bool
}

// MaskDecoderOutput is what MaskDecoder returns.
type MaskDecoderOutput struct {
	// Embed are the object embeddings [B, M, D] after the last layer,
	// which object tasks (the regression of the hadrons) read.
	Embed *graph.Tensor
	// ClassLogits and ClassProbs are each object's class logits and
	// softmax probabilities [B, M, Classes]; the last class is no object.
	ClassLogits, ClassProbs *graph.Tensor
	// Masks are the mask logits [B, M, T] of each object over the
	// constituents; padded constituents get the type's lowest finite
	// value, as Salt's get_masks writes.
	Masks *graph.Tensor
	// Intermediate are, with MaskDecoderConfig.Intermediate, the
	// predictions (Embed, class logits and probabilities, mask logits) of
	// the queries entering layer i, by the same class and mask nets;
	// nil without.
	Intermediate []MaskDecoderOutput
}

// maskThreshold is the mask probability above which a constituent takes
// part in an object's masked cross-attention, as in Salt's decoder layer.
const maskThreshold = 0.9

// lowest is the lowest finite value of a floating-point type
// (torch.finfo(dtype).min), which Salt writes into padded mask logits.
func lowest(d graph.DType) float64 {
	switch d {
	case graph.Float16:
		return -65504
	case graph.BFloat16:
		return -3.3895313892515355e38
	case graph.Float64:
		return -math.MaxFloat64
	}
	return -math.MaxFloat32
}

// MaskDecoder is Salt's MaskDecoder on the encoded constituents x [B, T, D]
// (B static), with valid [B, T] (nil: every constituent valid). It:
//   - normalises the learnable queries [M, D] (N(0, 1)) and x with their own
//     LayerNorms, and appends one zero, valid constituent to x, as Salt does
//     so that no masked row is empty;
//   - runs cfg.Layers decoder layers (MaskDecoderLayer below);
//   - returns the class logits and probabilities of the class net, and the
//     mask logits mask_net(q)·xᵀ, without the appended constituent;
//   - with cfg.Intermediate, returns the same predictions of the queries
//     entering each layer (Salt records them before each layer when
//     aux_loss is on). Salt leaves the appended constituent in those
//     masks, which its loss then cannot compare with the truth masks;
//     here it is removed, as from the final masks.
//
// Parameters are scoped under name: initial_q, norm1, norm2, class_net,
// mask_net (shared by every layer, as in Salt) and layer0, layer1, …
func MaskDecoder(g *graph.Graph, name string, x, valid *graph.Tensor, cfg MaskDecoderConfig) MaskDecoderOutput {
	defer g.Scope(name)()
	b, d := x.Dim(0), x.Dim(-1)
	dt := x.DType()
	switch {
	case b < 0:
		g.Errorf("mask decoder: the batch size must be static, got %s", x)
		return MaskDecoderOutput{}
	case cfg.Objects < 1 || cfg.Layers < 0 || cfg.Heads < 1 || d%int64(cfg.Heads) != 0 || cfg.Classes < 2:
		g.Errorf("mask decoder: %d objects, %d layers, %d heads over width %d and %d classes", cfg.Objects, cfg.Layers, cfg.Heads, d, cfg.Classes)
		return MaskDecoderOutput{}
	}
	if cfg.Activation == "" {
		cfg.Activation = ReLU // Salt's Dense
	}
	q0 := g.ParamOf("initial_q", dt, graph.Shape{int64(cfg.Objects), d}, graph.InitNormal(1))
	q := g.Expand(g.Unsqueeze(LayerNorm(g, "norm1", q0), 0), graph.Shape{b, int64(cfg.Objects), d})
	x = LayerNorm(g, "norm2", x)
	// The appended constituent: zeros, valid (bias 0).
	x = g.Pad(x, []int64{0, 0, 0}, []int64{0, 1, 0})
	var bias *graph.Tensor
	if valid != nil {
		bias = g.Pad(PaddingBias(g, valid, dt), []int64{0, 0}, []int64{0, 1})
	}
	maskNet := newDense(g, "mask_net", dt, d, append(append([]int{}, cfg.MaskHidden...), int(d)), cfg.Activation)
	classSizes := append(append([]int{}, cfg.ClassHidden...), cfg.Classes)
	var classNet *dense
	var inter []MaskDecoderOutput
	if cfg.Intermediate {
		// Shared by every layer's predictions: declared once, before them.
		classNet = newDense(g, "class_net", dt, d, classSizes, cfg.Activation)
	}
	for i := 0; i < cfg.Layers; i++ {
		if cfg.Intermediate {
			pop := g.Scope("intermediate" + strconv.Itoa(i))
			inter = append(inter, objectPreds(g, q, classNet.apply(g, q), x, bias, maskNet))
			pop()
		}
		q, x = maskDecoderLayer(g, "layer"+strconv.Itoa(i), q, x, bias, maskNet, cfg)
	}
	var logits *graph.Tensor
	if classNet != nil {
		logits = classNet.apply(g, q)
	} else {
		logits = MLP(g, "class_net", q, classSizes, cfg.Activation, false)
	}
	out := objectPreds(g, q, logits, x, bias, maskNet)
	out.Intermediate = inter
	return out
}

// objectPreds are the predictions of the queries q [B, M, D] with class
// logits over the constituents x (the appended one included, as bias):
// Salt's get_preds, the appended constituent's mask logit removed.
func objectPreds(g *graph.Graph, q, logits, x, bias *graph.Tensor, maskNet *dense) MaskDecoderOutput {
	masks := objectMasks(g, q, x, bias, maskNet)
	t := masks.Dim(-1)
	if t >= 0 {
		masks = g.Slice(masks, []int{2}, []int64{0}, []int64{t - 1})
	} else {
		masks = g.Slice(masks, []int{2}, []int64{0}, []int64{-1})
	}
	return MaskDecoderOutput{Embed: q, ClassLogits: logits, ClassProbs: g.Softmax(logits, -1), Masks: masks}
}

// dense is an MLP whose parameters are declared once and applied several
// times: the mask net, which Salt's decoder shares between its layers and
// its output. Parameters are named as MLP names them.
type dense struct {
	weights, biases []*graph.Tensor
	act             Activation
}

// newDense declares the parameters of an MLP from in features to the
// given layer sizes, drawn as Linear draws them.
func newDense(g *graph.Graph, name string, dt graph.DType, in int64, sizes []int, a Activation) *dense {
	defer g.Scope(name)()
	n := &dense{act: a}
	for i, out := range sizes {
		pop := g.Scope(strconv.Itoa(i))
		bound := 1 / math.Sqrt(float64(in))
		n.weights = append(n.weights, g.ParamOf("weight", dt, graph.Shape{in, int64(out)}, graph.InitUniform(bound)))
		n.biases = append(n.biases, g.ParamOf("bias", dt, graph.Shape{int64(out)}, graph.InitUniform(bound)))
		pop()
		in = int64(out)
	}
	return n
}

// apply runs the MLP on x, with the activation between layers.
func (n *dense) apply(g *graph.Graph, x *graph.Tensor) *graph.Tensor {
	for i := range n.weights {
		x = g.Add(g.MatMul(x, n.weights[i]), n.biases[i])
		if i < len(n.weights)-1 {
			x = Activate(g, x, n.act)
		}
	}
	return x
}

// objectMasks is Salt's get_masks: the mask logits mask_net(q)·xᵀ
// [B, M, T], with the lowest finite value at padded constituents (bias
// nil: none padded).
func objectMasks(g *graph.Graph, q, x, bias *graph.Tensor, maskNet *dense) *graph.Tensor {
	m := g.MatMul(maskNet.apply(g, q), g.Transpose(x, 0, 2, 1))
	if bias == nil {
		return m
	}
	padded := g.Unsqueeze(g.Less(bias, g.ScalarLike(bias, -1)), 1) // [B, 1, T]
	return g.Where(padded, g.ScalarLike(m, lowest(m.DType())), m)
}

// maskDecoderLayer is Salt's MaskDecoderLayer. With mask attention, each
// object attends only to the constituents whose mask probability exceeds
// 0.9 (all of them when none does), found from the current queries and
// not differentiated. Then: q += CA(q → x), q += SA(q), q += GLU(q); with
// bidirectional cross-attention x += CA(x → q) and x += GLU(x), unmasked
// (Salt's transposed mask allows every pair: a constituent that some
// object does not select is opened to all); finally LayerNorms of q and x.
func maskDecoderLayer(g *graph.Graph, name string, q, x, bias *graph.Tensor, maskNet *dense, cfg MaskDecoderConfig) (*graph.Tensor, *graph.Tensor) {
	defer g.Scope(name)()
	var attn *graph.Tensor
	if cfg.MaskAttention {
		attn = maskAttentionBias(g, objectMasks(g, q, x, bias, maskNet), bias)
	} else if bias != nil {
		attn = g.Unsqueeze(bias, 1)
	}
	q = g.Add(q, crossAttention(g, "q_ca", q, x, attn, cfg.Heads))
	q = g.Add(q, SelfAttention(g, "q_sa", q, nil, cfg.Heads))
	q = g.Add(q, glu(g, "q_dense", q))
	if cfg.BidirectionalCA {
		x = g.Add(x, crossAttention(g, "kv_ca", x, q, nil, cfg.Heads))
		x = g.Add(x, glu(g, "kv_dense", x))
	}
	return LayerNorm(g, "norm1", q), LayerNorm(g, "norm2", x)
}

// maskAttentionBias turns mask logits [B, M, T] into the additive bias of
// the objects' cross-attention [B, M, T]: 0 where the mask probability
// exceeds 0.9 or where no constituent's does, and the mask value elsewhere
// and at padded constituents (keyBias).
func maskAttentionBias(g *graph.Graph, masks, keyBias *graph.Tensor) *graph.Tensor {
	dt := masks.DType()
	allowed := g.Greater(g.Sigmoid(masks), g.ScalarLike(masks, maskThreshold))
	none := g.Less(g.ReduceMax(g.Cast(allowed, dt), []int{-1}, true), g.ScalarLike(masks, 0.5)) // [B, M, 1]
	allowed = g.Or(allowed, none)
	out := g.Where(allowed, g.Scalar(dt, 0), g.Scalar(dt, maskValue(dt)))
	if keyBias != nil {
		out = g.Add(out, g.Unsqueeze(keyBias, 1))
	}
	return out
}

// crossAttention is Salt's Attention with separate keys and values: the
// queries from q [B, M, D], the keys and values from kv [B, T, D], through
// the fused [D, 3D] input projection split in three (queries, keys,
// values), softmax(q·kᵀ/√d_h + bias)·v per head, and an output
// projection. bias is nil or an additive [B, M, T] bias.
func crossAttention(g *graph.Graph, name string, q, kv, bias *graph.Tensor, heads int) *graph.Tensor {
	defer g.Scope(name)()
	d := q.Dim(-1)
	h := int64(heads)
	dh := d / h
	dt := q.DType()
	var qp, kp, vp *graph.Tensor
	{
		pop := g.Scope("in_proj")
		// Xavier-uniform over the fused projection and a zero bias, as
		// Salt's Attention.reset_parameters draws them.
		w := g.ParamOf("weight", dt, graph.Shape{d, 3 * d}, graph.InitUniform(math.Sqrt(6/float64(4*d))))
		bb := g.ParamOf("bias", dt, graph.Shape{3 * d}, graph.InitZeros())
		ws, bs := g.Split(w, -1, d, d, d), g.Split(bb, -1, d, d, d)
		qp = g.Add(g.MatMul(q, ws[0]), bs[0])
		kp = g.Add(g.MatMul(kv, ws[1]), bs[1])
		vp = g.Add(g.MatMul(kv, ws[2]), bs[2])
		pop()
	}
	split := func(t *graph.Tensor) *graph.Tensor { return g.Reshape(t, 0, 0, h, dh) }
	qh := g.Transpose(split(g.Mul(qp, g.Scalar(dt, 1/math.Sqrt(float64(dh))))), 0, 2, 1, 3) // [B,H,M,dh]
	kh := g.Transpose(split(kp), 0, 2, 3, 1)                                                // [B,H,dh,T]
	vh := g.Transpose(split(vp), 0, 2, 1, 3)                                                // [B,H,T,dh]
	scores := g.MatMul(qh, kh)                                                              // [B,H,M,T]
	if bias != nil {
		scores = g.Add(scores, g.Unsqueeze(bias, 1))
	}
	o := g.Transpose(g.MatMul(g.Softmax(scores, -1), vh), 0, 2, 1, 3)
	return Linear(g, "out_proj", g.Reshape(o, 0, 0, d), int(d), true)
}

// glu is Salt's GLU as the decoder uses it: Linear(D→2D), SiLU,
// Linear(2D→D), ungated.
func glu(g *graph.Graph, name string, x *graph.Tensor) *graph.Tensor {
	defer g.Scope(name)()
	d := int(x.Dim(-1))
	return Linear(g, "out_proj", Activate(g, Linear(g, "in_proj", x, 2*d, true), SiLU), d, true)
}

package nn

import (
	"math"
	"strconv"

	"github.com/salt-ort/salt-ort/graph"
)

// maskValue is the additive bias of a masked attention logit: finite, so
// that a fully masked row cannot produce NaN, and far below any logit.
func maskValue(d graph.DType) float64 {
	if d == graph.Float16 {
		return -3e4
	}
	return -1e9
}

// PaddingBias turns a [B, T] bool valid mask into an additive bias of the
// given type and shape [B, T]: 0 for valid entries, a large negative value
// for padding.
func PaddingBias(g *graph.Graph, valid *graph.Tensor, dtype graph.DType) *graph.Tensor {
	return g.Where(valid, g.Scalar(dtype, 0), g.Scalar(dtype, maskValue(dtype)))
}

// SelfAttention is multi-head scaled dot-product self-attention over
// x [B, T, D] as Salt's Attention (salt/models/attention.py) computes it:
// one fused input projection to q, k, v, softmax(q·kᵀ/√d_h + bias)·v per
// head, and an output projection. bias is nil (every key valid) or an
// additive key bias [B, T] from PaddingBias: padded constituents send
// nothing but still receive, as Salt masks them. With training set and
// dropout > 0 the attention weights are dropped out, as Salt's
// attn_kwargs.dropout does inside scaled_dot_product_attention.
func SelfAttention(g *graph.Graph, name string, x, bias *graph.Tensor, heads int) *graph.Tensor {
	return selfAttention(g, name, x, bias, heads, 0, false)
}

func selfAttention(g *graph.Graph, name string, x, bias *graph.Tensor, heads int, dropout float64, training bool) *graph.Tensor {
	defer g.Scope(name)()
	d := x.Dim(-1)
	h := int64(heads)
	if d%h != 0 {
		g.Errorf("embedding %d is not divisible by %d heads", d, heads)
		return x
	}
	dh := d / h
	dt := x.DType()
	{
		pop := g.Scope("in_proj")
		// Xavier-uniform over the fused [D, 3D] projection and a zero bias,
		// as Salt's Attention.reset_parameters draws them.
		w := g.ParamOf("weight", dt, graph.Shape{d, 3 * d}, graph.InitUniform(math.Sqrt(6/float64(4*d))))
		b := g.ParamOf("bias", dt, graph.Shape{3 * d}, graph.InitZeros())
		x = g.Add(g.MatMul(x, w), b)
		pop()
	}
	qkv := g.Split(x, -1, d, d, d)
	split := func(t *graph.Tensor) *graph.Tensor { return g.Reshape(t, 0, 0, h, dh) }
	q := g.Transpose(split(g.Mul(qkv[0], g.Scalar(dt, 1/math.Sqrt(float64(dh))))), 0, 2, 1, 3) // [B,H,T,dh]
	k := g.Transpose(split(qkv[1]), 0, 2, 3, 1)                                                // [B,H,dh,T]
	v := g.Transpose(split(qkv[2]), 0, 2, 1, 3)                                                // [B,H,T,dh]
	scores := g.MatMul(q, k)                                                                   // [B,H,T,T]
	if bias != nil {
		scores = g.Add(scores, g.Unsqueeze(bias, 1, 2))
	}
	attn := Dropout(g, "dropout", g.Softmax(scores, -1), dropout, training)
	o := g.Transpose(g.MatMul(attn, v), 0, 2, 1, 3) // [B,T,H,dh]
	o = g.Reshape(o, 0, 0, d)
	// The output projection is an nn.Linear whose reset_parameters Salt
	// calls: weight and bias U(±1/√D).
	return Linear(g, "out_proj", o, int(d), true)
}

// Dropout zeroes elements of x with probability p during training, scaling
// the rest by 1/(1-p). The mask is a random graph input the caller fills
// (see graph.RandomInput), of x's type, except that the mask of float16 or
// bfloat16 x (mixed-precision training) is a float32 input cast in the
// graph, so callers fill masks in float32 whatever the compute type. With
// training false or p = 0 it returns x.
func Dropout(g *graph.Graph, name string, x *graph.Tensor, p float64, training bool) *graph.Tensor {
	if !training || p == 0 {
		return x
	}
	dt := x.DType()
	if dt == graph.Float16 || dt == graph.BFloat16 {
		dt = graph.Float32
	}
	mask := g.Random(name+"/mask", dt, x.Shape(), "dropout", p)
	return g.Mul(x, g.Cast(mask, x.DType()))
}

// EncoderConfig configures a transformer encoder.
type EncoderConfig struct {
	Layers      int        // number of encoder layers
	Heads       int        // attention heads
	DenseRatio  int        // hidden size of the feed-forward net as a multiple of the embedding
	Activation  Activation // of the feed-forward net
	Registers   int        // learnable register tokens appended to every sequence
	OutDim      int        // size of the output projection (0: none; the output keeps the embedding size)
	NoFinalNorm bool       // skip the LayerNorm at the encoder's output
	Dropout     float64    // dropout probability on the feed-forward net's hidden layer (Salt's dense_kwargs.dropout)
	AttnDropout float64    // dropout probability on the attention weights (Salt's attn_kwargs.dropout)
	Training    bool       // build training-time dropout
}

// EncoderLayer is one pre-norm transformer layer as Salt's EncoderLayer
// builds it with norm_type "pre": x + attn(norm(x)), then
// x + dense(norm(x)), where the norms have no parameters (Norm) and dense
// is Salt's ungated GLU, Linear(D→ratio·D), activation, dropout,
// Linear(ratio·D→D).
func EncoderLayer(g *graph.Graph, name string, x, bias *graph.Tensor, cfg EncoderConfig) *graph.Tensor {
	defer g.Scope(name)()
	d := int(x.Dim(-1))
	x = g.Add(x, selfAttention(g, "attn", Norm(g, "attn_norm", x), bias, cfg.Heads, cfg.AttnDropout, cfg.Training))
	pop := g.Scope("dense")
	h := Activate(g, Linear(g, "0", Norm(g, "norm", x), cfg.DenseRatio*d, true), cfg.Activation)
	h = Dropout(g, "dropout", h, cfg.Dropout, cfg.Training)
	f := Linear(g, "1", h, d, true)
	pop()
	return g.Add(x, f)
}

// Width returns the size of the encoder's output for embeddings of size
// embed: OutDim, or embed without an output projection.
func (cfg EncoderConfig) Width(embed int) int {
	if cfg.OutDim > 0 {
		return cfg.OutDim
	}
	return embed
}

// Encoder runs the transformer encoder over x [B, T, D] with valid [B, T]
// (nil: all valid) as Salt's Transformer does: it appends cfg.Registers
// register tokens (always valid, so no jet has an empty sequence), applies
// the layers, the projection to OutDim (if any) and then, unless
// NoFinalNorm, the final parameter-free LayerNorm at the output width. It
// returns the encoded sequence [B, T+R, O] and the additive key bias
// [B, T+R] of that sequence (nil when valid is nil).
func Encoder(g *graph.Graph, name string, x, valid *graph.Tensor, cfg EncoderConfig) (out, bias *graph.Tensor) {
	defer g.Scope(name)()
	dt := x.DType()
	if valid != nil {
		bias = PaddingBias(g, valid, dt)
	}
	if cfg.Registers > 0 {
		r := int64(cfg.Registers)
		b, t, d := x.Dim(0), x.Dim(1), x.Dim(2)
		// [R, D] as Salt's Transformer.registers, drawn N(0, 1e-4²).
		reg := g.ParamOf("registers", dt, graph.Shape{r, d}, graph.InitNormal(1e-4))
		switch {
		case b >= 0:
			x = g.Concat(1, x, g.Expand(g.Unsqueeze(reg, 0), graph.Shape{b, r, d}))
		case t >= 0:
			// A dynamic batch cannot be expanded to without shape
			// operators: pad the sequence with R zero rows and add the
			// registers there (x + 0 and 0 + r are exact, so the values are
			// those of the concatenation).
			place := make([]float64, (t+r)*r)
			for i := int64(0); i < r; i++ {
				place[(t+i)*r+i] = 1
			}
			rows := g.Const("register_rows", dt, graph.Shape{t + r, r}, place)
			x = g.Add(g.Pad(x, []int64{0, 0, 0}, []int64{0, r, 0}), g.MatMul(rows, reg))
		default:
			g.Errorf("registers need a static batch or sequence length, got %s", x)
		}
		if bias != nil {
			bias = g.Pad(bias, []int64{0, 0}, []int64{0, r})
		}
	}
	for i := 0; i < cfg.Layers; i++ {
		x = EncoderLayer(g, "layer"+strconv.Itoa(i), x, bias, cfg)
	}
	if cfg.OutDim > 0 {
		x = Linear(g, "out_proj", x, cfg.OutDim, true)
	}
	if !cfg.NoFinalNorm {
		x = Norm(g, "out_norm", x)
	}
	return x, bias
}

// AttentionPool is Salt's global attention pooling over x [B, T, D]:
// w = softmax over valid entries of Linear(D→1)(x), and Σ_t w_t·x_t [B, D].
// bias is the additive key bias [B, T] or nil.
func AttentionPool(g *graph.Graph, name string, x, bias *graph.Tensor) *graph.Tensor {
	defer g.Scope(name)()
	w := g.Squeeze(Linear(g, "gate", x, 1, true), -1) // [B,T]
	if bias != nil {
		w = g.Add(w, bias)
	}
	w = g.Softmax(w, -1)
	return g.ReduceSum(g.Mul(g.Unsqueeze(w, -1), x), []int{1}, false)
}

// MaskedAttentionPool is AttentionPool for sequences that may have no
// valid entry (no register tokens): the weights of padded entries are
// zeroed after the softmax, as Salt's masked_softmax zeroes them, so a jet
// without valid constituents pools to zeros rather than to a mean of its
// padding. valid is the [B, T] mask, or nil when every entry is valid.
func MaskedAttentionPool(g *graph.Graph, name string, x, valid *graph.Tensor) *graph.Tensor {
	defer g.Scope(name)()
	w := g.Squeeze(Linear(g, "gate", x, 1, true), -1) // [B,T]
	if valid != nil {
		w = g.Add(w, PaddingBias(g, valid, w.DType()))
	}
	w = g.Softmax(w, -1)
	if valid != nil {
		w = g.Mul(w, g.Cast(valid, w.DType()))
	}
	return g.ReduceSum(g.Mul(g.Unsqueeze(w, -1), x), []int{1}, false)
}

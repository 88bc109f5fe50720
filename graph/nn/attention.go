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
	y, _ := selfAttention(g, name, x, bias, nil, attention{heads: heads})
	return y
}

// EdgeAttention is SelfAttention with edge features edge [B, T, T, E]
// between the sequence's entries, as Salt's EdgeAttention computes it: a
// per-head bias Linear(E→H)(e_ij) added to the scaled scores and a gate
// sigmoid(Linear(E→H)(e_ij)) multiplying the attention weights. With
// update, it also returns the edges updated from the scores before
// masking, Linear(H→E); otherwise edge itself.
func EdgeAttention(g *graph.Graph, name string, x, bias, edge *graph.Tensor, heads int, update bool) (*graph.Tensor, *graph.Tensor) {
	return selfAttention(g, name, x, bias, edge, attention{heads: heads, updateEdges: update})
}

// attention are the settings of one self-attention block.
type attention struct {
	heads         int
	dropout       float64
	training      bool
	qkNorm, vNorm bool // RMSNorm of each head's queries and keys, and values
	updateEdges   bool // return edges updated from the scores (edge attention)
	mup           bool // μP: 1/d_h score scale and μP initialisation
}

// selfAttention is SelfAttention, and with edge features (edge not nil)
// Salt's EdgeAttention; it returns the output and the edges (updated, or
// edge itself).
func selfAttention(g *graph.Graph, name string, x, bias, edge *graph.Tensor, a attention) (*graph.Tensor, *graph.Tensor) {
	defer g.Scope(name)()
	d := x.Dim(-1)
	h := int64(a.heads)
	if d%h != 0 {
		g.Errorf("embedding %d is not divisible by %d heads", d, a.heads)
		return x, edge
	}
	dh := d / h
	dt := x.DType()
	if a.mup && edge != nil {
		g.Errorf("μP attention with edge features is not built")
		return x, edge
	}
	{
		pop := g.Scope("in_proj")
		// Xavier-uniform over the fused [D, 3D] projection and a zero bias,
		// as Salt's Attention.reset_parameters draws them.
		init := graph.InitUniform(math.Sqrt(6 / float64(4*d)))
		if a.mup {
			init = muPInProjInit(d, dh)
		}
		w := g.ParamOf("weight", dt, graph.Shape{d, 3 * d}, init)
		b := g.ParamOf("bias", dt, graph.Shape{3 * d}, graph.InitZeros())
		x = g.Add(g.MatMul(x, w), b)
		pop()
	}
	qkv := g.Split(x, -1, d, d, d)
	split := func(t *graph.Tensor) *graph.Tensor { return g.Reshape(t, 0, 0, h, dh) }
	scale := g.Scalar(dt, AttentionScale(int(dh), a.mup))
	var q, k, v *graph.Tensor
	if a.qkNorm {
		// Salt's do_qk_norm: RMSNorm over each head's features, before the
		// 1/√d_h scale (which scaled_dot_product_attention applies).
		q = g.Transpose(g.Mul(RMSNorm(g, "q_norm", split(qkv[0])), scale), 0, 2, 1, 3) // [B,H,T,dh]
		k = g.Transpose(RMSNorm(g, "k_norm", split(qkv[1])), 0, 2, 3, 1)               // [B,H,dh,T]
	} else {
		q = g.Transpose(split(g.Mul(qkv[0], scale)), 0, 2, 1, 3) // [B,H,T,dh]
		k = g.Transpose(split(qkv[1]), 0, 2, 3, 1)               // [B,H,dh,T]
	}
	vs := split(qkv[2])
	if a.vNorm {
		vs = RMSNorm(g, "v_norm", vs)
	}
	v = g.Transpose(vs, 0, 2, 1, 3) // [B,H,T,dh]
	scores := g.MatMul(q, k)        // [B,H,T,T]
	var gate *graph.Tensor
	edgeOut := edge
	if edge != nil {
		// Salt's EdgeAttention: a bias per head from each edge, dropout on
		// the scores, and a gate on the weights. Its linear layers are
		// nn.Linear with zeroed biases.
		scores = g.Add(scores, g.Transpose(lin0(g, "linear_e", edge, a.heads), 0, 3, 1, 2))
		gate = g.Transpose(g.Sigmoid(lin0(g, "linear_g", edge, a.heads)), 0, 3, 1, 2)
		scores = Dropout(g, "dropout", scores, a.dropout, a.training)
		if a.updateEdges {
			edgeOut = lin0(g, "linear_e_out", g.Transpose(scores, 0, 2, 3, 1), int(edge.Dim(-1)))
		}
	}
	if bias != nil {
		scores = g.Add(scores, g.Unsqueeze(bias, 1, 2))
	}
	attn := g.Softmax(scores, -1)
	if gate != nil {
		attn = g.Mul(attn, gate)
	} else {
		attn = Dropout(g, "dropout", attn, a.dropout, a.training)
	}
	o := g.Transpose(g.MatMul(attn, v), 0, 2, 1, 3) // [B,T,H,dh]
	o = g.Reshape(o, 0, 0, d)
	// The output projection is an nn.Linear whose reset_parameters Salt
	// calls: weight and bias U(±1/√D); EdgeAttention zeroes the bias.
	if edge != nil {
		return lin0(g, "out_proj", o, int(d)), edgeOut
	}
	if a.mup {
		return linearInit(g, "out_proj", o, int(d), graph.InitNormal(1/math.Sqrt(float64(d))), graph.InitZeros()), edgeOut
	}
	return Linear(g, "out_proj", o, int(d), true), edgeOut
}

// AttentionScale is the factor of the attention scores for heads of
// width dh: 1/√dh, or 1/dh in μP (Salt's Attention with mup).
func AttentionScale(dh int, mup bool) float64 {
	if mup {
		return 1 / float64(dh)
	}
	return 1 / math.Sqrt(float64(dh))
}

// muPInProjInit is Salt's μP initialisation of the fused input projection
// [D, 3D] (stored input-major): N(0, 1/d_h) for the key and value columns,
// zero for the query columns, the first D of each row.
func muPInProjInit(d, dh int64) graph.Init {
	return graph.InitNormalZeroLead(1/math.Sqrt(float64(dh)), 3*d, d)
}

// linearInit is Linear with the given initialisations of its weight and
// bias.
func linearInit(g *graph.Graph, name string, x *graph.Tensor, out int, w, b graph.Init) *graph.Tensor {
	defer g.Scope(name)()
	weight := g.ParamOf("weight", x.DType(), graph.Shape{x.Dim(-1), int64(out)}, w)
	bias := g.ParamOf("bias", x.DType(), graph.Shape{int64(out)}, b)
	return g.Add(g.MatMul(x, weight), bias)
}

// muPDenseInit is Salt's μP initialisation of a Dense or feed-forward
// linear layer with out outputs: N(0, 1/out) (1/√fan_out the standard
// deviation, as Salt draws it), the bias zero.
func muPDenseInit(out int) graph.Init { return graph.InitNormal(1 / math.Sqrt(float64(out))) }

// MuPDenseInit returns Salt's μP initialisation of the weight of a linear
// layer with out outputs in a Dense with mup (its bias is zero).
func MuPDenseInit(out int) graph.Init { return muPDenseInit(out) }

// lin0 is Linear with a zero-initialised bias.
func lin0(g *graph.Graph, name string, x *graph.Tensor, out int) *graph.Tensor {
	defer g.Scope(name)()
	in := x.Dim(-1)
	w := g.ParamOf("weight", x.DType(), graph.Shape{in, int64(out)}, graph.InitUniform(1/math.Sqrt(float64(in))))
	b := g.ParamOf("bias", x.DType(), graph.Shape{int64(out)}, graph.InitZeros())
	return g.Add(g.MatMul(x, w), b)
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

// NormKind is the normalisation of an encoder's residual blocks and
// output.
type NormKind string

// The normalisations.
const (
	// LayerNormKind is Salt's LayerNorm: LayerNormalization without
	// learnable scale or shift (Norm). The default.
	LayerNormKind NormKind = ""
	// RMSNormKind is Salt's RMSNorm: x/√(mean(x²)+ε) times a learnable
	// scale (RMSNorm).
	RMSNormKind NormKind = "rmsnorm"
)

// NormType is where the residual blocks normalise (Salt's norm_type).
type NormType string

// The residual arrangements.
const (
	// PreNorm is x + f(norm(x)) (the default).
	PreNorm NormType = ""
	// PostNorm is norm(x + f(x)).
	PostNorm NormType = "post"
	// HybridNorm is Salt's "hybrid" (GN3): the first layer's blocks are
	// pre-norm; in later layers the attention block has no norm and the
	// dense block reads the normalised sequence, z + dense(z) with
	// z = norm(x); attention normalises each head's queries, keys and
	// values.
	HybridNorm NormType = "hybrid"
)

// EncoderConfig configures a transformer encoder.
type EncoderConfig struct {
	// Kind is the architecture: Salt's Transformer (the default) or its
	// legacy TransformerEncoder (LegacyKind), which reads Layers, Heads,
	// Activation, OutDim, Dropout, AttnDropout, Training, BeforeLayer,
	// NoOutProj and Hidden or DenseRatio; the other settings must keep
	// their zero values.
	Kind EncoderKind
	// Hidden are the hidden layer sizes of the legacy encoder's dense
	// block (Salt's dense_config.hidden_layers; nil: one of DenseRatio
	// times the embedding).
	Hidden      []int
	Layers      int        // number of encoder layers
	Heads       int        // attention heads
	DenseRatio  int        // hidden size of the feed-forward net as a multiple of the embedding
	Activation  Activation // of the feed-forward net
	Registers   int        // learnable register tokens appended to every sequence
	OutDim      int        // size of the output projection (0: none; the output keeps the embedding size)
	NoFinalNorm bool       // skip the LayerNorm at the encoder's output
	// NoOutProj leaves out the legacy attention's output projection
	// (linear_out; Salt's mha_config.out_proj false): the heads'
	// concatenated outputs are the attention's output.
	NoOutProj   bool
	Dropout     float64 // dropout probability on the feed-forward net's hidden layer (Salt's dense_kwargs.dropout)
	AttnDropout float64 // dropout probability on the attention weights (Salt's attn_kwargs.dropout)
	Training    bool    // build training-time dropout
	// Gated makes the feed-forward net a gated linear unit (Salt's
	// dense_kwargs.gated): Linear(D→2·ratio·D) split in two halves a and
	// b, activation(a)·b, dropout, Linear(ratio·D→D).
	Gated bool
	// Norm is the normalisation of the residual blocks and of the output
	// (Salt's norm: LayerNorm or RMSNorm).
	Norm NormKind
	// NormType arranges the norms of the residual blocks (Salt's
	// norm_type: pre, post or hybrid).
	NormType NormType
	// LayerScale, when positive, scales each block's output by a learnable
	// vector initialised to it (Salt's ls_init, CaiT's LayerScale).
	LayerScale float64
	// DropPath is the probability of dropping a block's output for a
	// whole jet in training (Salt's drop_path, stochastic depth).
	DropPath float64
	// QKNorm and VNorm normalise each head's queries and keys, and values,
	// with RMSNorm (Salt's attn_kwargs.do_qk_norm and do_v_norm).
	QKNorm, VNorm bool
	// EdgeDim is the width of the edge features the layers attend with
	// (Salt's edge_embed_dim; 0: none), UpdateEdges whether each layer
	// updates them (Salt's update_edges).
	EdgeDim     int
	UpdateEdges bool
	// MuP builds the encoder in Salt's μP parametrisation (Salt's
	// Transformer mup, Yang et al. 2022, arXiv:2203.03466): attention
	// scores scaled by 1/d_h instead of 1/√d_h; the query projection
	// initialised to zero, the key and value projections N(0, 1/d_h), the
	// attention's output projection N(0, 1/D) and the feed-forward
	// layers N(0, 1/fan_out), all biases zero; and the output projection
	// a MuReadout, initialised to zero, whose input is multiplied by
	// ReadoutMult. It needs OutDim and no edge features.
	MuP bool
	// ReadoutMult multiplies the input of the μP output projection: the
	// mup package's output_mult / width_mult, where width_mult is the
	// embedding width over the base width (0 means 1).
	ReadoutMult float64
	// CAEveryLayer applies the cross-attention encoder's (CrossAttentionKind)
	// updates between the groups after every layer rather than after the
	// first and the last (Salt's ca_every_layer).
	CAEveryLayer bool
	// BeforeLayer, when set, transforms the sequence before each layer
	// (Salt's featurewise transformations of the encoder layers); it is
	// called with the layer's index.
	BeforeLayer func(g *graph.Graph, layer int, x *graph.Tensor) *graph.Tensor
}

// norm applies the configured normalisation.
func (cfg EncoderConfig) norm(g *graph.Graph, name string, x *graph.Tensor) *graph.Tensor {
	if cfg.Norm == RMSNormKind {
		return RMSNorm(g, name, x)
	}
	return Norm(g, name, x)
}

// residual adds block f to x as normType arranges it, with LayerScale and
// drop-path on f's output: x + dp(ls(f(norm(x)))) (pre),
// norm(x + dp(ls(f(x)))) (post) or x + dp(ls(f(x))) (none). name scopes
// the norm, the scale and the drop-path mask.
func (cfg EncoderConfig) residual(g *graph.Graph, name, normName string, x *graph.Tensor, normType NormType, f func(*graph.Tensor) *graph.Tensor) *graph.Tensor {
	var y *graph.Tensor
	switch normType {
	case PreNorm:
		y = f(cfg.norm(g, normName, x))
	default:
		y = f(x)
	}
	if cfg.LayerScale > 0 {
		pop := g.Scope(name + "layerscale")
		gamma := g.ParamOf("gamma", y.DType(), graph.Shape{y.Dim(-1)}, graph.InitConstant(cfg.LayerScale))
		y = g.Mul(y, gamma)
		pop()
	}
	if cfg.DropPath > 0 && cfg.Training {
		// One draw per jet: the block is dropped for the whole sequence.
		sh := make(graph.Shape, y.Rank())
		for i := range sh {
			sh[i] = 1
		}
		sh[0] = y.Dim(0)
		y = g.Mul(y, dropMask(g, name+"drop_path/mask", y.DType(), sh, cfg.DropPath))
	}
	out := g.Add(x, y)
	if normType == PostNorm {
		out = cfg.norm(g, normName, out)
	}
	return out
}

// dropMask is a dropout mask input (see Dropout) of the given shape, cast
// to dt.
func dropMask(g *graph.Graph, name string, dt graph.DType, shape graph.Shape, p float64) *graph.Tensor {
	mt := dt
	if dt == graph.Float16 || dt == graph.BFloat16 {
		mt = graph.Float32
	}
	return g.Cast(g.Random(name, mt, shape, "dropout", p), dt)
}

// EncoderLayer is one transformer layer as Salt's EncoderLayer builds it.
// With the defaults it is pre-norm: x + attn(norm(x)), then
// x + dense(norm(x)), where the norms have no parameters (Norm) and dense
// is Salt's ungated GLU, Linear(D→ratio·D), activation, dropout,
// Linear(ratio·D→D). cfg's further settings give Salt's GN3 options
// (gated dense, RMSNorm, post and hybrid norms, LayerScale, drop-path,
// q/k/v normalisation); a hybrid layer is built as a later layer (depth
// > 0), Encoder builds the first one as Salt does.
func EncoderLayer(g *graph.Graph, name string, x, bias *graph.Tensor, cfg EncoderConfig) *graph.Tensor {
	y, _ := encoderLayer(g, name, x, bias, nil, cfg, 1)
	return y
}

// EdgeEncoderLayer is EncoderLayer attending with edge features edge
// [B, T, T, cfg.EdgeDim] (Salt's EncoderLayer with edge_embed_dim): it
// returns the sequence and the edges, which with cfg.UpdateEdges are u +
// norm(u) for the edges u the attention updated, as Salt's layer makes
// them.
func EdgeEncoderLayer(g *graph.Graph, name string, x, bias, edge *graph.Tensor, cfg EncoderConfig) (*graph.Tensor, *graph.Tensor) {
	return encoderLayer(g, name, x, bias, edge, cfg, 1)
}

func encoderLayer(g *graph.Graph, name string, x, bias, edge *graph.Tensor, cfg EncoderConfig, depth int) (*graph.Tensor, *graph.Tensor) {
	defer g.Scope(name)()
	d := int(x.Dim(-1))
	a := attention{heads: cfg.Heads, dropout: cfg.AttnDropout, training: cfg.Training, qkNorm: cfg.QKNorm, vNorm: cfg.VNorm, updateEdges: cfg.UpdateEdges, mup: cfg.MuP}
	blockNorm := cfg.NormType
	if cfg.NormType == HybridNorm {
		// Salt's hybrid layers normalise queries, keys and values, and only
		// the first layer's blocks are pre-norm.
		a.qkNorm, a.vNorm = true, true
		blockNorm = NormType("none")
		if depth == 0 {
			blockNorm = PreNorm
		}
	}
	x = cfg.residual(g, "attn_", "attn_norm", x, blockNorm, func(h *graph.Tensor) *graph.Tensor {
		var y *graph.Tensor
		y, edge = selfAttention(g, "attn", h, bias, edge, a)
		return y
	})
	if edge != nil && cfg.UpdateEdges {
		edge = g.Add(edge, cfg.norm(g, "edge_postnorm", edge))
	}
	if cfg.NormType == HybridNorm && depth > 0 {
		x = cfg.norm(g, "norm", x)
	}
	pop := g.Scope("dense")
	x = cfg.residual(g, "", "norm", x, blockNorm, func(h *graph.Tensor) *graph.Tensor {
		hidden := cfg.DenseRatio * d
		lin := func(name string, x *graph.Tensor, out int) *graph.Tensor {
			if cfg.MuP {
				return linearInit(g, name, x, out, muPDenseInit(out), graph.InitZeros())
			}
			return Linear(g, name, x, out, true)
		}
		if cfg.Gated {
			ab := g.Split(lin("0", h, 2*hidden), -1, int64(hidden), int64(hidden))
			h = g.Mul(Activate(g, ab[0], cfg.Activation), ab[1])
		} else {
			h = Activate(g, lin("0", h, hidden), cfg.Activation)
		}
		h = Dropout(g, "dropout", h, cfg.Dropout, cfg.Training)
		return lin("1", h, d)
	})
	pop()
	return x, edge
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
// (nil: all valid). cfg.Kind LegacyKind builds Salt's legacy
// TransformerEncoder (see LegacyKind), whose output keeps its masked zero
// token last (Appended); otherwise it runs as Salt's Transformer does: it appends cfg.Registers
// register tokens (always valid, so no jet has an empty sequence), applies
// the layers, the projection to OutDim (if any) and then, unless
// NoFinalNorm, the final parameter-free LayerNorm at the output width. It
// returns the encoded sequence [B, T+R, O] and the additive key bias
// [B, T+R] of that sequence (nil when valid is nil).
func Encoder(g *graph.Graph, name string, x, valid *graph.Tensor, cfg EncoderConfig) (out, bias *graph.Tensor) {
	return EdgeEncoder(g, name, x, valid, nil, cfg)
}

// EdgeEncoder is Encoder with edge features edge [B, T, T, cfg.EdgeDim]
// between the entries of x (nil: none), padded with zeros for the
// registers as Salt's Transformer pads them.
func EdgeEncoder(g *graph.Graph, name string, x, valid, edge *graph.Tensor, cfg EncoderConfig) (out, bias *graph.Tensor) {
	if cfg.Kind == LegacyKind {
		if edge != nil {
			g.Errorf("the legacy encoder has no edge features")
		}
		return legacyEncoder(g, name, x, valid, cfg)
	}
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
		if edge != nil {
			edge = g.Pad(edge, []int64{0, 0, 0, 0}, []int64{0, r, r, 0})
		}
	}
	for i := 0; i < cfg.Layers; i++ {
		if cfg.BeforeLayer != nil {
			x = cfg.BeforeLayer(g, i, x)
		}
		x, edge = encoderLayer(g, "layer"+strconv.Itoa(i), x, bias, edge, cfg, i)
	}
	switch {
	case cfg.MuP && cfg.OutDim > 0:
		x = muReadout(g, "out_proj", x, cfg.OutDim, cfg.ReadoutMult)
	case cfg.MuP:
		g.Errorf("a μP encoder needs an output projection (out_dim), the last layer of its μP part")
	case cfg.OutDim > 0:
		x = Linear(g, "out_proj", x, cfg.OutDim, true)
	}
	if !cfg.NoFinalNorm {
		x = cfg.norm(g, "out_norm", x)
	}
	return x, bias
}

// muReadout is the mup package's MuReadout as Salt's μP Transformer
// makes its output projection: a linear layer, weight and bias
// initialised to zero, whose input is multiplied by mult (output_mult /
// width_mult; 0 means 1).
func muReadout(g *graph.Graph, name string, x *graph.Tensor, out int, mult float64) *graph.Tensor {
	if mult == 0 {
		mult = 1
	}
	pop := g.Scope(name)
	x = g.Mul(x, g.ScalarLike(x, mult))
	pop()
	return linearInit(g, name, x, out, graph.InitZeros(), graph.InitZeros())
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

package nn

import (
	"math"
	"strconv"

	"github.com/salt-ort/salt-ort/graph"
)

// EncoderKind selects the architecture of an encoder.
type EncoderKind string

// The encoder architectures.
const (
	// TransformerKind is Salt's Transformer (salt/models/transformer.py
	// since 2026's refactoring): packed attention projection,
	// parameter-free (or RMS) norms, registers, projection before the
	// final norm. The default.
	TransformerKind EncoderKind = ""
	// LegacyKind is Salt's TransformerEncoder as it was until 2026
	// (salt/models/transformer.py and attention.py before commit c93d54f),
	// with which the GN2 taggers ATLAS runs were trained: separate query,
	// key and value projections (MultiheadAttention's linear_q, linear_k,
	// linear_v, linear_out), nn.LayerNorm with learnable scale and shift
	// in every block and at the output, a Dense feed-forward block
	// (hidden_layers, dropout before each Linear), no registers, and the
	// final norm before the output projection.
	LegacyKind EncoderKind = "legacy"
)

// LegacyHidden returns the hidden layer sizes of the legacy encoder's
// dense block for embeddings of size embed: cfg.Hidden, or one layer of
// DenseRatio·embed as Salt's Dense defaults (hidden_dim_scale).
func (cfg EncoderConfig) LegacyHidden(embed int) []int {
	if len(cfg.Hidden) > 0 {
		return cfg.Hidden
	}
	return []int{cfg.DenseRatio * embed}
}

// Appended returns the number of tokens the encoder appends to every
// sequence, which its output keeps at the end: the registers, or the
// legacy encoder's masked zero token.
func (cfg EncoderConfig) Appended() int {
	if cfg.Kind == LegacyKind {
		return 1
	}
	return cfg.Registers
}

// legacyEncoder is Salt's legacy TransformerEncoder over x [B, T, D] with
// valid [B, T] (nil: all valid): it appends one zero token, masked as a
// key (Salt appends it so that its ONNX export runs on jets without
// tracks), then for each layer x + mha(norm1(x)), then x + dense(norm2(x)),
// and at the end final_norm and, with OutDim, final_linear. It returns
// the sequence [B, T+1, O], the zero token's output last (Salt drops it),
// and the additive key bias [B, T+1], the zero token's masked. A masked
// key gets no attention weight from a row with a valid key, so the zero
// token changes no valid constituent's output; in a jet without valid
// constituents every softmax still has an entry, as in Salt's export.
func legacyEncoder(g *graph.Graph, name string, x, valid *graph.Tensor, cfg EncoderConfig) (out, bias *graph.Tensor) {
	defer g.Scope(name)()
	dt := x.DType()
	if valid != nil {
		bias = padWith(g, PaddingBias(g, valid, dt), maskValue(dt))
	} else {
		bias = ZeroTokenBias(g, x)
	}
	x = g.Pad(x, []int64{0, 0, 0}, []int64{0, 1, 0})
	for i := 0; i < cfg.Layers; i++ {
		if cfg.BeforeLayer != nil {
			x = cfg.BeforeLayer(g, i, x)
		}
		x = legacyLayer(g, "layer"+strconv.Itoa(i), x, bias, cfg)
	}
	x = LayerNorm(g, "final_norm", x)
	if cfg.OutDim > 0 {
		x = Linear(g, "final_linear", x, cfg.OutDim, true)
	}
	return x, bias
}

// ZeroTokenBias is the additive key bias of x [..., T, D] with the
// legacy encoder's masked zero token appended, every one of its T entries
// valid: [..., T+1], 0 and then the mask's value. T may be dynamic (the
// deployment graph's).
func ZeroTokenBias(g *graph.Graph, x *graph.Tensor) *graph.Tensor {
	r := x.Rank() - 1
	dt := x.DType()
	shape := g.Op("Shape", []*graph.Tensor{x}, []graph.TensorType{{DType: graph.Int64, Shape: graph.Shape{int64(r)}}},
		graph.IntAttr("start", 0), graph.IntAttr("end", int64(r)))[0]
	zeros := g.Op("Expand", []*graph.Tensor{g.Scalar(dt, 0), shape}, []graph.TensorType{{DType: dt, Shape: x.Shape()[:r].Clone()}})[0]
	return padWith(g, zeros, maskValue(dt))
}

// padWith appends one entry of value v to the last axis of t.
func padWith(g *graph.Graph, t *graph.Tensor, v float64) *graph.Tensor {
	sh := t.Shape().Clone()
	if n := len(sh) - 1; sh[n] >= 0 {
		sh[n]++
	}
	pads := make([]int64, 2*len(sh))
	pads[len(pads)-1] = 1
	return g.Op("Pad", []*graph.Tensor{t, g.Int64s(pads...), g.Scalar(t.DType(), v)}, []graph.TensorType{{DType: t.DType(), Shape: sh}})[0]
}

// BiasMaskedAttentionPool is MaskedAttentionPool for a sequence x
// [B, T, D] whose padding its additive key bias [B, T] gives (0 for valid
// entries, as PaddingBias and the encoders make it): the weights of
// masked entries are zeroed after the softmax, as Salt's masked_softmax
// zeroes them, so a jet without valid entries pools to zeros.
func BiasMaskedAttentionPool(g *graph.Graph, name string, x, bias *graph.Tensor) *graph.Tensor {
	defer g.Scope(name)()
	w := g.Softmax(g.Add(g.Squeeze(Linear(g, "gate", x, 1, true), -1), bias), -1) // [B,T]
	w = g.Mul(w, g.Cast(g.Equal(bias, g.ScalarLike(bias, 0)), w.DType()))
	return g.ReduceSum(g.Mul(g.Unsqueeze(w, -1), x), []int{1}, false)
}

// legacyLayer is Salt's legacy TransformerEncoderLayer (pre-norm, as
// Salt's since its MR !132): x + mha(norm1(x)), then x + dense(norm2(x)),
// with nn.LayerNorm norms.
func legacyLayer(g *graph.Graph, name string, x, bias *graph.Tensor, cfg EncoderConfig) *graph.Tensor {
	defer g.Scope(name)()
	x = g.Add(x, legacyAttention(g, "mha", LayerNorm(g, "norm1", x), bias, cfg))
	return g.Add(x, legacyDense(g, "dense", LayerNorm(g, "norm2", x), cfg))
}

// legacyAttention is Salt's legacy MultiheadAttention with its
// ScaledDotProductAttention: q, k and v from separate nn.Linear layers,
// scores q·kᵀ/√d_h per head, dropout on the scores (before the softmax,
// as ScaledDotProductAttention applies it), the padded keys masked, the
// softmax's weights applied to v, and the output Linear unless
// cfg.NoOutProj.
func legacyAttention(g *graph.Graph, name string, x, bias *graph.Tensor, cfg EncoderConfig) *graph.Tensor {
	defer g.Scope(name)()
	d := x.Dim(-1)
	h := int64(cfg.Heads)
	if h <= 0 || d%h != 0 {
		g.Errorf("embedding %d is not divisible by %d heads", d, cfg.Heads)
		return x
	}
	dh := d / h
	heads := func(proj string) *graph.Tensor {
		return g.Transpose(g.Reshape(Linear(g, proj, x, int(d), true), 0, 0, h, dh), 0, 2, 1, 3) // [B,H,T,dh]
	}
	q, k, v := heads("linear_q"), heads("linear_k"), heads("linear_v")
	scores := g.Div(g.MatMul(q, g.Transpose(k, 0, 1, 3, 2)), g.Scalar(x.DType(), math.Sqrt(float64(dh))))
	scores = Dropout(g, "dropout", scores, cfg.AttnDropout, cfg.Training)
	if bias != nil {
		scores = g.Add(scores, g.Unsqueeze(bias, 1, 2))
	}
	o := g.MatMul(g.Softmax(scores, -1), v)            // [B,H,T,dh]
	o = g.Reshape(g.Transpose(o, 0, 2, 1, 3), 0, 0, d) // [B,T,D]
	if cfg.NoOutProj {
		return o
	}
	return Linear(g, "linear_out", o, int(d), true)
}

// legacyDense is the legacy layer's Salt Dense from D back to D through
// the hidden sizes LegacyHidden gives, the activation between the layers
// and none after the last; with Dropout, each Linear reads its input
// dropped out, as Salt's Dense puts nn.Dropout before every Linear. Its
// Linear layers are scoped 0, 1, …
func legacyDense(g *graph.Graph, name string, x *graph.Tensor, cfg EncoderConfig) *graph.Tensor {
	defer g.Scope(name)()
	d := int(x.Dim(-1))
	sizes := append(append([]int{}, cfg.LegacyHidden(d)...), d)
	for i, n := range sizes {
		x = Dropout(g, "dropout"+strconv.Itoa(i), x, cfg.Dropout, cfg.Training)
		x = Linear(g, strconv.Itoa(i), x, n, true)
		if i < len(sizes)-1 {
			x = Activate(g, x, cfg.Activation)
		}
	}
	return x
}

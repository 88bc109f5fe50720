package model

import (
	"math"
	"strconv"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/nn"
)

// This file is oneJetForward's encoder and pooling for Salt's legacy
// TransformerEncoder (nn.LegacyKind), in the one-jet operators onejet.go
// describes: the same parameters and function as forward's, with the
// LayerNorms written out (with their learnable scale and shift), the
// attention's 1/√d_head folded into linear_q, and Salt's masked zero token
// kept, so that a jet without constituents runs and pools to zeros.

// oneJetEncode runs the encoder and the pooling on one jet's embedded
// constituents x [n, D]. It returns the encoder's output [n + appended, O]
// (the tokens the encoder appends last) and the pooled jet [1, O].
func (s *Spec) oneJetEncode(g *graph.Graph, x *graph.Tensor) (enc, pooled *graph.Tensor) {
	if s.Encoder.Kind != nn.LegacyKind {
		enc = oneJetEncoder(g, "encoder", x, s.Encoder)
		return enc, oneJetPool(g, "pooling", enc)
	}
	enc, bias := oneJetLegacyEncoder(g, "encoder", x, s.Encoder)
	return enc, oneJetMaskedPool(g, "pooling", enc, bias)
}

// oneJetLegacyEncoder is the legacy nn.Encoder on x [n, D], every
// constituent valid: the masked zero token appended, the layers, final_norm
// and final_linear. It returns [n+1, O] and the key bias [n+1] (0, and
// the token's mask).
func oneJetLegacyEncoder(g *graph.Graph, name string, x *graph.Tensor, cfg nn.EncoderConfig) (enc, bias *graph.Tensor) {
	defer g.Scope(name)()
	bias = nn.ZeroTokenBias(g, x)
	x = g.Pad(x, []int64{0, 0}, []int64{1, 0})
	for i := 0; i < cfg.Layers; i++ {
		x = oneJetLegacyLayer(g, "layer"+strconv.Itoa(i), x, bias, cfg)
	}
	x = layerNormAffine2(g, "final_norm", x)
	if cfg.OutDim > 0 {
		x = linear2(g, "final_linear", x, cfg.OutDim)
	}
	return x, bias
}

// oneJetLegacyLayer is the legacy layer on x [T, D]: x + mha(norm1(x)),
// then x + dense(norm2(x)).
func oneJetLegacyLayer(g *graph.Graph, name string, x, bias *graph.Tensor, cfg nn.EncoderConfig) *graph.Tensor {
	defer g.Scope(name)()
	d := int(x.Dim(-1))
	x = g.Add(x, oneJetLegacyAttention(g, "mha", layerNormAffine2(g, "norm1", x), bias, int64(cfg.Heads), !cfg.NoOutProj))
	h := layerNormAffine2(g, "norm2", x)
	pop := g.Scope("dense")
	sizes := append(append([]int{}, cfg.LegacyHidden(d)...), d)
	for i, n := range sizes {
		if i > 0 {
			h = nn.Activate(g, h, cfg.Activation)
		}
		h = linear2(g, strconv.Itoa(i), h, n)
	}
	pop()
	return g.Add(x, h)
}

// oneJetLegacyAttention is the legacy MultiheadAttention on x [T, D]
// with the key bias [T], with its output projection linear_out where
// outProj: 1/√d_head is folded into linear_q's weight and bias.
func oneJetLegacyAttention(g *graph.Graph, name string, x, bias *graph.Tensor, h int64, outProj bool) *graph.Tensor {
	defer g.Scope(name)()
	d := x.Dim(-1)
	dh := d / h
	dt := x.DType()
	heads := func(t *graph.Tensor) *graph.Tensor { return g.Transpose(g.Reshape(t, -1, h, dh), 1, 0, 2) } // [H, T, dh]
	pop := g.Scope("linear_q")
	bound := 1 / math.Sqrt(float64(d))
	w := g.ParamOf("weight", dt, graph.Shape{d, d}, graph.InitUniform(bound))
	b := g.ParamOf("bias", dt, graph.Shape{d}, graph.InitUniform(bound))
	scale := g.Scalar(dt, 1/math.Sqrt(float64(dh)))
	q := heads(gemm(g, x, g.Mul(w, scale), g.Mul(b, scale)))
	pop()
	k := heads(linear2(g, "linear_k", x, int(d)))
	v := heads(linear2(g, "linear_v", x, int(d)))
	scores := g.Add(g.MatMul(q, g.Transpose(k, 0, 2, 1)), bias) // [H, T, T]
	o := g.MatMul(g.Softmax(scores, -1), v)                     // [H, T, dh]
	o = g.Reshape(g.Transpose(o, 1, 0, 2), -1, d)               // [T, D]
	if !outProj {
		return o
	}
	return linear2(g, "linear_out", o, int(d))
}

// layerNormAffine2 is nn.LayerNorm (learnable scale and shift, ε = 1e-5)
// over the last axis, written out in elementary operators.
func layerNormAffine2(g *graph.Graph, name string, x *graph.Tensor) *graph.Tensor {
	defer g.Scope(name)()
	sh := graph.Shape{x.Dim(-1)}
	w := g.ParamOf("weight", x.DType(), sh, graph.InitOnes())
	b := g.ParamOf("bias", x.DType(), sh, graph.InitZeros())
	c := g.Sub(x, g.ReduceMean(x, []int{-1}, true))
	v := g.ReduceMean(g.Mul(c, c), []int{-1}, true)
	return g.Add(g.Mul(g.Div(c, g.Sqrt(g.Add(v, g.ScalarLike(x, 1e-5)))), w), b)
}

// oneJetMaskedPool is nn.BiasMaskedAttentionPool on x [T, O] with the key
// bias [T]: the softmax of the gate, masked entries' weights zeroed, and
// the weighted sum as one [1, T]·[T, O] product.
func oneJetMaskedPool(g *graph.Graph, name string, x, bias *graph.Tensor) *graph.Tensor {
	defer g.Scope(name)()
	b := g.Reshape(bias, 1, -1)
	w := g.Softmax(g.Add(g.Reshape(linear2(g, "gate", x, 1), 1, -1), b), -1) // [1, T]
	w = g.Mul(w, g.Cast(g.Equal(b, g.ScalarLike(b, 0)), w.DType()))
	return g.MatMul(w, x)
}

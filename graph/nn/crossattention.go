package nn

import (
	"math"
	"strconv"

	"github.com/salt-ort/salt-ort/graph"
)

// CrossAttentionKind is Salt's TransformerCrossAttentionEncoder (salt/models/
// transformer.py before commit c93d54f, used by GN2_tracks_neutral_CA.yaml):
// a stack of legacy encoder layers per constituent group, each group
// attending to itself alone, and between each pair of groups a symmetric
// cross-attention update after the first and the last layer (after every
// layer with CAEveryLayer), then a shared final_norm and final_linear.
// It appends no token to the sequences.
const CrossAttentionKind EncoderKind = "cross_attention"

// CrossAttentionEncoder is Salt's TransformerCrossAttentionEncoder over the
// groups xs[i] [B, T_i, D] named names[i], with valids[i] [B, T_i] (nil:
// all valid). Per layer l, each group runs its own legacy layer
// (type_layers/<name>/<l>: x + mha(norm1(x)), then x + dense(norm2(x)),
// attending within the group); then for each pair (a, b) of groups in
// order, with the sequences x_a, x_b as they were after the
// self-attention, x_a += CA(x_a, x_b) and x_b += CA(x_b, x_a) with the
// same parameters (cross_layers/<a>_<b>/<k>), where CA(q, kv) =
// dense(norm2(mha(norm1(q), norm0(kv)))), a purely additive update. k is
// l with cfg.CAEveryLayer; otherwise Salt updates after the first layer
// (k = 0) and the last (k = 1) alone. Every group's output gets the
// shared final_norm and, with OutDim, final_linear. As Salt's masked
// softmax does, the weights of padded keys are zero, so a query whose keys
// are all padded (a jet without neutral constituents) receives linear_out's
// bias alone.
func CrossAttentionEncoder(g *graph.Graph, name string, names []string, xs, valids []*graph.Tensor, cfg EncoderConfig) []*graph.Tensor {
	defer g.Scope(name)()
	if len(names) != len(xs) || len(valids) != len(xs) || len(xs) < 2 {
		g.Errorf("cross-attention encoder: %d names and %d masks for %d groups (at least 2)", len(names), len(valids), len(xs))
		return xs
	}
	d := xs[0].Dim(-1)
	x := append([]*graph.Tensor{}, xs...)
	cross := map[string]*legacyBlock{}
	for l := 0; l < cfg.Layers; l++ {
		for i, n := range names {
			scope := "type_layers/" + n + "/" + strconv.Itoa(l)
			b := declareLegacyBlock(g, scope, x[i].DType(), d, cfg, false)
			pop := g.Scope(scope)
			x[i] = g.Add(x[i], b.attend(g, b.norm1.apply(g, x[i]), nil, valids[i], cfg))
			x[i] = g.Add(x[i], b.dense(g, b.norm2.apply(g, x[i]), cfg))
			pop()
		}
		k := l
		if !cfg.CAEveryLayer {
			switch l {
			case 0:
				k = 0
			case cfg.Layers - 1:
				k = 1
			default:
				continue
			}
		}
		prev := append([]*graph.Tensor{}, x...)
		for a := 0; a < len(names); a++ {
			for c := a + 1; c < len(names); c++ {
				scope := "cross_layers/" + names[a] + "_" + names[c] + "/" + strconv.Itoa(k)
				b := cross[scope]
				if b == nil {
					b = declareLegacyBlock(g, scope, x[a].DType(), d, cfg, true)
					cross[scope] = b
				}
				x[a] = g.Add(x[a], b.crossUpdate(g, scope+"/"+names[a], prev[a], prev[c], valids[c], cfg))
				x[c] = g.Add(x[c], b.crossUpdate(g, scope+"/"+names[c], prev[c], prev[a], valids[a], cfg))
			}
		}
	}
	final := declareNorm(g, "final_norm", x[0].DType(), d)
	var proj *linearParams
	if cfg.OutDim > 0 {
		proj = declareLinear(g, "final_linear", x[0].DType(), d, int64(cfg.OutDim))
	}
	for i := range x {
		x[i] = final.apply(g, x[i])
		if proj != nil {
			x[i] = proj.apply(g, x[i])
		}
	}
	return x
}

// CrossAttentionLayers returns the number of cross-attention layers per
// pair of groups of Salt's TransformerCrossAttentionEncoder: one per
// layer with CAEveryLayer, otherwise two (one for a single layer).
func (cfg EncoderConfig) CrossAttentionLayers() int {
	switch {
	case cfg.CAEveryLayer:
		return cfg.Layers
	case cfg.Layers > 1:
		return 2
	}
	return 1
}

// linearParams are an nn.Linear's weight [in, out] and bias, declared
// once and applied wherever Salt reuses the module.
type linearParams struct{ w, b *graph.Tensor }

func declareLinear(g *graph.Graph, name string, dt graph.DType, in, out int64) *linearParams {
	defer g.Scope(name)()
	bound := graph.InitUniform(1 / math.Sqrt(float64(in)))
	return &linearParams{w: g.ParamOf("weight", dt, graph.Shape{in, out}, bound), b: g.ParamOf("bias", dt, graph.Shape{out}, bound)}
}

func (p *linearParams) apply(g *graph.Graph, x *graph.Tensor) *graph.Tensor {
	return g.Add(g.MatMul(x, p.w), p.b)
}

// normParams are an nn.LayerNorm's scale and shift.
type normParams struct{ w, b *graph.Tensor }

func declareNorm(g *graph.Graph, name string, dt graph.DType, d int64) *normParams {
	defer g.Scope(name)()
	return &normParams{w: g.ParamOf("weight", dt, graph.Shape{d}, graph.InitOnes()), b: g.ParamOf("bias", dt, graph.Shape{d}, graph.InitZeros())}
}

func (p *normParams) apply(g *graph.Graph, x *graph.Tensor) *graph.Tensor {
	return g.LayerNorm(x, p.w, p.b, 1e-5)
}

// legacyBlock holds the parameters of one of Salt's legacy
// TransformerEncoderLayer (mha with linear_q, linear_k, linear_v,
// linear_out unless cfg.NoOutProj; the Dense; norm1, norm2) and, for a
// TransformerCrossAttentionLayer, norm0, under Salt's names.
type legacyBlock struct {
	q, k, v, out        *linearParams
	layers              []*linearParams
	norm0, norm1, norm2 *normParams
}

func declareLegacyBlock(g *graph.Graph, name string, dt graph.DType, d int64, cfg EncoderConfig, cross bool) *legacyBlock {
	defer g.Scope(name)()
	b := &legacyBlock{}
	pop := g.Scope("mha")
	b.q, b.k, b.v = declareLinear(g, "linear_q", dt, d, d), declareLinear(g, "linear_k", dt, d, d), declareLinear(g, "linear_v", dt, d, d)
	if !cfg.NoOutProj {
		b.out = declareLinear(g, "linear_out", dt, d, d)
	}
	pop()
	pop = g.Scope("dense")
	in := d
	for i, n := range append(append([]int{}, cfg.LegacyHidden(int(d))...), int(d)) {
		b.layers = append(b.layers, declareLinear(g, strconv.Itoa(i), dt, in, int64(n)))
		in = int64(n)
	}
	pop()
	b.norm1, b.norm2 = declareNorm(g, "norm1", dt, d), declareNorm(g, "norm2", dt, d)
	if cross {
		b.norm0 = declareNorm(g, "norm0", dt, d)
	}
	return b
}

// crossUpdate is Salt's TransformerCrossAttentionLayer: the additive
// update dense(norm2(mha(norm1(q), norm0(kv)))) of q from kv, its nodes
// under scope name.
func (b *legacyBlock) crossUpdate(g *graph.Graph, name string, q, kv, kvValid *graph.Tensor, cfg EncoderConfig) *graph.Tensor {
	defer g.Scope(name)()
	a := b.attend(g, b.norm1.apply(g, q), b.norm0.apply(g, kv), kvValid, cfg)
	return b.dense(g, b.norm2.apply(g, a), cfg)
}

// attend is Salt's legacy MultiheadAttention of queries from q [B, Tq, D]
// over keys and values from kv [B, Tk, D] (nil: q itself): scores
// q·kᵀ/√d_h per head, dropout on the scores, the padded keys' weights
// zeroed after the softmax (kvValid [B, Tk], nil: none padded), and
// linear_out unless cfg.NoOutProj.
func (b *legacyBlock) attend(g *graph.Graph, q, kv, kvValid *graph.Tensor, cfg EncoderConfig) *graph.Tensor {
	defer g.Scope("mha")()
	if kv == nil {
		kv = q
	}
	d := q.Dim(-1)
	h := int64(cfg.Heads)
	if h <= 0 || d%h != 0 {
		g.Errorf("embedding %d is not divisible by %d heads", d, cfg.Heads)
		return q
	}
	dh := d / h
	heads := func(p *linearParams, x *graph.Tensor) *graph.Tensor {
		return g.Transpose(g.Reshape(p.apply(g, x), 0, 0, h, dh), 0, 2, 1, 3) // [B,H,T,dh]
	}
	qs, ks, vs := heads(b.q, q), heads(b.k, kv), heads(b.v, kv)
	scores := g.Div(g.MatMul(qs, g.Transpose(ks, 0, 1, 3, 2)), g.Scalar(q.DType(), math.Sqrt(float64(dh))))
	scores = Dropout(g, "dropout", scores, cfg.AttnDropout, cfg.Training)
	var keep *graph.Tensor
	if kvValid != nil {
		scores = g.Add(scores, g.Unsqueeze(PaddingBias(g, kvValid, scores.DType()), 1, 2))
		keep = g.Unsqueeze(g.Cast(kvValid, scores.DType()), 1, 2) // [B,1,1,Tk]
	}
	w := g.Softmax(scores, -1)
	if keep != nil {
		// A row whose keys are all padded has its weights zeroed, as Salt's
		// masked_softmax leaves them.
		w = g.Mul(w, keep)
	}
	o := g.MatMul(w, vs)                               // [B,H,Tq,dh]
	o = g.Reshape(g.Transpose(o, 0, 2, 1, 3), 0, 0, d) // [B,Tq,D]
	if b.out == nil {
		return o
	}
	return b.out.apply(g, o)
}

// dense is the block's Salt Dense: each Linear reads its input dropped out
// with cfg.Dropout in training, the activation between the layers.
func (b *legacyBlock) dense(g *graph.Graph, x *graph.Tensor, cfg EncoderConfig) *graph.Tensor {
	defer g.Scope("dense")()
	for i, p := range b.layers {
		x = Dropout(g, "dropout"+strconv.Itoa(i), x, cfg.Dropout, cfg.Training)
		x = p.apply(g, x)
		if i < len(b.layers)-1 {
			x = Activate(g, x, cfg.Activation)
		}
	}
	return x
}

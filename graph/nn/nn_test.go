package nn_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/nn"
)

type (
	G = graph.Graph
	T = graph.Tensor
	S = graph.Shape
)

// validMask is a [2, 5] mask with 3 and 5 valid entries.
var validMask = []float64{1, 1, 1, 0, 0, 1, 1, 1, 1, 1}

func TestLayerGradients(t *testing.T) {
	x := func(shape S) []graphtest.Var { return []graphtest.Var{{Name: "x", Shape: shape}} }
	valid := []graphtest.Fixed{{Name: "valid", DType: graph.Bool, Shape: S{2, 5}, Values: validMask}}
	cases := []struct {
		name  string
		check graphtest.GradCheck
	}{
		{"Linear", graphtest.GradCheck{Vars: x(S{2, 3, 4}), Build: func(g *G, v, _ []*T) *T { return nn.Linear(g, "lin", v[0], 5, true) }}},
		{"ConcatLinear", graphtest.GradCheck{
			Vars:  []graphtest.Var{{Name: "a", Shape: S{2, 3, 1, 4}}, {Name: "b", Shape: S{2, 1, 3, 4}}, {Name: "c", Shape: S{2, 1, 1, 2}}},
			Build: func(g *G, v, _ []*T) *T { return nn.ConcatLinear(g, "pair", v, 3) },
		}},
		{"MLP/relu", graphtest.GradCheck{Vars: x(S{3, 4}), Build: func(g *G, v, _ []*T) *T {
			return nn.MLP(g, "mlp", v[0], []int{6, 5, 2}, nn.ReLU, false)
		}}},
		{"MLP/silu", graphtest.GradCheck{Vars: x(S{3, 4}), Build: func(g *G, v, _ []*T) *T {
			return nn.MLP(g, "mlp", v[0], []int{6, 2}, nn.SiLU, true)
		}}},
		// Mish at points away from 0 and at 0 itself, where the stable
		// softplus's pieces have kinks that Mish's x factor cancels.
		{"MLP/mish", graphtest.GradCheck{Vars: x(S{3, 4}), Build: func(g *G, v, _ []*T) *T {
			return nn.MLP(g, "mlp", v[0], []int{6, 2}, nn.Mish, true)
		}}},
		{"Mish/large", graphtest.GradCheck{Vars: []graphtest.Var{{Name: "x", Shape: S{8}, Gen: func(r *rand.Rand) float64 { return 30 * (r.Float64() - 0.5) }}},
			Build: func(g *G, v, _ []*T) *T { return nn.Activate(g, v[0], nn.Mish) }}},
		{"MLP/gelu/float32", graphtest.GradCheck{DType: graph.Float32, Vars: x(S{3, 4}), Build: func(g *G, v, _ []*T) *T {
			return nn.MLP(g, "mlp", v[0], []int{6, 2}, nn.GELU, true)
		}}},
		{"LayerNorm", graphtest.GradCheck{Vars: x(S{2, 3, 8}), Build: func(g *G, v, _ []*T) *T { return nn.LayerNorm(g, "norm", v[0]) }}},
		{"Norm", graphtest.GradCheck{Vars: x(S{2, 3, 8}), Build: func(g *G, v, _ []*T) *T { return nn.Norm(g, "norm", v[0]) }}},
		{"Encoder/no-projection", graphtest.GradCheck{Vars: x(S{2, 5, 8}), Fixed: valid, Build: func(g *G, v, f []*T) *T {
			cfg := nn.EncoderConfig{Layers: 1, Heads: 4, DenseRatio: 1, Activation: nn.SiLU, Registers: 1}
			out, bias := nn.Encoder(g, "encoder", v[0], f[0], cfg)
			return nn.AttentionPool(g, "pool", out, bias)
		}}},
		{"SelfAttention/masked", graphtest.GradCheck{Vars: x(S{2, 5, 8}), Fixed: valid, Build: func(g *G, v, f []*T) *T {
			return nn.SelfAttention(g, "attn", v[0], nn.PaddingBias(g, f[0], v[0].DType()), 2)
		}}},
		{"EncoderLayer", graphtest.GradCheck{Vars: x(S{2, 5, 8}), Fixed: valid, Build: func(g *G, v, f []*T) *T {
			cfg := nn.EncoderConfig{Heads: 2, DenseRatio: 2, Activation: nn.ReLU}
			return nn.EncoderLayer(g, "layer", v[0], nn.PaddingBias(g, f[0], v[0].DType()), cfg)
		}}},
		{"Encoder/registers", graphtest.GradCheck{Vars: x(S{2, 5, 8}), Fixed: valid, Build: func(g *G, v, f []*T) *T {
			cfg := nn.EncoderConfig{Layers: 2, Heads: 2, DenseRatio: 2, Activation: nn.SiLU, Registers: 2, OutDim: 6}
			out, bias := nn.Encoder(g, "encoder", v[0], f[0], cfg)
			return nn.AttentionPool(g, "pool", out, bias)
		}}},
		{"AttentionPool", graphtest.GradCheck{Vars: x(S{2, 5, 4}), Fixed: valid, Build: func(g *G, v, f []*T) *T {
			return nn.AttentionPool(g, "pool", v[0], nn.PaddingBias(g, f[0], v[0].DType()))
		}}},
		{"RMSNorm", graphtest.GradCheck{Vars: x(S{2, 3, 8}), Build: func(g *G, v, _ []*T) *T { return nn.RMSNorm(g, "norm", v[0]) }}},
		{"RMSNorm/float32", graphtest.GradCheck{DType: graph.Float32, Vars: x(S{2, 3, 8}), Build: func(g *G, v, _ []*T) *T { return nn.RMSNorm(g, "norm", v[0]) }}},
		// Salt's GN3 options of the encoder, each alone and all together.
		{"EncoderLayer/gated", encoderCheck(nn.EncoderConfig{Heads: 2, DenseRatio: 2, Activation: nn.SiLU, Gated: true})},
		{"EncoderLayer/rmsnorm", encoderCheck(nn.EncoderConfig{Heads: 2, DenseRatio: 2, Activation: nn.ReLU, Norm: nn.RMSNormKind})},
		{"EncoderLayer/post-norm", encoderCheck(nn.EncoderConfig{Heads: 2, DenseRatio: 2, Activation: nn.ReLU, NormType: nn.PostNorm})},
		{"EncoderLayer/layerscale", encoderCheck(nn.EncoderConfig{Heads: 2, DenseRatio: 2, Activation: nn.ReLU, LayerScale: 0.1})},
		{"EncoderLayer/drop-path", encoderCheck(nn.EncoderConfig{Heads: 2, DenseRatio: 2, Activation: nn.ReLU, DropPath: 0.5, Training: true})},
		{"EncoderLayer/qk-norm", encoderCheck(nn.EncoderConfig{Heads: 2, DenseRatio: 2, Activation: nn.ReLU, QKNorm: true})},
		{"EncoderLayer/v-norm", encoderCheck(nn.EncoderConfig{Heads: 2, DenseRatio: 2, Activation: nn.ReLU, VNorm: true})},
		{"Encoder/hybrid", graphtest.GradCheck{Vars: x(S{2, 5, 8}), Fixed: valid, Build: func(g *G, v, f []*T) *T {
			cfg := nn.EncoderConfig{Layers: 2, Heads: 2, DenseRatio: 2, Activation: nn.SiLU, Registers: 1, OutDim: 6,
				Gated: true, Norm: nn.RMSNormKind, NormType: nn.HybridNorm, LayerScale: 0.5, DropPath: 0.3, Training: true}
			out, bias := nn.Encoder(g, "encoder", v[0], f[0], cfg)
			return nn.AttentionPool(g, "pool", out, bias)
		}}},
		{"EdgeAttention", graphtest.GradCheck{
			Vars:  []graphtest.Var{{Name: "x", Shape: S{2, 5, 8}}, {Name: "edge", Shape: S{2, 5, 5, 3}}},
			Fixed: valid,
			Build: func(g *G, v, f []*T) *T {
				y, e := nn.EdgeAttention(g, "attn", v[0], nn.PaddingBias(g, f[0], v[0].DType()), v[1], 2, true)
				return g.Add(g.ReduceSum(y, []int{1, 2}, false), g.ReduceSum(e, []int{1, 2, 3}, false))
			},
		}},
		{"Encoder/edges", graphtest.GradCheck{
			Vars:  []graphtest.Var{{Name: "x", Shape: S{2, 5, 8}}, {Name: "edge", Shape: S{2, 5, 5, 4}}},
			Fixed: valid,
			Build: func(g *G, v, f []*T) *T {
				cfg := nn.EncoderConfig{Layers: 2, Heads: 2, DenseRatio: 2, Activation: nn.SiLU, Registers: 1, EdgeDim: 4, UpdateEdges: true,
					AttnDropout: 0.2, Training: true}
				out, bias := nn.EdgeEncoder(g, "encoder", v[0], f[0], v[1], cfg)
				return nn.AttentionPool(g, "pool", out, bias)
			},
		}},
		// Salt's legacy TransformerEncoder: learnable LayerNorms, separate
		// q/k/v projections, a two-hidden-layer Dense with dropout on every
		// Linear's input and on the attention scores, final norm before
		// the projection; and without dropout or projection.
		{"Encoder/legacy", graphtest.GradCheck{Vars: x(S{2, 5, 8}), Fixed: valid, Build: func(g *G, v, f []*T) *T {
			cfg := nn.EncoderConfig{Kind: nn.LegacyKind, Layers: 2, Heads: 2, Hidden: []int{12, 6}, Activation: nn.SiLU, OutDim: 6,
				Dropout: 0.3, AttnDropout: 0.2, Training: true}
			out, bias := nn.Encoder(g, "encoder", v[0], f[0], cfg)
			return nn.BiasMaskedAttentionPool(g, "pool", out, bias)
		}}},
		{"Encoder/legacy/no-projection", graphtest.GradCheck{Vars: x(S{2, 5, 8}), Fixed: valid, Build: func(g *G, v, f []*T) *T {
			cfg := nn.EncoderConfig{Kind: nn.LegacyKind, Layers: 1, Heads: 4, DenseRatio: 2, Activation: nn.ReLU}
			out, bias := nn.Encoder(g, "encoder", v[0], f[0], cfg)
			return nn.BiasMaskedAttentionPool(g, "pool", out, bias)
		}}},
		// The second jet has no valid entry: its weights are all zero.
		{"MaskedAttentionPool", graphtest.GradCheck{Vars: x(S{2, 5, 4}),
			Fixed: []graphtest.Fixed{{Name: "valid", DType: graph.Bool, Shape: S{2, 5}, Values: []float64{1, 1, 0, 1, 0, 0, 0, 0, 0, 0}}},
			Build: func(g *G, v, f []*T) *T { return nn.MaskedAttentionPool(g, "pool", v[0], f[0]) }}},
		{"BiasMaskedAttentionPool", graphtest.GradCheck{Vars: x(S{2, 5, 4}),
			Fixed: []graphtest.Fixed{{Name: "valid", DType: graph.Bool, Shape: S{2, 5}, Values: []float64{1, 1, 0, 1, 0, 0, 0, 0, 0, 0}}},
			Build: func(g *G, v, f []*T) *T {
				return nn.BiasMaskedAttentionPool(g, "pool", v[0], nn.PaddingBias(g, f[0], v[0].DType()))
			}}},
		{"Dropout", graphtest.GradCheck{Vars: x(S{2, 3}), Build: func(g *G, v, _ []*T) *T {
			return nn.Dropout(g, "drop", v[0], 0, true) // p = 0: identity
		}}},
		{"CrossEntropy/weighted-masked", graphtest.GradCheck{
			Vars: x(S{2, 5, 4}),
			Fixed: []graphtest.Fixed{
				{Name: "labels", DType: graph.Int64, Shape: S{2, 5}, Values: []float64{0, 3, 1, -1, -1, 2, 2, 0, 1, 3}},
				{Name: "mask", Shape: S{2, 5}, Values: validMask},
			},
			Build: func(g *G, v, f []*T) *T {
				return nn.CrossEntropy(g, "ce", v[0], f[0], f[1], []float64{1, 2, 0.5, 3})
			},
		}},
		{"BCEWithLogits", graphtest.GradCheck{
			Vars:  []graphtest.Var{{Name: "z", Shape: S{2, 5}, Gen: func(r *rand.Rand) float64 { return 4 * r.NormFloat64() }}},
			Fixed: []graphtest.Fixed{{Name: "y", Shape: S{2, 5}, Values: []float64{1, 0, 1, 1, 0, 0, 0, 1, 0, 1}}, {Name: "mask", Shape: S{2, 5}, Values: validMask}},
			Build: func(g *G, v, f []*T) *T { return nn.BCEWithLogits(g, "bce", v[0], f[0], f[1]) },
		}},
		{"MSE", graphtest.GradCheck{Vars: x(S{2, 5}), Fixed: []graphtest.Fixed{{Name: "y", Shape: S{2, 5}, Values: validMask}},
			Build: func(g *G, v, f []*T) *T { return nn.MSE(g, "mse", v[0], f[0], nil) }}},
		{"Huber", graphtest.GradCheck{
			Vars:  []graphtest.Var{{Name: "x", Shape: S{10}, Gen: func(r *rand.Rand) float64 { return 3 * r.NormFloat64() }}},
			Fixed: []graphtest.Fixed{{Name: "y", Shape: S{10}, Values: validMask}},
			Build: func(g *G, v, f []*T) *T { return nn.Huber(g, "huber", v[0], f[0], nil, 1) },
		}},
		// L1 away from its kink at pred = target: the targets are 0 and 1,
		// the predictions at least 0.2 away from both.
		{"L1", graphtest.GradCheck{
			Vars:  []graphtest.Var{{Name: "x", Shape: S{10}, Gen: func(r *rand.Rand) float64 { return 0.5 + 1.4*(float64(r.IntN(2))-0.5)*(1+r.Float64()) }}},
			Fixed: []graphtest.Fixed{{Name: "y", Shape: S{10}, Values: validMask}, {Name: "m", Shape: S{10}, Values: []float64{1, 2, 0, 1, 0.5, 1, 1, 0, 3, 1}}},
			Build: func(g *G, v, f []*T) *T { return nn.L1Mean(g, "l1", v[0], f[0], f[1]).Value(g) },
		}},
		{"BinaryCrossEntropy", graphtest.GradCheck{
			Vars: []graphtest.Var{{Name: "z", Shape: S{2, 5, 1}}},
			Fixed: []graphtest.Fixed{{Name: "label", DType: graph.Int64, Shape: S{2, 5}, Values: []float64{1, 0, 1, -1, -1, 0, 0, 1, 1, 1}},
				{Name: "m", Shape: S{2, 5}, Values: []float64{1, 2, 0.5, 1, 0, 1, 1, 0, 3, 1}}},
			Build: func(g *G, v, f []*T) *T { return nn.BinaryCrossEntropyMean(g, "bce", v[0], f[0], f[1]).Value(g) },
		}},
		{"GaussianNLL", graphtest.GradCheck{
			Vars:  []graphtest.Var{{Name: "mu", Shape: S{6}}, {Name: "raw", Shape: S{6}}},
			Fixed: []graphtest.Fixed{{Name: "y", Shape: S{6}, Values: []float64{0.3, -1, 2, 0.5, 0, 1}}},
			Build: func(g *G, v, f []*T) *T {
				return nn.GaussianNLL(g, "gnll", v[0], nn.GaussianVariance(g, v[1]), f[0], nil)
			},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.check.Run(t) })
	}
}

// encoderCheck is the gradient check of one encoder layer with cfg over
// the masked [2, 5, 8] input.
func encoderCheck(cfg nn.EncoderConfig) graphtest.GradCheck {
	return graphtest.GradCheck{
		Vars:  []graphtest.Var{{Name: "x", Shape: S{2, 5, 8}}},
		Fixed: []graphtest.Fixed{{Name: "valid", DType: graph.Bool, Shape: S{2, 5}, Values: validMask}},
		Build: func(g *G, v, f []*T) *T {
			return nn.EncoderLayer(g, "layer", v[0], nn.PaddingBias(g, f[0], v[0].DType()), cfg)
		},
	}
}

// TestMishValues compares Mish with x·tanh(ln(1+eˣ)) evaluated in Go,
// including arguments where eˣ overflows float32 and where it underflows.
func TestMishValues(t *testing.T) {
	xs := []float64{-200, -20, -3, -0.5, 0, 0.5, 3, 20, 200}
	for _, dt := range []graph.DType{graph.Float64, graph.Float32} {
		g := graph.New("mish")
		g.Output("y", nn.Activate(g, g.Input("x", dt, S{int64(len(xs))}), nn.Mish))
		out, err := graphtest.Compile(t, g, graph.ModelOptions{}).Run(map[string][]float64{"x": xs})
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range xs {
			want := x * math.Tanh(math.Log1p(math.Exp(x)))
			if math.IsInf(math.Exp(x), 1) {
				want = x
			}
			tol := 1e-14
			if dt == graph.Float32 {
				tol = 1e-6
			}
			if got := out["y"][i]; math.Abs(got-want) > tol*math.Max(1, math.Abs(want)) {
				t.Errorf("%s: mish(%g) = %.17g, want %.17g", dt, x, got, want)
			}
		}
	}
}

// TestLossValues compares each loss with the formula evaluated in Go.
func TestLossValues(t *testing.T) {
	logits := []float64{2, 0, -1, 0.5, 0.5, 3}
	labels := []float64{0, 2}
	lse := func(v []float64) float64 {
		var s float64
		for _, x := range v {
			s += math.Exp(x)
		}
		return math.Log(s)
	}
	nll0 := lse(logits[:3]) - logits[0]
	nll1 := lse(logits[3:]) - logits[5]
	cw := []float64{2, 1, 4}
	wantCE := (cw[0]*nll0 + cw[2]*nll1) / (cw[0] + cw[2])

	z, y := []float64{3, -2, 0.5}, []float64{1, 0, 1}
	var wantBCE float64
	for i := range z {
		p := 1 / (1 + math.Exp(-z[i]))
		wantBCE -= y[i]*math.Log(p) + (1-y[i])*math.Log(1-p)
	}
	wantBCE /= 3

	pred, target := []float64{0, 2, -3}, []float64{0.5, 0, 0}
	wantHuber := (0.5*0.25 + (2 - 0.5) + (3 - 0.5)) / 3
	mu, v := 0.5, 2.0
	wantNLL := 0.5 * (math.Log(v) + (1-mu)*(1-mu)/v)

	g := graph.New("losses")
	lg := g.Input("logits", graph.Float64, S{2, 3})
	lb := g.Input("labels", graph.Int64, S{2})
	zz := g.Input("z", graph.Float64, S{3})
	yy := g.Input("y", graph.Float64, S{3})
	pp := g.Input("pred", graph.Float64, S{3})
	tt := g.Input("target", graph.Float64, S{3})
	g.Output("ce", nn.CrossEntropy(g, "ce", lg, lb, nil, cw))
	g.Output("binary", nn.BinaryCrossEntropyMean(g, "binary", g.Unsqueeze(zz, -1), g.Cast(yy, graph.Int64), g.Input("bw", graph.Float64, S{3})).Value(g))
	g.Output("l1", nn.L1(g, "l1", pp, tt, nil))
	g.Output("bce", nn.BCEWithLogits(g, "bce", zz, yy, nil))
	g.Output("huber", nn.Huber(g, "huber", pp, tt, nil, 1))
	m := g.Scalar(graph.Float64, mu)
	g.Output("nll", nn.GaussianNLL(g, "nll", g.Reshape(m, 1), g.Reshape(g.Scalar(graph.Float64, v), 1), g.Reshape(g.Scalar(graph.Float64, 1), 1), nil))
	out, err := graphtest.Compile(t, g, graph.ModelOptions{}).Run(map[string][]float64{
		"logits": logits, "labels": labels, "z": z, "y": y, "pred": pred, "target": target, "bw": {2, 0, 0.5},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The binary cross-entropy of labels y weighted by bw: the second
	// entry weighs 0, so the mean is over the first and the third.
	bw := []float64{2, 0, 0.5}
	var bnum float64
	for i := range z {
		p := 1 / (1 + math.Exp(-z[i]))
		bnum -= bw[i] * (y[i]*math.Log(p) + (1-y[i])*math.Log(1-p))
	}
	wantBinary := bnum / (bw[0] + bw[2])
	wantL1 := (0.5 + 2 + 3) / 3
	for name, want := range map[string]float64{"ce": wantCE, "bce": wantBCE, "huber": wantHuber, "nll": wantNLL, "binary": wantBinary, "l1": wantL1} {
		if got := out[name][0]; math.Abs(got-want) > 1e-12*math.Max(1, math.Abs(want)) {
			t.Errorf("%s = %.15g, want %.15g", name, got, want)
		}
	}
}

// TestAttentionIgnoresPadding checks that padded tracks change nothing
// for valid ones, and that attention matches a direct Go computation.
func TestAttentionIgnoresPadding(t *testing.T) {
	const b, tt, d, heads = 2, 5, 8, 2
	g := graph.New("attn")
	x := g.Input("x", graph.Float64, S{b, tt, d})
	valid := g.Input("valid", graph.Bool, S{b, tt})
	g.Output("y", nn.SelfAttention(g, "attn", x, nn.PaddingBias(g, valid, graph.Float64), heads))
	r := rand.New(rand.NewPCG(5, 6))
	feeds := map[string][]float64{"valid": validMask}
	params := map[string][]float64{}
	for _, p := range g.Params() {
		params[p.Name()] = p.Init.Sample(r, int(p.Shape().Size()))
		if p.Init.Kind == "zeros" {
			for i := range params[p.Name()] {
				params[p.Name()][i] = 0.1 * r.NormFloat64()
			}
		}
		feeds[p.Name()] = params[p.Name()]
	}
	xs := make([]float64, b*tt*d)
	for i := range xs {
		xs[i] = r.NormFloat64()
	}
	feeds["x"] = xs
	run := graphtest.Compile(t, g, graph.ModelOptions{})
	out, err := run.Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	want := naiveAttention(xs, validMask, params, b, tt, d, heads)
	for i := range want {
		if math.Abs(out["y"][i]-want[i]) > 1e-10 {
			t.Fatalf("y[%d] = %g, want %g", i, out["y"][i], want[i])
		}
	}
	// Scramble the padded tracks of jet 0 (entries 3, 4).
	xs2 := append([]float64(nil), xs...)
	for i := 3 * d; i < 5*d; i++ {
		xs2[i] = 100 * r.NormFloat64()
	}
	feeds["x"] = xs2
	out2, err := run.Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3*d; i++ {
		if out2["y"][i] != out["y"][i] {
			t.Fatalf("valid output %d changed when padding changed: %g → %g", i, out["y"][i], out2["y"][i])
		}
	}
}

// naiveAttention is multi-head attention written out with loops.
func naiveAttention(x, valid []float64, p map[string][]float64, b, t, d, heads int) []float64 {
	win, bin := p["attn/in_proj/weight"], p["attn/in_proj/bias"]
	wout, bout := p["attn/out_proj/weight"], p["attn/out_proj/bias"]
	dh := d / heads
	out := make([]float64, b*t*d)
	for j := 0; j < b; j++ {
		qkv := make([][]float64, t)
		for i := 0; i < t; i++ {
			qkv[i] = make([]float64, 3*d)
			for o := 0; o < 3*d; o++ {
				s := bin[o]
				for k := 0; k < d; k++ {
					s += x[(j*t+i)*d+k] * win[k*3*d+o]
				}
				qkv[i][o] = s
			}
		}
		concat := make([][]float64, t)
		for i := range concat {
			concat[i] = make([]float64, d)
		}
		for h := 0; h < heads; h++ {
			for i := 0; i < t; i++ {
				scores := make([]float64, t)
				maxS := math.Inf(-1)
				for k := 0; k < t; k++ {
					if valid[j*t+k] == 0 {
						scores[k] = math.Inf(-1)
						continue
					}
					var s float64
					for e := 0; e < dh; e++ {
						s += qkv[i][h*dh+e] * qkv[k][d+h*dh+e]
					}
					scores[k] = s / math.Sqrt(float64(dh))
					maxS = math.Max(maxS, scores[k])
				}
				var z float64
				for k := range scores {
					scores[k] = math.Exp(scores[k] - maxS)
					z += scores[k]
				}
				for e := 0; e < dh; e++ {
					var s float64
					for k := 0; k < t; k++ {
						s += scores[k] / z * qkv[k][2*d+h*dh+e]
					}
					concat[i][h*dh+e] = s
				}
			}
		}
		for i := 0; i < t; i++ {
			for o := 0; o < d; o++ {
				s := bout[o]
				for k := 0; k < d; k++ {
					s += concat[i][k] * wout[k*d+o]
				}
				out[(j*t+i)*d+o] = s
			}
		}
	}
	return out
}

// TestRMSNormValue compares RMSNorm with its formula.
func TestRMSNormValue(t *testing.T) {
	g := graph.New("rms")
	x := g.Input("x", graph.Float64, S{2, 4})
	g.Output("y", nn.RMSNorm(g, "norm", x))
	xs := []float64{1, -2, 3, 0.5, 1e-3, 0, -1e-3, 2e-3}
	w := []float64{1, 2, 0.5, -1}
	out, err := graphtest.Compile(t, g, graph.ModelOptions{}).Run(map[string][]float64{"x": xs, "norm/weight": w})
	if err != nil {
		t.Fatal(err)
	}
	for r := 0; r < 2; r++ {
		var ms float64
		for _, v := range xs[r*4 : r*4+4] {
			ms += v * v / 4
		}
		for i := 0; i < 4; i++ {
			want := xs[r*4+i] / math.Sqrt(ms+1e-5) * w[i]
			if got := out["y"][r*4+i]; math.Abs(got-want) > 1e-12 {
				t.Errorf("y[%d][%d] = %g, want %g", r, i, got, want)
			}
		}
	}
}

// TestEncoderOptionParams checks the parameters each GN3 option of the
// encoder adds, with their shapes and initial values, on a 2-layer,
// 8-wide, 2-head encoder with dense ratio 2.
func TestEncoderOptionParams(t *testing.T) {
	base := nn.EncoderConfig{Layers: 2, Heads: 2, DenseRatio: 2, Activation: nn.SiLU}
	for _, c := range []struct {
		name   string
		modify func(*nn.EncoderConfig)
		want   map[string]S // parameter → shape
		absent []string
		init   map[string]graph.Init
	}{
		{"default", func(*nn.EncoderConfig) {}, map[string]S{"enc/layer0/dense/0/weight": {8, 16}}, []string{"enc/out_norm/weight", "enc/layer0/attn/q_norm/weight"}, nil},
		{"gated", func(c *nn.EncoderConfig) { c.Gated = true }, map[string]S{"enc/layer0/dense/0/weight": {8, 32}, "enc/layer0/dense/1/weight": {16, 8}}, nil, nil},
		{"rmsnorm", func(c *nn.EncoderConfig) { c.Norm = nn.RMSNormKind }, map[string]S{"enc/layer0/attn_norm/weight": {8}, "enc/layer1/dense/norm/weight": {8}, "enc/out_norm/weight": {8}}, nil,
			map[string]graph.Init{"enc/out_norm/weight": graph.InitOnes()}},
		{"layerscale", func(c *nn.EncoderConfig) { c.LayerScale = 1e-3 }, map[string]S{"enc/layer0/attn_layerscale/gamma": {8}, "enc/layer1/dense/layerscale/gamma": {8}}, nil,
			map[string]graph.Init{"enc/layer0/attn_layerscale/gamma": graph.InitConstant(1e-3)}},
		{"qk-norm", func(c *nn.EncoderConfig) { c.QKNorm = true }, map[string]S{"enc/layer0/attn/q_norm/weight": {4}, "enc/layer0/attn/k_norm/weight": {4}}, []string{"enc/layer0/attn/v_norm/weight"}, nil},
		{"hybrid", func(c *nn.EncoderConfig) { c.NormType = nn.HybridNorm; c.Norm = nn.RMSNormKind },
			map[string]S{"enc/layer0/attn_norm/weight": {8}, "enc/layer0/dense/norm/weight": {8}, "enc/layer1/norm/weight": {8}, "enc/layer1/attn/v_norm/weight": {4}},
			[]string{"enc/layer1/attn_norm/weight", "enc/layer1/dense/norm/weight", "enc/layer0/norm/weight"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := base
			c.modify(&cfg)
			g := graph.New("enc")
			x := g.Input("x", graph.Float32, S{2, 5, 8})
			nn.Encoder(g, "enc", x, nil, cfg)
			if err := g.Err(); err != nil {
				t.Fatal(err)
			}
			got := map[string]*graph.Param{}
			for _, p := range g.Params() {
				got[p.Name()] = p
			}
			for name, shape := range c.want {
				if p, ok := got[name]; !ok || !p.Shape().Equal(shape) {
					t.Errorf("parameter %s: %v, want shape %v", name, p, shape)
				}
			}
			for _, name := range c.absent {
				if _, ok := got[name]; ok {
					t.Errorf("parameter %s, want none", name)
				}
			}
			for name, init := range c.init {
				if p := got[name]; p == nil || p.Init != init {
					t.Errorf("parameter %s initialised %+v, want %+v", name, p, init)
				}
			}
		})
	}
}

// TestDropPathDropsWholeJets checks that a dropped block leaves a jet's
// sequence exactly as it was, and a kept one changes it.
func TestDropPathDropsWholeJets(t *testing.T) {
	g := graph.New("droppath")
	x := g.Input("x", graph.Float64, S{2, 3, 4})
	cfg := nn.EncoderConfig{Heads: 2, DenseRatio: 1, Activation: nn.ReLU, DropPath: 0.5, Training: true}
	g.Output("y", nn.EncoderLayer(g, "layer", x, nil, cfg))
	if len(g.RandomInputs()) != 2 {
		t.Fatalf("%d random inputs, want one mask per block", len(g.RandomInputs()))
	}
	r := rand.New(rand.NewPCG(1, 2))
	feeds := map[string][]float64{}
	for _, p := range g.Params() {
		feeds[p.Name()] = p.Init.Sample(r, int(p.Shape().Size()))
	}
	xs := make([]float64, 24)
	for i := range xs {
		xs[i] = r.NormFloat64()
	}
	feeds["x"] = xs
	for _, ri := range g.RandomInputs() {
		if !ri.Tensor.Shape().Equal(S{2, 1, 1}) {
			t.Fatalf("mask %s, want one value per jet", ri.Tensor)
		}
		feeds[ri.Tensor.Name()] = []float64{0, 2} // jet 0 dropped, jet 1 kept (×1/(1-p))
	}
	out, err := graphtest.Compile(t, g, graph.ModelOptions{}).Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 12; i++ {
		if out["y"][i] != xs[i] {
			t.Fatalf("dropped jet: y[%d] = %g, x = %g", i, out["y"][i], xs[i])
		}
	}
	same := true
	for i := 12; i < 24; i++ {
		same = same && out["y"][i] == xs[i]
	}
	if same {
		t.Fatal("the kept jet's sequence did not change")
	}
}

// naiveEdgeAttention is Salt's EdgeAttention written out with loops: the
// output [B, T, D] and the updated edges [B, T, T, E].
func naiveEdgeAttention(x, valid, edge []float64, p map[string][]float64, b, t, d, e, heads int) (out, edgeOut []float64) {
	win, bin := p["attn/in_proj/weight"], p["attn/in_proj/bias"]
	wout, bout := p["attn/out_proj/weight"], p["attn/out_proj/bias"]
	we, be := p["attn/linear_e/weight"], p["attn/linear_e/bias"]
	wg, bg := p["attn/linear_g/weight"], p["attn/linear_g/bias"]
	weo, beo := p["attn/linear_e_out/weight"], p["attn/linear_e_out/bias"]
	dh := d / heads
	out, edgeOut = make([]float64, b*t*d), make([]float64, b*t*t*e)
	lin := func(in []float64, w, bias []float64, n, m, o int) float64 { // (in · w)[o] + bias[o], w [n, m]
		s := bias[o]
		for k := 0; k < n; k++ {
			s += in[k] * w[k*m+o]
		}
		return s
	}
	for j := 0; j < b; j++ {
		qkv := make([][]float64, t)
		for i := 0; i < t; i++ {
			qkv[i] = make([]float64, 3*d)
			for o := range qkv[i] {
				qkv[i][o] = lin(x[(j*t+i)*d:], win, bin, d, 3*d, o)
			}
		}
		concat := make([][]float64, t)
		for i := range concat {
			concat[i] = make([]float64, d)
		}
		raw := make([]float64, t*t*heads) // scores before masking, [i, k, h]
		for h := 0; h < heads; h++ {
			for i := 0; i < t; i++ {
				w := make([]float64, t)
				maxS := math.Inf(-1)
				for k := 0; k < t; k++ {
					ek := edge[((j*t+i)*t+k)*e:]
					var s float64
					for c := 0; c < dh; c++ {
						s += qkv[i][h*dh+c] * qkv[k][d+h*dh+c]
					}
					s = s/math.Sqrt(float64(dh)) + lin(ek, we, be, e, heads, h)
					raw[(i*t+k)*heads+h] = s
					if valid[j*t+k] == 0 {
						w[k] = math.Inf(-1)
						continue
					}
					w[k] = s
					maxS = math.Max(maxS, s)
				}
				var z float64
				for k := range w {
					w[k] = math.Exp(w[k] - maxS)
					z += w[k]
				}
				for k := range w {
					gate := 1 / (1 + math.Exp(-lin(edge[((j*t+i)*t+k)*e:], wg, bg, e, heads, h)))
					w[k] = w[k] / z * gate
				}
				for c := 0; c < dh; c++ {
					var s float64
					for k := 0; k < t; k++ {
						s += w[k] * qkv[k][2*d+h*dh+c]
					}
					concat[i][h*dh+c] = s
				}
			}
		}
		for i := 0; i < t; i++ {
			for o := 0; o < d; o++ {
				out[(j*t+i)*d+o] = lin(concat[i], wout, bout, d, d, o)
			}
			for k := 0; k < t; k++ {
				for o := 0; o < e; o++ {
					edgeOut[((j*t+i)*t+k)*e+o] = lin(raw[(i*t+k)*heads:], weo, beo, heads, e, o)
				}
			}
		}
	}
	return out, edgeOut
}

// TestEdgeAttentionMatchesLoops compares EdgeAttention with Salt's
// EdgeAttention written out with loops: the edge bias per head, the gate,
// the masking and the edges updated from the unmasked scores.
func TestEdgeAttentionMatchesLoops(t *testing.T) {
	const b, tt, d, e, heads = 2, 5, 8, 3, 2
	g := graph.New("edge_attn")
	x := g.Input("x", graph.Float64, S{b, tt, d})
	valid := g.Input("valid", graph.Bool, S{b, tt})
	edge := g.Input("edge", graph.Float64, S{b, tt, tt, e})
	y, eo := nn.EdgeAttention(g, "attn", x, nn.PaddingBias(g, valid, graph.Float64), edge, heads, true)
	g.Output("y", y)
	g.Output("edge_out", eo)
	r := rand.New(rand.NewPCG(8, 9))
	feeds := map[string][]float64{"valid": validMask}
	params := map[string][]float64{}
	for _, p := range g.Params() {
		params[p.Name()] = p.Init.Sample(r, int(p.Shape().Size()))
		if p.Init.Kind == "zeros" {
			for i := range params[p.Name()] {
				params[p.Name()][i] = 0.2 * r.NormFloat64()
			}
		}
		feeds[p.Name()] = params[p.Name()]
	}
	for name, n := range map[string]int{"x": b * tt * d, "edge": b * tt * tt * e} {
		v := make([]float64, n)
		for i := range v {
			v[i] = r.NormFloat64()
		}
		feeds[name] = v
	}
	out, err := graphtest.Compile(t, g, graph.ModelOptions{}).Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	wantY, wantE := naiveEdgeAttention(feeds["x"], validMask, feeds["edge"], params, b, tt, d, e, heads)
	for name, want := range map[string][]float64{"y": wantY, "edge_out": wantE} {
		for i := range want {
			if math.Abs(out[name][i]-want[i]) > 1e-10 {
				t.Fatalf("%s[%d] = %g, want %g", name, i, out[name][i], want[i])
			}
		}
	}
}

// TestLegacyEncoderPooling runs Salt's legacy encoder and the masked
// pooling on two jets, the second without valid constituents: the first
// jet's pooled vector does not depend on its padded entries, and the
// second pools to exactly zero, as Salt's masked softmax gives.
func TestLegacyEncoderPooling(t *testing.T) {
	const b, tt, d = 2, 4, 8
	g := graph.New("legacy")
	x := g.Input("x", graph.Float64, S{b, tt, d})
	valid := g.Input("valid", graph.Bool, S{b, tt})
	cfg := nn.EncoderConfig{Kind: nn.LegacyKind, Layers: 2, Heads: 2, DenseRatio: 2, Activation: nn.ReLU, OutDim: 6}
	out, bias := nn.Encoder(g, "encoder", x, valid, cfg)
	g.Output("pooled", nn.BiasMaskedAttentionPool(g, "pool", out, bias))
	r := rand.New(rand.NewPCG(7, 7))
	feeds := map[string][]float64{"valid": {1, 1, 0, 0, 0, 0, 0, 0}}
	for _, p := range g.Params() {
		feeds[p.Name()] = p.Init.Sample(r, int(p.Shape().Size()))
		for i := range feeds[p.Name()] {
			feeds[p.Name()][i] += 0.1 * r.NormFloat64() // non-trivial norms and biases
		}
	}
	run := graphtest.Compile(t, g, graph.ModelOptions{})
	pooled := func(padding float64) []float64 {
		xs := make([]float64, b*tt*d)
		for i := range xs {
			xs[i] = float64(i%7) - 3
			if valid := i < 2*d; !valid {
				xs[i] = padding * r.NormFloat64()
			}
		}
		feeds["x"] = xs
		o, err := run.Run(feeds)
		if err != nil {
			t.Fatal(err)
		}
		return o["pooled"]
	}
	a, c := pooled(1), pooled(100)
	for i := 0; i < 6; i++ {
		if a[i] != c[i] || a[i] == 0 || math.IsNaN(a[i]) {
			t.Errorf("jet 0: pooled[%d] = %g with small padding, %g with large", i, a[i], c[i])
		}
		if a[6+i] != 0 || c[6+i] != 0 {
			t.Errorf("jet without constituents: pooled[%d] = %g, %g, want 0", i, a[6+i], c[6+i])
		}
	}
}

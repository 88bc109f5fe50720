package nn_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/nn"
	"github.com/salt-ort/salt-ort/internal/testkit/torchref"
)

// maskDecoderTwin is an independent PyTorch implementation of Salt's
// MaskDecoder forward pass, written from reading salt/models/maskformer.py
// and attention.py, on parameters named as salt-ort names them (weights
// [in, out]). It reads a JSON file of the parameters, inputs and settings
// and prints the class probabilities, mask logits and object embeddings,
// and how many (object, constituent) pairs the mask attention closed.
const maskDecoderTwin = `
import json, sys, torch
import torch.nn.functional as F
torch.set_default_dtype(torch.float64)
c = json.load(open(sys.argv[1]))
P = {k: torch.tensor(v["values"]).reshape(v["shape"]) for k, v in c["params"].items()}
B, T, D = c["shape"]
M, L, H = c["objects"], c["layers"], c["heads"]
x = torch.tensor(c["x"]).reshape(B, T, D)
valid = torch.tensor(c["valid"]).reshape(B, T) > 0.5

def lin(n, t): return t @ P[n + "/weight"] + P[n + "/bias"]
def ln(n, t): return F.layer_norm(t, (D,), P[n + "/weight"], P[n + "/bias"], 1e-5)
def mlp(n, t, k):
    for i in range(k):
        t = lin(f"{n}/{i}", t)
        if i < k - 1: t = torch.relu(t)
    return t
def attend(n, q, kv, allow):
    W, b = P[n + "/in_proj/weight"], P[n + "/in_proj/bias"]
    Q, K, V = q @ W[:, :D] + b[:D], kv @ W[:, D:2*D] + b[D:2*D], kv @ W[:, 2*D:] + b[2*D:]
    heads = lambda t: t.reshape(t.shape[0], t.shape[1], H, D // H).transpose(1, 2)
    s = heads(Q) @ heads(K).transpose(-1, -2) / (D // H) ** 0.5
    if allow is not None: s = s.masked_fill(~allow[:, None], float("-inf"))
    o = (s.softmax(-1) @ heads(V)).transpose(1, 2).reshape(q.shape)
    return lin(n + "/out_proj", o)
def glu(n, t): return lin(n + "/out_proj", F.silu(lin(n + "/in_proj", t)))
def masks(q, x, pad):
    m = mlp("dec/mask_net", q, c["mask_layers"]) @ x.transpose(1, 2)
    return m.masked_fill(pad[:, None], torch.finfo(m.dtype).min)

q = ln("dec/norm1", P["dec/initial_q"]).expand(B, M, D)
x = torch.cat([ln("dec/norm2", x), torch.zeros(B, 1, D)], 1)
pad = torch.cat([~valid, torch.zeros(B, 1, dtype=torch.bool)], 1)
closed = 0
states = []  # the queries and constituents entering each layer
for l in range(L):
    n = f"dec/layer{l}"
    states.append((q, x))
    allow = (~pad)[:, None].expand(B, M, T + 1)
    if c["mask_attention"]:
        a = masks(q, x, pad).sigmoid() > 0.9
        a = a | ~a.any(-1, keepdim=True)
        allow = a & allow
        closed += int((~a & ~pad[:, None]).sum())
    q = q + attend(n + "/q_ca", q, x, allow)
    q = q + attend(n + "/q_sa", q, q, None)
    q = q + glu(n + "/q_dense", q)
    if c["bidirectional"]:
        x = x + attend(n + "/kv_ca", x, q, None)
        x = x + glu(n + "/kv_dense", x)
    q, x = ln(n + "/norm1", q), ln(n + "/norm2", x)
probs = mlp("dec/class_net", q, c["class_layers"]).softmax(-1)
print(json.dumps({"probs": probs.flatten().tolist(), "masks": masks(q, x, pad)[:, :, :-1].flatten().tolist(),
                  "embed": q.flatten().tolist(), "closed": closed}))
`

// TestMaskDecoderAgainstTorch compares MaskDecoder's forward pass in
// float32 with the PyTorch twin in float64 on the same (float32) random
// parameters and inputs, with and without mask attention and bidirectional
// cross-attention.
func TestMaskDecoderAgainstTorch(t *testing.T) {
	const b, tr, d = 2, 5, 8
	for _, tt := range []struct {
		name        string
		mask, bidir bool
	}{{"mask+bidirectional", true, true}, {"mask", true, false}, {"plain", false, false}} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := nn.MaskDecoderConfig{Objects: 3, Layers: 2, Heads: 2, MaskAttention: tt.mask, BidirectionalCA: tt.bidir,
				Classes: 3, ClassHidden: []int{16}, MaskHidden: []int{16}}
			g := graph.New("decoder")
			x := g.Input("x", graph.Float32, S{b, tr, d})
			valid := g.Input("valid", graph.Bool, S{b, tr})
			out := nn.MaskDecoder(g, "dec", x, valid, cfg)
			g.Output("probs", out.ClassProbs)
			g.Output("masks", out.Masks)
			g.Output("embed", out.Embed)
			if err := g.Err(); err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(5, 6))
			feeds := map[string][]float64{"x": randn(r, b*tr*d, 1), "valid": validMask}
			params := map[string]any{}
			for _, p := range g.Params() {
				n := int(p.Tensor.Shape().Size())
				v := randn(r, n, 0.7)
				if filepath.Base(p.Name()) == "weight" && p.Tensor.Rank() == 1 { // LayerNorm scales
					for i := range v {
						v[i] = float64(float32(1 + v[i]/5))
					}
				}
				feeds[p.Name()] = v
				params[p.Name()] = map[string]any{"values": v, "shape": p.Tensor.Shape()}
			}
			got, err := graphtest.Compile(t, g, graph.ModelOptions{}).Run(feeds)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "decoder.json")
			spec, _ := json.Marshal(map[string]any{"params": params, "shape": []int{b, tr, d}, "x": feeds["x"], "valid": validMask,
				"objects": cfg.Objects, "layers": cfg.Layers, "heads": cfg.Heads, "mask_attention": tt.mask, "bidirectional": tt.bidir,
				"class_layers": 2, "mask_layers": 2})
			if err := os.WriteFile(path, spec, 0o644); err != nil {
				t.Fatal(err)
			}
			var want struct {
				Probs, Masks, Embed []float64
				Closed              int
			}
			if err := json.Unmarshal(torchref.Run(t, maskDecoderTwin, path), &want); err != nil {
				t.Fatal(err)
			}
			if tt.mask && want.Closed == 0 {
				t.Fatal("the mask attention closed no pair: the comparison does not exercise it; change the seed")
			}
			t.Logf("mask attention closed %d (object, constituent) pairs", want.Closed)
			compareClose(t, "class probabilities", got["probs"], want.Probs)
			compareClose(t, "object embeddings", got["embed"], want.Embed)
			for k, m := range got["masks"] {
				if validMask[(k/(cfg.Objects*tr))*tr+k%tr] == 0 {
					if m > -1e38 || want.Masks[k] > -1e38 {
						t.Fatalf("mask logit %d of a padded constituent: %g, twin %g", k, m, want.Masks[k])
					}
					continue
				}
				if math.Abs(m-want.Masks[k]) > 1e-4*(1+math.Abs(m)) {
					t.Fatalf("mask logit %d: %g, twin %g", k, m, want.Masks[k])
				}
			}
		})
	}
}

// randn draws n values from N(0, std²), rounded to float32.
func randn(r *rand.Rand, n int, std float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(float32(r.NormFloat64() * std))
	}
	return v
}

// compareClose fails unless got and want agree to float32 rounding.
func compareClose(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, twin %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 1e-4*(1+math.Abs(want[i])) {
			t.Fatalf("%s %d: %g, twin %g", what, i, got[i], want[i])
		}
	}
}

// TestMaskDecoderGradients checks the decoder's gradients, through the
// masked cross-attention, against finite differences.
func TestMaskDecoderGradients(t *testing.T) {
	cfg := nn.MaskDecoderConfig{Objects: 2, Layers: 1, Heads: 2, MaskAttention: true, BidirectionalCA: true, Classes: 3}
	valid := []graphtest.Fixed{{Name: "valid", DType: graph.Bool, Shape: S{2, 5}, Values: validMask}}
	for _, tt := range []struct {
		name string
		out  func(g *G, o nn.MaskDecoderOutput) *T
	}{
		{"class probabilities", func(_ *G, o nn.MaskDecoderOutput) *T { return o.ClassProbs }},
		{"mask probabilities", func(g *G, o nn.MaskDecoderOutput) *T { return g.Sigmoid(o.Masks) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			graphtest.GradCheck{Vars: []graphtest.Var{{Name: "x", Shape: S{2, 5, 8}}}, Fixed: valid, MaxProbes: 8,
				Build: func(g *G, v, f []*T) *T { return tt.out(g, nn.MaskDecoder(g, "dec", v[0], f[0], cfg)) }}.Run(t)
		})
	}
}

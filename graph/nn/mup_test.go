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

// muPTwin is Salt's μP Transformer written from Salt's source and the mup
// package's MuReadout: a register appended, pre-norm layers with
// parameter-free LayerNorms, attention scores scaled by 1/head_dim (not
// 1/√head_dim), a ReLU feed-forward block, and the out_dim projection a
// MuReadout, Linear(x·output_mult/width_mult), before the final norm.
const muPTwin = `
import json, sys, torch
import torch.nn.functional as F
torch.set_default_dtype(torch.float64)
c = json.load(open(sys.argv[1]))
P = {k: torch.tensor(v["values"]).reshape(v["shape"]) for k, v in c["params"].items()}
B, T, D = c["shape"]
H = c["heads"]
x = torch.tensor(c["x"]).reshape(B, T, D)
def lin(n, t): return t @ P[n + "/weight"] + P[n + "/bias"]
def ln(t): return F.layer_norm(t, (t.shape[-1],), eps=1e-5)
x = torch.cat([x, P["encoder/registers"][None].expand(B, -1, -1)], 1)
for i in range(c["layers"]):
    n = f"encoder/layer{i}"
    h = lin(n + "/attn/in_proj", ln(x))
    q, k, v = h.split(D, -1)
    heads = lambda t: t.reshape(B, -1, H, D // H).transpose(1, 2)
    s = heads(q) @ heads(k).transpose(-1, -2) * (1.0 / (D // H))
    o = (s.softmax(-1) @ heads(v)).transpose(1, 2).reshape(B, -1, D)
    x = x + lin(n + "/attn/out_proj", o)
    x = x + lin(n + "/dense/1", torch.relu(lin(n + "/dense/0", ln(x))))
width_mult = c["embed"] / c["base"]
x = ln(lin("encoder/out_proj", x * 1.0 / width_mult))
print(json.dumps(x.flatten().tolist()))
`

// TestMuPEncoderAgainstTorch compares the μP encoder (embedding 8 over a
// base width of 4: width_mult 2) with the PyTorch twin on the same random
// parameters.
func TestMuPEncoderAgainstTorch(t *testing.T) {
	const b, tr, d, base = 2, 3, 8, 4
	cfg := nn.EncoderConfig{Layers: 2, Heads: 2, DenseRatio: 2, Activation: nn.ReLU, Registers: 1, OutDim: 4, MuP: true, ReadoutMult: float64(base) / d}
	g := graph.New("mup")
	x := g.Input("x", graph.Float32, graph.Shape{b, tr, d})
	out, _ := nn.Encoder(g, "encoder", x, nil, cfg)
	g.Output("out", out)
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	feeds := map[string][]float64{"x": randn(r, b*tr*d, 1)}
	params := map[string]any{}
	for _, p := range g.Params() {
		v := randn(r, int(p.Tensor.Shape().Size()), 0.5)
		feeds[p.Name()] = v
		params[p.Name()] = map[string]any{"values": v, "shape": p.Tensor.Shape()}
	}
	got, err := graphtest.Compile(t, g, graph.ModelOptions{}).Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "mup.json")
	spec, _ := json.Marshal(map[string]any{"params": params, "shape": []int{b, tr, d}, "x": feeds["x"], "heads": cfg.Heads, "layers": cfg.Layers, "embed": d, "base": base})
	if err := os.WriteFile(path, spec, 0o644); err != nil {
		t.Fatal(err)
	}
	var want []float64
	if err := json.Unmarshal(torchref.Run(t, muPTwin, path), &want); err != nil {
		t.Fatal(err)
	}
	if len(want) != len(got["out"]) {
		t.Fatalf("%d outputs, twin %d", len(got["out"]), len(want))
	}
	for i := range want {
		if math.Abs(got["out"][i]-want[i]) > 1e-4 {
			t.Fatalf("output %d: %g, twin %g", i, got["out"][i], want[i])
		}
	}
}

// TestMuPInit checks Salt's μP initialisation: the query columns of the
// attention projection zero, the key and value columns N(0, 1/d_h), the
// readout zero.
func TestMuPInit(t *testing.T) {
	const d, heads = 16, 4
	g := graph.New("mup")
	x := g.Input("x", graph.Float32, graph.Shape{1, 2, d})
	nn.Encoder(g, "encoder", x, nil, nn.EncoderConfig{Layers: 1, Heads: heads, DenseRatio: 2, Activation: nn.ReLU, OutDim: 4, MuP: true})
	inits := map[string]graph.Init{}
	for _, p := range g.Params() {
		inits[p.Name()] = p.Init
	}
	r := rand.New(rand.NewPCG(1, 2))
	w := inits["encoder/layer0/attn/in_proj/weight"].Sample(r, d*3*d)
	var sq float64
	for k, v := range w {
		if k%(3*d) < d {
			if v != 0 {
				t.Fatalf("query weight %d = %g, want 0", k, v)
			}
			continue
		}
		sq += v * v
	}
	if std, want := math.Sqrt(sq/float64(2*d*d)), 1/math.Sqrt(d/heads); math.Abs(std-want) > 0.15*want {
		t.Errorf("key/value std %g, want about %g", std, want)
	}
	for _, name := range []string{"encoder/out_proj/weight", "encoder/out_proj/bias", "encoder/layer0/dense/0/bias"} {
		if k := inits[name].Kind; k != "zeros" {
			t.Errorf("%s: init %q, want zeros", name, k)
		}
	}
	if got, want := inits["encoder/layer0/dense/0/weight"], nn.MuPDenseInit(2*d); got != want {
		t.Errorf("dense/0 init %+v, want %+v", got, want)
	}
}

package nn_test

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/nn"
	"github.com/salt-ort/salt-ort/internal/testkit/torchref"
)

// maskFormerLossTwin continues maskDecoderTwin (whose variables it reads)
// with an independent PyTorch implementation of Salt's matching cost
// (HungarianMatcher.get_batch_cost) and MaskFormerLoss on a fixed
// assignment, written from reading salt/models/matcher.py and
// maskformer_loss.py, for the final predictions and for those of the
// queries entering each layer (the auxiliary losses, each on its own
// assignment). It prints one more JSON line.
const maskFormerLossTwin = `
cls = torch.tensor(c["class"]).reshape(B, M).long()
tgt = torch.tensor(c["target"]).double().reshape(B, M, T)
nc, w = c["num_classes"], c["weights"]
v = cls != nc

def cost_of(logits, mk):
    """The cost, [jet][object][truth slot]."""
    p = logits.softmax(-1)
    ct = cls[:, :nc].unsqueeze(1).expand(-1, M, -1)
    ok = ct != nc
    cost = torch.zeros(B, M, M)
    cost[:, :, :nc] = -(torch.gather(p, 2, ct * ok) * ok)
    cost = w["object_class_ce"] * cost
    xm = mk.clamp(-1e4, 1e4)
    pos = F.binary_cross_entropy_with_logits(xm, torch.ones_like(xm), reduction="none")
    neg = F.binary_cross_entropy_with_logits(xm, torch.zeros_like(xm), reduction="none")
    cost += w["mask_ce"] * (torch.einsum("bnc,bmc->bnm", pos, tgt) + torch.einsum("bnc,bmc->bnm", neg, 1 - tgt)) / T
    s = xm.sigmoid()
    dice = 1 - (2 * torch.einsum("bnc,bmc->bnm", s, tgt) + 1) / (s.sum(-1)[:, :, None] + tgt.sum(-1)[:, None, :] + 1)
    cost += w["mask_dice"] * dice
    # Salt's focal cost (alpha -1, gamma 2): BCE weighted by (1-p)^2 on the
    # truth tracks and p^2 on the others, averaged over the track slots.
    fp = (1 - s) ** 2 * pos
    fn = s ** 2 * neg
    cost += w["mask_focal"] * (torch.einsum("bnc,bmc->bnm", fp, tgt) + torch.einsum("bnc,bmc->bnm", fn, 1 - tgt)) / T
    return cost

def losses_of(logits, mk, perm):
    """The weighted losses on a fixed assignment: truth slot m gets object perm[b][m]."""
    idx = (torch.arange(B)[:, None], torch.tensor(perm).reshape(B, M).long())
    lg, mm = logits[idx], mk[idx]
    cw = torch.ones(nc + 1); cw[-1] = c["null_weight"]
    ce = F.cross_entropy(lg.flatten(0, 1), cls.flatten(), cw)
    pm, tm = mm[v], tgt[v]
    mce = F.binary_cross_entropy_with_logits(pm, tm, reduction="none").mean(1).sum() / len(pm)
    sg = pm.sigmoid()
    md = (1 - (2 * (sg * tm).sum(-1) + 1) / (sg.sum(-1) + tm.sum(-1) + 1)).sum() / len(pm)
    ptt = sg * tm + (1 - sg) * (1 - tm)
    mf = (F.binary_cross_entropy_with_logits(pm, tm, reduction="none") * (1 - ptt) ** 2).mean(1).sum() / len(pm)
    return {"ce": float(ce) * w["object_class_ce"], "mask_ce": float(mce) * w["mask_ce"],
            "dice": float(md) * w["mask_dice"], "focal": float(mf) * w["mask_focal"]}, idx

logits = mlp("dec/class_net", q, c["class_layers"])
mk = masks(q, x, pad)[:, :, :-1]
out = losses_of(logits, mk, c["perm"])[0]
out["cost"] = cost_of(logits, mk).flatten().tolist()
idx = losses_of(logits, mk, c["perm"])[1]
# The auxiliary outputs: the queries entering each layer, by the same nets,
# each on its own assignment; Salt's appended constituent left out of the
# masks, as from the final ones.
out["layers"] = []
for l, (ql, xl) in enumerate(states):
    lg_l = mlp("dec/class_net", ql, c["class_layers"])
    mk_l = masks(ql, xl, pad)[:, :, :-1]
    d = losses_of(lg_l, mk_l, c["layer_perms"][l])[0]
    d["cost"] = cost_of(lg_l, mk_l).flatten().tolist()
    out["layers"].append(d)
# The regression of the objects: an MLP on the object embeddings, its
# mean absolute error against every truth slot's targets (zeroed in empty
# slots) as the cost, and the L1 loss over the valid matched slots.
rp = mlp("reg", q, 2)
R = rp.shape[-1]
rt = torch.tensor(c["reg_target"]).double().reshape(B, M, R)
out["reg_cost"] = (rp[:, :, None] - (rt * v.unsqueeze(-1))[:, None]).abs().mean(-1).flatten().tolist()
out["reg"] = float(F.l1_loss(rp[idx][v], rt[v]))
print(json.dumps(out))
`

// TestMaskFormerLossAgainstTorch compares the decoder's matching cost and
// MaskFormer loss on a fixed assignment, in float32, with the PyTorch twin
// in float64 on the same parameters, inputs and truth objects.
func TestMaskFormerLossAgainstTorch(t *testing.T) {
	const b, tr, d, m, nc = 2, 5, 8, 3, 2
	cfg := nn.MaskDecoderConfig{Objects: m, Layers: 2, Heads: 2, MaskAttention: true, BidirectionalCA: true,
		Classes: nc + 1, ClassHidden: []int{16}, MaskHidden: []int{16}, Intermediate: true}
	weights := nn.MaskFormerWeights{ClassCE: 2, MaskCE: 10, MaskDice: 2, MaskFocal: 3}
	g := graph.New("maskformer")
	x := g.Input("x", graph.Float32, S{b, tr, d})
	valid := g.Input("valid", graph.Bool, S{b, tr})
	class := g.Input("class", graph.Int64, S{b, m})
	target := g.Input("target", graph.Float32, S{b, m, tr})
	assign := g.Input("assign", graph.Float32, S{b, m, m})
	out := nn.MaskDecoder(g, "dec", x, valid, cfg)
	g.Output("cost", nn.MaskFormerCost(g, out, class, target, nc, weights))
	l := nn.MaskFormerLoss(g, out, class, target, assign, g.Const("present", graph.Float32, S{b}, []float64{1, 1}), nn.MaskFormerLossConfig{NumClasses: nc, NullClassWeight: 0.5, Weights: weights})
	g.Output("ce", l.ClassCE)
	g.Output("mask_ce", l.MaskCE)
	g.Output("dice", l.MaskDice)
	g.Output("focal", l.MaskFocal)
	// Each layer's auxiliary predictions on an assignment of their own.
	layerPerms := [][]int{{0, 1, 2, 2, 0, 1}, {1, 2, 0, 0, 2, 1}}
	if len(out.Intermediate) != cfg.Layers {
		t.Fatalf("%d intermediate predictions, want one per layer (%d)", len(out.Intermediate), cfg.Layers)
	}
	for i, p := range out.Intermediate {
		n := "layer" + strconv.Itoa(i) + "/"
		a := g.Input(n+"assign", graph.Float32, S{b, m, m})
		g.Output(n+"cost", nn.MaskFormerCost(g, p, class, target, nc, weights))
		l := nn.MaskFormerLoss(g, p, class, target, a, g.Const(n+"present", graph.Float32, S{b}, []float64{1, 1}), nn.MaskFormerLossConfig{NumClasses: nc, NullClassWeight: 0.5, Weights: weights})
		g.Output(n+"ce", l.ClassCE)
		g.Output(n+"mask_ce", l.MaskCE)
		g.Output(n+"dice", l.MaskDice)
		g.Output(n+"focal", l.MaskFocal)
	}
	const nr = 3
	reg := nn.MLP(g, "reg", out.Embed, []int{16, nr}, nn.ReLU, false)
	regTarget := g.Input("reg_target", graph.Float32, S{b, m, nr})
	g.Output("reg_cost", nn.MaskFormerRegressionCost(g, reg, regTarget))
	regValid := g.Cast(g.Less(class, g.Scalar(graph.Int64, nc)), graph.Float32)
	g.Output("reg", nn.MaskFormerRegressionLoss(g, reg, regTarget, assign, regValid))
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 8))
	// Jet 0: a b and a c hadron and an empty slot; jet 1: three hadrons, the
	// third past the num_classes slots that Salt gives a class cost.
	classes := []float64{0, 1, nc, 1, 0, 1}
	tgt := make([]float64, b*m*tr)
	for k := range tgt {
		jet, slot, c := k/(m*tr), (k/tr)%m, k%tr
		if classes[jet*m+slot] < nc && validMask[jet*tr+c] == 1 && r.IntN(2) == 1 {
			tgt[k] = 1
		}
	}
	perm := []int{2, 0, 1, 1, 2, 0}
	oneHotOf := func(perm []int) []float64 {
		a := make([]float64, b*m*m)
		for k, p := range perm {
			a[k*m+p] = 1
		}
		return a
	}
	oneHot := oneHotOf(perm)
	// The scaled regression targets: 0 in the empty slots, as the model
	// writes them.
	regTgt := randn(r, b*m*nr, 1)
	for k := range regTgt {
		if classes[k/nr] == nc {
			regTgt[k] = 0
		}
	}
	feeds := map[string][]float64{"x": randn(r, b*tr*d, 1), "valid": validMask, "class": classes, "target": tgt, "assign": oneHot, "reg_target": regTgt}
	for i, p := range layerPerms {
		feeds["layer"+strconv.Itoa(i)+"/assign"] = oneHotOf(p)
	}
	params := map[string]any{}
	for _, p := range g.Params() {
		v := randn(r, int(p.Tensor.Shape().Size()), 0.3)
		feeds[p.Name()] = v
		params[p.Name()] = map[string]any{"values": v, "shape": p.Tensor.Shape()}
	}
	got, err := graphtest.Compile(t, g, graph.ModelOptions{}).Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "maskformer.json")
	spec, _ := json.Marshal(map[string]any{"params": params, "shape": []int{b, tr, d}, "x": feeds["x"], "valid": validMask,
		"objects": m, "layers": cfg.Layers, "heads": cfg.Heads, "mask_attention": true, "bidirectional": true,
		"class_layers": 2, "mask_layers": 2, "class": classes, "target": tgt, "perm": perm, "layer_perms": layerPerms, "reg_target": regTgt, "num_classes": nc,
		"null_weight": 0.5, "weights": map[string]float64{"object_class_ce": weights.ClassCE, "mask_ce": weights.MaskCE, "mask_dice": weights.MaskDice, "mask_focal": weights.MaskFocal}})
	if err := os.WriteFile(path, spec, 0o644); err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(torchref.Run(t, maskDecoderTwin+maskFormerLossTwin, path)), []byte("\n"))
	type terms struct {
		Cost   []float64
		CE     float64
		MaskCE float64 `json:"mask_ce"`
		Dice   float64
		Focal  float64
	}
	var want struct {
		terms
		Layers  []terms
		RegCost []float64 `json:"reg_cost"`
		Reg     float64
	}
	if err := json.Unmarshal(lines[len(lines)-1], &want); err != nil {
		t.Fatal(err)
	}
	// The costs of empty truth slots are not used; Salt makes them NaN.
	validCost := func(got, want []float64) (g, w []float64) {
		for k, c := range got {
			if classes[(k/(m*m))*m+k%m] < nc {
				g, w = append(g, c), append(w, want[k])
			}
		}
		return g, w
	}
	close := func(name string, got, want float64) {
		t.Logf("%s: %.7g, twin %.7g", name, got, want)
		if math.Abs(got-want) > 1e-5*(1+math.Abs(want)) {
			t.Errorf("%s: %.7g, twin %.7g", name, got, want)
		}
	}
	compareTerms := func(prefix string, want terms) {
		cost, wantCost := validCost(got[prefix+"cost"], want.Cost)
		compareClose(t, prefix+"matching cost", cost, wantCost)
		close(prefix+"object_class_ce", got[prefix+"ce"][0], want.CE)
		close(prefix+"mask_ce", got[prefix+"mask_ce"][0], want.MaskCE)
		close(prefix+"mask_dice", got[prefix+"dice"][0], want.Dice)
		close(prefix+"mask_focal", got[prefix+"focal"][0], want.Focal)
	}
	compareTerms("", want.terms)
	if len(want.Layers) != cfg.Layers {
		t.Fatalf("the twin has %d layers' outputs, want %d", len(want.Layers), cfg.Layers)
	}
	for i, l := range want.Layers {
		compareTerms("layer"+strconv.Itoa(i)+"/", l)
	}
	regCost, wantRegCost := validCost(got["reg_cost"], want.RegCost)
	compareClose(t, "regression matching cost", regCost, wantRegCost)
	close("regression", got["reg"][0], want.Reg)
}

// TestMaskFormerLossGradients checks the gradients of the MaskFormer loss
// terms with respect to the decoder's predictions against finite
// differences.
func TestMaskFormerLossGradients(t *testing.T) {
	const nc = 2
	fixed := []graphtest.Fixed{
		{Name: "class", DType: graph.Int64, Shape: S{2, 3}, Values: []float64{0, 1, nc, 1, nc, nc}},
		{Name: "target", DType: graph.Float32, Shape: S{2, 3, 4}, Values: []float64{1, 0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{Name: "assign", DType: graph.Float32, Shape: S{2, 3, 3}, Values: []float64{0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0}},
	}
	weights := nn.MaskFormerWeights{ClassCE: 2, MaskCE: 10, MaskDice: 2, MaskFocal: 3}
	for _, tt := range []struct {
		name string
		term func(l nn.MaskFormerLosses) *T
	}{
		{"object_class_ce", func(l nn.MaskFormerLosses) *T { return l.ClassCE }},
		{"mask_ce", func(l nn.MaskFormerLosses) *T { return l.MaskCE }},
		{"mask_dice", func(l nn.MaskFormerLosses) *T { return l.MaskDice }},
		{"mask_focal", func(l nn.MaskFormerLosses) *T { return l.MaskFocal }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			graphtest.GradCheck{Vars: []graphtest.Var{{Name: "logits", Shape: S{2, 3, nc + 1}}, {Name: "masks", Shape: S{2, 3, 4}}}, Fixed: fixed,
				Build: func(g *G, v, f []*T) *T {
					pred := nn.MaskDecoderOutput{ClassLogits: v[0], ClassProbs: g.Softmax(v[0], -1), Masks: v[1]}
					l := nn.MaskFormerLoss(g, pred, f[0], f[1], f[2], g.Const("present", graph.Float32, S{2}, []float64{1, 1}), nn.MaskFormerLossConfig{NumClasses: nc, NullClassWeight: 0.5, Weights: weights})
					return tt.term(l)
				}}.Run(t)
		})
	}
}

// TestMaskFormerRegressionGradients checks the gradients of the objects'
// regression loss and cost with respect to the predictions against finite
// differences.
func TestMaskFormerRegressionGradients(t *testing.T) {
	fixed := []graphtest.Fixed{
		{Name: "target", DType: graph.Float32, Shape: S{2, 3, 2}, Values: []float64{0.3, -1.2, 0.8, 0.1, 0, 0, -0.4, 2.1, 0, 0, 0, 0}},
		{Name: "assign", DType: graph.Float32, Shape: S{2, 3, 3}, Values: []float64{0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0}},
		{Name: "valid", DType: graph.Float32, Shape: S{2, 3}, Values: []float64{1, 1, 0, 1, 0, 0}},
	}
	for _, tt := range []struct {
		name  string
		build func(g *G, pred, target, assign, valid *T) *T
	}{
		{"loss", func(g *G, pred, target, assign, valid *T) *T {
			return nn.MaskFormerRegressionLoss(g, pred, target, assign, valid)
		}},
		{"cost", func(g *G, pred, target, _, _ *T) *T {
			return g.ReduceSum(nn.MaskFormerRegressionCost(g, pred, target), []int{0, 1, 2}, false)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			graphtest.GradCheck{Vars: []graphtest.Var{{Name: "pred", Shape: S{2, 3, 2}}}, Fixed: fixed,
				Build: func(g *G, v, f []*T) *T { return tt.build(g, v[0], f[0], f[1], f[2]) }}.Run(t)
		})
	}
}

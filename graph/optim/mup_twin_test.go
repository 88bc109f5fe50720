package optim_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/optim"
	"github.com/salt-ort/salt-ort/internal/testkit/torchref"
)

// muAdamWTwin is one step of torch.optim.AdamW over the param groups mup's
// MuAdamW makes: matrix-like parameters grouped by width multiplier w,
// each group's lr divided by w and weight_decay multiplied by w (coupled,
// mup's default), vector-like parameters in a group of their own.
const muAdamWTwin = `
import json, sys, torch
c = json.load(open(sys.argv[1]))
ps, groups = [], {}
for e in c["params"]:
    p = torch.nn.Parameter(torch.tensor(e["p"], dtype=torch.float64))
    p.grad = torch.tensor(e["g"], dtype=torch.float64)
    ps.append(p)
    groups.setdefault(e["w"], []).append(p)
lr, wd = c["lr"], c["wd"]
opt = torch.optim.AdamW([{"params": v, "lr": lr / w, "weight_decay": wd * w} for w, v in groups.items()], lr=lr, weight_decay=wd)
opt.step()
print(json.dumps([x for p in ps for x in p.detach().tolist()]))
`

// TestMuAdamWAgainstTorch compares one AdamW step with MuAdamWScale
// factors against torch's AdamW on MuAdamW's param groups.
func TestMuAdamWAgainstTorch(t *testing.T) {
	widths := map[string]float64{"a": 2, "b": 1, "c": 4}
	params := []graph.ParamSlot{{Name: "a", Size: 5, Offset: 0}, {Name: "b", Size: 3, Offset: 5}, {Name: "c", Size: 4, Offset: 8}}
	const size, lr, wd = 12, 1e-2, 0.3
	opt := optim.AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd}
	scales := map[string]optim.ParamScale{}
	for n, w := range widths {
		if w != 1 {
			scales[n] = optim.MuAdamWScale(w)
		}
	}
	layout := &optim.Layout{Params: params, Size: size, Slots: opt.Slots()}
	g, err := optim.BuildUpdate("update", layout, optim.Step{Optimizer: opt, Master: graph.Float64, Scales: scales})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(8, 1))
	p, gr := make([]float64, size), make([]float64, size)
	for i := range p {
		p[i], gr[i] = r.NormFloat64(), r.NormFloat64()
	}
	out, err := graphtest.Compile(t, g, graph.ModelOptions{}).Run(map[string][]float64{optim.ParamsInput: p, optim.GradInput: gr,
		optim.LRInput: {lr}, optim.StepInput: {1}, optim.StateInput("exp_avg"): make([]float64, size), optim.StateInput("exp_avg_sq"): make([]float64, size)})
	if err != nil {
		t.Fatal(err)
	}
	var entries []map[string]any
	for _, ps := range params {
		entries = append(entries, map[string]any{"p": p[ps.Offset : ps.Offset+ps.Size], "g": gr[ps.Offset : ps.Offset+ps.Size], "w": widths[ps.Name]})
	}
	path := filepath.Join(t.TempDir(), "step.json")
	spec, _ := json.Marshal(map[string]any{"params": entries, "lr": lr, "wd": wd})
	if err := os.WriteFile(path, spec, 0o644); err != nil {
		t.Fatal(err)
	}
	var want []float64
	if err := json.Unmarshal(torchref.Run(t, muAdamWTwin, path), &want); err != nil {
		t.Fatal(err)
	}
	for i, v := range out[optim.NewParams] {
		if math.Abs(v-want[i]) > 1e-12*math.Max(1, math.Abs(want[i])) {
			t.Fatalf("p[%d] = %.17g, torch %.17g", i, v, want[i])
		}
	}
}

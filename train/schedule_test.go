package train

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/internal/testkit/torchref"
)

func TestOneCycle(t *testing.T) {
	s := Schedule{OneCycle: config.OneCycle{Initial: 1e-7, Max: 5e-4, End: 1e-5, WarmupFraction: 0.1}, TotalSteps: 101}
	// PyTorch OneCycleLR(pct_start=0.1, total_steps=101): the peak is at
	// step 0.1·101 − 1 = 9.1.
	cases := []struct {
		step int
		want float64
	}{
		{0, 1e-7},
		{100, 1e-5},
		{200, 1e-5},
	}
	for _, c := range cases {
		if got := s.At(c.step); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("At(%d) = %g, want %g", c.step, got, c.want)
		}
	}
	peak := 9.1
	wantUp := 5e-4 + (1e-7-5e-4)/2*(1+math.Cos(math.Pi*5/peak))
	if got := s.At(5); math.Abs(got-wantUp) > 1e-15 {
		t.Errorf("At(5) = %g, want %g", got, wantUp)
	}
	wantDown := 1e-5 + (5e-4-1e-5)/2*(1+math.Cos(math.Pi*(50-peak)/(100-peak)))
	if got := s.At(50); math.Abs(got-wantDown) > 1e-15 {
		t.Errorf("At(50) = %g, want %g", got, wantDown)
	}
	prev := 0.0
	for i := 0; i <= 9; i++ {
		if lr := s.At(i); lr <= prev {
			t.Fatalf("warm-up not increasing at %d", i)
		} else {
			prev = lr
		}
	}
	prev = s.At(10)
	for i := 11; i <= 100; i++ {
		if lr := s.At(i); lr > prev {
			t.Fatalf("annealing not decreasing at %d", i)
		} else {
			prev = lr
		}
	}
}

func TestUncertaintyWeighting(t *testing.T) {
	u := NewUncertainty([]float64{1, 0, 2})
	if w := u.Weights(); w[0] != 1 || w[1] != 0 || w[2] != 1 {
		t.Fatalf("initial weights %v", w)
	}
	// With constant losses the optimum is s_i = ln L_i, i.e. w_i = 1/L_i.
	for i := 0; i < 20000; i++ {
		u.Observe([]float64{4, 9, 0.25}, 1e-2)
	}
	w := u.Weights()
	if math.Abs(w[0]-0.25) > 1e-3 || w[1] != 0 || math.Abs(w[2]-4) > 1e-2 {
		t.Fatalf("weights after convergence %v, want [0.25 0 4]", w)
	}
	v := NewUncertainty([]float64{1, 0, 2})
	if err := v.SetState(u.State()); err != nil {
		t.Fatal(err)
	}
	u.Observe([]float64{1, 1, 1}, 1e-3)
	v.Observe([]float64{1, 1, 1}, 1e-3)
	for i := range u.s {
		if u.s[i] != v.s[i] {
			t.Fatal("restored state diverges")
		}
	}
	if err := v.SetState([]float64{1}); err == nil {
		t.Fatal("short state accepted")
	}
}

// oneCycleScript prints PyTorch's OneCycleLR learning rate and Adam β₁ for
// every step of each schedule of a JSON list (initial, max, end, pct_start,
// total_steps), configured as Salt's ModelWrapper configures it.
const oneCycleScript = `
import json, sys
out = []
for cfg in json.loads(sys.argv[1]):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=cfg["initial"], weight_decay=1e-5)
    s = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg["max"], total_steps=cfg["total_steps"],
        div_factor=cfg["max"] / cfg["initial"], final_div_factor=cfg["initial"] / cfg["end"],
        pct_start=cfg["pct_start"], cycle_momentum=True)
    steps = []
    for k in range(cfg["total_steps"]):
        g = opt.param_groups[0]
        steps.append([g["lr"], g["betas"][0]])
        opt.step()
        s.step()
    out.append(steps)
print(json.dumps(out))
`

// TestOneCycleMatchesPyTorch compares the learning rate and β₁ of every
// step with PyTorch's OneCycleLR (cycle_momentum, Salt's settings), among
// them warm-ups shorter than one step, where PyTorch starts the annealing
// before step 0.
func TestOneCycleMatchesPyTorch(t *testing.T) {
	cases := []struct {
		name                 string
		initial, max, end, f float64
		total                int
	}{
		{"GN2", 1e-7, 5e-4, 1e-5, 0.01, 1000},
		{"long-warmup", 1e-5, 2e-3, 1e-4, 0.3, 37},
		{"warmup-under-a-step", 1e-7, 5e-4, 1e-5, 0.01, 50},
		{"one-step", 1e-7, 5e-4, 1e-5, 0.1, 1},
	}
	var cfgs []map[string]any
	for _, c := range cases {
		cfgs = append(cfgs, map[string]any{"initial": c.initial, "max": c.max, "end": c.end, "pct_start": c.f, "total_steps": c.total})
	}
	arg, _ := json.Marshal(cfgs)
	var want [][][2]float64
	if err := json.Unmarshal(torchref.Run(t, oneCycleScript, string(arg)), &want); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := Schedule{OneCycle: config.OneCycle{Initial: c.initial, Max: c.max, End: c.end, WarmupFraction: c.f,
				CycleMomentum: true, BaseMomentum: 0.85, MaxMomentum: 0.95}, TotalSteps: c.total}
			for k, w := range want[i] {
				if lr := s.At(k); math.Abs(lr-w[0]) > 1e-12*w[0]+1e-18 {
					t.Fatalf("step %d: lr %.17g, PyTorch %.17g", k, lr, w[0])
				}
				if m := s.Momentum(k); math.Abs(m-w[1]) > 1e-12 {
					t.Fatalf("step %d: beta1 %.17g, PyTorch %.17g", k, m, w[1])
				}
			}
		})
	}
}

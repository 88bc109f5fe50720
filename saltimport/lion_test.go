package saltimport_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/checkpoint"
	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/internal/testkit/torchref"
	"github.com/salt-ort/salt-ort/run"
	"github.com/salt-ort/salt-ort/saltimport"
	"github.com/salt-ort/salt-ort/train"
)

// lionScript rewrites the twin's AdamW checkpoint into the state
// lion-pytorch's Lion keeps: exp_avg alone per parameter, no step count,
// and a parameter group of lr, betas and weight_decay.
const lionScript = `
import sys
ck = torch.load(sys.argv[1])
opt = ck["optimizer_states"][0]
opt["state"] = {i: {"exp_avg": s["exp_avg"]} for i, s in opt["state"].items()}
g = opt["param_groups"][0]
opt["param_groups"] = [{"lr": g["lr"], "betas": (0.9, 0.99), "weight_decay": g["weight_decay"], "params": g["params"]}]
torch.save(ck, sys.argv[2])
`

// TestImportLionOptimizerState imports a checkpoint Salt trained with
// model.optimizer: lion: Lion's one moment becomes salt-ort's exp_avg slot
// with the values the checkpoint holds, training resumes from it, and a
// checkpoint whose optimizer state is not the configuration's optimizer's
// is refused saying which it is.
func TestImportLionOptimizerState(t *testing.T) {
	tw := makeTwin(t)
	dir := t.TempDir()
	lionCkpt := filepath.Join(dir, "lion.ckpt")
	torchref.Run(t, lionScript, tw.Ckpt, lionCkpt)
	yaml, err := os.ReadFile(tw.ConfigYAML)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(yaml), "optimizer: AdamW") != 1 {
		t.Fatalf("%s: no single model.optimizer: AdamW to change", tw.ConfigYAML)
	}
	lionYAML := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(lionYAML, []byte(strings.Replace(string(yaml), "optimizer: AdamW", "optimizer: lion", 1)), 0o644); err != nil {
		t.Fatal(err)
	}

	runDir := filepath.Join(t.TempDir(), "run")
	res, err := saltimport.Import(saltimport.Options{Config: lionYAML, Checkpoint: lionCkpt, Out: runDir})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Optimizer || !strings.Contains(res.Report, "optimizer state: Lion's moment (exp_avg); training continues") {
		t.Fatalf("imported optimizer %v:\n%s", res.Optimizer, res.Report)
	}
	// The moment is the checkpoint's exp_avg, laid out as the AdamW
	// import of the same tensors lays it out; Lion has no second moment.
	lion := readRun(t, runDir)
	adamw := readRun(t, importTwin(t, tw))
	var moments int
	for _, name := range adamw.Names() {
		if !strings.HasPrefix(name, run.OptimizerStateName("exp_avg", "")) {
			continue
		}
		moments++
		got, _, err := lion.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		want, _, _ := adamw.Float32(name)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: Lion's import differs from the checkpoint's exp_avg", name)
		}
	}
	for _, name := range lion.Names() {
		if strings.HasPrefix(name, run.OptimizerStateName("exp_avg_sq", "")) {
			t.Fatalf("Lion's import has %s", name)
		}
	}
	if moments == 0 {
		t.Fatal("the AdamW import has no exp_avg")
	}
	resumeOneStep(t, runDir)

	for _, tc := range []struct {
		name, config, ckpt, want string
	}{
		{"Lion's state, AdamW configured", tw.ConfigYAML, lionCkpt, "optimizer_states[0]: Lion's state (exp_avg alone, no step count), but the configuration's model.optimizer is AdamW; set model.optimizer: lion"},
		{"AdamW's state, Lion configured", lionYAML, tw.Ckpt, "optimizer_states[0]: AdamW's state (a step count and exp_avg_sq per parameter), but the configuration's model.optimizer is lion"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := saltimport.Import(saltimport.Options{Config: tc.config, Checkpoint: tc.ckpt, Out: filepath.Join(t.TempDir(), "run")})
			if err == nil || !strings.Contains(err.Error(), tc.ckpt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %s with %q", err, tc.ckpt, tc.want)
			}
		})
	}
}

// readRun reads the checkpoint an import wrote into run.
func readRun(t *testing.T, runDir string) *checkpoint.File {
	t.Helper()
	f, err := checkpoint.Read(filepath.Join(runDir, run.LastCheckpoint))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// resumeOneStep trains the imported run for one step with train --resume.
func resumeOneStep(t *testing.T, runDir string) {
	t.Helper()
	cfg, err := config.Load(filepath.Join(runDir, run.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Training.Optimizer.Name != "lion" {
		t.Fatalf("imported optimizer %q, want lion", cfg.Training.Optimizer.Name)
	}
	cfg.Training.Threads = 1
	_, err = train.Run(context.Background(), train.Options{Config: cfg, RunDir: runDir, Resume: true, Runtime: graphtest.OpenRuntime(t), StopAfter: 1})
	if !errors.Is(err, train.ErrInterrupted) {
		t.Fatalf("one resumed step: %v", err)
	}
}

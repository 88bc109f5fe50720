package evaluate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/run"
)

// gpuRun copies the shared run and makes its configuration a GPU run's
// (training.device = "cuda") whose CUDA provider is not on this machine.
func gpuRun(t *testing.T) string {
	t.Helper()
	runDir, _ := trainedRun(t)
	r := copyRun(t, runDir)
	path := filepath.Join(r, run.ResolvedFile)
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	c.Training.Device = "cuda"
	c.Training.CUDAProvider = filepath.Join(t.TempDir(), "libonnxruntime_providers_cuda.so")
	text, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, text, 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestGPURunOnCPU evaluates a run trained on a GPU where CUDA is not
// available: by default on the CPU with a note saying so; with --device
// cpu without the note; with --device cuda not at all, the error naming
// the flag and the fixes, and no output left.
func TestGPURunOnCPU(t *testing.T) {
	r := gpuRun(t)
	cases := []struct {
		device  string
		note    bool
		wantErr []string
	}{
		{device: "", note: true},
		{device: "cpu"},
		{device: "cuda", wantErr: []string{"--device cuda", "make deps-cuda", "--device cpu"}},
	}
	for _, c := range cases {
		t.Run("device="+c.device, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "eval")
			rep, err := Run(context.Background(), Options{RunDir: r, OutDir: out, FC: DefaultFC, Runtime: graphtest.OpenRuntime(t), Threads: 2, NumJets: 50, NoPlots: true, Device: c.device})
			if c.wantErr != nil {
				for _, w := range c.wantErr {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Fatalf("error %v, want one naming %s", err, w)
					}
				}
				if _, err := os.Stat(out); err == nil {
					t.Errorf("%s was left behind", out)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var notes []string
			for _, n := range rep.Notes {
				if strings.Contains(n, `training.device = "cuda"`) && strings.Contains(n, "CPU") {
					notes = append(notes, n)
				}
			}
			if (len(notes) == 1) != c.note || len(notes) > 1 {
				t.Errorf("notes %q; want a note on the fallback to the CPU: %v", rep.Notes, c.note)
			}
			if _, err := os.Stat(rep.Files[0].Predictions); err != nil {
				t.Error(err)
			}
		})
	}
}

// ImportedGPURunForTest exposes to the package's external tests a copy of
// the shared run as import-salt makes one of a model Salt trained on a GPU:
// training.device = "cuda" (without CUDA here) and no training history.
func ImportedGPURunForTest(t *testing.T) string {
	r := gpuRun(t)
	if err := os.RemoveAll(filepath.Join(r, "metrics")); err != nil {
		t.Fatal(err)
	}
	return r
}

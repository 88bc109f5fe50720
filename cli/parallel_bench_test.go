package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/salt-ort/salt-ort/gendata"
)

// benchParallel holds BenchmarkDataParallel's measurements, made once.
var benchParallel struct {
	once    sync.Once
	jps     map[string]float64 // jets/s by job
	reduce  float64            // ms per step summing the gradients, 2 ranks
	params  int64
	message string
}

// BenchmarkDataParallel trains examples/gn2-small.toml's model for one
// epoch on generated jets as one process and as two MPI ranks, each
// process on one thread, and reports the throughput, the time a step
// spends summing the gradients, and the scaling efficiency
// jets/s(2 ranks) / (2 · jets/s(1 rank)). Figures are printed, not
// asserted.
func BenchmarkDataParallel(b *testing.B) {
	benchParallel.once.Do(func() {
		bin := filepath.Join(b.TempDir(), "salt-ort")
		if out, err := exec.Command("go", "build", "-o", bin, "../cmd/salt-ort").CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, out)
		}
		data := b.TempDir()
		if _, err := gendata.Generate(gendata.Config{Seed: 5, Train: 4000, Val: 1000, Test: 100}, data); err != nil {
			b.Fatal(err)
		}
		text, err := os.ReadFile("../examples/gn2-small.toml")
		if err != nil {
			b.Fatal(err)
		}
		cfg := strings.ReplaceAll(string(text), "../data/demo", data)
		cfg = strings.Replace(cfg, "epochs = 4", "epochs = 1", 1)
		cfg = strings.Replace(cfg, "threads = 2", "threads = 1", 1)
		path := filepath.Join(b.TempDir(), "gn2-small.toml")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			b.Fatal(err)
		}
		benchParallel.jps = map[string]float64{}
		for _, n := range []int{1, 2} {
			out := filepath.Join(b.TempDir(), "run")
			args := []string{"train", path, "--quiet", "--out", out}
			var cmd *exec.Cmd
			if n == 1 {
				cmd = exec.Command(bin, args...)
			} else {
				cmd = exec.Command("mpirun", append([]string{"--allow-run-as-root", "--oversubscribe", "-np", "2", bin}, args...)...)
			}
			var log bytes.Buffer
			cmd.Stdout, cmd.Stderr = &log, &log
			if err := cmd.Run(); err != nil {
				b.Fatalf("%d rank(s): %v\n%s", n, err, log.String())
			}
			var sum struct {
				JetsPerSecond float64 `json:"train_jets_per_second"`
				AllReduceMs   float64 `json:"allreduce_ms_per_step"`
				Parameters    int64   `json:"parameters"`
			}
			raw, err := os.ReadFile(filepath.Join(out, "summary.json"))
			if err != nil {
				b.Fatal(err)
			}
			if err := json.Unmarshal(raw, &sum); err != nil {
				b.Fatal(err)
			}
			benchParallel.jps[map[int]string{1: "1 rank", 2: "2 ranks"}[n]] = sum.JetsPerSecond
			if n == 2 {
				benchParallel.reduce, benchParallel.params = sum.AllReduceMs, sum.Parameters
			}
		}
	})
	one, two := benchParallel.jps["1 rank"], benchParallel.jps["2 ranks"]
	b.ReportMetric(one, "jets/s-1rank")
	b.ReportMetric(two, "jets/s-2ranks")
	b.ReportMetric(benchParallel.reduce, "ms-allreduce/step")
	b.ReportMetric(two/(2*one), "efficiency")
	b.Logf("gn2-small (%d parameters), one thread per rank: 1 rank %.0f jets/s, 2 ranks %.0f jets/s (efficiency %.2f); summing the gradients took %.2f ms per step",
		benchParallel.params, one, two, two/(2*one), benchParallel.reduce)
}

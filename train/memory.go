package train

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/model"
)

// resetPeakRSS sets the process's peak resident memory (Linux's VmHWM) to
// its current resident memory, so that peakRSS then reports the peak of
// what runs after; it reports whether the kernel allowed it.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// peakRSS is the process's peak resident memory in bytes (VmHWM), or -1
// where /proc does not say.
func peakRSS() int64 { return ReadVmHWM("/proc/self/status") }

// ReadVmHWM reads the peak resident memory in bytes (VmHWM) from a Linux
// /proc/<pid>/status file, or -1 where it cannot.
func ReadVmHWM(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return -1
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return -1
			}
			return kb << 10
		}
	}
	return -1
}

// BenchEval is the evaluation graph (losses and every prediction), a mode
// BenchPlan estimates but Bench does not time.
const BenchEval = "eval"

// BenchPlan is the graph-level memory estimate of a benchmark case
// (graph.PlanMemory): the training step as training.device builds it, the
// inference graph or the evaluation graph.
func BenchPlan(o BenchOptions, mode string, batch int) (graph.MemoryPlan, error) {
	var g *graph.Graph
	var err error
	switch mode {
	case BenchTrain:
		g, _, err = trainStepGraph(o.Spec, o.Config, batch, nil)
	case BenchInfer:
		g, err = o.Spec.Infer(model.InferOptions{Batch: batch})
	case BenchEval:
		// As run.OpenEvaluator places it: the encoder in chunks on the CPU.
		g, _, err = o.Spec.EvalWith(model.EvalOptions{Batch: batch, ChunkEncoder: o.Config.Training.Device != "cuda"})
	default:
		return graph.MemoryPlan{}, fmt.Errorf("train: bench: mode %q is not %q, %q or %q", mode, BenchTrain, BenchInfer, BenchEval)
	}
	if err != nil {
		return graph.MemoryPlan{}, err
	}
	if err := g.Err(); err != nil {
		return graph.MemoryPlan{}, err
	}
	return g.PlanMemory(1), nil
}

package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/train"
)

// benchReport is what `salt-ort bench` prints: the timed cases, the
// estimated ones and the reference's runs.
type benchReport struct {
	Results   []train.BenchResult `json:"results"`
	Estimates []benchEstimate     `json:"estimates"`
	Reference []referenceRun      `json:"reference,omitempty"`
}

// benchEstimate is the graph-level memory estimate of one case, not run.
type benchEstimate struct {
	Mode   string `json:"mode"`
	Device string `json:"device"`
	Batch  int    `json:"batch"`
	// PlanBytes is graph.MemoryPlan.TotalBytes; PeakNode the node at the
	// peak.
	PlanBytes int64  `json:"plan_bytes"`
	PeakNode  string `json:"peak_node"`
}

// referenceRun is one run of the PyTorch reference script.
type referenceRun struct {
	Batch int `json:"batch"`
	// PeakRSSBytes is the script's peak resident memory (its process's
	// maximum RSS, as /usr/bin/time -v reports it).
	PeakRSSBytes  int64   `json:"peak_rss_bytes"`
	JetsPerSecond float64 `json:"jets_per_s"`
}

// estimate plans the memory of each mode of opts at batch without running
// it.
func estimate(opts train.BenchOptions, batch int) ([]benchEstimate, error) {
	var out []benchEstimate
	for _, mode := range opts.Modes {
		plan, err := train.BenchPlan(opts, mode, batch)
		if err != nil {
			return nil, err
		}
		out = append(out, benchEstimate{Mode: mode, Device: opts.Config.Training.Device, Batch: batch,
			PlanBytes: plan.TotalBytes(), PeakNode: plan.PeakNode})
	}
	return out, nil
}

// referenceResult matches the reference script's training line.
var referenceResult = regexp.MustCompile(`RESULT train .*: [0-9.]+ ms/step, ([0-9.]+) jets/s`)

// runReferences runs the reference script once per batch size with
// training's device and threads, and reads its peak memory and jets/s.
func runReferences(ctx context.Context, python, script string, c *config.Config, batches []int, steps int, log io.Writer) ([]referenceRun, error) {
	var out []referenceRun
	for _, batch := range batches {
		args := []string{script, "--device", c.Training.Device, "--batch", strconv.Itoa(batch), "--steps", strconv.Itoa(steps)}
		if c.Training.Threads > 0 {
			args = append(args, "--threads", strconv.Itoa(c.Training.Threads))
		}
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, python, args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			return out, fmt.Errorf("bench --reference %s (batch %d, run by --python %s): %w", script, batch, python, err)
		}
		peak := watchPeakRSS(cmd.Process.Pid)
		err := cmd.Wait()
		run := referenceRun{Batch: batch, PeakRSSBytes: peak()}
		if err != nil {
			return out, fmt.Errorf("bench --reference %s (batch %d, run by --python %s): %w\n%s", script, batch, python, err, stderr.String())
		}
		s := bufio.NewScanner(&stdout)
		for s.Scan() {
			if m := referenceResult.FindStringSubmatch(s.Text()); m != nil {
				run.JetsPerSecond, _ = strconv.ParseFloat(m[1], 64)
			}
		}
		if run.JetsPerSecond == 0 {
			return out, fmt.Errorf("bench --reference %s (batch %d): no 'RESULT train' line in its output", script, batch)
		}
		fmt.Fprintf(log, "reference batch %d: %.0f jets/s, peak %.2f MB per jet\n", batch, run.JetsPerSecond, perJet(run.PeakRSSBytes, batch))
		out = append(out, run)
	}
	return out, nil
}

// watchPeakRSS polls the peak resident memory (VmHWM) of process pid
// until the returned function is called, which returns the last value read
// (-1 if none). The child's own rusage cannot be used: Go starts children
// sharing the parent's memory until they exec, and Linux then counts the
// parent's peak as the child's maximum RSS. VmHWM is the high-water mark of
// the process's memory since its exec, so polling misses only growth in
// its last poll interval.
func watchPeakRSS(pid int) func() int64 {
	done := make(chan struct{})
	result := make(chan int64, 1)
	path := "/proc/" + strconv.Itoa(pid) + "/status"
	go func() {
		peak := int64(-1)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if v := train.ReadVmHWM(path); v > peak {
				peak = v
			}
			select {
			case <-done:
				result <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		return <-result
	}
}

// perJet is bytes per jet in MB (10⁶ bytes).
func perJet(bytes int64, batch int) float64 { return float64(bytes) / 1e6 / float64(batch) }

// mbPerJet formats bytes per jet, "-" where unknown.
func mbPerJet(bytes int64, batch int) string {
	if bytes < 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", perJet(bytes, batch))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// print writes the report as tables.
func (r benchReport) print(out io.Writer, model string) error {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	if len(r.Results) > 0 {
		fmt.Fprintln(w, "model\tmode\tdevice\tprecision\tbatch\tjets/s\tmean ms\tp50 ms\tp90 ms\tp99 ms\tMFLOP/jet\tGFLOP/s\tdevice MiB\tpeak RSS MB/jet\tplan MB/jet\t")
		for _, res := range r.Results {
			mem := "-"
			if res.DeviceMemoryBytes >= 0 {
				mem = fmt.Sprintf("%.0f", float64(res.DeviceMemoryBytes)/(1<<20))
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%.3g\t%.1f\t%s\t%s\t%s\t\n",
				model, res.Mode, res.Device, res.Precision, res.Batch, res.JetsPerSecond, res.MeanMS, res.P50MS, res.P90MS, res.P99MS,
				res.MFLOPPerJet, res.GFLOPPerS, mem, mbPerJet(res.PeakRSSBytes, res.Batch), mbPerJet(res.PlanBytes, res.Batch))
		}
		for _, ref := range r.Reference {
			fmt.Fprintf(w, "PyTorch reference\ttrain\t%s\tfp32\t%d\t%.0f\t-\t-\t-\t-\t-\t-\t-\t%s\t-\t\n",
				r.Results[0].Device, ref.Batch, ref.JetsPerSecond, mbPerJet(ref.PeakRSSBytes, ref.Batch))
		}
	}
	if len(r.Estimates) > 0 {
		if len(r.Results) > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, "model\tmode\tdevice\tbatch\tplan GB\tplan MB/jet\tpeak at\t")
		for _, e := range r.Estimates {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%.2f\t%.2f\t%s\t\n", model, e.Mode, e.Device, e.Batch, float64(e.PlanBytes)/1e9, perJet(e.PlanBytes, e.Batch), e.PeakNode)
		}
	}
	return w.Flush()
}

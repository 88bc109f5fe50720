package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/gendata"
	"github.com/salt-ort/salt-ort/train"
)

// TestBenchCommand runs `salt-ort bench` on the tiny model: the JSON
// results cover each mode and batch size, and a precision the CPU cannot
// run is a usage error naming the key.
func TestBenchCommand(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	if _, err := gendata.Generate(gendata.Config{Seed: 5, Train: 100, Val: 50, Test: 10}, data); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "tiny.toml")
	if err := os.WriteFile(cfg, []byte(tinyModel(data)), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	profile := filepath.Join(t.TempDir(), "prof")
	cmd := exec.Command(bin, "bench", cfg, "--batch", "4", "--batch", "16", "--steps", "3", "--warmup", "1", "--threads", "1", "--json", "--profile", profile)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr.String())
	}
	// --profile: one trace of ONNX Runtime's profiler per case, each
	// holding the timed runs.
	traces, _ := filepath.Glob(profile + "_*.json")
	if len(traces) != 4 {
		t.Errorf("--profile wrote %d traces (%v), want one per case (4)", len(traces), traces)
	}
	for _, c := range []string{"train_4", "infer_4", "train_16", "infer_16"} {
		if m, _ := filepath.Glob(profile + "_" + c + "_*.json"); len(m) != 1 {
			t.Errorf("--profile: %d traces of case %s, want 1", len(m), c)
		}
	}
	for _, f := range traces {
		var events []struct {
			Name string `json:"name"`
		}
		b, err := os.ReadFile(f)
		if err == nil {
			err = json.Unmarshal(b, &events)
		}
		runs := 0
		for _, e := range events {
			if e.Name == "model_run" {
				runs++
			}
		}
		if err != nil || runs != 4 {
			t.Errorf("%s: %d model runs (%v), want 4 (1 warm-up and 3 timed)", f, runs, err)
		}
	}
	var res []train.BenchResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, stdout.String())
	}
	var got []string
	for _, r := range res {
		got = append(got, r.Mode+"/"+strconv.Itoa(r.Batch))
		if r.JetsPerSecond <= 0 || r.Steps != 3 || r.Device != "cpu (1 threads)" {
			t.Errorf("result %+v", r)
		}
	}
	if want := "train/4 infer/4 train/16 infer/16"; strings.Join(got, " ") != want {
		t.Errorf("cases %q, want %q", strings.Join(got, " "), want)
	}

	stderr.Reset()
	cmd = exec.Command(bin, "bench", cfg, "--precision", "fp16", "--batch", "4", "--steps", "1")
	cmd.Stderr = &stderr
	var exit *exec.ExitError
	if err := cmd.Run(); !errors.As(err, &exit) || exit.ExitCode() != ExitUsage || !strings.Contains(stderr.String(), "training.precision") {
		t.Errorf("fp16 on the CPU: err = %v, stderr %q; want exit %d naming training.precision", err, stderr.String(), ExitUsage)
	}
}

// TestBenchExampleKinds runs `salt-ort bench` on each example of a model
// kind beyond GN2, as a user runs it on examples/ (no data needed): every
// kind reports its FLOPs per jet and jets/s for training and inference.
// The figures are printed, not asserted.
func TestBenchExampleKinds(t *testing.T) {
	bin := buildBinary(t)
	for _, name := range []string{"gn2emu", "dl1", "gn2x", "gn2-edges"} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bin, "bench", "../examples/"+name+".toml", "--batch", "32", "--steps", "2", "--warmup", "1", "--threads", "1", "--json")
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("bench: %v\n%s", err, stderr.String())
			}
			var res []train.BenchResult
			if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
				t.Fatalf("bench --json: %v\n%s", err, stdout.String())
			}
			if len(res) != 2 {
				t.Fatalf("%d results, want train and infer", len(res))
			}
			for _, r := range res {
				if !(r.MFLOPPerJet > 0) || !(r.JetsPerSecond > 0) {
					t.Errorf("%s: %+v", r.Mode, r)
				}
				t.Logf("%s %s, batch %d: %.3g MFLOP/jet, %.0f jets/s (1 thread)", name, r.Mode, r.Batch, r.MFLOPPerJet, r.JetsPerSecond)
			}
		})
	}
}

// TestBenchMemory runs `salt-ort bench` for its memory figures: the peak
// resident memory and the graph's plan of each timed case, the plan alone
// of a batch size given to --estimate, and a reference script's peak and
// jets/s (a shell script standing in for the PyTorch one).
func TestBenchMemory(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	if _, err := gendata.Generate(gendata.Config{Seed: 5, Train: 100, Val: 50, Test: 10}, data); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tiny.toml")
	if err := os.WriteFile(cfg, []byte(tinyModel(data)), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := filepath.Join(dir, "reference.sh")
	if err := os.WriteFile(ref, []byte("sleep 0.3\necho \"RESULT train device=cpu batch=8: 2.00 ms/step, 4000 jets/s\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "bench", cfg, "--batch", "8", "--mode", "train", "--steps", "1", "--warmup", "0", "--threads", "1",
		"--estimate", "4000", "--reference", ref, "--python", "/bin/sh", "--json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr.String())
	}
	var rep benchReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, stdout.String())
	}
	if len(rep.Results) != 1 || rep.Results[0].PeakRSSBytes <= 0 || rep.Results[0].PlanBytes <= 0 {
		t.Errorf("results %+v, want one with its peak memory and plan", rep.Results)
	}
	if len(rep.Estimates) != 1 || rep.Estimates[0].Batch != 4000 || rep.Estimates[0].PlanBytes <= rep.Results[0].PlanBytes {
		t.Errorf("estimates %+v, want batch 4000 planned above batch 8", rep.Estimates)
	}
	// The script's own peak (a shell's few MB), not salt-ort's.
	if len(rep.Reference) != 1 || rep.Reference[0].JetsPerSecond != 4000 || rep.Reference[0].PeakRSSBytes <= 0 ||
		rep.Reference[0].PeakRSSBytes >= rep.Results[0].PeakRSSBytes {
		t.Errorf("reference %+v, want batch 8 at 4000 jets/s with its peak memory", rep.Reference)
	}

	// --estimate alone plans without running anything.
	stdout.Reset()
	cmd = exec.Command(bin, "bench", cfg, "--estimate", "100", "--device", "cuda", "--mode", "train")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench --estimate: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "plan MB/jet") || !strings.Contains(stdout.String(), "cuda") {
		t.Errorf("bench --estimate printed %q", stdout.String())
	}
}

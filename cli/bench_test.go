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
	cmd := exec.Command(bin, "bench", cfg, "--batch", "4", "--batch", "16", "--steps", "3", "--warmup", "1", "--threads", "1", "--json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr.String())
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

package cli

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/salt-ort/salt-ort/gendata"
	"github.com/salt-ort/salt-ort/internal/testkit/fixture"
)

// buildBinary compiles salt-ort once for the process tests.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "salt-ort")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/salt-ort")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// tinyModel is the configuration the process tests train: fixture.Tiny
// with 4 track variables and no class dictionary.
func tinyModel(data string) string {
	return fixture.Tiny(data, fixture.Options{
		TrackVars:   []string{"d0", "z0SinTheta", "IP3D_signed_d0_significance", "IP3D_signed_z0_significance"},
		NoClassDict: true, NumTrain: 1000, Epochs: 4, Seed: 3, Dropout: 0.1,
	})
}

// TestTrainSurvivesKills kills `salt-ort train` with SIGKILL at 20 random
// moments, resumes each run and checks that it ends with the same
// checkpoint as an uninterrupted run. SIGINT and SIGTERM, which the run
// handles, are TestTrainSignalAfterFirstStep's.
func TestTrainSurvivesKills(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	if _, err := gendata.Generate(gendata.Config{Seed: 11, Train: 1200, Val: 200, Test: 100}, data); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "tiny.toml")
	if err := os.WriteFile(cfg, []byte(tinyModel(data)), 0o644); err != nil {
		t.Fatal(err)
	}
	train := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, append([]string{"train", cfg, "--quiet"}, args...)...)
		cmd.Stderr = new(bytes.Buffer)
		cmd.Stdout = cmd.Stderr
		return cmd
	}
	ref := filepath.Join(t.TempDir(), "ref")
	start := time.Now()
	if cmd := train("--out", ref); cmd.Run() != nil {
		t.Fatalf("reference run failed:\n%s", cmd.Stderr)
	}
	full := time.Since(start)
	want, err := os.ReadFile(filepath.Join(ref, "checkpoints/last.safetensors"))
	if err != nil {
		t.Fatal(err)
	}

	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	const sig = syscall.SIGKILL
	kills := 0
	for i := 0; kills < 20; i++ {
		if i > 40 {
			t.Fatalf("only %d of %d runs were still running when killed", kills, i)
		}
		dir := filepath.Join(t.TempDir(), "run")
		cmd := train("--out", dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Somewhere between start-up and the end of the reference run's time.
		delay := time.Duration(r.Float64() * 0.9 * float64(full))
		switch i {
		case 0:
			delay = 20 * time.Millisecond // during start-up, before any checkpoint
		case 1:
			delay = full / 20 // likely during the first validation, before any checkpoint
		}
		timer := time.AfterFunc(delay, func() { cmd.Process.Signal(sig) })
		err := cmd.Wait()
		timer.Stop()
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		switch {
		case err == nil:
			t.Logf("%v after %v: the run had already finished", sig, delay)
		case ws.Signaled():
			kills++
			t.Logf("%v after %v: killed", sig, delay)
		default:
			t.Fatalf("%v after %v: unexpected end (%v):\n%s", sig, delay, err, cmd.Stderr)
		}
		if err != nil {
			// Also a run stopped before its first checkpoint resumes (from
			// the beginning).
			if cmd := train("--resume", dir); cmd.Run() != nil {
				t.Fatalf("resume after %v failed:\n%s", sig, cmd.Stderr)
			}
		}
		got, err := os.ReadFile(filepath.Join(dir, "checkpoints/last.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("after %v at %v and resume, the final checkpoint differs from the uninterrupted run's", sig, delay)
		}
		if leftovers, _ := filepath.Glob(filepath.Join(dir, "*", ".*")); len(leftovers) > 0 {
			t.Errorf("temporary files left behind: %v", leftovers)
		}
	}
	t.Logf("%d runs killed with SIGKILL mid-run; every one resumed to the uninterrupted run's checkpoint", kills)
}

func TestTrainUsageErrors(t *testing.T) {
	bin := buildBinary(t)
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[training]\nepohcs = 3\n"), 0o644)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"train"}, ExitUsage, "give a configuration file"},
		{[]string{"train", "a.toml", "b.toml"}, ExitUsage, "give one salt-ort configuration (model.toml) or Salt's configuration files"},
		{[]string{"train", "a.toml", "b.yaml"}, ExitUsage, "give one salt-ort configuration (model.toml) or Salt's configuration files"},
		{[]string{"train", bad}, ExitUsage, `did you mean "epochs"`},
		{[]string{"train", "missing.toml"}, ExitFailure, "missing.toml"},
	}
	for _, c := range cases {
		out, err := exec.Command(bin, c.args...).CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != c.code || !strings.Contains(string(out), c.want) {
			t.Errorf("salt-ort %v: err %v, output %q; want exit %d mentioning %q", c.args, err, out, c.code, c.want)
		}
	}
}

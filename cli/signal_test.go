package cli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/salt-ort/salt-ort/checkpoint"
	"github.com/salt-ort/salt-ort/gendata"
)

// lineWatch collects a process's output and closes seen once a line
// matching want has been written.
type lineWatch struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want *regexp.Regexp
	seen chan struct{}
	once sync.Once
}

func newLineWatch(want string) *lineWatch {
	return &lineWatch{want: regexp.MustCompile(want), seen: make(chan struct{})}
}

// Write appends p and checks the complete lines for the pattern.
func (w *lineWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	text := w.buf.Bytes()
	if i := bytes.LastIndexByte(text, '\n'); i >= 0 && w.want.Match(text[:i]) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

// String returns everything written so far.
func (w *lineWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// firstStepLine matches the progress line `salt-ort train` writes to a
// log (not a terminal) once the first step of the first epoch is done:
// the process tests' models have 20 steps an epoch, a line each.
const firstStepLine = `(?m)^epoch 1/\d+: +5% `

// interruptedAt matches the log line of an interrupted run; the group is
// the optimizer steps done, which the checkpoint must record.
var interruptedAt = regexp.MustCompile(`interrupted (?:at epoch \d+, batch \d+|after epoch \d+) \(step (\d+)\); resume with --resume `)

// signalAfterFirstStep starts cmd, whose output must go to watch, waits
// for its first completed step and sends sig to pid(cmd); it returns how
// the command ended, and fails the test if it runs on for longer than
// limit after the signal.
func signalAfterFirstStep(t *testing.T, cmd *exec.Cmd, watch *lineWatch, sig syscall.Signal, pid func(*exec.Cmd) int, limit time.Duration) error {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-watch.seen:
		if err := syscall.Kill(pid(cmd), sig); err != nil {
			t.Fatalf("%v: %v", sig, err)
		}
	case err := <-done:
		t.Fatalf("the run ended (%v) before its first step was logged:\n%s", err, watch)
	case <-time.After(2 * time.Minute):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Process.Kill()
		t.Fatalf("no first step after 2 minutes:\n%s", watch)
	}
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Process.Kill()
		t.Fatalf("still running %v after %v:\n%s", limit, sig, watch)
		return nil
	}
}

// checkInterrupted requires what an interrupt promises: exit code 1
// (not death by the signal), the message saying how to resume, and a
// last checkpoint at the step the log names, after at least one step.
func checkInterrupted(t *testing.T, err error, out, cfg, dir string) {
	t.Helper()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != ExitFailure {
		t.Fatalf("the run ended with %v, want exit code %d:\n%s", err, ExitFailure, out)
	}
	wantMsg := fmt.Sprintf("salt-ort train: training interrupted; the last checkpoint was written: continue with salt-ort train %s --resume %s", cfg, dir)
	if !bytes.Contains([]byte(out), []byte(wantMsg)) {
		t.Fatalf("the output lacks %q:\n%s", wantMsg, out)
	}
	m := interruptedAt.FindAllStringSubmatch(out, -1)
	if len(m) != 1 {
		t.Fatalf("%d lines say where the run was interrupted, want 1:\n%s", len(m), out)
	}
	step, _ := strconv.Atoi(m[0][1])
	if step < 1 {
		t.Fatalf("interrupted at step %d, although the first step had been logged:\n%s", step, out)
	}
	f, err := checkpoint.Read(filepath.Join(dir, "checkpoints", "last.safetensors"))
	if err != nil {
		t.Fatalf("the interrupted run's checkpoint: %v", err)
	}
	if got := f.Metadata["step"]; got != strconv.Itoa(step) {
		t.Fatalf("the last checkpoint holds step %s, the log says the run stopped at step %d", got, step)
	}
	t.Logf("stopped at step %d with a checkpoint there", step)
}

// TestTrainSignalAfterFirstStep sends SIGINT and SIGTERM to `salt-ort
// train` once its first step is logged: each run exits 1 with the
// message, leaves a checkpoint at the step it stopped at, and resumed
// ends with the uninterrupted run's checkpoint bytes.
func TestTrainSignalAfterFirstStep(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	if _, err := gendata.Generate(gendata.Config{Seed: 11, Train: 1200, Val: 200, Test: 100}, data); err != nil {
		t.Fatal(err)
	}
	cfg := parallelConfig(t, data, 2)
	ref := filepath.Join(t.TempDir(), "ref")
	if out, err := exec.Command(bin, "train", cfg, "--quiet", "--out", ref).CombinedOutput(); err != nil {
		t.Fatalf("reference run: %v\n%s", err, out)
	}
	want, err := os.ReadFile(filepath.Join(ref, "checkpoints", "last.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			watch := newLineWatch(firstStepLine)
			cmd := exec.Command(bin, "train", cfg, "--out", dir)
			cmd.Stdout, cmd.Stderr = watch, watch
			err := signalAfterFirstStep(t, cmd, watch, sig, func(c *exec.Cmd) int { return c.Process.Pid }, time.Minute)
			checkInterrupted(t, err, watch.String(), cfg, dir)
			if out, err := exec.Command(bin, "train", cfg, "--quiet", "--resume", dir).CombinedOutput(); err != nil {
				t.Fatalf("resume: %v\n%s", err, out)
			}
			got, err := os.ReadFile(filepath.Join(dir, "checkpoints", "last.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("interrupted by %v and resumed, the run ends with another checkpoint than the uninterrupted run", sig)
			}
		})
	}
}

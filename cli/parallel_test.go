package cli

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/salt-ort/salt-ort/checkpoint"
	"github.com/salt-ort/salt-ort/gendata"
)

// mpiJob runs `salt-ort args...` as n ranks under mpirun (as root, more
// ranks than cores), in a process group of its own so that a test can
// kill the whole job.
func mpiJob(t *testing.T, n int, bin string, args ...string) *exec.Cmd {
	t.Helper()
	if _, err := exec.LookPath("mpirun"); err != nil {
		t.Fatal("mpirun is not installed: run `make deps` (Debian's openmpi-bin)")
	}
	cmd := exec.Command("mpirun", append([]string{"--allow-run-as-root", "--oversubscribe", "-np", strconv.Itoa(n), bin}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout = new(bytes.Buffer)
	cmd.Stderr = cmd.Stdout
	return cmd
}

// parallelConfig writes the process tests' tiny model, with a metrics row
// per step and a short collective timeout, and returns its path.
func parallelConfig(t *testing.T, data string, epochs int) string {
	t.Helper()
	text := strings.Replace(tinyModel(data), "[training]\n", "[training]\nlog_every = 1\ncollective_timeout = 20\n", 1)
	text = strings.Replace(text, "epochs = 4\n", fmt.Sprintf("epochs = %d\n", epochs), 1)
	path := filepath.Join(t.TempDir(), "tiny.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// readCSV reads a metrics table.
func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// relDiff is |a−b| relative to the larger of |a|, |b| and 1e-3.
func relDiff(a, b float64) float64 {
	return math.Abs(a-b) / math.Max(math.Max(math.Abs(a), math.Abs(b)), 1e-3)
}

// The agreement of one process and two ranks that docs/gpus.md states:
// per-step and validation losses (relative) and the final parameters
// (absolute; the largest is about 0.44), up to float32 rounding of sums
// in another order.
const (
	lossTol  = 1e-6
	paramTol = 2.5e-7
)

// TestDataParallel trains the same model as one process with batches of
// B and as two MPI ranks with B/2 each: the per-step losses and the final
// parameters agree to float32 rounding. Two runs of the two-rank job write
// the same checkpoint bytes, and so does one killed (the whole job, kill
// -9) and resumed. A job whose rank was killed alone ends.
func TestDataParallel(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	if _, err := gendata.Generate(gendata.Config{Seed: 11, Train: 1200, Val: 200, Test: 100}, data); err != nil {
		t.Fatal(err)
	}
	cfg := parallelConfig(t, data, 3)
	dir := t.TempDir()
	run := func(n int, out string, extra ...string) {
		t.Helper()
		var cmd *exec.Cmd
		args := append([]string{"train", cfg, "--quiet"}, extra...)
		if out != "" {
			args = append(args, "--out", out)
		}
		if n == 1 {
			cmd = exec.Command(bin, args...)
			cmd.Stdout = new(bytes.Buffer)
			cmd.Stderr = cmd.Stdout
		} else {
			cmd = mpiJob(t, n, bin, args...)
		}
		if err := cmd.Run(); err != nil {
			t.Fatalf("%d rank(s): %v\n%s", n, err, cmd.Stdout)
		}
	}
	one, two := filepath.Join(dir, "one"), filepath.Join(dir, "two")
	run(1, one)
	start := time.Now()
	run(2, two)
	t.Logf("two-rank job: %v", time.Since(start).Round(time.Millisecond))

	// The per-step losses, column by column.
	a, b := readCSV(t, filepath.Join(one, "metrics", "train.csv")), readCSV(t, filepath.Join(two, "metrics", "train.csv"))
	if len(a) != len(b) || len(a) < 10 {
		t.Fatalf("%d and %d metric rows", len(a), len(b))
	}
	worstLoss := 0.0
	for i := 1; i < len(a); i++ {
		for j, col := range a[0] {
			if col != "loss" && !strings.HasPrefix(col, "loss/") && col != "grad_norm" {
				continue
			}
			x, _ := strconv.ParseFloat(a[i][j], 64)
			y, _ := strconv.ParseFloat(b[i][j], 64)
			worstLoss = math.Max(worstLoss, relDiff(x, y))
		}
	}
	worstParam, scale, worstInvariant := compareParams(t, one, two)
	// The validation losses, which read every parameter.
	va, vb := readCSV(t, filepath.Join(one, "metrics", "val.csv")), readCSV(t, filepath.Join(two, "metrics", "val.csv"))
	worstVal := 0.0
	for i := 1; i < len(va) && i < len(vb); i++ {
		for j := 2; j < len(va[i]); j++ {
			x, _ := strconv.ParseFloat(va[i][j], 64)
			y, _ := strconv.ParseFloat(vb[i][j], 64)
			worstVal = math.Max(worstVal, relDiff(x, y))
		}
	}
	t.Logf("1 rank × 50 jets vs 2 ranks × 25, %d steps: per-step losses within %.3g relative, validation losses and AUC within %.3g; parameters within %.3g (largest %.3g), the shift-invariant biases within %.2g",
		len(a)-1, worstLoss, worstVal, worstParam, scale, worstInvariant)
	if worstLoss > lossTol || worstVal > lossTol || worstParam > paramTol || scale == 0 || len(va) != len(vb) {
		t.Fatalf("losses differ by %g relative, validation by %g, parameters by %g (largest %g); docs/gpus.md promises %g and %g",
			worstLoss, worstVal, worstParam, scale, lossTol, paramTol)
	}

	last := func(run string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(run, "checkpoints", "last.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Determinism: the same job again.
	again := filepath.Join(dir, "again")
	run(2, again)
	if !bytes.Equal(last(two), last(again)) {
		t.Fatal("two runs of the two-rank job write different checkpoints")
	}

	// Kill the whole job at some point after its first checkpoint, then
	// resume it with one command line.
	waitCheckpoint := func(run string, cmd *exec.Cmd) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			if _, err := os.Stat(filepath.Join(run, "checkpoints", "last.safetensors")); err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no checkpoint after 60 s:\n%s", cmd.Stdout)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	killed := filepath.Join(dir, "killed")
	cmd := mpiJob(t, 2, bin, "train", cfg, "--quiet", "--out", killed)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitCheckpoint(killed, cmd)
	time.Sleep(150 * time.Millisecond)
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	killedCopy := filepath.Join(dir, "killed-copy")
	if out, err := exec.Command("cp", "-a", killed, killedCopy).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	run(2, "", "--resume", killed)
	if !bytes.Equal(last(two), last(killed)) {
		t.Fatal("the job killed with kill -9 and resumed ends with another checkpoint than the uninterrupted one")
	}
	// Resumed by one process instead: the same batches, summed in another
	// order.
	run(1, "", "--resume", killedCopy)
	if w, _, _ := compareParams(t, two, killedCopy); w > paramTol {
		t.Fatalf("the two-rank job resumed by one process ends %g away from the uninterrupted job; docs/gpus.md promises %g", w, paramTol)
	} else {
		t.Logf("two-rank job resumed by one process: parameters within %.3g of the uninterrupted job's", w)
	}

	// Kill one rank alone: the job ends, non-zero, within the timeout.
	lone := filepath.Join(dir, "lone")
	cmd = mpiJob(t, 2, bin, "train", parallelConfig(t, data, 30), "--quiet", "--out", lone)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitCheckpoint(lone, cmd)
	ranks := children(cmd.Process.Pid)
	if len(ranks) != 2 {
		t.Fatalf("mpirun has %d child processes, want the 2 ranks", len(ranks))
	}
	syscall.Kill(ranks[1], syscall.SIGKILL)
	killedAt := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Logf("after one rank's kill -9 the job ended in %v: %v", time.Since(killedAt).Round(time.Millisecond), err)
		if err == nil {
			t.Fatal("the job exited 0 after one of its ranks was killed")
		}
	case <-time.After(60 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Fatalf("the job still ran 60 s after one rank was killed:\n%s", cmd.Stdout)
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // whatever is left
	if _, err := checkpoint.Read(filepath.Join(lone, "checkpoints", "last.safetensors")); err != nil {
		t.Fatalf("the last checkpoint is damaged: %v", err)
	}
	run(2, "", "--resume", lone, "--epochs", "3")

}

// TestDataParallelInterrupts stops a two-rank job through one rank. SIGTERM
// to rank 1 after the first step: both ranks stop at the same step, within
// the collective timeout, rank 0 writes the one checkpoint and says so, and
// the job resumed ends with the uninterrupted job's bytes. SIGSTOP to rank
// 1 (alive, so no launcher notices): rank 0's watchdog ends the job within
// training.collective_timeout + 10 s, saying why, and the last checkpoint
// stays readable.
func TestDataParallelInterrupts(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	if _, err := gendata.Generate(gendata.Config{Seed: 11, Train: 1200, Val: 200, Test: 100}, data); err != nil {
		t.Fatal(err)
	}
	cfg := parallelConfig(t, data, 2)
	dir := t.TempDir()
	two := filepath.Join(dir, "two")
	if cmd := mpiJob(t, 2, bin, "train", cfg, "--quiet", "--out", two); cmd.Run() != nil {
		t.Fatalf("the uninterrupted job failed:\n%s", cmd.Stdout)
	}
	run := func(args ...string) {
		t.Helper()
		if cmd := mpiJob(t, 2, bin, append([]string{"train", cfg, "--quiet"}, args...)...); cmd.Run() != nil {
			t.Fatalf("%v:\n%s", args, cmd.Stdout)
		}
	}
	last := func(run string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(run, "checkpoints", "last.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	// SIGTERM to one rank after the first step: the ranks agree to stop
	// at the same step, rank 0 writes the one checkpoint and says so, and
	// the job, resumed, ends as the uninterrupted one.
	termed := filepath.Join(dir, "termed")
	watch := newLineWatch(firstStepLine)
	cmd := mpiJob(t, 2, bin, "train", cfg, "--out", termed)
	cmd.Stdout, cmd.Stderr = watch, watch
	// Within the collective timeout: no rank waited for the other.
	err := signalAfterFirstStep(t, cmd, watch, syscall.SIGTERM, func(c *exec.Cmd) int { return rankPid(t, c.Process.Pid, 1) }, 20*time.Second)
	checkInterrupted(t, err, watch.String(), cfg, termed)
	if leftovers, _ := filepath.Glob(filepath.Join(termed, "checkpoints", ".*")); len(leftovers) > 0 {
		t.Fatalf("temporary files left behind: %v", leftovers)
	}
	run("--resume", termed)
	if !bytes.Equal(last(two), last(termed)) {
		t.Fatal("the job stopped by SIGTERM to one rank and resumed ends with another checkpoint than the uninterrupted one")
	}

	// Stop one rank (SIGSTOP: alive, so no launcher notices): the other
	// waits training.collective_timeout in a collective, then its watchdog
	// ends the job, saying so, and the last checkpoint stays readable.
	const timeout = 5
	stopped := filepath.Join(dir, "stopped")
	text, err := os.ReadFile(parallelConfig(t, data, 30))
	if err != nil {
		t.Fatal(err)
	}
	stopCfg := filepath.Join(t.TempDir(), "stop.toml")
	text = bytes.Replace(text, []byte("collective_timeout = 20\n"), []byte(fmt.Sprintf("collective_timeout = %d\n", timeout)), 1)
	if err := os.WriteFile(stopCfg, text, 0o644); err != nil {
		t.Fatal(err)
	}
	watch = newLineWatch(firstStepLine)
	cmd = mpiJob(t, 2, bin, "train", stopCfg, "--out", stopped)
	cmd.Stdout, cmd.Stderr = watch, watch
	var stoppedAt time.Time
	err = signalAfterFirstStep(t, cmd, watch, syscall.SIGSTOP, func(c *exec.Cmd) int {
		stoppedAt = time.Now()
		return rankPid(t, c.Process.Pid, 1)
	}, (timeout+10)*time.Second)
	took := time.Since(stoppedAt)
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // whatever is left
	t.Logf("with one rank stopped the job ended in %v: %v", took.Round(time.Millisecond), err)
	const said = "for the other ranks (training.collective_timeout): a rank has stopped or died; ending the job, the last checkpoint is intact"
	switch {
	case err == nil:
		t.Fatal("the job exited 0 with one of its ranks stopped")
	case took > (timeout+10)*time.Second:
		t.Fatalf("the job ended %v after one rank stopped; training.collective_timeout is %d s", took, timeout)
	case !strings.Contains(watch.String(), said):
		t.Fatalf("the output lacks %q:\n%s", said, watch)
	}
	if _, err := checkpoint.Read(filepath.Join(stopped, "checkpoints", "last.safetensors")); err != nil {
		t.Fatalf("the last checkpoint is damaged: %v", err)
	}
}

// compareParams returns the largest difference between the final
// parameters of two runs, the largest parameter, and the largest
// difference of the softmax-invariant biases, which it leaves out.
//
// Two kinds of parameter have a gradient that is exactly zero in exact
// arithmetic, since a softmax does not see a shift of all its inputs:
// the pooling gate's bias and the attention's key bias (the middle third
// of in_proj/bias). What they receive is rounding noise, which Adam
// normalises into steps of order lr in directions the summation order
// decides, so they wander apart whatever the reduction; they change no
// output. Every other parameter must agree.
func compareParams(t *testing.T, runA, runB string) (worst, scale, worstInvariant float64) {
	t.Helper()
	pa, err := checkpoint.Read(filepath.Join(runA, "checkpoints", "last.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	pb, err := checkpoint.Read(filepath.Join(runB, "checkpoints", "last.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	invariant := func(name string, k, n int) bool {
		return strings.HasSuffix(name, "pooling/gate/bias") || (strings.HasSuffix(name, "attn/in_proj/bias") && k >= n/3 && k < 2*n/3)
	}
	for _, name := range pa.Names() {
		x, _, err := pa.Float32(name)
		if err != nil || strings.HasPrefix(name, "opt/") || strings.HasPrefix(name, "optimizer") {
			continue
		}
		y, _, err := pb.Float32(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for k := range x {
			d := math.Abs(float64(x[k]) - float64(y[k]))
			if invariant(name, k, len(x)) {
				worstInvariant = math.Max(worstInvariant, d)
				continue
			}
			worst = math.Max(worst, d)
			scale = math.Max(scale, math.Abs(float64(x[k])))
		}
	}
	return worst, scale, worstInvariant
}

// rankPid returns the process id of the rank of the MPI job that the
// mpirun process mpirunPid started (Open MPI's OMPI_COMM_WORLD_RANK).
func rankPid(t *testing.T, mpirunPid, rank int) int {
	t.Helper()
	want := []byte("OMPI_COMM_WORLD_RANK=" + strconv.Itoa(rank))
	kids := children(mpirunPid)
	for _, pid := range kids {
		env, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
		if err != nil {
			continue
		}
		for _, v := range bytes.Split(env, []byte{0}) {
			if bytes.Equal(v, want) {
				return pid
			}
		}
	}
	t.Fatalf("none of mpirun's child processes %v is rank %d", kids, rank)
	return 0
}

// children lists the process ids whose parent is pid.
func children(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// TestDataParallelRefusals checks the errors that stop a job at start:
// ranks with different configurations, executables or data, and a batch
// that does not split.
func TestDataParallelRefusals(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	if _, err := gendata.Generate(gendata.Config{Seed: 11, Train: 300, Val: 100, Test: 50}, data); err != nil {
		t.Fatal(err)
	}
	cfg := parallelConfig(t, data, 1)
	text, _ := os.ReadFile(cfg)
	other := filepath.Join(t.TempDir(), "other.toml")
	os.WriteFile(other, []byte(strings.Replace(string(text), "seed = 3", "seed = 4", 1)), 0o644)
	if _, err := exec.LookPath("mpirun"); err != nil {
		t.Fatal("mpirun is not installed: run `make deps` (Debian's openmpi-bin)")
	}
	// Different data under one path: the configuration names its files
	// through /proc/self/cwd, and each rank starts in another directory
	// (mpirun -wdir), holding another generated dataset.
	cwdData := [2]string{t.TempDir(), t.TempDir()}
	for i, dir := range cwdData {
		if _, err := gendata.Generate(gendata.Config{Seed: uint64(11 + i), Train: 300, Val: 100, Test: 50}, dir); err != nil {
			t.Fatal(err)
		}
	}
	cwdCfg := parallelConfig(t, "/proc/self/cwd", 1)
	// Another build of salt-ort: the same code without its symbol table.
	otherBin := filepath.Join(t.TempDir(), "salt-ort")
	if out, err := exec.Command("go", "build", "-ldflags", "-s -w", "-o", otherBin, "../cmd/salt-ort").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"different configurations", []string{"-np", "1", bin, "train", cfg, "--quiet", "--out", filepath.Join(t.TempDir(), "r"), ":",
			"-np", "1", bin, "train", other, "--quiet", "--out", filepath.Join(t.TempDir(), "r")}, "rank 1's resolved configuration differs from rank 0's"},
		{"different executables", []string{"-np", "1", bin, "train", cfg, "--quiet", "--out", filepath.Join(t.TempDir(), "r"), ":",
			"-np", "1", otherBin, "train", cfg, "--quiet", "--out", filepath.Join(t.TempDir(), "r")}, "rank 1 runs another salt-ort executable than rank 0"},
		{"different data", []string{"-np", "1", "-wdir", cwdData[0], bin, "train", cwdCfg, "--quiet", "--out", filepath.Join(t.TempDir(), "r"), ":",
			"-np", "1", "-wdir", cwdData[1], bin, "train", cwdCfg, "--quiet", "--out", filepath.Join(t.TempDir(), "r")}, "/proc/self/cwd/train.h5 differs between rank 0 ("},
		{"batch not divisible", []string{"-np", "3", bin, "train", cfg, "--quiet", "--out", filepath.Join(t.TempDir(), "r")}, "data.batch_size = 50 is not a multiple of the job's 3 ranks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("mpirun", append([]string{"--allow-run-as-root", "--oversubscribe"}, tc.args...)...)
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Fatalf("error %v, output lacks %q:\n%s", err, tc.want, out)
			}
		})
	}
}

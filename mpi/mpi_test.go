package mpi

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// childEnv marks the test binary's processes that mpirun starts as ranks.
const childEnv = "SALT_ORT_MPI_TEST"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
	case abortMultiple, abortSerialized:
		os.Exit(abortMain(os.Getenv(childEnv)))
	default:
		os.Exit(rankMain())
	}
	os.Exit(m.Run())
}

// rankMain is what each rank of TestCollectives runs: every collective,
// with values that say which rank they came from.
func rankMain() int {
	fail := func(format string, args ...any) int {
		fmt.Printf("FAIL "+format+"\n", args...)
		return 1
	}
	if !Launched() {
		return fail("not launched: the environment has none of %v", launchVars)
	}
	w, err := Init()
	if err != nil {
		return fail("%v", err)
	}
	if again, err := Init(); again != w || err != nil {
		return fail("a second Init gave %p, %v", again, err)
	}
	r, n := w.Rank(), w.Size()
	f := []float32{float32(r), 1, float32(r * r)}
	if err := w.SumFloat32(f); err != nil {
		return fail("%v", err)
	}
	want := []float32{float32(n * (n - 1) / 2), float32(n), 0}
	for i := 0; i < n; i++ {
		want[2] += float32(i * i)
	}
	for i := range f {
		if f[i] != want[i] {
			return fail("rank %d: SumFloat32 %v, want %v", r, f, want)
		}
	}
	d := []float64{0.5 * float64(r)}
	if err := w.SumFloat64(d); err != nil || d[0] != 0.25*float64(n*(n-1)) {
		return fail("rank %d: SumFloat64 %v, %v", r, d, err)
	}
	m := []int64{int64(r), -int64(r)}
	if err := w.MaxInt64(m); err != nil || m[0] != int64(n-1) || m[1] != 0 {
		return fail("rank %d: MaxInt64 %v, %v", r, m, err)
	}
	b := []byte("........")
	if r == n-1 {
		b = []byte("the last")
	}
	if err := w.Broadcast(b, n-1); err != nil || string(b) != "the last" {
		return fail("rank %d: Broadcast %q, %v", r, b, err)
	}
	all, err := w.Gather([]byte(strings.Repeat("x", r)))
	if err != nil || len(all) != n {
		return fail("rank %d: Gather %q, %v", r, all, err)
	}
	for i, got := range all {
		if string(got) != strings.Repeat("x", i) {
			return fail("rank %d: Gather %q", r, all)
		}
	}
	if n == 2 {
		if err := stress(w); err != nil {
			return fail("rank %d: %v", r, err)
		}
	}
	if err := w.Barrier(); err != nil {
		return fail("%v", err)
	}
	if err := w.Finalize(); err != nil {
		return fail("%v", err)
	}
	if err := w.Barrier(); err == nil {
		return fail("a Barrier after Finalize succeeded")
	}
	fmt.Printf("rank %d of %d ok\n", r, n)
	return 0
}

// stress repeats the in-place sums while the garbage collector runs
// without pause: the collector shrinks goroutine stacks, and copying a
// stack fails fatally on a frame that holds a value no Go pointer may have
// (MPI_IN_PLACE is the address 1), as a data-parallel training once did.
func stress(w *World) error {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				runtime.GC()
			}
		}
	}()
	defer func() { close(stop); <-done }()
	f, d := make([]float32, 64), make([]float64, 64)
	sums := func() error {
		if err := w.SumFloat32(f); err != nil {
			return err
		}
		return w.SumFloat64(d)
	}
	// Sums from every depth up to a few stack sizes: some call reaches
	// the end of the stack inside the sum, where the collector's request
	// to shrink it is carried out.
	for i := range 1500 {
		if err := deep(i%500, sums); err != nil {
			return fmt.Errorf("sum %d: %w", i, err)
		}
	}
	return nil
}

// deep calls f from n frames down.
func deep(n int, f func() error) error {
	var pad [24]byte
	pad[n%len(pad)] = byte(n)
	if n == 0 {
		return f()
	}
	return deep(n-1, f)
}

// Mpirun returns the command that runs program as n ranks on this
// machine, as the tests run MPI jobs (as root, more ranks than cores).
func mpirun(t *testing.T, n int, env []string, program string, args ...string) *exec.Cmd {
	t.Helper()
	if _, err := exec.LookPath("mpirun"); err != nil {
		t.Fatal("mpirun is not installed: run `make deps` (Debian's openmpi-bin)")
	}
	a := []string{"--allow-run-as-root", "--oversubscribe", "-np", fmt.Sprint(n)}
	for _, e := range env {
		a = append(a, "-x", e)
	}
	return exec.Command("mpirun", append(append(a, program), args...)...)
}

func TestCollectives(t *testing.T) {
	for _, n := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("%d ranks", n), func(t *testing.T) {
			cmd := mpirun(t, n, []string{childEnv + "=1"}, os.Args[0])
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				t.Fatalf("mpirun: %v\n%s", err, out.String())
			}
			for r := 0; r < n; r++ {
				if !strings.Contains(out.String(), fmt.Sprintf("rank %d of %d ok", r, n)) {
					t.Fatalf("rank %d did not finish:\n%s", r, out.String())
				}
			}
		})
	}
}

func TestLaunched(t *testing.T) {
	for _, v := range launchVars {
		t.Setenv(v, "")
	}
	if Launched() {
		t.Fatal("Launched without a launcher's variables")
	}
	t.Setenv("OMPI_COMM_WORLD_SIZE", "2")
	if !Launched() {
		t.Fatal("not Launched with OMPI_COMM_WORLD_SIZE set")
	}
}

// The ways TestAbortDuringCollective runs its ranks: with the thread
// level the library provides, and as under MPI_THREAD_SERIALIZED.
const (
	abortMultiple   = "abort-multiple"
	abortSerialized = "abort-serialized"
)

// abortCode is the exit code the aborting rank asks for.
const abortCode = 3

// abortMain is what each rank of TestAbortDuringCollective runs: rank 0
// waits in a barrier that rank 1 never joins and aborts the job from
// another goroutine, as training's watchdog does.
func abortMain(mode string) int {
	w, err := Init()
	if err != nil {
		fmt.Printf("FAIL %v\n", err)
		return 1
	}
	fmt.Printf("rank %d: MPI_THREAD_MULTIPLE %v\n", w.Rank(), w.ThreadMultiple())
	if mode == abortSerialized {
		w.multiple = false
	}
	if w.Rank() != 0 {
		time.Sleep(time.Minute)
		return 0
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		fmt.Println("rank 0: aborting")
		w.Abort(abortCode)
	}()
	err = w.Barrier()
	fmt.Printf("FAIL the barrier returned (%v)\n", err)
	return 1
}

// TestAbortDuringCollective ends a two-rank job from a goroutine while
// the main goroutine waits in a collective that cannot complete: the job
// must end within seconds, not when the stuck rank gives up, by either
// path of Abort (TestMayAbort checks which it takes; Open MPI's own
// message that MPI_Abort ran is lost under load, so it proves nothing).
func TestAbortDuringCollective(t *testing.T) {
	for _, mode := range []string{abortMultiple, abortSerialized} {
		t.Run(mode, func(t *testing.T) {
			cmd := mpirun(t, 2, []string{childEnv + "=" + mode}, os.Args[0])
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			start := time.Now()
			err := cmd.Run()
			took := time.Since(start)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() == 0 {
				t.Fatalf("the job ended with %v, want a non-zero exit:\n%s", err, out.String())
			}
			if took > 20*time.Second || strings.Contains(out.String(), "FAIL") {
				t.Fatalf("the job ended after %v:\n%s", took, out.String())
			}
			// Open MPI, which this package builds against, provides
			// MPI_THREAD_MULTIPLE: Abort must not need the fallback there.
			if !strings.Contains(out.String(), "rank 0: MPI_THREAD_MULTIPLE true") {
				t.Fatalf("Open MPI did not provide MPI_THREAD_MULTIPLE:\n%s", out.String())
			}
			t.Logf("ended in %v (%v)", took.Round(time.Millisecond), err)
		})
	}
}

// TestMayAbort checks when Abort calls MPI_Abort: under
// MPI_THREAD_MULTIPLE always, under SERIALIZED only when no MPI call
// holds the World's lock.
func TestMayAbort(t *testing.T) {
	for _, c := range []struct {
		name           string
		multiple, busy bool
		want           bool
	}{
		{"multiple, idle", true, false, true},
		{"multiple, in a collective", true, true, true},
		{"serialized, idle", false, false, true},
		{"serialized, in a collective", false, true, false},
	} {
		w := &World{multiple: c.multiple}
		if c.busy {
			w.mu.Lock()
		}
		if got := w.mayAbort(); got != c.want {
			t.Errorf("%s: mayAbort %v, want %v", c.name, got, c.want)
		}
	}
}

package nccl

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/salt-ort/salt-ort/internal/testkit/fakenccl"
	"github.com/salt-ort/salt-ort/mpi"
)

// childEnv names the fake library for the test binary's processes that
// mpirun starts as ranks.
const childEnv = "SALT_ORT_NCCL_TEST_FAKE"

func TestMain(m *testing.M) {
	if lib := os.Getenv(childEnv); lib != "" {
		os.Exit(rankMain(lib))
	}
	os.Exit(m.Run())
}

// rankMain is each rank of TestSumOverRanks: rank 0 makes the id, MPI
// broadcasts it, every rank joins and sums a vector in place.
func rankMain(lib string) int {
	fail := func(format string, args ...any) int {
		fmt.Printf("FAIL "+format+"\n", args...)
		return 1
	}
	w, err := mpi.Init()
	if err != nil {
		return fail("%v", err)
	}
	defer w.Finalize()
	l, err := Open(Options{Library: lib, CUDART: lib})
	if err != nil {
		return fail("%v", err)
	}
	var id ID
	if w.Rank() == 0 {
		if id, err = l.NewID(); err != nil {
			return fail("%v", err)
		}
	}
	if err := w.Broadcast(id[:], 0); err != nil {
		return fail("%v", err)
	}
	c, err := l.NewComm(id, w.Rank(), w.Size(), 0)
	if err != nil {
		return fail("%v", err)
	}
	buf := []float32{float32(w.Rank()), 2}
	if err := c.SumFloat32(unsafe.Pointer(&buf[0]), len(buf)); err != nil {
		return fail("%v", err)
	}
	n := float32(w.Size())
	if buf[0] != n*(n-1)/2 || buf[1] != 2*n {
		return fail("rank %d: sum %v", w.Rank(), buf)
	}
	if err := c.Close(); err != nil {
		return fail("%v", err)
	}
	fmt.Printf("rank %d of %d ok (NCCL %d)\n", w.Rank(), w.Size(), l.Version())
	return 0
}

// fakeLibrary builds the stand-in for NCCL and the CUDA runtime.
func fakeLibrary(t *testing.T) string { return fakenccl.Build(t) }

// TestSumOverRanks runs 1 and 3 ranks against the fake NCCL, which checks
// that every rank passed the id rank 0 made.
func TestSumOverRanks(t *testing.T) {
	if _, err := exec.LookPath("mpirun"); err != nil {
		t.Fatal("mpirun is not installed: run `make deps` (Debian's openmpi-bin)")
	}
	lib := fakeLibrary(t)
	for _, n := range []int{1, 3} {
		cmd := exec.Command("mpirun", "--allow-run-as-root", "--oversubscribe", "-np", fmt.Sprint(n), "-x", childEnv+"="+lib, os.Args[0])
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("%d ranks: %v\n%s", n, err, out.String())
		}
		for r := 0; r < n; r++ {
			if !strings.Contains(out.String(), fmt.Sprintf("rank %d of %d ok (NCCL 22703)", r, n)) {
				t.Fatalf("%d ranks: rank %d did not finish:\n%s", n, r, out.String())
			}
		}
	}
}

// TestOpenErrors checks that a missing library is an error naming it,
// where its path came from and how to get one.
func TestOpenErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "libnccl.so.2")
	t.Setenv(LibraryEnv, missing)
	_, err := Open(Options{})
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "$"+LibraryEnv) || !strings.Contains(err.Error(), "nvidia-nccl-cu13") {
		t.Fatalf("error %v", err)
	}
	lib := fakeLibrary(t)
	_, err = Open(Options{Library: lib, CUDART: filepath.Join(t.TempDir(), "libcudart.so.13")})
	if err == nil || !strings.Contains(err.Error(), "libcudart.so.13") || !strings.Contains(err.Error(), "LD_LIBRARY_PATH") {
		t.Fatalf("error %v", err)
	}
}

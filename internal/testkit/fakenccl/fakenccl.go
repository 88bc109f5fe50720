// Package fakenccl builds, for tests on machines without a GPU, a stand-in
// for libnccl.so.2 and the CUDA runtime functions package nccl uses:
// "device" memory is host memory (as with ONNX Runtime's CPU provider
// standing in for the GPU) and the reduction runs over MPI, which the Go
// side has initialised. It checks what real NCCL needs: every rank passes
// the unique id rank 0 made, ranks and sizes agree, and the reduction is a
// float32 sum.
package fakenccl

import (
	_ "embed"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

//go:embed src/fake_nccl.c
var source []byte

// Build compiles the stand-in into a shared library in a temporary
// directory of the test and returns its path; pass it as both the NCCL
// library and the CUDA runtime.
func Build(tb testing.TB) string {
	tb.Helper()
	flags, err := exec.Command("pkg-config", "--cflags", "--libs", "ompi-c").Output()
	if err != nil {
		tb.Fatalf("pkg-config ompi-c: %v: run `make deps` (Debian's libopenmpi-dev)", err)
	}
	dir := tb.TempDir()
	src := filepath.Join(dir, "fake_nccl.c")
	if err := os.WriteFile(src, source, 0o644); err != nil {
		tb.Fatal(err)
	}
	lib := filepath.Join(dir, "libfakenccl.so")
	args := append([]string{"-shared", "-fPIC", "-Wall", "-Werror", "-o", lib, src}, strings.Fields(string(flags))...)
	if out, err := exec.Command("cc", args...).CombinedOutput(); err != nil {
		tb.Fatalf("cc: %v\n%s", err, out)
	}
	return lib
}

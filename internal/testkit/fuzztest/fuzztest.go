// Package fuzztest holds what salt-ort's fuzz targets share.
package fuzztest

import (
	"flag"
	"os"
	"testing"
)

// MinimizeLimit is how many calls of the target the fuzzer may spend
// minimising one input unless -fuzzminimizetime says otherwise: 0.1-0.5 s
// for our targets.
const MinimizeLimit = "1000x"

// BoundMinimization makes MinimizeLimit the default of -fuzzminimizetime
// for the fuzz target f; call it first in the target. An explicit
// -fuzzminimizetime on the command line wins.
//
// Go minimises every input that reaches new code before it fuzzes on, by
// default for up to 60 s, and its minimiser tries O(n²) cuts of an n-byte
// input, each a full call of the target. A worker minimising reports no
// executions until it is done, so a freshly started run, which finds new
// code every few milliseconds, spends its first minutes with both workers
// minimising and reports 0 execs/s: `go test -fuzz FuzzParse -fuzztime 40s
// ./config` ran 9 inputs in 40 s. Bounded, minimisation still shrinks most
// inputs, each worker is back to fuzzing within a second, and a failing
// input is still reported and saved, only perhaps less small.
//
// The bound is a number of calls, not a time: when a time bound expires the
// coordinator's deadline fires before the worker's, so it kills the worker,
// drops the executions it made and starts a new process.
func BoundMinimization(f *testing.F) {
	f.Helper()
	if flag.Lookup("test.fuzzminimizetime") == nil {
		return
	}
	set := false
	flag.Visit(func(fl *flag.Flag) {
		if fl.Name == "test.fuzzminimizetime" {
			set = true
		}
	})
	if !set {
		if err := flag.Set("test.fuzzminimizetime", MinimizeLimit); err != nil {
			f.Fatal(err)
		}
	}
}

// ScratchDir returns a directory for the files a target writes on every
// call, removed when f ends: in memory (/dev/shm) where the system has
// it, else f.TempDir(). On a disk, the file system's journal made each
// call of FuzzH5Fields wait on I/O for two thirds of its time.
func ScratchDir(f *testing.F) string {
	f.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "salt-ort-fuzz-"); err == nil {
			f.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return f.TempDir()
}

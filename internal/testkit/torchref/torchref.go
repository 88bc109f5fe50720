// Package torchref runs Python scripts with Debian's python3-torch from
// tests, for comparisons of salt-ort with an independent PyTorch
// implementation (Salt's modules, PyTorch's optimizers and schedulers).
// `make deps` installs python3-torch, so a test that needs it fails, rather
// than skips, where it is missing.
package torchref

import (
	"bytes"
	"os/exec"
	"testing"
)

// Python is Debian's interpreter, which has python3-torch, -numpy, -h5py
// and -yaml; the python3 first on PATH may be another build without them.
const Python = "/usr/bin/python3"

// Require fails the test unless Python can import torch, numpy, h5py and
// yaml.
func Require(t testing.TB) {
	t.Helper()
	out, err := exec.Command(Python, "-c", "import torch, numpy, h5py, yaml").CombinedOutput()
	if err != nil {
		t.Fatalf("%s cannot import torch, numpy, h5py and yaml: run `make deps` (it installs python3-torch and the other packages in third_party/debian/packages.txt): %v\n%s", Python, err, out)
	}
}

// Run runs script with args under Python with one torch thread (the test
// machines are small and shared) and returns its standard output; on
// failure it fails the test with the script's standard error.
func Run(t testing.TB, script string, args ...string) []byte {
	t.Helper()
	Require(t)
	cmd := exec.Command(Python, append([]string{"-c", "import torch; torch.set_num_threads(1)\n" + script}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("python3-torch script failed: %v\n%s", err, stderr.String())
	}
	return stdout.Bytes()
}

// RunFile is Run for a script file.
func RunFile(t testing.TB, path string, args ...string) []byte {
	t.Helper()
	Require(t)
	cmd := exec.Command(Python, append([]string{path}, args...)...)
	cmd.Env = append(cmd.Environ(), "OMP_NUM_THREADS=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s failed: %v\n%s", path, err, stderr.String())
	}
	return stdout.Bytes()
}

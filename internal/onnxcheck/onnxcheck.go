// Package onnxcheck runs the reference ONNX checker (Debian's python3-onnx)
// on models salt-ort writes, to prove the bytes are valid ONNX and not only
// something ONNX Runtime happens to accept: `salt-ort export` passes a
// Checker to deploy.Export (as its optional deploy.ModelChecker), and tests
// run it on the graphs they build.
//
// The checker runs in a Python interpreter that can import onnx: Debian's
// /usr/bin/python3 by default (Python), or another one named by a Checker's
// Python field, which `salt-ort export` takes from the SALT_ORT_ONNX_PYTHON
// environment variable (PythonEnv).
package onnxcheck

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Python is the interpreter that has python3-onnx; the python3 on PATH of a
// developer machine may be another build without Debian's packages.
const Python = "/usr/bin/python3"

// PythonEnv is the environment variable with which `salt-ort export`
// chooses the interpreter of its Checker.
const PythonEnv = "SALT_ORT_ONNX_PYTHON"

// MaxOpset is the newest ONNX opset Debian's python3-onnx (1.12) checks.
const MaxOpset = 17

// ErrUnavailable reports that python3-onnx is not installed.
var ErrUnavailable = errors.New("onnxcheck: python3-onnx is not installed (apt-get install python3-onnx, or `make deps`)")

const script = `
import sys, onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
print("ok opset", [(o.domain, o.version) for o in m.opset_import])
`

// Checker runs the reference ONNX checker in one Python interpreter. The
// zero value uses Python.
type Checker struct {
	// Python is the interpreter that imports onnx ("" is Python).
	Python string
}

// Interpreter returns the interpreter c runs.
func (c Checker) Interpreter() string {
	if c.Python == "" {
		return Python
	}
	return c.Python
}

// Unavailable returns nil where c's interpreter can import onnx, and
// otherwise an error wrapping ErrUnavailable that names the interpreter.
func (c Checker) Unavailable() error {
	if exec.Command(c.Interpreter(), "-c", "import onnx").Run() == nil {
		return nil
	}
	return fmt.Errorf("%w: %s cannot import onnx", ErrUnavailable, c.Interpreter())
}

// Skip says why c cannot check a model of the given opset here, and how to
// make it, or "" where it can.
func (c Checker) Skip(opset int) string {
	if opset > MaxOpset {
		return fmt.Sprintf("python3-onnx checks opsets up to %d, and the model is opset %d", MaxOpset, opset)
	}
	if c.Unavailable() != nil {
		return fmt.Sprintf("%s cannot import onnx (install python3-onnx, or set %s to a Python that has it)", c.Interpreter(), PythonEnv)
	}
	return ""
}

// Available reports whether the checker can run here.
func (c Checker) Available() bool { return c.Unavailable() == nil }

// Check writes model to a temporary file and runs onnx.checker.check_model
// with full_check (strict shape inference) on it; it returns an error
// wrapping ErrUnavailable where the interpreter cannot import onnx.
func (c Checker) Check(model []byte) error {
	if err := c.Unavailable(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "onnxcheck")
	if err != nil {
		return fmt.Errorf("onnxcheck: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(path, model, 0o644); err != nil {
		return fmt.Errorf("onnxcheck: %w", err)
	}
	var out bytes.Buffer
	cmd := exec.Command(c.Interpreter(), "-c", script, path)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("onnxcheck: checker rejected the model: %w\n%s", err, out.String())
	}
	return nil
}

// Available reports whether the checker can run here in Python.
func Available() bool { return Checker{}.Available() }

// Check runs the checker in Python on model (Checker.Check).
func Check(model []byte) error { return Checker{}.Check(model) }

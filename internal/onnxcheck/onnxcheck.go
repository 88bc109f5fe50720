// Package onnxcheck runs the reference ONNX checker (Debian's python3-onnx)
// on models salt-ort writes, so tests can prove the bytes are valid ONNX and
// not only something ONNX Runtime happens to accept.
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

// ErrUnavailable reports that python3-onnx is not installed.
var ErrUnavailable = errors.New("onnxcheck: python3-onnx is not installed (apt-get install python3-onnx, or `make deps`)")

const script = `
import sys, onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
print("ok opset", [(o.domain, o.version) for o in m.opset_import])
`

// Available reports whether the checker can run here.
func Available() bool {
	return exec.Command(Python, "-c", "import onnx").Run() == nil
}

// Check writes model to a temporary file and runs onnx.checker.check_model
// with full_check (strict shape inference) on it.
func Check(model []byte) error {
	if !Available() {
		return ErrUnavailable
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
	cmd := exec.Command(Python, "-c", script, path)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("onnxcheck: checker rejected the model: %w\n%s", err, out.String())
	}
	return nil
}

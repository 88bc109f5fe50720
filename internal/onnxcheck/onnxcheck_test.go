package onnxcheck

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestMissingInterpreter points the checker at an interpreter that does not
// exist: it is unavailable, and Check says so naming the interpreter rather
// than reporting the model as rejected.
func TestMissingInterpreter(t *testing.T) {
	py := filepath.Join(t.TempDir(), "no-python3")
	c := Checker{Python: py}
	if c.Available() {
		t.Fatalf("%s is available", py)
	}
	err := c.Check([]byte("not a model"))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), py+" cannot import onnx") {
		t.Fatalf("Check with a missing interpreter: %v", err)
	}
}

// TestInterpreter checks the default and a chosen interpreter.
func TestInterpreter(t *testing.T) {
	for _, tc := range []struct{ python, want string }{{"", Python}, {"/opt/venv/bin/python", "/opt/venv/bin/python"}} {
		if got := (Checker{Python: tc.python}).Interpreter(); got != tc.want {
			t.Errorf("Checker{Python: %q}.Interpreter() = %q, want %q", tc.python, got, tc.want)
		}
	}
}

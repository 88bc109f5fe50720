package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestDiskFullHint checks that exitFor gives the fix for writes that ran
// out of space, as Go and HDF5 report them, and nothing else.
func TestDiskFullHint(t *testing.T) {
	cases := []struct {
		name string
		err  error
		hint bool
	}{
		{"ENOSPC from a write", fmt.Errorf("checkpoint: x: write data: %w", &os.PathError{Op: "write", Path: "x.tmp", Err: syscall.ENOSPC}), true},
		{"EFBIG (RLIMIT_FSIZE)", fmt.Errorf("evaluate: %w", &os.PathError{Op: "write", Path: "roc.png", Err: syscall.EFBIG}), true},
		{"EDQUOT", &os.PathError{Op: "write", Path: "x", Err: syscall.EDQUOT}, true},
		{"HDF5's text", errors.New("loader: out/GN2.validation.h5: H5Dwrite: can't write data: file write failed: errno = 28, error message = 'No space left on device'"), true},
		{"a missing file", &os.PathError{Op: "open", Path: "x.h5", Err: syscall.ENOENT}, false},
		{"an errno that only starts like one", errors.New("loader: errno = 280, something else"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ec := exitFor(c.err).(cli.ExitCoder)
			if ec.ExitCode() != ExitFailure {
				t.Errorf("exit code %d", ec.ExitCode())
			}
			if got := strings.Contains(ec.Error(), "the disk is full"); got != c.hint {
				t.Errorf("%q: hint %v, want %v", ec.Error(), got, c.hint)
			}
		})
	}
}

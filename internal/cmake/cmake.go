// Package cmake runs the CMake builds of salt-ort's C++ programs (the
// generated validation program, the Athena loader check) and checks
// beforehand that the tools are there, naming what is missing and how to
// install it.
package cmake

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// compilers are the C++ compilers looked for when $CXX is not set.
var compilers = []string{"c++", "g++", "clang++"}

// CheckTools checks for cmake and a C++ compiler ($CXX, c++, g++ or
// clang++). The errors say that `make deps` installs them; extra names
// what else it installs for the caller's build (e.g. nlohmann-json3-dev).
func CheckTools(extra string) error {
	also := ""
	if extra != "" {
		also = ", with " + extra
	}
	if _, err := exec.LookPath("cmake"); err != nil {
		return fmt.Errorf("cmake is not in $PATH: `make deps` installs it (Debian's cmake, with g++%s)", also)
	}
	if cxx := os.Getenv("CXX"); cxx != "" {
		if _, err := exec.LookPath(strings.Fields(cxx)[0]); err != nil {
			return fmt.Errorf("the C++ compiler $CXX=%s is not in $PATH: install it, unset $CXX or run `make deps`", cxx)
		}
		return nil
	}
	for _, c := range compilers {
		if _, err := exec.LookPath(c); err == nil {
			return nil
		}
	}
	return fmt.Errorf("no C++ compiler (%s) is in $PATH: `make deps` installs one (Debian's g++, with cmake%s)", strings.Join(compilers, ", "), also)
}

// Run runs cmake with args; log, if not nil, receives the command line and
// cmake's output. A failure returns the tail of the output.
func Run(ctx context.Context, log io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, "cmake", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if log != nil {
		fmt.Fprintf(log, "$ cmake %s\n", strings.Join(args, " "))
		cmd.Stdout, cmd.Stderr = io.MultiWriter(&out, log), io.MultiWriter(&out, log)
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("cmake %s: %w\n%s", strings.Join(args, " "), err, Tail(out.String()))
	}
	return nil
}

// Tail returns the last 40 lines of a command's output.
func Tail(s string) string {
	const keep = 40
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > keep {
		lines = append([]string{"..."}, lines[len(lines)-keep:]...)
	}
	return strings.Join(lines, "\n")
}

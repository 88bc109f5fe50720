// Package ortcompat runs a model in an ONNX Runtime release other than the
// one salt-ort links, each release in a process of its own.
//
// ONNX Runtime allows one library per process, and the binding salt-ort
// trains with (onnxruntime_go, and package runtime's C layer) asks the
// library for the C API of ONNX Runtime 1.24 and later, which older
// releases do not offer. ortcompat therefore starts the running program
// again as a worker (the environment variable WorkerEnv tells it so): the
// worker loads the requested library with dlopen, asks it for the C API
// version of its own release, runs the model on the inputs the parent sends
// and sends back the outputs. A library that cannot load the model, or a
// worker that crashes, is reported as an error naming the release; the
// parent is never affected.
//
// The worker is entered from this package's init function, so any program
// that imports ortcompat (salt-ort, and the test binaries of the packages
// that use it) can be its own worker.
package ortcompat

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// WorkerEnv is the environment variable that makes a program importing
// ortcompat serve as a worker: it reads a request from its standard input,
// writes the response to its standard output and exits.
const WorkerEnv = "SALT_ORT_COMPAT_WORKER"

// VersionsEnv names a directory holding VERSION/libonnxruntime.so for each
// installed release, replacing the install location of `make deps`.
const VersionsEnv = "SALT_ORT_VERSIONS"

// installedVersions is where third_party/onnxruntime/fetch-versions.sh
// installs the releases, relative to the repository root.
const installedVersions = "third_party/onnxruntime/versions"

// Tensor is a dense tensor passed to or from the worker.
type Tensor struct {
	Name  string
	Type  int32 // ONNX element type (1 float, 3 int8, 7 int64, 9 bool)
	Shape []int64
	Data  []byte // little-endian elements
}

// Request is what the parent sends the worker.
type Request struct {
	Library string   // path of libonnxruntime.so
	Model   []byte   // serialised ONNX model
	Threads int      // intra-op threads (0: ONNX Runtime's choice)
	Outputs []string // output names, in the order wanted
	Calls   [][]Tensor
	// Call names one call in messages (e.g. "jet"; default "call").
	Call string
}

// Stage says how far a worker got.
type Stage string

// The stages of a worker's run.
const (
	StageLoad    Stage = "load the library"
	StageSession Stage = "load the model"
	StageRun     Stage = "run the model"
	StageDone    Stage = "done"
)

// Response is what the worker sends back.
type Response struct {
	Version string // the library's own version string
	API     int    // the C API version used
	Stage   Stage  // StageDone, or the stage that failed
	Err     string // ONNX Runtime's message when Stage is not StageDone
	Outputs [][]Tensor
}

// Error is a failure of the library in a worker: it could not be loaded,
// could not load the model, or failed running it.
type Error struct {
	Version string // the release asked for
	Stage   Stage
	Msg     string
}

func (e *Error) Error() string {
	return fmt.Sprintf("ONNX Runtime %s could not %s: %s", e.Version, e.Stage, e.Msg)
}

func init() {
	if os.Getenv(WorkerEnv) != "1" {
		return
	}
	os.Unsetenv(WorkerEnv)
	if err := serve(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "salt-ort ONNX Runtime worker:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serve answers one request.
func serve(r io.Reader, w io.Writer) error {
	var req Request
	if err := gob.NewDecoder(r).Decode(&req); err != nil {
		return fmt.Errorf("reading the request: %w", err)
	}
	resp := answer(&req)
	return gob.NewEncoder(w).Encode(resp)
}

// answer loads the library and runs every call of the request.
func answer(req *Request) *Response {
	lib, err := load(req.Library)
	if err != nil {
		return &Response{Stage: StageLoad, Err: err.Error()}
	}
	resp := &Response{Version: lib.version, API: lib.api}
	s, err := newSession(req.Model, req.Threads)
	if err != nil {
		resp.Stage, resp.Err = StageSession, err.Error()
		return resp
	}
	defer s.close()
	for i, call := range req.Calls {
		outs, err := s.run(call, req.Outputs)
		if err != nil {
			unit := req.Call
			if unit == "" {
				unit = "call"
			}
			resp.Stage, resp.Err = StageRun, fmt.Sprintf("%s %d: %v", unit, i, err)
			resp.Outputs = nil
			return resp
		}
		resp.Outputs = append(resp.Outputs, outs)
	}
	resp.Stage = StageDone
	return resp
}

// versionPattern is what a release name looks like.
var versionPattern = regexp.MustCompile(`^1\.[0-9]+\.[0-9]+$`)

// Library returns the installed library of ONNX Runtime release version
// (e.g. "1.14.0"): $SALT_ORT_VERSIONS/VERSION/libonnxruntime.so, else
// third_party/onnxruntime/versions/VERSION/libonnxruntime.so found by
// walking up from the working directory.
func Library(version string) (string, error) {
	if !versionPattern.MatchString(version) {
		return "", fmt.Errorf("ortcompat: ONNX Runtime release %q: want a release number such as 1.14.0", version)
	}
	rel := filepath.Join(version, "libonnxruntime.so")
	if dir := os.Getenv(VersionsEnv); dir != "" {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("ortcompat: ONNX Runtime %s is not installed in $%s (%s): run third_party/onnxruntime/fetch-versions.sh %s", version, VersionsEnv, dir, version)
		}
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("ortcompat: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, installedVersions)); err == nil {
			p := filepath.Join(dir, installedVersions, rel)
			if _, err := os.Stat(p); err != nil {
				break
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", fmt.Errorf("ortcompat: ONNX Runtime %s is not installed: run third_party/onnxruntime/fetch-versions.sh %s (make deps installs the default set) or set $%s", version, version, VersionsEnv)
}

// Run sends the request to a new worker process and returns its outputs.
// A library that fails, or a worker that dies, gives an *Error naming
// version.
func Run(ctx context.Context, version string, req *Request) (*Response, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("ortcompat: finding this program to start a worker: %w", err)
	}
	var in bytes.Buffer
	if err := gob.NewEncoder(&in).Encode(req); err != nil {
		return nil, fmt.Errorf("ortcompat: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), WorkerEnv+"=1")
	cmd.Stdin = &in
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	runErr := cmd.Run()
	var resp Response
	if decErr := gob.NewDecoder(&out).Decode(&resp); decErr != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		msg := strings.TrimSpace(lastLines(stderr.String(), 5))
		if runErr != nil {
			msg = strings.TrimSpace(runErr.Error() + "; " + msg)
		}
		return nil, &Error{Version: version, Stage: StageRun, Msg: "the worker process died: " + msg}
	}
	if resp.Stage != StageDone {
		return &resp, &Error{Version: version, Stage: resp.Stage, Msg: firstLine(resp.Err)}
	}
	if len(resp.Outputs) != len(req.Calls) {
		return nil, &Error{Version: version, Stage: StageRun, Msg: fmt.Sprintf("the worker answered %d of %d calls", len(resp.Outputs), len(req.Calls))}
	}
	return &resp, nil
}

// sourceLocation matches the source file and C++ function ONNX Runtime
// puts before the reason in its messages.
var sourceLocation = regexp.MustCompile(`/onnxruntime_src/\S+ .*?\) ([A-Za-z])`)

// firstLine shortens ONNX Runtime's messages, some of which carry a
// source location and a stack, to the reason on their first line.
func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return sourceLocation.ReplaceAllString(s, "$1")
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// IsError reports whether err is a failure of the library (as opposed to
// salt-ort's own, such as a missing installation).
func IsError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

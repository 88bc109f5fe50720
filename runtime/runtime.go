// Package runtime runs ONNX models built by salt-ort in ONNX Runtime.
//
// It wraps github.com/yalue/onnxruntime_go: it finds and loads the ONNX
// Runtime shared library, creates sessions from in-memory model bytes with
// the options salt-ort needs (thread counts, deterministic execution) and
// runs them on caller-owned tensors, so that a training loop can hand the new
// parameters of one step to the next without copies.
//
// ONNX Runtime keeps one environment per process; onnxruntime_go holds it in
// package state. Open therefore loads the library once per process and later
// calls must name the same library.
package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// LibraryEnv is the environment variable that names the ONNX Runtime shared
// library when no path is given explicitly.
const LibraryEnv = "SALT_ORT_LIB"

// installedLibrary is where `make deps` installs ONNX Runtime, relative to
// the repository root.
const installedLibrary = "third_party/onnxruntime/dist/lib/libonnxruntime.so"

// buildLibraryPath may be set at link time
// (-ldflags "-X github.com/salt-ort/salt-ort/runtime.buildLibraryPath=...")
// so that an installed binary finds the library it was built against.
var buildLibraryPath string

// LibraryPath resolves the ONNX Runtime shared library to load. In order it
// takes: explicit (a command-line flag), $SALT_ORT_LIB, the path recorded at
// build time, and the Makefile's install location found by walking up from
// the working directory to the repository root.
func LibraryPath(explicit string) (string, error) {
	candidates := []struct{ path, from string }{
		{explicit, "the --ort-lib flag"},
		{os.Getenv(LibraryEnv), "$" + LibraryEnv},
		{buildLibraryPath, "the build-time default"},
	}
	for _, c := range candidates {
		if c.path == "" {
			continue
		}
		if _, err := os.Stat(c.path); err != nil {
			return "", fmt.Errorf("runtime: ONNX Runtime library %s (from %s): %w", c.path, c.from, err)
		}
		return c.path, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("runtime: finding ONNX Runtime: %w", err)
	}
	for {
		p := filepath.Join(dir, installedLibrary)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", fmt.Errorf("runtime: ONNX Runtime library not found: set $%s or --ort-lib, or run `make deps` to install it under %s", LibraryEnv, installedLibrary)
}

// Runtime is a loaded ONNX Runtime library. It is safe for concurrent use.
type Runtime struct {
	path    string
	version string
	c       capiState // device.go
}

var (
	loadMu sync.Mutex
	loaded *Runtime
)

// Open loads the ONNX Runtime shared library at path (see LibraryPath) and
// initialises its environment. Opening the same library again returns the
// same Runtime; a different library in the same process is an error, since
// ONNX Runtime allows one environment per process.
func Open(path string) (*Runtime, error) {
	loadMu.Lock()
	defer loadMu.Unlock()
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("runtime: %s: %w", path, err)
	}
	if loaded != nil {
		if loaded.path != abs {
			return nil, fmt.Errorf("runtime: ONNX Runtime already loaded from %s; cannot also load %s in one process", loaded.path, abs)
		}
		return loaded, nil
	}
	ort.SetSharedLibraryPath(abs)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return nil, fmt.Errorf("runtime: loading ONNX Runtime from %s: %w", abs, err)
	}
	loaded = &Runtime{path: abs, version: ort.GetVersion()}
	return loaded, nil
}

// Path returns the absolute path of the loaded library.
func (r *Runtime) Path() string { return r.path }

// Version returns the ONNX Runtime version string, e.g. "1.29.0".
func (r *Runtime) Version() string { return r.version }

// Options configure a session.
type Options struct {
	// IntraOpThreads is the number of threads one operator may use;
	// 0 lets ONNX Runtime choose. Results are reproducible bit for bit only
	// for a fixed thread count.
	IntraOpThreads int
	// InterOpThreads is the number of operators that may run at once;
	// 0 or 1 runs the graph sequentially, which keeps results deterministic.
	InterOpThreads int
	// DisableOptimizations turns off ONNX Runtime's graph rewrites, so that
	// the graph runs exactly as written (useful to compare graphs op by op).
	DisableOptimizations bool
	// Optimization limits ONNX Runtime's graph rewrites to a level below
	// its default (OptimizeAll); DisableOptimizations takes precedence.
	Optimization Optimization
	// NoMemPattern turns off ONNX Runtime's memory pattern: after a first
	// run, the pattern allocates one block laid out for every intermediate
	// tensor of a run at once. For a training step, whose tensors live
	// from the forward pass to the backward for very different spans, that
	// block holds far more than is ever alive at once (GN2's step at batch
	// 400: 9.8 MB per jet with it, 5.3 without); without it the arena
	// reuses freed tensors' memory tensor by tensor.
	NoMemPattern bool
	// NoCPUArena turns off ONNX Runtime's CPU arena: every tensor is
	// allocated from and returned to the C allocator.
	NoCPUArena bool
	// ProfilePrefix, when set, turns on ONNX Runtime's profiler: closing
	// the session writes a Chrome-trace JSON file of every node's run
	// times, named <ProfilePrefix>_<date and time>.json.
	ProfilePrefix string
}

// Optimization is a level of ONNX Runtime's graph rewrites.
type Optimization int

// The levels of ONNX Runtime's graph rewrites.
const (
	// OptimizeAll is ONNX Runtime's default (ORT_ENABLE_ALL), which
	// salt-ort's validation and the generated C++ program use.
	OptimizeAll Optimization = iota
	// OptimizeExtended is ORT_ENABLE_EXTENDED, the level ATLAS's
	// flavour-tagging loaders set.
	OptimizeExtended
	// OptimizeBasic is ORT_ENABLE_BASIC.
	OptimizeBasic
)

// String returns ONNX Runtime's name of the level.
func (o Optimization) String() string {
	switch o {
	case OptimizeAll:
		return "ORT_ENABLE_ALL"
	case OptimizeExtended:
		return "ORT_ENABLE_EXTENDED"
	case OptimizeBasic:
		return "ORT_ENABLE_BASIC"
	}
	return fmt.Sprintf("Optimization(%d)", int(o))
}

// Session is a model loaded for execution. A Session may be run from one
// goroutine at a time.
type Session struct {
	sess    *ort.DynamicAdvancedSession
	inputs  []ort.InputOutputInfo
	outputs []ort.InputOutputInfo
}

// NewSession creates a session from serialised ONNX model bytes. name is
// used in error messages (a file path or a graph kind such as "train_step").
func (r *Runtime) NewSession(name string, model []byte, opts Options) (*Session, error) {
	ins, outs, err := modelIO(model)
	if err != nil {
		return nil, fmt.Errorf("runtime: %s: reading model inputs and outputs: %w", name, err)
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("runtime: %s: session options: %w", name, err)
	}
	defer so.Destroy()
	if err := configure(so, opts); err != nil {
		return nil, fmt.Errorf("runtime: %s: %w", name, err)
	}
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(model, names(ins), names(outs), so)
	if err != nil {
		return nil, fmt.Errorf("runtime: %s: creating session: %w", name, err)
	}
	return &Session{sess: sess, inputs: ins, outputs: outs}, nil
}

func configure(so *ort.SessionOptions, opts Options) error {
	if opts.IntraOpThreads > 0 {
		if err := so.SetIntraOpNumThreads(opts.IntraOpThreads); err != nil {
			return fmt.Errorf("intra-op threads: %w", err)
		}
	}
	if opts.InterOpThreads > 1 {
		if err := so.SetExecutionMode(ort.ExecutionModeParallel); err != nil {
			return fmt.Errorf("execution mode: %w", err)
		}
		if err := so.SetInterOpNumThreads(opts.InterOpThreads); err != nil {
			return fmt.Errorf("inter-op threads: %w", err)
		}
	}
	level := ort.GraphOptimizationLevel(ort.GraphOptimizationLevelEnableAll)
	switch {
	case opts.DisableOptimizations:
		level = ort.GraphOptimizationLevelDisableAll
	case opts.Optimization == OptimizeExtended:
		level = ort.GraphOptimizationLevelEnableExtended
	case opts.Optimization == OptimizeBasic:
		level = ort.GraphOptimizationLevelEnableBasic
	case opts.Optimization != OptimizeAll:
		return fmt.Errorf("graph optimisation level: unknown %v", opts.Optimization)
	}
	if level != ort.GraphOptimizationLevelEnableAll {
		if err := so.SetGraphOptimizationLevel(level); err != nil {
			return fmt.Errorf("graph optimisation level: %w", err)
		}
	}
	if opts.NoMemPattern {
		if err := so.SetMemPattern(false); err != nil {
			return fmt.Errorf("memory pattern: %w", err)
		}
	}
	if opts.NoCPUArena {
		if err := so.SetCpuMemArena(false); err != nil {
			return fmt.Errorf("cpu arena: %w", err)
		}
	}
	if opts.ProfilePrefix != "" {
		if err := so.EnableProfiling(opts.ProfilePrefix); err != nil {
			return fmt.Errorf("profiling: %w", err)
		}
	}
	return nil
}

func names(infos []ort.InputOutputInfo) []string {
	out := make([]string, len(infos))
	for i, info := range infos {
		out[i] = info.Name
	}
	return out
}

// InputNames returns the model's input names in graph order, the order Run
// expects its inputs in.
func (s *Session) InputNames() []string { return names(s.inputs) }

// OutputNames returns the model's output names in graph order, the order
// Run fills its outputs in.
func (s *Session) OutputNames() []string { return names(s.outputs) }

// Run executes the model. inputs and outputs follow InputNames and
// OutputNames. An output may be nil, in which case ONNX Runtime allocates it
// and Run stores the new value in outputs; the caller then owns it and must
// Destroy it.
func (s *Session) Run(inputs, outputs []Value) error {
	if len(inputs) != len(s.inputs) {
		return fmt.Errorf("runtime: run: got %d inputs, model wants %d (%v)", len(inputs), len(s.inputs), s.InputNames())
	}
	if len(outputs) != len(s.outputs) {
		return fmt.Errorf("runtime: run: got %d outputs, model has %d (%v)", len(outputs), len(s.outputs), s.OutputNames())
	}
	for i, v := range inputs {
		if v == nil {
			return fmt.Errorf("runtime: run: input %q is nil", s.inputs[i].Name)
		}
	}
	if err := s.sess.Run(inputs, outputs); err != nil {
		return fmt.Errorf("runtime: run: %w", err)
	}
	return nil
}

// Close releases the session.
func (s *Session) Close() error {
	if s.sess == nil {
		return nil
	}
	err := s.sess.Destroy()
	s.sess = nil
	if err != nil {
		return fmt.Errorf("runtime: closing session: %w", err)
	}
	return nil
}

// Value is a tensor or other value passed to or returned from a session.
type Value = ort.Value

// Tensor is a tensor whose data lives in Go memory.
type Tensor[T ort.TensorData] = ort.Tensor[T]

// NewTensor wraps data (not copied) as a tensor of the given shape.
func NewTensor[T ort.TensorData](shape []int64, data []T) (*Tensor[T], error) {
	t, err := ort.NewTensor(ort.NewShape(shape...), data)
	if err != nil {
		return nil, fmt.Errorf("runtime: tensor %v: %w", shape, err)
	}
	return t, nil
}

// NewEmptyTensor allocates a zeroed tensor of the given shape.
func NewEmptyTensor[T ort.TensorData](shape []int64) (*Tensor[T], error) {
	t, err := ort.NewEmptyTensor[T](ort.NewShape(shape...))
	if err != nil {
		return nil, fmt.Errorf("runtime: tensor %v: %w", shape, err)
	}
	return t, nil
}

// Destroy releases every non-nil value and joins their errors.
func Destroy(values ...Value) error {
	var errs []error
	for _, v := range values {
		if v != nil {
			errs = append(errs, v.Destroy())
		}
	}
	return errors.Join(errs...)
}

// Scalar is a rank-0 tensor whose value lives in Go memory (a loss, a
// learning rate, a step counter).
type Scalar[T ort.TensorData] = ort.Scalar[T]

// NewScalar makes a rank-0 tensor holding v.
func NewScalar[T ort.TensorData](v T) (*Scalar[T], error) {
	s, err := ort.NewScalar(v)
	if err != nil {
		return nil, fmt.Errorf("runtime: scalar: %w", err)
	}
	return s, nil
}

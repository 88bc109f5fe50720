package run

import (
	"fmt"
	"io"
	goruntime "runtime"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/runtime"
)

// Tensors is what the training loop and the evaluator need of a session's
// bound inputs and outputs. runtime.Binding keeps them in Go memory for
// ONNX Runtime's default CPU session; runtime.DeviceBinding keeps them on
// an execution provider's device, the parameters and optimizer state
// resident there between steps.
type Tensors interface {
	Float32(name string) ([]float32, error)
	Int64(name string) ([]int64, error)
	Bool(name string) ([]bool, error)
	SetScalar(name string, v float32) error
	Scalar(name string) (float32, error)
	Write(name string, src []float32) error
	Read(name string, dst []float32) error
	Swap(in, out string) error
	Run() error
	Close() error
}

// Placement says where a run's graphs execute.
type Placement struct {
	rt *runtime.Runtime
	// Threads is each session's intra-op thread count.
	Threads int
	// Device is nil for ONNX Runtime's default CPU session, else the
	// execution provider device the graphs are placed on.
	Device *runtime.Device
	// providerOptions pass to every session on device.
	providerOptions map[string]string
	// cudaGraph asks for the training step to be captured as a CUDA graph.
	cudaGraph bool
	// Index is the device's position among the provider's devices (its
	// CUDA ordinal).
	Index int
	// ProfilePrefix, when set, turns on ONNX Runtime's profiler in every
	// session opened: each writes <ProfilePrefix>_<date and time>.json,
	// the time of every node run, when it closes.
	ProfilePrefix string
	log           io.Writer
}

// NewPlacement places the graphs of configuration c: training.device
// "cpu" on the default CPU session, "cuda" on the CUDA provider (registered
// from training.cuda_provider). provider, when not "", overrides it with a
// provider by name on the device path; tests use runtime.CPUProvider to run
// the CUDA code path on the CPU.
func NewPlacement(rt *runtime.Runtime, c *config.Config, provider string, index int, log io.Writer) (*Placement, error) {
	p := &Placement{rt: rt, Threads: c.Training.Threads, log: log, providerOptions: map[string]string{}, Index: index}
	if p.Threads == 0 {
		p.Threads = goruntime.NumCPU()
	}
	if provider == "" && c.Training.Device == "cuda" {
		if err := registerCUDA(rt, c.Training.CUDAProvider); err != nil {
			return nil, fmt.Errorf("run: training.device = \"cuda\": %w", err)
		}
		provider = runtime.CUDAProvider
		p.cudaGraph = c.Training.CUDAGraph
		// TensorFloat-32 products only when asked for: fp32 means fp32, as
		// in PyTorch's default for matrix products.
		p.providerOptions["use_tf32"] = "0"
		if c.Training.Precision == "tf32" {
			p.providerOptions["use_tf32"] = "1"
		}
	}
	if provider == "" {
		return p, nil
	}
	dev, err := rt.DeviceAt(provider, index)
	if err != nil {
		return nil, fmt.Errorf("run: training.device = %q: %w", c.Training.Device, err)
	}
	p.Device = &dev
	return p, nil
}

// registerCUDA registers ONNX Runtime's CUDA provider, from the library
// explicit names (training.cuda_provider) or the default places.
func registerCUDA(rt *runtime.Runtime, explicit string) error {
	lib, err := rt.CUDALibraryPath(explicit)
	if err != nil {
		return err
	}
	if err := rt.RegisterProvider("cuda", lib); err != nil {
		return fmt.Errorf("%w (the provider needs CUDA 13's libcudart, libcublas and libcurand and cuDNN 9 on the library path, e.g. LD_LIBRARY_PATH=/usr/local/cuda/lib64)", err)
	}
	return nil
}

// cudaAvailable reports why a run's graphs cannot run on the CUDA provider
// here (nil where they can): no provider library, no CUDA libraries for
// it, or no GPU.
func cudaAvailable(rt *runtime.Runtime, c *config.Config) error {
	_, err := CUDADevice(rt, c.Training.CUDAProvider)
	return err
}

// CUDADevice registers ONNX Runtime's CUDA provider, from the library
// explicit names (a training.cuda_provider; "" looks in the default
// places, see runtime.CUDALibraryPath), and returns its first GPU. The
// error says why there is none here and how to fix it.
func CUDADevice(rt *runtime.Runtime, explicit string) (runtime.Device, error) {
	if err := registerCUDA(rt, explicit); err != nil {
		return runtime.Device{}, err
	}
	return rt.DeviceAt(runtime.CUDAProvider, 0)
}

// EvalDevice resolves where a run's evaluation graph runs: "cpu" or
// "cuda". want is a --device flag's value: "cpu", or "cuda", which must be
// available here, or "" for the configuration's training.device. A run
// trained on a GPU (training.device = "cuda") is evaluated on the CPU where
// CUDA is not available here, and note says so and why; an explicit
// --device cuda that cannot be honoured is an error naming the fix.
func EvalDevice(rt *runtime.Runtime, c *config.Config, want string) (device, note string, err error) {
	switch want {
	case "cpu":
		return "cpu", "", nil
	case "", "cuda":
	default:
		return "", "", fmt.Errorf("run: --device %q: give cpu or cuda", want)
	}
	if want == "" && c.Training.Device != "cuda" {
		return "cpu", "", nil
	}
	if err := cudaAvailable(rt, c); err != nil {
		if want == "cuda" {
			return "", "", fmt.Errorf("run: --device cuda: %w; or run on the CPU with --device cpu", err)
		}
		return "cpu", fmt.Sprintf("the run was trained with training.device = \"cuda\", which is not available here, so it runs on the CPU (--device cpu runs there without this note, --device cuda makes it an error): %v", err), nil
	}
	return "cuda", "", nil
}

// String names the placement for logs.
func (p *Placement) String() string {
	if p.Device == nil {
		return fmt.Sprintf("cpu (%d threads)", p.Threads)
	}
	return p.Device.String()
}

// Session is an ONNX Runtime session with its bound tensors.
type Session struct {
	sess interface{ Close() error }
	// Bind is the session's inputs and outputs.
	Bind Tensors
}

// Close releases the session and its bound tensors; a nil Session is
// closed already.
func (o *Session) Close() error {
	if o == nil {
		return nil
	}
	var err error
	if o.Bind != nil {
		err = o.Bind.Close()
	}
	if o.sess != nil {
		if cerr := o.sess.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// Open creates a session for g and binds its inputs and outputs. On a
// device, the tensors named resident stay there between runs; capture asks
// for the graph to be captured as a CUDA graph when the placement allows,
// falling back (and saying why) where ONNX Runtime cannot.
func (p *Placement) Open(g *graph.Graph, resident []string, capture bool) (*Session, error) {
	return p.OpenWith(g, graph.ModelOptions{}, resident, capture)
}

// OpenWith is Open with options for writing the model (such as parameter
// values as initializers).
func (p *Placement) OpenWith(g *graph.Graph, mo graph.ModelOptions, resident []string, capture bool) (*Session, error) {
	model, err := g.Marshal(mo)
	if err != nil {
		return nil, err
	}
	opts := runtime.Options{IntraOpThreads: p.Threads, ProfilePrefix: p.ProfilePrefix}
	if p.Device == nil {
		// A training step's tensors live for very different spans; the
		// memory pattern's one block would hold them all at once.
		opts.NoMemPattern = true
		sess, err := p.rt.NewSession(g.Name(), model, opts)
		if err != nil {
			return nil, err
		}
		bind, err := runtime.NewBinding(sess, TensorSpecs(g))
		if err != nil {
			sess.Close()
			return nil, err
		}
		return &Session{sess: sess, Bind: bind}, nil
	}
	capture = capture && p.cudaGraph
	providerOptions := map[string]string{}
	for k, v := range p.providerOptions {
		providerOptions[k] = v
	}
	if capture {
		providerOptions["enable_cuda_graph"] = "1"
	}
	sess, err := p.rt.NewDeviceSession(g.Name(), model, *p.Device, runtime.DeviceOptions{Options: opts, ProviderOptions: providerOptions})
	if err != nil && capture {
		fmt.Fprintf(p.log, "cuda_graph: %s runs without CUDA graph capture: %v\n", g.Name(), err)
		delete(providerOptions, "enable_cuda_graph")
		capture = false
		sess, err = p.rt.NewDeviceSession(g.Name(), model, *p.Device, runtime.DeviceOptions{Options: opts, ProviderOptions: providerOptions})
	}
	if err != nil {
		return nil, err
	}
	bind, err := runtime.NewDeviceBinding(sess, TensorSpecs(g), runtime.DeviceBindingOptions{Resident: resident, Fixed: capture})
	if err != nil {
		sess.Close()
		return nil, err
	}
	if capture {
		fmt.Fprintf(p.log, "cuda_graph: %s is captured on its first runs and replayed after\n", g.Name())
	}
	return &Session{sess: sess, Bind: bind}, nil
}

// TensorSpecs lists the tensors of a graph's inputs and outputs for a
// binding.
func TensorSpecs(g *graph.Graph) []runtime.TensorSpec {
	var out []runtime.TensorSpec
	for _, ts := range [][]*graph.Tensor{g.Inputs(), g.Outputs()} {
		for _, x := range ts {
			out = append(out, runtime.TensorSpec{Name: x.Name(), Type: runtime.ElementType(x.DType()), Shape: x.Shape()})
		}
	}
	return out
}

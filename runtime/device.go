package runtime

// This file is the thin cgo layer the guide allows where onnxruntime_go
// stops: plugin execution providers (GetEpDevices,
// SessionOptionsAppendExecutionProvider_V2), tensors allocated in device
// memory, CopyTensors and IoBinding over those tensors. It calls the C API of
// the library onnxruntime_go already loaded (the same dlopen handle, hence
// the same OrtEnv), through the headers `make deps` unpacks from the pinned
// ONNX Runtime package.

/*
#cgo CFLAGS: -I${SRCDIR}/../third_party/onnxruntime/dist/include
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include "onnxruntime_c_api.h"

static const OrtApi *sr_api;

// sr_init finds the C API of the library at path, which onnxruntime_go has
// already loaded; NULL on success, else a message.
static const char *sr_init(const char *path) {
	if (sr_api) return NULL;
	void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
	if (!h) h = dlopen(path, RTLD_NOW);
	if (!h) return dlerror();
	const OrtApiBase *(*base)(void) = (const OrtApiBase *(*)(void))dlsym(h, "OrtGetApiBase");
	if (!base) return "the library has no OrtGetApiBase";
	sr_api = base()->GetApi(ORT_API_VERSION);
	if (!sr_api) return "the library does not offer the C API version salt-ort was built with";
	return NULL;
}

// sr_err turns a status into a malloc'd message (NULL for success) and
// releases the status.
static char *sr_err(OrtStatus *s) {
	if (!s) return NULL;
	char *m = strdup(sr_api->GetErrorMessage(s));
	sr_api->ReleaseStatus(s);
	return m;
}

static char *sr_env(OrtEnv **out) {
	return sr_err(sr_api->CreateEnv(ORT_LOGGING_LEVEL_ERROR, "salt-ort", out));
}

static char *sr_register(OrtEnv *env, const char *name, const char *path) {
	return sr_err(sr_api->RegisterExecutionProviderLibrary(env, name, path));
}

static char *sr_devices(OrtEnv *env, const OrtEpDevice *const **devs, size_t *n) {
	return sr_err(sr_api->GetEpDevices(env, devs, n));
}

static const OrtEpDevice *sr_device_at(const OrtEpDevice *const *devs, size_t i) { return devs[i]; }
static const char *sr_ep_name(const OrtEpDevice *d) { return sr_api->EpDevice_EpName(d); }
static const char *sr_ep_vendor(const OrtEpDevice *d) { return sr_api->EpDevice_EpVendor(d); }
static int sr_hw_type(const OrtEpDevice *d) { return (int)sr_api->HardwareDevice_Type(sr_api->EpDevice_Device(d)); }

static const OrtMemoryInfo *sr_memory(const OrtEpDevice *d, int host) {
	return sr_api->EpDevice_MemoryInfo(d, host ? OrtDeviceMemoryType_HOST_ACCESSIBLE : OrtDeviceMemoryType_DEFAULT);
}

static char *sr_allocator(OrtEnv *env, const OrtMemoryInfo *mi, OrtAllocator **out) {
	if (!mi) return sr_err(sr_api->GetAllocatorWithDefaultOptions(out));
	return sr_err(sr_api->GetSharedAllocator(env, mi, out));
}

static char *sr_session(OrtEnv *env, const void *model, size_t len, const OrtEpDevice *dev,
                        const char *const *keys, const char *const *vals, size_t n,
                        int intra, int noopt, OrtSession **out) {
	OrtSessionOptions *so = NULL;
	char *e = sr_err(sr_api->CreateSessionOptions(&so));
	if (e) return e;
	if (!e && intra > 0) e = sr_err(sr_api->SetIntraOpNumThreads(so, intra));
	if (!e && noopt) e = sr_err(sr_api->SetSessionGraphOptimizationLevel(so, ORT_DISABLE_ALL));
	if (!e) e = sr_err(sr_api->SessionOptionsAppendExecutionProvider_V2(so, env, &dev, 1, keys, vals, n));
	if (!e) e = sr_err(sr_api->CreateSessionFromArray(env, model, len, so, out));
	sr_api->ReleaseSessionOptions(so);
	return e;
}

static char *sr_tensor(OrtAllocator *a, const int64_t *shape, size_t rank, int type, OrtValue **out, void **data) {
	char *e = sr_err(sr_api->CreateTensorAsOrtValue(a, shape, rank, (ONNXTensorElementDataType)type, out));
	if (e) return e;
	return sr_err(sr_api->GetTensorMutableData(*out, data));
}

static char *sr_copy(OrtEnv *env, OrtValue **src, OrtValue **dst, size_t n) {
	return sr_err(sr_api->CopyTensors(env, (const OrtValue *const *)src, dst, NULL, n));
}

static char *sr_binding(OrtSession *s, OrtIoBinding **out) { return sr_err(sr_api->CreateIoBinding(s, out)); }
static char *sr_bind_input(OrtIoBinding *b, const char *name, OrtValue *v) { return sr_err(sr_api->BindInput(b, name, v)); }
static char *sr_bind_output(OrtIoBinding *b, const char *name, OrtValue *v) { return sr_err(sr_api->BindOutput(b, name, v)); }
static char *sr_run(OrtSession *s, OrtIoBinding *b) { return sr_err(sr_api->RunWithBinding(s, NULL, b)); }

// sr_stats reads an allocator's statistics as key/value pairs; *kv must be
// released with sr_release_kv.
static char *sr_stats(OrtAllocator *a, OrtKeyValuePairs **kv, const char *const **keys, const char *const **vals, size_t *n) {
	char *e = sr_err(sr_api->AllocatorGetStats(a, kv));
	if (e) return e;
	sr_api->GetKeyValuePairs(*kv, keys, vals, n);
	return NULL;
}
static const char *sr_str_at(const char *const *s, size_t i) { return s[i]; }
// sr_cuda_used reports the GPU memory in use (total - free) through the CUDA
// runtime the CUDA provider loaded; 0 and -1 when it is not loaded.
static int sr_cuda_used(size_t *used) {
	void *h = dlopen("libcudart.so.13", RTLD_NOW | RTLD_NOLOAD);
	if (!h) return -1;
	int (*info)(size_t *, size_t *) = (int (*)(size_t *, size_t *))dlsym(h, "cudaMemGetInfo");
	if (!info) return -1;
	size_t free = 0, total = 0;
	if (info(&free, &total) != 0) return -1;
	*used = total - free;
	return 0;
}
static void sr_release_kv(OrtKeyValuePairs *kv) { sr_api->ReleaseKeyValuePairs(kv); }
static void sr_release_value(OrtValue *v) { sr_api->ReleaseValue(v); }
static void sr_release_binding(OrtIoBinding *b) { sr_api->ReleaseIoBinding(b); }
static void sr_release_session(OrtSession *s) { sr_api->ReleaseSession(s); }
*/
import "C"

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// Provider names of the execution providers salt-ort places sessions on.
const (
	CPUProvider  = "CPUExecutionProvider"
	CUDAProvider = "CUDAExecutionProvider"
)

// cError converts a message returned by the C layer and frees it.
func cError(msg *C.char) error {
	if msg == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(msg))
	return fmt.Errorf("%s", C.GoString(msg))
}

// capiState is the C layer's hold on the process's environment and the
// provider libraries registered in it.
type capiState struct {
	once       sync.Once
	env        *C.OrtEnv
	err        error
	mu         sync.Mutex
	registered map[string]string
}

// capi returns the process's OrtEnv for the C layer, creating the C API
// binding on first use. ONNX Runtime keeps one environment per process, so
// CreateEnv hands back the one onnxruntime_go made.
func (r *Runtime) capi() (*C.OrtEnv, error) {
	c := &r.c
	c.once.Do(func() {
		path := C.CString(r.path)
		defer C.free(unsafe.Pointer(path))
		if msg := C.sr_init(path); msg != nil {
			c.err = fmt.Errorf("runtime: %s: %s", r.path, C.GoString(msg))
			return
		}
		var env *C.OrtEnv
		if err := cError(C.sr_env(&env)); err != nil {
			c.err = fmt.Errorf("runtime: environment: %w", err)
			return
		}
		c.env = env
	})
	return c.env, c.err
}

// RegisterProvider loads an execution provider library (a plugin EP such
// as ONNX Runtime's CUDA provider, libonnxruntime_providers_cuda.so) under
// name, after which Devices lists its devices. Registering the same name
// twice is an error from ONNX Runtime; callers register once per process.
func (r *Runtime) RegisterProvider(name, library string) error {
	env, err := r.capi()
	if err != nil {
		return err
	}
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	if prev, ok := r.c.registered[name]; ok {
		if prev == library {
			return nil
		}
		return fmt.Errorf("runtime: provider %q is already registered from %s", name, prev)
	}
	cname, cpath := C.CString(name), C.CString(library)
	defer C.free(unsafe.Pointer(cname))
	defer C.free(unsafe.Pointer(cpath))
	if err := cError(C.sr_register(env, cname, cpath)); err != nil {
		return fmt.Errorf("runtime: registering execution provider %s: %w", library, err)
	}
	if r.c.registered == nil {
		r.c.registered = map[string]string{}
	}
	r.c.registered[name] = library
	return nil
}

// Device is a device an execution provider can run sessions on, as ONNX
// Runtime lists it.
type Device struct {
	// Provider is the execution provider's name, e.g. CUDAProvider.
	Provider string
	// Vendor is the provider's vendor.
	Vendor string
	// Kind is the hardware: "cpu", "gpu" or "npu".
	Kind string
	ep   *C.OrtEpDevice
}

func (d Device) String() string { return d.Provider + " (" + d.Kind + ")" }

// Devices lists the devices of the registered execution providers and of
// the CPU provider built into the library.
func (r *Runtime) Devices() ([]Device, error) {
	env, err := r.capi()
	if err != nil {
		return nil, err
	}
	var list **C.OrtEpDevice
	var n C.size_t
	if err := cError(C.sr_devices(env, &list, &n)); err != nil {
		return nil, fmt.Errorf("runtime: listing devices: %w", err)
	}
	kinds := map[C.int]string{C.OrtHardwareDeviceType_CPU: "cpu", C.OrtHardwareDeviceType_GPU: "gpu", C.OrtHardwareDeviceType_NPU: "npu"}
	out := make([]Device, 0, int(n))
	for i := C.size_t(0); i < n; i++ {
		ep := C.sr_device_at(list, i)
		out = append(out, Device{
			Provider: C.GoString(C.sr_ep_name(ep)),
			Vendor:   C.GoString(C.sr_ep_vendor(ep)),
			Kind:     kinds[C.sr_hw_type(ep)],
			ep:       ep,
		})
	}
	return out, nil
}

// Device returns the first device of the named execution provider.
func (r *Runtime) Device(provider string) (Device, error) {
	return r.DeviceAt(provider, 0)
}

// DeviceAt returns device index (modulo their number) of the named
// execution provider's devices, in ONNX Runtime's order: the CUDA
// ordinal, for the CUDA provider. The ranks of a data-parallel job on one
// machine pick their GPU by their local rank this way.
func (r *Runtime) DeviceAt(provider string, index int) (Device, error) {
	devs, err := r.Devices()
	if err != nil {
		return Device{}, err
	}
	var names []string
	var match []Device
	for _, d := range devs {
		if d.Provider == provider {
			match = append(match, d)
		}
		names = append(names, d.String())
	}
	if len(match) > 0 {
		return match[index%len(match)], nil
	}
	return Device{}, fmt.Errorf("runtime: no %s device; ONNX Runtime %s lists %s (a plugin provider must be registered first: RegisterProvider)", provider, r.version, strings.Join(names, ", "))
}

// DeviceOptions configure a session placed on a device.
type DeviceOptions struct {
	Options
	// ProviderOptions pass through to the execution provider, e.g.
	// {"enable_cuda_graph": "1"} for the CUDA provider.
	ProviderOptions map[string]string
}

// DeviceSession is a model loaded for execution on one device, run through
// a DeviceBinding. It may be run from one goroutine at a time.
type DeviceSession struct {
	r       *Runtime
	dev     Device
	name    string
	sess    *C.OrtSession
	inputs  []string
	outputs []string
}

// NewDeviceSession creates a session from serialised ONNX model bytes on
// dev. name is used in error messages.
func (r *Runtime) NewDeviceSession(name string, model []byte, dev Device, opts DeviceOptions) (*DeviceSession, error) {
	env, err := r.capi()
	if err != nil {
		return nil, err
	}
	if dev.ep == nil {
		return nil, fmt.Errorf("runtime: %s: no device given (use Runtime.Device)", name)
	}
	ins, outs, err := modelIO(model)
	if err != nil {
		return nil, fmt.Errorf("runtime: %s: reading model inputs and outputs: %w", name, err)
	}
	keys := make([]string, 0, len(opts.ProviderOptions))
	for k := range opts.ProviderOptions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ckeys := make([]*C.char, len(keys)+1)
	cvals := make([]*C.char, len(keys)+1)
	for i, k := range keys {
		ckeys[i], cvals[i] = C.CString(k), C.CString(opts.ProviderOptions[k])
	}
	defer func() {
		for i := range keys {
			C.free(unsafe.Pointer(ckeys[i]))
			C.free(unsafe.Pointer(cvals[i]))
		}
	}()
	cmodel := C.CBytes(model)
	defer C.free(cmodel)
	noopt := C.int(0)
	if opts.DisableOptimizations {
		noopt = 1
	}
	// The pointer arrays live in C memory: cgo forbids passing Go memory
	// that holds pointers to C.
	ck := (**C.char)(C.malloc(C.size_t(len(ckeys)) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	cv := (**C.char)(C.malloc(C.size_t(len(cvals)) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(ck))
	defer C.free(unsafe.Pointer(cv))
	copy(unsafe.Slice(ck, len(ckeys)), ckeys)
	copy(unsafe.Slice(cv, len(cvals)), cvals)
	var sess *C.OrtSession
	if err := cError(C.sr_session(env, cmodel, C.size_t(len(model)), dev.ep, ck, cv, C.size_t(len(keys)),
		C.int(opts.IntraOpThreads), noopt, &sess)); err != nil {
		return nil, fmt.Errorf("runtime: %s: creating session on %s: %w", name, dev, err)
	}
	return &DeviceSession{r: r, dev: dev, name: name, sess: sess, inputs: names(ins), outputs: names(outs)}, nil
}

// InputNames returns the model's input names in graph order.
func (s *DeviceSession) InputNames() []string { return s.inputs }

// OutputNames returns the model's output names in graph order.
func (s *DeviceSession) OutputNames() []string { return s.outputs }

// Device returns the device the session runs on.
func (s *DeviceSession) Device() Device { return s.dev }

// Close releases the session.
func (s *DeviceSession) Close() error {
	if s.sess != nil {
		C.sr_release_session(s.sess)
		s.sess = nil
	}
	return nil
}

// elementSize is the size in bytes of one element of t.
func elementSize(t ElementType) (int, error) {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1, nil
	case TypeFloat16, TypeBFloat16:
		return 2, nil
	case TypeFloat32, TypeInt32:
		return 4, nil
	case TypeInt64, TypeFloat64:
		return 8, nil
	}
	return 0, fmt.Errorf("unsupported element type %d", t)
}

// deviceTensor is an OrtValue whose buffer an allocator owns.
type deviceTensor struct {
	spec  TensorSpec
	value *C.OrtValue
	data  unsafe.Pointer // host-addressable only for host tensors
	count int
}

func newDeviceTensor(a *C.OrtAllocator, s TensorSpec) (*deviceTensor, error) {
	count := 1
	for _, d := range s.Shape {
		if d < 0 {
			return nil, fmt.Errorf("dynamic shape %v", s.Shape)
		}
		count *= int(d)
	}
	if _, err := elementSize(s.Type); err != nil {
		return nil, err
	}
	shape := (*C.int64_t)(C.malloc(C.size_t(8 * (len(s.Shape) + 1))))
	defer C.free(unsafe.Pointer(shape))
	for i, d := range s.Shape {
		unsafe.Slice(shape, len(s.Shape))[i] = C.int64_t(d)
	}
	t := &deviceTensor{spec: s, count: count}
	if err := cError(C.sr_tensor(a, shape, C.size_t(len(s.Shape)), C.int(s.Type), &t.value, &t.data)); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *deviceTensor) release() {
	if t != nil && t.value != nil {
		C.sr_release_value(t.value)
		t.value = nil
	}
}

// DeviceBinding keeps every input and output of a DeviceSession in device
// memory, bound once with IoBinding. Tensors named resident (parameters,
// optimizer state) live only there: Write and Read move them, and Swap
// hands a step's new state to the next step on the device. Every other
// tensor has a host twin (pinned memory where the provider offers it) that
// the caller fills or reads in place; Run copies the host inputs up,
// runs, and copies the host outputs down.
//
// With Fixed, tensors never change address between runs, as CUDA graph
// replay requires: Swap then copies on the device instead of exchanging
// buffers.
type DeviceBinding struct {
	sess    *DeviceSession
	env     *C.OrtEnv
	device  *C.OrtAllocator
	binding *C.OrtIoBinding
	fixed   bool
	// onHost says the device's memory is host memory (the CPU provider),
	// where ONNX Runtime has no data transfer for CopyTensors and copies
	// are plain memory copies.
	onHost   bool
	dev      map[string]*deviceTensor // every input and output
	host     map[string]*deviceTensor // the twins of non-resident tensors
	isOutput map[string]bool
	upIn     []string // non-resident inputs, copied up before each run
	downOut  []string // non-resident outputs, copied down after each run
}

// DeviceBindingOptions configure a DeviceBinding.
type DeviceBindingOptions struct {
	// Resident names the inputs and outputs that stay on the device.
	Resident []string
	// Fixed keeps every tensor at one address (for CUDA graphs).
	Fixed bool
}

// NewDeviceBinding allocates and binds the tensors of every input and
// output of sess, described by specs.
func NewDeviceBinding(sess *DeviceSession, specs []TensorSpec, opts DeviceBindingOptions) (*DeviceBinding, error) {
	env, err := sess.r.capi()
	if err != nil {
		return nil, err
	}
	b := &DeviceBinding{sess: sess, env: env, fixed: opts.Fixed, dev: map[string]*deviceTensor{}, host: map[string]*deviceTensor{}, isOutput: map[string]bool{}}
	if err := b.allocate(specs, opts.Resident); err != nil {
		b.Close()
		return nil, fmt.Errorf("runtime: %s: binding: %w", sess.name, err)
	}
	return b, nil
}

func (b *DeviceBinding) allocate(specs []TensorSpec, residentNames []string) error {
	byName := map[string]TensorSpec{}
	for _, s := range specs {
		byName[s.Name] = s
	}
	resident := map[string]bool{}
	for _, n := range residentNames {
		resident[n] = true
	}
	deviceMemory := C.sr_memory(b.sess.dev.ep, 0)
	b.onHost = deviceMemory == nil
	if err := cError(C.sr_allocator(b.env, deviceMemory, &b.device)); err != nil {
		return fmt.Errorf("device allocator: %w", err)
	}
	var host *C.OrtAllocator
	if err := cError(C.sr_allocator(b.env, C.sr_memory(b.sess.dev.ep, 1), &host)); err != nil {
		return fmt.Errorf("host allocator: %w", err)
	}
	if err := cError(C.sr_binding(b.sess.sess, &b.binding)); err != nil {
		return err
	}
	for _, list := range []struct {
		names  []string
		output bool
	}{{b.sess.inputs, false}, {b.sess.outputs, true}} {
		for _, n := range list.names {
			s, ok := byName[n]
			if !ok {
				return fmt.Errorf("no spec for %q", n)
			}
			t, err := newDeviceTensor(b.device, s)
			if err != nil {
				return fmt.Errorf("%q: %w", n, err)
			}
			b.dev[n] = t
			b.isOutput[n] = list.output
			if err := b.bind(n); err != nil {
				return err
			}
			isResident := resident[n]
			delete(resident, n)
			if !isResident {
				h, err := newDeviceTensor(host, s)
				if err != nil {
					return fmt.Errorf("%q on the host: %w", n, err)
				}
				b.host[n] = h
				if list.output {
					b.downOut = append(b.downOut, n)
				} else {
					b.upIn = append(b.upIn, n)
					clear(unsafe.Slice((*byte)(h.data), h.bytes()))
				}
			}
		}
	}
	for n := range resident {
		return fmt.Errorf("resident tensor %q is neither an input nor an output", n)
	}
	// Resident tensors start as zeros, like a fresh Binding's.
	for n, t := range b.dev {
		if _, ok := b.host[n]; !ok {
			if err := b.zero(t); err != nil {
				return fmt.Errorf("%q: %w", n, err)
			}
		}
	}
	return nil
}

func (t *deviceTensor) bytes() int {
	n, _ := elementSize(t.spec.Type)
	return n * t.count
}

// zero clears a device tensor through a zeroed host tensor.
func (b *DeviceBinding) zero(t *deviceTensor) error {
	h, err := b.hostCopy(t)
	if err != nil {
		return err
	}
	defer h.release()
	clear(unsafe.Slice((*byte)(h.data), h.bytes()))
	return b.copy([]*deviceTensor{h}, []*deviceTensor{t})
}

func (b *DeviceBinding) bind(name string) error {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	if b.isOutput[name] {
		return cError(C.sr_bind_output(b.binding, cname, b.dev[name].value))
	}
	return cError(C.sr_bind_input(b.binding, cname, b.dev[name].value))
}

// copy copies src[i] to dst[i]; all src share one device, all dst one.
func (b *DeviceBinding) copy(src, dst []*deviceTensor) error {
	if len(src) == 0 {
		return nil
	}
	if b.onHost {
		for i := range src {
			copy(unsafe.Slice((*byte)(dst[i].data), dst[i].bytes()), unsafe.Slice((*byte)(src[i].data), src[i].bytes()))
		}
		return nil
	}
	n := len(src)
	arr := (**C.OrtValue)(C.malloc(C.size_t(2*n) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(arr))
	vals := unsafe.Slice(arr, 2*n)
	for i := range src {
		vals[i], vals[n+i] = src[i].value, dst[i].value
	}
	if err := cError(C.sr_copy(b.env, arr, &vals[n], C.size_t(n))); err != nil {
		return fmt.Errorf("copying tensors: %w", err)
	}
	return nil
}

// hostData returns the host buffer of a non-resident tensor as []T.
func hostData[T any](b *DeviceBinding, name string, want ElementType) ([]T, error) {
	h, ok := b.host[name]
	if !ok {
		if _, on := b.dev[name]; on {
			return nil, fmt.Errorf("runtime: %q is resident on the device; use Read or Write", name)
		}
		return nil, fmt.Errorf("runtime: binding has no value %q", name)
	}
	if h.spec.Type != want {
		return nil, fmt.Errorf("runtime: binding %q holds element type %d, not %d", name, h.spec.Type, want)
	}
	return unsafe.Slice((*T)(h.data), h.count), nil
}

// Float32 returns the host buffer of a non-resident float32 tensor, to fill
// before Run or read after it.
func (b *DeviceBinding) Float32(name string) ([]float32, error) {
	return hostData[float32](b, name, TypeFloat32)
}

// Int64 returns the host buffer of a non-resident int64 tensor.
func (b *DeviceBinding) Int64(name string) ([]int64, error) {
	return hostData[int64](b, name, TypeInt64)
}

// Int8 returns the host buffer of a non-resident int8 tensor.
func (b *DeviceBinding) Int8(name string) ([]int8, error) {
	return hostData[int8](b, name, TypeInt8)
}

// Bool returns the host buffer of a non-resident bool tensor.
func (b *DeviceBinding) Bool(name string) ([]bool, error) {
	return hostData[bool](b, name, TypeBool)
}

// SetScalar sets a non-resident rank-0 float32 input.
func (b *DeviceBinding) SetScalar(name string, v float32) error {
	d, err := b.Float32(name)
	if err != nil {
		return err
	}
	if len(d) != 1 || b.isOutput[name] {
		return fmt.Errorf("runtime: binding %q is not a scalar input", name)
	}
	d[0] = v
	return nil
}

// Scalar reads a non-resident rank-0 float32 value.
func (b *DeviceBinding) Scalar(name string) (float32, error) {
	d, err := b.Float32(name)
	if err != nil {
		return 0, err
	}
	if len(d) != 1 {
		return 0, fmt.Errorf("runtime: binding %q is not a scalar", name)
	}
	return d[0], nil
}

// staging returns a host tensor shaped like the resident tensor name and
// the float32 view of its data.
func (b *DeviceBinding) staging(name string, n int) (*deviceTensor, []float32, error) {
	t, ok := b.dev[name]
	if !ok {
		return nil, nil, fmt.Errorf("runtime: binding has no value %q", name)
	}
	if t.spec.Type != TypeFloat32 || t.count != n {
		return nil, nil, fmt.Errorf("runtime: %q holds %d elements of type %d, not %d float32", name, t.count, t.spec.Type, n)
	}
	h, err := b.hostCopy(t)
	if err != nil {
		return nil, nil, err
	}
	return h, unsafe.Slice((*float32)(h.data), n), nil
}

// hostCopy allocates a tensor shaped like t in ordinary host memory, for a
// one-off transfer; the caller releases it.
func (b *DeviceBinding) hostCopy(t *deviceTensor) (*deviceTensor, error) {
	var a *C.OrtAllocator
	if err := cError(C.sr_allocator(b.env, nil, &a)); err != nil {
		return nil, err
	}
	return newDeviceTensor(a, t.spec)
}

// Write copies src into the float32 tensor name, resident or not.
func (b *DeviceBinding) Write(name string, src []float32) error {
	if d, err := b.Float32(name); err == nil {
		if len(d) != len(src) {
			return fmt.Errorf("runtime: writing %d values to %q of %d", len(src), name, len(d))
		}
		copy(d, src)
		return nil
	}
	h, buf, err := b.staging(name, len(src))
	if err != nil {
		return err
	}
	defer h.release()
	copy(buf, src)
	return b.copy([]*deviceTensor{h}, []*deviceTensor{b.dev[name]})
}

// Read copies the float32 tensor name, resident or not, into dst.
func (b *DeviceBinding) Read(name string, dst []float32) error {
	if d, err := b.Float32(name); err == nil {
		if len(d) != len(dst) {
			return fmt.Errorf("runtime: reading %q of %d values into %d", name, len(d), len(dst))
		}
		copy(dst, d)
		return nil
	}
	h, buf, err := b.staging(name, len(dst))
	if err != nil {
		return err
	}
	defer h.release()
	if err := b.copy([]*deviceTensor{b.dev[name]}, []*deviceTensor{h}); err != nil {
		return err
	}
	copy(dst, buf)
	return nil
}

// DevicePointer returns the device address of the resident tensor name
// and its number of elements, for a library that works on the device's
// memory in place (NCCL). It stays valid until the next Swap.
func (b *DeviceBinding) DevicePointer(name string) (unsafe.Pointer, int, error) {
	t, ok := b.dev[name]
	if !ok {
		return nil, 0, fmt.Errorf("runtime: binding has no value %q", name)
	}
	if _, twin := b.host[name]; twin {
		return nil, 0, fmt.Errorf("runtime: %q is not resident on the device", name)
	}
	return t.data, t.count, nil
}

// CopyFrom copies the resident tensor srcName of binding src into the
// resident tensor name of b, on the device: how one graph's output on the
// device becomes another graph's input there. Both sessions must be on
// the same device, and the tensors of one type and size.
func (b *DeviceBinding) CopyFrom(name string, src *DeviceBinding, srcName string) error {
	dst, ok := b.dev[name]
	from, ok2 := src.dev[srcName]
	if !ok || !ok2 {
		return fmt.Errorf("runtime: copying %q to %q: no such values", srcName, name)
	}
	_, twin := b.host[name]
	_, twin2 := src.host[srcName]
	if twin || twin2 {
		return fmt.Errorf("runtime: copying %q to %q: both must be resident on the device", srcName, name)
	}
	if dst.spec.Type != from.spec.Type || dst.count != from.count {
		return fmt.Errorf("runtime: copying %q to %q: types or sizes differ", srcName, name)
	}
	return b.copy([]*deviceTensor{from}, []*deviceTensor{dst})
}

// Swap makes output out's values the next run's input in (both resident or
// both not, same type and shape): it exchanges their buffers and rebinds
// them, or with Fixed copies out into in on the device.
func (b *DeviceBinding) Swap(in, out string) error {
	ti, ok1 := b.dev[in]
	to, ok2 := b.dev[out]
	if !ok1 || !ok2 || b.isOutput[in] || !b.isOutput[out] {
		return fmt.Errorf("runtime: swap %q/%q: need an input and an output of the binding", in, out)
	}
	if ti.spec.Type != to.spec.Type || ti.count != to.count {
		return fmt.Errorf("runtime: swap %q/%q: types or shapes differ", in, out)
	}
	if _, hostIn := b.host[in]; hostIn {
		return fmt.Errorf("runtime: swap %q/%q: only resident tensors swap on the device", in, out)
	}
	if b.fixed {
		return b.copy([]*deviceTensor{to}, []*deviceTensor{ti})
	}
	b.dev[in], b.dev[out] = to, ti
	if err := b.bind(in); err != nil {
		return err
	}
	return b.bind(out)
}

// Run copies the host inputs to the device, runs the session and copies the
// host outputs back: Stage, then Execute.
func (b *DeviceBinding) Run() error {
	if err := b.Stage(); err != nil {
		return err
	}
	return b.Execute()
}

// Stage copies the host inputs to the device. Once it returns, the host
// input buffers may be refilled for the next run while Execute runs this
// one (in another goroutine): that is how a training loop prepares the next
// batch while the device computes.
func (b *DeviceBinding) Stage() error {
	if err := b.transfer(b.upIn, b.host, b.dev); err != nil {
		return fmt.Errorf("runtime: %s: inputs: %w", b.sess.name, err)
	}
	return nil
}

// transfer copies the tensors named from one map to the other.
func (b *DeviceBinding) transfer(names []string, from, to map[string]*deviceTensor) error {
	src := make([]*deviceTensor, len(names))
	dst := make([]*deviceTensor, len(names))
	for i, n := range names {
		src[i], dst[i] = from[n], to[n]
	}
	return b.copy(src, dst)
}

// Execute runs the session on the staged inputs and copies the host outputs
// back. It touches no host input buffer.
func (b *DeviceBinding) Execute() error {
	if err := cError(C.sr_run(b.sess.sess, b.binding)); err != nil {
		return fmt.Errorf("runtime: %s: run: %w", b.sess.name, err)
	}
	if err := b.transfer(b.downOut, b.dev, b.host); err != nil {
		return fmt.Errorf("runtime: %s: outputs: %w", b.sess.name, err)
	}
	return nil
}

// MemoryStats returns the device allocator's statistics (ONNX Runtime's
// keys, e.g. "InUse" and "MaxInUse" in bytes, where its allocator keeps
// them); an allocator without statistics gives an empty map.
func (b *DeviceBinding) MemoryStats() (map[string]int64, error) {
	var kv *C.OrtKeyValuePairs
	var keys, vals **C.char
	var n C.size_t
	if err := cError(C.sr_stats(b.device, &kv, (***C.char)(unsafe.Pointer(&keys)), (***C.char)(unsafe.Pointer(&vals)), &n)); err != nil {
		return nil, fmt.Errorf("runtime: allocator statistics: %w", err)
	}
	defer C.sr_release_kv(kv)
	out := map[string]int64{}
	for i := C.size_t(0); i < n; i++ {
		k := C.GoString(C.sr_str_at((**C.char)(unsafe.Pointer(keys)), i))
		if v, err := strconv.ParseInt(C.GoString(C.sr_str_at((**C.char)(unsafe.Pointer(vals)), i)), 10, 64); err == nil {
			out[k] = v
		}
	}
	return out, nil
}

// CUDAMemoryInUse returns the GPU memory in use (the device's total less
// its free memory, as cudaMemGetInfo reports; it includes the CUDA context
// and every allocation of ONNX Runtime's arenas), and false where the CUDA
// provider has not loaded the CUDA runtime.
func CUDAMemoryInUse() (int64, bool) {
	var used C.size_t
	if C.sr_cuda_used(&used) != 0 {
		return 0, false
	}
	return int64(used), true
}

// Close releases the binding's tensors (not the session).
func (b *DeviceBinding) Close() error {
	for _, m := range []map[string]*deviceTensor{b.dev, b.host} {
		for _, t := range m {
			t.release()
		}
	}
	b.dev, b.host = nil, nil
	if b.binding != nil {
		C.sr_release_binding(b.binding)
		b.binding = nil
	}
	return nil
}

// CUDALibraryEnv is the environment variable that names ONNX Runtime's CUDA
// provider library when the configuration does not.
const CUDALibraryEnv = "SALT_ORT_CUDA_LIB"

// CUDALibraryName is the file name of ONNX Runtime's CUDA provider library.
const CUDALibraryName = "libonnxruntime_providers_cuda.so"

// CUDALibraryPath resolves the CUDA provider library: explicit (from the
// configuration), $SALT_ORT_CUDA_LIB, or the file beside the loaded
// libonnxruntime.so (where `make deps-cuda` puts it).
func (r *Runtime) CUDALibraryPath(explicit string) (string, error) {
	path, from := explicit, "training.cuda_provider"
	if path == "" {
		path, from = os.Getenv(CUDALibraryEnv), "$"+CUDALibraryEnv
	}
	if path == "" {
		path, from = filepath.Join(filepath.Dir(r.path), CUDALibraryName), "the ONNX Runtime library's folder"
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("runtime: CUDA provider library %s (from %s): %w; run `make deps-cuda`, or name it with training.cuda_provider or $%s", path, from, err, CUDALibraryEnv)
	}
	return path, nil
}

// Package nccl sums gradient vectors that live in GPU memory across the
// ranks of a data-parallel job with NVIDIA's NCCL, loaded at run time
// (libnccl.so.2, as the CUDA provider of ONNX Runtime is), so that
// salt-ort builds and runs where no NCCL is installed. The ranks agree on
// a communicator through a unique id that rank 0 makes and the job
// broadcasts (over MPI, package mpi).
//
// NCCL runs on CUDA's legacy default stream; Sum waits for the device to
// finish what is queued before it (the step that computed the gradient)
// and for the reduction itself, so ONNX Runtime's next run reads the sum.
package nccl

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

// The parts of nccl.h and cuda_runtime_api.h used here (NCCL 2.x ABI).
typedef struct { char internal[128]; } nccl_unique_id;
typedef void *nccl_comm;
enum { NCCL_FLOAT32 = 7 };
enum { NCCL_SUM = 0 };

typedef struct {
	void *nccl, *cudart;
	int (*get_version)(int *);
	int (*get_unique_id)(nccl_unique_id *);
	int (*comm_init_rank)(nccl_comm *, int, nccl_unique_id, int);
	int (*all_reduce)(const void *, void *, size_t, int, int, nccl_comm, void *);
	int (*comm_destroy)(nccl_comm);
	const char *(*error_string)(int);
	int (*set_device)(int);
	int (*device_sync)(void);
	int (*stream_sync)(void *);
	const char *(*cuda_error_string)(int);
} nccl_lib;

// nccl_open loads NCCL and the CUDA runtime and resolves every function,
// or returns dlerror's text.
static const char *nccl_open(nccl_lib *l, const char *nccl, const char *cudart) {
	memset(l, 0, sizeof *l);
	l->nccl = dlopen(nccl, RTLD_NOW | RTLD_LOCAL);
	if (!l->nccl) return dlerror();
	l->cudart = dlopen(cudart, RTLD_NOW | RTLD_NOLOAD);
	if (!l->cudart) l->cudart = dlopen(cudart, RTLD_NOW | RTLD_LOCAL);
	if (!l->cudart) return dlerror();
#define SYM(lib, field, name) if (!(*(void **)&l->field = dlsym(l->lib, name))) return dlerror();
	SYM(nccl, get_version, "ncclGetVersion")
	SYM(nccl, get_unique_id, "ncclGetUniqueId")
	SYM(nccl, comm_init_rank, "ncclCommInitRank")
	SYM(nccl, all_reduce, "ncclAllReduce")
	SYM(nccl, comm_destroy, "ncclCommDestroy")
	SYM(nccl, error_string, "ncclGetErrorString")
	SYM(cudart, set_device, "cudaSetDevice")
	SYM(cudart, device_sync, "cudaDeviceSynchronize")
	SYM(cudart, stream_sync, "cudaStreamSynchronize")
	SYM(cudart, cuda_error_string, "cudaGetErrorString")
#undef SYM
	return NULL;
}

static int nccl_version(nccl_lib *l, int *v) { return l->get_version(v); }
static int nccl_unique(nccl_lib *l, void *id) { return l->get_unique_id((nccl_unique_id *)id); }
static int nccl_init(nccl_lib *l, nccl_comm *c, int n, const void *id, int rank) {
	nccl_unique_id u;
	memcpy(&u, id, sizeof u);
	return l->comm_init_rank(c, n, u, rank);
}
static int nccl_sum(nccl_lib *l, nccl_comm c, void *buf, size_t n) {
	return l->all_reduce(buf, buf, n, NCCL_FLOAT32, NCCL_SUM, c, NULL);
}
static int nccl_destroy(nccl_lib *l, nccl_comm c) { return l->comm_destroy(c); }
static const char *nccl_error(nccl_lib *l, int rc) { return l->error_string(rc); }
static int cuda_set_device(nccl_lib *l, int d) { return l->set_device(d); }
static int cuda_device_sync(nccl_lib *l) { return l->device_sync(); }
static int cuda_stream_sync(nccl_lib *l) { return l->stream_sync(NULL); }
static const char *cuda_error(nccl_lib *l, int rc) { return l->cuda_error_string(rc); }
static int unique_id_size(void) { return sizeof(nccl_unique_id); }
*/
import "C"

import (
	"fmt"
	"os"
	goruntime "runtime"
	"unsafe"
)

// IDSize is the size of a communicator's unique id.
const IDSize = 128

// ID identifies a communicator; rank 0 makes it and every rank passes
// the same one to NewComm.
type ID [IDSize]byte

// Default library names, found through the dynamic loader's search path.
const (
	DefaultLibrary = "libnccl.so.2"
	DefaultCUDART  = "libcudart.so.13"
)

// LibraryEnv names the environment variable that points at libnccl.so.2.
const LibraryEnv = "SALT_ORT_NCCL_LIB"

// Options say where the libraries are.
type Options struct {
	// Library is libnccl.so.2: "" takes $SALT_ORT_NCCL_LIB, then
	// DefaultLibrary from the loader's search path.
	Library string
	// CUDART is the CUDA runtime NCCL runs on; "" means DefaultCUDART
	// (already loaded by ONNX Runtime's CUDA provider when it runs).
	CUDART string
}

// Library is NCCL loaded into the process.
type Library struct {
	path    string
	from    string // where the path came from, for errors
	lib     C.nccl_lib
	version int
}

// Open loads NCCL and the CUDA runtime. Its error names the library, where
// its path came from and how to get one.
func Open(opts Options) (*Library, error) {
	if C.unique_id_size() != IDSize {
		return nil, fmt.Errorf("nccl: unique id of %d bytes, want %d", int(C.unique_id_size()), IDSize)
	}
	l := &Library{path: opts.Library, from: "nccl library option"}
	if l.path == "" {
		l.path, l.from = os.Getenv(LibraryEnv), "$"+LibraryEnv
	}
	if l.path == "" {
		l.path, l.from = DefaultLibrary, "the dynamic loader's search path"
	}
	cudart := opts.CUDART
	if cudart == "" {
		cudart = DefaultCUDART
	}
	cn, cc := C.CString(l.path), C.CString(cudart)
	defer C.free(unsafe.Pointer(cn))
	defer C.free(unsafe.Pointer(cc))
	if msg := C.nccl_open(&l.lib, cn, cc); msg != nil {
		return nil, fmt.Errorf("nccl: loading %s (from %s) and %s: %s: point %s at libnccl.so.2 (on the GPU machine it is in the Python environment's nvidia-nccl-cu13 package: .../site-packages/nvidia/nccl/lib/libnccl.so.2) and put CUDA 13's libcudart on LD_LIBRARY_PATH",
			l.path, l.from, cudart, C.GoString(msg), LibraryEnv)
	}
	var v C.int
	if rc := C.nccl_version(&l.lib, &v); rc != 0 {
		return nil, l.err("ncclGetVersion", rc)
	}
	l.version = int(v)
	return l, nil
}

// Version is NCCL's version code (e.g. 22703 for 2.27.3).
func (l *Library) Version() int { return l.version }

// Path is the library that was loaded.
func (l *Library) Path() string { return l.path }

func (l *Library) err(what string, rc C.int) error {
	return fmt.Errorf("nccl: %s (%s): %s (code %d)", what, l.path, C.GoString(C.nccl_error(&l.lib, rc)), int(rc))
}

// NewID makes the unique id of a new communicator (on rank 0).
func (l *Library) NewID() (ID, error) {
	var id ID
	if rc := C.nccl_unique(&l.lib, unsafe.Pointer(&id[0])); rc != 0 {
		return id, l.err("ncclGetUniqueId", rc)
	}
	return id, nil
}

// Comm is one rank's membership of a communicator.
type Comm struct {
	lib        *Library
	comm       C.nccl_comm
	rank, size int
	device     int
}

// NewComm joins the communicator id as rank of size ranks, on CUDA device
// ordinal device (the GPU the rank's ONNX Runtime sessions run on); every
// rank calls it with the same id, and it returns once all have.
func (l *Library) NewComm(id ID, rank, size, device int) (*Comm, error) {
	c := &Comm{lib: l, rank: rank, size: size, device: device}
	// The current device is a property of the OS thread.
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	if err := c.setDevice(); err != nil {
		return nil, err
	}
	if rc := C.nccl_init(&l.lib, &c.comm, C.int(size), unsafe.Pointer(&id[0]), C.int(rank)); rc != 0 {
		return nil, l.err(fmt.Sprintf("ncclCommInitRank (rank %d of %d)", rank, size), rc)
	}
	return c, nil
}

// SumFloat32 replaces the n float32 values at the device address ptr with
// their sum over the ranks, in place, after the device finished the work
// queued before, and returns when the sum is complete.
func (c *Comm) SumFloat32(ptr unsafe.Pointer, n int) error {
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	if err := c.setDevice(); err != nil {
		return err
	}
	if rc := C.cuda_device_sync(&c.lib.lib); rc != 0 {
		return fmt.Errorf("nccl: cudaDeviceSynchronize before the sum: %s (code %d)", C.GoString(C.cuda_error(&c.lib.lib, rc)), int(rc))
	}
	if rc := C.nccl_sum(&c.lib.lib, c.comm, ptr, C.size_t(n)); rc != 0 {
		return c.lib.err(fmt.Sprintf("ncclAllReduce of %d values on rank %d of %d", n, c.rank, c.size), rc)
	}
	if rc := C.cuda_stream_sync(&c.lib.lib); rc != 0 {
		return fmt.Errorf("nccl: cudaStreamSynchronize after the sum: %s (code %d)", C.GoString(C.cuda_error(&c.lib.lib, rc)), int(rc))
	}
	return nil
}

// setDevice makes the rank's GPU current on the calling thread, as NCCL
// and the stream it runs on need.
func (c *Comm) setDevice() error {
	if rc := C.cuda_set_device(&c.lib.lib, C.int(c.device)); rc != 0 {
		return fmt.Errorf("nccl: cudaSetDevice(%d): %s (code %d)", c.device, C.GoString(C.cuda_error(&c.lib.lib, rc)), int(rc))
	}
	return nil
}

// Close leaves the communicator.
func (c *Comm) Close() error {
	if c.comm == nil {
		return nil
	}
	rc := C.nccl_destroy(&c.lib.lib, c.comm)
	c.comm = nil
	if rc != 0 {
		return c.lib.err("ncclCommDestroy", rc)
	}
	return nil
}

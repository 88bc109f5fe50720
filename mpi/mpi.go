// Package mpi is a thin cgo layer over MPI (Open MPI, as Debian's
// libopenmpi-dev provides it), for data-parallel training across processes
// and nodes: each process (rank) of a job that mpirun or SLURM's srun
// started joins the world communicator, and the job sums gradient vectors
// across ranks, broadcasts and gathers small buffers, and aborts as a
// whole when one rank fails.
//
// MPI is initialised only when the process was started as part of a job
// (Launched); a process run on its own trains alone and never touches MPI.
// Calls into MPI are serialised by the World: any goroutine may use it,
// one at a time. Init asks for MPI_THREAD_MULTIPLE, which Open MPI
// provides, so that Abort may end the job from a watchdog goroutine while
// another goroutine waits in a collective; it needs at least
// MPI_THREAD_SERIALIZED, under which Abort ends the job as the standard
// allows at that level (see Abort).
package mpi

/*
#cgo pkg-config: ompi-c
#include <stdlib.h>
#include <mpi.h>

// The handles Open MPI defines as macros over addresses of globals, as
// functions cgo can call.
static MPI_Comm world(void) { return MPI_COMM_WORLD; }
static MPI_Datatype type_float(void) { return MPI_FLOAT; }
static MPI_Datatype type_double(void) { return MPI_DOUBLE; }
static MPI_Datatype type_byte(void) { return MPI_BYTE; }
static MPI_Datatype type_int64(void) { return MPI_INT64_T; }
static MPI_Op op_sum(void) { return MPI_SUM; }
static MPI_Op op_max(void) { return MPI_MAX; }
static int thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static int thread_multiple(void) { return MPI_THREAD_MULTIPLE; }

// An in-place all-reduce. MPI_IN_PLACE is the address 1 in Open MPI: it
// stays in C, since a Go stack slot holding it is an invalid pointer to
// Go's runtime (a fatal error when the stack moves).
static int allreduce_in_place(void *buf, int n, MPI_Datatype t, MPI_Op op) {
	return MPI_Allreduce(MPI_IN_PLACE, buf, n, t, op, MPI_COMM_WORLD);
}

// Errors are returned, not fatal, so Go can wrap them with context.
static int errors_return(void) { return MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN); }

static int init(int *provided) {
	int argc = 0;
	char **argv = NULL;
	return MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, provided);
}

static void error_string(int code, char *buf, int *len) { MPI_Error_string(code, buf, len); }
static int max_error_string(void) { return MPI_MAX_ERROR_STRING; }
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"unsafe"
)

// launchVars are environment variables that mpirun (Open MPI's ORTE or
// PRRTE) or a PMI/PMIx launcher such as SLURM's srun --mpi=pmix set in
// every rank of a job.
var launchVars = []string{"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"}

// Launched reports whether this process was started as a rank of an MPI
// job (by mpirun, mpiexec or srun with MPI), as its environment says.
func Launched() bool {
	for _, v := range launchVars {
		if os.Getenv(v) != "" {
			return true
		}
	}
	return false
}

// World is the job's world communicator, after Init.
type World struct {
	mu         sync.Mutex
	rank, size int
	finalized  bool
	// multiple is whether the library provides MPI_THREAD_MULTIPLE.
	multiple bool
}

var (
	once     sync.Once
	theWorld *World
	initErr  error
)

// Init initialises MPI once per process (MPI allows no second
// initialisation, even after Finalize) and returns the world
// communicator. Later calls return the same World.
func Init() (*World, error) {
	once.Do(func() {
		var provided C.int
		if rc := C.init(&provided); rc != C.MPI_SUCCESS {
			initErr = fmt.Errorf("mpi: MPI_Init_thread: %s", errorString(rc))
			return
		}
		if provided < C.thread_serialized() {
			initErr = errors.New("mpi: this MPI library does not support calls from several threads one at a time (MPI_THREAD_SERIALIZED)")
			return
		}
		if rc := C.errors_return(); rc != C.MPI_SUCCESS {
			initErr = fmt.Errorf("mpi: MPI_Comm_set_errhandler: %s", errorString(rc))
			return
		}
		w := &World{multiple: provided >= C.thread_multiple()}
		var rank, size C.int
		if rc := C.MPI_Comm_rank(C.world(), &rank); rc != C.MPI_SUCCESS {
			initErr = fmt.Errorf("mpi: MPI_Comm_rank: %s", errorString(rc))
			return
		}
		if rc := C.MPI_Comm_size(C.world(), &size); rc != C.MPI_SUCCESS {
			initErr = fmt.Errorf("mpi: MPI_Comm_size: %s", errorString(rc))
			return
		}
		w.rank, w.size = int(rank), int(size)
		theWorld = w
	})
	return theWorld, initErr
}

// localRankVars are where launchers say which of a node's ranks a process
// is: Open MPI's mpirun, SLURM's srun, MPICH's Hydra.
var localRankVars = []string{"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "PMIX_LOCAL_RANK"}

// LocalRank is this process's rank among the ranks on its node, as its
// launcher says (0 if none does): the GPU a rank takes on a machine with
// several.
func (w *World) LocalRank() int {
	for _, v := range localRankVars {
		if n, err := strconv.Atoi(os.Getenv(v)); err == nil && n >= 0 {
			return n
		}
	}
	return 0
}

// Rank is this process's rank, 0..Size()-1.
func (w *World) Rank() int { return w.rank }

// Size is the number of ranks in the job.
func (w *World) Size() int { return w.size }

// errorString is MPI's text for an error code.
func errorString(code C.int) string {
	buf := make([]byte, int(C.max_error_string()))
	var n C.int
	C.error_string(code, (*C.char)(unsafe.Pointer(&buf[0])), &n)
	return fmt.Sprintf("%s (code %d)", string(buf[:n]), int(code))
}

// call runs an MPI call under the World's lock and wraps its error.
func (w *World) call(what string, f func() C.int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.finalized {
		return fmt.Errorf("mpi: %s after Finalize", what)
	}
	if rc := f(); rc != C.MPI_SUCCESS {
		return fmt.Errorf("mpi: %s on rank %d of %d: %s", what, w.rank, w.size, errorString(rc))
	}
	return nil
}

// SumFloat32 replaces buf on every rank with the element-wise sum of every
// rank's buf (MPI_Allreduce in place). Every rank gets the same bits.
func (w *World) SumFloat32(buf []float32) error {
	if len(buf) == 0 {
		return w.call("MPI_Allreduce", func() C.int { return C.MPI_Barrier(C.world()) })
	}
	return w.call("MPI_Allreduce", func() C.int {
		return C.allreduce_in_place(unsafe.Pointer(&buf[0]), C.int(len(buf)), C.type_float(), C.op_sum())
	})
}

// SumFloat64 is SumFloat32 for float64 values.
func (w *World) SumFloat64(buf []float64) error {
	if len(buf) == 0 {
		return w.call("MPI_Allreduce", func() C.int { return C.MPI_Barrier(C.world()) })
	}
	return w.call("MPI_Allreduce", func() C.int {
		return C.allreduce_in_place(unsafe.Pointer(&buf[0]), C.int(len(buf)), C.type_double(), C.op_sum())
	})
}

// MaxInt64 replaces buf on every rank with the element-wise maximum over
// the ranks.
func (w *World) MaxInt64(buf []int64) error {
	if len(buf) == 0 {
		return nil
	}
	return w.call("MPI_Allreduce", func() C.int {
		return C.allreduce_in_place(unsafe.Pointer(&buf[0]), C.int(len(buf)), C.type_int64(), C.op_max())
	})
}

// Broadcast copies buf from rank root to every other rank; every rank
// passes a buffer of the same length.
func (w *World) Broadcast(buf []byte, root int) error {
	if len(buf) == 0 {
		return nil
	}
	return w.call("MPI_Bcast", func() C.int {
		return C.MPI_Bcast(unsafe.Pointer(&buf[0]), C.int(len(buf)), C.type_byte(), C.int(root), C.world())
	})
}

// Gather returns every rank's b, in rank order, on every rank; the
// buffers may differ in length.
func (w *World) Gather(b []byte) ([][]byte, error) {
	lens := make([]int64, w.size)
	lens[w.rank] = int64(len(b))
	if err := w.MaxInt64(lens); err != nil { // every other entry is 0
		return nil, err
	}
	var total int64
	counts := make([]C.int, w.size)
	displs := make([]C.int, w.size)
	for i, n := range lens {
		counts[i], displs[i] = C.int(n), C.int(total)
		total += n
	}
	// One spare byte each, so that empty buffers still have an address.
	all := make([]byte, total+1)
	send := make([]byte, len(b)+1)
	copy(send, b)
	err := w.call("MPI_Allgatherv", func() C.int {
		return C.MPI_Allgatherv(unsafe.Pointer(&send[0]), C.int(len(b)), C.type_byte(),
			unsafe.Pointer(&all[0]), &counts[0], &displs[0], C.type_byte(), C.world())
	})
	if err != nil {
		return nil, err
	}
	out := make([][]byte, w.size)
	for i := range out {
		out[i] = all[displs[i] : int64(displs[i])+lens[i] : int64(displs[i])+lens[i]]
	}
	return out, nil
}

// Barrier returns once every rank has called it.
func (w *World) Barrier() error {
	return w.call("MPI_Barrier", func() C.int { return C.MPI_Barrier(C.world()) })
}

// ThreadMultiple reports whether the MPI library provides
// MPI_THREAD_MULTIPLE, under which Abort calls MPI_Abort even while
// another goroutine is inside an MPI call.
func (w *World) ThreadMultiple() bool { return w.multiple }

// Abort ends every rank of the job with the exit code. It does not return,
// and it works while another goroutine waits in a collective that will
// never complete:
//   - under MPI_THREAD_MULTIPLE it calls MPI_Abort at once;
//   - under MPI_THREAD_SERIALIZED, where no MPI call may overlap another,
//     it calls MPI_Abort only when no other call is in progress, and
//     otherwise exits the process without one: the launcher (mpirun,
//     srun) then ends the job, as it does for a rank that dies.
func (w *World) Abort(code int) {
	if w.mayAbort() {
		C.MPI_Abort(C.world(), C.int(code))
	}
	os.Exit(code)
}

// mayAbort reports whether the thread level allows MPI_Abort now: always
// under MPI_THREAD_MULTIPLE; under SERIALIZED only when no other MPI call
// is in progress, and then it keeps the lock, as the process is ending.
func (w *World) mayAbort() bool {
	return w.multiple || w.mu.TryLock()
}

// Finalize shuts MPI down; the World cannot be used after it.
func (w *World) Finalize() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.finalized {
		return nil
	}
	w.finalized = true
	if rc := C.MPI_Finalize(); rc != C.MPI_SUCCESS {
		return fmt.Errorf("mpi: MPI_Finalize: %s", errorString(rc))
	}
	return nil
}

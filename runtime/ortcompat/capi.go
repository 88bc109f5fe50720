package ortcompat

// The C side of the worker: it loads one ONNX Runtime library with dlopen
// and asks it for the C API version it was released with (its minor
// version: ONNX Runtime 1.x offers API x), capped at the version of the
// headers salt-ort builds against. The OrtApi table only ever grows at its
// end, so every function called here, all present since API 1 to 4, sits
// at the same place in a 1.14 library as in the headers.

/*
#cgo CFLAGS: -I${SRCDIR}/../../third_party/onnxruntime/dist/include
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include "onnxruntime_c_api.h"

static const OrtApi *oc_api;
static OrtEnv *oc_env;

// oc_load loads the library and its C API; NULL on success, else a
// message. *version receives the library's version string and *api the
// API version requested.
static const char *oc_load(const char *path, const char **version, int *api) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) return dlerror();
	const OrtApiBase *(*base)(void) = (const OrtApiBase *(*)(void))dlsym(h, "OrtGetApiBase");
	if (!base) return "the library has no OrtGetApiBase: not an ONNX Runtime library";
	const OrtApiBase *b = base();
	*version = b->GetVersionString();
	int minor = 0;
	const char *dot = strchr(*version, '.');
	if (dot) minor = atoi(dot + 1);
	if (minor <= 0 || minor > ORT_API_VERSION) minor = ORT_API_VERSION;
	*api = minor;
	oc_api = b->GetApi((uint32_t)minor);
	if (!oc_api) return "the library does not offer the C API version of its own release";
	return NULL;
}

static char *oc_err(OrtStatus *s) {
	if (!s) return NULL;
	char *m = strdup(oc_api->GetErrorMessage(s));
	oc_api->ReleaseStatus(s);
	return m;
}

static char *oc_session(const void *model, size_t len, int intra, OrtSession **out) {
	char *e = NULL;
	if (!oc_env) e = oc_err(oc_api->CreateEnv(ORT_LOGGING_LEVEL_ERROR, "salt-ort-compat", &oc_env));
	if (e) return e;
	OrtSessionOptions *so = NULL;
	e = oc_err(oc_api->CreateSessionOptions(&so));
	if (e) return e;
	if (intra > 0) e = oc_err(oc_api->SetIntraOpNumThreads(so, intra));
	if (!e) e = oc_err(oc_api->SetInterOpNumThreads(so, 1));
	if (!e) e = oc_err(oc_api->CreateSessionFromArray(oc_env, model, len, so, out));
	oc_api->ReleaseSessionOptions(so);
	return e;
}

static void oc_release_session(OrtSession *s) { oc_api->ReleaseSession(s); }
static void oc_release_value(OrtValue *v) { if (v) oc_api->ReleaseValue(v); }

static char *oc_tensor(void *data, size_t bytes, const int64_t *shape, size_t rank, int type, OrtValue **out) {
	OrtMemoryInfo *mi = NULL;
	char *e = oc_err(oc_api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &mi));
	if (e) return e;
	e = oc_err(oc_api->CreateTensorWithDataAsOrtValue(mi, data, bytes, shape, rank, (ONNXTensorElementDataType)type, out));
	oc_api->ReleaseMemoryInfo(mi);
	return e;
}

static char *oc_run(OrtSession *s, const char *const *in_names, const OrtValue *const *ins, size_t nin,
                    const char *const *out_names, size_t nout, OrtValue **outs) {
	return oc_err(oc_api->Run(s, NULL, in_names, ins, nin, out_names, nout, outs));
}

// oc_describe returns an output's element type, rank and data; dims
// receives up to 8 dimensions.
static char *oc_describe(OrtValue *v, int *type, size_t *rank, int64_t *dims, void **data) {
	OrtTensorTypeAndShapeInfo *info = NULL;
	char *e = oc_err(oc_api->GetTensorTypeAndShape(v, &info));
	if (e) return e;
	ONNXTensorElementDataType t;
	e = oc_err(oc_api->GetTensorElementType(info, &t));
	if (!e) e = oc_err(oc_api->GetDimensionsCount(info, rank));
	if (!e && *rank > 8) e = strdup("output of rank above 8");
	if (!e) e = oc_err(oc_api->GetDimensions(info, dims, *rank));
	oc_api->ReleaseTensorTypeAndShapeInfo(info);
	if (!e) e = oc_err(oc_api->GetTensorMutableData(v, data));
	*type = (int)t;
	return e;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// library is an ONNX Runtime library loaded in the worker process.
type library struct {
	version string
	api     int
}

// load opens the library at path.
func load(path string) (*library, error) {
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	var version *C.char
	var api C.int
	if msg := C.oc_load(cp, &version, &api); msg != nil {
		return nil, errors.New(C.GoString(msg))
	}
	return &library{version: C.GoString(version), api: int(api)}, nil
}

// cErr turns a malloc'd message into an error.
func cErr(m *C.char) error {
	if m == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(m))
	return errors.New(C.GoString(m))
}

// session is a model loaded in the worker's library.
type session struct{ s *C.OrtSession }

// newSession creates a session from serialised model bytes.
func newSession(model []byte, threads int) (*session, error) {
	if len(model) == 0 {
		return nil, errors.New("empty model")
	}
	cm := C.CBytes(model)
	defer C.free(cm)
	var s *C.OrtSession
	if err := cErr(C.oc_session(cm, C.size_t(len(model)), C.int(threads), &s)); err != nil {
		return nil, err
	}
	return &session{s: s}, nil
}

func (s *session) close() { C.oc_release_session(s.s) }

// elemSize is the size in bytes of the ONNX element types the worker
// passes.
func elemSize(t int32) (int, error) {
	switch t {
	case 1, 6: // float, int32
		return 4, nil
	case 2, 3, 9: // uint8, int8, bool
		return 1, nil
	case 7, 11: // int64, double
		return 8, nil
	}
	return 0, fmt.Errorf("element type %d is not supported by the worker", t)
}

// run runs the session once. The input data are copied into C memory for
// the call; the outputs are copied out.
func (s *session) run(ins []Tensor, outNames []string) ([]Tensor, error) {
	var cleanup []func()
	defer func() {
		for _, f := range cleanup {
			f()
		}
	}()
	cstr := func(v string) *C.char {
		p := C.CString(v)
		cleanup = append(cleanup, func() { C.free(unsafe.Pointer(p)) })
		return p
	}
	n := len(ins)
	inNames := (*[1 << 20]*C.char)(C.malloc(C.size_t(max(n, 1)) * C.size_t(unsafe.Sizeof(uintptr(0)))))[:max(n, 1):max(n, 1)]
	inVals := (*[1 << 20]*C.OrtValue)(C.malloc(C.size_t(max(n, 1)) * C.size_t(unsafe.Sizeof(uintptr(0)))))[:max(n, 1):max(n, 1)]
	cleanup = append(cleanup, func() { C.free(unsafe.Pointer(&inNames[0])); C.free(unsafe.Pointer(&inVals[0])) })
	for i, t := range ins {
		inNames[i] = cstr(t.Name)
		// ONNX Runtime wants a data pointer even for an empty tensor.
		data := C.malloc(C.size_t(len(t.Data) + 1))
		cleanup = append(cleanup, func() { C.free(data) })
		if len(t.Data) > 0 {
			C.memcpy(data, unsafe.Pointer(&t.Data[0]), C.size_t(len(t.Data)))
		}
		shape := C.malloc(C.size_t(max(len(t.Shape), 1) * 8))
		cleanup = append(cleanup, func() { C.free(shape) })
		for d, v := range t.Shape {
			*(*C.int64_t)(unsafe.Add(shape, d*8)) = C.int64_t(v)
		}
		var v *C.OrtValue
		if err := cErr(C.oc_tensor(data, C.size_t(len(t.Data)), (*C.int64_t)(shape), C.size_t(len(t.Shape)), C.int(t.Type), &v)); err != nil {
			return nil, fmt.Errorf("input %s: %w", t.Name, err)
		}
		inVals[i] = v
		cleanup = append(cleanup, func() { C.oc_release_value(v) })
	}
	m := len(outNames)
	outN := (*[1 << 20]*C.char)(C.malloc(C.size_t(max(m, 1)) * C.size_t(unsafe.Sizeof(uintptr(0)))))[:max(m, 1):max(m, 1)]
	outV := (*[1 << 20]*C.OrtValue)(C.calloc(C.size_t(max(m, 1)), C.size_t(unsafe.Sizeof(uintptr(0)))))[:max(m, 1):max(m, 1)]
	cleanup = append(cleanup, func() {
		for i := 0; i < m; i++ {
			C.oc_release_value(outV[i])
		}
		C.free(unsafe.Pointer(&outN[0]))
		C.free(unsafe.Pointer(&outV[0]))
	})
	for i, name := range outNames {
		outN[i] = cstr(name)
	}
	if err := cErr(C.oc_run(s.s, &inNames[0], &inVals[0], C.size_t(n), &outN[0], C.size_t(m), &outV[0])); err != nil {
		return nil, err
	}
	outs := make([]Tensor, m)
	for i, name := range outNames {
		var typ C.int
		var rank C.size_t
		var dims [8]C.int64_t
		var data unsafe.Pointer
		if err := cErr(C.oc_describe(outV[i], &typ, &rank, &dims[0], &data)); err != nil {
			return nil, fmt.Errorf("output %s: %w", name, err)
		}
		t := Tensor{Name: name, Type: int32(typ), Shape: make([]int64, int(rank))}
		count := 1
		for d := range t.Shape {
			t.Shape[d] = int64(dims[d])
			count *= int(dims[d])
		}
		size, err := elemSize(t.Type)
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", name, err)
		}
		if count > 0 {
			t.Data = C.GoBytes(data, C.int(count*size))
		}
		outs[i] = t
	}
	return outs, nil
}

package runtime

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/codegen/onnxpb"
	"github.com/salt-ort/salt-ort/internal/onnxcheck"
	"google.golang.org/protobuf/proto"
)

func openRuntime(t testing.TB) *Runtime {
	t.Helper()
	path, err := LibraryPath("")
	if err != nil {
		t.Fatal(err)
	}
	rt, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func valueInfo(name string, dims ...int64) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
			Shape:    shape,
		}}},
	}
}

// denseReLU builds y = relu(x·W + b) with the generated protobuf types only,
// W and b as initializers.
func denseReLU(batch, in, out int64, w, b []float32) *onnxpb.ModelProto {
	node := func(op, name string, inputs []string, output string) *onnxpb.NodeProto {
		return &onnxpb.NodeProto{OpType: proto.String(op), Name: proto.String(name), Input: inputs, Output: []string{output}}
	}
	return &onnxpb.ModelProto{
		IrVersion:    proto.Int64(8),
		ProducerName: proto.String("salt-ort-test"),
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(17)}},
		Graph: &onnxpb.GraphProto{
			Name: proto.String("dense_relu"),
			Node: []*onnxpb.NodeProto{
				node("MatMul", "dense/MatMul", []string{"x", "W"}, "xw"),
				node("Add", "dense/Add", []string{"xw", "b"}, "z"),
				node("Relu", "dense/Relu", []string{"z"}, "y"),
			},
			Initializer: []*onnxpb.TensorProto{
				{Name: proto.String("W"), Dims: []int64{in, out}, DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), FloatData: w},
				{Name: proto.String("b"), Dims: []int64{out}, DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), FloatData: b},
			},
			Input:  []*onnxpb.ValueInfoProto{valueInfo("x", batch, in)},
			Output: []*onnxpb.ValueInfoProto{valueInfo("y", batch, out)},
		},
	}
}

func randomFloats(r *rand.Rand, n int64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func TestDenseReLUMatchesGo(t *testing.T) {
	rt := openRuntime(t)
	const batch, in, out = 5, 7, 3
	r := rand.New(rand.NewPCG(1, 2))
	w, b, x := randomFloats(r, in*out), randomFloats(r, out), randomFloats(r, batch*in)
	model, err := onnxpb.Marshal(denseReLU(batch, in, out, w, b))
	if err != nil {
		t.Fatal(err)
	}
	sess, err := rt.NewSession("dense_relu", model, Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if got := sess.InputNames(); len(got) != 1 || got[0] != "x" {
		t.Fatalf("inputs = %v, want [x]", got)
	}
	xt, err := NewTensor([]int64{batch, in}, x)
	if err != nil {
		t.Fatal(err)
	}
	yt, err := NewEmptyTensor[float32]([]int64{batch, out})
	if err != nil {
		t.Fatal(err)
	}
	defer Destroy(xt, yt)
	if err := sess.Run([]Value{xt}, []Value{yt}); err != nil {
		t.Fatal(err)
	}
	got := yt.GetData()
	for i := 0; i < batch; i++ {
		for j := 0; j < out; j++ {
			var want float64 = float64(b[j])
			for k := 0; k < in; k++ {
				want += float64(x[i*in+k]) * float64(w[k*out+j])
			}
			want = math.Max(want, 0)
			if d := math.Abs(float64(got[i*out+j]) - want); d > 1e-5 {
				t.Errorf("y[%d,%d] = %g, want %g", i, j, got[i*out+j], want)
			}
		}
	}
}

func TestRunChecksArity(t *testing.T) {
	rt := openRuntime(t)
	model, err := onnxpb.Marshal(denseReLU(1, 2, 2, make([]float32, 4), make([]float32, 2)))
	if err != nil {
		t.Fatal(err)
	}
	sess, err := rt.NewSession("dense_relu", model, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.Run(nil, []Value{nil}); err == nil {
		t.Fatal("Run with no inputs succeeded")
	}
}

func TestNewSessionRejectsGarbage(t *testing.T) {
	rt := openRuntime(t)
	if _, err := rt.NewSession("garbage.onnx", []byte("not a model"), Options{}); err == nil {
		t.Fatal("garbage accepted as a model")
	} else if !bytes.Contains([]byte(err.Error()), []byte("garbage.onnx")) {
		t.Errorf("error does not name the model: %v", err)
	}
}

func TestMarshalDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	w, b := randomFloats(r, 12), randomFloats(r, 3)
	first, err := onnxpb.Marshal(denseReLU(2, 4, 3, w, b))
	if err != nil {
		t.Fatal(err)
	}
	second, err := onnxpb.Marshal(denseReLU(2, 4, 3, w, b))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Fatal("two serialisations of the same graph differ")
	}
	back, err := onnxpb.Unmarshal(first)
	if err != nil {
		t.Fatal(err)
	}
	again, err := onnxpb.Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Fatal("unmarshal + marshal changed the bytes")
	}
}

func TestCheckerAcceptsModel(t *testing.T) {
	if !onnxcheck.Available() {
		t.Skip(onnxcheck.ErrUnavailable)
	}
	model, err := onnxpb.Marshal(denseReLU(2, 4, 3, make([]float32, 12), make([]float32, 3)))
	if err != nil {
		t.Fatal(err)
	}
	if err := onnxcheck.Check(model); err != nil {
		t.Fatal(err)
	}
}

func TestLibraryPathErrors(t *testing.T) {
	if _, err := LibraryPath("/nonexistent/libonnxruntime.so"); err == nil {
		t.Fatal("missing explicit library accepted")
	}
	t.Setenv(LibraryEnv, "/nonexistent/env.so")
	if _, err := LibraryPath(""); err == nil {
		t.Fatal("missing $SALT_ORT_LIB library accepted")
	}
}

// TestSessionOptions runs the dense layer at every optimisation level,
// with the profiler on, and checks the outputs, the profile file and the
// refusal of an unknown level.
func TestSessionOptions(t *testing.T) {
	rt := openRuntime(t)
	r := rand.New(rand.NewPCG(3, 4))
	w, b, x := randomFloats(r, 4*2), randomFloats(r, 2), randomFloats(r, 3*4)
	model, err := onnxpb.Marshal(denseReLU(3, 4, 2, w, b))
	if err != nil {
		t.Fatal(err)
	}
	var first []float32
	for _, c := range []struct {
		name string
		opts Options
		err  bool
	}{
		{"default", Options{IntraOpThreads: 1}, false},
		{"extended", Options{IntraOpThreads: 1, Optimization: OptimizeExtended}, false},
		{"basic", Options{IntraOpThreads: 1, Optimization: OptimizeBasic}, false},
		{"disabled", Options{IntraOpThreads: 1, DisableOptimizations: true}, false},
		{"profiled", Options{IntraOpThreads: 1, ProfilePrefix: filepath.Join(t.TempDir(), "dense")}, false},
		{"unknown level", Options{Optimization: Optimization(9)}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			sess, err := rt.NewSession("dense_relu", model, c.opts)
			if c.err {
				if err == nil || !strings.Contains(err.Error(), "optimisation level") {
					t.Fatalf("got %v, want an error naming the optimisation level", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			xt, _ := NewTensor([]int64{3, 4}, x)
			yt, _ := NewEmptyTensor[float32]([]int64{3, 2})
			defer Destroy(xt, yt)
			if err := sess.Run([]Value{xt}, []Value{yt}); err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first = append([]float32(nil), yt.GetData()...)
			} else if !slices.Equal(first, yt.GetData()) {
				t.Errorf("outputs %v, default level %v", yt.GetData(), first)
			}
			sess.Close()
			if c.opts.ProfilePrefix != "" {
				files, _ := filepath.Glob(c.opts.ProfilePrefix + "_*.json")
				if len(files) != 1 {
					t.Fatalf("profile files %v, want one", files)
				}
				data, _ := os.ReadFile(files[0])
				if !bytes.Contains(data, []byte("dense/MatMul")) || !bytes.Contains(data, []byte("_kernel_time")) {
					t.Errorf("the profile has no kernel time of the dense layer's nodes:\n%.400s", data)
				}
			}
		})
	}
}

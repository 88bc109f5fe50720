package ortcompat

import (
	"context"
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/codegen/onnxpb"
	"github.com/salt-ort/salt-ort/graph"
	"google.golang.org/protobuf/proto"
)

// installed returns the library of release v, failing the test with the
// fix where `make deps` has not installed it (make test does).
func installed(t *testing.T, v string) string {
	t.Helper()
	lib, err := Library(v)
	if err != nil {
		t.Fatal(err)
	}
	return lib
}

// tinyModel is y = mean(x, axis 1) + 1 over a [2, 3] input, stamped with the
// given opset and IR version.
func tinyModel(t *testing.T, opset, ir int64) []byte {
	t.Helper()
	g := graph.New("tiny")
	x := g.Input("x", graph.Float32, graph.Shape{2, 3})
	g.Output("y", g.Add(g.ReduceMean(x, []int{1}, true), g.Scalar(graph.Float32, 1)))
	m, err := g.Model(graph.ModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.OpsetImport[0].Version = proto.Int64(opset)
	m.IrVersion = proto.Int64(ir)
	b, err := onnxpb.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func floats(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

func TestRunReleases(t *testing.T) {
	x := Tensor{Name: "x", Type: 1, Shape: []int64{2, 3}, Data: floats(1, 2, 3, 4, 5, 9)}
	for _, v := range []string{"1.14.0", "1.17.3", "1.31.1"} {
		t.Run(v, func(t *testing.T) {
			req := &Request{Library: installed(t, v), Model: tinyModel(t, 17, 8), Threads: 1, Outputs: []string{"y"}, Calls: [][]Tensor{{x}, {x}}}
			resp, err := Run(context.Background(), v, req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Version != v {
				t.Errorf("library reports version %s, want %s", resp.Version, v)
			}
			y := resp.Outputs[1][0]
			if want := floats(3, 7); string(y.Data) != string(want) || len(y.Shape) != 2 || y.Shape[0] != 2 || y.Shape[1] != 1 {
				t.Errorf("y = %v %v, want [2 1] %v", y.Shape, y.Data, want)
			}
		})
	}
}

// TestNewerModel: a model of an IR version newer than a release knows is
// reported by that release's name, with ONNX Runtime's reason.
func TestNewerModel(t *testing.T) {
	lib := installed(t, "1.14.0")
	req := &Request{Library: lib, Model: tinyModel(t, 21, 10), Outputs: []string{"y"},
		Calls: [][]Tensor{{{Name: "x", Type: 1, Shape: []int64{2, 3}, Data: floats(1, 2, 3, 4, 5, 6)}}}}
	_, err := Run(context.Background(), "1.14.0", req)
	if !IsError(err) || !strings.Contains(err.Error(), "ONNX Runtime 1.14.0 could not load the model: Failed to load model with error: Unsupported model IR version: 10, max supported IR version: 8") {
		t.Fatalf("err = %v, want ONNX Runtime 1.14.0's refusal naming the IR version", err)
	}
}

func TestNotALibrary(t *testing.T) {
	req := &Request{Library: "/nonexistent/libonnxruntime.so", Model: []byte{1}}
	_, err := Run(context.Background(), "1.99.0", req)
	if !IsError(err) || !strings.Contains(err.Error(), "ONNX Runtime 1.99.0 could not load the library") {
		t.Fatalf("err = %v", err)
	}
}

func TestLibraryVersionName(t *testing.T) {
	for _, bad := range []string{"", "latest", "1.14", "v1.14.0"} {
		if _, err := Library(bad); err == nil || !strings.Contains(err.Error(), "release number") {
			t.Errorf("Library(%q) = %v, want an error asking for a release number", bad, err)
		}
	}
}

// Package cpp holds salt-ort's hand-written C++ programs (built by the
// repository's CMakeLists.txt) and the tests that build and run them.
package cpp

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
)

// build configures and builds the CMake project into a temporary
// directory and returns it.
func build(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"cmake", "c++"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run `make deps`", tool)
		}
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, args := range [][]string{
		{"-S", root, "-B", dir, "-DCMAKE_BUILD_TYPE=Release"},
		{"--build", dir, "-j2"},
	} {
		if out, err := exec.Command("cmake", args...).CombinedOutput(); err != nil {
			t.Fatalf("cmake %v: %v\n%s", args, err, out)
		}
	}
	return dir
}

func TestInspect(t *testing.T) {
	dir := build(t)
	// The repository's project also builds cpp/athenacheck's program
	// (tested in that package).
	if _, err := os.Stat(filepath.Join(dir, "athenacheck", "salt-ort-athena-check")); err != nil {
		t.Errorf("the CMake project did not build salt-ort-athena-check: %v", err)
	}
	g := graph.New("tagger")
	x := g.Input("track_features", graph.Float32, graph.Shape{-1, 3})
	w := g.Param("dense/weight", graph.Shape{3, 2}, graph.InitUniform(1))
	g.Output("scores", g.Relu(g.MatMul(x, w)))
	g.SetMetadata("salt_ort_version", "test")
	model, err := g.Marshal(graph.ModelOptions{
		ParamValues: map[string][]byte{"dense/weight": graph.Float32Bytes([]float32{1, 2, 3, 4, 5, 6})},
		DimNames:    map[string]string{"track_features:0": "n_tracks", "scores:0": "n_tracks"},
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tagger.onnx")
	if err := os.WriteFile(path, model, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(dir, "salt-ort-inspect"), path).CombinedOutput()
	if err != nil {
		t.Fatalf("salt-ort-inspect: %v\n%s", err, out)
	}
	for _, want := range []string{
		"input track_features float32 [n_tracks, 3]",
		"output scores float32 [n_tracks, 2]",
		"producer salt-ort",
		"metadata salt_ort_version=test",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.onnx")
	os.WriteFile(bad, []byte("not a model"), 0o644)
	if out, err := exec.Command(filepath.Join(dir, "salt-ort-inspect"), bad).CombinedOutput(); err == nil || !strings.Contains(string(out), "bad.onnx") {
		t.Errorf("a broken model gave err=%v, output %s", err, out)
	}
}

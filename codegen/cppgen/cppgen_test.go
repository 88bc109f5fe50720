package cppgen

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/salt-ort/salt-ort/graph"
)

// testInterface has awkward names: a model name and output names that
// need sanitising and escaping, and every output kind.
func testInterface() Interface {
	return Interface{
		Model: "gn2-tiny v1",
		Inputs: []Input{
			{Name: "jet_features", Group: "jets", Vars: []string{"pt_btagJes", "eta_btagJes"}},
			{Name: "track_features", Group: "tracks", Vars: []string{"d0", `z0"quoted\`, "dphi"}},
		},
		Outputs: []Output{
			{Name: "tiny_score", Type: Float32, Doc: "sum of all inputs"},
			{Name: "tiny/label", Type: Int8, PerConstituent: true, Doc: "argmax of each track's variables"},
			{Name: "tiny_track_sum", Type: Float32, PerConstituent: true},
		},
		Description: "test interface\nsecond line",
	}
}

func TestIdentifier(t *testing.T) {
	for in, want := range map[string]string{
		"GN2":         "GN2",
		"gn2-small":   "gn2_small",
		"GN2 v01/x":   "GN2_v01_x",
		"2tag":        "m2tag",
		"_x":          "m_x",
		"a__b":        "a_b",
		"a-/b":        "a_b",
		"":            "model",
		"class":       "class_",
		"naïve":       "na_ve",
		"GN2_TrackOr": "GN2_TrackOr",
	} {
		if got := Identifier(in); got != want {
			t.Errorf("Identifier(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCppString(t *testing.T) {
	for in, want := range map[string]string{
		"d0":        `"d0"`,
		`a"b\c`:     `"a\"b\\c"`,
		"x\ny":      `"x\012y"`,
		"é1":        `"\303\2511"`,
		"??=trig":   `"??=trig"`,
		"tab\there": `"tab\011here"`,
	} {
		if got := cppString(in); got != want {
			t.Errorf("cppString(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestRenderDeterministic(t *testing.T) {
	a, err := Render(testInterface())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		b, err := Render(testInterface())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatal("two renders of the same interface differ")
		}
	}
	dir1, dir2 := t.TempDir(), t.TempDir()
	p1, err := Generate(dir1, testInterface())
	if err != nil {
		t.Fatal(err)
	}
	p2, err := Generate(dir2, testInterface())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"gn2_tiny_v1_model.h", "gn2_tiny_v1_validate.cc", "CMakeLists.txt"}
	for i := range p1 {
		if filepath.Base(p1[i]) != want[i] {
			t.Errorf("file %d is %s, want %s", i, filepath.Base(p1[i]), want[i])
		}
		b1, _ := os.ReadFile(p1[i])
		b2, _ := os.ReadFile(p2[i])
		if !bytes.Equal(b1, b2) || !bytes.Equal(b1, a[want[i]]) {
			t.Errorf("%s differs between two generations", want[i])
		}
	}
	// Regenerating leaves identical files untouched.
	st, _ := os.Stat(p1[0])
	old := st.ModTime().Add(-time.Hour)
	os.Chtimes(p1[0], old, old)
	if _, err := Generate(dir1, testInterface()); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(p1[0]); !st.ModTime().Equal(old) {
		t.Error("Generate rewrote an unchanged file")
	}

	h := string(a["gn2_tiny_v1_model.h"])
	for _, s := range []string{
		"namespace salt_ort {\nnamespace gn2_tiny_v1 {",
		`inline constexpr const char* kJetInputName = "jet_features";`,
		"inline constexpr std::size_t kNumJetVariables = 2;",
		`    "z0\"quoted\\"`,
		"  float tiny_score = 0;",
		"  std::vector<int8_t> tiny_label;",
		"  std::vector<float> tiny_track_sum;",
		"  /// argmax of each track's variables",
		"// test interface second line",
		"options.SetIntraOpNumThreads(1);",
		"ORT_SEQUENTIAL",
	} {
		if !strings.Contains(h, s) {
			t.Errorf("the header lacks %q", s)
		}
	}
}

func TestCheck(t *testing.T) {
	for name, c := range map[string]struct {
		edit func(*Interface)
		want string
	}{
		"batched":   {func(i *Interface) { i.Kind = Batched }, "export without --batched"},
		"unknown":   {func(i *Interface) { i.Kind = "other" }, `unknown interface "other"`},
		"inputs":    {func(i *Interface) { i.Inputs = i.Inputs[:1] }, "has 1 inputs"},
		"noOutputs": {func(i *Interface) { i.Outputs = nil }, "no outputs"},
		"type":      {func(i *Interface) { i.Outputs[0].Type = 7 }, "element type ElementType(7)"},
		"collision": {func(i *Interface) { i.Outputs[1].Name = "tiny-score" }, `outputs "tiny_score" and "tiny-score" both become the C++ member tiny_score`},
	} {
		t.Run(name, func(t *testing.T) {
			iface := testInterface()
			c.edit(&iface)
			_, err := Generate(t.TempDir(), iface)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
	iface := testInterface()
	iface.Kind = Athena
	if err := iface.Check(); err != nil {
		t.Error(err)
	}
}

func testInputs() *Inputs {
	return &Inputs{JetVars: 2, ConstituentVars: 3, Jets: []Jet{
		{N: 2, Features: []float32{1, -2}, Constituents: []float32{1, 5, 2, 7, -1, 3}},
		{N: 0, Features: []float32{0.5, 4}, Constituents: []float32{}},
		{N: 3, Features: []float32{-3, 1}, Constituents: []float32{0, 0, 1, 2, 9, 4, 8, 1, 2}},
	}}
}

func TestFilesRoundTrip(t *testing.T) {
	in := testInputs()
	var b bytes.Buffer
	if err := WriteInputs(&b, in); err != nil {
		t.Fatal(err)
	}
	raw := b.Bytes()
	if string(raw[:8]) != InputsMagic || len(raw) != 8+4*4+3*(4+2*4)+(2+0+3)*3*4 {
		t.Fatalf("inputs file: magic %q, %d bytes", raw[:8], len(raw))
	}
	got, err := ReadInputs(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if got.JetVars != 2 || got.ConstituentVars != 3 || len(got.Jets) != 3 || got.Jets[2].Constituents[4] != 9 || got.Jets[1].N != 0 {
		t.Errorf("read back %+v", got)
	}
	for name, bad := range map[string][]byte{
		"truncated": raw[:len(raw)-1],
		"trailing":  append(append([]byte(nil), raw...), 0),
		"magic":     append([]byte("SALTORTX"), raw[8:]...),
	} {
		if _, err := ReadInputs(bytes.NewReader(bad)); err == nil {
			t.Errorf("%s inputs: no error", name)
		}
	}
	if err := WriteInputs(io.Discard, &Inputs{JetVars: 1, Jets: []Jet{{Features: []float32{1, 2}}}}); err == nil {
		t.Error("a jet with the wrong number of features was written")
	}

	out := &Outputs{Jets: 2, Outputs: []OutputColumn{
		{Name: "p", Type: Float32, Jets: [][]float32{{0.25}, {float32(math.Inf(-1))}}},
		{Name: "c", Type: Int8, Jets: [][]float32{{-1, 3, 127}, {}}},
	}}
	b.Reset()
	if err := WriteOutputs(&b, out); err != nil {
		t.Fatal(err)
	}
	back, err := ReadOutputs(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Outputs[1].Jets[0], out.Outputs[1].Jets[0]) || back.Column("p").Jets[1][0] != out.Outputs[0].Jets[1][0] || back.Column("x") != nil {
		t.Errorf("read back %+v", back)
	}
	if _, err := ReadOutputs(bytes.NewReader(b.Bytes()[:b.Len()-2])); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated outputs: %v", err)
	}
}

// TestBuildAndRun builds the generated program with CMake against the
// ONNX Runtime that `make deps` installs and runs it on a small model
// whose outputs are exact in float32.
func TestBuildAndRun(t *testing.T) {
	for _, tool := range []string{"cmake", "c++"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run `make deps`", tool)
		}
	}
	ortDir, err := filepath.Abs("../../third_party/onnxruntime/dist")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(ortDir, "include/onnxruntime_cxx_api.h")); err != nil {
		t.Fatalf("ONNX Runtime is not installed: run `make deps` (%v)", err)
	}
	iface := testInterface()

	g := graph.New("tiny")
	jet := g.Input("jet_features", graph.Float32, graph.Shape{1, 2})
	trk := g.Input("track_features", graph.Float32, graph.Shape{-1, 3})
	g.Output("tiny_score", g.Add(g.ReduceSum(jet, []int{0, 1}, false), g.ReduceSum(trk, []int{0, 1}, false)))
	g.Output("tiny/label", g.Cast(g.ArgMax(trk, 1, false), graph.Int8))
	g.Output("tiny_track_sum", g.ReduceSum(trk, []int{1}, false))
	model, err := g.Marshal(graph.ModelOptions{DimNames: map[string]string{"track_features:0": "n_tracks"}})
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	modelPath := filepath.Join(work, "tiny.onnx")
	if err := os.WriteFile(modelPath, model, 0o644); err != nil {
		t.Fatal(err)
	}

	// A project that adds the generated directory and uses the header
	// through the header-only target, as ATLAS code would; building it
	// builds the validation program too.
	src, build := filepath.Join(work, "gen"), filepath.Join(work, "build")
	if _, err := Generate(src, iface); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(work, "CMakeLists.txt"), []byte(userCMake), 0o644)
	os.WriteFile(filepath.Join(work, "user.cc"), []byte(userProgram), 0o644)
	for _, args := range [][]string{
		{"-S", work, "-B", build, "-DORT_DIR=" + ortDir, "-DCMAKE_BUILD_TYPE=Release"},
		{"--build", build, "-j2"},
	} {
		if out, err := exec.Command("cmake", args...).CombinedOutput(); err != nil {
			t.Fatalf("cmake %v: %v\n%s", args, err, out)
		}
	}
	program := filepath.Join(build, "gen", iface.Names().Program)
	if out, err := exec.Command(filepath.Join(build, "user"), modelPath).CombinedOutput(); err != nil {
		t.Errorf("user program: %v\n%s", err, out)
	} else if want := "score 6\nlabels 2 0\nerror salt_ort::gn2_tiny_v1::Model::Run: track_features has 4 values, want n * kNumConstituentVariables = 1 * 3\nerror salt_ort::gn2_tiny_v1::Model::Run: jet_features has 1 values, want kNumJetVariables = 2\n"; string(out) != want {
		t.Errorf("user program printed\n%s\nwant\n%s", out, want)
	}

	in := testInputs()
	inPath, outPath := filepath.Join(work, "in.bin"), filepath.Join(work, "out.bin")
	var b bytes.Buffer
	if err := WriteInputs(&b, in); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(inPath, b.Bytes(), 0o644)
	if out, err := exec.Command(program, modelPath, inPath, outPath).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", program, err, out)
	}
	f, err := os.Open(outPath)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadOutputs(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got.Jets != 3 || len(got.Outputs) != 3 || got.Outputs[1].Name != "tiny/label" || got.Outputs[1].Type != Int8 {
		t.Fatalf("outputs header: %+v", got)
	}
	for j, jet := range in.Jets {
		var sum float32
		for _, x := range append(append([]float32(nil), jet.Features...), jet.Constituents...) {
			sum += x
		}
		var labels, sums []float32
		for i := 0; i < jet.N; i++ {
			row := jet.Constituents[i*3 : i*3+3]
			best := 0
			for k := range row {
				if row[k] > row[best] {
					best = k
				}
			}
			labels = append(labels, float32(best))
			sums = append(sums, row[0]+row[1]+row[2])
		}
		for k, want := range [][]float32{{sum}, labels, sums} {
			if g := got.Outputs[k].Jets[j]; len(g) != len(want) || (len(g) > 0 && !reflect.DeepEqual(g, want)) {
				t.Errorf("jet %d output %s = %v, want %v", j, got.Outputs[k].Name, g, want)
			}
		}
	}

	// Errors: a model with another interface, inputs with other sizes.
	other := graph.New("other")
	x := other.Input("jet_features", graph.Float32, graph.Shape{1, 2})
	other.Input("tracks", graph.Float32, graph.Shape{-1, 3})
	other.Output("tiny_score", other.ReduceSum(x, []int{0, 1}, false))
	otherModel, _ := other.Marshal(graph.ModelOptions{})
	otherPath := filepath.Join(work, "other.onnx")
	os.WriteFile(otherPath, otherModel, 0o644)
	out, err := exec.Command(program, otherPath, inPath, outPath).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "input 1 is tracks, want track_features") {
		t.Errorf("a model with another interface: %v\n%s", err, out)
	}
	if _, err := os.Stat(outPath); !os.IsNotExist(err) {
		t.Errorf("a failed run left %s (%v)", outPath, err)
	}
	in.JetVars, in.Jets = 1, []Jet{{N: 0, Features: []float32{1}}}
	b.Reset()
	WriteInputs(&b, in)
	os.WriteFile(inPath, b.Bytes(), 0o644)
	out, err = exec.Command(program, modelPath, inPath, outPath).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "1 jet and 3 constituent variables, the model has 2 and 3") {
		t.Errorf("inputs with another jet-variable count: %v\n%s", err, out)
	}
	out, err = exec.Command(program, modelPath).CombinedOutput()
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "usage:") {
		t.Errorf("no arguments: %v\n%s", err, out)
	}
}

const userCMake = `cmake_minimum_required(VERSION 3.16)
project(user LANGUAGES CXX)
add_subdirectory(gen)
add_executable(user user.cc)
target_link_libraries(user PRIVATE gn2_tiny_v1_model)
target_compile_options(user PRIVATE -Wall -Wextra -Werror)
set_target_properties(user PROPERTIES BUILD_RPATH "${ORT_DIR}/lib")
`

const userProgram = `#include "gn2_tiny_v1_model.h"

#include <cstdio>
#include <stdexcept>
#include <vector>

int main(int, char** argv) {
  namespace m = salt_ort::gn2_tiny_v1;
  static_assert(m::kNumJetVariables == 2 && m::kNumConstituentVariables == 3 && m::kNumOutputs == 3, "sizes");
  Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "user");
  const m::Model model(env, argv[1]);
  m::Outputs out = model.Run({1, 2}, {0, 1, 2, 3, -1, -2}, 2);
  std::printf("score %g\nlabels %d %d\n", out.tiny_score, out.tiny_label.at(0), out.tiny_label.at(1));
  for (auto bad : {std::vector<float>{1, 2, 3, 4}, std::vector<float>{1}}) {
    try {
      model.Run(bad.size() == 1 ? bad : std::vector<float>{1, 2}, bad, 1);
    } catch (const std::invalid_argument& e) {
      std::printf("error %s\n", e.what());
    }
  }
  return 0;
}
`

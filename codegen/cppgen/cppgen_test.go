package cppgen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
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
// need sanitising and escaping, and every output kind. It has one
// constituent input.
func testInterface() Interface {
	return Interface{
		Model: "gn2-tiny v1",
		Inputs: []Input{
			{Name: "jet_features", Group: "jets", Vars: []string{"pt_btagJes", "eta_btagJes"}},
			{Name: "track_features", Group: "tracks", Vars: []string{"d0", `z0"quoted\`, "dphi"}},
		},
		Outputs: []Output{
			{Name: "tiny_score", Type: Float32, Doc: "sum of all inputs"},
			{Name: "tiny/label", Type: Int8, Input: "track_features", Doc: "argmax of each track's variables"},
			{Name: "tiny_track_sum", Type: Float32, Input: "track_features"},
		},
		Description: "test interface\nsecond line",
	}
}

// twoGroupInterface has two constituent inputs, tracks and hits, with a
// per-constituent output of each.
func twoGroupInterface() Interface {
	return Interface{
		Model: "two",
		Inputs: []Input{
			{Name: "jet_features", Group: "jets", Vars: []string{"pt", "eta"}},
			{Name: "track_features", Group: "tracks", Vars: []string{"d0", "z0", "dphi"}},
			{Name: "hit_features", Group: "hits", Vars: []string{"j", "a"}},
		},
		Outputs: []Output{
			{Name: "two_score", Type: Float32, Doc: "sum of all inputs"},
			{Name: "two_track_label", Type: Int8, Input: "track_features"},
			{Name: "two_hit_sum", Type: Float32, Input: "hit_features"},
		},
	}
}

// jetInterface has no constituent inputs.
func jetInterface() Interface {
	return Interface{
		Model:   "jetonly",
		Inputs:  []Input{{Name: "jet_features", Group: "jets", Vars: []string{"pt", "eta"}}},
		Outputs: []Output{{Name: "jetonly_score", Type: Float32}, {Name: "jetonly_max", Type: Float32}},
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

func TestInputStem(t *testing.T) {
	for in, want := range map[string]string{
		"track_features":    "Track",
		"hit_features":      "Hit",
		"jet_features":      "Jet",
		"flows":             "Flows",
		"_features":         "MFeatures",
		"neutral-flow_vars": "NeutralFlowVars",
		"2trk_features":     "M2trk",
		"class":             "Class",
	} {
		if got := InputStem(in); got != want {
			t.Errorf("InputStem(%q) = %q, want %q", in, got, want)
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
	for _, c := range []struct {
		name   string
		iface  Interface
		header []string // what the header must contain
		absent []string // what it must not
	}{
		{"one group", testInterface(), []string{
			"namespace salt_ort {\nnamespace gn2_tiny_v1 {",
			`inline constexpr const char* kJetInputName = "jet_features";`,
			"inline constexpr std::size_t kNumJetVariables = 2;",
			"inline constexpr std::size_t kNumConstituentInputs = 1;",
			"inline constexpr std::size_t kTrackIndex = 0;",
			"inline constexpr std::size_t kNumTrackVariables = 3;",
			`    "z0\"quoted\\"`,
			"inline constexpr const char* kConstituentInputName = kTrackInputName;",
			"inline constexpr std::size_t kNumConstituentVariables = kNumTrackVariables;",
			"  float tiny_score = 0;",
			"  std::vector<int8_t> tiny_label;",
			"  /// tiny/label: int8 [n of track_features], one value per constituent.",
			"  std::vector<float> tiny_track_sum;",
			"  /// argmax of each track's variables",
			"// test interface second line",
			"options.SetIntraOpNumThreads(1);",
			"ORT_SEQUENTIAL",
			"const std::vector<float>& constituent_features,",
			"result.tiny_label = Vector<int8_t>(outputs[1], 1, n[kTrackIndex]);",
		}, nil},
		{"two groups", twoGroupInterface(), []string{
			"inline constexpr std::size_t kNumConstituentInputs = 2;",
			"inline constexpr std::array<const char*, kNumConstituentInputs> kConstituentInputNames = {\n    \"track_features\",\n    \"hit_features\"\n};",
			"inline constexpr std::array<std::size_t, kNumConstituentInputs> kNumConstituentInputVariables = {\n    3,\n    2\n};",
			"inline constexpr std::size_t kHitIndex = 1;",
			"inline constexpr std::array<const char*, kNumHitVariables> kHitVariables = {\n    \"j\",\n    \"a\"\n};",
			"result.two_hit_sum = Vector<float>(outputs[2], 2, n[kHitIndex]);",
			"const std::array<Constituents, kNumConstituentInputs>& groups) const {",
		}, []string{"kConstituentInputName ", "kNumConstituentVariables", "int64_t n) const {"}},
		{"jet only", jetInterface(), []string{
			"inline constexpr std::size_t kNumConstituentInputs = 0;",
			"Outputs Run(const std::vector<float>& jet_features) const {",
		}, []string{"kNumConstituentVariables", "Vector<"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := Render(c.iface)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ {
				b, err := Render(c.iface)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(a, b) {
					t.Fatal("two renders of the same interface differ")
				}
			}
			dir1, dir2 := t.TempDir(), t.TempDir()
			p1, err := Generate(dir1, c.iface)
			if err != nil {
				t.Fatal(err)
			}
			p2, err := Generate(dir2, c.iface)
			if err != nil {
				t.Fatal(err)
			}
			names := c.iface.Names()
			want := []string{names.Header, names.Source, names.LatencySource, "CMakeLists.txt"}
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
			if _, err := Generate(dir1, c.iface); err != nil {
				t.Fatal(err)
			}
			if st, _ := os.Stat(p1[0]); !st.ModTime().Equal(old) {
				t.Error("Generate rewrote an unchanged file")
			}
			h := string(a[names.Header])
			for _, s := range c.header {
				if !strings.Contains(h, s) {
					t.Errorf("the header lacks %q", s)
				}
			}
			for _, s := range c.absent {
				if strings.Contains(h, s) {
					t.Errorf("the header has %q", s)
				}
			}
		})
	}
}

func TestCheck(t *testing.T) {
	for name, c := range map[string]struct {
		iface func() Interface
		edit  func(*Interface)
		want  string
	}{
		"batched":      {testInterface, func(i *Interface) { i.Kind = Batched }, "export without --batched"},
		"unknown":      {testInterface, func(i *Interface) { i.Kind = "other" }, `unknown interface "other"`},
		"noInputs":     {testInterface, func(i *Interface) { i.Inputs = nil }, "has no inputs"},
		"unnamed":      {twoGroupInterface, func(i *Interface) { i.Inputs[2].Name = "" }, "input 2 has no name"},
		"sameName":     {twoGroupInterface, func(i *Interface) { i.Inputs[2].Name = "track_features" }, `two inputs are named "track_features"`},
		"sameStem":     {twoGroupInterface, func(i *Interface) { i.Inputs[2].Name = "track" }, `inputs "track_features" and "track" both get the C++ constants kTrackVariables`},
		"jetStem":      {twoGroupInterface, func(i *Interface) { i.Inputs[2].Name = "jet" }, `inputs "jet_features" and "jet" both get the C++ constants kJetVariables`},
		"noOutputs":    {testInterface, func(i *Interface) { i.Outputs = nil }, "no outputs"},
		"type":         {testInterface, func(i *Interface) { i.Outputs[0].Type = 7 }, "element type ElementType(7)"},
		"collision":    {testInterface, func(i *Interface) { i.Outputs[1].Name = "tiny-score" }, `outputs "tiny_score" and "tiny-score" both become the C++ member tiny_score`},
		"noSuchInput":  {twoGroupInterface, func(i *Interface) { i.Outputs[1].Input = "flow_features" }, `output "two_track_label" is per constituent of "flow_features", which is not a constituent input (hit_features, track_features)`},
		"jetInput":     {twoGroupInterface, func(i *Interface) { i.Outputs[1].Input = "jet_features" }, `per constituent of "jet_features", which is not a constituent input`},
		"noGroups":     {testInterface, func(i *Interface) { i.Inputs = i.Inputs[:1] }, `output "tiny/label" is per constituent of "track_features", but the model has no constituent inputs`},
		"jetOnlyPerCo": {jetInterface, func(i *Interface) { i.Outputs[1].Input = "track_features" }, "but the model has no constituent inputs"},
	} {
		t.Run(name, func(t *testing.T) {
			iface := c.iface()
			c.edit(&iface)
			_, err := Generate(t.TempDir(), iface)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
	for _, iface := range []Interface{testInterface(), twoGroupInterface(), jetInterface()} {
		iface.Kind = Athena
		if err := iface.Check(); err != nil {
			t.Error(err)
		}
	}
}

func testInputs() *Inputs {
	return &Inputs{JetVars: 2, GroupVars: []int{3}, Jets: []Jet{
		{Features: []float32{1, -2}, Groups: []Constituents{{N: 2, Features: []float32{1, 5, 2, 7, -1, 3}}}},
		{Features: []float32{0.5, 4}, Groups: []Constituents{{N: 0, Features: []float32{}}}},
		{Features: []float32{-3, 1}, Groups: []Constituents{{N: 3, Features: []float32{0, 0, 1, 2, 9, 4, 8, 1, 2}}}},
	}}
}

func twoGroupInputs() *Inputs {
	return &Inputs{JetVars: 2, GroupVars: []int{3, 2}, Jets: []Jet{
		{Features: []float32{1, -2}, Groups: []Constituents{
			{N: 2, Features: []float32{1, 5, 2, 7, -1, 3}},
			{N: 3, Features: []float32{1, 2, 3, 4, 5, 6}},
		}},
		{Features: []float32{0.5, 4}, Groups: []Constituents{{N: 0, Features: []float32{}}, {N: 1, Features: []float32{-1, -2}}}},
		{Features: []float32{-3, 1}, Groups: []Constituents{{N: 1, Features: []float32{0, 9, 1}}, {N: 0, Features: []float32{}}}},
		{Features: []float32{2, 2}, Groups: []Constituents{{N: 0, Features: []float32{}}, {N: 0, Features: []float32{}}}},
	}}
}

func jetInputs() *Inputs {
	return &Inputs{JetVars: 2, Jets: []Jet{
		{Features: []float32{1, -2}, Groups: []Constituents{}},
		{Features: []float32{0.5, 4}, Groups: []Constituents{}},
	}}
}

func TestInputsRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name  string
		in    *Inputs
		bytes int // the file's size
	}{
		// header: magic, version, n_jets, n_jet_vars, n_groups, n_vars per group
		{"one group", testInputs(), 8 + 4*4 + 4 + 3*(2*4) + 3*4 + (2+0+3)*3*4},
		{"two groups", twoGroupInputs(), 8 + 4*4 + 2*4 + 4*(2*4) + 4*2*4 + (2+0+1+0)*3*4 + (3+1+0+0)*2*4},
		{"jet only", jetInputs(), 8 + 4*4 + 2*(2*4)},
		{"no jets", &Inputs{JetVars: 4, GroupVars: []int{1, 2, 3}}, 8 + 4*4 + 3*4},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteInputs(&b, c.in); err != nil {
				t.Fatal(err)
			}
			raw := b.Bytes()
			if string(raw[:8]) != InputsMagic || binary.LittleEndian.Uint32(raw[8:]) != InputsVersion || len(raw) != c.bytes {
				t.Fatalf("inputs file: magic %q, version %d, %d bytes, want %d", raw[:8], binary.LittleEndian.Uint32(raw[8:]), len(raw), c.bytes)
			}
			got, err := ReadInputs(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			var again bytes.Buffer
			if err := WriteInputs(&again, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Bytes(), raw) {
				t.Error("writing what was read gives other bytes")
			}
			if got.JetVars != c.in.JetVars || !reflect.DeepEqual(got.GroupVars, c.in.GroupVars) || len(got.Jets) != len(c.in.Jets) {
				t.Fatalf("read back %+v", got)
			}
			for j := range got.Jets {
				if !reflect.DeepEqual(got.Jets[j].Features, c.in.Jets[j].Features) || len(got.Jets[j].Groups) != len(c.in.GroupVars) {
					t.Errorf("jet %d: read back %+v", j, got.Jets[j])
				}
				for g, grp := range got.Jets[j].Groups {
					want := c.in.Jets[j].Groups[g]
					if grp.N != want.N || len(grp.Features) != len(want.Features) || (len(want.Features) > 0 && !reflect.DeepEqual(grp.Features, want.Features)) {
						t.Errorf("jet %d group %d: read back %+v, want %+v", j, g, grp, want)
					}
				}
			}
			bad := map[string][]byte{
				"trailing": append(append([]byte(nil), raw...), 0),
				"magic":    append([]byte("SALTORTX"), raw[8:]...),
				"version1": append(append([]byte(InputsMagic), 1, 0, 0, 0), raw[12:]...),
			}
			if len(raw) > 8+4*4 {
				bad["truncated"] = raw[:len(raw)-1]
			}
			for name, data := range bad {
				if _, err := ReadInputs(bytes.NewReader(data)); err == nil {
					t.Errorf("%s inputs: no error", name)
				}
			}
		})
	}
}

func TestWriteInputsErrors(t *testing.T) {
	for name, c := range map[string]struct {
		in   *Inputs
		want string
	}{
		"jetFeatures": {&Inputs{JetVars: 1, Jets: []Jet{{Features: []float32{1, 2}}}}, "jet 0 has 2 jet features, want 1"},
		"groupCount":  {&Inputs{JetVars: 1, GroupVars: []int{2, 3}, Jets: []Jet{{Features: []float32{1}, Groups: []Constituents{{}}}}}, "jet 0 has 1 constituent inputs, want 2"},
		"features": {&Inputs{JetVars: 1, GroupVars: []int{2, 3}, Jets: []Jet{{Features: []float32{1}, Groups: []Constituents{
			{N: 1, Features: []float32{1, 2}}, {N: 1, Features: []float32{1, 2}},
		}}}}, "jet 0 constituent input 1 has 2 features, want 1·3"},
		"negativeN":    {&Inputs{GroupVars: []int{0}, Jets: []Jet{{Groups: []Constituents{{N: -1}}}}}, "want -1·0"},
		"negativeVars": {&Inputs{GroupVars: []int{-2}}, "constituent input 0: negative number of variables -2"},
	} {
		t.Run(name, func(t *testing.T) {
			if err := WriteInputs(io.Discard, c.in); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestOutputsRoundTrip(t *testing.T) {
	out := &Outputs{Jets: 2, Outputs: []OutputColumn{
		{Name: "p", Type: Float32, Jets: [][]float32{{0.25}, {float32(math.Inf(-1))}}},
		{Name: "c", Type: Int8, Jets: [][]float32{{-1, 3, 127}, {}}},
	}}
	var b bytes.Buffer
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

// testModel is a model the generated code is built for and run on, with
// what its outputs must be, computed in Go; its values are small integers,
// so that the sums are exact in float32 whatever the order.
type testModel struct {
	iface  Interface
	build  func() *graph.Graph
	inputs *Inputs
	want   func(Jet) [][]float32 // per output, in graph order
	user   string                // a C++ program using the header, or ""
}

func sum(xs ...[]float32) float32 {
	var s float32
	for _, x := range xs {
		for _, v := range x {
			s += v
		}
	}
	return s
}

// rows applies f to each row of n rows of vars values.
func rows(c Constituents, vars int, f func([]float32) float32) []float32 {
	out := []float32{}
	for i := 0; i < c.N; i++ {
		out = append(out, f(c.Features[i*vars:(i+1)*vars]))
	}
	return out
}

func argmax(row []float32) float32 {
	best := 0
	for k := range row {
		if row[k] > row[best] {
			best = k
		}
	}
	return float32(best)
}

func testModels() []testModel {
	return []testModel{
		{
			iface: testInterface(),
			build: func() *graph.Graph {
				g := graph.New("tiny")
				jet := g.Input("jet_features", graph.Float32, graph.Shape{1, 2})
				trk := g.Input("track_features", graph.Float32, graph.Shape{-1, 3})
				g.Output("tiny_score", g.Add(g.ReduceSum(jet, []int{0, 1}, false), g.ReduceSum(trk, []int{0, 1}, false)))
				g.Output("tiny/label", g.Cast(g.ArgMax(trk, 1, false), graph.Int8))
				g.Output("tiny_track_sum", g.ReduceSum(trk, []int{1}, false))
				return g
			},
			inputs: testInputs(),
			want: func(j Jet) [][]float32 {
				trk := j.Groups[0]
				return [][]float32{{sum(j.Features, trk.Features)}, rows(trk, 3, argmax), rows(trk, 3, func(r []float32) float32 { return sum(r) })}
			},
			user: userOneGroup,
		},
		{
			iface: twoGroupInterface(),
			build: func() *graph.Graph {
				g := graph.New("two")
				jet := g.Input("jet_features", graph.Float32, graph.Shape{1, 2})
				trk := g.Input("track_features", graph.Float32, graph.Shape{-1, 3})
				hit := g.Input("hit_features", graph.Float32, graph.Shape{-1, 2})
				g.Output("two_score", g.Add(g.Add(g.ReduceSum(jet, []int{0, 1}, false), g.ReduceSum(trk, []int{0, 1}, false)), g.ReduceSum(hit, []int{0, 1}, false)))
				g.Output("two_track_label", g.Cast(g.ArgMax(trk, 1, false), graph.Int8))
				g.Output("two_hit_sum", g.ReduceSum(hit, []int{1}, false))
				return g
			},
			inputs: twoGroupInputs(),
			want: func(j Jet) [][]float32 {
				trk, hit := j.Groups[0], j.Groups[1]
				return [][]float32{{sum(j.Features, trk.Features, hit.Features)}, rows(trk, 3, argmax), rows(hit, 2, func(r []float32) float32 { return sum(r) })}
			},
			user: userTwoGroups,
		},
		{
			iface: jetInterface(),
			build: func() *graph.Graph {
				g := graph.New("jetonly")
				jet := g.Input("jet_features", graph.Float32, graph.Shape{1, 2})
				g.Output("jetonly_score", g.ReduceSum(jet, []int{0, 1}, false))
				g.Output("jetonly_max", g.ReduceMax(jet, []int{0, 1}, false))
				return g
			},
			inputs: jetInputs(),
			want: func(j Jet) [][]float32 {
				return [][]float32{{sum(j.Features)}, {max(j.Features[0], j.Features[1])}}
			},
			user: userJetOnly,
		},
	}
}

// TestBuildAndRun builds the generated programs with CMake against the
// ONNX Runtime that `make deps` installs and runs them on small models
// whose outputs are exact in float32: one constituent input, two, none.
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
	models := testModels()

	// One project adds every generated directory and builds a user program
	// per model that uses its header through the header-only target, as
	// ATLAS code would; building it builds the validation programs too.
	work := t.TempDir()
	build := filepath.Join(work, "build")
	project := "cmake_minimum_required(VERSION 3.16)\nproject(user LANGUAGES CXX)\n"
	for _, m := range models {
		names := m.iface.Names()
		base := strings.TrimSuffix(names.Library, "_model")
		if _, err := Generate(filepath.Join(work, base), m.iface); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(work, "user_"+base+".cc"), []byte(m.user), 0o644)
		project += strings.NewReplacer("BASE", base, "LIB", names.Library).Replace(userCMake)
	}
	os.WriteFile(filepath.Join(work, "CMakeLists.txt"), []byte(project), 0o644)
	for _, args := range [][]string{
		{"-S", work, "-B", build, "-DORT_DIR=" + ortDir, "-DCMAKE_BUILD_TYPE=Release"},
		{"--build", build, "-j2"},
	} {
		if out, err := exec.Command("cmake", args...).CombinedOutput(); err != nil {
			t.Fatalf("cmake %v: %v\n%s", args, err, out)
		}
	}

	for _, m := range models {
		t.Run(m.iface.Model, func(t *testing.T) {
			names := m.iface.Names()
			base := strings.TrimSuffix(names.Library, "_model")
			model, err := m.build().Marshal(graph.ModelOptions{})
			if err != nil {
				t.Fatal(err)
			}
			modelPath := filepath.Join(work, base+".onnx")
			if err := os.WriteFile(modelPath, model, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(filepath.Join(build, "user_"+base), modelPath).CombinedOutput(); err != nil {
				t.Errorf("user program: %v\n%s", err, out)
			} else if want := userWant[base]; string(out) != want {
				t.Errorf("user program printed\n%s\nwant\n%s", out, want)
			}

			program := filepath.Join(build, base, names.Program)
			inPath, outPath := filepath.Join(work, base+"_in.bin"), filepath.Join(work, base+"_out.bin")
			var b bytes.Buffer
			if err := WriteInputs(&b, m.inputs); err != nil {
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
			if got.Jets != len(m.inputs.Jets) || len(got.Outputs) != len(m.iface.Outputs) {
				t.Fatalf("outputs header: %+v", got)
			}
			for k, o := range m.iface.Outputs {
				if got.Outputs[k].Name != o.Name || got.Outputs[k].Type != o.Type {
					t.Errorf("output %d is %s %v, want %s %v", k, got.Outputs[k].Name, got.Outputs[k].Type, o.Name, o.Type)
				}
			}
			for j, jet := range m.inputs.Jets {
				for k, want := range m.want(jet) {
					if g := got.Outputs[k].Jets[j]; len(g) != len(want) || (len(g) > 0 && !reflect.DeepEqual(g, want)) {
						t.Errorf("jet %d output %s = %v, want %v", j, got.Outputs[k].Name, g, want)
					}
				}
			}

			// The latency program, on the model twice: a line per model,
			// runs × jets calls each.
			latency := filepath.Join(build, base, names.LatencyProgram)
			lat, err := exec.Command(latency, inPath, "3", modelPath, modelPath).CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", latency, err, lat)
			}
			lines := strings.Split(strings.TrimSpace(string(lat)), "\n")
			if len(lines) != 2 {
				t.Fatalf("%s printed %d lines, want 2:\n%s", latency, len(lines), lat)
			}
			for i, line := range lines {
				var k, calls int
				var path string
				var median, p90, mean float64
				if _, err := fmt.Sscanf(line, "Model::Run latency: model %d %s %d calls, median %g ns, p90 %g ns, mean %g ns", &k, &path, &calls, &median, &p90, &mean); err != nil {
					t.Fatalf("line %q: %v", line, err)
				}
				if k != i || path != "("+modelPath+"):" || calls != 3*len(m.inputs.Jets) || median <= 0 || p90 < median || mean <= 0 {
					t.Errorf("line %q: model %d, path %s, %d calls, median %g, p90 %g, mean %g", line, k, path, calls, median, p90, mean)
				}
			}
			for _, args := range [][]string{{inPath, "x", modelPath}, {inPath, "3"}} {
				var exit *exec.ExitError
				if out, err := exec.Command(latency, args...).CombinedOutput(); !errors.As(err, &exit) || exit.ExitCode() != 2 {
					t.Errorf("%s %v: %v, want exit 2\n%s", latency, args, err, out)
				}
			}

			// Inputs with other sizes than the model's.
			in := *m.inputs
			in.GroupVars = append(append([]int(nil), in.GroupVars...), 1)
			in.Jets = nil
			b.Reset()
			WriteInputs(&b, &in)
			os.WriteFile(inPath, b.Bytes(), 0o644)
			out, err := exec.Command(program, modelPath, inPath, outPath).CombinedOutput()
			if want := "constituent inputs, the model has"; err == nil || !strings.Contains(string(out), want) {
				t.Errorf("inputs with another number of constituent inputs: %v\n%s", err, out)
			}
			if _, err := os.Stat(outPath); !os.IsNotExist(err) {
				t.Errorf("a failed run left %s (%v)", outPath, err)
			}
			var exit *exec.ExitError
			out, err = exec.Command(program, modelPath).CombinedOutput()
			if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "usage:") {
				t.Errorf("no arguments: %v\n%s", err, out)
			}
		})
	}

	// A model whose second input has another name than the interface's.
	t.Run("other interface", func(t *testing.T) {
		other := graph.New("other")
		x := other.Input("jet_features", graph.Float32, graph.Shape{1, 2})
		other.Input("track_features", graph.Float32, graph.Shape{-1, 3})
		other.Input("hits", graph.Float32, graph.Shape{-1, 2})
		other.Output("two_score", other.ReduceSum(x, []int{0, 1}, false))
		otherModel, _ := other.Marshal(graph.ModelOptions{})
		otherPath := filepath.Join(work, "other.onnx")
		os.WriteFile(otherPath, otherModel, 0o644)
		var b bytes.Buffer
		WriteInputs(&b, twoGroupInputs())
		inPath, outPath := filepath.Join(work, "other_in.bin"), filepath.Join(work, "other_out.bin")
		os.WriteFile(inPath, b.Bytes(), 0o644)
		out, err := exec.Command(filepath.Join(build, "two", "two_validate"), otherPath, inPath, outPath).CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "input 2 is hits, want hit_features") {
			t.Errorf("a model with another interface: %v\n%s", err, out)
		}
		// The same model with a wrong variable count.
		wrong := graph.New("wrong")
		y := wrong.Input("jet_features", graph.Float32, graph.Shape{1, 2})
		wrong.Input("track_features", graph.Float32, graph.Shape{-1, 4})
		wrong.Input("hit_features", graph.Float32, graph.Shape{-1, 2})
		wrong.Output("two_score", wrong.ReduceSum(y, []int{0, 1}, false))
		wrongModel, _ := wrong.Marshal(graph.ModelOptions{})
		os.WriteFile(otherPath, wrongModel, 0o644)
		out, err = exec.Command(filepath.Join(build, "two", "two_validate"), otherPath, inPath, outPath).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "input track_features is not float32 [?, 3]") {
			t.Errorf("a model with another variable count: %v\n%s", err, out)
		}
	})
}

// userCMake adds the generated directory BASE and a user program linking
// its header-only target LIB.
const userCMake = `add_subdirectory(BASE)
add_executable(user_BASE user_BASE.cc)
target_link_libraries(user_BASE PRIVATE LIB)
target_compile_options(user_BASE PRIVATE -Wall -Wextra -Werror)
set_target_properties(user_BASE PROPERTIES BUILD_RPATH "${ORT_DIR}/lib")
`

// userWant is what each user program prints.
var userWant = map[string]string{
	"gn2_tiny_v1": "score 6\nlabels 2 0\n" +
		"error salt_ort::gn2_tiny_v1::Model::Run: track_features has 4 values, want n * variables = 1 * 3\n" +
		"error salt_ort::gn2_tiny_v1::Model::Run: jet_features has 1 values, want kNumJetVariables = 2\n",
	"two": "score 27\nlabels 2 0\nhit sums 3 7 11\n" +
		"error salt_ort::two::Model::Run: hit_features has 5 values, want n * variables = 3 * 2\n" +
		"error salt_ort::two::Model::Run: track_features: negative number of constituents n = -1\n",
	"jetonly": "score 3 max 2\n",
}

// userOneGroup uses the one-constituent-input interface that predates
// several constituent inputs, unchanged.
const userOneGroup = `#include "gn2_tiny_v1_model.h"

#include <cstdio>
#include <stdexcept>
#include <vector>

int main(int, char** argv) {
  namespace m = salt_ort::gn2_tiny_v1;
  static_assert(m::kNumJetVariables == 2 && m::kNumConstituentVariables == 3 && m::kNumOutputs == 3, "sizes");
  static_assert(m::kConstituentVariables.size() == 3 && m::kNumConstituentInputs == 1, "aliases");
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

const userTwoGroups = `#include "two_model.h"

#include <cstdio>
#include <stdexcept>
#include <vector>

int main(int, char** argv) {
  namespace m = salt_ort::two;
  static_assert(m::kNumConstituentInputs == 2 && m::kTrackIndex == 0 && m::kHitIndex == 1, "indices");
  static_assert(m::kNumTrackVariables == 3 && m::kNumHitVariables == 2 && m::kHitVariables.size() == 2, "sizes");
  Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "user");
  const m::Model model(env, argv[1]);
  std::array<m::Constituents, m::kNumConstituentInputs> groups;
  groups[m::kTrackIndex] = {{0, 1, 2, 3, -1, -2}, 2};
  groups[m::kHitIndex] = {{1, 2, 3, 4, 5, 6}, 3};
  m::Outputs out = model.Run({1, 2}, groups);
  std::printf("score %g\nlabels %d %d\n", out.two_score, out.two_track_label.at(0), out.two_track_label.at(1));
  std::printf("hit sums %g %g %g\n", out.two_hit_sum.at(0), out.two_hit_sum.at(1), out.two_hit_sum.at(2));
  groups[m::kHitIndex].features.pop_back();
  try {
    model.Run({1, 2}, groups);
  } catch (const std::invalid_argument& e) {
    std::printf("error %s\n", e.what());
  }
  groups[m::kTrackIndex].n = -1;
  try {
    model.Run({1, 2}, groups);
  } catch (const std::invalid_argument& e) {
    std::printf("error %s\n", e.what());
  }
  return 0;
}
`

const userJetOnly = `#include "jetonly_model.h"

#include <cstdio>

int main(int, char** argv) {
  namespace m = salt_ort::jetonly;
  static_assert(m::kNumConstituentInputs == 0 && m::kConstituentInputNames.empty(), "no constituents");
  Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "user");
  const m::Model model(env, argv[1]);
  m::Outputs a = model.Run({1, 2});
  m::Outputs b = model.Run({1, 2}, {});
  std::printf("score %g max %g\n", a.jetonly_score, b.jetonly_max);
  return 0;
}
`

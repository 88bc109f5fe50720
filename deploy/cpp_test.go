package deploy

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/salt-ort/salt-ort/codegen/cppgen"
	"github.com/salt-ort/salt-ort/codegen/onnxpb"
	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/gendata"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/internal/onnxcheck"
	"github.com/salt-ort/salt-ort/internal/testkit/fixture"
	"github.com/salt-ort/salt-ort/runtime"
	"github.com/salt-ort/salt-ort/train"
)

// cppExport trains the tiny model on generated data and exports it with
// jets validation vectors, returning the model path.
func cppExport(t *testing.T, rt *runtime.Runtime, jets int) string {
	t.Helper()
	ctx := context.Background()
	data := datasets.Get(t, gendata.Config{Seed: 7, Train: 300, Val: jets, Test: 10})
	cfg, err := config.Load(fixture.WriteConfig(t, fixture.Tiny(data, fixture.Options{NumTrain: 200, Epochs: 1, Threads: 1, Dropout: 0.1})))
	if err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(t.TempDir(), "run")
	if _, err := train.Run(ctx, train.Options{Config: cfg, RunDir: runDir, Runtime: rt}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "tiny.onnx")
	if _, err := Export(ctx, ExportOptions{RunDir: runDir, Out: out, ValidationJets: jets, Version: "test", Runtime: rt, Checker: onnxcheck.Checker{}}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCpp exports a trained model, generates and builds its C++ program
// and checks that it reproduces the Go outputs bit for bit; that a
// differing Go result is reported with its output, jet and values; and
// that the generated code is deterministic.
func TestCpp(t *testing.T) {
	start := time.Now()
	rt := graphtest.OpenRuntime(t)
	path := cppExport(t, rt, 60)
	t.Logf("train and export: %v", time.Since(start))

	rep, err := Validate(context.Background(), ValidateOptions{Model: path, Threads: 1, Runtime: rt})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(rt, path, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	v, err := m.ReadVectors(VectorsPath(path))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("Interface", func(t *testing.T) {
		iface := m.CppInterface()
		if iface.Kind != cppgen.Athena || len(iface.Inputs) != 2 || iface.Inputs[0].Name != "jet_features" || iface.Inputs[1].Name != "track_features" {
			t.Fatalf("interface %+v", iface)
		}
		if strings.Join(iface.Inputs[1].Vars, ",") != strings.Join(v.Groups[0].Vars, ",") || strings.Join(iface.Inputs[0].Vars, ",") != strings.Join(v.JetVars, ",") {
			t.Errorf("variables %v %v, vectors have %v %v", iface.Inputs[0].Vars, iface.Inputs[1].Vars, v.JetVars, v.Groups[0].Vars)
		}
		if cppgen.Float32 != cppgen.ElementType(onnxpb.TensorProto_FLOAT) || cppgen.Int8 != cppgen.ElementType(onnxpb.TensorProto_INT8) {
			t.Error("cppgen's element types are not ONNX's")
		}
		kinds := map[bool]int{}
		for _, o := range iface.Outputs {
			kinds[o.PerConstituent()]++
			if o.PerConstituent() != (o.Type == cppgen.Int8) {
				t.Errorf("output %s: %v, per constituent %v", o.Name, o.Type, o.PerConstituent())
			}
		}
		if kinds[false] < 4 || kinds[true] != 2 {
			t.Errorf("outputs %+v", iface.Outputs)
		}
	})

	t.Run("Deterministic", func(t *testing.T) {
		a, b := t.TempDir(), t.TempDir()
		pa, err := cppgen.Generate(a, m.CppInterface())
		if err != nil {
			t.Fatal(err)
		}
		m2, err := Open(rt, path, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer m2.Close()
		pb, err := cppgen.Generate(b, m2.CppInterface())
		if err != nil {
			t.Fatal(err)
		}
		if len(pa) != 4 { // header, validation and latency programs, CMakeLists.txt
			t.Fatalf("generated %v", pa)
		}
		for i := range pa {
			x, _ := os.ReadFile(pa[i])
			y, _ := os.ReadFile(pb[i])
			if len(x) == 0 || !bytes.Equal(x, y) {
				t.Errorf("%s: two generations differ", filepath.Base(pa[i]))
			}
		}
	})

	work := t.TempDir()
	t.Run("BitwiseEqual", func(t *testing.T) {
		start := time.Now()
		got, err := m.Run(v)
		if err != nil {
			t.Fatal(err)
		}
		cr, err := ValidateCpp(context.Background(), m, v, got, CppOptions{WorkDir: work})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("C++ build %v, run %v, total %v", cr.Build, cr.Run, time.Since(start))
		if err := cr.Err(); err != nil {
			t.Fatal(err)
		}
		if len(cr.Outputs) != len(m.Outputs) || cr.Jets != v.Jets {
			t.Fatalf("report %+v", cr)
		}
		values := 0
		for _, o := range cr.Outputs {
			if o.Jets != v.Jets {
				t.Errorf("%s: %d jets compared, want %d", o.Name, o.Jets, v.Jets)
			}
			values += o.Values
		}
		if values == 0 {
			t.Error("no values compared")
		}
		// Validate's results are the same run.
		cr2, err := ValidateCpp(context.Background(), m, v, rep.Results, CppOptions{WorkDir: work})
		if err != nil {
			t.Fatal(err)
		}
		if err := cr2.Err(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Path", func(t *testing.T) {
		for _, results := range []map[string][][]float32{nil, rep.Results} {
			cr, err := ValidateCppPath(context.Background(), rt, path, "", results, CppOptions{WorkDir: work})
			if err != nil {
				t.Fatal(err)
			}
			if err := cr.Err(); err != nil || cr.Jets != v.Jets {
				t.Fatalf("%v, %d jets", err, cr.Jets)
			}
		}
	})

	t.Run("Mismatch", func(t *testing.T) {
		got, err := m.Run(v)
		if err != nil {
			t.Fatal(err)
		}
		// One ulp off in a float output, a class changed in an int8 one.
		var scalar, seq string
		for _, o := range m.Outputs {
			if o.Type == int32(onnxpb.TensorProto_FLOAT) && scalar == "" {
				scalar = o.Name
			}
			if o.Type == int32(onnxpb.TensorProto_INT8) && seq == "" {
				seq = o.Name
			}
		}
		const jet = 7
		orig := got[scalar][jet][0]
		got[scalar][jet][0] = math.Nextafter32(orig, 2)
		k := 0
		for len(got[seq][k]) == 0 {
			k++
		}
		got[seq][k][0] += 1
		cr, err := ValidateCpp(context.Background(), m, v, got, CppOptions{WorkDir: work})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("rebuild %v, run %v", cr.Build, cr.Run)
		if cr.Pass() {
			t.Fatal("a changed Go result passed")
		}
		e := cr.Err()
		if e == nil || !strings.Contains(e.Error(), scalar+": 1 of 60 jets differ, first at jet 7 value 0: Go ") || !strings.Contains(e.Error(), seq+": 1 of 60 jets differ") {
			t.Errorf("error %v", e)
		}
		for _, o := range cr.Outputs {
			switch o.Name {
			case scalar:
				f := o.First
				if o.Mismatches != 1 || f == nil || f.Jet != jet || f.Index != 0 || f.Cpp != orig || f.Go != got[scalar][jet][0] {
					t.Errorf("%s: %+v first %+v", o.Name, o, f)
				}
			case seq:
				if o.Mismatches != 1 || o.First == nil || o.First.Jet != k || o.First.Go != o.First.Cpp+1 {
					t.Errorf("%s: %+v first %+v", o.Name, o, o.First)
				}
			default:
				if !o.Pass() {
					t.Errorf("%s: %+v first %+v", o.Name, o, o.First)
				}
			}
		}
		// Missing outputs and jets are mismatches too.
		if got, err = m.Run(v); err != nil {
			t.Fatal(err)
		}
		delete(got, seq)
		got[scalar] = got[scalar][:10]
		cr, err = ValidateCpp(context.Background(), m, v, got, CppOptions{WorkDir: work})
		if err != nil {
			t.Fatal(err)
		}
		msg := cr.Err().Error()
		for _, want := range []string{"the Go results have no output " + seq, scalar + ": 50 of 60 jets differ, first at jet 10: the Go results have 10 jets, C++ 60"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q lacks %q", msg, want)
			}
		}
	})

	t.Run("FewConstituents", func(t *testing.T) {
		// Jets with no and with one constituent, as ATLAS sees them.
		few := *v
		few.Groups = append([]GroupVectors(nil), v.Groups...)
		few.Groups[0].N = append([]int(nil), v.Groups[0].N...)
		few.Groups[0].N[0], few.Groups[0].N[1] = 0, 1
		got, err := m.Run(&few)
		if err != nil {
			t.Fatal(err)
		}
		cr, err := ValidateCpp(context.Background(), m, &few, got, CppOptions{WorkDir: work})
		if err != nil {
			t.Fatal(err)
		}
		if err := cr.Err(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		if _, err := ValidateCpp(context.Background(), m, v, nil, CppOptions{ORTDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "ONNX Runtime not found") {
			t.Errorf("a missing ONNX Runtime: %v", err)
		}
		t.Setenv("PATH", t.TempDir())
		if _, err := ValidateCpp(context.Background(), m, v, nil, CppOptions{}); err == nil || !strings.Contains(err.Error(), "needs cmake") || !strings.Contains(err.Error(), "make deps") {
			t.Errorf("no cmake: %v", err)
		}
	})
	t.Logf("total %v", time.Since(start))
}

func TestFindORTDir(t *testing.T) {
	lib, err := runtime.LibraryPath("")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := FindORTDir("")
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := filepath.Abs(filepath.Dir(filepath.Dir(lib))); dir != want {
		t.Errorf("FindORTDir = %s, want %s", dir, want)
	}
	// Through a symbolic link elsewhere.
	link := filepath.Join(t.TempDir(), "libonnxruntime.so")
	if err := os.Symlink(lib, link); err != nil {
		t.Fatal(err)
	}
	if d, err := FindORTDir(link); err != nil || d != dir {
		t.Errorf("FindORTDir(link) = %s, %v", d, err)
	}
	lone := filepath.Join(t.TempDir(), "libonnxruntime.so")
	os.WriteFile(lone, nil, 0o644)
	if _, err := FindORTDir(lone); err == nil || !strings.Contains(err.Error(), "make deps") {
		t.Errorf("a library without headers: %v", err)
	}
}

func TestCompareBits(t *testing.T) {
	nan1, nan2 := math.Float32frombits(0x7fc00000), math.Float32frombits(0x7fc00001)
	negZero := float32(math.Copysign(0, -1))
	r := compareBits("x", "float32", [][]float32{{1, nan1}, {0}, {2, 3}}, true, [][]float32{{1, nan1}, {negZero}, {2}})
	if r.Jets != 3 || r.Values != 3 || r.Mismatches != 2 || r.First == nil || r.First.Jet != 1 || r.First.Index != 0 {
		t.Errorf("%+v %+v", r, r.First)
	}
	if s := r.First.String(); !strings.Contains(s, "0x00000000") || !strings.Contains(s, "0x80000000") {
		t.Errorf("mismatch %q", s)
	}
	if r := compareBits("x", "float32", [][]float32{{nan1}}, true, [][]float32{{nan2}}); r.Pass() {
		t.Error("NaNs with different payloads compared equal")
	}
}

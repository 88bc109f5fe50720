package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/salt-ort/salt-ort/codegen/onnxpb"
	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/gendata"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/nn"
	"github.com/salt-ort/salt-ort/internal/onnxcheck"
	"github.com/salt-ort/salt-ort/internal/testkit/fixture"
	"github.com/salt-ort/salt-ort/train"
)

// shared is a small trained run shared by the tests of the package.
var shared struct {
	once sync.Once
	data string // generated dataset
	cfg  string // configuration file
	run  string // trained run directory
}

var datasets fixture.Datasets

// trainRun trains the configuration at cfgPath into dir.
func trainRun(t testing.TB, cfgPath, dir string) {
	t.Helper()
	c, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := train.Run(context.Background(), train.Options{Config: c, RunDir: dir, Runtime: graphtest.OpenRuntime(t)}); err != nil {
		t.Fatal(err)
	}
}

// trainedRun returns the shared trained run (a tiny model called Tiny),
// creating it on first use.
func trainedRun(t testing.TB) (cfgPath, runDir string) {
	t.Helper()
	shared.once.Do(func() {
		shared.data = datasets.Get(t, gendata.Config{Seed: 4, Train: 800, Val: 300, Test: 100})
		// The configuration and run live beside the data, which outlives
		// the test that makes them.
		cfg := filepath.Join(shared.data, "tiny.toml")
		if err := os.WriteFile(cfg, []byte(fixture.Tiny(shared.data, fixture.Options{Name: "Tiny", NumTrain: 500, Seed: 9})), 0o644); err != nil {
			t.Fatal(err)
		}
		run := filepath.Join(shared.data, "run")
		trainRun(t, cfg, run)
		shared.cfg, shared.run = cfg, run
	})
	if shared.run == "" {
		t.Fatal("the shared run could not be trained")
	}
	return shared.cfg, shared.run
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "salt-ort-deploy-cpp")
	if err != nil {
		panic(err)
	}
	cppWork = dir
	code := m.Run()
	datasets.RemoveAll()
	os.RemoveAll(dir)
	os.Exit(code)
}

func export(t *testing.T, run, out string, batched bool) *Exported {
	t.Helper()
	ex, err := Export(context.Background(), ExportOptions{RunDir: run, Out: out, Batched: batched, ValidationJets: 200, Version: "test", Runtime: graphtest.OpenRuntime(t), Checker: onnxcheck.Checker{}})
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

func validate(t *testing.T, model, vectors string) *Report {
	t.Helper()
	rep, err := Validate(context.Background(), ValidateOptions{Model: model, Vectors: vectors, Runtime: graphtest.OpenRuntime(t)})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func readBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExportValidate(t *testing.T) {
	cfg, run := trainedRun(t)
	for _, batched := range []bool{false, true} {
		name := map[bool]string{false: "athena", true: "batched"}[batched]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			a := export(t, run, filepath.Join(dir, "a", "model.onnx"), batched)
			b := export(t, run, filepath.Join(dir, "b", "model.onnx"), batched)
			if a.SHA256 != b.SHA256 || !bytes.Equal(readBytes(t, a.Vectors), readBytes(t, b.Vectors)) {
				t.Fatal("two exports of one checkpoint differ")
			}
			if onnxcheck.Available() {
				if err := onnxcheck.Check(readBytes(t, a.Model)); err != nil {
					t.Fatal(err)
				}
			}
			rep := validate(t, a.Model, "")
			if !rep.Pass() {
				t.Fatalf("validation failed: %+v", rep.Outputs)
			}
			for _, o := range rep.Outputs {
				t.Logf("%s: %d compared, max abs %.3g, near boundary %d", o.Name, o.Compared, o.MaxAbs, o.NearBoundary)
			}
			// The metadata reads back.
			m, err := Open(graphtest.OpenRuntime(t), a.Model, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if m.Meta.Model != "Tiny" || m.Meta.Interface != name || m.Meta.ValidationJets != 200 ||
				len(m.Meta.TrainingData) != 1 || m.Meta.TrainingData[0].Name != "train.h5" || len(m.Meta.Inputs[1].Variables) != 7 ||
				m.Meta.Validation.SHA256 == "" || m.Meta.Checkpoint.SHA256 == "" {
				t.Errorf("metadata did not round-trip: %+v", m.Meta)
			}
			if !strings.Contains(string(readBytes(t, a.Card)), "IP3D_signed_d0_significance") {
				t.Error("the model card does not list the inputs")
			}
			_ = cfg
		})
	}
}

// TestExportAfterRetrainIsIdentical retrains the fixture configuration
// with the same seed and exports again.
func TestExportAfterRetrainIsIdentical(t *testing.T) {
	cfg, run := trainedRun(t)
	again := filepath.Join(t.TempDir(), "again")
	trainRun(t, cfg, again)
	a := export(t, run, filepath.Join(t.TempDir(), "model.onnx"), false)
	b := export(t, again, filepath.Join(t.TempDir(), "model.onnx"), false)
	if a.SHA256 != b.SHA256 {
		ma, _ := json.MarshalIndent(a.Metadata, "", " ")
		mb, _ := json.MarshalIndent(b.Metadata, "", " ")
		t.Fatalf("exports of identical seeded retrains differ:\n%s\n%s", ma, mb)
	}
}

func TestValidateCatchesDamage(t *testing.T) {
	_, run := trainedRun(t)
	ex := export(t, run, filepath.Join(t.TempDir(), "model.onnx"), false)

	t.Run("perturbed weight", func(t *testing.T) {
		mp, err := onnxpb.Unmarshal(readBytes(t, ex.Model))
		if err != nil {
			t.Fatal(err)
		}
		for _, init := range mp.GetGraph().GetInitializer() {
			if init.GetName() == "encoder/layer0/attn/in_proj/weight" {
				raw := init.GetRawData()
				raw[3] ^= 0x40 // flip an exponent bit of the first weight
			}
		}
		b, err := onnxpb.Marshal(mp)
		if err != nil {
			t.Fatal(err)
		}
		bad := filepath.Join(t.TempDir(), "bad.onnx")
		os.WriteFile(bad, b, 0o644)
		rep := validate(t, bad, ex.Vectors)
		if rep.Pass() {
			t.Fatal("a model with a perturbed weight passed validation")
		}
	})
	t.Run("swapped input variables", func(t *testing.T) {
		m, err := Open(graphtest.OpenRuntime(t), ex.Model, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		v, err := m.ReadVectors(ex.Vectors)
		if err != nil {
			t.Fatal(err)
		}
		// Feed d0 and IP3D_signed_d0_significance (columns 0 and 4) swapped,
		// as a C++ caller with a wrong variable order would.
		g := &v.Groups[0]
		nv := len(g.Vars)
		for i := 0; i < len(g.Raw); i += nv {
			g.Raw[i], g.Raw[i+4] = g.Raw[i+4], g.Raw[i]
		}
		got, err := m.Run(v)
		if err != nil {
			t.Fatal(err)
		}
		failed := false
		for i, o := range m.vlayout.outputs {
			if !compare(o, m.Meta.ValidationOutputs[i].Type, got[o.Name], v, m.vlayout, DefaultTolerance).Pass() {
				failed = true
			}
		}
		if !failed {
			t.Fatal("swapped input variables passed validation")
		}
	})
	t.Run("vectors of another model", func(t *testing.T) {
		_, err := Validate(context.Background(), ValidateOptions{Model: ex.Model, Vectors: filepath.Join(shared.data, "val.h5"), Runtime: graphtest.OpenRuntime(t)})
		if err == nil {
			t.Fatal("a training file was accepted as validation vectors")
		}
	})
}

// TestAthenaWarnings checks what export warns about: constituent kinds
// ATLAS's loaders do not both read, and a model without registers (but
// for the legacy encoder).
func TestAthenaWarnings(t *testing.T) {
	base := model.GN2()
	for _, tc := range []struct {
		name   string
		change func(*model.Spec)
		want   []string
	}{
		{"gn2", func(*model.Spec) {}, nil},
		{"muons", func(s *model.Spec) { s.Inputs = append(s.Inputs, model.Input{Name: "muons"}) }, []string{"read only groups whose name contains tracks, flows, hits, electrons"}},
		{"electrons", func(s *model.Spec) { s.Inputs = append(s.Inputs, model.Input{Name: "electrons"}) }, []string{"only ATLAS's current loader (FlavorTagInference) reads electrons"}},
		{"no registers", func(s *model.Spec) { s.Encoder.Registers = 0 }, []string{"model.encoder.registers = 0"}},
		// Salt's legacy encoder has no registers but keeps a masked zero
		// token: a jet without tracks runs.
		{"legacy encoder", func(s *model.Spec) { s.Encoder.Kind, s.Encoder.Registers = nn.LegacyKind, 0 }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base
			s.Inputs = append([]model.Input(nil), base.Inputs...)
			tc.change(&s)
			got := AthenaWarnings(s)
			if len(got) != len(tc.want) {
				t.Fatalf("warnings %q, want %d", got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("warning %q lacks %q", got[i], w)
				}
			}
		})
	}
}

// TestExportSaysWhyCheckerSkipped exports where the checker's Python
// cannot import onnx, in an opset newer than python3-onnx checks, and with
// no checker: the export succeeds, records that the checker did not run
// and says why.
func TestExportSaysWhyCheckerSkipped(t *testing.T) {
	_, run := trainedRun(t)
	noPython := filepath.Join(t.TempDir(), "no-python3")
	for _, tc := range []struct {
		name    string
		checker ModelChecker
		opset   int
		want    string
	}{
		{"no onnx", onnxcheck.Checker{Python: noPython}, 0, "the ONNX checker was skipped: " + noPython + " cannot import onnx (install python3-onnx, or set SALT_ORT_ONNX_PYTHON to a Python that has it)"},
		{"opset too new", onnxcheck.Checker{}, 18, "the ONNX checker was skipped: python3-onnx checks opsets up to 17, and the model is opset 18"},
		{"no checker", nil, 0, "the ONNX checker was skipped: no reference ONNX checker was given to the export"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := Export(context.Background(), ExportOptions{RunDir: run, Out: filepath.Join(t.TempDir(), "m.onnx"), ValidationJets: 20,
				Version: "test", Runtime: graphtest.OpenRuntime(t), Opset: tc.opset, Checker: tc.checker})
			if err != nil {
				t.Fatal(err)
			}
			if ex.Checked || ex.CheckerSummary() != tc.want {
				t.Fatalf("checked %v: %q, want %q", ex.Checked, ex.CheckerSummary(), tc.want)
			}
		})
	}
	if !onnxcheck.Available() {
		return
	}
	ex := export(t, run, filepath.Join(t.TempDir(), "m.onnx"), false)
	if !ex.Checked || ex.CheckerSummary() != "the ONNX checker passed" {
		t.Fatalf("checked %v: %q where python3-onnx is installed", ex.Checked, ex.CheckerSummary())
	}
}

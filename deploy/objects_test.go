package deploy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/cpp/athenacheck"
	"github.com/salt-ort/salt-ort/gendata"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/model"
)

// TestExportMaskFormerObjects trains examples/maskformer.toml briefly,
// exports it with the objects (Salt's --object_name) and checks that the
// deployed model's track-to-object assignment reproduces the evaluation
// graph's, that the generated C++ program gives the same outputs bit for
// bit, and that ATLAS's loaders' rules hold.
func TestExportMaskFormerObjects(t *testing.T) {
	data := datasets.Get(t, gendata.Config{Seed: 21, Train: 400, Val: 200, Test: 20, TruthHadrons: 5})
	text, err := os.ReadFile("../examples/maskformer.toml")
	if err != nil {
		t.Fatal(err)
	}
	text = []byte(strings.ReplaceAll(string(text), "../data/maskformer", data))
	text = []byte(strings.Replace(string(text), "epochs = 4", "epochs = 1", 1))
	cfg := filepath.Join(data, "maskformer.toml")
	if err := os.WriteFile(cfg, text, 0o644); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(data, "run")
	trainRun(t, cfg, run)
	rt := graphtest.OpenRuntime(t)
	out := filepath.Join(t.TempDir(), "mf.onnx")

	for _, bad := range []struct {
		name string
		opts ExportOptions
		want string
	}{
		{"batched", ExportOptions{RunDir: run, Out: out, Batched: true, ObjectName: "Hadron", Runtime: rt}, "one-jet interface only"},
		{"white space", ExportOptions{RunDir: run, Out: out, ObjectName: "Had ron", Runtime: rt}, "white space"},
	} {
		if _, err := Export(context.Background(), bad.opts); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: error %v, want one saying %q", bad.name, err, bad.want)
		}
	}
	_, plain := trainedRun(t)
	if _, err := Export(context.Background(), ExportOptions{RunDir: plain, Out: out, ObjectName: "Hadron", Runtime: rt}); err == nil || !strings.Contains(err.Error(), "model.mask_decoder") {
		t.Errorf("a model without a mask decoder exported objects: %v", err)
	}

	ex, err := Export(context.Background(), ExportOptions{RunDir: run, Out: out, ObjectName: "Hadron", ValidationJets: 200, Version: "test", Runtime: rt})
	if err != nil {
		t.Fatal(err)
	}
	const name = "MaskFormer_HadronIndex"
	var found bool
	for _, o := range ex.Metadata.Outputs {
		if o.Name == name {
			found = true
			if o.Type != "int8" || o.Kind != string(model.ObjectIndex) || o.Group != "tracks" {
				t.Errorf("%s: %+v", name, o)
			}
		}
	}
	if !found {
		t.Fatalf("no output %s among %+v", name, ex.Metadata.Outputs)
	}
	rep := validate(t, ex.Model, "")
	if !rep.Pass() {
		t.Fatalf("validate: %+v", rep.Outputs)
	}
	// The vectors must hold tracks given to an object and tracks given to
	// none, or the comparison proves little.
	v, err := readVectorsFor(t, ex.Model)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[bool]int{}
	for _, x := range v.Expected[name] {
		if x >= model.ObjectIndexNone {
			counts[x >= 0]++
		}
	}
	if counts[true] == 0 || counts[false] == 0 {
		t.Fatalf("validation tracks with an object %d, without %d: want both", counts[true], counts[false])
	}
	for _, o := range rep.Outputs {
		if o.Name == name && (o.Compared == 0 || o.Mismatches != 0) {
			t.Errorf("%s: %d compared, %d mismatches", name, o.Compared, o.Mismatches)
		}
	}
	cr, err := ValidateCppPath(context.Background(), rt, ex.Model, "", nil, CppOptions{WorkDir: filepath.Join(cppWork, "validate")})
	if err != nil {
		t.Fatal(err)
	}
	if err := cr.Err(); err != nil {
		t.Fatal(err)
	}
	ar, err := athenacheck.Run(context.Background(), athenaProgram(t), ex.Model)
	if err != nil {
		t.Fatal(err)
	}
	if err := ar.Err(); err != nil {
		t.Fatal(err)
	}
}

// readVectorsFor reads the validation vectors of an exported model.
func readVectorsFor(t *testing.T, path string) (*Vectors, error) {
	t.Helper()
	m, err := Open(graphtest.OpenRuntime(t), path, 1)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	return m.ReadVectors(VectorsPath(path))
}

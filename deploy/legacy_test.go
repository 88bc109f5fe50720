package deploy

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/salt-ort/salt-ort/codegen/onnxpb"
	"github.com/salt-ort/salt-ort/cpp/athenacheck"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/internal/salttwin"
	"github.com/salt-ort/salt-ort/saltimport"
)

// TestExportLegacyEncoder imports a GN2 that Salt's legacy
// TransformerEncoder encodes (the PyTorch twin's config.yaml and
// checkpoint, GN2v01's dense block with dropout), exports it for ATLAS and
// checks the export as a user would: validate, validate --cpp (the
// generated C++ program bit for bit) and ATLAS's loaders' rules; and as
// the batched interface.
func TestExportLegacyEncoder(t *testing.T) {
	dir := t.TempDir()
	tw := salttwin.BuildLegacy(t, filepath.Join(dir, "twin"), salttwin.Legacy{Hidden: []int{48}, Dropout: 0.1, Activation: "ReLU"})
	run := filepath.Join(dir, "run")
	if _, err := saltimport.Import(saltimport.Options{Config: tw.ConfigYAML, Checkpoint: tw.Ckpt, Out: run}); err != nil {
		t.Fatal(err)
	}
	ex := export(t, run, filepath.Join(dir, "export", "GN2.onnx"), false)
	if !ex.Validation.Pass() || len(ex.Warnings) > 0 {
		t.Fatalf("export validation %+v, warnings %q", ex.Validation.Outputs, ex.Warnings)
	}
	mp, err := onnxpb.Unmarshal(readBytes(t, ex.Model))
	if err != nil {
		t.Fatal(err)
	}
	var outs []string
	for _, o := range mp.GetGraph().GetOutput() {
		outs = append(outs, o.GetName())
	}
	if want := []string{"GN2_pb", "GN2_pc", "GN2_pu", "GN2_ptau", "GN2_TrackOrigin", "GN2_VertexIndex"}; !slices.Equal(outs, want) {
		t.Errorf("outputs %v, want %v", outs, want)
	}
	if rep := validate(t, ex.Model, ""); !rep.Pass() {
		t.Fatalf("validate: %+v", rep.Outputs)
	}
	cr, err := ValidateCppPath(context.Background(), graphtest.OpenRuntime(t), ex.Model, "", nil, CppOptions{WorkDir: filepath.Join(cppWork, "validate-legacy")})
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
	// The batched interface (dynamic batch, valid masks) validates too.
	if b := export(t, run, filepath.Join(dir, "batched", "GN2.onnx"), true); !b.Validation.Pass() {
		t.Fatalf("batched export validation %+v", b.Validation.Outputs)
	}
}

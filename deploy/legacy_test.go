package deploy

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/salt-ort/salt-ort/codegen/onnxpb"
	"github.com/salt-ort/salt-ort/cpp/athenacheck"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/nn"
	"github.com/salt-ort/salt-ort/internal/testkit/salttwin"
	"github.com/salt-ort/salt-ort/runtime"
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

// BenchmarkLegacyDeployLatency prints the per-jet latency of GN2's
// deployment graph (random weights) with Salt's Transformer and with its
// legacy TransformerEncoder at the same sizes (4 layers, 8 heads, 256
// wide, out_dim 128), one jet of n tracks at a time, single-threaded, as
// ATLAS software calls it, and the legacy encoder's reference graph (the
// forward pass, which Deploy's one-jet operators replace); and the legacy
// encoder's on a jet without tracks, which it runs as Salt's export does.
func BenchmarkLegacyDeployLatency(b *testing.B) {
	legacy := model.GN2()
	legacy.Encoder = nn.EncoderConfig{Kind: nn.LegacyKind, Layers: 4, Heads: 8, DenseRatio: 2, Activation: nn.ReLU, OutDim: 128}
	for _, n := range []int{0, 40} {
		for _, c := range []struct {
			name string
			spec model.Spec
			opts model.DeployOptions
		}{
			{"Transformer", model.GN2(), model.DeployOptions{}},
			{"legacy TransformerEncoder", legacy, model.DeployOptions{}},
			{"legacy TransformerEncoder (reference forward graph)", legacy, model.DeployOptions{Reference: true}},
		} {
			if n == 0 && c.spec.Encoder.Kind != nn.LegacyKind {
				continue // ONNX Runtime fails on an empty jet without registers or the legacy zero token
			}
			per := oneJetLatency(b, c.spec, c.opts, n)
			b.Logf("GN2 with Salt's %s, from Go, 1 thread, %d tracks: %v per jet", c.name, n, per)
		}
	}
}

// oneJetLatency times the deployment graph of spec (random weights) on
// one jet of n random tracks.
func oneJetLatency(b *testing.B, spec model.Spec, opts model.DeployOptions, n int) time.Duration {
	b.Helper()
	data := randomDeployModel(b, spec, opts)
	sess, err := graphtest.OpenRuntime(b).NewSession(spec.Name, data, runtime.Options{IntraOpThreads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer sess.Close()
	r := rand.New(rand.NewPCG(1, 1))
	nv := len(spec.Inputs[0].Vars)
	tf := make([]float32, n*nv)
	for i := range tf {
		tf[i] = float32(r.NormFloat64())
	}
	jet, _ := runtime.NewTensor([]int64{1, int64(len(spec.JetVars))}, make([]float32, len(spec.JetVars)))
	trk, _ := runtime.NewTensor([]int64{int64(n), int64(nv)}, tf)
	outs := make([]runtime.Value, len(sess.OutputNames()))
	for i, name := range sess.OutputNames() {
		if strings.HasSuffix(name, "_TrackOrigin") || strings.HasSuffix(name, "_VertexIndex") {
			outs[i], _ = runtime.NewTensor([]int64{int64(n)}, make([]int8, n))
		} else {
			outs[i], _ = runtime.NewScalar[float32](0)
		}
	}
	defer runtime.Destroy(append(outs, jet, trk)...)
	const runs = 200
	if err := sess.Run([]runtime.Value{jet, trk}, outs); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for i := 0; i < runs; i++ {
		if err := sess.Run([]runtime.Value{jet, trk}, outs); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start) / runs
}

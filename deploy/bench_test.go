package deploy

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/gendata"
	"github.com/salt-ort/salt-ort/internal/testkit/fixture"
	"github.com/salt-ort/salt-ort/train"

	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/internal/onnxcheck"
	"github.com/salt-ort/salt-ort/runtime"
)

// BenchmarkGN2DeployLatency prints the per-jet latency of the GN2
// deployment graph (../shared/spec's GN2, random weights) called from Go
// one jet at a time with 40 tracks, single-threaded, as ATLAS software
// calls it.
func BenchmarkGN2DeployLatency(b *testing.B) {
	data := randomDeployModel(b, model.GN2(), model.DeployOptions{})
	r := rand.New(rand.NewPCG(1, 1))
	sess, err := graphtest.OpenRuntime(b).NewSession("GN2", data, runtime.Options{IntraOpThreads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer sess.Close()
	const n = 40
	jf := make([]float32, 2)
	tf := make([]float32, n*19)
	for i := range tf {
		tf[i] = float32(r.NormFloat64())
	}
	jet, _ := runtime.NewTensor([]int64{1, 2}, jf)
	trk, _ := runtime.NewTensor([]int64{n, 19}, tf)
	outs := make([]runtime.Value, len(sess.OutputNames()))
	for i, name := range sess.OutputNames() {
		if name == "GN2_TrackOrigin" || name == "GN2_VertexIndex" {
			outs[i], _ = runtime.NewTensor([]int64{n}, make([]int8, n))
		} else {
			outs[i], _ = runtime.NewScalar[float32](0)
		}
	}
	defer runtime.Destroy(append(outs, jet, trk)...)
	if err := sess.Run([]runtime.Value{jet, trk}, outs); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := sess.Run([]runtime.Value{jet, trk}, outs); err != nil {
			b.Fatal(err)
		}
	}
	per := time.Since(start) / time.Duration(b.N)
	b.ReportMetric(float64(per.Microseconds())/1000, "ms/jet")
	b.Logf("GN2 deployment graph from Go, 1 thread, 40 tracks: %v per jet", per)
}

// BenchmarkGN2LatencyGoVsCpp exports a GN2 (one training step on
// generated jets), gives its validation jets 40 tracks each, and prints the
// per-jet latency of the deployment model single-threaded from Go
// (Model.Run, including making the tensors) and from the generated C++
// program (time in Model::Run), after checking their outputs are
// bit-identical.
func BenchmarkGN2LatencyGoVsCpp(b *testing.B) {
	data := datasets.Get(b, gendata.Config{Seed: 3, Train: 100, Val: 100, Test: 10})
	text, err := os.ReadFile("../examples/gn2.toml")
	if err != nil {
		b.Fatal(err)
	}
	cfgText := strings.ReplaceAll(string(text), "../data/demo", data)
	cfgText = strings.Replace(cfgText, "batch_size = 1000", "batch_size = 50", 1)
	cfgText = strings.Replace(cfgText, "num_train = -1", "num_train = 50", 1)
	cfgText = strings.Replace(cfgText, "epochs = 40", "epochs = 1", 1)
	rt := graphtest.OpenRuntime(b)
	cfg, err := config.Load(fixture.WriteConfig(b, cfgText))
	if err != nil {
		b.Fatal(err)
	}
	run := filepath.Join(b.TempDir(), "run")
	if _, err := train.Run(context.Background(), train.Options{Config: cfg, RunDir: run, Runtime: rt}); err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(b.TempDir(), "GN2.onnx")
	if _, err := Export(context.Background(), ExportOptions{RunDir: run, Out: out, ValidationJets: 100, Version: "bench", Runtime: rt, Checker: onnxcheck.Checker{}}); err != nil {
		b.Fatal(err)
	}
	m, err := Open(rt, out, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	v, err := m.ReadVectors(VectorsPath(out))
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(2, 2))
	g := &v.Groups[0]
	for j := range g.N {
		g.N[j] = g.MaxLen
	}
	for i := range g.Raw {
		if g.Raw[i] == 0 {
			g.Raw[i] = float32(r.NormFloat64())
		}
	}
	b.ResetTimer()
	var goRes map[string][][]float32
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if goRes, err = m.Run(v); err != nil {
			b.Fatal(err)
		}
	}
	goPer := time.Since(start) / time.Duration(b.N*v.Jets)
	b.StopTimer()
	rep, err := ValidateCpp(context.Background(), m, v, goRes, CppOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if !rep.Pass() {
		b.Fatalf("C++ outputs differ from Go's: %v", rep.Err())
	}
	b.ReportMetric(float64(goPer.Microseconds())/1000, "ms/jet-go")
	b.ReportMetric(float64(rep.PerJet.Microseconds())/1000, "ms/jet-cpp")
	b.Logf("GN2 deployment model, 1 thread, 40 tracks: Go %v per jet, C++ %v per jet in Model::Run (C++/Go %.2f); outputs bit-identical",
		goPer, rep.PerJet, float64(rep.PerJet)/float64(goPer))
}

package deploy

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/runtime"
)

// BenchmarkGN2DeployLatency prints the per-jet latency of the GN2
// deployment graph (../shared/spec's GN2, random weights) called from Go
// one jet at a time with 40 tracks, single-threaded, as ATLAS software
// calls it.
func BenchmarkGN2DeployLatency(b *testing.B) {
	spec := model.GN2()
	norm := model.Normalisation{Inputs: map[string]model.Affine{}}
	for range spec.JetVars {
		norm.Jets.Mean = append(norm.Jets.Mean, 0)
		norm.Jets.Std = append(norm.Jets.Std, 1)
	}
	var a model.Affine
	for range spec.Inputs[0].Vars {
		a.Mean = append(a.Mean, 0)
		a.Std = append(a.Std, 1)
	}
	norm.Inputs["tracks"] = a
	g, err := spec.Deploy(norm)
	if err != nil {
		b.Fatal(err)
	}
	_, layout, err := spec.Eval(1)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	values := map[string][]byte{}
	for _, p := range layout {
		v := p.Init.Sample(r, int(p.Size))
		f := make([]float32, len(v))
		for i := range v {
			f[i] = float32(v[i])
		}
		values[p.Name] = graph.Float32Bytes(f)
	}
	data, err := g.Marshal(graph.ModelOptions{ParamValues: values})
	if err != nil {
		b.Fatal(err)
	}
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

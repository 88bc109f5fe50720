package train

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/optim"
	"github.com/salt-ort/salt-ort/runtime"
)

// BenchmarkGN2TrainStep times the full GN2 training step (forward, the
// three task losses, backward, clipping, AdamW) of ../shared/spec's GN2
// on the CPU with 2 threads, and prints jets/s, the FLOPs per jet counted
// from the graph and the achieved GFLOP/s. The anchor to compare with is
// ../shared/reference/gn2_reference.py --device cpu --threads 2 on the same
// machine.
func BenchmarkGN2TrainStep(b *testing.B) {
	for _, batch := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			spec := model.GN2()
			spec.Tasks[2].OriginWeighting = true
			g, layout, err := spec.TrainStep(model.TrainOptions{Batch: batch, Step: optim.Step{Optimizer: optim.DefaultAdamW(), ClipNorm: 1}})
			if err != nil {
				b.Fatal(err)
			}
			cost := g.Cost()
			m, err := g.Marshal(graph.ModelOptions{})
			if err != nil {
				b.Fatal(err)
			}
			sess, err := graphtest.OpenRuntime(b).NewSession("train_step", m, runtime.Options{IntraOpThreads: 2})
			if err != nil {
				b.Fatal(err)
			}
			defer sess.Close()
			bind, err := runtime.NewBinding(sess, specs(g))
			if err != nil {
				b.Fatal(err)
			}
			defer bind.Close()
			fillRandomBatch(b, bind, spec, batch, layout)
			if err := bind.Run(); err != nil { // warm-up
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if err := bind.Run(); err != nil {
					b.Fatal(err)
				}
			}
			sec := time.Since(start).Seconds()
			jetsPerS := float64(batch*b.N) / sec
			b.ReportMetric(jetsPerS, "jets/s")
			b.ReportMetric(float64(cost.FLOPs())/float64(batch)/1e6, "MFLOP/jet")
			b.ReportMetric(float64(cost.FLOPs())*float64(b.N)/sec/1e9, "GFLOP/s")
			b.Logf("GN2 train step, batch %d, 2 threads: %.0f jets/s; %.0f MFLOP/jet counted (%.0f in matrix products), %.1f GFLOP/s; %d nodes",
				batch, jetsPerS, float64(cost.FLOPs())/float64(batch)/1e6, float64(cost.MatMulFLOPs)/float64(batch)/1e6,
				float64(cost.FLOPs())*float64(b.N)/sec/1e9, cost.Nodes)
		})
	}
}

// fillRandomBatch fills a training binding with a plausible random batch:
// 3 to 39 valid tracks per jet, labels in range, weights 1.
func fillRandomBatch(b *testing.B, bind *runtime.Binding, spec model.Spec, batch int, layout *optim.Layout) {
	r := rand.New(rand.NewPCG(1, 2))
	set := func(name string, f func(i int) float32) {
		v, err := bind.Float32(name)
		if err != nil {
			b.Fatal(err)
		}
		for i := range v {
			v[i] = f(i)
		}
	}
	set(model.JetsInput, func(int) float32 { return float32(r.NormFloat64()) })
	set("tracks", func(int) float32 { return float32(r.NormFloat64()) })
	set(model.JetWeightInput, func(int) float32 { return 1 })
	set(model.TaskWeightsInput, func(int) float32 { return 1 })
	init := rand.New(rand.NewPCG(3, 4))
	params, _ := bind.Float32(optim.ParamsInput)
	for _, p := range layout.Params {
		for i, v := range p.Init.Sample(init, int(p.Size)) {
			params[p.Offset+int64(i)] = float32(v)
		}
	}
	bind.SetScalar(optim.LRInput, 1e-4)
	bind.SetScalar(optim.StepInput, 1)
	valid, _ := bind.Bool("tracks/valid")
	t := spec.Inputs[0].MaxLen
	n := make([]int, batch)
	for j := range n {
		n[j] = 3 + r.IntN(t-3)
		for i := 0; i < t; i++ {
			valid[j*t+i] = i < n[j]
		}
	}
	for _, task := range spec.Tasks {
		v, _ := bind.Int64(model.LabelInput(task.Name))
		classes := max(len(task.Classes), 3)
		for i := range v {
			v[i] = int64(r.IntN(classes))
		}
		if task.OriginWeighting {
			o, _ := bind.Int64(model.OriginInput(task.Name))
			for i := range o {
				o[i] = int64(r.IntN(8))
			}
		}
	}
}

package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/optim"
	"github.com/salt-ort/salt-ort/internal/testkit/fixture"
	"github.com/salt-ort/salt-ort/run"
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
			bind, err := runtime.NewBinding(sess, run.TensorSpecs(g))
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

// fillRandomBatch fills a training binding with a synthetic batch (see
// syntheticBatch), freshly initialised parameters and task weights 1.
func fillRandomBatch(b *testing.B, bind *runtime.Binding, spec model.Spec, batch int, layout *optim.Layout) {
	r := rand.New(rand.NewPCG(1, 2))
	feed := run.Feeder{Spec: spec, JetDataset: "jets", Labels: true}
	if err := feed.Fill(bind, syntheticBatch(spec, "jets", batch, r)); err != nil {
		b.Fatal(err)
	}
	if err := bind.Write(optim.ParamsInput, initialParams(layout, r)); err != nil {
		b.Fatal(err)
	}
	w, _ := bind.Float32(model.TaskWeightsInput)
	for i := range w {
		w[i] = 1
	}
	bind.SetScalar(optim.LRInput, 1e-4)
	bind.SetScalar(optim.StepInput, 1)
}

// TestBench times the tiny model's training step and inference on the
// CPU and checks that the figures hang together.
func TestBench(t *testing.T) {
	c := loadConfig(t, fixture.Tiny(dataset(t, 2000, 300, 300), fixture.Options{}))
	spec, err := BenchSpec(c)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Bench(context.Background(), BenchOptions{Runtime: graphtest.OpenRuntime(t), Config: c, Spec: spec,
		Modes: []string{BenchTrain, BenchInfer}, Batches: []int{8, 32}, Warmup: 1, Steps: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 {
		t.Fatalf("%d results, want 4", len(res))
	}
	for _, r := range res {
		if r.JetsPerSecond <= 0 || r.P50MS <= 0 || r.P50MS > r.P90MS || r.P90MS > r.P99MS || r.MFLOPPerJet <= 0 || r.GFLOPPerS <= 0 || r.Steps != 5 {
			t.Errorf("implausible result %+v", r)
		}
		if want := float64(r.Batch) / (r.MeanMS / 1e3); math.Abs(r.JetsPerSecond-want) > 1e-6*want {
			t.Errorf("%s batch %d: %.1f jets/s but a mean step of %.3f ms", r.Mode, r.Batch, r.JetsPerSecond, r.MeanMS)
		}
	}
	if train, infer := res[0], res[1]; train.MFLOPPerJet < 2*infer.MFLOPPerJet {
		t.Errorf("a training step counts %.2f MFLOP/jet, inference %.2f: the backward pass is missing", train.MFLOPPerJet, infer.MFLOPPerJet)
	}
	if _, err := Bench(context.Background(), BenchOptions{Runtime: graphtest.OpenRuntime(t), Config: c, Spec: spec, Modes: []string{"fly"}, Batches: []int{8}, Steps: 1}); err == nil {
		t.Error("an unknown mode was accepted")
	}
}

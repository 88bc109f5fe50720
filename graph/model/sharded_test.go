package model_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/optim"
)

// half returns the rows [from, from+n) of a batch's feeds for spec s.
func half(s model.Spec, feeds map[string][]float64, b, from, n int) map[string][]float64 {
	out := map[string][]float64{}
	for name, v := range feeds {
		if name == model.TaskWeightsInput || name == optim.ParamsInput {
			out[name] = v
			continue
		}
		per := len(v) / b
		out[name] = v[from*per : (from+n)*per]
	}
	return out
}

// TestShardedStepSumsToBatch splits a batch into two shards as
// data-parallel training does: their denominators sum to the batch's, and
// with those as inputs their sharded gradients and losses sum to the
// batch's; the update graph applied to the summed gradient gives what the
// one-graph training step gives.
func TestShardedStepSumsToBatch(t *testing.T) {
	// The regressions' losses have NaN targets left out, denominators and
	// sample weights: their means must sum over shards too.
	for name, s := range map[string]model.Spec{"gn2": tiny(), "regressions": tinyRegression()} {
		t.Run(name, func(t *testing.T) { shardedStepSumsToBatch(t, s, name == "regressions") })
	}
}

func shardedStepSumsToBatch(t *testing.T, s model.Spec, generic bool) {
	const b = 8
	step := optim.Step{Optimizer: optim.DefaultAdamW(), ClipNorm: 5}
	full, layout, err := s.GradientStep(model.TrainOptions{Batch: b, Step: step})
	if err != nil {
		t.Fatal(err)
	}
	shard, _, err := s.GradientStep(model.TrainOptions{Batch: b / 2, Step: step, Sharded: true})
	if err != nil {
		t.Fatal(err)
	}
	dens := map[int]*graphtest.Runner{}
	for _, n := range []int{b, b / 2} {
		g, err := s.Denominators(n)
		if err != nil {
			t.Fatal(err)
		}
		dens[n] = graphtest.Compile(t, g, graph.ModelOptions{})
	}
	feeds := fakeBatch(s, b, rand.New(rand.NewPCG(3, 4)))
	if generic {
		feeds = kindBatch(s, full, b, rand.New(rand.NewPCG(3, 4)))
	}
	feeds[model.JetWeightInput][b-1] = 1 // no padding row: both shards have weight
	feeds[optim.ParamsInput] = initialParams(layout.Params, layout.Size, 5)
	want, err := graphtest.Compile(t, full, graph.ModelOptions{}).Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	denFull, err := dens[b].Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	shards := []map[string][]float64{half(s, feeds, b, 0, b/2), half(s, feeds, b, b/2, b/2)}
	for _, task := range s.Tasks {
		sum := 0.0
		for _, sh := range shards {
			d, err := dens[b/2].Run(sh)
			if err != nil {
				t.Fatal(err)
			}
			sum += d[model.LossDenOutput(task.Name)][0]
		}
		if f := denFull[model.LossDenOutput(task.Name)][0]; math.Abs(sum-f) > 1e-6*f || f <= 0 {
			t.Fatalf("%s: shard denominators sum to %g, the batch's is %g", task.Name, sum, f)
		}
		for _, sh := range shards {
			sh[model.LossDenInput(task.Name)] = []float64{sum}
		}
	}
	run := graphtest.Compile(t, shard, graph.ModelOptions{})
	grad := make([]float64, layout.Size)
	losses := map[string]float64{}
	for _, sh := range shards {
		out, err := run.Run(sh)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range out[optim.GradOutput] {
			grad[i] += v
		}
		for name, v := range out {
			if name != optim.GradOutput {
				losses[name] += v[0]
			}
		}
	}
	var maxDiff, maxGrad float64
	for i, w := range want[optim.GradOutput] {
		maxDiff = math.Max(maxDiff, math.Abs(grad[i]-w))
		maxGrad = math.Max(maxGrad, math.Abs(w))
	}
	t.Logf("summed shard gradients vs the batch's: max abs diff %.3g (largest entry %.3g)", maxDiff, maxGrad)
	if maxDiff > 1e-5*maxGrad {
		t.Fatalf("summed shard gradients differ from the batch's by %g (largest entry %g)", maxDiff, maxGrad)
	}
	for _, task := range s.Tasks {
		name := model.TaskLossOutput(task.Name)
		if w := want[name][0]; math.Abs(losses[name]-w) > 1e-5*math.Abs(w) {
			t.Errorf("%s: shards sum to %g, the batch's is %g", name, losses[name], w)
		}
	}

	// The update graph on the batch's gradient is the one-graph step.
	upd, err := s.UpdateStep(model.TrainOptions{Batch: b, Step: step}, layout)
	if err != nil {
		t.Fatal(err)
	}
	one, _, err := s.TrainStep(model.TrainOptions{Batch: b, Step: step})
	if err != nil {
		t.Fatal(err)
	}
	common := map[string][]float64{optim.LRInput: {1e-3}, optim.StepInput: {1}}
	for _, sl := range layout.Slots {
		common[optim.StateInput(sl)] = make([]float64, layout.Size)
	}
	uf := map[string][]float64{optim.ParamsInput: feeds[optim.ParamsInput], optim.GradInput: want[optim.GradOutput]}
	for k, v := range common {
		uf[k], feeds[k] = v, v
	}
	u, err := graphtest.Compile(t, upd, graph.ModelOptions{}).Run(uf)
	if err != nil {
		t.Fatal(err)
	}
	o, err := graphtest.Compile(t, one, graph.ModelOptions{}).Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range o[optim.NewParams] {
		if u[optim.NewParams][i] != p {
			t.Fatalf("parameter %d: update graph %g, training step %g", i, u[optim.NewParams][i], p)
		}
	}
}

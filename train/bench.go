package train

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"time"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/optim"
	"github.com/salt-ort/salt-ort/loader"
	"github.com/salt-ort/salt-ort/run"
	"github.com/salt-ort/salt-ort/runtime"
)

// Benchmark modes.
const (
	BenchTrain = "train" // the full training step, state handed on each step
	BenchInfer = "infer" // the deployment graph's forward pass
)

// BenchOptions configure Bench.
type BenchOptions struct {
	Runtime *runtime.Runtime
	// Config gives training's device, precision, threads, optimizer and
	// gradient clipping; its data files are not read.
	Config *config.Config
	// Spec is the model to time.
	Spec    model.Spec
	Modes   []string // BenchTrain, BenchInfer
	Batches []int
	// Warmup runs are untimed (CUDA graph capture happens in them); Steps
	// runs are timed one by one.
	Warmup, Steps int
	// Log receives progress lines (nil: none).
	Log io.Writer
	// ProfilePrefix, when set, turns on ONNX Runtime's profiler for every
	// case: each writes <ProfilePrefix>_<mode>_<batch>_<date and
	// time>.json.
	ProfilePrefix string
}

// BenchResult is the timing of one mode and batch size.
type BenchResult struct {
	Mode          string  `json:"mode"`
	Device        string  `json:"device"`
	Precision     string  `json:"precision"`
	Batch         int     `json:"batch"`
	Steps         int     `json:"steps"`
	JetsPerSecond float64 `json:"jets_per_s"`
	// Step times in milliseconds.
	MeanMS float64 `json:"mean_ms"`
	P50MS  float64 `json:"p50_ms"`
	P90MS  float64 `json:"p90_ms"`
	P99MS  float64 `json:"p99_ms"`
	// MFLOPPerJet is counted from the graph (graph.Cost); GFLOPPerS is
	// what the timing makes of it.
	MFLOPPerJet float64 `json:"mflop_per_jet"`
	GFLOPPerS   float64 `json:"gflop_per_s"`
	// DeviceMemoryBytes is the GPU memory in use after the timed runs
	// (cudaMemGetInfo: the CUDA context and ONNX Runtime's arenas, which
	// keep their peak), or the device allocator's peak where ONNX Runtime
	// reports one; -1 where neither is known, as on the CPU.
	DeviceMemoryBytes int64 `json:"device_memory_bytes"`
	// PeakRSSBytes is the process's peak resident memory while the case
	// ran, session creation included (Linux's VmHWM, reset before the
	// case); -1 where the system does not say.
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	// PlanBytes is the graph-level estimate of the memory one run needs
	// (graph.PlanMemory: inputs, constants and the peak of intermediate
	// tensors), a lower bound of the arena's peak.
	PlanBytes int64 `json:"plan_bytes"`
}

// Bench times the training step and the inference graph of o.Spec for each
// batch size on the configured device, with synthetic batches (3 to all
// constituents valid per jet, labels in range). It runs the graphs exactly
// as Run does: the same placement, state resident on a device and handed
// from step to step, CUDA graph capture where enabled.
func Bench(ctx context.Context, o BenchOptions) ([]BenchResult, error) {
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	if o.Steps < 1 {
		return nil, fmt.Errorf("train: bench: steps must be at least 1, got %d", o.Steps)
	}
	place, err := run.NewPlacement(o.Runtime, o.Config, "", 0, log)
	if err != nil {
		return nil, err
	}
	var out []BenchResult
	for _, batch := range o.Batches {
		if batch < 1 {
			return nil, fmt.Errorf("train: bench: batch size %d", batch)
		}
		for _, mode := range o.Modes {
			if err := ctx.Err(); err != nil {
				return out, err
			}
			var r *BenchResult
			if o.ProfilePrefix != "" {
				place.ProfilePrefix = fmt.Sprintf("%s_%s_%d", o.ProfilePrefix, mode, batch)
			}
			reset := resetPeakRSS()
			switch mode {
			case BenchTrain:
				r, err = benchTrain(ctx, place, o, batch)
			case BenchInfer:
				r, err = benchInfer(ctx, place, o, batch)
			default:
				return nil, fmt.Errorf("train: bench: mode %q is not %q or %q", mode, BenchTrain, BenchInfer)
			}
			if err != nil {
				return out, fmt.Errorf("train: bench %s, batch %d: %w", mode, batch, err)
			}
			r.PeakRSSBytes = -1
			if reset {
				r.PeakRSSBytes = peakRSS()
			}
			plan, err := BenchPlan(o, mode, batch)
			if err != nil {
				return out, fmt.Errorf("train: bench %s, batch %d: %w", mode, batch, err)
			}
			r.PlanBytes = plan.TotalBytes()
			fmt.Fprintf(log, "%s batch %d on %s: %.0f jets/s, %.2f ms per step (p99 %.2f)\n", mode, batch, place, r.JetsPerSecond, r.P50MS, r.P99MS)
			out = append(out, *r)
		}
	}
	return out, nil
}

func benchTrain(ctx context.Context, place *run.Placement, o BenchOptions, batch int) (*BenchResult, error) {
	c := o.Config
	g, layout, err := trainStepGraph(o.Spec, c, batch, nil)
	if err != nil {
		return nil, err
	}
	sess, err := place.Open(g, residentState(layout), true)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	b := sess.Bind
	r := rand.New(rand.NewPCG(c.Training.Seed, 0xbe7c))
	if err := b.Write(optim.ParamsInput, initialParams(layout, r)); err != nil {
		return nil, err
	}
	feed := run.Feeder{Spec: o.Spec, JetDataset: c.Data.JetDataset, Labels: true}
	if err := feed.Fill(b, syntheticBatch(o.Spec, c.Data.JetDataset, batch, r)); err != nil {
		return nil, err
	}
	w, err := b.Float32(model.TaskWeightsInput)
	if err != nil {
		return nil, err
	}
	for i, task := range o.Spec.Tasks {
		w[i] = float32(task.Weight)
	}
	if err := b.SetScalar(optim.LRInput, 1e-4); err != nil {
		return nil, err
	}
	if layout.CycleMomentum {
		if err := b.SetScalar(optim.MomentumInput, float32(c.Training.LR.MaxMomentum)); err != nil {
			return nil, err
		}
	}
	if layout.LossScaling {
		if err := b.SetScalar(optim.LossScaleInput, float32(optim.DefaultLossScaler().Scale)); err != nil {
			return nil, err
		}
	}
	for _, ri := range g.RandomInputs() {
		m, err := b.Float32(ri.Tensor.Name())
		if err != nil {
			return nil, err
		}
		if ri.Kind == graph.RandomUniform {
			// The numbers pair dropout masks are computed from: one fixed
			// draw, so the step does the work a training step does.
			r := rand.New(rand.NewPCG(1, 2))
			for k := range m {
				m[k] = float32(r.Float64())
			}
			continue
		}
		for k := range m {
			m[k] = 1
		}
	}
	step := 0
	runStep := func() error {
		step++
		if err := b.SetScalar(optim.StepInput, float32(step)); err != nil {
			return err
		}
		if err := b.Run(); err != nil {
			return err
		}
		if err := b.Swap(optim.ParamsInput, optim.NewParams); err != nil {
			return err
		}
		for _, s := range layout.Slots {
			if err := b.Swap(optim.StateInput(s), optim.NewStateOutput(s)); err != nil {
				return err
			}
		}
		// Read the losses, as the training loop does every step.
		_, err := b.Scalar(model.LossOutput)
		return err
	}
	return timeRuns(ctx, o, BenchTrain, place, batch, g.Cost().FLOPs(), b, runStep)
}

func benchInfer(ctx context.Context, place *run.Placement, o BenchOptions, batch int) (*BenchResult, error) {
	g, err := o.Spec.Infer(model.InferOptions{Batch: batch})
	if err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(o.Config.Training.Seed, 0x1fe7))
	values := map[string][]byte{}
	for _, p := range g.Params() {
		v := p.Init.Sample(r, int(p.Tensor.Shape().Size()))
		raw := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(float32(x)))
		}
		values[p.Tensor.Name()] = raw
	}
	sess, err := place.OpenWith(g, graph.ModelOptions{ParamValues: values}, nil, true)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	feed := run.Feeder{Spec: o.Spec, JetDataset: o.Config.Data.JetDataset}
	if err := feed.Fill(sess.Bind, syntheticBatch(o.Spec, o.Config.Data.JetDataset, batch, r)); err != nil {
		return nil, err
	}
	return timeRuns(ctx, o, BenchInfer, place, batch, g.Cost().FLOPs(), sess.Bind, sess.Bind.Run)
}

// timeRuns runs step o.Warmup times untimed and o.Steps times timed.
func timeRuns(ctx context.Context, o BenchOptions, mode string, place *run.Placement, batch int, flops int64, b run.Tensors, step func() error) (*BenchResult, error) {
	for i := 0; i < o.Warmup; i++ {
		if err := step(); err != nil {
			return nil, err
		}
	}
	times := make([]float64, 0, o.Steps)
	start := time.Now()
	for i := 0; i < o.Steps; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t0 := time.Now()
		if err := step(); err != nil {
			return nil, err
		}
		times = append(times, float64(time.Since(t0).Nanoseconds())/1e6)
	}
	total := time.Since(start).Seconds()
	sort.Float64s(times)
	pct := func(p float64) float64 { return times[min(len(times)-1, int(math.Ceil(p*float64(len(times))))-1)] }
	res := &BenchResult{
		Mode: mode, Device: place.String(), Precision: o.Config.Training.Precision, Batch: batch, Steps: o.Steps,
		JetsPerSecond: float64(batch*o.Steps) / total, MeanMS: 1e3 * total / float64(o.Steps),
		P50MS: pct(0.5), P90MS: pct(0.9), P99MS: pct(0.99),
		MFLOPPerJet: float64(flops) / float64(batch) / 1e6, GFLOPPerS: float64(flops) * float64(o.Steps) / total / 1e9,
		DeviceMemoryBytes: -1,
	}
	if used, ok := runtime.CUDAMemoryInUse(); ok && place.Device != nil {
		res.DeviceMemoryBytes = used
	} else if m, ok := b.(interface {
		MemoryStats() (map[string]int64, error)
	}); ok {
		if stats, err := m.MemoryStats(); err == nil {
			if v, ok := stats["MaxInUse"]; ok {
				res.DeviceMemoryBytes = v
			}
		}
	}
	return res, nil
}

// BenchSpec returns the model of c for Bench: with the class dictionary's
// weights where its file exists, else with equal class weights, which cost
// the same to compute.
func BenchSpec(c *config.Config) (model.Spec, error) {
	if c.Data.ClassDict != "" {
		path := c.Resolve(c.Data.ClassDict)
		if _, err := os.Stat(path); err == nil {
			return run.SpecWithClasses(c, path)
		}
	}
	return c.Spec(c.UniformClassWeights)
}

// initialParams draws the flat parameter vector from the layout's
// initialisers.
func initialParams(layout *optim.Layout, r *rand.Rand) []float32 {
	params := make([]float32, layout.Size)
	for _, p := range layout.Params {
		for i, v := range p.Init.Sample(r, int(p.Size)) {
			params[p.Offset+int64(i)] = float32(v)
		}
	}
	return params
}

// syntheticBatch is a plausible batch for spec: normal inputs, 3 up to
// every constituent valid per jet, labels in range, weights 1.
func syntheticBatch(spec model.Spec, jetDataset string, batch int, r *rand.Rand) *loader.Batch {
	normal := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	b := &loader.Batch{N: batch, Inputs: map[string]*loader.Tensor{}, Labels: map[string][]int64{}, Targets: map[string][]float32{},
		Weights: make([]float32, batch), JetMask: make([]float32, batch)}
	for j := range b.Weights {
		b.Weights[j], b.JetMask[j] = 1, 1
	}
	b.Inputs[jetDataset] = &loader.Tensor{Data: normal(batch * len(spec.JetVars)), Shape: []int{batch, len(spec.JetVars)}}
	lengths := map[string]int{}
	for _, in := range spec.Inputs {
		t := in.MaxLen
		valid := make([]bool, batch*t)
		for j := 0; j < batch; j++ {
			n := min(t, 3+r.IntN(max(1, t-2)))
			for i := 0; i < n; i++ {
				valid[j*t+i] = true
			}
		}
		b.Inputs[in.Name] = &loader.Tensor{Data: normal(batch * t * len(in.Vars)), Valid: valid, Shape: []int{batch, t, len(in.Vars)}}
		lengths[in.Name] = t
	}
	for _, p := range spec.Parameters {
		v := make([]float32, batch)
		for j := range v {
			v[j] = float32(p.Train[r.IntN(len(p.Train))])
		}
		b.Targets[run.ParameterLabel(p.Name)] = v
	}
	if e := spec.Edges; e != nil {
		// Plausible kinematics for the edge features: positive pt and
		// energy, angles of order one.
		n := batch * lengths[e.Input]
		for _, v := range e.Needs() {
			x := normal(n)
			if v == "pt" || v == "energy" {
				for i := range x {
					x[i] = 1000 * float32(math.Exp(float64(x[i])))
				}
			}
			b.Targets[run.EdgeLabelPrefix+v] = x
		}
	}
	ints := func(n, below int) []int64 {
		v := make([]int64, n)
		for i := range v {
			v[i] = int64(r.IntN(below))
		}
		return v
	}
	for _, task := range spec.Tasks {
		rows := batch
		if task.Input != "" {
			rows *= lengths[task.Input]
		}
		if task.SampleWeight {
			w := make([]float32, rows)
			for i := range w {
				w[i] = 1
			}
			b.Targets[run.SampleWeightLabel(task.Name)] = w
		}
		switch task.Kind {
		case model.JetRegression, model.JetGaussianRegression, model.ConstituentRegression, model.ConstituentGaussianRegression:
			for _, target := range task.Targets {
				b.Targets[run.TargetLabel(task.Name, target)] = normal(rows)
				if task.HasDenominators() {
					d := normal(rows)
					for i := range d {
						d[i] = 1 + 0.1*float32(math.Abs(float64(d[i])))
					}
					b.Targets[run.DenominatorLabel(task.Name, target)] = d
				}
			}
		case model.Vertexing:
			b.Labels[task.Name] = ints(rows, 4)
			b.Labels[run.OriginLabel(task.Name)] = ints(rows, 8)
		default:
			b.Labels[task.Name] = ints(rows, max(1, len(task.Classes)))
		}
	}
	return b
}

package run

import (
	"context"
	"fmt"
	"io"
	"math"
	goruntime "runtime"

	"github.com/salt-ort/salt-ort/checkpoint"
	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/optim"
	"github.com/salt-ort/salt-ort/loader"
	"github.com/salt-ort/salt-ort/metrics"
	"github.com/salt-ort/salt-ort/runtime"
)

// Evaluator is a model's evaluation graph opened in ONNX Runtime, run batch
// by batch: the predictions, every task's loss and the b-versus-light AUC.
type Evaluator struct {
	spec   model.Spec
	feed   Feeder
	static []float64
	// unlabelled are tasks the files have no truth for: no loss is
	// reported for them.
	unlabelled map[string]bool
	session    *Session
	bind       Tensors
	layout     []graph.ParamSlot
	// With shares > 1 the evaluator is one rank's of a data-parallel job
	// (see Shard).
	share, shares int
	reduce        func(*Result, *AUCScores) error
	// objects matches a mask decoder's objects in each batch (nil
	// without one).
	objects *ObjectMatcher
}

// OpenEvaluator opens the evaluation graph of spec where p places it, the
// parameters resident on a device. On the CPU the encoder runs on chunks
// of jets (model.EvalOptions.ChunkEncoder), whose tensors stay in the
// caches: GN2 at batch 1000 evaluates 1.4 times as many jets per second.
func OpenEvaluator(p *Placement, spec model.Spec, jetDataset string, opts model.EvalOptions) (*Evaluator, error) {
	opts.ChunkEncoder = opts.ChunkEncoder || p.Device == nil
	g, layout, err := spec.EvalWith(opts)
	if err != nil {
		return nil, err
	}
	sess, err := p.Open(g, []string{optim.ParamsInput}, false)
	if err != nil {
		return nil, err
	}
	e := &Evaluator{spec: spec, feed: Feeder{Spec: spec, JetDataset: jetDataset, Labels: true}, session: sess, bind: sess.Bind, layout: layout, objects: newObjectEval(spec)}
	for _, t := range spec.Tasks {
		e.static = append(e.static, t.Weight)
	}
	return e, nil
}

// Shard makes e one rank's of a data-parallel job of shares ranks: it
// evaluates the batches whose index is share modulo shares, and reduce
// sums the ranks' results (the losses weighted by jets, the jets and the
// AUC's scores) before they are averaged.
func (e *Evaluator) Shard(share, shares int, reduce func(*Result, *AUCScores) error) {
	e.share, e.shares, e.reduce = share, shares, reduce
}

// FeedAsFit feeds the parameters as training does (Salt's fit stage, see
// Feeder.Fit), drawn from seed.
func (e *Evaluator) FeedAsFit(seed uint64) { e.feed.Fit, e.feed.Seed = true, seed }

// Close releases the session.
func (e *Evaluator) Close() error { return e.session.Close() }

// SetParams copies a flat parameter vector (ParamsFromCheckpoint) into the
// graph's input.
func (e *Evaluator) SetParams(p []float32) error {
	if err := e.bind.Write(optim.ParamsInput, p); err != nil {
		return fmt.Errorf("run: evaluation parameters: %w", err)
	}
	return nil
}

// Result is the evaluation of a model on a dataset.
type Result struct {
	// Loss is each task's loss, averaged over jets.
	Loss map[string]float64
	// Total is Σ weight·loss with the configured task weights, or with
	// GLS the geometric mean of the task losses.
	Total float64
	// AUC is the b-versus-light AUC of D_b (f_c = DefaultFC) of the jet
	// classification task, NaN without one with b and light classes.
	AUC  float64
	Jets int
	// ObjectLoss are a mask decoder's loss terms (weighted), averaged over
	// jets; Total includes them. ObjectMetrics are Salt's MaskFormer
	// metrics of its matched objects (see metrics.ObjectCounts.Metrics).
	ObjectLoss    map[string]float64
	ObjectMetrics map[string]float64
	objects       metrics.ObjectCounts
}

// Run evaluates every batch of ds.
func (e *Evaluator) Run(ctx context.Context, ds *loader.Dataset) (*Result, error) {
	return e.RunEach(ctx, ds, nil)
}

// RunEach evaluates every batch of ds and hands each batch with the
// graph's predictions to each (if not nil) before the batch is released.
func (e *Evaluator) RunEach(ctx context.Context, ds *loader.Dataset, each func(*loader.Batch, map[string][]float32) error) (*Result, error) {
	w, err := e.bind.Float32(model.TaskWeightsInput)
	if err != nil {
		return nil, err
	}
	for i := range w {
		w[i] = float32(e.static[i])
	}
	res := &Result{Loss: map[string]float64{}}
	auc := newAUCScores(e.spec)
	ch, errc := ds.Batches(ctx, 0, 0)
	for b := range ch {
		if e.shares > 1 && b.Index%e.shares != e.share {
			b.Release() // another rank's batch
			continue
		}
		preds, err := e.Predict(b)
		if err == nil {
			err = auc.add(e.bind, b)
		}
		if err == nil && each != nil {
			err = each(b, preds)
		}
		n := b.N
		b.Release()
		for _, task := range e.spec.Tasks {
			if err != nil {
				break
			}
			if e.unlabelled[task.Name] {
				continue
			}
			var v float32
			v, err = e.bind.Scalar(model.TaskLossOutput(task.Name))
			res.Loss[task.Name] += float64(v) * float64(n)
		}
		if err == nil {
			err = e.objects.addEval(e.bind, res, n)
		}
		if err != nil {
			for range ch {
			}
			return nil, err
		}
		res.Jets += n
	}
	if err := <-errc; err != nil {
		return nil, err
	}
	if e.reduce != nil {
		if err := e.reduce(res, auc); err != nil {
			return nil, err
		}
	}
	if res.Jets == 0 {
		return nil, fmt.Errorf("no jets to evaluate")
	}
	var logSum float64
	labelled := 0
	for i, task := range e.spec.Tasks {
		if e.unlabelled[task.Name] {
			continue
		}
		res.Loss[task.Name] /= float64(res.Jets)
		res.Total += e.static[i] * res.Loss[task.Name]
		logSum += e.static[i] * math.Log(res.Loss[task.Name])
		labelled++
	}
	if e.spec.LossMode == model.GeometricMean && labelled > 0 {
		// GLS: the geometric mean of the task losses, the loss training
		// minimises (Salt's val/loss with loss_mode GLS).
		res.Total = math.Exp(logSum / float64(labelled))
	}
	e.objects.finishEval(res)
	res.AUC = auc.auc()
	return res, nil
}

// Predict runs a normalised loader batch and returns the predictions by
// output name (model.PredictionOutput), valid until the next call.
func (e *Evaluator) Predict(b *loader.Batch) (map[string][]float32, error) {
	if err := e.feed.Fill(e.bind, b); err != nil {
		return nil, err
	}
	if e.objects != nil {
		if err := e.objects.prepareEval(e.bind, b); err != nil {
			return nil, err
		}
	}
	if err := e.bind.Run(); err != nil {
		return nil, err
	}
	preds := map[string][]float32{}
	for _, name := range e.predictionNames() {
		p, err := e.bind.Float32(name)
		if err != nil {
			return nil, err
		}
		preds[name] = p
	}
	return preds, nil
}

// NewEvaluator opens the evaluation graph of spec for batches of the given
// size (threads 0: every core) on the CPU.
func NewEvaluator(rt *runtime.Runtime, spec model.Spec, jetDataset string, batch, threads int) (*Evaluator, error) {
	if threads == 0 {
		threads = goruntime.NumCPU()
	}
	return OpenEvaluator(&Placement{rt: rt, Threads: threads}, spec, jetDataset, model.EvalOptions{Batch: batch})
}

// NewEvaluatorOn is NewEvaluator on device ("cpu" or "cuda", see
// EvalDevice), with the CUDA provider that configuration c names.
func NewEvaluatorOn(rt *runtime.Runtime, c *config.Config, device string, spec model.Spec, batch, threads int) (*Evaluator, error) {
	if device == "" || device == "cpu" {
		return NewEvaluator(rt, spec, c.Data.JetDataset, batch, threads)
	}
	place, err := NewPlacement(rt, onDevice(c, device), "", 0, io.Discard)
	if err != nil {
		return nil, err
	}
	if threads > 0 {
		place.Threads = threads
	}
	return OpenEvaluator(place, spec, c.Data.JetDataset, model.EvalOptions{Batch: batch})
}

// onDevice returns c with training.device set to device, c itself where
// device is "".
func onDevice(c *config.Config, device string) *config.Config {
	if device == "" || device == c.Training.Device {
		return c
	}
	moved := *c
	moved.Training.Device = device
	return &moved
}

// predictionNames lists the evaluation graph's prediction outputs.
func (e *Evaluator) predictionNames() []string {
	var names []string
	for _, t := range e.spec.Tasks {
		names = append(names, model.PredictionOutput(t.Name))
		if t.Kind.Gaussian() {
			names = append(names, model.VarianceOutput(t.Name))
		}
	}
	return append(names, e.objectPredictionNames()...)
}

// EvalOptions configure Evaluate.
type EvalOptions struct {
	RunDir string
	// Checkpoint is a checkpoint file; "" takes the run's best.
	Checkpoint string
	// Files are the HDF5 files to evaluate; nil takes the configuration's
	// test files.
	Files []string
	// Limit evaluates the first Limit jets (after the selections); 0 all.
	Limit int
	// Unlabelled names tasks whose truth labels the files lack: their
	// labels are not read and Result has no loss for them (predictions
	// only).
	Unlabelled []string
	Runtime    *runtime.Runtime
	Threads    int
	// Device is where the evaluation graph runs, "cpu" or "cuda" (see
	// EvalDevice); "" takes the configuration's training.device.
	Device string
	// Each, if set, receives every batch (raw loader batch, normalised
	// inputs) with the evaluation graph's predictions by output name
	// (model.PredictionOutput; with a mask decoder also
	// model.ObjectClassProbsOutput and model.ObjectMasksOutput), valid
	// until it returns.
	Each func(b *loader.Batch, predictions map[string][]float32) error
	// Opened, if set, is told the number of jets to evaluate (after the
	// selections and Limit) before the first batch.
	Opened func(jets int) error
}

// Evaluate evaluates a trained run's checkpoint on HDF5 files with the
// evaluation graph: every task's loss and the b-versus-light AUC.
func Evaluate(ctx context.Context, opts EvalOptions) (*Result, error) {
	info, err := Load(opts.RunDir)
	if err != nil {
		return nil, err
	}
	cfg, norm, spec := info.Config, info.Norm, info.Spec
	path, err := ResolveCheckpoint(opts.RunDir, opts.Checkpoint)
	if err != nil {
		return nil, err
	}
	f, err := checkpoint.Read(path)
	if err != nil {
		return nil, err
	}
	files := opts.Files
	if files == nil {
		files = cfg.Data.Test
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("run: no files to evaluate: the configuration lists no test files")
	}
	unlabelled := map[string]bool{}
	for _, t := range opts.Unlabelled {
		unlabelled[t] = true
	}
	ds, err := loader.Open(WithoutLabels(LoaderConfig(cfg, files, norm, false, opts.Limit), unlabelled))
	if err != nil {
		return nil, cfg.DataError(err)
	}
	defer ds.Close()
	place, err := NewPlacement(opts.Runtime, onDevice(cfg, opts.Device), "", 0, io.Discard)
	if err != nil {
		return nil, err
	}
	if opts.Threads > 0 {
		place.Threads = opts.Threads
	}
	e, err := OpenEvaluator(place, spec, cfg.Data.JetDataset, model.EvalOptions{Batch: cfg.Data.BatchSize})
	if err != nil {
		return nil, err
	}
	defer e.Close()
	e.unlabelled = unlabelled
	if opts.Opened != nil {
		if err := opts.Opened(ds.Len()); err != nil {
			return nil, err
		}
	}
	params, err := ParamsFromCheckpoint(path, f, e.layout)
	if err != nil {
		return nil, err
	}
	if err := e.SetParams(params); err != nil {
		return nil, err
	}
	res, err := e.RunEach(ctx, ds, opts.Each)
	if err != nil {
		return nil, fmt.Errorf("run: evaluating %s: %w", path, cfg.DataError(err))
	}
	return res, nil
}

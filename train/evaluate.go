package train

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
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

// evaluator runs the evaluation graph over a dataset.
type evaluator struct {
	spec   model.Spec
	feed   feeder
	static []float64
	// unlabelled are tasks the files have no truth for: no loss is
	// reported for them.
	unlabelled map[string]bool
	session    *opened
	bind       tensors
	layout     []graph.ParamSlot
	// With shares > 1 the evaluator is one rank's of a data-parallel job:
	// it evaluates the batches whose index is share modulo shares, and
	// reduce sums the ranks' results before they are averaged.
	share, shares int
	reduce        func(*Result, *aucCollector) error
	// objects matches a mask decoder's objects in each batch (nil
	// without one).
	objects *objectMatcher
}

// newEvaluator opens the evaluation graph of spec where p places it, the
// parameters resident on a device.
func newEvaluator(p *placement, spec model.Spec, jetDataset string, opts model.EvalOptions) (*evaluator, error) {
	g, layout, err := spec.EvalWith(opts)
	if err != nil {
		return nil, err
	}
	run, err := p.open(g, []string{optim.ParamsInput}, false)
	if err != nil {
		return nil, err
	}
	e := &evaluator{spec: spec, feed: feeder{spec: spec, jetDataset: jetDataset, labels: true}, session: run, bind: run.bind, layout: layout, objects: newObjectEval(spec)}
	for _, t := range spec.Tasks {
		e.static = append(e.static, t.Weight)
	}
	return e, nil
}

func (e *evaluator) Close() error { return e.session.Close() }

// setParams copies a flat parameter vector into the graph's input.
func (e *evaluator) setParams(p []float32) error {
	if err := e.bind.Write(optim.ParamsInput, p); err != nil {
		return fmt.Errorf("train: evaluation parameters: %w", err)
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
	// metrics of its matched objects (see objectCounts.metrics).
	ObjectLoss    map[string]float64
	ObjectMetrics map[string]float64
	objects       metrics.ObjectCounts
}

// run evaluates every batch of ds.
func (e *evaluator) run(ctx context.Context, ds *loader.Dataset) (*Result, error) {
	return e.runEach(ctx, ds, nil)
}

// runEach evaluates every batch of ds and hands each batch with the
// graph's predictions to each (if not nil) before the batch is released.
func (e *evaluator) runEach(ctx context.Context, ds *loader.Dataset, each func(*loader.Batch, map[string][]float32) error) (*Result, error) {
	w, err := e.bind.Float32(model.TaskWeightsInput)
	if err != nil {
		return nil, err
	}
	for i := range w {
		w[i] = float32(e.static[i])
	}
	res := &Result{Loss: map[string]float64{}}
	auc := newAUCCollector(e.spec)
	ch, errc := ds.Batches(ctx, 0, 0)
	for b := range ch {
		if e.shares > 1 && b.Index%e.shares != e.share {
			b.Release() // another rank's batch
			continue
		}
		preds, err := e.predict(b)
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

// predict fills a (normalised) batch into the graph, runs it and returns
// its predictions by output name, valid until the next run.
func (e *evaluator) predict(b *loader.Batch) (map[string][]float32, error) {
	if err := e.feed.fill(e.bind, b); err != nil {
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

// Evaluator is a model's evaluation graph opened in ONNX Runtime, run batch
// by batch.
type Evaluator struct{ e *evaluator }

// NewEvaluator opens the evaluation graph of spec for batches of the given
// size (threads 0: every core) on the CPU.
func NewEvaluator(rt *runtime.Runtime, spec model.Spec, jetDataset string, batch, threads int) (*Evaluator, error) {
	if threads == 0 {
		threads = goruntime.NumCPU()
	}
	e, err := newEvaluator(&placement{rt: rt, threads: threads}, spec, jetDataset, model.EvalOptions{Batch: batch})
	if err != nil {
		return nil, err
	}
	return &Evaluator{e}, nil
}

// NewEvaluatorOn is NewEvaluator on device ("cpu" or "cuda", see
// EvalDevice), with the CUDA provider that configuration c names.
func NewEvaluatorOn(rt *runtime.Runtime, c *config.Config, device string, spec model.Spec, batch, threads int) (*Evaluator, error) {
	if device == "" || device == "cpu" {
		return NewEvaluator(rt, spec, c.Data.JetDataset, batch, threads)
	}
	place, err := newPlacement(rt, onDevice(c, device), "", 0, io.Discard)
	if err != nil {
		return nil, err
	}
	if threads > 0 {
		place.threads = threads
	}
	e, err := newEvaluator(place, spec, c.Data.JetDataset, model.EvalOptions{Batch: batch})
	if err != nil {
		return nil, err
	}
	return &Evaluator{e}, nil
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

// SetParams sets the flat parameter vector (ParamsFromCheckpoint).
func (v *Evaluator) SetParams(p []float32) error { return v.e.setParams(p) }

// Predict runs a normalised loader batch and returns the predictions by
// output name (model.PredictionOutput), valid until the next call.
func (v *Evaluator) Predict(b *loader.Batch) (map[string][]float32, error) { return v.e.predict(b) }

// Close releases the session.
func (v *Evaluator) Close() error { return v.e.Close() }

// predictionNames lists the evaluation graph's prediction outputs.
func (e *evaluator) predictionNames() []string {
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
	run, err := LoadRun(opts.RunDir)
	if err != nil {
		return nil, err
	}
	cfg, norm, spec := run.Config, run.Norm, run.Spec
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
		return nil, fmt.Errorf("train: no files to evaluate: the configuration lists no test files")
	}
	unlabelled := map[string]bool{}
	for _, t := range opts.Unlabelled {
		unlabelled[t] = true
	}
	ds, err := loader.Open(withoutLabels(LoaderConfig(cfg, files, norm, false, opts.Limit), unlabelled))
	if err != nil {
		return nil, cfg.DataError(err)
	}
	defer ds.Close()
	place, err := newPlacement(opts.Runtime, onDevice(cfg, opts.Device), "", 0, io.Discard)
	if err != nil {
		return nil, err
	}
	if opts.Threads > 0 {
		place.threads = opts.Threads
	}
	e, err := newEvaluator(place, spec, cfg.Data.JetDataset, model.EvalOptions{Batch: cfg.Data.BatchSize})
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
	if err := e.setParams(params); err != nil {
		return nil, err
	}
	res, err := e.runEach(ctx, ds, opts.Each)
	if err != nil {
		return nil, fmt.Errorf("train: evaluating %s: %w", path, cfg.DataError(err))
	}
	return res, nil
}

// RunInfo is what a run directory says about its model.
type RunInfo struct {
	Dir    string
	Config *config.Config // the resolved configuration
	Spec   model.Spec
	Norm   loader.NormDict // the run's copy of the norm dictionary
}

// LoadRun reads a run directory's resolved configuration and
// dictionaries.
func LoadRun(dir string) (*RunInfo, error) {
	cfg, err := config.Load(filepath.Join(dir, ResolvedFile))
	if err != nil {
		return nil, fmt.Errorf("train: %s is not a run directory: %w", dir, err)
	}
	norm, err := loader.ReadNormDict(filepath.Join(dir, NormDictFile))
	if err != nil {
		return nil, err
	}
	cfg.SetNormDict(norm)
	spec, err := runSpec(cfg, dir)
	if err != nil {
		return nil, err
	}
	return &RunInfo{Dir: dir, Config: cfg, Spec: spec, Norm: norm}, nil
}

// runSpec builds the model spec of a run from its configuration and its
// copy of the class dictionary.
func runSpec(cfg *config.Config, runDir string) (model.Spec, error) {
	return specWithClasses(cfg, filepath.Join(runDir, ClassDictFile))
}

// specWithClasses builds the model a configuration describes, taking the
// class weights of tasks with use_class_dict from the class dictionary at
// classPath (read only when the configuration names one).
func specWithClasses(cfg *config.Config, classPath string) (model.Spec, error) {
	var classes loader.ClassDict
	if cfg.Data.ClassDict != "" {
		var err error
		if classes, err = loader.ReadClassDict(classPath); err != nil {
			return model.Spec{}, err
		}
	}
	return cfg.Spec(func(ds, field string) ([]float64, error) {
		w, ok := classes[ds][field]
		if !ok {
			return nil, fmt.Errorf("%s has no weights for %s.%s", classPath, ds, field)
		}
		return w, nil
	})
}

// ParamsFromCheckpoint gathers a model's parameters from a checkpoint into
// a flat vector in the layout's order, refusing a checkpoint of another
// model with the first differing tensor.
func ParamsFromCheckpoint(path string, f *checkpoint.File, layout []graph.ParamSlot) ([]float32, error) {
	want := &checkpoint.File{}
	got := &checkpoint.File{}
	var size int64
	for _, p := range layout {
		want.Set(p.Name, checkpoint.Tensor{DType: checkpoint.F32, Shape: p.Shape})
		if t, ok := f.Tensors[p.Name]; ok {
			got.Set(p.Name, t)
		}
		size += p.Size
	}
	for name, t := range f.Tensors {
		if _, ok := want.Tensors[name]; !ok && !isTrainingState(name) {
			got.Set(name, t)
		}
	}
	if err := checkpoint.Compare(got, want); err != nil {
		return nil, fmt.Errorf("train: %s is from another model configuration: %w", path, err)
	}
	params := make([]float32, size)
	for _, p := range layout {
		v, _, err := f.Float32(p.Name)
		if err != nil {
			return nil, fmt.Errorf("train: %s: %w", path, err)
		}
		copy(params[p.Offset:], v)
	}
	return params, nil
}

func isTrainingState(name string) bool {
	return len(name) > len("optimizer/") && name[:len("optimizer/")] == "optimizer/" || name == weightingState
}

// ResolveCheckpoint maps "best" (or ""), "last" or a file path to a
// checkpoint file of a run.
func ResolveCheckpoint(runDir, which string) (string, error) {
	switch which {
	case "", "best":
		return BestCheckpoint(runDir)
	case "last":
		return filepath.Join(runDir, LastCheckpoint), nil
	}
	return which, nil
}

// BestCheckpoint returns the path of a run's best checkpoint (by its
// monitored metric), or its last one if none is recorded.
func BestCheckpoint(runDir string) (string, error) {
	last := filepath.Join(runDir, LastCheckpoint)
	f, err := checkpoint.Read(last)
	if err != nil {
		return "", err
	}
	st := struct{ best []BestEntry }{}
	if err := json.Unmarshal([]byte(f.Metadata[metaBest]), &st.best); err != nil || len(st.best) == 0 {
		return last, nil
	}
	return filepath.Join(runDir, st.best[0].File), nil
}

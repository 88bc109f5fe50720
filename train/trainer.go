package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/salt-ort/salt-ort/checkpoint"
	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/optim"
	"github.com/salt-ort/salt-ort/loader"
	"github.com/salt-ort/salt-ort/nccl"
	"github.com/salt-ort/salt-ort/run"
	"github.com/salt-ort/salt-ort/runtime"
)

// ErrInterrupted reports a run stopped before its end (a signal, or
// Options.StopAfter) after writing its last checkpoint; --resume continues
// it.
var ErrInterrupted = errors.New("training interrupted; the last checkpoint was written")

// Options configure a training run.
type Options struct {
	Config *config.Config
	// RunDir is the run directory to create, or to continue with Resume.
	RunDir string
	Resume bool
	// Runtime is the loaded ONNX Runtime.
	Runtime *runtime.Runtime
	// Progress receives a progress bar where it is a terminal, and
	// otherwise a line every 5 % of an epoch (nil: none); Log receives one
	// line per epoch and event (nil: none).
	Progress io.Writer
	Log      io.Writer
	// StopAfter ends the run as an interrupt would after this many
	// optimizer steps in this process (0: never); for tests and for
	// time-sliced batch jobs.
	StopAfter int
	// Group, when it has more than one rank, makes the run one rank of a
	// data-parallel job (started by mpirun or srun; package mpi): each rank
	// trains on its shard of every batch (data.batch_size / ranks jets),
	// the gradients are summed over the ranks, every rank applies the same
	// update, and rank 0 alone writes the run directory.
	Group Group
	// NCCL says where NCCL and the CUDA runtime are, for a data-parallel
	// job on a device (default: training.nccl_lib, then nccl's defaults);
	// tests point it at a stand-in.
	NCCL nccl.Options
	// Provider, when not "", runs the graphs on that execution provider's
	// device with the state resident there (the CUDA code path), instead of
	// what training.device says; tests set runtime.CPUProvider.
	Provider string

	// mixed overrides what training.precision sets, so tests can check
	// the mixed-precision plumbing on the CPU, which has no half-precision
	// kernels, with float64 compute.
	mixed *mixedPrecision
}

// mixedPrecision is a compute type with or without loss scaling, from a
// given initial scale (0: optim.DefaultLossScaler's).
type mixedPrecision struct {
	compute      graph.DType
	lossScaling  bool
	initialScale float64
}

// Summary is what a run reports; it is also written to summary.json.
type Summary struct {
	RunDir         string               `json:"run_dir"`
	Model          string               `json:"model"`
	Epochs         int                  `json:"epochs_done"`
	Steps          int                  `json:"steps"`
	Parameters     int64                `json:"parameters"`
	BestCheckpoint string               `json:"best_checkpoint"`
	BestMetric     float64              `json:"best_metric"`
	Monitor        string               `json:"monitor"`
	ValLoss        []map[string]float64 `json:"val_history"`
	FinalTrainLoss map[string]float64   `json:"final_train_loss"`
	JetsPerSecond  float64              `json:"train_jets_per_second"`
	// Ranks is the number of processes of a data-parallel job (1 alone),
	// and AllReduceMs the mean time a step spent summing the gradients
	// over them.
	Ranks        int     `json:"ranks"`
	AllReduceMs  float64 `json:"allreduce_ms_per_step,omitempty"`
	StoppedEarly bool    `json:"stopped_early"`
	// ObjectLoss are a mask decoder's loss terms (weighted, as Salt logs
	// them), averaged over each epoch's training steps.
	ObjectLoss []map[string]float64 `json:"objects_train_loss,omitempty"`
}

// trainer holds a run in progress.
type trainer struct {
	opts      Options
	cfg       *config.Config
	spec      model.Spec
	resolved  []byte
	layout    *optim.Layout
	trainG    *graph.Graph
	place     *run.Placement
	train     *run.Session
	trainBind run.Tensors
	eval      *run.Evaluator
	logFile   *os.File
	trainData *loader.Dataset
	valData   *loader.Dataset
	feedTrain run.Feeder
	schedule  Schedule
	weighting LossWeighting
	static    []float64
	state     trainingState
	trainCSV  *run.MetricsTable
	valCSV    *run.MetricsTable
	summary   Summary
	log       io.Writer
	// selectionsLogged is set once the constituent selection counts of
	// the first epoch read are in the log.
	selectionsLogged bool
	// par is the data-parallel part of a run of several ranks, nil alone;
	// rank is this process's rank (0 alone), and only rank 0 writes.
	par  *parallel
	rank int
	// objects matches a mask decoder's objects before each step (nil
	// without one).
	objects *run.ObjectMatcher
}

// Run trains the model the configuration describes and returns the
// summary. On a cancelled context it writes the last checkpoint and returns
// ErrInterrupted.
func Run(ctx context.Context, opts Options) (*Summary, error) {
	t := &trainer{opts: opts, cfg: opts.Config, log: opts.Log}
	if t.log == nil {
		t.log = io.Discard
	}
	defer t.close()
	if err := t.setup(); err != nil {
		return nil, err
	}
	err := t.loop(ctx)
	if err != nil && !errors.Is(err, ErrInterrupted) {
		return nil, err
	}
	if werr := t.writeSummary(); werr != nil && err == nil {
		err = werr
	}
	return &t.summary, err
}

func (t *trainer) close() {
	t.train.Close()
	t.objects.Close()
	t.par.close()
	if t.eval != nil {
		t.eval.Close()
	}
	if t.trainData != nil {
		t.trainData.Close()
	}
	if t.valData != nil {
		t.valData.Close()
	}
	if t.logFile != nil {
		t.logFile.Close()
	}
}

// setup prepares the run directory, the data, the graphs and the state.
func (t *trainer) setup() error {
	original := t.cfg
	c, err := Prepare(original)
	if err != nil {
		return err
	}
	t.cfg = c
	if t.resolved, err = c.Encode(); err != nil {
		return err
	}
	group, err := t.joinGroup()
	if err != nil {
		return err
	}
	notes, err := t.openData(group)
	if err != nil {
		return err
	}
	if t.spec, err = run.SpecWithClasses(c, c.Resolve(c.Data.ClassDict)); err != nil {
		return err
	}
	if err := t.writeRunDir(original, t.resumeOrRestart()); err != nil {
		return err
	}
	if err := t.openLog(group, notes); err != nil {
		return err
	}
	if err := t.placeGraphs(group); err != nil {
		return err
	}
	t.setupWeighting()
	if err := t.initState(); err != nil {
		return err
	}
	return t.openMetrics()
}

// joinGroup checks a data-parallel job's configuration across its ranks
// and returns its group, nil for a process alone.
func (t *trainer) joinGroup() (Group, error) {
	c := t.cfg
	group := t.opts.Group
	if group == nil || group.Size() <= 1 {
		return nil, nil
	}
	t.rank = group.Rank()
	if t.rank != 0 {
		t.log = io.Discard // rank 0 speaks for the job
	}
	if c.Data.BatchSize%group.Size() != 0 {
		return nil, fmt.Errorf("train: data.batch_size = %d is not a multiple of the job's %d ranks: each rank trains on an equal shard of every batch; give a batch size divisible by %d", c.Data.BatchSize, group.Size(), group.Size())
	}
	if c.Training.LossWeighting == "GLS" {
		return nil, &config.Error{File: c.Path(), Key: "training.loss_weighting", Msg: model.ErrShardedGLS.Error()}
	}
	fp, err := fingerprintOf(c, t.resolved, group.Size())
	if err != nil {
		return nil, err
	}
	if err := checkFingerprints(group, fp); err != nil {
		return nil, err
	}
	return group, nil
}

// openData opens the training data (this rank's shard of it) and the
// validation data, and returns the notes about them for the log.
func (t *trainer) openData(group Group) ([]string, error) {
	c := t.cfg
	norm, err := loader.ReadNormDict(c.Resolve(c.Data.NormDict))
	if err != nil {
		return nil, err
	}
	// The data first: a misspelt variable or label is reported as what it
	// is, with the configuration key to change, before the dictionaries
	// are consulted about it.
	lc := run.LoaderConfig(c, c.Data.Train, norm, true, c.Data.NumTrain)
	if group != nil {
		lc.Shards, lc.Shard = group.Size(), group.Rank()
	}
	if t.trainData, err = loader.Open(lc); err != nil {
		return nil, fmt.Errorf("train: training data: %w", c.DataError(err))
	}
	if t.valData, err = loader.Open(run.LoaderConfig(c, c.Data.Val, norm, false, c.Data.NumVal)); err != nil {
		return nil, fmt.Errorf("train: validation data: %w", c.DataError(err))
	}
	if t.trainData.NumBatches() == 0 {
		return nil, fmt.Errorf("train: the training files hold no jets (%v)", c.Data.Train)
	}
	notes := append(c.Notes(), dataNotes(c, "training", "num_train", t.trainData, c.Data.NumTrain)...)
	notes = append(notes, dataNotes(c, "validation", "num_val", t.valData, c.Data.NumVal)...)
	return append(notes, selectionNotes(t.trainData, c.Data.JetDataset, false)...), nil
}

// resumeOrRestart settles whether this rank resumes the run: only rank 0
// reads the run directory, and a run without a checkpoint yet starts
// again, which it reports by returning true.
func (t *trainer) resumeOrRestart() (restart bool) {
	if t.rank != 0 {
		// Rank 0 alone reads and writes the run directory; the others take
		// its state when training starts (syncState).
		t.opts.Resume = false
	}
	if t.rank == 0 && t.opts.Resume {
		if _, err := os.Stat(filepath.Join(t.opts.RunDir, run.LastCheckpoint)); err != nil {
			// Stopped before its first checkpoint (or never started):
			// nothing was trained, and starting afresh gives what continuing
			// would have. So one command line serves every (re)submission
			// of a pre-emptible batch job.
			fmt.Fprintf(t.log, "%s has no checkpoint yet; starting from the beginning\n", t.opts.RunDir)
			t.opts.Resume, restart = false, true
		}
	}
	return restart
}

// writeRunDir readies the run directory on rank 0: a resumed run keeps
// its files, a new one gets the configuration as given and resolved and
// its copies of the dictionaries.
func (t *trainer) writeRunDir(original *config.Config, restart bool) error {
	c, dir := t.cfg, t.opts.RunDir
	switch {
	case t.rank != 0:
	case t.opts.Resume:
		run.RemoveTemporaries(dir)
		if old, err := os.ReadFile(filepath.Join(dir, run.ResolvedFile)); err == nil && string(old) != string(t.resolved) {
			fmt.Fprintf(t.log, "warning: %s differs from the run's %s; the parameters must still match\n", c.Path(), run.ResolvedFile)
		}
	default:
		run.RemoveTemporaries(dir)
		if err := run.PrepareDir(dir, restart); err != nil {
			return err
		}
		var err error
		given := original.Text()
		if given == nil {
			if given, err = os.ReadFile(original.Path()); err != nil {
				return fmt.Errorf("train: %w", err)
			}
		}
		files := map[string][]byte{run.ConfigFile: given, run.ResolvedFile: t.resolved}
		if files[run.NormDictFile], err = os.ReadFile(c.Resolve(c.Data.NormDict)); err != nil {
			return fmt.Errorf("train: %w", err)
		}
		if c.Data.ClassDict != "" {
			if files[run.ClassDictFile], err = os.ReadFile(c.Resolve(c.Data.ClassDict)); err != nil {
				return fmt.Errorf("train: %w", err)
			}
		}
		for name, data := range files {
			if err := run.WriteFile(filepath.Join(dir, name), data); err != nil {
				return err
			}
		}
	}
	return nil
}

// openLog opens the run's log on rank 0 and writes what is trained on.
func (t *trainer) openLog(group Group, notes []string) error {
	c := t.cfg
	if t.rank == 0 {
		var err error
		if t.logFile, err = os.OpenFile(filepath.Join(t.opts.RunDir, run.LogFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, run.FileMode); err != nil {
			return fmt.Errorf("train: %w", err)
		}
		t.log = io.MultiWriter(t.log, t.logFile)
	}
	if group != nil {
		fmt.Fprintf(t.log, "data-parallel job of %d ranks: %d jets per rank and step, batches of %d summed\n", group.Size(), c.Data.BatchSize/group.Size(), c.Data.BatchSize)
	}
	fmt.Fprintf(t.log, "training on %d jets of %d files, validating on %d jets of %d files\n", t.trainData.Len(), len(c.Data.Train), t.valData.Len(), len(c.Data.Val))
	for _, n := range notes {
		fmt.Fprintf(t.log, "note: %s\n", n)
	}
	return nil
}

// placeGraphs chooses the device (a rank's local one in a job) and builds
// the graphs' sessions there.
func (t *trainer) placeGraphs(group Group) error {
	deviceIndex := 0
	if group != nil {
		deviceIndex = group.LocalRank()
	}
	var err error
	if t.place, err = run.NewPlacement(t.opts.Runtime, t.cfg, t.opts.Provider, deviceIndex, t.log); err != nil {
		return err
	}
	fmt.Fprintf(t.log, "graphs run on %s\n", t.place)
	return t.buildSessions(group)
}

// setupWeighting sets the learning-rate schedule and the task weights.
func (t *trainer) setupWeighting() {
	c := t.cfg
	t.schedule = schedule(c, c.Training.Epochs*t.trainData.NumBatches())
	for _, task := range t.spec.Tasks {
		t.static = append(t.static, task.Weight)
	}
	if c.Training.LossWeighting == "uncertainty" {
		t.weighting = NewUncertainty(t.static)
	} else {
		t.weighting = &Static{W: t.static}
	}
}

// initState takes the training state from the last checkpoint when
// resuming, or draws the initial parameters, shares it across the ranks
// of a job and loads it into the sessions.
func (t *trainer) initState() error {
	c := t.cfg
	if t.opts.Resume {
		if err := t.resumeState(); err != nil {
			return err
		}
	} else {
		r := rand.New(rand.NewPCG(c.Training.Seed, 0x9a17))
		t.state = trainingState{params: initialParams(t.layout, r), slots: map[string][]float32{}}
		for _, s := range t.layout.Slots {
			t.state.slots[s] = make([]float32, t.layout.Size)
		}
	}
	if t.par != nil {
		if err := t.syncState(); err != nil {
			return err
		}
	}
	switch {
	case !t.layout.LossScaling:
		t.state.lossScale = nil
	case t.state.lossScale == nil:
		t.state.lossScale = &lossScaleState{Scale: optim.DefaultLossScaler().Scale}
		if m := t.opts.mixed; m != nil && m.initialScale > 0 {
			t.state.lossScale.Scale = m.initialScale
		}
	}
	return t.loadState()
}

// resumeState reads the training state of the run's last checkpoint.
func (t *trainer) resumeState() error {
	c, dir := t.cfg, t.opts.RunDir
	path := filepath.Join(dir, run.LastCheckpoint)
	f, err := checkpoint.Read(path)
	if err != nil {
		return err
	}
	st, err := decodeState(path, f, t.layout.Params, t.layout.Size, t.layout.Slots, c.Training.LossWeighting)
	if err != nil {
		return err
	}
	if err := t.weighting.SetState(st.weighting); err != nil {
		return fmt.Errorf("train: %s: %w", path, err)
	}
	if n := t.trainData.NumBatches(); st.pos.Batch > n {
		// Possible with a checkpoint imported from Salt, written
		// mid-epoch on other data.
		return fmt.Errorf("train: %s continues epoch %d at batch %d, but the training files give %d batches of data.batch_size = %d jets: resume with the training data (data.train, data.num_train) and data.batch_size the checkpoint was trained with", path, st.pos.Epoch+1, st.pos.Batch, n, c.Data.BatchSize)
	}
	t.state = *st
	fmt.Fprintf(t.log, "resuming %s at epoch %d, batch %d (step %d)\n", dir, st.pos.Epoch+1, st.pos.Batch, st.pos.Step)
	return nil
}

// openMetrics opens the metrics tables (in memory alone on ranks other
// than 0), kept up to the position training continues from, and starts
// the summary.
func (t *trainer) openMetrics() error {
	c, dir := t.cfg, t.opts.RunDir
	tasks := make([]string, len(t.spec.Tasks))
	for i, task := range t.spec.Tasks {
		tasks[i] = task.Name
	}
	trainPath, valPath := filepath.Join(dir, run.TrainMetrics), filepath.Join(dir, run.ValMetrics)
	if t.rank != 0 {
		trainPath, valPath = "", "" // kept in memory only
	}
	var err error
	if t.trainCSV, err = run.OpenMetrics(trainPath, run.TrainColumns(tasks, t.layout.LossScaling), t.state.pos.Step); err != nil {
		return err
	}
	if t.valCSV, err = run.OpenMetrics(valPath, run.ValColumns(tasks, t.spec.Objects), t.state.pos.Epoch); err != nil {
		return err
	}
	t.summary = Summary{RunDir: dir, Model: t.spec.Name, Parameters: t.layout.Size, Monitor: c.Training.Checkpoints.Monitor, FinalTrainLoss: map[string]float64{}, Ranks: 1}
	if t.par != nil {
		t.summary.Ranks = t.par.group.Size()
	}
	return nil
}

func (t *trainer) buildSessions(group Group) error {
	c := t.cfg
	if group != nil {
		timeout := time.Duration(c.Training.CollectiveTimeout * float64(time.Second))
		if err := t.newParallel(group, timeout, os.Stderr); err != nil {
			return err
		}
	} else {
		trainG, layout, err := trainStepGraph(t.spec, c, c.Data.BatchSize, t.opts.mixed)
		if err != nil {
			return err
		}
		t.trainG, t.layout = trainG, layout
		if t.train, err = t.place.Open(trainG, residentState(layout), true); err != nil {
			return err
		}
		t.trainBind = t.train.Bind
		opts, err := trainOptions(t.spec, c, c.Data.BatchSize, t.opts.mixed)
		if err != nil {
			return err
		}
		if t.objects, err = run.NewObjectMatcher(t.place, t.spec, opts, t.layout); err != nil {
			return err
		}
	}
	compute, _ := precision(c, t.opts.mixed)
	var err error
	if t.eval, err = run.OpenEvaluator(t.place, t.spec, c.Data.JetDataset, model.EvalOptions{Batch: c.Data.BatchSize, Compute: compute}); err != nil {
		return err
	}
	if group != nil {
		t.eval.Shard(group.Rank(), group.Size(), t.reduceResult)
	}
	t.feedTrain = run.Feeder{Spec: t.spec, JetDataset: c.Data.JetDataset, Labels: true, Fit: true, Seed: c.Training.Seed}
	// Validation feeds the parameters as training does (Salt's fit stage).
	t.eval.FeedAsFit(c.Training.Seed)
	return nil
}

// trainStepGraph builds the training step of spec for batches of the
// given size with training's optimizer, clipping and precision (mixed, when
// not nil, overrides the precision).
func trainStepGraph(spec model.Spec, c *config.Config, batch int, mixed *mixedPrecision) (*graph.Graph, *optim.Layout, error) {
	opts, err := trainOptions(spec, c, batch, mixed)
	if err != nil {
		return nil, nil, err
	}
	return spec.TrainStep(opts)
}

// trainOptions are the training-step options of training's optimizer,
// clipping and precision (mixed, when not nil, overrides the precision).
func trainOptions(spec model.Spec, c *config.Config, batch int, mixed *mixedPrecision) (_ model.TrainOptions, err error) {
	var opt optim.Optimizer
	switch o := c.Training.Optimizer; o.Name {
	case "sgd":
		opt = optim.SGD{Momentum: o.Momentum, WeightDecay: o.WeightDecay}
	case "lion":
		opt = optim.Lion{Beta1: o.Beta1, Beta2: o.Beta2, WeightDecay: o.WeightDecay}
	default:
		opt = optim.AdamW{Beta1: o.Beta1, Beta2: o.Beta2, Eps: o.Eps, WeightDecay: o.WeightDecay}
	}
	compute, lossScaling := precision(c, mixed)
	step := optim.Step{Optimizer: opt, ClipNorm: c.Training.GradClip, LossScaling: lossScaling, CycleMomentum: c.Training.LR.CycleMomentum}
	if step.Scales, err = muPScales(spec, c); err != nil {
		return model.TrainOptions{}, err
	}
	// On the CPU, host memory is what limits the batch: recompute the
	// encoder's activations rather than keep them (GN2's plan: 2.47 → 1.58
	// MB per jet at batch 1000, for 711 → 848 MFLOP per jet), and run the
	// encoder on chunks of jets whose tensors stay in the caches (GN2 at
	// batch 1000: 126–129 → 152–155 jets/s; plan 1.58 → 0.67 MB per jet).
	// A GPU runs large products fastest and keeps the batch whole.
	cpu := c.Training.Device != "cuda"
	return model.TrainOptions{Batch: batch, Step: step, Compute: compute, RecomputeEncoder: cpu, ChunkEncoder: cpu}, nil
}

// schedule is the one-cycle schedule training.lr describes over total
// optimizer steps.
func schedule(c *config.Config, total int) Schedule {
	return Schedule{OneCycle: c.Training.LR, TotalSteps: total}
}

// precision returns the compute type training.precision (or mixed, when
// not nil) asks for, and whether loss scaling is forced on (model.TrainStep
// turns it on for float16 anyway).
func precision(c *config.Config, mixed *mixedPrecision) (graph.DType, bool) {
	if mixed != nil {
		return mixed.compute, mixed.lossScaling
	}
	return precisionCompute[c.Training.Precision], false
}

// residentState names the training step's inputs and outputs that stay on
// a device between steps: the parameters and the optimizer state.
func residentState(layout *optim.Layout) []string {
	resident := []string{optim.ParamsInput, optim.NewParams}
	for _, s := range layout.Slots {
		resident = append(resident, optim.StateInput(s), optim.NewStateOutput(s))
	}
	return resident
}

// precisionCompute maps training.precision to the compute type of the
// graphs ("tf32" is float32 with TF32 products, a provider option).
var precisionCompute = map[string]graph.DType{"fp32": graph.Float32, "tf32": graph.Float32, "fp16": graph.Float16, "bf16": graph.BFloat16}

// minLossScale is the loss scale below which an fp16 run gives up: its
// forward pass overflows whatever the gradient's scale.
const minLossScale = 1.0 / 1024

// loadState copies the parameters and optimizer state into the training
// binding.
func (t *trainer) loadState() error {
	if err := t.trainBind.Write(optim.ParamsInput, t.state.params); err != nil {
		return err
	}
	if t.par != nil { // the update graph holds the parameters and the state
		if err := t.stepBind().Write(optim.ParamsInput, t.state.params); err != nil {
			return err
		}
	}
	for _, s := range t.layout.Slots {
		if err := t.stepBind().Write(optim.StateInput(s), t.state.slots[s]); err != nil {
			return err
		}
	}
	return nil
}

// stepBind is the binding of the graph that updates the parameters: the
// training step's, or a data-parallel run's update graph's.
func (t *trainer) stepBind() run.Tensors {
	if t.par != nil {
		return t.par.update.Bind
	}
	return t.trainBind
}

// saveState copies the parameters and optimizer state out of the binding.
func (t *trainer) saveState() error {
	if err := t.stepBind().Read(optim.ParamsInput, t.state.params); err != nil {
		return err
	}
	for _, s := range t.layout.Slots {
		if err := t.stepBind().Read(optim.StateInput(s), t.state.slots[s]); err != nil {
			return err
		}
	}
	t.state.weighting = t.weighting.State()
	return nil
}

// writeCheckpoint writes the current state to path (relative to the run
// directory).
func (t *trainer) writeCheckpoint(rel string) error {
	if t.rank != 0 {
		return nil
	}
	if err := t.saveState(); err != nil {
		return err
	}
	f, err := encodeState(&t.state, t.layout.Params, t.layout.Slots, t.spec.Name, t.cfg.Training.LossWeighting, t.resolved)
	if err != nil {
		return err
	}
	return checkpoint.Write(filepath.Join(t.opts.RunDir, rel), f)
}

// fillRandom fills the dropout masks (and the uniform numbers pair
// dropout masks are computed from) of the step from a generator seeded
// by the run's seed and the step, so a resumed run draws the same masks.
// A rank of a data-parallel job draws the masks of the whole batch and
// keeps its shard's rows, so the job draws what one process would.
func (t *trainer) fillRandom(step int) error {
	shard := 0
	if t.par != nil {
		shard = t.par.group.Rank()
	}
	for i, ri := range t.trainG.RandomInputs() {
		dst, err := t.trainBind.Float32(ri.Tensor.Name())
		if err != nil {
			return err
		}
		r := rand.New(rand.NewPCG(t.cfg.Training.Seed^0xd409, uint64(step)<<16|uint64(i)))
		keep := float32(1 / (1 - ri.P))
		skip := shard * len(dst) // the masks' leading axis is the batch
		for k := 0; k < skip; k++ {
			r.Float64()
		}
		if ri.Kind == graph.RandomUniform {
			for k := range dst {
				dst[k] = float32(r.Float64())
			}
			continue
		}
		for k := range dst {
			if r.Float64() < ri.P {
				dst[k] = 0
			} else {
				dst[k] = keep
			}
		}
	}
	return nil
}

// agree returns whether any rank of a data-parallel job says yes (its own
// answer alone otherwise), so that the ranks take decisions together.
func (t *trainer) agree(yes bool) (bool, error) {
	if t.par == nil {
		return yes, nil
	}
	v := []float64{0}
	if yes {
		v[0] = 1
	}
	err := t.par.watch.run("agreeing to stop", func() error { return t.par.group.SumFloat64(v) })
	return v[0] > 0, err
}

// loop runs the epochs from the current position.
func (t *trainer) loop(ctx context.Context) error {
	taskLoss := make([]float64, len(t.spec.Tasks))
	stepsHere := 0
	if t.state.pos.Step == 0 && t.state.pos.Epoch == 0 && t.state.pos.Batch == 0 {
		if err := t.validateStart(ctx); err != nil {
			return err
		}
	}
	for t.state.pos.Epoch < t.cfg.Training.Epochs {
		stop, err := t.runEpoch(ctx, taskLoss, &stepsHere)
		if err != nil {
			return err
		}
		if stop {
			break
		}
	}
	t.summary.Steps = t.state.pos.Step
	return nil
}

// validateStart records the untrained model's validation loss, the
// baseline every later epoch is compared with, and checkpoints the
// starting point, so that a run killed before its first epoch ends can
// still be resumed.
func (t *trainer) validateStart(ctx context.Context) error {
	vctx := ctx
	if t.par != nil {
		// The ranks validate together and stop together.
		vctx = context.WithoutCancel(ctx)
	}
	val, err := t.validate(vctx)
	stop, aerr := t.agree(ctx.Err() != nil)
	if aerr != nil {
		return aerr
	}
	if stop {
		return ErrInterrupted
	}
	if err != nil {
		return err
	}
	t.recordValidation(0, val)
	if err := t.valCSV.Flush(); err != nil {
		return err
	}
	return t.writeCheckpoint(run.LastCheckpoint)
}

// runEpoch trains the current epoch from the current batch, then
// validates and checkpoints it; stop is set where early stopping ends the
// run, and the error is ErrInterrupted where a stop was asked for.
// stepsHere counts the steps this process has run.
func (t *trainer) runEpoch(ctx context.Context, taskLoss []float64, stepsHere *int) (stop bool, err error) {
	epoch := t.state.pos.Epoch
	interrupted, err := t.trainEpoch(ctx, epoch, taskLoss, stepsHere)
	if err != nil {
		return false, err
	}
	return t.closeEpoch(ctx, epoch, interrupted)
}

// stepper runs the steps of an epoch, one step in flight while the next
// batch is filled in: on a device, the host buffers are free once the
// step's inputs are staged (see startStep).
type stepper struct {
	t         *trainer
	ctx       context.Context
	epoch     int
	batches   int
	bar       progress
	start     time.Time
	taskLoss  []float64
	stepsHere *int
	// jets counts the jets of the whole job trained this epoch.
	jets int
	// running is the step in flight (nil if none), its step number and
	// the jets of its batch on this rank.
	running     <-chan error
	runningStep int
	runningN    int
}

// finish waits for the step in flight, takes its losses, moves the
// position on and logs.
func (s *stepper) finish() error {
	t, c := s.t, s.t.cfg
	if s.running == nil {
		return nil
	}
	err := <-s.running
	s.running = nil
	if err == nil {
		err = t.finishStep(s.runningStep, s.taskLoss)
	}
	if err == nil && t.objects != nil {
		err = t.objects.Observe(t.trainBind)
	}
	if err != nil {
		return fmt.Errorf("train: epoch %d, step %d: %w", s.epoch+1, s.runningStep+1, err)
	}
	t.state.pos.Step++
	t.state.pos.Batch++
	*s.stepsHere++
	// Jets of the whole job (every rank trained its shard).
	s.jets += s.runningN * t.summary.Ranks
	if s.bar != nil {
		s.bar.Add(s.runningN * t.summary.Ranks)
	}
	if t.state.pos.Step%c.Training.LogEvery == 0 || t.state.pos.Batch == s.batches {
		t.logStep(s.epoch, s.runningStep, s.taskLoss, float64(s.jets)/time.Since(s.start).Seconds())
	}
	return nil
}

// stopAsked reports whether the context is done or the steps asked for
// (Options.StopAfter) have run.
func (s *stepper) stopAsked() bool {
	return s.ctx.Err() != nil || (s.t.opts.StopAfter > 0 && *s.stepsHere >= s.t.opts.StopAfter)
}

// run trains on the batches of ch until they end, an error or a stop;
// interrupted is set where a stop left batches of the epoch untrained.
func (s *stepper) run(ch <-chan *loader.Batch) (interrupted bool, err error) {
	t := s.t
	for b := range ch {
		step := t.state.pos.Step
		if s.running != nil {
			step++
		}
		err = t.feedTrain.Fill(t.trainBind, b)
		if err == nil && t.par != nil {
			err = t.par.fill(&t.feedTrain, b)
		}
		if err == nil && t.objects != nil {
			err = t.objects.Fill(t.trainBind, b)
		}
		n := b.N
		b.Release()
		if err == nil {
			err = t.fillRandom(step)
		}
		if ferr := s.finish(); err == nil {
			err = ferr
		}
		if err != nil {
			break
		}
		if t.par != nil {
			// The ranks agree on stopping before the step (parallelStep).
			t.par.stop = s.stopAsked()
		} else if s.stopAsked() {
			// The batch just filled in is not trained on; the position
			// points at it, so a resumed run starts with it.
			interrupted = true
			break
		}
		if t.objects != nil {
			if err = t.objects.Match(t.trainBind); err != nil {
				break
			}
		}
		if err = t.prepareStep(step); err != nil {
			break
		}
		s.running, s.runningStep, s.runningN = t.startStep(), step, n
		if t.par != nil {
			// The step ran; errStop means the ranks stopped before it.
			if err = <-s.running; errors.Is(err, errStop) {
				s.running, err, interrupted = nil, nil, true
				break
			}
			done := make(chan error, 1)
			done <- err
			s.running = done
		}
	}
	if ferr := s.finish(); err == nil {
		err = ferr
	}
	return interrupted, err
}

// trainEpoch trains on the batches of an epoch from the current one, and
// reports the epoch's speed; interrupted is set where a stop was asked for.
func (t *trainer) trainEpoch(ctx context.Context, epoch int, taskLoss []float64, stepsHere *int) (interrupted bool, err error) {
	c := t.cfg
	t.feedTrain.Epoch = epoch
	s := &stepper{t: t, ctx: ctx, epoch: epoch, batches: t.trainData.NumBatches(), bar: t.progress(epoch), taskLoss: taskLoss, stepsHere: stepsHere}
	epochCtx, cancel := context.WithCancel(ctx)
	ch, errc := t.trainData.Batches(epochCtx, epoch, t.state.pos.Batch)
	s.start = time.Now()
	interrupted, err = s.run(ch)
	if err != nil {
		cancel()
		for range ch {
		}
		return false, err
	}
	if t.par == nil {
		interrupted = interrupted || s.stopAsked()
	}
	cancel()
	for range ch {
	}
	if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
		return false, fmt.Errorf("train: epoch %d: %w", epoch+1, c.DataError(err))
	}
	if s.bar != nil {
		s.bar.Finish()
	}
	if s.jets > 0 {
		t.summary.JetsPerSecond = float64(s.jets) / time.Since(s.start).Seconds()
	}
	if p := t.par; p != nil && p.steps > 0 {
		t.summary.AllReduceMs = float64(p.reduceTime.Microseconds()) / 1000 / float64(p.steps)
		fmt.Fprintf(t.log, "epoch %d: summing the gradients over %d ranks took %.2f ms per step (%d values)\n", epoch+1, p.group.Size(), t.summary.AllReduceMs, len(p.grad))
	}
	return interrupted, nil
}

// closeEpoch checkpoints an epoch cut short by a stop and returns
// ErrInterrupted, or validates and checkpoints an epoch that ran to its
// end (even when a stop was asked for meanwhile); stop is set where early
// stopping ends the run.
func (t *trainer) closeEpoch(ctx context.Context, epoch int, interrupted bool) (stop bool, err error) {
	c := t.cfg
	batches := t.trainData.NumBatches()
	if interrupted && t.state.pos.Batch < batches {
		if err := t.trainCSV.Flush(); err != nil {
			return false, err
		}
		if err := t.valCSV.Flush(); err != nil {
			return false, err
		}
		if err := t.writeCheckpoint(run.LastCheckpoint); err != nil {
			return false, err
		}
		fmt.Fprintf(t.log, "interrupted at epoch %d, batch %d (step %d); resume with --resume %s\n", epoch+1, t.state.pos.Batch, t.state.pos.Step, t.opts.RunDir)
		return false, ErrInterrupted
	}
	if t.state.pos.Batch < batches {
		return false, fmt.Errorf("train: epoch %d ended after %d of %d batches", epoch+1, t.state.pos.Batch, batches)
	}
	if means := t.objects.EndEpoch(t.log, epoch); means != nil {
		t.summary.ObjectLoss = append(t.summary.ObjectLoss, means)
	}
	if stop, err = t.endEpoch(context.WithoutCancel(ctx), epoch); err != nil {
		return false, err
	}
	if interrupted, err = t.agree(interrupted || ctx.Err() != nil); err != nil {
		return false, err
	}
	t.summary.Epochs = t.state.pos.Epoch
	if stop {
		t.summary.StoppedEarly = true
		fmt.Fprintf(t.log, "early stopping: %s has not improved for %d epochs\n", c.Training.Checkpoints.Monitor, c.Training.EarlyStopping.Patience)
		return true, nil
	}
	if interrupted {
		fmt.Fprintf(t.log, "interrupted after epoch %d (step %d); resume with --resume %s\n", epoch+1, t.state.pos.Step, t.opts.RunDir)
		return false, ErrInterrupted
	}
	return false, nil
}

// progress returns the progress display of an epoch, or nil.
func (t *trainer) progress(epoch int) progress {
	if t.opts.Progress == nil {
		return nil
	}
	return newProgress(t.opts.Progress, fmt.Sprintf("epoch %d/%d", epoch+1, t.cfg.Training.Epochs), t.trainData.Len())
}

// prepareStep sets the scalar inputs of step: the learning rate, the
// optimizer's step count, the loss scale and the task weights (which depend
// on the steps before, so they are set after those finished).
func (t *trainer) prepareStep(step int) error {
	b := t.stepBind()
	lr := t.schedule.At(step)
	if err := b.SetScalar(optim.LRInput, float32(lr)); err != nil {
		return err
	}
	if t.layout.CycleMomentum {
		if err := b.SetScalar(optim.MomentumInput, float32(t.schedule.Momentum(step))); err != nil {
			return err
		}
	}
	// Adam's step count leaves out the steps loss scaling skipped.
	done := step
	if ls := t.state.lossScale; ls != nil {
		done -= ls.Skipped
		if err := b.SetScalar(optim.LossScaleInput, float32(ls.Scale)); err != nil {
			return err
		}
		if t.par != nil { // the gradient graph scales the loss
			if err := t.trainBind.SetScalar(optim.LossScaleInput, float32(ls.Scale)); err != nil {
				return err
			}
		}
	}
	if err := b.SetScalar(optim.StepInput, float32(done+1)); err != nil {
		return err
	}
	w, err := t.trainBind.Float32(model.TaskWeightsInput)
	if err != nil {
		return err
	}
	for i, v := range t.weighting.Weights() {
		w[i] = float32(v)
	}
	return nil
}

// startStep runs the training step on the bound inputs. On a device the
// inputs are staged first and the run goes on in a goroutine, so the loop
// can fill the next batch into the host buffers meanwhile; ONNX Runtime's
// CPU session reads the Go buffers while it runs, so there the step runs
// before startStep returns.
func (t *trainer) startStep() <-chan error {
	done := make(chan error, 1)
	if t.par != nil {
		done <- t.parallelStep()
		return done
	}
	if p, ok := t.trainBind.(interface {
		Stage() error
		Execute() error
	}); ok {
		if err := p.Stage(); err != nil {
			done <- err
			return done
		}
		go func() { done <- p.Execute() }()
		return done
	}
	done <- t.trainBind.Run()
	return done
}

// finishStep reads the losses of a step that has run, updates the loss
// weighting and scaling, and hands the new parameters and state to the
// next step.
func (t *trainer) finishStep(step int, taskLoss []float64) error {
	b := t.stepBind()
	applied, err := t.updateLossScale()
	if err != nil {
		return err
	}
	if applied {
		for i, task := range t.spec.Tasks {
			v, err := t.trainBind.Scalar(model.TaskLossOutput(task.Name))
			if t.par != nil {
				v = float32(t.par.losses[i])
			}
			if err != nil {
				return err
			}
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("task %s: loss is %v (lower the learning rate, set grad_clip, or check the inputs)", task.Name, v)
			}
			taskLoss[i] = float64(v)
		}
		t.weighting.Observe(taskLoss, t.schedule.At(step))
	}
	if err := b.Swap(optim.ParamsInput, optim.NewParams); err != nil {
		return err
	}
	for _, s := range t.layout.Slots {
		if err := b.Swap(optim.StateInput(s), optim.NewStateOutput(s)); err != nil {
			return err
		}
	}
	if t.par != nil { // the next gradient reads the new parameters
		if err := b.Read(optim.ParamsInput, t.state.params); err != nil {
			return err
		}
		return t.trainBind.Write(optim.ParamsInput, t.state.params)
	}
	return nil
}

// updateLossScale runs dynamic loss scaling after a step: it reports
// whether the step applied its update (always, without loss scaling) and
// halves or grows the scale as optim.LossScaler does.
func (t *trainer) updateLossScale() (applied bool, err error) {
	ls := t.state.lossScale
	if ls == nil {
		return true, nil
	}
	v, err := t.stepBind().Scalar(optim.GradFiniteOutput)
	if err != nil {
		return false, err
	}
	finite := v == 1
	scaler := optim.DefaultLossScaler()
	scaler.Scale, scaler.GoodSteps = ls.Scale, ls.GoodSteps
	scaler.Update(finite)
	ls.Scale, ls.GoodSteps = scaler.Scale, scaler.GoodSteps
	if !finite {
		ls.Skipped++
		if ls.Scale < minLossScale {
			return false, fmt.Errorf("the gradient overflows float16 even at loss scale %g: train with precision = \"bf16\" or \"fp32\"", ls.Scale)
		}
	}
	return finite, nil
}

func (t *trainer) logStep(epoch, step int, taskLoss []float64, jetsPerS float64) {
	total, _ := t.trainBind.Scalar(model.LossOutput)
	if t.par != nil {
		total = float32(t.par.losses[len(t.spec.Tasks)])
	}
	norm, _ := t.stepBind().Scalar(optim.GradNormOutput)
	row := []string{strconv.Itoa(step + 1), strconv.Itoa(epoch + 1), run.FormatValue(t.schedule.At(step)), run.FormatValue(float64(total))}
	for i, task := range t.spec.Tasks {
		row = append(row, run.FormatValue(taskLoss[i]))
		t.summary.FinalTrainLoss[task.Name] = taskLoss[i]
	}
	for _, w := range t.weighting.Weights() {
		row = append(row, run.FormatValue(w))
	}
	row = append(row, run.FormatValue(float64(norm)), run.FormatValue(jetsPerS))
	if ls := t.state.lossScale; ls != nil {
		row = append(row, run.FormatValue(ls.Scale), strconv.Itoa(ls.Skipped))
	}
	t.trainCSV.Add(row)
}

// endEpoch validates, writes the epoch's checkpoints and decides on early
// stopping.
func (t *trainer) endEpoch(ctx context.Context, epoch int) (stop bool, err error) {
	c := t.cfg
	if !t.selectionsLogged {
		// Constituent selections are counted as the batches are read.
		for _, n := range selectionNotes(t.trainData, c.Data.JetDataset, true) {
			fmt.Fprintf(t.log, "note: %s in the first epoch\n", n)
		}
		t.selectionsLogged = true
	}
	val, err := t.validate(ctx)
	if err != nil {
		return false, err
	}
	monitor := val.Total
	if name := c.Training.Checkpoints.Monitor; name != "val_loss" {
		monitor = val.Loss[name[len("val_loss/"):]]
	}
	t.recordValidation(epoch+1, val)

	// The next epoch starts at its first batch; the best checkpoints are
	// written before "last", whose metadata lists them.
	t.state.pos.Epoch++
	t.state.pos.Batch = 0
	improved := len(t.state.best) == 0 || monitor < t.state.best[0].Metric-c.Training.EarlyStopping.MinDelta
	if improved {
		t.state.stale = 0
	} else {
		t.state.stale++
	}
	k := c.Training.Checkpoints.SaveTopK
	if len(t.state.best) < k || monitor < t.state.best[len(t.state.best)-1].Metric {
		entry := run.BestEntry{File: filepath.Join(run.CheckpointDir, fmt.Sprintf("epoch=%03d-%s=%.5f.safetensors", epoch+1, "val_loss", monitor)), Epoch: epoch + 1, Metric: monitor}
		best := append(append([]run.BestEntry{}, t.state.best...), entry)
		sort.SliceStable(best, func(i, j int) bool { return best[i].Metric < best[j].Metric })
		var drop []run.BestEntry
		if len(best) > k {
			drop, best = best[k:], best[:k]
		}
		t.state.best = best
		if err := t.writeCheckpoint(entry.File); err != nil {
			return false, err
		}
		for _, d := range drop {
			if d.File != entry.File && t.rank == 0 {
				os.Remove(filepath.Join(t.opts.RunDir, d.File))
			}
		}
	}
	if err := t.trainCSV.Flush(); err != nil {
		return false, err
	}
	if err := t.valCSV.Flush(); err != nil {
		return false, err
	}
	if err := t.writeCheckpoint(run.LastCheckpoint); err != nil {
		return false, err
	}
	if len(t.state.best) > 0 {
		t.summary.BestCheckpoint = t.state.best[0].File
		t.summary.BestMetric = t.state.best[0].Metric
	}
	p := c.Training.EarlyStopping.Patience
	return p > 0 && t.state.stale >= p, nil
}

// validate evaluates the current parameters on the validation set.
func (t *trainer) validate(ctx context.Context) (*run.Result, error) {
	// The parameters travel through the host copy of the state, which is
	// refreshed before every checkpoint anyway.
	params := t.state.params
	if err := t.trainBind.Read(optim.ParamsInput, params); err != nil {
		return nil, err
	}
	if err := t.eval.SetParams(params); err != nil {
		return nil, err
	}
	res, err := t.eval.Run(ctx, t.valData)
	if err != nil {
		return nil, fmt.Errorf("train: validation: %w", t.cfg.DataError(err))
	}
	return res, nil
}

// recordValidation adds a validation row (epoch 0: before training) to
// the metrics, the summary and the log.
func (t *trainer) recordValidation(epoch int, val *run.Result) {
	row := []string{strconv.Itoa(epoch), strconv.Itoa(t.state.pos.Step), run.FormatValue(val.Total)}
	for _, task := range t.spec.Tasks {
		row = append(row, run.FormatValue(val.Loss[task.Name]))
	}
	row = append(row, t.objects.ValRow(val)...)
	row = append(row, run.FormatValue(val.AUC))
	t.valCSV.Add(row)
	fmt.Fprintf(t.log, "epoch %d/%d: val_loss %.5f", epoch, t.cfg.Training.Epochs, val.Total)
	for _, task := range t.spec.Tasks {
		fmt.Fprintf(t.log, ", %s %.5f", task.Name, val.Loss[task.Name])
	}
	t.objects.Log(t.log, val)
	if !math.IsNaN(val.AUC) {
		fmt.Fprintf(t.log, ", AUC(b vs light) %.4f", val.AUC)
	}
	fmt.Fprintln(t.log)
}

func (t *trainer) writeSummary() error {
	if t.rank != 0 {
		return nil
	}
	// The validation history comes from the metrics table, which a resumed
	// run keeps from before the interruption.
	t.summary.ValLoss = nil
	for _, row := range t.valCSV.Rows() {
		h := map[string]float64{}
		for i, col := range t.valCSV.Header() {
			v, err := strconv.ParseFloat(row[i], 64)
			if err == nil && !math.IsNaN(v) {
				h[col] = v
			}
		}
		t.summary.ValLoss = append(t.summary.ValLoss, h)
	}
	t.summary.Steps = t.state.pos.Step
	data, err := json.MarshalIndent(&t.summary, "", "  ")
	if err != nil {
		return err
	}
	return run.WriteFile(filepath.Join(t.opts.RunDir, run.SummaryFile), append(data, '\n'))
}

package train

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
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

// Group is the set of processes (ranks) of a data-parallel job, as the
// trainer uses it; package mpi's World is one. Every rank makes the same
// calls in the same order.
type Group interface {
	Rank() int
	Size() int
	// LocalRank is the rank among the ranks on this machine, which picks
	// its GPU.
	LocalRank() int
	// SumFloat32 and SumFloat64 replace buf on every rank by the
	// element-wise sum over the ranks, the same bits on every rank.
	SumFloat32(buf []float32) error
	SumFloat64(buf []float64) error
	// Broadcast copies buf from rank root to the others.
	Broadcast(buf []byte, root int) error
	// Gather returns every rank's buffer, in rank order, on every rank.
	Gather(b []byte) ([][]byte, error)
	// Abort ends every rank of the job with the exit code.
	Abort(code int)
}

// DefaultCollectiveTimeout is how long a rank waits in a collective call
// for the others before it decides one has died (training.collective_timeout).
const DefaultCollectiveTimeout = 10 * time.Minute

// parallel is a data-parallel run's part of the trainer: each step it sums
// the ranks' loss denominators, runs the sharded gradient graph, sums the
// gradients and the losses over the ranks and runs the update graph on the
// sum, which every rank applies alike.
type parallel struct {
	group   Group
	watch   *watchdog
	den     *run.Session // the batch's loss denominators (model.Denominators)
	update  *run.Session // the optimizer update (model.UpdateStep)
	updateG *graph.Graph
	grad    []float32 // the gradient, summed over the ranks
	// comm sums the gradient on the GPUs (NCCL); nil sums it through host
	// memory over the group.
	comm   *nccl.Comm
	sums   []float64 // task denominators, then stop flags, per step
	losses []float64 // the batch's task losses and total, summed
	// stop is set by a rank that wants the job to stop; the ranks agree on
	// it with the denominators, before a step, so that all stop together.
	stop bool
	// reduceTime is the time spent summing gradients, over steps steps.
	reduceTime time.Duration
	steps      int
}

// watchdog ends the job when a collective call has not returned within
// its timeout: a rank that died leaves the others waiting for ever, and
// not every launcher kills them.
type watchdog struct {
	mu      sync.Mutex
	what    string
	since   time.Time
	timeout time.Duration
	rank    int
	abort   func(int)
	log     io.Writer
	done    chan struct{}
}

func newWatchdog(timeout time.Duration, rank int, abort func(int), log io.Writer) *watchdog {
	w := &watchdog{timeout: timeout, rank: rank, abort: abort, log: log, done: make(chan struct{})}
	go w.watch()
	return w
}

// watch checks the collective in progress a few times per timeout.
func (w *watchdog) watch() {
	tick := time.NewTicker(max(w.timeout/10, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-w.done:
			return
		case now := <-tick.C:
			w.mu.Lock()
			what, since := w.what, w.since
			w.mu.Unlock()
			if what != "" && now.Sub(since) > w.timeout {
				fmt.Fprintf(w.log, "salt-ort: rank %d: %s has waited %v for the other ranks (training.collective_timeout): a rank has stopped or died; ending the job, the last checkpoint is intact\n",
					w.rank, what, now.Sub(since).Round(time.Second))
				w.abort(1)
				return
			}
		}
	}
}

// run runs the collective call f under the watchdog.
func (w *watchdog) run(what string, f func() error) error {
	w.mu.Lock()
	w.what, w.since = what, time.Now()
	w.mu.Unlock()
	err := f()
	w.mu.Lock()
	w.what = ""
	w.mu.Unlock()
	if err != nil {
		return fmt.Errorf("train: rank %d: %s: %w", w.rank, what, err)
	}
	return nil
}

func (w *watchdog) close() { close(w.done) }

// newParallel opens the graphs of a split step: the sharded gradient graph
// becomes the trainer's training binding, the update and denominator
// graphs are the parallel's own.
func (t *trainer) newParallel(group Group, timeout time.Duration, stderr io.Writer) error {
	c := t.cfg
	n := group.Size()
	rows := c.Data.BatchSize / n
	opts, err := trainOptions(t.spec, c, rows, t.opts.mixed)
	if err != nil {
		return err
	}
	opts.Sharded = true
	gradG, layout, err := t.spec.GradientStep(opts)
	if err != nil {
		return err
	}
	updateG, err := t.spec.UpdateStep(opts, layout)
	if err != nil {
		return err
	}
	denG, err := t.spec.Denominators(rows)
	if err != nil {
		return err
	}
	// On a device the gradient stays there: NCCL sums it in place and it
	// is copied on the device into the update graph's input.
	var gradResident []string
	updateResident := residentState(layout)
	if t.place.Device != nil {
		gradResident = []string{optim.GradOutput}
		updateResident = append(updateResident, optim.GradInput)
	}
	p := &parallel{group: group, updateG: updateG, grad: make([]float32, layout.Size),
		sums: make([]float64, len(t.spec.Tasks)+1), losses: make([]float64, len(t.spec.Tasks)+1)}
	p.watch = newWatchdog(timeout, group.Rank(), group.Abort, stderr)
	if p.den, err = t.place.Open(denG, nil, false); err != nil {
		return err
	}
	if p.update, err = t.place.Open(updateG, updateResident, true); err != nil {
		return err
	}
	if t.train, err = t.place.Open(gradG, gradResident, true); err != nil {
		return err
	}
	t.trainG, t.layout, t.trainBind, t.par = gradG, layout, t.train.Bind, p
	if t.place.Device != nil {
		if err := p.openNCCL(t.opts.NCCL, c.Training.NCCLLib, t.place.Index, t.log); err != nil {
			return err
		}
	}
	return nil
}

// openNCCL joins the ranks' NCCL communicator for summing the gradients
// on the GPUs; where NCCL cannot be loaded the gradients are summed
// through host memory over the group, and the log says why.
func (p *parallel) openNCCL(opts nccl.Options, lib string, device int, log io.Writer) error {
	if opts.Library == "" {
		opts.Library = lib
	}
	l, loadErr := nccl.Open(opts)
	// Every rank must take the same path: they agree on it first.
	ok := []float64{0}
	if loadErr == nil {
		ok[0] = 1
	}
	if err := p.watch.run("checking NCCL on every rank", func() error { return p.group.SumFloat64(ok) }); err != nil {
		return err
	}
	if int(ok[0]) != p.group.Size() {
		if loadErr == nil {
			loadErr = fmt.Errorf("another rank could not load NCCL")
		}
		fmt.Fprintf(log, "summing the gradients through host memory over MPI, not NCCL: %v\n", loadErr)
		return nil
	}
	var id nccl.ID
	if p.group.Rank() == 0 {
		var err error
		if id, err = l.NewID(); err != nil {
			return err
		}
	}
	if err := p.watch.run("sharing NCCL's unique id", func() error { return p.group.Broadcast(id[:], 0) }); err != nil {
		return err
	}
	var err error
	if err = p.watch.run("joining NCCL's communicator", func() error {
		p.comm, err = l.NewComm(id, p.group.Rank(), p.group.Size(), device)
		return err
	}); err != nil {
		return err
	}
	fmt.Fprintf(log, "summing the gradients on the GPUs with NCCL %d (%s)\n", l.Version(), l.Path())
	return nil
}

func (p *parallel) close() {
	if p == nil {
		return
	}
	if p.comm != nil {
		p.comm.Close()
	}
	p.watch.close()
	p.den.Close()
	p.update.Close()
}

// fill copies the batch into the denominator graph too.
func (p *parallel) fill(f *run.Feeder, b *loader.Batch) error { return f.Fill(p.den.Bind, b) }

// step runs one split training step on the batch already in the
// bindings; it returns errStop, without training, when a rank asked to
// stop.
func (t *trainer) parallelStep() error {
	p := t.par
	if err := p.den.Bind.Run(); err != nil {
		return err
	}
	tasks := t.spec.Tasks
	for i, task := range tasks {
		v, err := p.den.Bind.Scalar(model.LossDenOutput(task.Name))
		if err != nil {
			return err
		}
		p.sums[i] = float64(v)
	}
	p.sums[len(tasks)] = 0
	if p.stop {
		p.sums[len(tasks)] = 1
	}
	if err := p.watch.run("summing the loss denominators", func() error { return p.group.SumFloat64(p.sums) }); err != nil {
		return err
	}
	if p.sums[len(tasks)] > 0 {
		return errStop
	}
	b := t.trainBind
	for i, task := range tasks {
		if err := b.SetScalar(model.LossDenInput(task.Name), float32(p.sums[i])); err != nil {
			return err
		}
	}
	if err := b.Run(); err != nil {
		return err
	}
	for i, task := range tasks {
		v, err := b.Scalar(model.TaskLossOutput(task.Name))
		if err != nil {
			return err
		}
		p.losses[i] = float64(v)
	}
	total, err := b.Scalar(model.LossOutput)
	if err != nil {
		return err
	}
	p.losses[len(tasks)] = float64(total)
	start := time.Now()
	if err := p.sumGradient(b); err != nil {
		return err
	}
	p.reduceTime += time.Since(start)
	p.steps++
	if err := p.watch.run("summing the losses", func() error { return p.group.SumFloat64(p.losses) }); err != nil {
		return err
	}
	return p.update.Bind.Run()
}

// sumGradient sums the gradient graph's output over the ranks into the
// update graph's input: with NCCL on the device, else through the host.
func (p *parallel) sumGradient(grad run.Tensors) error {
	if p.comm != nil {
		src := grad.(*runtime.DeviceBinding)
		dst := p.update.Bind.(*runtime.DeviceBinding)
		ptr, n, err := src.DevicePointer(optim.GradOutput)
		if err != nil {
			return err
		}
		if err := p.watch.run("summing the gradients with NCCL", func() error { return p.comm.SumFloat32(ptr, n) }); err != nil {
			return err
		}
		return dst.CopyFrom(optim.GradInput, src, optim.GradOutput)
	}
	if err := grad.Read(optim.GradOutput, p.grad); err != nil {
		return err
	}
	if err := p.watch.run("summing the gradients", func() error { return p.group.SumFloat32(p.grad) }); err != nil {
		return err
	}
	return p.update.Bind.Write(optim.GradInput, p.grad)
}

// errStop reports that the ranks agreed to stop before a step.
var errStop = fmt.Errorf("train: a rank asked to stop")

// fingerprint is what every rank of a job must agree on before training.
type fingerprint struct {
	Config string            `json:"config"` // SHA-256 of the resolved configuration
	Data   map[string]string `json:"data"`   // file → size and SHA-256 of its first and last MiB
	Binary string            `json:"binary"` // SHA-256 of the running executable
	Ranks  int               `json:"ranks"`
}

// fingerprintOf describes this rank's configuration, data and program.
func fingerprintOf(c *config.Config, resolved []byte, ranks int) (fingerprint, error) {
	sum := sha256.Sum256(resolved)
	fp := fingerprint{Config: hex.EncodeToString(sum[:]), Data: map[string]string{}, Ranks: ranks}
	files := append(append(append([]string(nil), c.Data.Train...), c.Data.Val...), c.Resolve(c.Data.NormDict))
	if c.Data.ClassDict != "" {
		files = append(files, c.Resolve(c.Data.ClassDict))
	}
	for _, f := range files {
		h, err := sampleHash(f)
		if err != nil {
			return fp, err
		}
		fp.Data[f] = h
	}
	exe, err := os.Executable()
	if err != nil {
		return fp, fmt.Errorf("train: %w", err)
	}
	if fp.Binary, err = sampleHash(exe); err != nil {
		return fp, err
	}
	return fp, nil
}

// sampleHash is a file's size and the SHA-256 of its first and last MiB,
// enough to tell copies of different data apart without reading them all.
func sampleHash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("train: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("train: %w", err)
	}
	h := sha256.New()
	const mib = 1 << 20
	if _, err := io.Copy(h, io.LimitReader(f, mib)); err != nil {
		return "", fmt.Errorf("train: %s: %w", path, err)
	}
	if st.Size() > 2*mib {
		if _, err := f.Seek(-mib, io.SeekEnd); err != nil {
			return "", fmt.Errorf("train: %s: %w", path, err)
		}
		if _, err := io.Copy(h, f); err != nil {
			return "", fmt.Errorf("train: %s: %w", path, err)
		}
	}
	return fmt.Sprintf("%d bytes, %s", st.Size(), hex.EncodeToString(h.Sum(nil))), nil
}

// checkFingerprints stops every rank of a job whose ranks run different
// configurations, data or programs, naming the difference.
func checkFingerprints(group Group, mine fingerprint) error {
	b, err := json.Marshal(mine)
	if err != nil {
		return err
	}
	all, err := group.Gather(b)
	if err != nil {
		return fmt.Errorf("train: comparing the ranks' configurations: %w", err)
	}
	var diffs []string
	var ref fingerprint
	if err := json.Unmarshal(all[0], &ref); err != nil {
		return fmt.Errorf("train: rank 0's fingerprint: %w", err)
	}
	for r := 1; r < len(all); r++ {
		var fp fingerprint
		if err := json.Unmarshal(all[r], &fp); err != nil {
			return fmt.Errorf("train: rank %d's fingerprint: %w", r, err)
		}
		if fp.Config != ref.Config {
			diffs = append(diffs, fmt.Sprintf("rank %d's resolved configuration differs from rank 0's", r))
		}
		if fp.Binary != ref.Binary {
			diffs = append(diffs, fmt.Sprintf("rank %d runs another salt-ort executable than rank 0 (%s vs %s)", r, fp.Binary, ref.Binary))
		}
		var names []string
		for f := range ref.Data {
			names = append(names, f)
		}
		for f := range fp.Data {
			if _, ok := ref.Data[f]; !ok {
				names = append(names, f)
			}
		}
		sort.Strings(names)
		for _, f := range names {
			if fp.Data[f] != ref.Data[f] {
				diffs = append(diffs, fmt.Sprintf("%s differs between rank 0 (%s) and rank %d (%s)", f, orNone(ref.Data[f]), r, orNone(fp.Data[f])))
			}
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("train: the ranks of this job disagree; every rank must run the same salt-ort on the same configuration and files:\n  %s", strings.Join(diffs, "\n  "))
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "not read"
	}
	return s
}

// syncState makes every rank start from rank 0's state (fresh or resumed
// from its checkpoint), so that the other ranks need not read the run
// directory at all.
func (t *trainer) syncState() error {
	g := t.par.group
	var buf bytes.Buffer
	if g.Rank() == 0 {
		f, err := encodeState(&t.state, t.layout.Params, t.layout.Slots, t.spec.Name, t.cfg.Training.LossWeighting, t.resolved)
		if err != nil {
			return err
		}
		if err := checkpoint.Encode(&buf, f); err != nil {
			return err
		}
	}
	size := []float64{float64(buf.Len())}
	if err := t.par.watch.run("sharing rank 0's state", func() error { return g.SumFloat64(size) }); err != nil {
		return err
	}
	data := make([]byte, int(size[0]))
	copy(data, buf.Bytes())
	if err := t.par.watch.run("sharing rank 0's state", func() error { return g.Broadcast(data, 0) }); err != nil {
		return err
	}
	if g.Rank() == 0 {
		return nil
	}
	f, err := checkpoint.Decode(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return fmt.Errorf("train: rank 0's state: %w", err)
	}
	st, err := decodeState("rank 0's state", f, t.layout.Params, t.layout.Size, t.layout.Slots, t.cfg.Training.LossWeighting)
	if err != nil {
		return err
	}
	if err := t.weighting.SetState(st.weighting); err != nil {
		return err
	}
	t.state = *st
	return nil
}

// reduceResult sums a validation result over the ranks, each of which
// evaluated its share of the batches: the losses weighted by jets, the
// jets, and the AUC's scores (gathered).
func (t *trainer) reduceResult(res *run.Result, auc *run.AUCScores) error {
	p := t.par
	tasks := t.spec.Tasks
	sums := make([]float64, len(tasks)+1)
	for i, task := range tasks {
		sums[i] = res.Loss[task.Name]
	}
	sums[len(tasks)] = float64(res.Jets)
	if err := p.watch.run("summing the validation losses", func() error { return p.group.SumFloat64(sums) }); err != nil {
		return err
	}
	for i, task := range tasks {
		res.Loss[task.Name] = sums[i]
	}
	res.Jets = int(sums[len(tasks)])
	if !auc.Applicable() {
		return nil
	}
	var buf bytes.Buffer
	if err := auc.Encode(&buf); err != nil {
		return err
	}
	var all [][]byte
	if err := p.watch.run("gathering the validation scores", func() error {
		var err error
		all, err = p.group.Gather(buf.Bytes())
		return err
	}); err != nil {
		return err
	}
	auc.Reset()
	for r, b := range all {
		if err := auc.DecodeAppend(bytes.NewReader(b)); err != nil {
			return fmt.Errorf("train: rank %d's validation scores: %w", r, err)
		}
	}
	return nil
}

package evaluate

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/flavour"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/loader"
	"github.com/salt-ort/salt-ort/metrics"
	"github.com/salt-ort/salt-ort/train"
)

// DefaultKeep lists the jets fields a prediction file keeps by default,
// those of them the test file has: the jet kinematics (pt_btagJes and
// eta_btagJes stand in for pt and eta when those are absent), the truth
// labels and the event number. The label and regression-target fields of
// the model's jet tasks are kept too.
func DefaultKeep() []string {
	return []string{"pt", "eta", "HadronConeExclTruthLabelID", "flavour_label", "eventNumber"}
}

// fallbacks are the fields kept in place of default fields a file lacks.
var fallbacks = map[string]string{"pt": "pt_btagJes", "eta": "eta_btagJes"}

// ValidField is the bool field of a prediction file's constituent
// dataset that marks real constituents (false for padding).
const ValidField = "valid"

// ClassField is the prediction-file field of class c of a classification
// task: "<model>_<short name>" (GN2_pb for class b or bjets, GN2_ppileup;
// see flavour.Short) for the first task of its kind, as Salt names them,
// and "<model>_<task>_<short name>" for later ones.
func ClassField(spec *model.Spec, task model.Task, first bool, class string) string {
	if first {
		return spec.Name + "_" + flavour.Short(class)
	}
	return spec.Name + "_" + task.Name + "_" + flavour.Short(class)
}

// VertexField is the prediction-file field of a vertexing task's vertex
// index: "<model>_VertexIndex" for the first one, then
// "<model>_<task>_VertexIndex".
func VertexField(spec *model.Spec, task model.Task, first bool) string {
	if first {
		return spec.Name + "_VertexIndex"
	}
	return spec.Name + "_" + task.Name + "_VertexIndex"
}

// RegressionField is the prediction-file field of one regression target,
// "<model>_<target>", and of its predicted standard deviation for Gaussian
// regression, "<model>_<target>_stddev", as Salt names them.
func RegressionField(spec *model.Spec, target string, stddev bool) string {
	if stddev {
		return spec.Name + "_" + target + "_stddev"
	}
	return spec.Name + "_" + target
}

// taskOut is where one task's predictions go: fields of the jets table
// or of a constituent table.
type taskOut struct {
	task   model.Task
	table  *outTable
	fields []int // classes, vertex index, or targets (then stddevs)
	first  bool  // the first jet classification task: its scores are collected
}

// outTable is one dataset of the prediction file being filled.
type outTable struct {
	name   string
	in     *loader.FieldTable
	layout *loader.RowLayout
	reader *loader.FieldReader
	table  *loader.Table // nil when not writing
	buf    []byte
	maxLen int // constituents per jet; 1 for the jets table
	valid  int // index of the valid field, -1 for the jets table
	// width is the entries per jet the reader reads: maxLen, or for a
	// dataset with selections every entry of the file (the batch says
	// which entry each slot holds); span is scratch for them.
	width int
	span  []byte
}

func (t *outTable) close() {
	if t.reader != nil {
		t.reader.Close()
	}
	if t.in != nil {
		t.in.Close()
	}
}

// collection is what one pass over a test file gathers for the
// performance summary and the plots.
type collection struct {
	jets        int
	unlabelled  []string // tasks without truth in the file: "task (dataset.field)"
	loss        map[string]float64
	flavour     *jetScores
	origins     []*classCounts
	vertexing   []*pairCounts
	regressions []*residuals
	objects     *ObjectPerformance // nil without truth objects
}

// jetScores are the class probabilities and truth labels of every jet for
// the first jet classification task.
type jetScores struct {
	task    string
	classes []string
	probs   []float32 // [n, len(classes)]
	labels  []int32   // class index, -1 unknown
}

// classCounts counts, per true class, the valid constituents and those
// whose most probable class is the true one.
type classCounts struct {
	task           string
	classes        []string
	total, correct []int64
}

// pairCounts accumulates a vertexing task's pair counts.
type pairCounts struct {
	task   string
	counts metrics.PairCounts
}

// residuals accumulates pred − truth (and (pred − truth)/truth where truth
// ≠ 0) of one regression target with Welford's algorithm.
type residuals struct {
	task, target string
	abs, rel     welford
}

// welford is a running mean and variance.
type welford struct {
	n        int
	mean, m2 float64
}

func (w *welford) add(x float64) {
	w.n++
	d := x - w.mean
	w.mean += d / float64(w.n)
	w.m2 += d * (x - w.mean)
}

func (w *welford) std() float64 {
	if w.n == 0 {
		return math.NaN()
	}
	return math.Sqrt(w.m2 / float64(w.n))
}

// predictor runs one test file through a run's evaluation graph and
// writes the prediction file (when out is set) while collecting scores.
type predictor struct {
	run  *train.RunInfo
	spec *model.Spec
	file string
	// unlabelled are the tasks whose truth the file lacks; missing says
	// which field each lacks.
	unlabelled map[string]bool
	missing    []string
	writer     *loader.Writer
	jets       *outTable
	groups     map[string]*outTable
	outs       []taskOut
	objects    *objectOut // a mask decoder's objects; nil without one
	coll       *collection
	scratch    struct {
		probs  []float64
		labels []int
		mask   []bool
		pred   []bool
		truth  []bool
		pairs  []float32
		idx    []int
	}
}

// predictOptions configure one pass over a test file.
type predictOptions struct {
	run        *train.RunInfo
	checkpoint string
	file       string
	out        string   // prediction file to write; "" writes none
	keep       []string // jets fields to keep; nil: DefaultKeep
	limit      int      // the first jets only (0: all)
	opts       *Options
}

// predict evaluates the run on one file, writing the prediction file when
// asked, and returns what it collected.
func predict(ctx context.Context, po predictOptions) (*collection, error) {
	p, err := newPredictor(po)
	if err != nil {
		return nil, err
	}
	defer p.close()
	tmp := ""
	jets := 0
	opened := func(n int) error {
		jets = n
		if po.out == "" {
			return nil
		}
		tmp = po.out + ".tmp"
		var err error
		if p.writer, err = loader.Create(tmp); err != nil {
			return err
		}
		for _, t := range p.tables() {
			dims := []int{n}
			if t.valid >= 0 {
				dims = append(dims, t.maxLen)
			}
			if t.table, err = p.writer.CreateTable(t.name, t.layout, dims, loader.TableOptions{ChunkRows: min(max(n, 1), 1024), Deflate: 4}); err != nil {
				return err
			}
		}
		return p.objects.create(p.writer, n)
	}
	var unlabelled []string
	for task := range p.unlabelled {
		unlabelled = append(unlabelled, task)
	}
	slices.Sort(unlabelled)
	res, err := train.Evaluate(ctx, train.EvalOptions{
		RunDir: po.run.Dir, Checkpoint: po.checkpoint, Files: []string{po.file}, Limit: po.limit, Unlabelled: unlabelled,
		Runtime: po.opts.Runtime, Threads: po.opts.Threads, Device: po.opts.Device, Each: p.batch, Opened: opened,
	})
	if p.writer != nil {
		if cerr := p.writer.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}
	if tmp != "" {
		defer os.Remove(tmp)
	}
	if err != nil {
		return nil, err
	}
	if p.coll.jets != jets {
		return nil, fmt.Errorf("evaluate: %s: evaluated %d jets of the %d to evaluate", po.file, p.coll.jets, jets)
	}
	p.coll.loss = res.Loss
	p.collectObjects(res)
	p.coll.unlabelled = p.missing
	if tmp != "" {
		if err := os.Rename(tmp, po.out); err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
	}
	return p.coll, nil
}

// tables returns the output tables: jets first, then constituent groups
// in the model's input order.
func (p *predictor) tables() []*outTable {
	ts := []*outTable{p.jets}
	for _, in := range p.spec.Inputs {
		if t, ok := p.groups[in.Name]; ok {
			ts = append(ts, t)
		}
	}
	return ts
}

func (p *predictor) close() {
	for _, t := range p.tables() {
		if t != nil {
			t.close()
		}
	}
}

// configTask returns the configuration of the named task.
func configTask(cfg *config.Config, name string) config.Task {
	for _, t := range cfg.Model.Tasks {
		if t.Name == name {
			return t
		}
	}
	return config.Task{}
}

// newPredictor opens the test file's datasets and lays out the prediction
// file's tables.
func newPredictor(po predictOptions) (*predictor, error) {
	spec := po.run.Spec
	cfg := po.run.Config
	p := &predictor{run: po.run, spec: &spec, file: po.file, groups: map[string]*outTable{}, coll: &collection{}, unlabelled: map[string]bool{}}
	ok := false
	defer func() {
		if !ok {
			p.close()
		}
	}()

	// Jets: the kept fields, then the jet-level predictions.
	jetsIn, err := loader.OpenFieldTable(po.file, cfg.Data.JetDataset)
	if err != nil {
		return nil, err
	}
	p.jets = &outTable{name: cfg.Data.JetDataset, in: jetsIn, maxLen: 1, valid: -1, width: 1}
	if jetsIn.Rank() != 1 {
		return nil, fmt.Errorf("evaluate: %s: dataset %q is %d-D, want 1-D (one row per jet)", po.file, cfg.Data.JetDataset, jetsIn.Rank())
	}
	if err := p.findUnlabelled(cfg, spec, jetsIn); err != nil {
		return nil, err
	}
	keep, err := keptFields(jetsIn, po.keep, jetLabelFields(cfg, spec))
	if err != nil {
		return nil, err
	}
	var jetFields []loader.Field
	for _, f := range keep {
		ft, _ := jetsIn.Type(f)
		jetFields = append(jetFields, loader.Field{Name: f, Type: ft})
	}
	nKeep := len(jetFields)
	if p.objects, err = newObjectOut(cfg, &spec); err != nil {
		return nil, err
	}
	type pending struct {
		out   taskOut
		names []string
	}
	var jetTasks []pending
	groupTasks := map[string][]pending{}
	firstJet, firstClass, firstVertex := true, map[string]bool{}, map[string]bool{}
	for _, t := range spec.Tasks {
		var names []string
		switch t.Kind {
		case model.JetClassification:
			for _, c := range t.Classes {
				names = append(names, ClassField(&spec, t, firstJet, c))
			}
			jetTasks = append(jetTasks, pending{taskOut{task: t, first: firstJet}, names})
			firstJet = false
		case model.JetRegression, model.JetGaussianRegression:
			for _, target := range t.Targets {
				names = append(names, RegressionField(&spec, target, false))
			}
			if t.Kind.Gaussian() {
				for _, target := range t.Targets {
					names = append(names, RegressionField(&spec, target, true))
				}
			}
			jetTasks = append(jetTasks, pending{taskOut{task: t}, names})
		case model.ConstituentClassification:
			first := !firstClass[t.Input]
			firstClass[t.Input] = true
			for _, c := range t.Classes {
				names = append(names, ClassField(&spec, t, first, c))
			}
			groupTasks[t.Input] = append(groupTasks[t.Input], pending{taskOut{task: t}, names})
		case model.Vertexing:
			first := !firstVertex[t.Input]
			firstVertex[t.Input] = true
			names = []string{VertexField(&spec, t, first)}
			groupTasks[t.Input] = append(groupTasks[t.Input], pending{taskOut{task: t}, names})
		case model.ConstituentRegression, model.ConstituentGaussianRegression:
			for _, target := range t.Targets {
				names = append(names, RegressionField(&spec, target, false))
			}
			if t.Kind.Gaussian() {
				for _, target := range t.Targets {
					names = append(names, RegressionField(&spec, target, true))
				}
			}
			groupTasks[t.Input] = append(groupTasks[t.Input], pending{taskOut{task: t}, names})
		}
	}
	for _, pt := range jetTasks {
		for _, n := range pt.names {
			jetFields = append(jetFields, loader.Field{Name: n, Type: loader.Float32})
		}
	}
	if p.jets.layout, err = loader.NewRowLayout(jetFields...); err != nil {
		return nil, fmt.Errorf("evaluate: %s: prediction fields of dataset %q: %w", po.file, cfg.Data.JetDataset, err)
	}
	if p.jets.reader, err = jetsIn.NewFieldReader(p.jets.layout, seq(0, nKeep), 1); err != nil {
		return nil, err
	}
	next := nKeep
	for _, pt := range jetTasks {
		pt.out.table = p.jets
		pt.out.fields = seq(next, next+len(pt.names))
		next += len(pt.names)
		p.outs = append(p.outs, pt.out)
	}

	// Constituent groups with constituent-level tasks: their truth labels,
	// the predictions and valid.
	for _, in := range spec.Inputs {
		tasks, ok := groupTasks[in.Name]
		if !ok && !p.objects.wantsGroup(in.Name) {
			continue
		}
		gin, err := loader.OpenFieldTable(po.file, in.Name)
		if err != nil {
			return nil, err
		}
		t := &outTable{name: in.Name, in: gin, maxLen: in.MaxLen, width: in.MaxLen}
		p.groups[in.Name] = t
		if gin.Rank() != 2 {
			return nil, fmt.Errorf("evaluate: %s: dataset %q is %d-D, want 2-D (jets × constituents)", po.file, in.Name, gin.Rank())
		}
		if gin.Rows() != jetsIn.Rows() {
			return nil, fmt.Errorf("evaluate: %s: dataset %q has %d rows, dataset %q %d", po.file, in.Name, gin.Rows(), cfg.Data.JetDataset, jetsIn.Rows())
		}
		var fields []loader.Field
		for _, task := range tasks {
			ct := configTask(cfg, task.out.task.Name)
			for _, f := range append([]string{ct.Label, ct.OriginLabel}, task.out.task.Targets...) {
				if f == "" || !gin.Has(f) || slices.ContainsFunc(fields, func(x loader.Field) bool { return x.Name == f }) {
					continue
				}
				ft, err := gin.Type(f)
				if err != nil {
					return nil, err
				}
				fields = append(fields, loader.Field{Name: f, Type: ft})
			}
		}
		nKeep := len(fields)
		for _, task := range tasks {
			ft := loader.Float32
			if task.out.task.Kind == model.Vertexing {
				ft = loader.Int8
			}
			for _, n := range task.names {
				fields = append(fields, loader.Field{Name: n, Type: ft})
			}
		}
		fields = p.objects.groupFields(&spec, t, fields)
		t.valid = len(fields)
		fields = append(fields, loader.Field{Name: ValidField, Type: loader.Bool})
		if t.layout, err = loader.NewRowLayout(fields...); err != nil {
			return nil, fmt.Errorf("evaluate: %s: prediction fields of dataset %q: %w", po.file, in.Name, err)
		}
		if len(cfg.Data.Selections[in.Name]) > 0 {
			// The batch packs the selected constituents: read every entry
			// and take the ones each slot holds.
			t.width = gin.Dims()[1]
		}
		if t.reader, err = gin.NewFieldReader(t.layout, seq(0, nKeep), t.width); err != nil {
			return nil, err
		}
		next := nKeep
		for _, pt := range tasks {
			pt.out.table = t
			pt.out.fields = seq(next, next+len(pt.names))
			next += len(pt.names)
			p.outs = append(p.outs, pt.out)
		}
	}
	for _, t := range p.tables() {
		t.buf = make([]byte, cfg.Data.BatchSize*t.maxLen*t.layout.Size)
	}
	for _, o := range p.outs {
		if p.unlabelled[o.task.Name] {
			continue
		}
		switch o.task.Kind {
		case model.JetClassification:
			// A binary task's one probability is no flavour tagger's.
			if o.first && !o.task.Binary() {
				p.coll.flavour = &jetScores{task: o.task.Name, classes: o.task.Classes}
			}
		case model.ConstituentClassification:
			classes := metricClasses(o.task)
			n := len(classes)
			p.coll.origins = append(p.coll.origins, &classCounts{task: o.task.Name, classes: classes, total: make([]int64, n), correct: make([]int64, n)})
		case model.Vertexing:
			p.coll.vertexing = append(p.coll.vertexing, &pairCounts{task: o.task.Name})
		case model.JetRegression, model.JetGaussianRegression, model.ConstituentRegression, model.ConstituentGaussianRegression:
			for _, target := range o.task.Targets {
				p.coll.regressions = append(p.coll.regressions, &residuals{task: o.task.Name, target: target})
			}
		}
	}
	ok = true
	return p, nil
}

// findUnlabelled finds the tasks whose truth the test file lacks (an
// evaluation file that was never labelled): they get predictions only.
func (p *predictor) findUnlabelled(cfg *config.Config, spec model.Spec, jetsIn *loader.FieldTable) error {
	tables := map[string]*loader.FieldTable{cfg.Data.JetDataset: jetsIn}
	defer func() {
		for name, t := range tables {
			if name != cfg.Data.JetDataset {
				t.Close()
			}
		}
	}()
	for _, task := range spec.Tasks {
		ct := configTask(cfg, task.Name)
		ds := cfg.Data.JetDataset
		var fields []string
		switch task.Kind {
		case model.JetClassification, model.ConstituentClassification:
			l, err := cfg.TaskLabel(ct)
			if err != nil {
				return err
			}
			ds, fields = l.Dataset, config.LabelFields(l)
		case model.Vertexing:
			ds, fields = task.Input, []string{ct.Label}
			if ct.OriginLabel != "" {
				fields = append(fields, ct.OriginLabel)
			}
		case model.JetRegression, model.JetGaussianRegression:
			fields = task.Targets
		case model.ConstituentRegression, model.ConstituentGaussianRegression:
			ds, fields = task.Input, task.Targets
		}
		t, ok := tables[ds]
		if !ok {
			var err error
			if t, err = loader.OpenFieldTable(p.file, ds); err != nil {
				return err
			}
			tables[ds] = t
		}
		for _, f := range fields {
			if !t.Has(f) {
				p.unlabelled[task.Name] = true
				p.missing = append(p.missing, fmt.Sprintf("%s (%s.%s)", task.Name, ds, f))
				break
			}
		}
	}
	p.findObjectTruth(cfg, spec)
	return nil
}

// findObjectTruth marks a mask decoder's truth objects unlabelled where
// the file has no dataset of them: the objects are then evaluated
// against empty truth slots rather than the file refused.
func (p *predictor) findObjectTruth(cfg *config.Config, spec model.Spec) {
	mf := cfg.Data.MFConfig
	if spec.Objects == nil || mf == nil {
		return
	}
	t, err := loader.OpenFieldTable(p.file, cfg.Data.DatasetOf(mf.Object.Name))
	if err != nil {
		p.unlabelled[train.ObjectTruth] = true
		return
	}
	t.Close()
}

// jetLabelFields lists the jets fields the model's jet tasks read as truth:
// classification labels and regression targets.
func jetLabelFields(cfg *config.Config, spec model.Spec) []string {
	var fs []string
	for _, t := range spec.Tasks {
		switch t.Kind {
		case model.JetClassification:
			fs = append(fs, configTask(cfg, t.Name).Label)
		case model.JetRegression, model.JetGaussianRegression:
			fs = append(fs, t.Targets...)
		}
	}
	return fs
}

// keptFields resolves the jets fields to keep: explicit ones must all
// exist; the defaults (and the model's label fields) are kept where the
// file has them.
func keptFields(in *loader.FieldTable, explicit, labels []string) ([]string, error) {
	var out []string
	add := func(f string) {
		if f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	if explicit != nil {
		for _, f := range explicit {
			if _, err := in.Type(f); err != nil {
				return nil, err
			}
			add(f)
		}
		return out, nil
	}
	for _, f := range append(DefaultKeep(), labels...) {
		switch {
		case in.Has(f):
			add(f)
		case in.Has(fallbacks[f]):
			add(fallbacks[f])
		}
	}
	return out, nil
}

// seq returns from, from+1, ..., to-1.
func seq(from, to int) []int {
	s := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// batch handles one evaluated batch: it reads the kept fields of its
// jets, adds the predictions, writes the rows and collects the scores.
func (p *predictor) batch(b *loader.Batch, preds map[string][]float32) error {
	bs := len(b.JetMask)
	start, k := b.Index*bs, b.N
	for _, t := range p.tables() {
		buf := t.buf[:k*t.maxLen*t.layout.Size]
		clear(buf)
		if err := t.read(b, k, buf); err != nil {
			return err
		}
		if t.valid >= 0 {
			valid := b.Inputs[t.name].Valid
			for r := range k * t.maxLen {
				if valid[r] {
					t.layout.Put(buf[r*t.layout.Size:], t.valid, 1)
				}
			}
		}
	}
	for _, o := range p.outs {
		var err error
		switch o.task.Kind {
		case model.JetClassification:
			err = p.jetClasses(o, b, preds, k)
		case model.ConstituentClassification:
			err = p.constituentClasses(o, b, preds, k)
		case model.Vertexing:
			err = p.vertices(o, b, preds, k)
		case model.JetRegression, model.JetGaussianRegression, model.ConstituentRegression, model.ConstituentGaussianRegression:
			err = p.regression(o, b, preds, k)
		}
		if err != nil {
			return fmt.Errorf("evaluate: %s: task %s: %w", p.file, o.task.Name, err)
		}
	}
	if err := p.objects.batch(*p.spec, b, preds, k, start); err != nil {
		return fmt.Errorf("evaluate: %s: the objects (model.mask_decoder): %w", p.file, err)
	}
	if p.writer != nil {
		for _, t := range p.tables() {
			if err := t.table.WriteRows(start, t.buf[:k*t.maxLen*t.layout.Size]); err != nil {
				return err
			}
		}
	}
	p.coll.jets += k
	return nil
}

// read fills buf with the kept fields of the batch's k jets: from the
// file rows the batch holds (jet selections skip rows) and, for a dataset
// with selections, from the file entry each slot holds.
func (t *outTable) read(b *loader.Batch, k int, buf []byte) error {
	rows := b.Rows[:k]
	first := rows[0]
	consecutive := rows[k-1]-first == k-1
	if consecutive && t.width == t.maxLen {
		return t.reader.Read(first, k, buf)
	}
	size := t.layout.Size
	perJet := t.width * size
	span := rows[k-1] - first + 1
	if cap(t.span) < span*perJet {
		t.span = make([]byte, span*perJet)
	}
	scratch := t.span[:span*perJet]
	clear(scratch)
	if err := t.reader.Read(first, span, scratch); err != nil {
		return err
	}
	var src *loader.Tensor
	if t.width != t.maxLen {
		src = b.Inputs[t.name]
	}
	for j, r := range rows {
		jet := scratch[(r-first)*perJet:]
		out := buf[j*t.maxLen*size:]
		if src == nil {
			copy(out[:t.maxLen*size], jet[:t.maxLen*size])
			continue
		}
		for slot := range t.maxLen {
			if e := src.SourceOf(j, slot); e >= 0 {
				copy(out[slot*size:(slot+1)*size], jet[e*size:(e+1)*size])
			}
		}
	}
	return nil
}

// output returns a prediction output of the evaluation graph.
func output(preds map[string][]float32, name string, want int) ([]float32, error) {
	v, ok := preds[name]
	if !ok {
		return nil, fmt.Errorf("the evaluation graph has no output %q", name)
	}
	if len(v) < want {
		return nil, fmt.Errorf("output %q has %d values, want at least %d", name, len(v), want)
	}
	return v, nil
}

func (p *predictor) jetClasses(o taskOut, b *loader.Batch, preds map[string][]float32, k int) error {
	nc := len(o.task.Classes)
	probs, err := output(preds, model.PredictionOutput(o.task.Name), k*nc)
	if err != nil {
		return err
	}
	l := o.table.layout
	for j := range k {
		row := o.table.buf[j*l.Size:]
		for c, f := range o.fields {
			l.Put(row, f, float64(probs[j*nc+c]))
		}
	}
	if o.first && !p.unlabelled[o.task.Name] && p.coll.flavour != nil {
		s := p.coll.flavour
		s.probs = append(s.probs, probs[:k*nc]...)
		for _, v := range b.Labels[o.task.Name][:k] {
			s.labels = append(s.labels, int32(max(v, -1)))
		}
	}
	return nil
}

// metricClasses are the classes a classification's accuracy is counted
// over: its classes, or for a binary task the two values of its label,
// "not <class>" (0) and the class (1).
func metricClasses(t model.Task) []string {
	if t.Binary() {
		return []string{"not " + t.Classes[0], t.Classes[0]}
	}
	return t.Classes
}

func (p *predictor) constituentClasses(o taskOut, b *loader.Batch, preds map[string][]float32, k int) error {
	t := o.table
	nc, n := len(o.task.Classes), k*t.maxLen
	probs, err := output(preds, model.PredictionOutput(o.task.Name), n*nc)
	if err != nil {
		return err
	}
	valid := b.Inputs[t.name].Valid[:n]
	l := t.layout
	for r := range n {
		if !valid[r] {
			continue
		}
		row := t.buf[r*l.Size:]
		for c, f := range o.fields {
			l.Put(row, f, float64(probs[r*nc+c]))
		}
	}
	if p.unlabelled[o.task.Name] {
		return nil
	}
	labels := b.Labels[o.task.Name][:n]
	// Per-class accuracy over valid constituents with a known label:
	// ClassAccuracy gives correct/total per class, and total·accuracy
	// recovers the integer count of correct ones.
	s := &p.scratch
	s.probs, s.labels, s.mask = s.probs[:0], s.labels[:0], s.mask[:0]
	for _, x := range probs[:n*nc] {
		if o.task.Binary() {
			// The label's two classes: 0, not the class, and 1, the class.
			s.probs = append(s.probs, 1-float64(x))
		}
		s.probs = append(s.probs, float64(x))
	}
	nc = len(metricClasses(o.task))
	var cc *classCounts
	for _, c := range p.coll.origins {
		if c.task == o.task.Name {
			cc = c
		}
	}
	total := make([]int64, nc)
	for r, v := range labels {
		ok := valid[r] && v >= 0
		s.labels = append(s.labels, int(v))
		s.mask = append(s.mask, ok)
		if ok && v < int64(nc) {
			total[v]++
		}
	}
	acc, err := metrics.ClassAccuracy(s.probs, nc, s.labels, s.mask)
	if err != nil {
		return err
	}
	for c := range nc {
		if total[c] > 0 {
			cc.total[c] += total[c]
			cc.correct[c] += int64(math.Round(acc[c] * float64(total[c])))
		}
	}
	return nil
}

func (p *predictor) vertices(o taskOut, b *loader.Batch, preds map[string][]float32, k int) error {
	t := o.table
	T := t.maxLen
	pairs, err := output(preds, model.PredictionOutput(o.task.Name), k*T*T)
	if err != nil {
		return err
	}
	valid, labels := b.Inputs[t.name].Valid, b.Labels[o.task.Name]
	var pc *pairCounts
	for _, c := range p.coll.vertexing {
		if c.task == o.task.Name {
			pc = c
		}
	}
	l, f := t.layout, o.fields[0]
	s := &p.scratch
	for j := range k {
		s.idx = s.idx[:0]
		for i := range T {
			if valid[j*T+i] {
				s.idx = append(s.idx, i)
			} else {
				l.Put(t.buf[(j*T+i)*l.Size:], f, -1)
			}
		}
		n := len(s.idx)
		jet := pairs[j*T*T : (j+1)*T*T]
		var groups []int8
		if n == 0 || s.idx[n-1] == n-1 { // the valid constituents come first
			groups = model.GroupVertices(jet, n, T)
		} else {
			s.pairs = s.pairs[:0]
			for _, a := range s.idx {
				for _, c := range s.idx {
					s.pairs = append(s.pairs, jet[a*T+c])
				}
			}
			groups = model.GroupVertices(s.pairs, n, n)
		}
		for a, ia := range s.idx {
			l.Put(t.buf[(j*T+ia)*l.Size:], f, float64(groups[a]))
		}
		if pc == nil { // a file without vertex truth: the indices only
			continue
		}
		s.pred, s.truth = resize(s.pred, n*n), resize(s.truth, n*n)
		for a, ia := range s.idx {
			va := labels[j*T+ia]
			for c, ic := range s.idx {
				s.pred[a*n+c] = groups[a] == groups[c]
				s.truth[a*n+c] = va >= 0 && va == labels[j*T+ic]
			}
		}
		counts, err := metrics.CountPairs(s.pred, s.truth, n, nil)
		if err != nil {
			return err
		}
		pc.counts = pc.counts.Add(counts)
	}
	return nil
}

// resize returns s with length n, reallocating when too small.
func resize(s []bool, n int) []bool {
	if cap(s) < n {
		return make([]bool, n)
	}
	return s[:n]
}

func (p *predictor) regression(o taskOut, b *loader.Batch, preds map[string][]float32, k int) error {
	nt := len(o.task.Targets)
	// Entries: one per jet, or one per constituent slot (valid ones only).
	per := 1
	var valid []bool
	if o.task.Kind.PerConstituent() {
		per = o.table.maxLen
		valid = b.Inputs[o.task.Input].Valid
	}
	mean, err := output(preds, model.PredictionOutput(o.task.Name), k*per*nt)
	if err != nil {
		return err
	}
	var variance []float32
	if o.task.Kind.Gaussian() {
		if variance, err = output(preds, model.VarianceOutput(o.task.Name), k*per*nt); err != nil {
			return err
		}
	}
	l := o.table.layout
	for ti, target := range o.task.Targets {
		var acc *residuals
		for _, r := range p.coll.regressions {
			if r.task == o.task.Name && r.target == target {
				acc = r
			}
		}
		truth := b.Targets[o.task.Name+"/"+target]
		for e := range k * per {
			if valid != nil && !valid[e] {
				continue
			}
			v := float64(mean[e*nt+ti])
			row := o.table.buf[e*l.Size:]
			l.Put(row, o.fields[ti], v)
			if variance != nil {
				l.Put(row, o.fields[nt+ti], math.Sqrt(float64(variance[e*nt+ti])))
			}
			if truth == nil || acc == nil {
				continue
			}
			y := float64(truth[e])
			if math.IsNaN(y) { // a missing target
				continue
			}
			acc.abs.add(v - y)
			if y != 0 {
				acc.rel.add((v - y) / y)
			}
		}
	}
	return nil
}

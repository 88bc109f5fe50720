package loader

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"gonum.org/v1/hdf5"

	"github.com/salt-ort/salt-ort/internal/nearest"
)

// Dataset is one opened split: its files validated, ready to stream epochs
// of batches. Its methods are safe for concurrent use; several epochs may
// stream at once.
type Dataset struct {
	cfg        Config
	files      []*srcFile
	dss        []dsMeta
	groups     []groupMeta
	labels     []labelMeta
	weightDS   int // index into dss, -1 without a weight field
	total      int
	numBatches int
	fileJets   int // jets in the files
	selected   int // jets passing the jet selections (before Limit)

	free      chan *Batch // released batches for reuse (a free list the GC leaves alone)
	nonFinite atomic.Int64

	mu     sync.Mutex
	closed bool
	active sync.WaitGroup
}

// dsMeta is one dataset name used by the config.
type dsMeta struct {
	name string
	rank int // 1 (jets) or 2 (tracks, hits, ...)
	t    int // output length of the second axis (0 for rank 1)
	// cuts select entries; a rank 2 dataset with cuts packs the entries
	// that pass (pack), counting the valid entries seen and kept.
	cuts       []Cut
	pack       bool
	seen, kept *atomic.Int64
	fileT      int // the longest second dimension among the files
}

type groupMeta struct {
	ds        int
	f, t      int // variables; constituents (1 for rank 1)
	mean, std []float32
}

type labelMeta struct {
	ds int
	t  int // 1 for jet labels
}

// srcFile is one opened input file.
type srcFile struct {
	path       string
	h          *hdf5.File
	rows       int // jets in the file
	start, n   int // global index of its first jet; jets used (after Limit)
	ds         []fileDS
	groupConv  [][]fieldConv
	plans      []rowPlan // per group, built by setNorm
	labelConv  []fieldConv
	ruleConv   [][][]fieldConv // per label, per rule, per cut
	replConv   [][]replConv    // per label, per replacement
	weightConv fieldConv
	cutConv    [][]fieldConv // per dataset: the fields of its cuts
	// sel lists the rows that pass the jet selections (nil: every row).
	sel []int32
}

// row returns the file row of the file's pos-th jet.
func (sf *srcFile) row(pos int) int {
	if sf.sel == nil {
		return pos
	}
	return int(sf.sel[pos])
}

// available is the number of the file's jets that pass the selections.
func (sf *srcFile) available() int {
	if sf.sel == nil {
		return sf.rows
	}
	return len(sf.sel)
}

// replConv reads one replacement of a label: its cut's field and its
// source.
type replConv struct{ cut, src fieldConv }

type fileDS struct {
	h       *hdf5.Dataset
	rowSize int // bytes per compound row
	dims    []int
	fileT   int // second dimension in this file (0 for rank 1)
	tRead   int // entries read per jet: min(fileT, t), 1 for rank 1
	members map[string]h5Member
	valid   fieldConv
}

// chunk cache for chunked (e.g. compressed) inputs: big enough that a chunk
// straddling two read pieces is decompressed once.
const (
	chunkCacheSlots = 12421
	chunkCacheBytes = 64 << 20
)

// Open validates every file of the split up front (files exist and are
// HDF5, every configured dataset and field is present and numeric, 2-D
// datasets carry a valid field, filters are available, the sources of
// virtual datasets are all there, norm entries are usable) and returns a
// Dataset ready to stream batches. Errors name the file, dataset and field
// at fault.
func Open(cfg Config) (*Dataset, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	d := &Dataset{cfg: cfg, weightDS: -1}
	dsIndex := func(name string) int {
		for i, m := range d.dss {
			if m.name == name {
				return i
			}
		}
		d.dss = append(d.dss, dsMeta{name: name})
		return len(d.dss) - 1
	}
	for _, g := range cfg.Groups {
		d.groups = append(d.groups, groupMeta{ds: dsIndex(g.Dataset), f: len(g.Variables)})
	}
	for _, l := range cfg.Labels {
		d.labels = append(d.labels, labelMeta{ds: dsIndex(l.Dataset)})
	}
	if cfg.Weight != "" {
		d.weightDS = dsIndex(cfg.WeightDataset)
	}
	for _, name := range sortedKeys(cfg.Selections) {
		found := false
		for i := range d.dss {
			if d.dss[i].name == name {
				found = true
				d.dss[i].cuts = cfg.Selections[name]
				d.dss[i].seen, d.dss[i].kept = new(atomic.Int64), new(atomic.Int64)
			}
		}
		if !found && len(cfg.Selections[name]) > 0 {
			var names []string
			for _, m := range d.dss {
				names = append(names, m.name)
			}
			return nil, fmt.Errorf("loader: selections on dataset %q, which is not read (the datasets read are %s)", name, strings.Join(names, ", "))
		}
	}
	ok := false
	defer func() {
		if !ok {
			d.closeFiles()
		}
	}()
	for _, path := range cfg.Files {
		sf, err := d.openFile(path)
		if err != nil {
			return nil, err
		}
		d.files = append(d.files, sf)
	}
	if err := d.resolveShapes(); err != nil {
		return nil, err
	}
	if err := d.selectJets(); err != nil {
		return nil, err
	}
	start := 0
	for _, sf := range d.files {
		d.fileJets += sf.rows
		d.selected += sf.available()
		sf.start = start
		sf.n = sf.available()
		if cfg.Limit > 0 {
			sf.n = max(0, min(sf.available(), cfg.Limit-start))
		}
		start += sf.n
	}
	d.total = start
	if d.total == 0 {
		if d.fileJets > 0 {
			return nil, fmt.Errorf("loader: no jet of %s passes the selections (%s)", strings.Join(cfg.Files, ", "), d.jetCuts())
		}
		return nil, fmt.Errorf("loader: no jets in %s: every file is empty", strings.Join(cfg.Files, ", "))
	}
	if err := d.setNorm(); err != nil {
		return nil, err
	}
	b := cfg.BatchSize
	if cfg.Partial == DropPartial {
		d.numBatches = d.total / b
		if d.numBatches == 0 {
			return nil, fmt.Errorf("loader: %d jets make no full batch of %d; use PadPartial or a smaller batch size", d.total, b)
		}
	} else {
		d.numBatches = (d.total + b - 1) / b
	}
	// Enough for every batch that can be in flight in one epoch: the
	// prefetch queue, a shuffle buffer per worker and per pending slot.
	perBuffer := cfg.ShuffleBuffer / cfg.BatchSize
	d.free = make(chan *Batch, cfg.Prefetch+(2*cfg.Workers+1)*perBuffer)
	ok = true
	return d, nil
}

// openFile opens one input file and resolves every configured field in it.
func (d *Dataset) openFile(path string) (*srcFile, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	if err := setupFilters(); err != nil {
		return nil, err
	}
	isH5, err := h5IsHDF5(path)
	if err != nil {
		return nil, fmt.Errorf("loader: %s: %w", path, err)
	}
	if !isH5 {
		return nil, fmt.Errorf("loader: %s: not an HDF5 file", path)
	}
	if err := h5CheckOpen(path); err != nil {
		return nil, err
	}
	h, err := hdf5.OpenFile(path, hdf5.F_ACC_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("loader: %s: %w", path, err)
	}
	sf := &srcFile{path: path, h: h, rows: -1, ds: make([]fileDS, len(d.dss))}
	fail := func(err error) (*srcFile, error) {
		sf.close()
		return nil, err
	}
	rowsFrom := ""
	for i, m := range d.dss {
		fd, err := openFileDS(sf, m.name)
		if err != nil {
			return fail(err)
		}
		sf.ds[i] = *fd
		n := fd.dims[0]
		if sf.rows < 0 {
			sf.rows, rowsFrom = n, m.name
		} else if n != sf.rows {
			return fail(fmt.Errorf("loader: %s: dataset %q has %d rows but dataset %q has %d: they must describe the same jets",
				path, m.name, n, rowsFrom, sf.rows))
		}
		rank := len(fd.dims)
		if d.dss[i].rank == 0 {
			d.dss[i].rank = rank
		} else if d.dss[i].rank != rank {
			return fail(fmt.Errorf("loader: %s: dataset %q is %d-D but %d-D in %s", path, m.name, rank, d.dss[i].rank, d.files[0].path))
		}
		if rank == 2 {
			v, ok := fd.members["valid"]
			if !ok {
				return fail(fmt.Errorf("loader: %s: dataset %q: 2-D dataset has no \"valid\" field to mark real entries", path, m.name))
			}
			conv, err := memberConv(v)
			if err != nil {
				return fail(fmt.Errorf("loader: %s: dataset %q: field \"valid\": %w", path, m.name, err))
			}
			sf.ds[i].valid = conv
		}
		var cuts []fieldConv
		for _, c := range m.cuts {
			conv, err := fd.field(c.Field)
			if err != nil {
				return fail(fieldError(sf, fd, m.name, "selection", "", c.String(), c.Field, err))
			}
			cuts = append(cuts, conv)
		}
		sf.cutConv = append(sf.cutConv, cuts)
	}
	for gi, g := range d.cfg.Groups {
		di := d.groups[gi].ds
		fd := &sf.ds[di]
		var convs []fieldConv
		for _, v := range g.Variables {
			field := g.field(v)
			conv, err := fd.field(field)
			if err != nil {
				return fail(fieldError(sf, fd, g.Dataset, "variable", g.Name, v, field, err))
			}
			convs = append(convs, conv)
		}
		sf.groupConv = append(sf.groupConv, convs)
	}
	for li, l := range d.cfg.Labels {
		fd := &sf.ds[d.labels[li].ds]
		var rules [][]fieldConv
		for _, r := range l.Rules {
			var convs []fieldConv
			for _, c := range r.Cuts {
				conv, err := fd.field(c.Field)
				if err != nil {
					return fail(fieldError(sf, fd, l.Dataset, "label", l.Name, c.String(), c.Field, err))
				}
				convs = append(convs, conv)
			}
			rules = append(rules, convs)
		}
		sf.ruleConv = append(sf.ruleConv, rules)
		var repls []replConv
		for _, r := range l.Replace {
			cut, err := fd.field(r.Cut.Field)
			if err != nil {
				return fail(fieldError(sf, fd, l.Dataset, "label", l.Name, r.Cut.String(), r.Cut.Field, err))
			}
			src, err := fd.field(r.Source)
			if err != nil {
				return fail(fieldError(sf, fd, l.Dataset, "label", l.Name, r.Source, r.Source, err))
			}
			repls = append(repls, replConv{cut: cut, src: src})
		}
		sf.replConv = append(sf.replConv, repls)
		if len(l.Rules) > 0 || l.Field == "" {
			sf.labelConv = append(sf.labelConv, fieldConv{name: l.Field})
			continue
		}
		conv, err := fd.field(l.Field)
		if err != nil {
			return fail(fieldError(sf, fd, l.Dataset, "label", l.Name, l.Field, l.Field, err))
		}
		sf.labelConv = append(sf.labelConv, conv)
	}
	if d.weightDS >= 0 {
		fd := &sf.ds[d.weightDS]
		conv, err := fd.field(d.cfg.Weight)
		if err != nil {
			return fail(fieldError(sf, fd, d.cfg.WeightDataset, "weight field", "", d.cfg.Weight, d.cfg.Weight, err))
		}
		sf.weightConv = conv
	}
	return sf, nil
}

// openFileDS opens and inspects one dataset of a file.
func openFileDS(sf *srcFile, name string) (*fileDS, error) {
	if err := checkName("dataset name", name); err != nil {
		return nil, fmt.Errorf("loader: %s: %w", sf.path, err)
	}
	kind, err := h5ObjectKind(sf.h.ID(), name)
	if err != nil {
		return nil, fmt.Errorf("loader: %s: dataset %q: %w", sf.path, name, err)
	}
	switch kind {
	case objMissing:
		return nil, fmt.Errorf("loader: %s: dataset %q not found (the file has: %s); check the dataset names in the config",
			sf.path, name, strings.Join(h5LinkNames(sf.h.ID()), ", "))
	case objOther:
		return nil, fmt.Errorf("loader: %s: %q is not a dataset", sf.path, name)
	}
	dapl, err := hdf5.NewPropList(hdf5.P_DATASET_ACCESS)
	if err != nil {
		return nil, fmt.Errorf("loader: %s: dataset %q: %w", sf.path, name, err)
	}
	defer dapl.Close()
	if err := dapl.SetChunkCache(chunkCacheSlots, chunkCacheBytes, 1); err != nil {
		return nil, fmt.Errorf("loader: %s: dataset %q: setting the chunk cache: %w", sf.path, name, err)
	}
	h, err := sf.h.OpenDatasetWith(name, dapl)
	if err != nil {
		return nil, fmt.Errorf("loader: %s: dataset %q: cannot open: %w", sf.path, name, err)
	}
	fd := &fileDS{h: h}
	l, err := h5Describe(h.ID())
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("loader: %s: dataset %q: %w", sf.path, name, err)
	}
	wrap := func(format string, a ...any) error {
		h.Close()
		return fmt.Errorf("loader: %s: dataset %q: %s", sf.path, name, fmt.Sprintf(format, a...))
	}
	if l.class != "compound" {
		return nil, wrap("is a %s dataset; Salt inputs are compound (structured) arrays", l.class)
	}
	if len(l.dims) < 1 || len(l.dims) > 2 {
		return nil, wrap("has %d dimensions; want 1 (per jet) or 2 (per jet, per constituent)", len(l.dims))
	}
	if err := missingFilterError(l.filters); err != nil {
		return nil, wrap("%v", err)
	}
	if l.virtual {
		if err := checkVirtual(sf.path, name, h.ID(), l, 0); err != nil {
			return nil, wrap("%v", err)
		}
	}
	fd.rowSize = l.rowSize
	fd.dims = l.dims
	if len(l.dims) == 2 {
		fd.fileT = l.dims[1]
	}
	fd.members = map[string]h5Member{}
	for _, m := range l.members {
		fd.members[m.name] = m
	}
	return fd, nil
}

// errNoField is the cause of a FieldError for a field the dataset lacks.
var errNoField = errors.New("not found")

// field resolves a member by name into a converter.
func (fd *fileDS) field(name string) (fieldConv, error) {
	m, ok := fd.members[name]
	if !ok {
		return fieldConv{}, errNoField
	}
	return memberConv(m)
}

// fieldNames lists the dataset's fields, sorted.
func (fd *fileDS) fieldNames() []string {
	names := make([]string, 0, len(fd.members))
	for n := range fd.members {
		names = append(names, n)
	}
	return sortedNames(names)
}

// FieldError is a configured field that a dataset of a file lacks or
// cannot read as a number. Callers that know where the field was
// configured (a configuration key) can rewrite it with errors.As.
type FieldError struct {
	File, Dataset string
	// Role is what the field is for: "variable", "label", "weight field" or
	// "selection".
	Role string
	// Group is the input group of a variable or the name of a label.
	Group string
	// Name is what was configured: the variable, the label field or the
	// cut; Field is the file field it reads.
	Name, Field string
	// Nearest is the dataset's field closest to Field ("" if none is
	// close); Fields lists all of them.
	Nearest string
	Fields  []string
	// Err is why the field cannot be read; Missing reports a field the
	// dataset does not have.
	Err     error
	Missing bool
}

// Error names the file, dataset and field, and the nearest field.
func (e *FieldError) Error() string {
	what := fmt.Sprintf("%s %q", e.Role, e.Name)
	if e.Field != e.Name {
		what = fmt.Sprintf("%s %q (field %q)", e.Role, e.Name, e.Field)
	}
	if e.Role == "variable" && e.Group != "" && e.Group != e.Dataset {
		what = fmt.Sprintf("input group %q: %s", e.Group, what)
	}
	if e.Role == "label" && e.Group != "" {
		what = fmt.Sprintf("label %q: %s", e.Group, what)
		if e.Field == e.Name {
			what = fmt.Sprintf("label %q: field %q", e.Group, e.Field)
		}
	}
	if !e.Missing {
		return fmt.Sprintf("loader: %s: dataset %q: %s: %v", e.File, e.Dataset, what, e.Err)
	}
	hint := ""
	if e.Nearest != "" {
		hint = fmt.Sprintf("; did you mean %q?", e.Nearest)
	}
	return fmt.Sprintf("loader: %s: dataset %q: %s: not found%s (the dataset has %d fields: %s)",
		e.File, e.Dataset, what, hint, len(e.Fields), strings.Join(e.Fields, ", "))
}

// Unwrap returns the cause.
func (e *FieldError) Unwrap() error { return e.Err }

func fieldError(sf *srcFile, fd *fileDS, dataset, role, group, name, field string, err error) error {
	e := &FieldError{File: sf.path, Dataset: dataset, Role: role, Group: group, Name: name, Field: field, Err: err, Missing: errors.Is(err, errNoField)}
	if e.Missing {
		e.Fields = fd.fieldNames()
		e.Nearest = nearest.Name(field, e.Fields)
	}
	return e
}

func sortedNames(s []string) []string {
	m := map[string]struct{}{}
	for _, n := range s {
		m[n] = struct{}{}
	}
	return sortedKeys(m)
}

func memberConv(m h5Member) (fieldConv, error) {
	k, be, err := typeKind(m.typ)
	if err != nil {
		return fieldConv{}, fmt.Errorf("cannot read a %v as a number", err)
	}
	return fieldConv{name: m.name, off: m.offset, kind: k, be: be}, nil
}

// resolveShapes fixes each 2-D dataset's output length T and each file's
// read length, and the group and label shapes.
func (d *Dataset) resolveShapes() error {
	for i := range d.dss {
		m := &d.dss[i]
		maxLen, from := 0, ""
		for _, g := range d.cfg.Groups {
			if g.Dataset != m.name || g.MaxLen == 0 {
				continue
			}
			if m.rank == 1 {
				return fmt.Errorf("loader: input group %q: MaxLen %d set but dataset %q is 1-D (one row per jet)", g.Name, g.MaxLen, m.name)
			}
			if maxLen != 0 && g.MaxLen != maxLen {
				return fmt.Errorf("loader: input groups %q and %q read dataset %q with different MaxLen (%d, %d)", from, g.Name, m.name, maxLen, g.MaxLen)
			}
			maxLen, from = g.MaxLen, g.Name
		}
		if m.rank == 2 {
			for _, sf := range d.files {
				m.fileT = max(m.fileT, sf.ds[i].fileT)
			}
			if maxLen == 0 {
				maxLen = m.fileT
			}
			if maxLen == 0 {
				return fmt.Errorf("loader: dataset %q has a zero-length second dimension in every file", m.name)
			}
			m.t = maxLen
			m.pack = len(m.cuts) > 0
		}
		for _, sf := range d.files {
			fd := &sf.ds[i]
			fd.tRead = 1
			switch {
			case m.pack:
				fd.tRead = fd.fileT // select first, then truncate
			case m.rank == 2:
				fd.tRead = min(fd.fileT, m.t)
			}
		}
	}
	for gi := range d.groups {
		g := &d.groups[gi]
		g.t = max(1, d.dss[g.ds].t)
	}
	for li := range d.labels {
		l := &d.labels[li]
		l.t = max(1, d.dss[l.ds].t)
	}
	if d.weightDS >= 0 && d.dss[d.weightDS].rank != 1 {
		return fmt.Errorf("loader: weight field %q: dataset %q is 2-D; weights are per jet", d.cfg.Weight, d.cfg.WeightDataset)
	}
	return nil
}

// selectJets applies the cuts on 1-D datasets: each file's rows that
// pass every one go to sf.sel.
func (d *Dataset) selectJets() error {
	var dis []int
	for i, m := range d.dss {
		if m.rank == 1 && len(m.cuts) > 0 {
			dis = append(dis, i)
		}
	}
	if len(dis) == 0 {
		return nil
	}
	const block = 1 << 14
	var raw []byte
	for _, sf := range d.files {
		pass := make([]bool, sf.rows)
		for i := range pass {
			pass[i] = true
		}
		for _, di := range dis {
			fd := &sf.ds[di]
			m := &d.dss[di]
			if need := block * fd.rowSize; cap(raw) < need {
				raw = make([]byte, need)
			}
			for start := 0; start < sf.rows; start += block {
				n := min(block, sf.rows-start)
				buf := raw[:n*fd.rowSize]
				if err := readRows(fd, 1, start, n, buf); err != nil {
					return fmt.Errorf("loader: %s: dataset %q: reading jets %d..%d for the selections: %w", sf.path, m.name, start, start+n, err)
				}
				for r := range n {
					row := buf[r*fd.rowSize:]
					for ci := range m.cuts {
						if pass[start+r] && !m.cuts[ci].Holds(sf.cutConv[di][ci].f64(row)) {
							pass[start+r] = false
						}
					}
				}
			}
			m.seen.Add(int64(sf.rows))
		}
		sf.sel = make([]int32, 0, sf.rows)
		for r, ok := range pass {
			if ok {
				sf.sel = append(sf.sel, int32(r))
			}
		}
		for _, di := range dis {
			d.dss[di].kept.Add(int64(len(sf.sel)))
		}
	}
	return nil
}

// jetCuts lists the jet selections for messages.
func (d *Dataset) jetCuts() string {
	var parts []string
	for _, m := range d.dss {
		if m.rank == 1 {
			for _, c := range m.cuts {
				parts = append(parts, m.name+": "+c.String())
			}
		}
	}
	return strings.Join(parts, "; ")
}

// SelectionCount says how many entries of a dataset its selections kept:
// jets for a 1-D dataset (counted when the dataset is opened), valid
// constituents for a 2-D one (counted as epochs read them, so zero
// before the first batch).
type SelectionCount struct {
	Dataset    string
	Cuts       []string
	Seen, Kept int64
}

// Selections reports each dataset with selections and what they kept so
// far.
func (d *Dataset) Selections() []SelectionCount {
	var out []SelectionCount
	for _, m := range d.dss {
		if len(m.cuts) == 0 {
			continue
		}
		sc := SelectionCount{Dataset: m.name, Seen: m.seen.Load(), Kept: m.kept.Load()}
		for _, c := range m.cuts {
			sc.Cuts = append(sc.Cuts, c.String())
		}
		out = append(out, sc)
	}
	return out
}

// FileJets is the number of jets in the files, before selections and
// Limit.
func (d *Dataset) FileJets() int { return d.fileJets }

// Available is the number of jets that pass the jet selections, before
// Limit.
func (d *Dataset) Available() int { return d.selected }

// FileLength returns the longest second dimension among the files of a
// 2-D dataset, and the length batches have (MaxLen, or that longest
// dimension); zeros for an unknown or 1-D dataset.
func (d *Dataset) FileLength(dataset string) (file, batch int) {
	for _, m := range d.dss {
		if m.name == dataset && m.rank == 2 {
			return m.fileT, m.t
		}
	}
	return 0, 0
}

// setNorm resolves the norm dict entries (identity without a norm dict).
func (d *Dataset) setNorm() error {
	for gi := range d.groups {
		g := &d.cfg.Groups[gi]
		gm := &d.groups[gi]
		gm.mean = make([]float32, gm.f)
		gm.std = make([]float32, gm.f)
		for vi, v := range g.Variables {
			gm.std[vi] = 1
			if d.cfg.Norm == nil {
				continue
			}
			e, ok := d.cfg.Norm.lookup(g, v)
			if !ok {
				return fmt.Errorf("loader: norm dict has no entry for %s.%s (input group %q); recompute it with `salt-ort norm`", g.Dataset, v, g.Name)
			}
			if err := e.check(g, v); err != nil {
				return err
			}
			gm.mean[vi], gm.std[vi] = float32(e.Mean), float32(e.Std)
		}
	}
	for _, sf := range d.files {
		sf.plans = sf.plans[:0]
		for gi := range d.groups {
			sf.plans = append(sf.plans, newRowPlan(sf.groupConv[gi], d.groups[gi].mean, d.groups[gi].std))
		}
	}
	return nil
}

// getBatch takes a released batch or allocates one.
func (d *Dataset) getBatch() *Batch {
	var b *Batch
	select {
	case b = <-d.free:
	default:
		b = d.newBatch()
	}
	b.free = d.free
	return b
}

// rows is the number of jets of an emitted batch: B, or B/N for a shard.
func (d *Dataset) rows() int { return d.cfg.BatchSize / d.cfg.Shards }

// newBatch allocates a batch of this dataset's shapes.
func (d *Dataset) newBatch() *Batch {
	b := d.rows()
	bt := &Batch{
		JetMask: make([]float32, b),
		Weights: make([]float32, b),
		Rows:    make([]int, b),
		Inputs:  map[string]*Tensor{},
		Labels:  map[string][]int64{},
		Targets: map[string][]float32{},
	}
	for gi, g := range d.cfg.Groups {
		gm := d.groups[gi]
		t := &Tensor{}
		if d.dss[gm.ds].rank == 2 {
			t.Data = make([]float32, b*gm.t*gm.f)
			t.Valid = make([]bool, b*gm.t)
			t.Shape = []int{b, gm.t, gm.f}
			if d.dss[gm.ds].pack {
				t.Source = make([]int32, b*gm.t)
			}
		} else {
			t.Data = make([]float32, b*gm.f)
			t.Shape = []int{b, gm.f}
		}
		bt.Inputs[g.Name] = t
		bt.inputs = append(bt.inputs, t)
	}
	for li, l := range d.cfg.Labels {
		n := b * d.labels[li].t
		var lab []int64
		var tgt []float32
		if l.Kind == FloatLabel {
			tgt = make([]float32, n)
			bt.Targets[l.Name] = tgt
		} else {
			lab = make([]int64, n)
			bt.Labels[l.Name] = lab
		}
		bt.labels = append(bt.labels, lab)
		bt.targets = append(bt.targets, tgt)
	}
	return bt
}

// Len is the number of jets available per epoch (after Limit, before the
// partial-batch policy).
func (d *Dataset) Len() int { return d.total }

// NumBatches is the number of batches per epoch under the partial policy.
func (d *Dataset) NumBatches() int { return d.numBatches }

// BatchSize is the number of rows of the batches the Dataset emits: B, or
// B/N for one of N shards.
func (d *Dataset) BatchSize() int { return d.rows() }

// Shape returns the batch shape of an input group, [B, F] or [B, T, F],
// or nil for an unknown group.
func (d *Dataset) Shape(group string) []int {
	for gi, g := range d.cfg.Groups {
		if g.Name == group {
			gm := d.groups[gi]
			if d.dss[gm.ds].rank == 2 {
				return []int{d.rows(), gm.t, gm.f}
			}
			return []int{d.rows(), gm.f}
		}
	}
	return nil
}

// Config returns the configuration in effect, defaults filled in.
func (d *Dataset) Config() Config { return d.cfg }

// NonFiniteCount is the number of non-finite values replaced by 0 since
// Open (ZeroNonFinite only).
func (d *Dataset) NonFiniteCount() int64 { return d.nonFinite.Load() }

// Close waits for running epochs to finish (cancel their contexts first)
// and closes the files. Later calls to Batches fail.
func (d *Dataset) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.active.Wait()
drain:
	for {
		select {
		case <-d.free:
		default:
			break drain
		}
	}
	return d.closeFiles()
}

func (d *Dataset) closeFiles() error {
	var errs []error
	for _, sf := range d.files {
		if err := sf.close(); err != nil {
			errs = append(errs, err)
		}
	}
	d.files = nil
	return errors.Join(errs...)
}

func (sf *srcFile) close() error {
	var errs []error
	for i := range sf.ds {
		if sf.ds[i].h != nil {
			if err := sf.ds[i].h.Close(); err != nil {
				errs = append(errs, fmt.Errorf("loader: %s: closing a dataset: %w", sf.path, err))
			}
			sf.ds[i].h = nil
		}
	}
	if sf.h != nil {
		if err := sf.h.Close(); err != nil {
			errs = append(errs, fmt.Errorf("loader: %s: closing: %w", sf.path, err))
		}
		sf.h = nil
	}
	return errors.Join(errs...)
}

package loader

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"gonum.org/v1/hdf5"
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
	weightConv fieldConv
}

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
	start := 0
	for _, sf := range d.files {
		sf.start = start
		sf.n = sf.rows
		if cfg.Limit > 0 {
			sf.n = min(sf.rows, cfg.Limit-start)
		}
		start += sf.n
	}
	d.total = start
	if d.total == 0 {
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
	}
	for gi, g := range d.cfg.Groups {
		fd := &sf.ds[d.groups[gi].ds]
		var convs []fieldConv
		for _, v := range g.Variables {
			field := g.field(v)
			conv, err := fd.field(field)
			if err != nil {
				what := fmt.Sprintf("variable %q", v)
				if field != v {
					what = fmt.Sprintf("variable %q (field %q)", v, field)
				}
				return fail(fmt.Errorf("loader: %s: dataset %q: input group %q: %s: %w", path, g.Dataset, g.Name, what, err))
			}
			convs = append(convs, conv)
		}
		sf.groupConv = append(sf.groupConv, convs)
	}
	for _, l := range d.cfg.Labels {
		fd := &sf.ds[d.labels[len(sf.labelConv)].ds]
		conv, err := fd.field(l.Field)
		if err != nil {
			return fail(fmt.Errorf("loader: %s: dataset %q: label %q: field %q: %w", path, l.Dataset, l.Name, l.Field, err))
		}
		sf.labelConv = append(sf.labelConv, conv)
	}
	if d.weightDS >= 0 {
		conv, err := sf.ds[d.weightDS].field(d.cfg.Weight)
		if err != nil {
			return fail(fmt.Errorf("loader: %s: dataset %q: weight field %q: %w", path, d.cfg.WeightDataset, d.cfg.Weight, err))
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

// field resolves a member by name into a converter.
func (fd *fileDS) field(name string) (fieldConv, error) {
	m, ok := fd.members[name]
	if !ok {
		names := make([]string, 0, len(fd.members))
		for n := range fd.members {
			names = append(names, n)
		}
		return fieldConv{}, fmt.Errorf("not found (the dataset has %d fields: %s)", len(names), strings.Join(sortedNames(names), ", "))
	}
	return memberConv(m)
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
			if maxLen == 0 {
				for _, sf := range d.files {
					maxLen = max(maxLen, sf.ds[i].fileT)
				}
			}
			if maxLen == 0 {
				return fmt.Errorf("loader: dataset %q has a zero-length second dimension in every file", m.name)
			}
			m.t = maxLen
		}
		for _, sf := range d.files {
			fd := &sf.ds[i]
			fd.tRead = 1
			if m.rank == 2 {
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

// newBatch allocates a batch of this dataset's shapes.
func (d *Dataset) newBatch() *Batch {
	b := d.cfg.BatchSize
	bt := &Batch{
		JetMask: make([]float32, b),
		Weights: make([]float32, b),
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

// BatchSize is B.
func (d *Dataset) BatchSize() int { return d.cfg.BatchSize }

// Shape returns the batch shape of an input group, [B, F] or [B, T, F],
// or nil for an unknown group.
func (d *Dataset) Shape(group string) []int {
	for gi, g := range d.cfg.Groups {
		if g.Name == group {
			gm := d.groups[gi]
			if d.dss[gm.ds].rank == 2 {
				return []int{d.cfg.BatchSize, gm.t, gm.f}
			}
			return []int{d.cfg.BatchSize, gm.f}
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

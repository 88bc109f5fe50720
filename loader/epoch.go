package loader

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/salt-ort/salt-ort/internal/detrand"
	"gonum.org/v1/hdf5"
)

// The epoch plan. Jets [0, Len) are cut into chunks of ChunkSize
// consecutive jets. With Shuffle, the full chunks are put in a random order
// that depends only on (Seed, epoch); a short last chunk always stays last,
// so that only the final batch of an epoch can be partial. The chunks,
// concatenated, are cut into shuffle buffers of ShuffleBuffer jets (a
// multiple of B); each buffer's jets are permuted by a generator keyed by
// (Seed, epoch, buffer) and dealt into ShuffleBuffer/B consecutive batches.
// Reading is done a buffer at a time by the worker goroutines, each piece of
// a chunk in one HDF5 read; batches are emitted strictly in index order
// whatever the number of workers. Batch k of an epoch is therefore always
// the same set of jets in the same order, which makes resuming at batch k
// exact.

// piece is a run of consecutive jets of one file.
type piece struct {
	file       int
	start, n   int // rows within the file
	bufferFrom int // buffer-local position of the first jet
}

// job is one shuffle buffer to read.
type job struct {
	buffer int
	slot   chan *Batch
}

// epochPlan holds what every worker needs for one epoch.
type epochPlan struct {
	epoch      int
	order      []int // chunk order
	chunk      int
	bufJets    int
	perBuffer  int // batches per buffer
	numBuffers int
	start      int // first batch to emit
}

func (d *Dataset) plan(epoch, start int) *epochPlan {
	c := d.cfg
	nChunks := (d.total + c.ChunkSize - 1) / c.ChunkSize
	p := &epochPlan{
		epoch:     epoch,
		order:     make([]int, nChunks),
		chunk:     c.ChunkSize,
		bufJets:   c.ShuffleBuffer,
		perBuffer: c.ShuffleBuffer / c.BatchSize,
		start:     start,
	}
	p.numBuffers = (d.total + p.bufJets - 1) / p.bufJets
	for i := range p.order {
		p.order[i] = i
	}
	if c.Shuffle {
		full := d.total / c.ChunkSize // a short last chunk stays last
		r := detrand.New(c.Seed, 0x636875, uint64(epoch))
		for i := full - 1; i > 0; i-- {
			j := r.IntN(i + 1)
			p.order[i], p.order[j] = p.order[j], p.order[i]
		}
	}
	return p
}

// pieces lists buffer k's runs of consecutive jets, split at file bounds.
func (d *Dataset) pieces(p *epochPlan, k int) (ps []piece, n int) {
	from := k * p.bufJets
	to := min(from+p.bufJets, d.total)
	for pos := from; pos < to; {
		ci := pos / p.chunk
		off := pos % p.chunk
		chunkStart := p.order[ci] * p.chunk
		chunkLen := min(p.chunk, d.total-chunkStart)
		take := min(chunkLen-off, to-pos)
		g := chunkStart + off // global jet index
		for take > 0 {
			fi := d.fileOf(g)
			sf := d.files[fi]
			m := min(take, sf.start+sf.n-g)
			ps = append(ps, piece{file: fi, start: g - sf.start, n: m, bufferFrom: pos - from})
			g += m
			pos += m
			take -= m
		}
	}
	return ps, to - from
}

// fileOf returns the index of the file holding global jet g.
func (d *Dataset) fileOf(g int) int {
	lo, hi := 0, len(d.files)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if d.files[mid].start <= g {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	for d.files[lo].n == 0 || g >= d.files[lo].start+d.files[lo].n {
		lo++
	}
	return lo
}

// Batches streams epoch `epoch` from batch index `start` (0 for a full
// epoch; k to resume exactly after k batches). The order depends only on
// (Seed, epoch) and the batching parameters, not on Workers or timing.
//
// Read batches until the batch channel closes, then receive from the error
// channel: nil after a complete epoch, the first error otherwise
// (ctx.Err() if ctx was cancelled). To stop early, cancel ctx: all
// goroutines of the epoch exit and both channels close. A consumer that
// stops reading without cancelling leaves the epoch's goroutines blocked.
func (d *Dataset) Batches(ctx context.Context, epoch, start int) (<-chan *Batch, <-chan error) {
	out := make(chan *Batch, d.cfg.Prefetch)
	errc := make(chan error, 1)
	fail := func(err error) (<-chan *Batch, <-chan error) {
		errc <- err
		close(errc)
		close(out)
		return out, errc
	}
	if start < 0 || start > d.numBatches {
		return fail(fmt.Errorf("loader: start batch %d outside 0..%d", start, d.numBatches))
	}
	if epoch < 0 {
		return fail(fmt.Errorf("loader: epoch %d must be ≥ 0", epoch))
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return fail(errors.New("loader: Batches on a closed Dataset"))
	}
	d.active.Add(1)
	d.mu.Unlock()

	p := d.plan(epoch, start)
	ectx, cancel := context.WithCancel(ctx)
	var (
		errOnce  sync.Once
		firstErr error
	)
	setErr := func(err error) {
		errOnce.Do(func() { firstErr = err })
		cancel()
	}
	jobs := make(chan job)
	pending := make(chan chan *Batch, d.cfg.Workers)
	var wg sync.WaitGroup

	// Dispatcher: hands out buffers in order; pending bounds the number of
	// buffers in flight and keeps their order for the emitter.
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(pending)
		defer close(jobs)
		for k := start / p.perBuffer; k < p.numBuffers; k++ {
			slot := make(chan *Batch, p.perBuffer)
			select {
			case pending <- slot:
			case <-ectx.Done():
				return
			}
			select {
			case jobs <- job{buffer: k, slot: slot}:
			case <-ectx.Done():
				close(slot)
				return
			}
		}
	}()
	for range d.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{d: d, p: p}
			for {
				select {
				case j, ok := <-jobs:
					if !ok {
						return
					}
					if err := w.run(ectx, j); err != nil {
						setErr(err)
					}
				case <-ectx.Done():
					return
				}
			}
		}()
	}
	// Emitter: owns out and errc.
	go func() {
		defer d.active.Done()
		stopped := false
	emit:
		for {
			select {
			case slot, ok := <-pending:
				if !ok {
					break emit
				}
				for b := range slot {
					select {
					case out <- b:
					case <-ectx.Done():
						b.Release()
						stopped = true
						break emit
					}
				}
				if ectx.Err() != nil {
					stopped = true
					break emit
				}
			case <-ectx.Done():
				stopped = true
				break emit
			}
		}
		cancel()
		wg.Wait()
		for slot := range pending {
			for b := range slot {
				b.Release()
			}
		}
		close(out)
		switch {
		case firstErr != nil:
			errc <- firstErr
		case stopped && ctx.Err() != nil:
			errc <- ctx.Err()
		}
		close(errc)
	}()
	return out, errc
}

// worker reads buffers; its scratch space is reused across buffers.
type worker struct {
	d     *Dataset
	p     *epochPlan
	arena [][]byte // per dataset: the raw rows of the whole buffer
	base  [][]int  // per dataset, per piece: offset of the piece in arena
	owner []int32  // per buffer position: its piece
	perm  []int32
	idx   []int
	seq   []int   // 0, 1, 2, ...: the destinations of packed entries
	span  []byte  // scratch for reading selected jets
	seen  []int64 // per dataset: valid entries the selections saw
	kept  []int64 // per dataset: and kept
}

// run reads buffer j.buffer: every piece of every dataset in one HDF5 read
// each, into the worker's arena; then it fills the buffer's batches one
// after the other (sequential writes, which keeps the output in cache) and
// sends each to j.slot as soon as it is full. It always closes j.slot.
func (w *worker) run(ctx context.Context, j job) error {
	defer close(j.slot)
	d, p := w.d, w.p
	B := d.cfg.BatchSize
	ps, n := d.pieces(p, j.buffer)
	if err := w.readBuffer(ctx, ps, n); err != nil {
		return err
	}
	if cap(w.perm) < n {
		w.perm = make([]int32, n)
	}
	w.perm = w.perm[:n]
	if d.cfg.Shuffle {
		detrand.New(d.cfg.Seed, 0x627566, uint64(p.epoch), uint64(j.buffer)).Perm(w.perm)
	} else {
		for i := range w.perm {
			w.perm[i] = int32(i)
		}
	}
	defer w.flushCounts()
	first := j.buffer * p.perBuffer
	for bi := range (n + B - 1) / B {
		idx := first + bi
		if idx < p.start || idx >= d.numBatches {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// This shard's slots of the batch: rows [from, from+rows) of its B,
		// of which the real jets are those before nb.
		b := d.getBatch()
		rows := d.rows()
		from := d.cfg.Shard * rows
		nb := max(0, min(rows, min(B, n-bi*B)-from))
		b.reset(idx, nb)
		for s := range nb {
			if err := w.fillSlot(b, s, ps, int(w.perm[bi*B+from+s])); err != nil {
				b.Release()
				return err
			}
		}
		b.clearFrom(nb)
		if b.NonFinite > 0 {
			d.nonFinite.Add(int64(b.NonFinite))
		}
		j.slot <- b // never blocks: the slot holds a whole buffer
	}
	return nil
}

// readBuffer reads the pieces of a buffer of n jets into the arenas.
func (w *worker) readBuffer(ctx context.Context, ps []piece, n int) error {
	d := w.d
	for len(w.arena) < len(d.dss) {
		w.arena = append(w.arena, nil)
		w.base = append(w.base, nil)
	}
	if cap(w.owner) < n {
		w.owner = make([]int32, n)
	}
	w.owner = w.owner[:n]
	for k, pc := range ps {
		for q := range pc.n {
			w.owner[pc.bufferFrom+q] = int32(k)
		}
	}
	for di := range d.dss {
		w.base[di] = w.base[di][:0]
		size := 0
		for _, pc := range ps {
			fd := &d.files[pc.file].ds[di]
			w.base[di] = append(w.base[di], size)
			size += pc.n * fd.rowSize * fd.tRead
		}
		if cap(w.arena[di]) < size {
			w.arena[di] = make([]byte, size)
		}
		arena := w.arena[di][:size]
		for k, pc := range ps {
			if err := ctx.Err(); err != nil {
				return err
			}
			sf := d.files[pc.file]
			fd := &sf.ds[di]
			raw := arena[w.base[di][k] : w.base[di][k]+pc.n*fd.rowSize*fd.tRead]
			if err := w.readSelected(sf, fd, d.dss[di].rank, pc.start, pc.n, raw); err != nil {
				return fmt.Errorf("loader: %s: dataset %q: reading jets %d..%d: %w", sf.path, d.dss[di].name, sf.row(pc.start), sf.row(pc.start+pc.n-1)+1, err)
			}
		}
	}
	return nil
}

// readSelected reads the file's jets pos..pos+n (positions among the
// jets that pass the selections) into raw, in order: the rows in one
// read when they are consecutive or close together, else run by run.
func (w *worker) readSelected(sf *srcFile, fd *fileDS, rank, pos, n int, raw []byte) error {
	if sf.sel == nil {
		return readRows(fd, rank, pos, n, raw)
	}
	rows := sf.sel[pos : pos+n]
	per := fd.rowSize * fd.tRead
	first, last := int(rows[0]), int(rows[n-1])
	if span := last - first + 1; span <= 2*n+64 {
		if span == n {
			return readRows(fd, rank, first, n, raw)
		}
		if cap(w.span) < span*per {
			w.span = make([]byte, span*per)
		}
		buf := w.span[:span*per]
		if err := readRows(fd, rank, first, span, buf); err != nil {
			return err
		}
		for i, r := range rows {
			copy(raw[i*per:(i+1)*per], buf[(int(r)-first)*per:])
		}
		return nil
	}
	for i := 0; i < n; {
		j := i + 1
		for j < n && rows[j] == rows[j-1]+1 {
			j++
		}
		if err := readRows(fd, rank, int(rows[i]), j-i, raw[i*per:j*per]); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// flushCounts adds the worker's selection counts to the dataset's.
func (w *worker) flushCounts() {
	for di := range w.seen {
		if w.seen[di] > 0 {
			w.d.dss[di].seen.Add(w.seen[di])
			w.d.dss[di].kept.Add(w.kept[di])
			w.seen[di], w.kept[di] = 0, 0
		}
	}
}

// fillSlot converts the jet at buffer position pos into slot s of b.
func (w *worker) fillSlot(b *Batch, s int, ps []piece, pos int) error {
	d := w.d
	k := w.owner[pos]
	pc := &ps[k]
	sf := d.files[pc.file]
	r := pos - pc.bufferFrom
	row := sf.row(pc.start + r)
	if len(w.seen) < len(d.dss) {
		w.seen, w.kept = make([]int64, len(d.dss)), make([]int64, len(d.dss))
	}
	for di := range d.dss {
		m := &d.dss[di]
		fd := &sf.ds[di]
		perJet := fd.rowSize * fd.tRead
		off := w.base[di][k] + r*perJet
		jet := w.arena[di][off : off+perJet]
		if cap(w.idx) < fd.tRead {
			w.idx = make([]int, fd.tRead)
		}
		// idx lists the valid entries of the jet (just 0 for 1-D data).
		idx := w.idx[:0]
		switch {
		case d.dss[di].rank != 2:
			idx = append(idx, 0)
		case fd.valid.kind == kU8 || fd.valid.kind == kI8:
			voff, rs := fd.valid.off, fd.rowSize
			for t := range fd.tRead {
				if jet[t*rs+voff] != 0 {
					idx = append(idx, t)
				}
			}
		default:
			for t := range fd.tRead {
				if v, _ := fd.valid.i64(jet[t*fd.rowSize:]); v != 0 {
					idx = append(idx, t)
				}
			}
		}
		// dst lists where each entry goes: where it is in the file, or
		// for a selected dataset the next free slot, the entries that
		// pass packed in file order and then cut to the batch length.
		dst := idx
		if m.pack {
			kept := idx[:0]
			convs := sf.cutConv[di]
			for _, tt := range idx {
				entry := jet[tt*fd.rowSize:]
				pass := true
				for ci := range m.cuts {
					if !m.cuts[ci].Holds(convs[ci].f64(entry)) {
						pass = false
						break
					}
				}
				if pass {
					kept = append(kept, tt)
				}
			}
			w.seen[di] += int64(len(idx))
			w.kept[di] += int64(len(kept))
			idx = kept[:min(len(kept), m.t)]
			for len(w.seq) < m.t {
				w.seq = append(w.seq, len(w.seq))
			}
			dst = w.seq[:len(idx)]
		}
		if err := w.convertJet(b, s, sf, di, jet, idx, dst, row); err != nil {
			return err
		}
	}
	b.Rows[s] = row
	b.JetMask[s] = 1
	if d.weightDS < 0 {
		b.Weights[s] = 1
	}
	return nil
}

// nonFiniteError names the offending value.
func (w *worker) nonFiniteError(sf *srcFile, di int, field string, row, t int, x float32) error {
	at := fmt.Sprintf("jet %d", row)
	if w.d.dss[di].rank == 2 {
		at = fmt.Sprintf("jet %d, entry %d", row, t)
	}
	return fmt.Errorf("loader: %s: dataset %q: field %q: non-finite value %v at %s; fix the file, or read non-finite values as 0 with data.non_finite = \"zero\" in the configuration (salt-ort norm: --non-finite zero)",
		sf.path, w.d.dss[di].name, field, x, at)
}

// convertJet converts one jet's rows of dataset di into batch b's slot;
// idx lists the jet's entries to use, which go to positions dst. Each
// output region of the slot is cleared here, while it is in cache, and
// then filled.
func (w *worker) convertJet(b *Batch, slot int, sf *srcFile, di int, jet []byte, idx, dst []int, row int) error {
	d := w.d
	fd := &sf.ds[di]
	rs := fd.rowSize
	zero := d.cfg.NonFinite == ZeroNonFinite
	for gi := range d.groups {
		gm := &d.groups[gi]
		if gm.ds != di {
			continue
		}
		t := b.inputs[gi]
		F := gm.f
		out := t.Data[slot*gm.t*F : (slot+1)*gm.t*F]
		clear(out)
		if t.Valid != nil {
			valid := t.Valid[slot*gm.t : (slot+1)*gm.t]
			clear(valid)
			for _, tt := range dst {
				valid[tt] = true
			}
		}
		if t.Source != nil {
			src := t.Source[slot*gm.t : (slot+1)*gm.t]
			for i := range src {
				src[i] = -1
			}
			for k, tt := range idx {
				src[dst[k]] = int32(tt)
			}
		}
		if err := w.convertGroup(out, jet, idx, dst, rs, sf, gi, di, row, zero, b); err != nil {
			return err
		}
	}
	for li := range d.labels {
		lm := &d.labels[li]
		if lm.ds != di {
			continue
		}
		l := &d.cfg.Labels[li]
		c := &sf.labelConv[li]
		if l.Kind == FloatLabel {
			out := b.targets[li][slot*lm.t : (slot+1)*lm.t]
			clear(out)
			for k, tt := range idx {
				x := w.floatLabel(l, c, sf.replConv[li], jet[tt*rs:])
				if l.KeepNaN && x != x {
					out[dst[k]] = x
					continue
				}
				x, err := w.finite(x, zero, b, sf, di, c.name, row, tt)
				if err != nil {
					return err
				}
				out[dst[k]] = x
			}
			continue
		}
		out := b.labels[li][slot*lm.t : (slot+1)*lm.t]
		for i := range out {
			out[i] = -1
		}
		if l.mapped() {
			for k, tt := range idx {
				v, err := w.mapClass(l, sf, li, di, jet[tt*rs:], row, tt)
				if err != nil {
					return err
				}
				out[dst[k]] = v
			}
			continue
		}
		if !c.be && (c.kind == kI8 || c.kind == kU8 || c.kind == kI32) {
			// The usual label types, without calls.
			for k, tt := range idx {
				p := tt*rs + c.off
				var v int64
				switch c.kind {
				case kI8:
					v = int64(int8(jet[p]))
				case kU8:
					v = int64(jet[p])
				default:
					v = int64(int32(binary.LittleEndian.Uint32(jet[p:])))
				}
				out[dst[k]] = max(v, -1)
			}
		} else {
			for k, tt := range idx {
				v, fin := c.i64(jet[tt*rs:])
				if !fin {
					return fmt.Errorf("loader: %s: dataset %q: label field %q: non-finite value at jet %d, entry %d",
						sf.path, d.dss[di].name, c.name, row, tt)
				}
				out[dst[k]] = max(v, -1)
			}
		}
		if err := checkClasses(l, out, idx, dst, sf.path, d.dss[di].name, row, d.dss[di].rank == 2); err != nil {
			return err
		}
	}
	if d.weightDS == di {
		x, err := w.finite(sf.weightConv.f32(jet), zero, b, sf, di, sf.weightConv.name, row, 0)
		if err != nil {
			return err
		}
		b.Weights[slot] = x
	}
	return nil
}

// floatLabel reads one entry of a FloatLabel: the source of the last of
// its replacements whose cut holds, else its field, or NaN without one.
func (w *worker) floatLabel(l *Label, c *fieldConv, repls []replConv, entry []byte) float32 {
	for ri := len(repls) - 1; ri >= 0; ri-- {
		if l.Replace[ri].Cut.Holds(repls[ri].cut.f64(entry)) {
			return repls[ri].src.f32(entry)
		}
	}
	if l.Field == "" {
		return float32(math.NaN())
	}
	return c.f32(entry)
}

// finite returns x when it is finite; otherwise the error naming where it
// was read, or (under ZeroNonFinite) 0, counted in the batch.
func (w *worker) finite(x float32, zero bool, b *Batch, sf *srcFile, di int, field string, row, entry int) (float32, error) {
	if !isNonFinite(x) {
		return x, nil
	}
	if !zero {
		return 0, w.nonFiniteError(sf, di, field, row, entry, x)
	}
	b.NonFinite++
	return 0, nil
}

// mapClass gives the class of one entry of a label with a Map or Rules.
func (w *worker) mapClass(l *Label, sf *srcFile, li, di int, entry []byte, row, tt int) (int64, error) {
	if len(l.Rules) > 0 {
		for ri, r := range l.Rules {
			match := true
			for ci := range r.Cuts {
				if !r.Cuts[ci].Holds(sf.ruleConv[li][ri][ci].f64(entry)) {
					match = false
					break
				}
			}
			if match {
				return int64(r.Class), nil
			}
		}
		if l.IgnoreUnmatched {
			return -1, nil
		}
		var vals []string
		seen := map[string]bool{}
		for ri, r := range l.Rules {
			for ci, c := range r.Cuts {
				if !seen[c.Field] {
					seen[c.Field] = true
					vals = append(vals, fmt.Sprintf("%s = %v", c.Field, sf.ruleConv[li][ri][ci].f64(entry)))
				}
			}
		}
		return 0, &LabelError{File: sf.path, Dataset: w.d.dss[di].name, Label: l.Name, Field: l.Field, Row: row, Entry: entryOf(w.d.dss[di].rank, tt),
			Values: strings.Join(vals, ", "), Classes: l.ClassNames, NumClasses: l.NumClasses, Unmatched: true}
	}
	c := &sf.labelConv[li]
	v, fin := c.i64(entry)
	if !fin {
		return 0, fmt.Errorf("loader: %s: dataset %q: label field %q: non-finite value at jet %d, entry %d", sf.path, w.d.dss[di].name, c.name, row, tt)
	}
	if k, ok := l.Map[v]; ok {
		return int64(k), nil
	}
	if v < 0 || l.IgnoreUnmatched {
		return -1, nil
	}
	return 0, &LabelError{File: sf.path, Dataset: w.d.dss[di].name, Label: l.Name, Field: c.name, Row: row, Entry: entryOf(w.d.dss[di].rank, tt),
		Value: v, Values: fmt.Sprintf("%s = %d", c.name, v), Classes: l.ClassNames, NumClasses: l.NumClasses, Unmatched: true}
}

func entryOf(rank, tt int) int {
	if rank == 2 {
		return tt
	}
	return -1
}

// LabelError is a class label the loader cannot turn into a class index:
// a stored value beyond the class count, or a value that a label map or
// the class rules do not cover. Callers that know where the label was
// configured can rewrite it with errors.As.
type LabelError struct {
	File, Dataset string
	Label, Field  string
	Row           int
	Entry         int // constituent index, -1 for a jet label
	Value         int64
	Values        string // the fields read, "field = value, ..."
	Classes       []string
	NumClasses    int
	// Unmatched is set for a value a map or the rules do not cover; else
	// Value is a stored class index ≥ NumClasses.
	Unmatched bool
}

// Error names where the value is and what to do.
func (e *LabelError) Error() string {
	at := fmt.Sprintf("jet %d", e.Row)
	if e.Entry >= 0 {
		at += fmt.Sprintf(", entry %d", e.Entry)
	}
	classes := fmt.Sprintf("%d classes", e.NumClasses)
	if len(e.Classes) > 0 {
		classes = fmt.Sprintf("%d classes (%s)", len(e.Classes), strings.Join(e.Classes, ", "))
	}
	if e.Unmatched {
		return fmt.Sprintf("loader: %s: dataset %q: label %q: %s at %s matches none of the %s; add the value to the label map, drop such entries with a selection, or ignore them",
			e.File, e.Dataset, e.Label, e.Values, at, classes)
	}
	return fmt.Sprintf("loader: %s: dataset %q: label field %q: class %d at %s, but the task has %s (0..%d): the field does not hold class indices; map its values to classes (a label map) or check class_names and the label field",
		e.File, e.Dataset, e.Field, e.Value, at, classes, e.NumClasses-1)
}

// checkClasses rejects a class label beyond the label's class count.
func checkClasses(l *Label, out []int64, idx, dst []int, path, dataset string, row int, perEntry bool) error {
	if l.Kind != ClassLabel || l.NumClasses <= 0 {
		return nil
	}
	for k, tt := range idx {
		if v := out[dst[k]]; v >= int64(l.NumClasses) {
			entry := -1
			if perEntry {
				entry = tt
			}
			return &LabelError{File: path, Dataset: dataset, Label: l.Name, Field: l.Field, Row: row, Entry: entry, Value: v, Classes: l.ClassNames, NumClasses: l.NumClasses}
		}
	}
	return nil
}

// convertGroup fills one jet's group tensor region from its valid rows:
// the fast path runs the file's rowPlan; a non-finite value sends the jet
// to the checked path, which errors or replaces and counts.
func (w *worker) convertGroup(out []float32, jet []byte, idx, dst []int, rs int, sf *srcFile, gi, di, row int, zero bool, b *Batch) error {
	gm := &w.d.groups[gi]
	if sf.plans[gi].run(out, jet, idx, dst, rs, gm.f) {
		return nil
	}
	for vi := range sf.groupConv[gi] {
		c := &sf.groupConv[gi][vi]
		mean, std := gm.mean[vi], gm.std[vi]
		for k, tt := range idx {
			x, err := w.finite(c.f32(jet[tt*rs:]), zero, b, sf, di, c.name, row, tt)
			if err != nil {
				return err
			}
			out[dst[k]*gm.f+vi] = (x - mean) / std
		}
	}
	return nil
}

// readRows reads jets [start, start+n) of a dataset, the first fd.tRead
// entries of each for 2-D datasets, as raw bytes in the file's compound
// layout (no conversion: the fast path).
func readRows(fd *fileDS, rank, start, n int, raw []byte) error {
	fs := fd.h.Space()
	if fs == nil {
		return errors.New("cannot get the dataspace")
	}
	defer fs.Close()
	offset := []uint{uint(start)}
	count := []uint{uint(n)}
	if rank == 2 {
		offset = append(offset, 0)
		count = append(count, uint(fd.tRead))
	}
	if err := fs.SelectHyperslab(offset, nil, count, nil); err != nil {
		return fmt.Errorf("selecting rows: %w", err)
	}
	ms, err := hdf5.CreateSimpleDataspace(count, nil)
	if err != nil {
		return fmt.Errorf("memory dataspace: %w", err)
	}
	defer ms.Close()
	if err := fd.h.ReadSubset(&raw, ms, fs); err != nil {
		return fmt.Errorf("H5Dread: %w", err)
	}
	return nil
}

package loader

// Tensor is one input group of a batch.
type Tensor struct {
	// Data is row-major float32: [B*F] for 1-D groups (jets), [B*T*F] for 2-D
	// groups (tracks), normalised when a norm dict is set; invalid and padded
	// entries are 0.
	Data []float32
	// Valid is [B*T] for 2-D groups (true for real constituents of real
	// jets) and nil for 1-D groups.
	Valid []bool
	// Shape is [B, F] or [B, T, F].
	Shape []int
	// Source is [B*T] for 2-D groups whose dataset has selections: the
	// file entry (second index) each slot holds, -1 for padding. nil
	// otherwise: slot t then holds file entry t.
	Source []int32
}

// Batch is one fixed-shape batch of B jets.
type Batch struct {
	// Index is the batch's position within its epoch.
	Index int
	// N is the number of real jets (≤ B); rows ≥ N are zero padding with
	// JetMask 0. Only the final batch of a PadPartial epoch has N < B.
	N int
	// JetMask is [B]: 1 for real jets, 0 for padding.
	JetMask []float32
	// Inputs holds one tensor per input group, keyed by Group.Name.
	Inputs map[string]*Tensor
	// Labels holds ClassLabel and IndexLabel values, keyed by Label.Name:
	// [B] for jet labels, [B*T] for constituent labels; -1 marks padded or
	// invalid entries, negative indices and negative classes.
	Labels map[string][]int64
	// Targets holds FloatLabel values ([B] or [B*T]; 0 where invalid).
	Targets map[string][]float32
	// Weights is [B]: the sample weight of each real jet (1 without a
	// weight field) and 0 for padding.
	Weights []float32
	// Rows is [B]: each real jet's row in the file that holds it (jet
	// selections skip rows), -1 for padding.
	Rows []int
	// NonFinite counts the non-finite values replaced by 0 in this batch
	// under ZeroNonFinite.
	NonFinite int

	free chan *Batch // the owning Dataset's free list
	// The same slices by group and label index, for the converters.
	inputs  []*Tensor
	labels  [][]int64
	targets [][]float32
}

// Release hands the batch's buffers back to its Dataset for reuse by later
// batches. Calling it is optional (unreleased batches are garbage collected)
// but saves allocations; after Release the batch and every slice in it must
// not be used. Release is safe to call once per batch, from any goroutine.
func (b *Batch) Release() {
	if b == nil || b.free == nil {
		return
	}
	free := b.free
	b.free = nil
	select {
	case free <- b:
	default: // the free list is full: let the garbage collector have it
	}
}

// reset prepares a pooled batch for reuse. The slots of real jets are
// cleared and filled by the conversion; clearFrom clears the padding.
func (b *Batch) reset(index, n int) {
	b.Index, b.N, b.NonFinite = index, n, 0
	clear(b.JetMask)
	clear(b.Weights)
}

// Source returns the file entry that slot t of jet j of a 2-D tensor
// holds, or -1 for padding.
func (t *Tensor) SourceOf(j, slot int) int {
	n := t.Shape[1]
	if t.Source != nil {
		return int(t.Source[j*n+slot])
	}
	if t.Valid != nil && !t.Valid[j*n+slot] {
		return -1
	}
	return slot
}

// clearFrom zeroes slots n..B-1 (padding): zero data and mask, -1 labels.
func (b *Batch) clearFrom(n int) {
	B := len(b.JetMask)
	if n >= B {
		return
	}
	for i := n; i < B; i++ {
		b.Rows[i] = -1
	}
	for _, t := range b.Inputs {
		per := len(t.Data) / B
		clear(t.Data[n*per:])
		if t.Valid != nil {
			clear(t.Valid[n*len(t.Valid)/B:])
		}
		for i := n * len(t.Source) / B; i < len(t.Source); i++ {
			t.Source[i] = -1
		}
	}
	for _, l := range b.Labels {
		for i := n * len(l) / B; i < len(l); i++ {
			l[i] = -1
		}
	}
	for _, t := range b.Targets {
		clear(t[n*len(t)/B:])
	}
}

// PackValid moves each jet's valid constituents to the front of a 2-D
// group's tensor, keeping their order, and zeroes the slots after them, so
// that a jet with n valid constituents holds them in slots 0..n-1 — the
// layout of ATLAS's one-jet interface, which has no padding. Files written
// with padding interleaved between valid constituents (as atlas-ftag-tools'
// mock writer does) read that way. It does nothing to a 1-D group.
func (t *Tensor) PackValid() {
	if t.Valid == nil || len(t.Shape) != 3 {
		return
	}
	b, n, f := t.Shape[0], t.Shape[1], t.Shape[2]
	for j := 0; j < b; j++ {
		valid := t.Valid[j*n : (j+1)*n]
		data := t.Data[j*n*f : (j+1)*n*f]
		k := 0
		for i := 0; i < n; i++ {
			if !valid[i] {
				continue
			}
			if k != i {
				copy(data[k*f:(k+1)*f], data[i*f:(i+1)*f])
				valid[k] = true
			}
			k++
		}
		clear(valid[k:])
		clear(data[k*f:])
	}
}

package loader

import (
	"fmt"
)

// Config describes one split (train, val or test): which files, which
// variables and labels, and how to batch them.
type Config struct {
	// Files are one or more HDF5 files, read in order as one sequence of jets.
	Files []string
	// Groups are the input groups, e.g. jets (1-D) and tracks (2-D).
	Groups []Group
	// Labels are the training targets read alongside the inputs.
	Labels []Label
	// Weight is an optional per-jet field with sample weights, read from
	// WeightDataset; "" gives every real jet weight 1.
	Weight string
	// WeightDataset holds the Weight field; "" means "jets".
	WeightDataset string
	// BatchSize is the number of jets per batch (B); required.
	BatchSize int
	// Shards and Shard split every batch between the ranks of a
	// data-parallel job: with Shards = N > 1, each batch the epoch plan
	// makes of B jets is dealt in N consecutive shards of B/N jets, and the
	// Dataset emits shard Shard (0-based) of each, as batches of B/N rows.
	// The N ranks thus see, together, exactly the batches one process
	// would (the same jets in the same order), whatever N is. B must be a
	// multiple of N. 0 or 1 means the whole batch.
	Shards, Shard int
	// Limit caps the number of jets taken, the first Limit in file order
	// (Salt's num_train / num_val); 0 takes all.
	Limit int
	// Shuffle enables the chunk + buffer shuffle; off, jets come in file order.
	Shuffle bool
	// Seed fixes the shuffle: the same Seed and epoch give the same batches.
	Seed uint64
	// Partial decides what happens to a final batch with fewer than B jets.
	Partial PartialPolicy
	// Norm, when non-nil, normalises every group variable as (x-mean)/std.
	Norm NormDict
	// NonFinite decides what a NaN or ±Inf in an input, float label or
	// weight does. (Class and index labels stored as floats must always be
	// finite.)
	NonFinite NonFinitePolicy
	// Workers is the number of reader goroutines; 0 means 1.
	Workers int
	// Prefetch is the number of ready batches queued ahead of the consumer;
	// 0 means 2*Workers. Besides the queue, up to Workers+1 shuffle buffers
	// of batches are being filled or drained at any time.
	Prefetch int
	// ChunkSize is the number of consecutive jets read in one piece and
	// the unit of the chunk shuffle; 0 means 256.
	ChunkSize int
	// ShuffleBuffer is the number of jets shuffled together; it is rounded
	// up to a multiple of BatchSize. 0 means max(BatchSize, 2048) rounded up.
	ShuffleBuffer int
	// Selections are cuts per dataset name (Salt's selections, applied as
	// atlas-ftag-tools' TrackSelector applies them). On a 1-D dataset they
	// select jets: a jet failing any cut is not part of the dataset at all
	// (Len, Limit and the epoch count only the jets that pass). On a 2-D
	// dataset they select constituents: a valid entry failing any cut
	// reads as padding, and the entries that pass are packed to the front
	// in file order before the MaxLen truncation, so MaxLen counts
	// selected constituents (Tensor.Source then says which file entry each
	// slot holds). Every dataset named must be one the configuration reads.
	Selections map[string][]Cut
}

// Group is one input group: a dataset's named variables as a float32 tensor.
type Group struct {
	// Name is the input's name in batches (Batch.Inputs key), e.g. "tracks".
	Name string
	// Dataset is the HDF5 dataset, e.g. "tracks" or "tracks_loose"; "" means Name.
	Dataset string
	// Variables are the variable names, in the order of the tensor's last
	// axis. Each is read from the file field of the same name unless Rename
	// maps it to another field.
	Variables []string
	// Rename maps a variable name to the field that holds it in the files
	// (variable → field). Norm dicts and Batch layouts use variable names.
	Rename map[string]string
	// MaxLen cuts a 2-D dataset to its first MaxLen entries per jet (0 = the
	// longest second dimension among the files). 1-D datasets must leave it 0.
	MaxLen int
}

// LabelKind says how a label is read and what padding it gets.
type LabelKind int

const (
	// ClassLabel is a class index (int64); invalid or padded entries and
	// negative values read as -1 (ignore).
	ClassLabel LabelKind = iota
	// IndexLabel is a per-constituent index such as ftagTruthVertexIndex
	// (int64); negative values (no vertex), invalid and padded entries read
	// as -1. Two constituents share a vertex iff their indices are equal and
	// ≥ 0.
	IndexLabel
	// FloatLabel is a regression target (float32, not normalised); invalid
	// and padded entries read as 0.
	FloatLabel
)

// String names the kind.
func (k LabelKind) String() string {
	switch k {
	case ClassLabel:
		return "class"
	case IndexLabel:
		return "index"
	case FloatLabel:
		return "float"
	}
	return fmt.Sprintf("LabelKind(%d)", int(k))
}

// Label is one training target read from a dataset field.
type Label struct {
	// Name is the key in Batch.Labels or Batch.Targets.
	Name string
	// Dataset is the HDF5 dataset ("jets", "tracks", ...).
	Dataset string
	// Field is the member holding the label.
	Field string
	// Kind says how to read it.
	Kind LabelKind
	// NumClasses is the number of classes of a ClassLabel for class dicts;
	// 0 infers it from the largest label seen.
	NumClasses int
	// Map turns the stored values of Field into class indices (Salt's
	// label_map), e.g. HadronConeExclTruthLabelID {5: 0, 4: 1, 0: 2}. A
	// negative value that Map does not list reads as -1 (ignored); any
	// other unlisted value is an error unless IgnoreUnmatched is set.
	Map map[int64]int
	// Rules give the class from cuts on fields of Dataset instead of a
	// stored value (atlas-ftag-tools' Labeller): an entry gets the class of
	// the first rule whose cuts all hold. Field is then only a name for
	// messages. An entry no rule matches is an error unless
	// IgnoreUnmatched is set.
	Rules []ClassRule
	// IgnoreUnmatched reads entries that Map or Rules do not cover as -1
	// (no class, left out of the losses) instead of failing.
	IgnoreUnmatched bool
	// KeepNaN reads a NaN value of a FloatLabel as NaN, a missing target
	// that the losses leave out, rather than as a non-finite value under
	// Config.NonFinite (which ±Inf still is).
	KeepNaN bool
	// ClassNames name the classes in messages; optional.
	ClassNames []string
	// Replace gives a FloatLabel conditional values (Salt's
	// data.multi_target), applied in order as Salt applies them: an
	// entry takes the value of the Source of the last replacement whose
	// cut holds on it, else the value of Field, or NaN where Field is ""
	// (Salt's custom_target, which the files do not hold).
	Replace []Replacement
}

// Replacement is one condition of a FloatLabel's Replace: where Cut holds
// on an entry, the label takes the entry's value of the field Source.
type Replacement struct {
	Cut    Cut
	Source string
}

// ClassRule assigns Class to the entries where every cut holds.
type ClassRule struct {
	Class int
	Cuts  []Cut
}

// mapped reports whether the label's classes come from Map or Rules.
func (l *Label) mapped() bool { return l.Map != nil || len(l.Rules) > 0 }

// className names class i for messages.
func (l *Label) className(i int) string {
	if i >= 0 && i < len(l.ClassNames) {
		return l.ClassNames[i]
	}
	return fmt.Sprint(i)
}

// PartialPolicy decides the fate of a final batch with fewer than B jets.
type PartialPolicy int

const (
	// PadPartial (the default) keeps the final partial batch at full shape
	// B: rows ≥ Batch.N are zero with JetMask 0, weight 0 and labels -1.
	PadPartial PartialPolicy = iota
	// DropPartial drops the jets that would fill a final partial batch (with
	// Shuffle, a different random subset each epoch).
	DropPartial
)

// NonFinitePolicy decides what a NaN or ±Inf value does.
type NonFinitePolicy int

const (
	// ErrorOnNonFinite (the default) stops the epoch with an error naming
	// the file, dataset, field, jet row and constituent index. Only valid
	// entries are checked; padded entries are never used.
	ErrorOnNonFinite NonFinitePolicy = iota
	// ZeroNonFinite replaces each non-finite raw value with 0 before
	// normalisation (as Salt's nan_to_num does before its input norm) and
	// counts them in Batch.NonFinite and Dataset.NonFiniteCount.
	ZeroNonFinite
)

// defaults returns a copy of c with defaults filled in, or a usage error.
func (c Config) withDefaults() (Config, error) {
	if len(c.Files) == 0 {
		return c, fmt.Errorf("loader: no input files")
	}
	if c.BatchSize <= 0 {
		return c, fmt.Errorf("loader: batch size %d: must be > 0", c.BatchSize)
	}
	if c.Limit < 0 {
		return c, fmt.Errorf("loader: limit %d: must be ≥ 0 (0 = all jets)", c.Limit)
	}
	if c.Workers < 0 || c.Prefetch < 0 || c.ChunkSize < 0 || c.ShuffleBuffer < 0 {
		return c, fmt.Errorf("loader: workers, prefetch, chunk size and shuffle buffer must be ≥ 0")
	}
	if c.Shards < 0 || c.Shard < 0 || (c.Shards > 1 && c.Shard >= c.Shards) || (c.Shards <= 1 && c.Shard != 0) {
		return c, fmt.Errorf("loader: shard %d of %d: want 0 <= shard < shards", c.Shard, c.Shards)
	}
	if c.Shards > 1 && c.BatchSize%c.Shards != 0 {
		return c, fmt.Errorf("loader: batch size %d is not a multiple of the %d shards", c.BatchSize, c.Shards)
	}
	if c.Shards == 0 {
		c.Shards = 1
	}
	if c.Partial != PadPartial && c.Partial != DropPartial {
		return c, fmt.Errorf("loader: unknown partial-batch policy %d", c.Partial)
	}
	if c.NonFinite != ErrorOnNonFinite && c.NonFinite != ZeroNonFinite {
		return c, fmt.Errorf("loader: unknown non-finite policy %d", c.NonFinite)
	}
	if c.Workers == 0 {
		c.Workers = 1
	}
	if c.Prefetch == 0 {
		c.Prefetch = 2 * c.Workers
	}
	if c.ChunkSize == 0 {
		c.ChunkSize = 256
	}
	if c.ShuffleBuffer == 0 {
		c.ShuffleBuffer = max(c.BatchSize, 2048)
	}
	c.ShuffleBuffer = (c.ShuffleBuffer + c.BatchSize - 1) / c.BatchSize * c.BatchSize
	if c.WeightDataset == "" {
		c.WeightDataset = "jets"
	}
	if len(c.Groups) == 0 && len(c.Labels) == 0 {
		return c, fmt.Errorf("loader: no input groups or labels configured")
	}
	c.Groups = append([]Group(nil), c.Groups...)
	seen := map[string]bool{}
	for i := range c.Groups {
		g := &c.Groups[i]
		if g.Name == "" {
			return c, fmt.Errorf("loader: input group %d has no name", i)
		}
		if seen[g.Name] {
			return c, fmt.Errorf("loader: input group %q appears twice", g.Name)
		}
		seen[g.Name] = true
		if g.Dataset == "" {
			g.Dataset = g.Name
		}
		if len(g.Variables) == 0 {
			return c, fmt.Errorf("loader: input group %q has no variables", g.Name)
		}
		if g.MaxLen < 0 {
			return c, fmt.Errorf("loader: input group %q: max length %d must be ≥ 0", g.Name, g.MaxLen)
		}
		vs := map[string]bool{}
		for _, v := range g.Variables {
			if v == "" || vs[v] {
				return c, fmt.Errorf("loader: input group %q: variable %q is empty or repeated", g.Name, v)
			}
			vs[v] = true
		}
		for v := range g.Rename {
			if !vs[v] {
				return c, fmt.Errorf("loader: input group %q: Rename names %q, which is not one of its variables", g.Name, v)
			}
		}
	}
	names := map[string]bool{}
	for i, l := range c.Labels {
		if l.Name == "" || l.Dataset == "" || l.Field == "" && len(l.Replace) == 0 {
			return c, fmt.Errorf("loader: label %d needs a name, dataset and field (got %+v)", i, l)
		}
		if len(l.Replace) > 0 && l.Kind != FloatLabel {
			return c, fmt.Errorf("loader: label %q: replacements need a float label, not a %s label", l.Name, l.Kind)
		}
		for _, r := range l.Replace {
			if r.Source == "" {
				return c, fmt.Errorf("loader: label %q: a replacement on %s has no source field", l.Name, r.Cut.String())
			}
			if err := r.Cut.check(); err != nil {
				return c, fmt.Errorf("loader: label %q: %w", l.Name, err)
			}
		}
		if names[l.Name] {
			return c, fmt.Errorf("loader: label %q appears twice", l.Name)
		}
		names[l.Name] = true
		if l.Kind < ClassLabel || l.Kind > FloatLabel {
			return c, fmt.Errorf("loader: label %q: unknown kind %d", l.Name, l.Kind)
		}
		if l.mapped() && l.Kind != ClassLabel {
			return c, fmt.Errorf("loader: label %q: a label map or class rules need a class label, not a %s label", l.Name, l.Kind)
		}
		for _, r := range l.Rules {
			if r.Class < 0 || l.NumClasses > 0 && r.Class >= l.NumClasses {
				return c, fmt.Errorf("loader: label %q: rule class %d outside 0..%d", l.Name, r.Class, l.NumClasses-1)
			}
			if len(r.Cuts) == 0 {
				return c, fmt.Errorf("loader: label %q: the rule for class %s has no cuts", l.Name, l.className(r.Class))
			}
			for i := range r.Cuts {
				if err := r.Cuts[i].check(); err != nil {
					return c, fmt.Errorf("loader: label %q: %w", l.Name, err)
				}
			}
		}
		for v, k := range l.Map {
			if k < 0 || l.NumClasses > 0 && k >= l.NumClasses {
				return c, fmt.Errorf("loader: label %q: value %d maps to class %d, outside 0..%d", l.Name, v, k, l.NumClasses-1)
			}
		}
	}
	for ds, cuts := range c.Selections {
		for i := range cuts {
			if err := cuts[i].check(); err != nil {
				return c, fmt.Errorf("loader: selection on %q: %w", ds, err)
			}
		}
	}
	return c, nil
}

// field returns the file field that holds variable v of the group.
func (g *Group) field(v string) string {
	if f, ok := g.Rename[v]; ok && f != "" {
		return f
	}
	return v
}

// GN2JetVariables returns GN2's jet inputs (Salt's configs/GN2/GN2.yaml).
func GN2JetVariables() []string { return []string{"pt_btagJes", "eta_btagJes"} }

// GN2TrackVariables returns GN2's 19 track inputs, in Salt's order.
func GN2TrackVariables() []string {
	return []string{
		"d0", "z0SinTheta", "dphi", "deta", "qOverP",
		"IP3D_signed_d0_significance", "IP3D_signed_z0_significance",
		"phiUncertainty", "thetaUncertainty", "qOverPUncertainty",
		"numberOfPixelHits", "numberOfSCTHits",
		"numberOfInnermostPixelLayerHits", "numberOfNextToInnermostPixelLayerHits",
		"numberOfInnermostPixelLayerSharedHits", "numberOfInnermostPixelLayerSplitHits",
		"numberOfPixelSharedHits", "numberOfPixelSplitHits", "numberOfSCTSharedHits",
	}
}

// GN2Groups returns GN2's input groups: jets (2 variables) and tracks (19
// variables, 40 per jet).
func GN2Groups() []Group {
	return []Group{
		{Name: "jets", Dataset: "jets", Variables: GN2JetVariables()},
		{Name: "tracks", Dataset: "tracks", Variables: GN2TrackVariables(), MaxLen: 40},
	}
}

// GN2Labels returns GN2's labels: the jet flavour (4 classes), the track
// origin (8 classes) and the track vertex index.
func GN2Labels() []Label {
	return []Label{
		{Name: "flavour", Dataset: "jets", Field: "flavour_label", Kind: ClassLabel, NumClasses: 4},
		{Name: "origin", Dataset: "tracks", Field: "ftagTruthOriginLabel", Kind: ClassLabel, NumClasses: 8},
		{Name: "vertex", Dataset: "tracks", Field: "ftagTruthVertexIndex", Kind: IndexLabel},
	}
}

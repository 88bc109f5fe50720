// Package loader reads Salt-format HDF5 training files (compound datasets
// such as jets and tracks with a valid mask) into fixed-shape batches for
// the training, evaluation and export graphs, and computes, reads and
// writes Salt's norm and class dictionaries. It generates no data: package
// gendata writes physics-plausible jets in this layout (with Writer).
//
// # Reading
//
// Open validates a split's files up front and returns a Dataset; its
// Batches method streams one epoch on goroutines. Each input Group becomes
// a float32 Tensor: [B, F] for 1-D datasets (jets), [B, T, F] plus a
// [B, T] Valid mask for 2-D datasets (tracks, hits, ...), where T is the
// group's MaxLen or the longest second dimension among the files (shorter
// files are padded). Only the configured fields are converted, from any of
// u1 i1 u2 i2 u4 i4 u8 i8 f2 f4 f8 in either byte order and from HDF5
// enums of an integer base (h5py's numpy bool). Each read is one H5Dread
// of the rows in the file's own compound layout (no HDF5 conversion); Go
// then converts the needed members.
//
// Conventions:
//   - Padding: entries with valid == false and jets beyond Batch.N are 0 in
//     Data, false in Valid, 0 in JetMask and Weights, -1 in Labels and 0 in
//     Targets. Normalisation (x-mean)/std applies to valid entries only.
//   - Class labels: negative values read as -1 (ignored). A Label.Map
//     (Salt's label_map) or Label.Rules (cuts, as atlas-ftag-tools'
//     Labeller applies its flavour definitions) turn truth fields such as
//     HadronConeExclTruthLabelID into class indices while reading; a value
//     neither covers is a *LabelError unless IgnoreUnmatched.
//   - Selections: Config.Selections holds cuts in ftag's notation (ParseCut).
//     Jets failing a cut on a 1-D dataset are skipped (Batch.Rows says which
//     file row each jet is); constituents failing a cut on a 2-D dataset are
//     dropped before the MaxLen truncation, the rest packed to the front
//     (Tensor.Source says which file entry each slot holds).
//   - Errors about configured fields are *FieldError, with the dataset's
//     nearest field; a truncated file says so, with its sizes.
//   - Index labels (ftagTruthVertexIndex): negative values (no vertex) read
//     as -1, like padding; two valid tracks are in the same vertex iff their
//     indices are equal and ≥ 0.
//   - Renaming: Group.Rename maps a variable name (used in batches and norm
//     dicts) to the file field holding it; Group.Name vs Group.Dataset maps
//     an input name to a dataset, as Salt's input_map does.
//   - Norm dicts are looked up by dataset name, then by group name.
//   - Partial batches: PadPartial (default) pads the final batch to B with
//     a mask; DropPartial drops it.
//   - Non-finite inputs: an error naming file, dataset, field, jet and entry
//     (default), or ZeroNonFinite: replace by 0 before normalisation and
//     count them.
//
// # Order
//
// The epoch is cut into chunks of ChunkSize consecutive jets, whose order
// is shuffled (a short final chunk stays last); the chunk sequence is cut
// into shuffle buffers of ShuffleBuffer jets whose jets are permuted and
// dealt into batches. Everything is keyed by (Seed, epoch, buffer), so the
// batches do not depend on Workers or timing and Batches(ctx, epoch, k)
// resumes exactly at batch k. Batches are emitted in index order through a
// queue of Prefetch batches; cancelling the context stops every goroutine
// of the epoch. Batch.Release returns a batch's buffers for reuse.
//
// Package gendata writes generated files in this layout for the demo, tests
// and benchmarks, with this package's Writer.
package loader

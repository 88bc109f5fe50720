// Package loader reads Salt-format HDF5 training files (compound datasets
// such as jets and tracks with a valid mask) into fixed-shape batches for
// the training, evaluation and export graphs.
package loader

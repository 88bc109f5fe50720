// Package train runs salt-ort's training: it reads batches from the
// loader, feeds them with the parameters, optimizer state, learning rate
// and task weights to the training-step graph in ONNX Runtime, validates
// each epoch with the evaluation graph, and writes the run directory
// (configuration, checkpoints, metrics, logs) that package run reads.
//
// Beside the loop (Run) it holds data-parallel training over MPI and NCCL,
// the one-cycle schedule, the loss weighting, the benchmarks (Bench) and
// the data check (Check). What is known of a run at rest (its layout,
// checkpoints, evaluation) lives in package run.
package train

// Package explain computes feature attributions of a trained model:
// integrated gradients of each jet-level output with respect to every jet
// and constituent input variable, taken from the graph's own reverse-mode
// autodiff (the one that trains), with Salt's sampled baselines, and
// permutation importance as a model-agnostic cross-check.
package explain

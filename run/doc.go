// Package run reads a run at rest: the run directory that training
// writes (its layout, the resolved configuration, its copies of the
// dictionaries, the metrics tables and their columns, the checkpoints),
// the parameters a checkpoint holds for a model, and the evaluation graph
// that runs them over the loader's batches.
//
// A run directory holds:
//
//	config.toml           the configuration as given (ConfigFile)
//	resolved.toml         with every default filled in (ResolvedFile)
//	norm_dict.yaml        the normalisation dictionary's copy
//	class_dict.yaml       the class dictionary's copy, where one is named
//	checkpoints/          last.safetensors and the best epochs' checkpoints
//	metrics/train.csv     per logged step (TrainColumns)
//	metrics/val.csv       per epoch (ValColumns)
//	summary.json, train.log
//
// Load reads a run, ResolveCheckpoint names one of its checkpoints,
// ParamsFromCheckpoint gathers a model's parameters from it, and an
// Evaluator (or Evaluate, for a whole file) runs them. A model with a
// mask decoder has its objects matched to the truth objects by an
// ObjectMatcher, in the evaluator and in the training step. Package train
// writes runs and uses the same pieces for validation; evaluate, explain,
// deploy and saltimport read runs through this package alone.
package run

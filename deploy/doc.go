// Package deploy writes the deployment ONNX models physicists hand to C++
// software (ATLAS Athena loads GN2 through ONNX Runtime's C++ API) and to
// reinterpretation: the deployment graph with the trained weights as
// initializers and the normalisation folded in, metadata describing inputs,
// outputs and provenance, a model card, and validation vectors the model
// must reproduce. Validate proves an exported model reproduces the outputs
// the training-time evaluation graph computed.
package deploy

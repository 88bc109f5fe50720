// Package model describes salt-ort's models — the GN2 family of Salt:
// per-constituent init nets, a transformer encoder with register tokens,
// global attention pooling and task heads — and builds from one Spec the
// three graphs salt-ort runs: the training step, the evaluation graph and
// the deployment graph. The training and evaluation graphs call the same
// forward code; the deployment graph computes the same function with the
// same parameters in operators written for one jet on one CPU thread
// (onejet.go), and can be built from the shared forward code too
// (DeployOptions.Reference).
package model

// Package examplerun trains the tiny run that the Example functions of
// packages reading or exporting a run start from, so that each example
// shows its own package's calls rather than the training set-up.
package examplerun

import (
	"context"
	"os"
	"path/filepath"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/gendata"
	"github.com/salt-ort/salt-ort/runtime"
	"github.com/salt-ort/salt-ort/train"
)

// exampleTOML is a GN2-like model small enough to train in a second: one
// 8-wide encoder layer over 10 tracks of 3 variables, and the jet flavour
// task. Its paths are relative to the file, beside the generated data.
const exampleTOML = `
[data]
train = ["train.h5"]
val = ["val.h5"]
test = ["val.h5"]
norm_dict = "norm_dict.yaml"
batch_size = 50

[data.variables]
jets = ["pt_btagJes", "eta_btagJes"]
tracks = ["d0", "z0SinTheta", "IP3D_signed_d0_significance"]

[model]
name = "Tiny"
embed_dim = 8

[[model.init_nets]]
input = "tracks"
max_len = 10
hidden = [8]

[model.encoder]
layers = 1
heads = 2
out_dim = 8

[[model.tasks]]
name = "jets_classification"
kind = "jet_classification"
label = "flavour_label"
class_names = ["b", "c", "u", "tau"]
hidden = [8]

[training]
epochs = 1
seed = 1
threads = 1
`

// Train generates a small dataset in dir, trains a tiny GN2-like
// model (one 8-wide encoder layer, the jet flavour task, named "Tiny") on
// it for one epoch and returns the run directory, dir/run, as
// `salt-ort train` writes it. The Example functions of packages that read
// or export a run start from it.
func Train(ctx context.Context, rt *runtime.Runtime, dir string) (string, error) {
	if _, err := gendata.Generate(gendata.Config{Seed: 1, Train: 200, Val: 100, MaxTracks: 10}, dir); err != nil {
		return "", err
	}
	cfgPath := filepath.Join(dir, "tiny.toml")
	if err := os.WriteFile(cfgPath, []byte(exampleTOML), 0o644); err != nil {
		return "", err
	}
	c, err := config.Load(cfgPath)
	if err != nil {
		return "", err
	}
	runDir := filepath.Join(dir, "run")
	if _, err := train.Run(ctx, train.Options{Config: c, RunDir: runDir, Runtime: rt}); err != nil {
		return "", err
	}
	return runDir, nil
}

// OpenRuntime loads ONNX Runtime from $SALT_ORT_LIB, or from where make
// deps installs it.
func OpenRuntime() (*runtime.Runtime, error) {
	lib, err := runtime.LibraryPath("")
	if err != nil {
		return nil, err
	}
	return runtime.Open(lib)
}

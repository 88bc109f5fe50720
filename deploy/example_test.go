package deploy_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/deploy"
	"github.com/salt-ort/salt-ort/gendata"
	"github.com/salt-ort/salt-ort/runtime"
	"github.com/salt-ort/salt-ort/train"
)

// tinyTOML is a GN2-like model small enough to train in a second: one
// 8-wide encoder layer over 10 tracks of 3 variables, and the jet flavour
// task. Its paths are relative to the file, beside the generated data.
const tinyTOML = `
[data]
train = ["train.h5"]
val = ["val.h5"]
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

// trainTiny generates a small dataset in dir, trains tinyTOML on it for
// one epoch and returns the run directory.
func trainTiny(ctx context.Context, rt *runtime.Runtime, dir string) (string, error) {
	if _, err := gendata.Generate(gendata.Config{Seed: 1, Train: 200, Val: 100, MaxTracks: 10}, dir); err != nil {
		return "", err
	}
	cfgPath := filepath.Join(dir, "tiny.toml")
	if err := os.WriteFile(cfgPath, []byte(tinyTOML), 0o644); err != nil {
		return "", err
	}
	c, err := config.Load(cfgPath)
	if err != nil {
		return "", err
	}
	run := filepath.Join(dir, "run")
	if _, err := train.Run(ctx, train.Options{Config: c, RunDir: run, Runtime: rt}); err != nil {
		return "", err
	}
	return run, nil
}

// openRuntime loads ONNX Runtime from $SALT_ORT_LIB, or from where make
// deps installs it.
func openRuntime() (*runtime.Runtime, error) {
	lib, err := runtime.LibraryPath("")
	if err != nil {
		return nil, err
	}
	return runtime.Open(lib)
}

// ExampleExport trains a tiny model and exports its best checkpoint for
// ATLAS's C++: the one-jet interface, with validation vectors and a model
// card beside it, checked on those vectors before anything is written.
func ExampleExport() {
	ctx := context.Background()
	rt, err := openRuntime()
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "deploy-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	run, err := trainTiny(ctx, rt, dir)
	if err != nil {
		log.Fatal(err)
	}

	ex, err := deploy.Export(ctx, deploy.ExportOptions{
		RunDir:         run,
		Out:            filepath.Join(dir, "Tiny.onnx"),
		ValidationJets: 50,
		Runtime:        rt,
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range []string{ex.Model, ex.Vectors, ex.Card, ex.CardJSON} {
		fmt.Println("wrote", filepath.Base(f))
	}
	fmt.Printf("%s interface, reproduced on %d validation jets: %v\n", ex.Validation.Interface, ex.Validation.Jets, ex.Validation.Pass())
	// Output:
	// wrote Tiny.onnx
	// wrote Tiny.validation.h5
	// wrote Tiny.md
	// wrote Tiny.card.json
	// athena interface, reproduced on 50 validation jets: true
}

// ExampleValidate runs an exported model on the validation vectors
// written beside it and compares every output, as `salt-ort validate`
// does.
func ExampleValidate() {
	ctx := context.Background()
	rt, err := openRuntime()
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "deploy-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	run, err := trainTiny(ctx, rt, dir)
	if err != nil {
		log.Fatal(err)
	}
	model := filepath.Join(dir, "Tiny.onnx")
	if _, err := deploy.Export(ctx, deploy.ExportOptions{RunDir: run, Out: model, ValidationJets: 50, Runtime: rt}); err != nil {
		log.Fatal(err)
	}

	rep, err := deploy.Validate(ctx, deploy.ValidateOptions{Model: model, Runtime: rt})
	if err != nil {
		log.Fatal(err)
	}
	for _, o := range rep.Outputs {
		fmt.Printf("%s %s: reproduced %v\n", o.Name, o.Type, o.Pass())
	}
	fmt.Println("pass:", rep.Pass())
	// Output:
	// Tiny_pb float32: reproduced true
	// Tiny_pc float32: reproduced true
	// Tiny_pu float32: reproduced true
	// Tiny_ptau float32: reproduced true
	// pass: true
}

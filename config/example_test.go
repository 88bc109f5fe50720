package config_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/salt-ort/salt-ort/config"
)

// modelTOML is a small configuration: every key it leaves out takes
// Salt's GN2 default.
const modelTOML = `
[data]
train = ["data/train.h5"]
val = ["data/val.h5"]
norm_dict = "data/norm_dict.yaml"

[data.variables]
jets = ["pt_btagJes", "eta_btagJes"]
tracks = ["d0", "z0SinTheta"]

[[model.init_nets]]
input = "tracks"
max_len = 40

[[model.tasks]]
name = "jets_classification"
kind = "jet_classification"
label = "flavour_label"
class_names = ["b", "c", "u"]

[training]
epochs = 2
`

// ExampleLoad reads a configuration file, fills in the defaults and
// resolves its data paths relative to the file, as `salt-ort train` does.
func ExampleLoad() {
	dir, err := os.MkdirTemp("", "config-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.toml")
	if err := os.WriteFile(path, []byte(modelTOML), 0o644); err != nil {
		log.Fatal(err)
	}

	c, err := config.Load(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("model:", c.Model.Name, "embed_dim", c.Model.EmbedDim, "encoder layers", c.Model.Encoder.Layers)
	fmt.Println("training:", c.Training.Epochs, "epochs, optimizer", c.Training.Optimizer.Name, "lr max", c.Training.LR.Max)
	fmt.Println("task:", c.Model.Tasks[0].Name, c.Model.Tasks[0].ClassNames)
	train, err := filepath.Rel(dir, c.Resolve(c.Data.Train[0]))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("training file, relative to model.toml:", train)
	fmt.Println("epochs given:", c.Defined("training.epochs"), "batch_size given:", c.Defined("data.batch_size"))
	// Output:
	// model: GN2 embed_dim 256 encoder layers 4
	// training: 2 epochs, optimizer adamw lr max 0.0005
	// task: jets_classification [b c u]
	// training file, relative to model.toml: data/train.h5
	// epochs given: true batch_size given: false
}

// ExampleParse_unknownKey shows the error a misspelt key gets: the file
// and line, the key, and the nearest valid key.
func ExampleParse_unknownKey() {
	_, err := config.Parse("model.toml", []byte(modelTOML+"log_evry = 5\n"))
	fmt.Println(err)
	// Output:
	// model.toml:23: training.log_evry: unknown key; did you mean "log_every"?
}

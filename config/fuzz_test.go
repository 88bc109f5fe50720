package config

import (
	"errors"
	"testing"

	"github.com/salt-ort/salt-ort/internal/testkit/fuzztest"
)

// maxFuzzInput bounds the configuration text FuzzParse hands to Parse:
// room for the tables and keys of a GN2 configuration (the compact seed
// below is 915 bytes) and for the limits of limits.go to be reached. What
// it keeps out is the mutator's long inputs, whose per-input cost and,
// above all, minimisation cost (Go's minimiser tries O(n²) cuts of an
// n-byte input) would slow a short run. Larger texts are the job of
// limits_test.go and of the unit tests on examples/.
const maxFuzzInput = 1 << 10

// compact is examples/gn2.toml without comments and with short lists and
// names: the data, model, encoder, training, optimizer, lr and checkpoint
// tables and the three GN2 tasks, small enough to mutate and minimise fast.
const compact = `[data]
train = ["t.h5"]
val = ["v.h5"]
norm_dict = "n.yaml"
class_dict = "c.yaml"
batch_size = 10
[data.variables]
jets = ["pt", "eta"]
tracks = ["d0", "z0"]
[model]
name = "GN2"
embed_dim = 8
[[model.init_nets]]
input = "tracks"
max_len = 4
hidden = [8]
[model.encoder]
layers = 1
heads = 2
registers = 1
out_dim = 4
[[model.tasks]]
name = "j"
kind = "jet_classification"
label = "flavour_label"
class_names = ["b", "u"]
hidden = [4]
use_class_dict = true
[[model.tasks]]
name = "o"
kind = "track_classification"
input = "tracks"
label = "ftagTruthOriginLabel"
class_names = ["p", "f"]
weight = 0.5
[[model.tasks]]
name = "v"
kind = "vertexing"
input = "tracks"
label = "ftagTruthVertexIndex"
origin_label = "ftagTruthOriginLabel"
[training]
epochs = 2
precision = "fp32"
[training.optimizer]
name = "adamw"
weight_decay = 1e-5
[training.lr]
max = 5e-4
warmup_fraction = 0.01
[training.checkpoints]
save_top_k = 3
`

// kindSeeds are compact configurations of the model kinds beyond GN2,
// each within maxFuzzInput: a jet-only model; GN3's encoder with edge
// features; regressions with every scaling, GLS and Lion; a parameterised
// model with featurewise nets.
var kindSeeds = []string{`[data]
train = ["t.h5"]
val = ["v.h5"]
norm_dict = "n.yaml"
[data.variables]
jets = ["pt", "eta"]
[model]
embed_dim = 8
[[model.init_nets]]
input = "jets"
hidden = [8]
[model.encoder]
layers = 0
[model.pooling]
kind = "none"
[[model.tasks]]
name = "j"
kind = "jet_classification"
label = "flavour_label"
class_names = ["b", "u"]
`, `[data]
train = ["t.h5"]
val = ["v.h5"]
norm_dict = "n.yaml"
[data.variables]
jets = ["pt"]
tracks = ["deta", "dphi", "pt"]
[[data.edge_constructors]]
input = "tracks"
edge_features = ["dR", "z", "isSelfLoop"]
[data.edge_constructors.variables]
eta = "deta"
phi = "dphi"
[model]
embed_dim = 8
[[model.init_nets]]
input = "tracks"
max_len = 4
[[model.edge_init_nets]]
input = "tracks"
[model.encoder]
layers = 1
heads = 2
edge_embed_dim = 4
update_edges = true
gated = true
norm = "RMSNorm"
norm_type = "hybrid"
ls_init = 0.1
drop_path = 0.1
[[model.tasks]]
name = "j"
kind = "jet_classification"
label = "flavour_label"
class_names = ["b", "u"]
`, `[data]
train = ["t.h5"]
val = ["v.h5"]
norm_dict = "n.yaml"
[data.variables]
jets = ["pt"]
tracks = ["d0"]
[[model.init_nets]]
input = "tracks"
max_len = 4
[[model.tasks]]
name = "a"
kind = "regression"
targets = ["x", "y"]
target_denominators = ["pt", "pt"]
sample_weight = "w"
[[model.tasks]]
name = "b"
kind = "gaussian_regression"
input = "tracks"
targets = ["z"]
[model.tasks.norm_params]
mean = [0.0]
std = [2.0]
[[model.tasks]]
name = "c"
kind = "regression"
targets = ["l"]
[model.tasks.scaler.l]
op = "log"
x_off = 1.0
[training]
loss_weighting = "GLS"
[training.optimizer]
name = "lion"
`, `[data]
train = ["t.h5"]
val = ["v.h5"]
norm_dict = "n.yaml"
[data.variables]
jets = ["pt"]
tracks = ["d0"]
parameters = ["m"]
[data.parameters.m]
train = [1.0, 2.0]
test = 1.0
[[model.init_nets]]
input = "tracks"
max_len = 4
[[model.featurewise_nets]]
layer = "input"
[model.featurewise_nets.dense_config_scale]
hidden = [4]
[[model.featurewise_nets]]
layer = "global"
apply_norm = true
[model.featurewise_nets.dense_config_bias]
final_activation = "Sigmoid"
[[model.tasks]]
name = "j"
kind = "jet_classification"
label = "flavour_label"
class_names = ["b", "u"]
`}

// FuzzParse checks that no configuration text makes the decoder panic, that
// every rejection is a *config.Error naming the file, and that an accepted
// configuration survives Encode and Parse unchanged. Run it with
//
//	go test -run '^$' -fuzz '^FuzzParse$' -fuzztime 1m ./config
func FuzzParse(f *testing.F) {
	fuzztest.BoundMinimization(f)
	f.Add([]byte(compact))
	f.Add([]byte(minimal))
	f.Add([]byte(minimal + "[training]\nepochs = \"three\"\n"))
	f.Add([]byte("[[model.tasks]]\nname = 1\n"))
	for _, k := range kindSeeds {
		f.Add([]byte(k))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzInput {
			return
		}
		c, err := Parse("fuzz.toml", data)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || ce.File != "fuzz.toml" {
				t.Fatalf("error %v (%T) is not a config.Error naming the file", err, err)
			}
			return
		}
		enc, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse("resolved.toml", enc)
		if err != nil {
			t.Fatalf("the resolved form of an accepted configuration is rejected: %v\n%s", err, enc)
		}
		enc2, err := back.Encode()
		if err != nil || string(enc2) != string(enc) {
			t.Fatalf("resolved configuration does not round-trip:\n%s\n---\n%s", enc, enc2)
		}
	})
}

// TestFuzzSeedsFit keeps FuzzParse's compact seed meaningful: accepted,
// and within the input bound.
func TestFuzzSeedsFit(t *testing.T) {
	if len(compact) > maxFuzzInput {
		t.Fatalf("compact seed is %d bytes, over maxFuzzInput %d", len(compact), maxFuzzInput)
	}
	if _, err := Parse("compact.toml", []byte(compact)); err != nil {
		t.Fatal(err)
	}
	for i, k := range kindSeeds {
		if len(k) > maxFuzzInput {
			t.Errorf("kind seed %d is %d bytes, over maxFuzzInput %d", i, len(k), maxFuzzInput)
		}
		c, err := Parse("kind.toml", []byte(k))
		if err != nil {
			t.Errorf("kind seed %d: %v", i, err)
			continue
		}
		enc, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse("resolved.toml", enc); err != nil {
			t.Errorf("kind seed %d: resolved form rejected: %v\n%s", i, err, enc)
		}
	}
}

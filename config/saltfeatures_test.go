package config

import (
	"errors"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/nn"
)

// saltFeatures uses the keys of the features Salt's shipped
// configurations have beyond GN2: dropout in an init net and in heads,
// Mish, a binary classification (BCEWithLogitsLoss), an L1 regression,
// Huber by name and Salt's mean of weight × loss.
const saltFeatures = `
[data]
train = ["train.h5"]
val = ["val.h5"]
norm_dict = "norm.yaml"
[data.variables]
jets = ["pt", "mass"]
tracks = ["d0", "z0"]
[[model.init_nets]]
input = "tracks"
max_len = 10
activation = "Mish"
dropout = 0.1
[model.encoder]
activation = "Mish"
[[model.tasks]]
name = "jets_classification"
kind = "jet_classification"
label = "isSignal"
class_names = ["signal"]
loss = "BCEWithLogitsLoss"
loss_mean = "entries"
sample_weight = "weight"
dropout = 0.2
activation = "Mish"
[[model.tasks]]
name = "origin"
kind = "track_classification"
input = "tracks"
label = "origin"
class_names = ["a", "b", "c"]
dropout = 0.1
[[model.tasks]]
name = "mass"
kind = "regression"
targets = ["truth_mass"]
loss = "L1Loss"
loss_mean = "entries"
[[model.tasks]]
name = "pt"
kind = "regression"
targets = ["truth_pt"]
loss = "HuberLoss"
loss_mean = "weighted"
`

// TestSaltFeatureKeys checks the spec the new keys give, that the resolved
// configuration reads back the same, and that a configuration without
// them resolves without them.
func TestSaltFeatureKeys(t *testing.T) {
	cfg, err := Parse("model.toml", []byte(saltFeatures))
	if err != nil {
		t.Fatal(err)
	}
	s, err := cfg.Spec(nil)
	if err != nil {
		t.Fatal(err)
	}
	in, jet, origin, mass, pt := s.Inputs[0], s.Tasks[0], s.Tasks[1], s.Tasks[2], s.Tasks[3]
	switch {
	case in.Dropout != 0.1 || in.Activation != nn.Mish || s.Encoder.Activation != nn.Mish:
		t.Errorf("init net %+v, encoder activation %s", in, s.Encoder.Activation)
	case !jet.Binary() || jet.Outputs() != 1 || jet.Mean != model.EntryMean || jet.Dropout != 0.2 || jet.Activation != nn.Mish || !jet.SampleWeight:
		t.Errorf("binary task %+v", jet)
	case origin.Binary() || origin.Dropout != 0.1 || origin.Mean != model.WeightedMean:
		t.Errorf("track task %+v", origin)
	case mass.Loss != model.L1Loss || mass.Mean != model.EntryMean || mass.HuberDelta != 0:
		t.Errorf("L1 task %+v", mass)
	case pt.Loss != model.DefaultLoss || pt.HuberDelta != 1 || pt.Mean != model.WeightedMean:
		t.Errorf("Huber task %+v: want PyTorch's default delta 1", pt)
	}
	l, err := cfg.TaskLabel(cfg.Model.Tasks[0])
	if err != nil {
		t.Fatal(err)
	}
	if l.NumClasses != 2 || len(l.Rules) != 0 || l.Map != nil {
		t.Errorf("binary label %+v: want the values 0 and 1 as they are", l)
	}
	enc, err := cfg.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("resolved.toml", enc)
	if err != nil {
		t.Fatalf("resolved configuration: %v\n%s", err, enc)
	}
	s2, err := back.Spec(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, s2) {
		t.Errorf("resolved configuration's spec differs:\n%+v\n%+v", s, s2)
	}

	plain, err := Parse("minimal.toml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	enc, err = plain.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// The encoder's dropout is the only one, as before the new keys.
	if n := len(regexp.MustCompile(`(?m)^\s*dropout = `).FindAllIndex(enc, -1)); n != 1 {
		t.Errorf("a configuration without the new keys resolves with %d dropout keys, want the encoder's alone:\n%s", n, enc)
	}
	if strings.Contains(string(enc), "loss =") || strings.Contains(string(enc), "loss_mean") {
		t.Errorf("a configuration without the new keys resolves with them:\n%s", enc)
	}
}

// TestBinaryLabelMap checks a binary task's label_map: values map to 1
// (the class, by index or name) or 0.
func TestBinaryLabelMap(t *testing.T) {
	text := strings.Replace(saltFeatures, "[[model.tasks]]\nname = \"origin\"", "[model.tasks.label_map]\n5 = \"signal\"\n4 = 1\n0 = 0\n[[model.tasks]]\nname = \"origin\"", 1)
	cfg, err := Parse("model.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	l, err := cfg.TaskLabel(cfg.Model.Tasks[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := map[int64]int{5: 1, 4: 1, 0: 0}; !reflect.DeepEqual(l.Map, want) || l.NumClasses != 2 {
		t.Errorf("label map %v over %d classes, want %v over 2", l.Map, l.NumClasses, want)
	}
}

// TestSaltFeatureErrors checks that misuses of the new keys are errors
// naming the key and the fix.
func TestSaltFeatureErrors(t *testing.T) {
	replace := func(old, new string) string { return strings.Replace(saltFeatures, old, new, 1) }
	for _, c := range []struct {
		name, text string
		key, want  string
	}{
		{"unknown loss", replace(`loss = "L1Loss"`, `loss = "SmoothL1Loss"`), "model.tasks.loss", "MSELoss, HuberLoss, L1Loss"},
		{"L1 on a classification", replace(`loss = "BCEWithLogitsLoss"`, `loss = "L1Loss"`), "model.tasks.loss", "CrossEntropyLoss, BCEWithLogitsLoss"},
		{"binary with two classes", replace(`class_names = ["signal"]`, `class_names = ["signal", "background"]`), "model.tasks.class_names", "one class name"},
		{"binary with class weights", replace(`loss_mean = "entries"`+"\nsample_weight", "class_weights = [2.0]\nloss_mean = \"entries\"\nsample_weight"), "model.tasks.class_weights", "takes no class weights"},
		{"one class without BCE", replace(`loss = "BCEWithLogitsLoss"`, `loss = "CrossEntropyLoss"`), "model.tasks.class_names", `loss = "BCEWithLogitsLoss"`},
		{"huber delta with L1", replace(`loss = "L1Loss"`, "loss = \"L1Loss\"\nhuber_delta = 2.0"), "model.tasks.huber_delta", "remove one"},
		{"unknown mean", replace(`loss_mean = "weighted"`, `loss_mean = "sum"`), "model.tasks.loss_mean", `"entries"`},
		{"task dropout of 1", replace("dropout = 0.2", "dropout = 1.0"), "model.tasks.dropout", "[0, 1)"},
		{"init net dropout", replace("dropout = 0.1\n[model.encoder]", "dropout = -0.1\n[model.encoder]"), "model.init_nets.dropout", "[0, 1)"},
		{"entries on vertexing", saltFeatures + "[[model.tasks]]\nname = \"vtx\"\nkind = \"vertexing\"\ninput = \"tracks\"\nlabel = \"v\"\nloss_mean = \"entries\"\n",
			"model.tasks.loss_mean", "number of true pairs"},
		{"misspelt dropout", replace("dropout = 0.2", "dropuot = 0.2"), "model.tasks.dropuot", `did you mean "dropout"?`},
		{"misspelt loss_mean", replace(`loss_mean = "weighted"`, `loss_means = "weighted"`), "model.tasks.loss_means", `did you mean "loss_mean"?`},
		{"unknown activation", replace(`activation = "Mish"`+"\ndropout", `activation = "Swish"`+"\ndropout"), "model.init_nets.activation", "Mish"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("model.toml", []byte(c.text))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v, want a *config.Error", err)
			}
			if ce.Key != c.key || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want key %s and %q", err, c.key, c.want)
			}
		})
	}
}

// TestVertexingAcceptsSaltsKeys checks that a vertexing task takes the
// keys Salt's configurations give it: its BCEWithLogitsLoss and dropout,
// 0 (PLITel's heads share one dense_config) or not (GN2emu's 0.1).
func TestVertexingAcceptsSaltsKeys(t *testing.T) {
	for _, p := range []string{"0.0", "0.1"} {
		text := saltFeatures + "[[model.tasks]]\nname = \"vtx\"\nkind = \"vertexing\"\ninput = \"tracks\"\nlabel = \"v\"\nloss = \"BCEWithLogitsLoss\"\ndropout = " + p + "\n"
		c, err := Parse("model.toml", []byte(text))
		if err != nil {
			t.Fatalf("dropout = %s: %v", p, err)
		}
		spec, err := c.Spec(nil)
		if err != nil {
			t.Fatalf("dropout = %s: %v", p, err)
		}
		if got := spec.Tasks[len(spec.Tasks)-1].Dropout; strconv.FormatFloat(got, 'f', 1, 64) != p {
			t.Errorf("dropout = %s: the vertexing task's dropout is %g", p, got)
		}
	}
}

package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/loader"
)

// r21xbb is Salt's R21Xbb (configs/legacy/Baseline_Xbb.yaml) in
// salt-ort's keys: the first 5 tracks' 3 variables flattened into a head.
const r21xbb = `
[data]
train = ["train.h5"]
val = ["val.h5"]
norm_dict = "norm.yaml"
[data.variables]
jets = ["pt", "eta"]
tracks = ["pb", "pc", "pu"]
[model]
name = "R21Xbb"
[model.encoder]
layers = 0
[model.pooling]
kind = "flatten"
input = "tracks"
max_len = 5
[[model.tasks]]
name = "jets_classification"
kind = "jet_classification"
label = "flavour_label"
class_names = ["hbb", "hcc", "qcd", "top"]
hidden = [250, 250]
dropout = 0.1
input_size = 15
`

// r21Norm is the normalisation the R21Xbb configuration is given.
var r21Norm = loader.NormDict{
	"jets":   {"pt": {Mean: 1e5, Std: 5e4}, "eta": {Mean: 0, Std: 1}},
	"tracks": {"pb": {Mean: 0.5, Std: 0.25}, "pc": {Mean: -1, Std: 2}, "pu": {Mean: 0, Std: 4}},
}

// TestFlattenSpec checks the spec of pooling kind "flatten": one group of
// 5 × 3 features, no init net, Salt's normalised zero (−mean/std) in
// empty slots, and the same spec from the resolved configuration.
func TestFlattenSpec(t *testing.T) {
	cfg, err := Parse("model.toml", []byte(r21xbb))
	if err != nil {
		t.Fatal(err)
	}
	cfg.SetNormDict(r21Norm)
	s, err := cfg.Spec(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []model.Input{{Name: "tracks", Vars: []string{"pb", "pc", "pu"}, MaxLen: 5, Fill: []float64{-2, 0.5, 0}}}
	if s.Pooling != model.FlattenPooling || !reflect.DeepEqual(s.Inputs, want) || s.JetInit != nil || s.HasEncoder() || s.Width() != 15 || s.Tasks[0].Dropout != 0.1 {
		t.Errorf("spec %+v", s)
	}
	enc, err := cfg.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("resolved.toml", enc)
	if err != nil {
		t.Fatalf("resolved configuration: %v\n%s", err, enc)
	}
	back.SetNormDict(r21Norm)
	if s2, err := back.Spec(nil); err != nil || !reflect.DeepEqual(s, s2) {
		t.Errorf("resolved configuration's spec differs (%v):\n%+v\n%+v", err, s, s2)
	}
	cfg.SetNormDict(loader.NormDict{"tracks": {"pb": {Mean: 0, Std: 1}}})
	if _, err := cfg.Spec(nil); err == nil || !strings.Contains(err.Error(), "data.norm_dict") || !strings.Contains(err.Error(), "tracks.pc") {
		t.Errorf("a norm dict without tracks.pc: error %v, want one naming data.norm_dict and tracks.pc", err)
	}
}

// TestFlattenErrors checks that what a flatten pooling cannot have is an
// error naming the key and what to do.
func TestFlattenErrors(t *testing.T) {
	for _, c := range []struct {
		name, text string
		key, want  string
	}{
		{"no input", strings.Replace(r21xbb, "input = \"tracks\"\n", "", 1), "model.pooling.input", `input = "tracks"`},
		{"jet dataset as input", strings.Replace(r21xbb, `input = "tracks"`, `input = "jets"`, 1), "model.pooling.input", "not a constituent dataset"},
		{"no max_len", strings.Replace(r21xbb, "max_len = 5\n", "", 1), "model.pooling.max_len", "fixed number of constituents"},
		{"an init net", strings.Replace(r21xbb, "[model.encoder]", "[[model.init_nets]]\ninput = \"tracks\"\n[model.encoder]", 1), "model.init_nets", "remove the [[model.init_nets]]"},
		{"an encoder", strings.Replace(r21xbb, "layers = 0", "layers = 2", 1), "model.encoder.layers", "set layers = 0"},
		{"a second group", strings.Replace(r21xbb, `tracks = ["pb", "pc", "pu"]`, "tracks = [\"pb\", \"pc\", \"pu\"]\nflows = [\"pt\"]", 1), "data.variables", `reads "tracks" alone`},
		{"another embed_dim", strings.Replace(r21xbb, `name = "R21Xbb"`, "name = \"R21Xbb\"\nembed_dim = 16", 1), "model.embed_dim", "remove embed_dim"},
		{"a track task", r21xbb + "[[model.tasks]]\nname = \"origin\"\nkind = \"track_classification\"\ninput = \"tracks\"\nlabel = \"o\"\nclass_names = [\"a\", \"b\"]\n",
			"model.tasks.kind", "jet tasks"},
		{"head input size", strings.Replace(r21xbb, "input_size = 15", "input_size = 12", 1), "model.tasks.input_size", "reads 15 features"},
		{"input on attention pooling", strings.Replace(deepSets, "layers = 0", "layers = 0\n[model.pooling]\nkind = \"attention\"\nmax_len = 4", 1), "model.pooling", "remove them"},
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

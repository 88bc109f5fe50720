package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/graph/model"
)

// jetOnly is Salt's DL1 (configs/legacy/DL1.yaml) in salt-ort's keys: one
// init net on the jet dataset, no encoder and no pooling.
const jetOnly = `
[data]
train = ["train.h5"]
val = ["val.h5"]
norm_dict = "norm.yaml"
[data.variables]
jets = ["pt_btagJes", "eta_btagJes"]
[model]
name = "DL1"
embed_dim = 64
[[model.init_nets]]
input = "jets"
hidden = [128, 128, 128]
activation = "SiLU"
[model.encoder]
layers = 0
[model.pooling]
kind = "none"
[[model.tasks]]
name = "jets_classification"
kind = "jet_classification"
label = "flavour_label"
class_names = ["b", "c", "u"]
hidden = [128]
`

// deepSets is Salt's DIPS (configs/legacy/dips.yaml): an init net per
// track pooled without an encoder.
const deepSets = `
[data]
train = ["train.h5"]
val = ["val.h5"]
norm_dict = "norm.yaml"
[data.variables]
jets = ["pt_btagJes", "eta_btagJes"]
tracks = ["d0", "z0SinTheta"]
[model]
name = "DIPS"
embed_dim = 128
[[model.init_nets]]
input = "tracks"
max_len = 40
hidden = [256]
[model.encoder]
layers = 0
[[model.tasks]]
name = "jets_classification"
kind = "jet_classification"
label = "flavour_label"
class_names = ["b", "c", "u"]
hidden = [128, 64, 32]
input_size = 128
`

// TestModelKindsParse checks the specs of the kinds without an encoder and
// that their resolved configurations read back the same.
func TestModelKindsParse(t *testing.T) {
	for _, c := range []struct {
		name, text string
		check      func(t *testing.T, s model.Spec)
	}{
		{"jet only", jetOnly, func(t *testing.T, s model.Spec) {
			want := &model.JetInit{Name: "jets", Hidden: []int{128, 128, 128}, Activation: "silu", FinalActivation: "none"}
			if !reflect.DeepEqual(s.JetInit, want) || len(s.Inputs) != 0 || s.Pooling != model.NoPooling || s.HasEncoder() || s.Width() != 64 {
				t.Errorf("spec %+v", s)
			}
		}},
		{"deepsets", deepSets, func(t *testing.T, s model.Spec) {
			if s.JetInit != nil || len(s.Inputs) != 1 || s.Pooling != model.AttentionPooling || s.HasEncoder() || s.Width() != 128 || s.Encoder.Registers != 0 {
				t.Errorf("spec %+v", s)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse("model.toml", []byte(c.text))
			if err != nil {
				t.Fatal(err)
			}
			s, err := cfg.Spec(nil)
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, s)
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
		})
	}
}

// TestModelKindsErrors checks that inconsistent kinds are errors naming
// the key and what to do.
func TestModelKindsErrors(t *testing.T) {
	for _, c := range []struct {
		name, text string
		key, want  string
	}{
		{"jet net beside a constituent net", strings.Replace(deepSets, `[[model.init_nets]]`, "[[model.init_nets]]\ninput = \"jets\"\n[[model.init_nets]]", 1),
			"model.init_nets.input", "has no other init net"},
		{"jet net with attention pooling", strings.Replace(jetOnly, `kind = "none"`, `kind = "attention"`, 1), "model.pooling.kind", `set kind = "none"`},
		{"jet net with an encoder", strings.Replace(jetOnly, "layers = 0", "layers = 2", 1), "model.encoder.layers", "set layers = 0"},
		{"jet net with max_len", strings.Replace(jetOnly, `input = "jets"`, "input = \"jets\"\nmax_len = 3", 1), "model.init_nets.max_len", "remove max_len"},
		{"jet net attaching the jet variables", strings.Replace(jetOnly, `input = "jets"`, "input = \"jets\"\nattach_global = true", 1), "model.init_nets.attach_global", "set it false"},
		{"no pooling with constituents", strings.Replace(deepSets, "layers = 0", "layers = 0\n[model.pooling]\nkind = \"none\"", 1), "model.pooling.kind", "reads the jet variables alone"},
		{"unknown pooling", strings.Replace(deepSets, "layers = 0", "layers = 0\n[model.pooling]\nkind = \"sum\"", 1), "model.pooling.kind", `"attention"`},
		{"registers without an encoder", strings.Replace(deepSets, "layers = 0", "layers = 0\nregisters = 2", 1), "model.encoder.registers", "without an encoder"},
		{"heads without an encoder", strings.Replace(deepSets, "layers = 0", "layers = 0\nheads = 4", 1), "model.encoder.heads", "without an encoder"},
		{"negative layers", strings.Replace(deepSets, "layers = 0", "layers = -1", 1), "model.encoder.layers", "0 for no encoder"},
		{"track task of a jet-only model", jetOnly + "[[model.tasks]]\nname = \"origin\"\nkind = \"track_classification\"\ninput = \"jets\"\nlabel = \"o\"\nclass_names = [\"a\", \"b\"]\n",
			"model.tasks.input", "not a constituent dataset"},
		{"input size of a deepsets head", strings.Replace(deepSets, "input_size = 128", "input_size = 64", 1), "model.tasks.input_size", "reads 128 features"},
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

// TestEncoderOptions checks the keys of Salt's GN3 encoder options and
// their errors.
func TestEncoderOptions(t *testing.T) {
	gn3 := minimal + `[model.encoder]
gated = true
norm = "RMSNorm"
norm_type = "hybrid"
ls_init = 1e-3
drop_path = 0.1
`
	cfg, err := Parse("model.toml", []byte(gn3))
	if err != nil {
		t.Fatal(err)
	}
	s, err := cfg.Spec(nil)
	if err != nil {
		t.Fatal(err)
	}
	e := s.Encoder
	if !e.Gated || e.Norm != "rmsnorm" || e.NormType != "hybrid" || e.LayerScale != 1e-3 || e.DropPath != 0.1 {
		t.Errorf("encoder %+v", e)
	}
	qk, err := Parse("model.toml", []byte(minimal+"[model.encoder]\ndo_qk_norm = true\ndo_v_norm = true\nnorm_type = \"post\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := qk.Spec(nil); err != nil || !s.Encoder.QKNorm || !s.Encoder.VNorm || s.Encoder.NormType != "post" {
		t.Errorf("do_qk_norm, do_v_norm, post: %+v, %v", s.Encoder, err)
	}
	for _, c := range []struct {
		name, text, key, want string
	}{
		{"unknown norm", "[model.encoder]\nnorm = \"BatchNorm\"\n", "model.encoder.norm", `"RMSNorm"`},
		{"unknown norm type", "[model.encoder]\nnorm_type = \"sandwich\"\n", "model.encoder.norm_type", `"hybrid"`},
		{"drop path of 1", "[model.encoder]\ndrop_path = 1.0\n", "model.encoder.drop_path", "[0, 1)"},
		{"negative ls_init", "[model.encoder]\nls_init = -0.1\n", "model.encoder.ls_init", "0 for no LayerScale"},
		{"hybrid without qk norm", "[model.encoder]\nnorm_type = \"hybrid\"\ndo_qk_norm = false\n", "model.encoder.do_qk_norm", "remove do_qk_norm = false"},
		{"gated without an encoder", "[model.encoder]\nlayers = 0\ngated = true\n", "model.encoder.gated", "without an encoder"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("model.toml", []byte(minimal+c.text))
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != c.key || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want key %s and %q", err, c.key, c.want)
			}
		})
	}
}

// regression is minimal with a regression of two jet targets and one of
// each track's d0.
const regression = minimal + `[[model.tasks]]
name = "pt_regression"
kind = "regression"
targets = ["truth_pt", "truth_mass"]
%s
[[model.tasks]]
name = "track_d0"
kind = "gaussian_regression"
input = "tracks"
targets = ["truth_d0"]
%s
`

// TestRegressionKeys checks the keys of Salt's regression settings and
// the model they make.
func TestRegressionKeys(t *testing.T) {
	cfg, err := Parse("model.toml", []byte(fmt.Sprintf(regression,
		"target_denominators = [\"pt\", \"pt\"]\nsample_weight = \"w\"",
		"sample_weight = \"track_w\"\n[model.tasks.norm_params]\nmean = [0.0]\nstd = [0.5]")))
	if err != nil {
		t.Fatal(err)
	}
	s, err := cfg.Spec(nil)
	if err != nil {
		t.Fatal(err)
	}
	pt, d0 := s.Tasks[1], s.Tasks[2]
	if pt.Kind != model.JetRegression || !pt.SampleWeight || !pt.HasDenominators() || pt.Scaling[1].Denominator != "pt" {
		t.Errorf("jet regression %+v", pt)
	}
	if d0.Kind != model.ConstituentGaussianRegression || d0.Input != "tracks" || !d0.SampleWeight || d0.Scaling[0] != (model.TargetScaling{Op: model.NormScaling, Std: 0.5}) {
		t.Errorf("track regression %+v", d0)
	}
	log, err := Parse("model.toml", []byte(fmt.Sprintf(regression, "[model.tasks.scaler.truth_mass]\nop = \"log\"\nx_scale = 2.0", "")))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := log.Spec(nil); err != nil || s.Tasks[1].Scaling[0].Op != model.NoScaling ||
		s.Tasks[1].Scaling[1] != (model.TargetScaling{Op: model.LogScaling, XScale: 2, OpScale: 1}) {
		t.Errorf("scaler: %+v, %v", s.Tasks[1].Scaling, err)
	}
	for _, c := range []struct {
		name, jet, track, key, want string
	}{
		{"two scalings", "target_denominators = [\"pt\", \"pt\"]\n[model.tasks.norm_params]\nmean = [0.0, 0.0]\nstd = [1.0, 1.0]", "",
			"model.tasks.norm_params", "a single scaling method"},
		{"denominator not an input", "target_denominators = [\"pt\", \"mass\"]", "", "model.tasks.target_denominators", `"mass" is not an input variable of jets`},
		{"too few denominators", "target_denominators = [\"pt\"]", "", "model.tasks.target_denominators", "1 denominators for 2 targets"},
		{"norm params per target", "[model.tasks.norm_params]\nmean = [0.0]\nstd = [1.0]", "", "model.tasks.norm_params", "for 2 targets"},
		{"zero std", "[model.tasks.norm_params]\nmean = [0.0, 0.0]\nstd = [1.0, 0.0]", "", "model.tasks.norm_params", "must be positive"},
		{"scaler of no target", "[model.tasks.scaler.pt]\nop = \"log\"", "", "model.tasks.scaler", `"pt", which is not one of the targets`},
		{"unknown scaler op", "[model.tasks.scaler.truth_pt]\nop = \"sqrt\"", "", "model.tasks.scaler.truth_pt.op", `"linear"`},
		{"zero x_scale", "[model.tasks.scaler.truth_pt]\nop = \"linear\"\nx_scale = 0.0", "", "model.tasks.scaler.truth_pt.x_scale", "must not be 0"},
		{"log scaler of a Gaussian regression", "", "[model.tasks.scaler.truth_d0]\nop = \"log\"", "model.tasks.scaler.truth_d0.op", "spread cannot be scaled back"},
		{"track denominator of the jets", "", "target_denominators = [\"pt\"]", "model.tasks.target_denominators", "not an input variable of tracks"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("model.toml", []byte(fmt.Sprintf(regression, c.jet, c.track)))
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != c.key || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want key %s and %q", err, c.key, c.want)
			}
		})
	}
	_, err = Parse("model.toml", []byte(minimal+"sample_weight = \"w\"\n[[model.tasks]]\nname = \"vtx\"\nkind = \"vertexing\"\ninput = \"tracks\"\nlabel = \"v\"\nsample_weight = \"w\"\n"))
	var ce *Error
	if !errors.As(err, &ce) || ce.Key != "model.tasks.sample_weight" || !strings.Contains(err.Error(), "vertexing weighs pairs") {
		t.Errorf("sample_weight of a vertexing task: %v", err)
	}
}

// edges is minimal with Salt's edge features between the tracks (GN3's
// dR configurations): %s replaces the edge constructor's lines, %s the
// encoder's.
const edges = `
[data]
train = ["train.h5"]
val = ["val.h5"]
norm_dict = "norm.yaml"
[data.variables]
jets = ["pt"]
tracks = ["d0", "deta", "dphi", "pt"]
[[data.edge_constructors]]
input = "tracks"
%s
[[model.init_nets]]
input = "tracks"
max_len = 10
[[model.edge_init_nets]]
input = "tracks"
hidden = [32]
activation = "SiLU"
[model.encoder]
%s
[[model.tasks]]
name = "jets_classification"
kind = "jet_classification"
label = "flavour_label"
class_names = ["b", "c", "u"]
`

// TestEdgeKeys checks the keys of Salt's edge features and their errors.
func TestEdgeKeys(t *testing.T) {
	good := "edge_features = [\"dR\", \"kt\", \"z\", \"isSelfLoop\"]\n[data.edge_constructors.variables]\neta = \"deta\"\nphi = \"dphi\""
	cfg, err := Parse("model.toml", []byte(fmt.Sprintf(edges, good, "edge_embed_dim = 32\nupdate_edges = true")))
	if err != nil {
		t.Fatal(err)
	}
	s, err := cfg.Spec(nil)
	if err != nil {
		t.Fatal(err)
	}
	e := s.Edges
	if e == nil || e.Input != "tracks" || len(e.Features) != 4 || e.Variable("eta") != "deta" || e.Variable("pt") != "pt" || e.Hidden[0] != 32 ||
		s.Encoder.EdgeDim != 32 || !s.Encoder.UpdateEdges {
		t.Fatalf("edges %+v, encoder %+v", e, s.Encoder)
	}
	enc, err := cfg.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if back, err := Parse("resolved.toml", enc); err != nil {
		t.Fatalf("resolved configuration: %v", err)
	} else if s2, _ := back.Spec(nil); !reflect.DeepEqual(s2.Edges, s.Edges) {
		t.Errorf("resolved edges %+v, want %+v", s2.Edges, s.Edges)
	}
	for _, c := range []struct {
		name, ec, enc, key, want string
	}{
		{"variable not an input", "edge_features = [\"dR\"]", "edge_embed_dim = 32", "data.edge_constructors", `need eta, read from "eta", which is not an input variable of tracks`},
		{"unknown feature", "edge_features = [\"deltaR\"]", "edge_embed_dim = 32", "data.edge_constructors.edge_features", `"deltaR" is unknown`},
		{"no edge width", good, "", "model.encoder.edge_embed_dim", "set edge_embed_dim"},
		{"mapping an unneeded variable", "edge_features = [\"z\"]\n[data.edge_constructors.variables]\neta = \"deta\"", "edge_embed_dim = 32", "data.edge_constructors.variables", "none of the edge features z needs eta"},
		{"no encoder", good, "layers = 0\nedge_embed_dim = 32", "model.encoder.edge_embed_dim", "without an encoder"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("model.toml", []byte(fmt.Sprintf(edges, c.ec, c.enc)))
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != c.key || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want key %s and %q", err, c.key, c.want)
			}
		})
	}
	noNet := strings.Replace(fmt.Sprintf(edges, good, "edge_embed_dim = 32"), "[[model.edge_init_nets]]\ninput = \"tracks\"\nhidden = [32]\nactivation = \"SiLU\"\n", "", 1)
	if _, err := Parse("model.toml", []byte(noNet)); err == nil || !strings.Contains(err.Error(), "model.edge_init_nets: the edge features of [[data.edge_constructors]] need an edge init net") {
		t.Errorf("edge features without an edge init net: %v", err)
	}
	second := strings.Replace(fmt.Sprintf(edges, good, "edge_embed_dim = 32"), "[[model.init_nets]]\ninput = \"tracks\"", "[[model.init_nets]]\ninput = \"flows\"\nmax_len = 5\n[[model.init_nets]]\ninput = \"tracks\"", 1)
	second = strings.Replace(second, "tracks = [", "flows = [\"pt\"]\ntracks = [", 1)
	if _, err := Parse("model.toml", []byte(second)); err == nil || !strings.Contains(err.Error(), "must be the dataset of the first [[model.init_nets]] entry") {
		t.Errorf("edges of the second group: %v", err)
	}
}

// parameterised is minimal conditioned on a mass hypothesis (Salt's
// parameters documentation): %s replaces the parameter's table, %s the
// featurewise nets.
const parameterised = `
[data]
train = ["train.h5"]
val = ["val.h5"]
norm_dict = "norm.yaml"
[data.variables]
jets = ["pt", "eta"]
tracks = ["d0", "z0"]
parameters = ["mass"]
%s
[[model.init_nets]]
input = "tracks"
max_len = 10
[[model.tasks]]
name = "jets_classification"
kind = "jet_classification"
label = "flavour_label"
class_names = ["b", "c", "u"]
%s
`

const massParameter = "[data.parameters.mass]\ntrain = [5.0, 16.0, 55.0]\ntest = 40.0\nprob = [0.2, 0.3, 0.5]"

const featurewiseNets = `[[model.featurewise_nets]]
layer = "input"
[model.featurewise_nets.dense_config_scale]
hidden = [4]
output_size = 4
[model.featurewise_nets.dense_config_bias]
hidden = [4]
[[model.featurewise_nets]]
layer = "encoder"
apply_norm = true
[model.featurewise_nets.dense_config_scale]
hidden = [128]
[[model.featurewise_nets]]
layer = "global"
[model.featurewise_nets.dense_config_scale]
hidden = [64]
final_activation = "Sigmoid"`

// TestConditioningKeys checks the keys of Salt's parameters and
// featurewise nets, and their errors.
func TestConditioningKeys(t *testing.T) {
	cfg, err := Parse("model.toml", []byte(fmt.Sprintf(parameterised, massParameter, featurewiseNets)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := cfg.Spec(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []model.Parameter{{Name: "mass", Train: []float64{5, 16, 55}, Prob: []float64{0.2, 0.3, 0.5}, Test: 40}}
	if !reflect.DeepEqual(s.Parameters, want) || len(s.Featurewise) != 3 || !s.Featurewise[1].Norm || s.Featurewise[2].Scale.FinalActivation != "sigmoid" ||
		slices.Contains(s.JetVars, "mass") {
		t.Errorf("parameters %+v, featurewise %+v, jet variables %v", s.Parameters, s.Featurewise, s.JetVars)
	}
	for _, c := range []struct {
		name, params, nets, key, want string
	}{
		{"no parameter table", "", "", "data.parameters", "has no [data.parameters.mass] table"},
		{"no test value", "[data.parameters.mass]\ntrain = [5.0]", "", "data.parameters.mass.test", "missing"},
		{"probabilities per value", "[data.parameters.mass]\ntrain = [5.0, 16.0]\ntest = 5.0\nprob = [1.0]", "", "data.parameters.mass.prob", "1 probabilities for 2 train values"},
		{"probabilities not summing to one", "[data.parameters.mass]\ntrain = [5.0, 16.0]\ntest = 5.0\nprob = [0.5, 0.6]", "", "data.parameters.mass.prob", "sum to 1.1"},
		{"a table of no parameter", massParameter + "\n[data.parameters.pt]\ntrain = [1.0]\ntest = 1.0", "", "data.parameters", `"pt" is not listed`},
		{"unknown layer", massParameter, "[[model.featurewise_nets]]\nlayer = \"pooling\"\n[model.featurewise_nets.dense_config_bias]\nhidden = [4]", "model.featurewise_nets.layer", `"global"`},
		{"neither network", massParameter, "[[model.featurewise_nets]]\nlayer = \"global\"", "model.featurewise_nets", "needs dense_config_scale or dense_config_bias"},
		{"wrong output size", massParameter, "[[model.featurewise_nets]]\nlayer = \"global\"\n[model.featurewise_nets.dense_config_bias]\noutput_size = 64", "model.featurewise_nets.dense_config_bias.output_size", "64, but the global layer has [128] features"},
		{"two nets of a layer", massParameter, "[[model.featurewise_nets]]\nlayer = \"global\"\n[model.featurewise_nets.dense_config_bias]\nhidden = [4]\n[[model.featurewise_nets]]\nlayer = \"global\"\n[model.featurewise_nets.dense_config_scale]\nhidden = [4]", "model.featurewise_nets.layer", "two featurewise nets of the global layer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("model.toml", []byte(fmt.Sprintf(parameterised, c.params, c.nets)))
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != c.key || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want key %s and %q", err, c.key, c.want)
			}
		})
	}
	noParams := strings.Replace(fmt.Sprintf(parameterised, "", featurewiseNets), "parameters = [\"mass\"]\n", "", 1)
	if _, err := Parse("model.toml", []byte(noParams)); err == nil || !strings.Contains(err.Error(), "list them in [data.variables] parameters") {
		t.Errorf("featurewise nets without parameters: %v", err)
	}
}

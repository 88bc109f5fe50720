package saltimport_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph/nn"
	"github.com/salt-ort/salt-ort/internal/testkit/salttwin"
	"github.com/salt-ort/salt-ort/run"
	"github.com/salt-ort/salt-ort/saltimport"
)

// gn2v01Dense is the legacy twin's dense block as GN2v01 configured
// Salt's TransformerEncoder (hidden_layers, dropout 0.1, so the Linear
// layers sit at net.1, net.4, net.7), with two hidden layers and SiLU so
// that sizes and activation must come from the configuration.
var gn2v01Dense = salttwin.Legacy{Hidden: []int{48, 40}, Dropout: 0.1, Activation: "SiLU", AttnDropout: 0.1}

// TestLegacyEncoderImportsAndEvaluates imports a GN2 with Salt's legacy
// TransformerEncoder (config.yaml and Lightning checkpoint of the PyTorch
// twin) and compares salt-ort's evaluation of it with PyTorch's.
func TestLegacyEncoderImportsAndEvaluates(t *testing.T) {
	tw := salttwin.BuildLegacy(t, t.TempDir(), gn2v01Dense)
	runDir := importTwin(t, tw)
	cfg, err := config.Load(filepath.Join(runDir, run.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.Model.Encoder
	if e.Kind != "legacy" || e.Layers != 2 || e.Heads != 4 || e.OutDim != 16 || e.Registers != 0 ||
		!reflect.DeepEqual(e.Hidden, gn2v01Dense.Hidden) || e.Dropout != 0.1 || e.AttnDropout != 0.1 || e.Activation != "SiLU" {
		t.Errorf("imported encoder %+v", e)
	}
	evalMatchesTorch(t, tw, runDir, 1e-5)
}

// TestLegacyEncoderWithoutOutProj imports a legacy-encoder twin whose
// attention has no output projection (mha_config.out_proj false, as
// Salt's legacy SubjetXbb configuration sets it) and compares salt-ort's
// evaluation of it with PyTorch's.
func TestLegacyEncoderWithoutOutProj(t *testing.T) {
	tw := salttwin.BuildLegacy(t, t.TempDir(), salttwin.Legacy{NoOutProj: true})
	runDir := importTwin(t, tw)
	cfg, err := config.Load(filepath.Join(runDir, run.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Model.Encoder.OutProj {
		t.Errorf("imported encoder has out_proj = true")
	}
	evalMatchesTorch(t, tw, runDir, 1e-5)
}

// TestLegacyEncoderTrainingStep resumes a legacy-encoder twin without
// dropout (so that both sides take the same step) for one step and
// compares every parameter with PyTorch's after it; the dense block has
// Salt's default size (hidden_dim_scale).
func TestLegacyEncoderTrainingStep(t *testing.T) {
	tw := salttwin.BuildLegacy(t, t.TempDir(), salttwin.Legacy{})
	stepMatchesTorch(t, tw, importTwin(t, tw))
}

// TestLegacyParameterCount checks that a legacy encoder has the parameter
// count of the PyTorch twin's, at GN2's sizes.
func TestLegacyParameterCount(t *testing.T) {
	cfg, err := config.Load("../examples/gn2.toml")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := cfg.Spec(cfg.UniformClassWeights)
	if err != nil {
		t.Fatal(err)
	}
	spec.Encoder = nn.EncoderConfig{Kind: nn.LegacyKind, Layers: 4, Heads: 8, DenseRatio: 2, Hidden: []int{512}, Activation: nn.ReLU, OutDim: 128, Dropout: 0.1}
	_, layout, err := spec.Eval(1)
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	for _, p := range layout {
		size += p.Size
	}
	want := salttwin.CountLegacy(t, map[string]any{
		"jet_vars": spec.JetVars, "track_vars": spec.Inputs[0].Vars, "embed": spec.EmbedDim,
		"init_hidden": spec.Inputs[0].InitHidden, "layers": 4, "heads": 8,
		"out_dim": 128, "task_hidden": spec.Tasks[0].Hidden,
	}, salttwin.Legacy{Hidden: []int{512}, Dropout: 0.1})
	t.Logf("GN2 with the legacy encoder: salt-ort %d parameters, the PyTorch twin %d", size, want)
	if size != want {
		t.Errorf("salt-ort's GN2 with the legacy encoder has %d parameters, the twin %d", size, want)
	}
}

// TestLegacyEncoderConfigRefused checks that the legacy encoder's init
// args salt-ort does not carry are refused, each by its key.
func TestLegacyEncoderConfigRefused(t *testing.T) {
	base, err := os.ReadFile("testdata/gn2-legacy-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const enc = "model.model.init_args.encoder.init_args."
	for _, c := range []struct {
		name, from, to, key, want string
	}{
		{"GATv2 attention", "class_path: salt.models.ScaledDotProductAttention", "class_path: salt.models.GATv2Attention",
			enc + "mha_config.attention.class_path", "ScaledDotProductAttention"},
		{"edge features", "edge_embed_dim: 0", "edge_embed_dim: 16", enc + "edge_embed_dim", "no edge features"},
		{"context", "context_dim: 0", "context_dim: 4", enc + "context_dim", "no context"},
		{"final activation", "activation: ReLU\n            final_activation: null\n            dropout: 0.1", "activation: ReLU\n            final_activation: ReLU\n            dropout: 0.1", enc + "dense_config.final_activation", "no activation after its last layer"},
		{"output projection not a boolean", "out_proj: true", "out_proj: 2", enc + "mha_config.out_proj", "not true or false"},
		{"mup", "update_edges: false\n          mup: false", "update_edges: false\n          mup: true", enc + "mup", "muP"},
		{"no dense block", "          dense_config:\n            hidden_layers:", "          dense_config: null\n          unused:\n            hidden_layers:", enc + "dense_config", "without a dense block"},
	} {
		t.Run(c.name, func(t *testing.T) {
			text := strings.Replace(string(base), c.from, c.to, 1)
			if text == string(base) {
				t.Fatalf("testdata has no %q", c.from)
			}
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := saltimport.Convert(path, []byte(text), saltimport.ConvertOptions{MaxLen: map[string]int{"tracks": 40}})
			if err == nil || !strings.Contains(err.Error(), c.key+":") || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one naming %s with %q", err, c.key, c.want)
			}
		})
	}
}

// TestLegacyEncoderConfig checks the conversion of Salt's GN2 with the
// legacy encoder (GN2.yaml before 2026, GN2v01's dense block) into
// salt-ort's keys.
func TestLegacyEncoderConfig(t *testing.T) {
	data, err := os.ReadFile("testdata/gn2-legacy-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := saltimport.Convert("testdata/gn2-legacy-config.yaml", data, saltimport.ConvertOptions{MaxLen: map[string]int{"tracks": 40}})
	if err != nil {
		t.Fatal(err)
	}
	want := config.Encoder{Kind: "legacy", Layers: 4, Heads: 8, OutDim: 128, Hidden: []int{512}, DenseRatio: 2, Activation: "ReLU",
		Dropout: 0.1, FinalNorm: true, OutProj: true, Norm: "LayerNorm", NormType: "pre"}
	if got := out.Config.Model.Encoder; !reflect.DeepEqual(got, want) {
		t.Errorf("encoder %+v, want %+v", got, want)
	}
}

// TestCrossAttentionEncoderConfig checks the conversion of Salt's
// TransformerCrossAttentionEncoder over tracks and neutral constituents
// into kind = "cross_attention", and its refusals.
func TestCrossAttentionEncoderConfig(t *testing.T) {
	base, err := os.ReadFile("testdata/gn2-ca-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	opts := saltimport.ConvertOptions{MaxLen: map[string]int{"tracks": 40, "neutral": 20}}
	out, err := saltimport.Convert("testdata/gn2-ca-config.yaml", base, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := config.Encoder{Kind: "cross_attention", Layers: 4, Heads: 8, OutDim: 128, Hidden: []int{512}, DenseRatio: 2, Activation: "ReLU",
		Dropout: 0.1, FinalNorm: true, OutProj: true, Norm: "LayerNorm", NormType: "pre"}
	if got := out.Config.Model.Encoder; !reflect.DeepEqual(got, want) {
		t.Errorf("encoder %+v, want %+v", got, want)
	}
	const enc = "model.model.init_args.encoder.init_args."
	for _, c := range []struct {
		name, from, to, key, want string
	}{
		{"groups in another order", "input_names:\n          - tracks\n          - neutral", "input_names:\n          - neutral\n          - tracks", enc + "input_names", "in their order"},
		{"dense blocks that differ", "ca_dense_config:\n            hidden_layers:\n            - 512", "ca_dense_config:\n            hidden_layers:\n            - 256", enc + "ca_dense_config", "make the two equal"},
		{"one layer", "num_layers: 4", "num_layers: 1", enc + "num_layers", "two or more layers"},
		{"no cross-attention dense block", "ca_dense_config:\n            hidden_layers:", "ca_dense_config: null\n          unused:\n            hidden_layers:", enc + "ca_dense_config", "give ca_dense_config"},
		{"mup", "update_edges: false\n          mup: false", "update_edges: false\n          mup: true", enc + "mup", "μP"},
	} {
		t.Run(c.name, func(t *testing.T) {
			text := strings.Replace(string(base), c.from, c.to, 1)
			if text == string(base) {
				t.Fatalf("testdata has no %q", c.from)
			}
			_, err := saltimport.Convert("config.yaml", []byte(text), opts)
			if err == nil || !strings.Contains(err.Error(), c.key+":") || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one naming %s with %q", err, c.key, c.want)
			}
		})
	}
}

// TestCrossAttentionImportsAndEvaluates imports a GN2 with Salt's
// TransformerCrossAttentionEncoder over tracks and flows (config.yaml and
// Lightning checkpoint of the PyTorch twin) and compares salt-ort's
// evaluation of it with PyTorch's, with cross-attention after the first
// and last of three layers and after each of two.
func TestCrossAttentionImportsAndEvaluates(t *testing.T) {
	for _, c := range []salttwin.CrossAttention{
		{Legacy: salttwin.Legacy{Hidden: []int{48}, Dropout: 0.1, AttnDropout: 0.1}, Flows: 6, Layers: 3},
		{Legacy: salttwin.Legacy{Activation: "SiLU"}, Flows: 6, CAEveryLayer: true},
	} {
		t.Run(fmt.Sprintf("ca_every_layer=%v", c.CAEveryLayer), func(t *testing.T) {
			tw := salttwin.BuildCrossAttention(t, t.TempDir(), c)
			runDir := importTwin(t, tw)
			cfg, err := config.Load(filepath.Join(runDir, run.ConfigFile))
			if err != nil {
				t.Fatal(err)
			}
			if e := cfg.Model.Encoder; e.Kind != "cross_attention" || e.CAEveryLayer != c.CAEveryLayer {
				t.Errorf("imported encoder %+v", e)
			}
			evalMatchesTorch(t, tw, runDir, 1e-5)
		})
	}
}

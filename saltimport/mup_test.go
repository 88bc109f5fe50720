package saltimport

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/nn"
)

// muPConfig is Salt's GN2 config.yaml with GN2_muP.yaml's μP settings:
// mup on the init net's Dense and on the encoder, and mup_config scaling
// the embedding width from a base of 256 (delta 8).
func muPConfig(t *testing.T) map[string]any {
	t.Helper()
	m := gn2Config(t)
	set(t, m, "model.model.init_args.init_nets.0.dense_config.mup", true)
	set(t, m, "model.model.init_args.encoder.init_args.mup", true)
	set(t, m, "model.mup_config", map[string]any{
		"shape_path": "./shape_mup",
		"embed_dim": map[string]any{
			"apply_to":        []any{"init_nets", "encoder"},
			"parameter_name":  []any{"output_size", "embed_dim"},
			"parameter_base":  256,
			"parameter_delta": 8,
		},
	})
	return m
}

// TestConvertMuP checks that Salt's μP keys become salt-ort's: mup on the
// init net and the encoder, the base width from parameter_base (the shape
// directory, absent here, noted), and from the shape file when present.
func TestConvertMuP(t *testing.T) {
	conv, err := convert(t, muPConfig(t), ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := conv.Config.Model
	if !m.InitNets[0].MuP || !m.Encoder.MuP {
		t.Errorf("mup: init net %v, encoder %v; want both true", m.InitNets[0].MuP, m.Encoder.MuP)
	}
	if m.MuPConfig == nil || m.MuPConfig.BaseEmbedDim != 256 || m.MuPConfig.ShapePath != "" {
		t.Fatalf("mup_config = %+v, want base_embed_dim 256 and no shape_path", m.MuPConfig)
	}
	if !strings.Contains(strings.Join(conv.Notes, "\n"), "shape_mup is not here") {
		t.Errorf("no note on the missing shape directory:\n%s", strings.Join(conv.Notes, "\n"))
	}

	// With the base shapes Salt's main_muP writes, beside the config.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "shape_mup"), 0o755); err != nil {
		t.Fatal(err)
	}
	shapes := "encoder.layers.0.attn.in_proj_weight:\n- 768\n- 256\nencoder.layers.0.attn.in_proj_bias:\n- 768\n"
	if err := os.WriteFile(filepath.Join(dir, "shape_mup", "storeshapes"), []byte(shapes), 0o644); err != nil {
		t.Fatal(err)
	}
	m2 := muPConfig(t)
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	conv, err = convert(t, m2, ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if mc := conv.Config.Model.MuPConfig; mc.ShapePath != filepath.Join(dir, "shape_mup") {
		t.Errorf("shape_path = %q, want %q", mc.ShapePath, filepath.Join(dir, "shape_mup"))
	}
}

// TestConvertMuPRejects checks the μP settings salt-ort cannot carry, each
// named by its key.
func TestConvertMuPRejects(t *testing.T) {
	const ia = "model.model.init_args."
	cases := []struct {
		key   string
		value any
		want  string
	}{
		{"model.mup_config.embed_dim.apply_to", []any{"init_nets", "pool_net"}, "embedding width alone"},
		{"model.mup_config.embed_dim.parameter_delta", 256, "other than parameter_base"},
		{ia + "tasks.init_args.modules.0.init_args.dense_config.mup", true, "task heads"},
		{ia + "init_nets.0.mup", true, "set dense_config.mup"},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			m := muPConfig(t)
			set(t, m, c.key, c.value)
			_, err := convert(t, m, ConvertOptions{})
			var ce *ConfigError
			if !errors.As(err, &ce) || !names(err, c.key) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%s = %v: got %v, want an error naming the key with %q", c.key, c.value, err, c.want)
			}
		})
	}
}

// TestMuAdamWOrder checks the order MuAdamW's parameter groups give the
// parameters of a μP model (width_mult 2), and the checkpoints whose
// groups do not fit it.
func TestMuAdamWOrder(t *testing.T) {
	s := model.GN2()
	s.Inputs[0].InitHidden = []int{8}
	s.EmbedDim = 8
	s.Encoder = nn.EncoderConfig{Layers: 1, Heads: 2, DenseRatio: 2, Activation: nn.ReLU, Registers: 1, OutDim: 6, MuP: true}
	s.MuP = &model.MuP{BaseEmbedDim: 4}
	params := Params(s)
	bySalt := map[string]Param{}
	var order []string
	for _, p := range params {
		bySalt[p.Salt] = p
		order = append(order, p.Salt)
	}
	const enc = "model.encoder.layers.0."
	matrices := []string{enc + "attn.fn.in_proj_weight", enc + "attn.fn.out_proj.weight", enc + "dense.fn.in_proj.weight", enc + "dense.fn.out_proj.weight"}
	n := len(order)
	good := []ParamGroup{{Size: 4, Settings: map[string]float64{"weight_decay": 2e-5}}, {Size: n - 4, Settings: map[string]float64{"weight_decay": 1e-5}}}
	got, err := muAdamWOrder(order, good, bySalt, s)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got[:4], matrices) || len(got) != n {
		t.Fatalf("order starts %v (%d in all), want the encoder's matrices %v first", got[:4], len(got), matrices)
	}
	noMuP := s
	noMuP.MuP = nil
	cases := []struct {
		name   string
		groups []ParamGroup
		spec   model.Spec
		want   string
	}{
		{"no mup_config", good, noMuP, "no model.mup_config"},
		{"other sizes", []ParamGroup{{Size: 2, Settings: good[0].Settings}, {Size: n - 2, Settings: good[1].Settings}}, s, "base widths"},
		{"unscaled decay", []ParamGroup{{Size: 4, Settings: good[1].Settings}, good[1]}, s, "weight_decay"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := muAdamWOrder(order, c.groups, bySalt, c.spec); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// muPText is minimal with Salt's μP: mup on the init net and the encoder,
// and the base widths.
func muPText(encoder, mupConfig string) string {
	text := strings.Replace(minimal, "max_len = 10\n", "max_len = 10\nmup = true\n", 1)
	return text + "[model.encoder]\nheads = 8\n" + encoder + "\n[model.mup_config]\n" + mupConfig + "\n"
}

// TestMuPKeys checks that the μP keys reach the model, that the resolved
// configuration reads back the same, and that the base width comes from
// shape_path (Salt's base shapes file) when it is given.
func TestMuPKeys(t *testing.T) {
	c, err := Parse("mup.toml", []byte(muPText("mup = true\nout_dim = 32", "base_embed_dim = 128")))
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Spec(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Inputs[0].MuP || !s.Encoder.MuP || s.MuP == nil || s.MuP.BaseEmbedDim != 128 {
		t.Errorf("spec: init net mup %v, encoder mup %v, base %+v", s.Inputs[0].MuP, s.Encoder.MuP, s.MuP)
	}
	enc, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("resolved.toml", enc)
	if err != nil {
		t.Fatalf("resolved config does not parse: %v\n%s", err, enc)
	}
	if !reflect.DeepEqual(back.Model, c.Model) {
		t.Errorf("resolved config does not round-trip:\n%s", enc)
	}

	dir := t.TempDir()
	shapes := "# Base shapes are encoded in yaml\nencoder.layers.0.attn.fn.in_proj_weight:\n- 192\n- 64\nencoder.layers.1.attn.fn.in_proj_weight:\n- 192\n- 64\nencoder.out_proj.weight:\n- null\n- 64\n"
	if err := os.MkdirAll(filepath.Join(dir, "shape_mup"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "shape_mup", "storeshapes"), []byte(shapes), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "mup.toml")
	for _, tc := range []struct {
		mc      string
		base    int
		wantErr string
	}{
		{`shape_path = "shape_mup"`, 64, ""},
		{`shape_path = "shape_mup/storeshapes"`, 64, ""},
		{"shape_path = \"shape_mup\"\nbase_embed_dim = 64", 64, ""},
		{"shape_path = \"shape_mup\"\nbase_embed_dim = 128", 0, "model.mup_config.base_embed_dim"},
		{`shape_path = "elsewhere"`, 0, "model.mup_config.shape_path"},
	} {
		c, err := Parse(path, []byte(muPText("mup = true\nout_dim = 32", tc.mc)))
		if tc.wantErr != "" {
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != tc.wantErr {
				t.Errorf("%q: err = %v, want one naming %s", tc.mc, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.mc, err)
		}
		if base, err := c.MuPBaseEmbedDim(); err != nil || base != tc.base {
			t.Errorf("%q: base %d, %v; want %d", tc.mc, base, err, tc.base)
		}
	}
}

// TestMuPErrors checks that bad μP settings are errors naming the key.
func TestMuPErrors(t *testing.T) {
	cases := []struct {
		name, text, key, want string
	}{
		{"encoder mup without mup_config", minimal + "[model.encoder]\nmup = true\nout_dim = 32\n",
			"model.encoder.mup", "[model.mup_config]"},
		{"no readout", muPText("mup = true\nout_dim = 0", "base_embed_dim = 128"), "model.encoder.mup", "out_dim"},
		{"no base width", muPText("mup = true\nout_dim = 32", "lr_scaling = \"salt\""), "model.mup_config.base_embed_dim", "parameter_base"},
		{"base not divisible by heads", muPText("mup = true\nout_dim = 32", "base_embed_dim = 12"), "model.mup_config.base_embed_dim", "divisible"},
		{"unknown scaling", muPText("mup = true\nout_dim = 32", "base_embed_dim = 128\nlr_scaling = \"fast\""), "model.mup_config.lr_scaling", "\"salt\""},
		{"legacy encoder", muPText("mup = true\nout_dim = 32\nkind = \"legacy\"", "base_embed_dim = 128"), "model.encoder.mup", "legacy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("mup.toml", []byte(c.text))
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != c.key || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one naming %s with %q", err, c.key, c.want)
			}
		})
	}
}

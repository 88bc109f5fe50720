package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/salt-ort/salt-ort/graph/nn"
)

// TestLegacyEncoder checks model.encoder.kind = "legacy" (Salt's
// TransformerEncoder): its keys reach the model, it has no registers
// unless asked for (and then refuses them), the resolved configuration
// reads back the same, and the later Transformer's options are refused
// with the key named.
func TestLegacyEncoder(t *testing.T) {
	legacy := minimal + `[model.encoder]
kind = "legacy"
layers = 2
heads = 4
out_dim = 64
hidden = [512, 128]
dropout = 0.1
attn_dropout = 0.05
out_proj = false
`
	cfg, err := Parse("model.toml", []byte(legacy))
	if err != nil {
		t.Fatal(err)
	}
	s, err := cfg.Spec(nil)
	if err != nil {
		t.Fatal(err)
	}
	e := s.Encoder
	if e.Kind != nn.LegacyKind || e.Layers != 2 || e.Heads != 4 || e.OutDim != 64 || e.Registers != 0 ||
		!reflect.DeepEqual(e.Hidden, []int{512, 128}) || e.Dropout != 0.1 || e.AttnDropout != 0.05 || e.Activation != nn.ReLU || !e.NoOutProj {
		t.Errorf("legacy encoder %+v", e)
	}
	enc, err := cfg.Encode()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse("resolved.toml", enc)
	if err != nil {
		t.Fatalf("resolved configuration does not read back: %v\n%s", err, enc)
	}
	if !reflect.DeepEqual(again.Model.Encoder, cfg.Model.Encoder) {
		t.Errorf("resolved encoder %+v, want %+v", again.Model.Encoder, cfg.Model.Encoder)
	}
	// The default encoder's resolved form does not mention the new keys.
	plain, err := Parse("model.toml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	enc, err = plain.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var resolved map[string]any
	if err := toml.Unmarshal(enc, &resolved); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"kind", "hidden"} {
		if v, ok := resolved["model"].(map[string]any)["encoder"].(map[string]any)[k]; ok {
			t.Errorf("resolved default configuration has model.encoder.%s = %v", k, v)
		}
	}
	for _, c := range []struct {
		name, text, key, want string
	}{
		{"unknown kind", "kind = \"gpt\"\n", "model.encoder.kind", `"legacy"`},
		{"hidden without legacy", "hidden = [64]\n", "model.encoder.hidden", `kind = "legacy"`},
		{"out_proj without legacy", "out_proj = false\n", "model.encoder.out_proj", `kind = "legacy"`},
		{"registers", "kind = \"legacy\"\nregisters = 1\n", "model.encoder.registers", "has no registers"},
		{"gated", "kind = \"legacy\"\ngated = true\n", "model.encoder.gated", "has no gated"},
		{"rmsnorm", "kind = \"legacy\"\nnorm = \"RMSNorm\"\n", "model.encoder.norm", "has no norm"},
		{"post-norm", "kind = \"legacy\"\nnorm_type = \"post\"\n", "model.encoder.norm_type", "has no norm_type"},
		{"no final norm", "kind = \"legacy\"\nfinal_norm = false\n", "model.encoder.final_norm", "has no final_norm"},
		{"layerscale", "kind = \"legacy\"\nls_init = 0.1\n", "model.encoder.ls_init", "has no ls_init"},
		{"drop path", "kind = \"legacy\"\ndrop_path = 0.1\n", "model.encoder.drop_path", "has no drop_path"},
		{"qk norm", "kind = \"legacy\"\ndo_qk_norm = true\n", "model.encoder.do_qk_norm", "has no do_qk_norm"},
		{"edges", "kind = \"legacy\"\nedge_embed_dim = 8\n", "model.encoder.edge_embed_dim", "has no edge_embed_dim"},
		{"zero hidden size", "kind = \"legacy\"\nhidden = [64, 0]\n", "model.encoder.hidden", "at least 1"},
		{"kind without an encoder", "layers = 0\nkind = \"legacy\"\n", "model.encoder.kind", "without an encoder"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("model.toml", []byte(minimal+"[model.encoder]\n"+c.text))
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != c.key || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want key %s and %q", err, c.key, c.want)
			}
		})
	}
}

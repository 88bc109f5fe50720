package train

import (
	"testing"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph/optim"
)

// muPTOML is a small μP model, 32 wide over a base of 16 (width_mult 2).
const muPTOML = `
[data]
train = ["train.h5"]
val = ["val.h5"]
norm_dict = "norm.yaml"
[data.variables]
jets = ["pt"]
tracks = ["d0", "z0"]
[model]
embed_dim = 32
[[model.init_nets]]
input = "tracks"
max_len = 4
hidden = [8]
mup = true
[model.encoder]
layers = 1
heads = 2
out_dim = 8
mup = true
[model.mup_config]
base_embed_dim = 16
`

// TestMuPScales checks the AdamW scales training uses: the encoder's
// matrices only, their weight decay times 2, their learning rate halved
// with lr_scaling = "mup" and kept as Salt's OneCycleLR keeps it
// otherwise; none for Lion, which Salt does not scale.
func TestMuPScales(t *testing.T) {
	matrices := []string{"encoder/layer0/attn/in_proj/weight", "encoder/layer0/attn/out_proj/weight", "encoder/layer0/dense/0/weight", "encoder/layer0/dense/1/weight"}
	const task = "[[model.tasks]]\nname = \"jets_classification\"\nkind = \"jet_classification\"\nlabel = \"flavour_label\"\nclass_names = [\"b\", \"c\", \"u\"]\n"
	cases := []struct {
		name     string
		mup      string // more [model.mup_config] keys
		training string // [training] tables
		want     optim.ParamScale
		none     bool
	}{
		{"salt", "", "", optim.ParamScale{LR: 1, WeightDecay: 2}, false},
		{"mup", "lr_scaling = \"mup\"\n", "", optim.ParamScale{LR: 0.5, WeightDecay: 2}, false},
		{"lion", "", "[training.optimizer]\nname = \"lion\"\n", optim.ParamScale{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := config.Parse("mup.toml", []byte(muPTOML+c.mup+task+c.training))
			if err != nil {
				t.Fatal(err)
			}
			spec, err := cfg.Spec(nil)
			if err != nil {
				t.Fatal(err)
			}
			scales, err := muPScales(spec, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if c.none {
				if len(scales) != 0 {
					t.Fatalf("scales %v, want none", scales)
				}
				return
			}
			if len(scales) != len(matrices) {
				t.Fatalf("scales %v, want the %d encoder matrices", scales, len(matrices))
			}
			for _, m := range matrices {
				if scales[m] != c.want {
					t.Errorf("%s: %+v, want %+v", m, scales[m], c.want)
				}
			}
		})
	}
}

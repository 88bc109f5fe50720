package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/nn"
)

// maskFormer is Salt's MaskFormer.yaml in salt-ort's keys, on minimal's
// tracks (embed_dim 256).
const maskFormer = minimal + `
[model.mask_decoder]
num_objects = 5
num_layers = 3
aux_loss = false
[model.mask_decoder.md_config]
mask_attention = true
bidirectional_ca = true
n_heads = 8
[model.mask_decoder.loss_config]
num_classes = 2
[model.mask_decoder.loss_config.loss_weights]
object_class_ce = 2.0
mask_ce = 10
mask_dice = 2.0
regression = 2.0
[data.mf_config.object]
name = "truth_hadrons"
id_label = "barcode"
class_label = "flavour"
[data.mf_config.object.object_classes]
b = { raw = 5, mapped = 0 }
c = { raw = 4, mapped = 1 }
null = { raw = -1, mapped = 2 }
[data.mf_config.constituent]
name = "tracks"
id_label = "ftagTruthParentBarcode"
` + objectRegressionTable

// objectRegressionTable is MaskFormer.yaml's regression task on the
// objects in salt-ort's keys.
const objectRegressionTable = `
[model.mask_decoder.regression]
targets = ["pt", "Lxy", "deta", "dphi", "mass"]
weight = 0.5
[model.mask_decoder.regression.scaler]
pt = { op = "log", op_scale = 0.2 }
Lxy = { op = "log", x_off = 1.0 }
`

func TestMaskFormerKeys(t *testing.T) {
	c, err := Parse("mf.toml", []byte(maskFormer))
	if err != nil {
		t.Fatal(err)
	}
	md, mf := c.Model.MaskDecoder, c.Data.MFConfig
	if md.NumObjects != 5 || md.NumLayers != 3 || md.MDConfig.NHeads != 8 || !md.MDConfig.MaskAttention || !md.MDConfig.BidirectionalCA ||
		md.LossConfig.LossWeights["mask_ce"] != 10 || mf.Object.ObjectClasses["c"].Mapped != 1 || *mf.Object.ObjectClasses["b"].Raw != 5 ||
		mf.Constituent.IDLabel != "ftagTruthParentBarcode" {
		t.Errorf("keys read as %+v, %+v", md, mf)
	}
	s, err := c.Spec(nil)
	if err != nil {
		t.Fatalf("Spec: %v", err)
	}
	if r := s.Objects.Regression; r == nil || len(r.Targets) != 5 || r.Weight != 0.5 || s.Objects.LossWeights.Regression != 2 || s.Objects.MatcherWeights.Regression != 2 {
		t.Errorf("the object regression: %+v, weights %+v", r, s.Objects.LossWeights)
	}
	enc, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("resolved.toml", enc)
	if err != nil {
		t.Fatalf("the resolved configuration does not parse: %v\n%s", err, enc)
	}
	if back.Model.MaskDecoder.LossConfig.LossWeights["mask_dice"] != 2 || back.Data.MFConfig.Object.Name != "truth_hadrons" {
		t.Errorf("the resolved configuration lost the MaskFormer keys:\n%s", enc)
	}
	plain, err := Parse("minimal.toml", []byte(minimal))
	if err != nil || plain.Model.MaskDecoder != nil || plain.Data.MFConfig != nil {
		t.Fatalf("without the keys: %v, %+v", err, plain)
	}
	if enc, _ := plain.Encode(); strings.Contains(string(enc), "mask_decoder") || strings.Contains(string(enc), "mf_config") {
		t.Errorf("the resolved configuration without a decoder names one:\n%s", enc)
	}
}

// TestMaskFormerSpec checks the object decoder Spec builds from the keys:
// Salt's defaults where keys are absent, the matcher weights from
// loss_weights unless given, Salt's Dense default of one hidden layer
// twice the width.
func TestMaskFormerSpec(t *testing.T) {
	src := strings.Replace(strings.Replace(maskFormer, "regression = 2.0\n", "", 1), objectRegressionTable, "", 1)
	tests := []struct {
		name, old, new string
		check          func(o *model.Objects, width int) bool
	}{
		{"defaults", "", "", func(o *model.Objects, width int) bool {
			return o.Input == "tracks" && o.NumClasses == 2 && o.NullClassWeight == 0.5 && o.Decoder.Classes == 3 &&
				o.Decoder.Objects == 5 && o.Decoder.Layers == 3 && o.Decoder.Heads == 8 && o.Decoder.MaskAttention && o.Decoder.BidirectionalCA &&
				slices.Equal(o.Decoder.ClassHidden, []int{2 * width}) && slices.Equal(o.Decoder.MaskHidden, []int{2 * width}) &&
				o.LossWeights == nn.MaskFormerWeights{ClassCE: 2, MaskCE: 10, MaskDice: 2} && o.MatcherWeights == o.LossWeights
		}},
		{"regression", "aux_loss = false\n", "aux_loss = false\n[model.mask_decoder.regression]\ntargets = [\"pt\", \"deta\"]\nweight = 0.5\nhidden = [8]\n[model.mask_decoder.regression.scaler]\npt = { op = \"log\", op_scale = 0.2 }\n", func(o *model.Objects, _ int) bool {
			r := o.Regression
			// Salt: the loss weight defaults to 1, the matcher has no
			// regression cost unless its weights name one.
			return r != nil && r.Name == "regression" && slices.Equal(r.Targets, []string{"pt", "deta"}) && r.Weight == 0.5 && slices.Equal(r.Hidden, []int{8}) &&
				r.Scaling[0] == model.TargetScaling{Op: model.LogScaling, XScale: 1, OpScale: 0.2} && r.Scaling[1].Op == model.NoScaling &&
				o.LossWeights.Regression == 1 && o.MatcherWeights.Regression == 0
		}},
		{"regression weights", "mask_dice = 2.0\n", "mask_dice = 2.0\nregression = 2.0\n[model.mask_decoder.regression]\ntargets = [\"pt\"]\n", func(o *model.Objects, _ int) bool {
			return o.Regression != nil && o.LossWeights.Regression == 2 && o.MatcherWeights.Regression == 2 && o.Regression.Scaling == nil
		}},
		{"focal", "mask_dice = 2.0\n", "mask_dice = 2.0\nmask_focal = 1.5\n", func(o *model.Objects, _ int) bool {
			return o.LossWeights.MaskFocal == 1.5 && o.MatcherWeights.MaskFocal == 1.5 &&
				slices.Equal(o.ObjectLossTerms(), []string{"object_class_ce", "mask_ce", "mask_dice", "mask_focal"})
		}},
		{"aux loss", "aux_loss = false", "aux_loss = true", func(o *model.Objects, _ int) bool {
			return o.AuxLoss && len(o.ObjectMatchings()) == 4 && slices.Contains(o.ObjectLossTerms(), "mask_dice_layer2")
		}},
		{"matcher weights and nets", "num_classes = 2\n", "num_classes = 2\nnull_class_weight = 0.25\n[model.mask_decoder.loss_config.matcher_weights]\nobject_class_ce = 1.0\nmask_dice = 3.0\n[model.mask_decoder.class_net]\nhidden = [16]\nactivation = \"SiLU\"\n", func(o *model.Objects, _ int) bool {
			return o.NullClassWeight == 0.25 && o.MatcherWeights == nn.MaskFormerWeights{ClassCE: 1, MaskDice: 3} &&
				slices.Equal(o.Decoder.ClassHidden, []int{16}) && o.Decoder.Activation == nn.SiLU
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("mf.toml", []byte(strings.Replace(src, tt.old, tt.new, 1)))
			if err != nil {
				t.Fatal(err)
			}
			s, err := c.Spec(nil)
			if err != nil {
				t.Fatal(err)
			}
			if s.Objects == nil || !tt.check(s.Objects, s.Width()) {
				t.Errorf("objects: %+v", s.Objects)
			}
		})
	}
}

func TestMaskFormerErrors(t *testing.T) {
	tests := []struct {
		name, old, new, want string
	}{
		{"decoder without truth", "[data.mf_config.object]", "[data.mf_config_x]", "unknown key"},
		{"no objects", "num_objects = 5", "num_objects = 0", "model.mask_decoder.num_objects: 0: give the number"},
		{"no layers", "num_layers = 3", "num_layers = -1", "model.mask_decoder.num_layers: -1"},
		{"heads do not divide", "n_heads = 8", "n_heads = 7", "md_config.n_heads: 7 heads must be at least 1 and divide the decoder's width 128"},
		{"mask_attention missing", "mask_attention = true\n", "", "mask_attention is required"},
		{"bad activation", "[model.mask_decoder.loss_config]\n", "[model.mask_decoder.class_net]\nactivation = \"tanh\"\n[model.mask_decoder.loss_config]\n", "class_net.activation: \"tanh\""},
		{"no classes", "num_classes = 2", "num_classes = 0", "loss_config.num_classes: 0"},
		{"unknown loss term", "mask_dice = 2.0", "mask_dise = 2.0", `did you mean "mask_dice"?`},
		{"negative weight", "mask_ce = 10", "mask_ce = -1", "loss_weights.mask_ce: -1"},
		{"no class cost", "object_class_ce = 2.0\n", "", "object_class_ce is required"},
		{"null class weight", "num_classes = 2", "num_classes = 2\nnull_class_weight = 0.0", "null_class_weight: 0"},
		{"no id label", `id_label = "barcode"`, `id_label = ""`, `data.mf_config.object.id_label: required: name the field or dataset, e.g. "barcode"`},
		{"constituent not an input", `name = "tracks"`, `name = "flows"`, `constituent.name: "flows" is not an input of the model`},
		{"no null class", "null = { raw = -1, mapped = 2 }", "", `no "null" class`},
		{"class count", "c = { raw = 4, mapped = 1 }", "c = { raw = 4, mapped = 1 }\nd = { raw = 3, mapped = 1 }", "3 classes, but model.mask_decoder.loss_config.num_classes is 2"},
		{"null not last", "null = { raw = -1, mapped = 2 }", "null = { raw = -1, mapped = 0 }", "null.mapped: 0: the no-object class is the last, 2"},
		{"shared index", "c = { raw = 4, mapped = 1 }", "c = { raw = 4, mapped = 0 }", "c.mapped: 0 is also b's"},
		{"shared raw", "c = { raw = 4, mapped = 1 }", "c = { raw = 5, mapped = 1 }", "c.raw: 5 is also b's"},
		{"raw missing", "c = { raw = 4, mapped = 1 }", "c = { mapped = 1 }", "object_classes.c.raw: required"},
		{"regression weight alone", objectRegressionTable, "", "loss_weights.regression: a regression weight without an object regression"},
		{"regression loss", "weight = 0.5\n", "weight = 0.5\nloss = \"MSELoss\"\n", "model.mask_decoder.regression.loss: \"MSELoss\": the objects' regression trains with L1Loss"},
		{"regression no targets", "targets = [\"pt\", \"Lxy\", \"deta\", \"dphi\", \"mass\"]\n", "", "model.mask_decoder.regression.targets: no targets"},
		{"regression scaler target", "targets = [\"pt\", \"Lxy\", \"deta\", \"dphi\", \"mass\"]", "targets = [\"pt\"]", "model.mask_decoder.regression.scaler: scaler for \"Lxy\", which is not one of the targets pt"},
		{"regression scaler op", "pt = { op = \"log\", op_scale = 0.2 }", "pt = { op = \"sqrt\" }", "model.mask_decoder.regression.scaler.pt.op: op must be \"log\", \"exp\" or \"linear\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(maskFormer, tt.old) {
				t.Fatalf("%q is not in the configuration", tt.old)
			}
			text := strings.Replace(maskFormer, tt.old, tt.new, 1)
			_, err := Parse("mf.toml", []byte(text))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "mf.toml:") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
	onlyTruth := minimal + strings.Replace(maskFormer[strings.Index(maskFormer, "[data.mf_config.object]"):], objectRegressionTable, "", 1)
	if _, err := Parse("mf.toml", []byte(onlyTruth)); err == nil || !strings.Contains(err.Error(), "data.mf_config: the truth objects are only read for a mask decoder") {
		t.Errorf("mf_config alone: %v", err)
	}
	onlyDecoder := maskFormer[:strings.Index(maskFormer, "[data.mf_config.object]")]
	if _, err := Parse("mf.toml", []byte(onlyDecoder)); err == nil || !strings.Contains(err.Error(), "model.mask_decoder: a mask decoder needs its truth objects") {
		t.Errorf("mask_decoder alone: %v", err)
	}
}

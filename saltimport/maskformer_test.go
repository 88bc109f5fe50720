package saltimport

import (
	"slices"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/graph/nn"
)

// maskFormerConfig is gn2Config with the mask decoder and truth objects of
// Salt's MaskFormer.yaml, without its regression of the hadrons.
func maskFormerConfig(t *testing.T) map[string]any {
	t.Helper()
	m := gn2Config(t)
	dense := func(out int) map[string]any {
		return map[string]any{"class_path": "salt.models.Dense", "init_args": map[string]any{"input_size": 128, "output_size": out}}
	}
	set(t, m, "model.model.init_args.mask_decoder", map[string]any{
		"class_path": "salt.models.maskformer.MaskDecoder",
		"init_args": map[string]any{
			"num_objects": 5, "embed_dim": 128, "num_layers": 3, "aux_loss": false,
			"md_config":   map[string]any{"mask_attention": true, "bidirectional_ca": true, "n_heads": 8},
			"class_net":   dense(3),
			"mask_net":    dense(128),
			"loss_config": map[string]any{"num_classes": 2, "loss_weights": map[string]any{"object_class_ce": 2.0, "mask_ce": 10.0, "mask_dice": 2.0}},
		},
	})
	class := func(raw, mapped int) map[string]any { return map[string]any{"raw": raw, "mapped": mapped} }
	set(t, m, "data.mf_config", map[string]any{
		"object": map[string]any{"name": "truth_hadrons", "id_label": "barcode", "class_label": "flavour",
			"object_classes": map[string]any{"b": class(5, 0), "c": class(4, 1), "null": class(-1, 2)}},
		"constituent": map[string]any{"name": "tracks", "id_label": "ftagTruthParentBarcode"},
	})
	return m
}

// TestConvertMaskFormer imports Salt's MaskFormer decoder and checks the
// object decoder the configuration builds.
func TestConvertMaskFormer(t *testing.T) {
	conv, err := convert(t, maskFormerConfig(t), ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := conv.Config.Spec(func(ds, field string) ([]float64, error) { return nil, nil })
	if err != nil {
		t.Fatal(err)
	}
	o := s.Objects
	if o == nil {
		t.Fatal("no object decoder")
	}
	if o.Input != "tracks" || o.NumClasses != 2 || o.Decoder.Objects != 5 || o.Decoder.Layers != 3 || o.Decoder.Heads != 8 ||
		!o.Decoder.MaskAttention || !o.Decoder.BidirectionalCA || o.Decoder.Classes != 3 ||
		!slices.Equal(o.Decoder.ClassHidden, []int{256}) || !slices.Equal(o.Decoder.MaskHidden, []int{256}) ||
		o.LossWeights != (nn.MaskFormerWeights{ClassCE: 2, MaskCE: 10, MaskDice: 2}) || o.MatcherWeights != o.LossWeights || o.NullClassWeight != 0.5 {
		t.Errorf("object decoder %+v", o)
	}
	mf := conv.Config.Data.MFConfig
	if mf.Object.Name != "truth_hadrons" || *mf.Object.ObjectClasses["c"].Raw != 4 || mf.Object.ObjectClasses["null"].Mapped != 2 || mf.Constituent.IDLabel != "ftagTruthParentBarcode" {
		t.Errorf("mf_config %+v", mf)
	}
}

// TestConvertMaskFormerFocalAux imports the focal mask loss of Salt's
// loss_weights and matcher_weights, and the auxiliary losses per layer.
func TestConvertMaskFormerFocalAux(t *testing.T) {
	const lc = "model.model.init_args.mask_decoder.init_args.loss_config"
	m := maskFormerConfig(t)
	set(t, m, "model.model.init_args.mask_decoder.init_args.aux_loss", true)
	set(t, m, lc+".loss_weights.mask_focal", 4.0)
	set(t, m, lc+".matcher_weights", map[string]any{"object_class_ce": 1.0, "mask_focal": 2.0})
	conv, err := convert(t, m, ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := conv.Config.Spec(func(ds, field string) ([]float64, error) { return nil, nil })
	if err != nil {
		t.Fatal(err)
	}
	if o := s.Objects; o.LossWeights != (nn.MaskFormerWeights{ClassCE: 2, MaskCE: 10, MaskDice: 2, MaskFocal: 4}) || o.MatcherWeights != (nn.MaskFormerWeights{ClassCE: 1, MaskFocal: 2}) {
		t.Errorf("weights %+v, matcher %+v", o.LossWeights, o.MatcherWeights)
	}
	if !s.Objects.AuxLoss || !conv.Config.Model.MaskDecoder.AuxLoss {
		t.Error("aux_loss: true did not carry over")
	}
}

// TestConvertMaskFormerProblems checks that the parts salt-ort does not
// train yet are reported by key.
func TestConvertMaskFormerProblems(t *testing.T) {
	const md = "model.model.init_args.mask_decoder.init_args"
	for _, tt := range []struct {
		name, key string
		value     any
		want      string
	}{
		{"class net size", md + ".class_net.init_args.output_size", 4, "class_net.init_args.output_size: 4: want 3"},
		{"width", md + ".embed_dim", 64, "embed_dim: 64, but the encoder's output has 128"},
		{"objects task", "model.model.init_args.tasks.init_args.modules.0.init_args.input_name", "objects", "the task on the mask decoder's objects is Salt's salt.models.RegressionTask in salt-ort"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := maskFormerConfig(t)
			set(t, m, tt.key, tt.value)
			_, err := convert(t, m, ConvertOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

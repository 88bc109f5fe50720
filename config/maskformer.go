package config

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/nn"
	"github.com/salt-ort/salt-ort/internal/nearest"
)

// MaskDecoder is Salt's MaskDecoder (salt.models.maskformer), the object
// decoder of MaskFormer: num_objects learnable object queries that attend
// to the encoded constituents through num_layers decoder layers, a class
// net (each object's class: loss_config.num_classes classes and no object)
// and a mask net (each object's constituents). salt-ort reads and checks
// these keys and trains the decoder (see docs/maskformer.md).
type MaskDecoder struct {
	// NumObjects is the number of object queries per jet (Salt's
	// num_objects, e.g. 5 truth hadrons).
	NumObjects int `toml:"num_objects"`
	// NumLayers is the number of decoder layers.
	NumLayers int `toml:"num_layers"`
	// AuxLoss adds the losses of every decoder layer's predictions: those
	// of the queries entering each layer, matched on their own cost and
	// trained with the class and mask terms (Salt's aux_loss; Salt's own
	// code for it cannot run, see docs/maskformer.md).
	AuxLoss bool `toml:"aux_loss"`
	// MDConfig configures each decoder layer (Salt's md_config).
	MDConfig MaskDecoderLayer `toml:"md_config"`
	// ClassNet and MaskNet are the object class and mask networks (Salt's
	// Dense class_net and mask_net, on the query embeddings). The class
	// net's output has num_classes + 1 entries and the mask net's the
	// decoder's width, as Salt's configuration sets them.
	ClassNet DecoderNet `toml:"class_net"`
	MaskNet  DecoderNet `toml:"mask_net"`
	// LossConfig configures the matching and the losses (Salt's
	// loss_config, MaskFormerLoss's arguments).
	LossConfig MaskFormerLoss `toml:"loss_config"`
	// Regression is Salt's regression task on the objects (see
	// ObjectRegression); nil for none.
	Regression *ObjectRegression `toml:"regression"`
}

// MaskDecoderLayer is Salt's md_config: the arguments of each
// MaskDecoderLayer.
type MaskDecoderLayer struct {
	// NHeads is the number of attention heads; it divides the width.
	NHeads int `toml:"n_heads"`
	// MaskAttention restricts each object's cross-attention to the
	// constituents its current mask selects.
	MaskAttention bool `toml:"mask_attention"`
	// BidirectionalCA adds the constituents' cross-attention to the
	// objects.
	BidirectionalCA bool `toml:"bidirectional_ca"`
}

// DecoderNet is a Dense network of the mask decoder: its hidden layer sizes
// (Salt's hidden_layers; absent, Salt's Dense default of one layer twice
// the width) and their activation ("": ReLU, Salt's default).
type DecoderNet struct {
	Hidden     []int  `toml:"hidden"`
	Activation string `toml:"activation"`
}

// MaskFormerLoss is Salt's loss_config of the mask decoder.
type MaskFormerLoss struct {
	// NumClasses is the number of object classes, without no object.
	NumClasses int `toml:"num_classes"`
	// LossWeights weigh the loss terms and, as Salt's matcher does unless
	// matcher_weights is given, the matching costs: object_class_ce,
	// mask_ce, mask_dice, mask_focal and regression.
	LossWeights map[string]float64 `toml:"loss_weights"`
	// MatcherWeights, when given, weigh the matching costs instead.
	MatcherWeights map[string]float64 `toml:"matcher_weights"`
	// NullClassWeight is the weight of the no-object class in the object
	// class loss (Salt's default 0.5).
	NullClassWeight *float64 `toml:"null_class_weight"`
}

// MFConfig is Salt's data.mf_config: which dataset holds the truth objects
// and how the constituents name theirs.
type MFConfig struct {
	Object      MFObject `toml:"object"`
	Constituent MFObject `toml:"constituent"`
}

// MFObject is one side of Salt's mf_config: the dataset, the field holding
// each entry's id (for the constituents, the id of their object), and for
// the objects the class field and its classes.
type MFObject struct {
	Name       string `toml:"name"`
	IDLabel    string `toml:"id_label"`
	ClassLabel string `toml:"class_label"`
	// ObjectClasses map each class name to its stored value (raw) and its
	// index (mapped); the class "null", no object, has the last index and
	// raw -1 unless given.
	ObjectClasses map[string]ObjectClass `toml:"object_classes"`
}

// ObjectClass is one of Salt's object_classes.
type ObjectClass struct {
	Raw    *int `toml:"raw"`
	Mapped int  `toml:"mapped"`
}

// maskFormerLossTerms are the loss and matching terms Salt's MaskFormerLoss
// and HungarianMatcher know.
var maskFormerLossTerms = []string{"object_class_ce", "mask_ce", "mask_dice", "mask_focal", "regression"}

// validateMaskFormer checks [model.mask_decoder] and [data.mf_config],
// which come together.
func (c *Config) validateMaskFormer() error {
	md, mf := c.Model.MaskDecoder, c.Data.MFConfig
	switch {
	case md == nil && mf == nil:
		return nil
	case md == nil:
		return c.errorf("data.mf_config", "the truth objects are only read for a mask decoder: add [model.mask_decoder] or remove [data.mf_config]")
	case mf == nil:
		return c.errorf("model.mask_decoder", "a mask decoder needs its truth objects: add [data.mf_config] with [data.mf_config.object] and [data.mf_config.constituent], as Salt's data.mf_config")
	}
	if err := c.validateMaskDecoder(md); err != nil {
		return err
	}
	if err := c.validateRegressionWeights(md); err != nil {
		return err
	}
	return c.validateMFConfig(mf, md.LossConfig.NumClasses)
}

// validateMaskDecoder checks the decoder's own keys.
func (c *Config) validateMaskDecoder(md *MaskDecoder) error {
	const p = "model.mask_decoder."
	width := c.Model.width()
	switch {
	case md.NumObjects < 1:
		return c.errorf(p+"num_objects", "%d: give the number of object queries per jet (Salt's MaskFormer: 5)", md.NumObjects)
	case md.NumLayers < 1:
		return c.errorf(p+"num_layers", "%d: give the number of decoder layers (Salt's MaskFormer: 3)", md.NumLayers)
	case md.MDConfig.NHeads < 1 || width%md.MDConfig.NHeads != 0:
		return c.errorf(p+"md_config.n_heads", "%d heads must be at least 1 and divide the decoder's width %d (the encoder's output)", md.MDConfig.NHeads, width)
	}
	for _, k := range []string{"mask_attention", "bidirectional_ca"} {
		if !c.Defined(p + "md_config." + k) {
			return c.errorf(p+"md_config", "%s is required, as in Salt's md_config: set it to true or false", k)
		}
	}
	for _, n := range []struct {
		key string
		net DecoderNet
	}{{"class_net", md.ClassNet}, {"mask_net", md.MaskNet}} {
		if err := c.validateDecoderNet(p+n.key, n.net); err != nil {
			return err
		}
	}
	lc := md.LossConfig
	if lc.NumClasses < 1 {
		return c.errorf(p+"loss_config.num_classes", "%d: give the number of object classes without no object (b and c hadrons: 2)", lc.NumClasses)
	}
	if w := lc.NullClassWeight; w != nil && !(*w > 0 && !math.IsInf(*w, 1)) {
		return c.errorf(p+"loss_config.null_class_weight", "%g: the no-object class weight must be a positive number (Salt's default 0.5)", *w)
	}
	if err := c.validateLossWeights(p+"loss_config.loss_weights", lc.LossWeights, true); err != nil {
		return err
	}
	if lc.MatcherWeights != nil {
		return c.validateLossWeights(p+"loss_config.matcher_weights", lc.MatcherWeights, false)
	}
	return nil
}

// validateDecoderNet checks a class or mask net.
func (c *Config) validateDecoderNet(key string, n DecoderNet) error {
	for _, h := range n.Hidden {
		if h < 1 {
			return c.errorf(key+".hidden", "layer size %d: sizes must be at least 1", h)
		}
	}
	if n.Activation != "" && !slices.Contains([]string{"ReLU", "SiLU", "GELU"}, n.Activation) {
		return c.errorf(key+".activation", "%q: use ReLU, SiLU or GELU", n.Activation)
	}
	return nil
}

// validateLossWeights checks Salt's loss_weights or matcher_weights: known
// terms, finite non-negative weights with a positive sum, and
// object_class_ce, which Salt's matcher always reads.
func (c *Config) validateLossWeights(key string, w map[string]float64, required bool) error {
	if len(w) == 0 && required {
		return c.errorf(key, "no weights: give object_class_ce and the mask terms, e.g. object_class_ce = 2.0, mask_ce = 10.0, mask_dice = 2.0 (Salt's MaskFormer)")
	}
	sum := 0.0
	for _, k := range sortedKeys(w) {
		if !slices.Contains(maskFormerLossTerms, k) {
			msg := fmt.Sprintf("unknown loss term %q: use %s", k, strings.Join(maskFormerLossTerms, ", "))
			if s := nearest.Key(k, maskFormerLossTerms); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			return c.errorf(key+"."+k, "%s", msg)
		}
		if v := w[k]; !(v >= 0 && !math.IsInf(v, 1)) {
			return c.errorf(key+"."+k, "%g: weights must be numbers ≥ 0", v)
		}
		sum += w[k]
	}
	if _, ok := w["object_class_ce"]; !ok {
		return c.errorf(key, "object_class_ce is required (Salt's matcher always weighs the object class cost): set it, to 0 if the class should not count")
	}
	if sum <= 0 {
		return c.errorf(key, "the weights sum to 0: give at least one a positive weight")
	}
	return nil
}

// validateMFConfig checks the truth objects against the model: the object
// classes are the decoder's classes with no object last, and the
// constituents are an input of the model.
func (c *Config) validateMFConfig(mf *MFConfig, numClasses int) error {
	const p = "data.mf_config."
	o, k := mf.Object, mf.Constituent
	for _, f := range []struct{ key, val, example string }{
		{"object.name", o.Name, "truth_hadrons"}, {"object.id_label", o.IDLabel, "barcode"},
		{"object.class_label", o.ClassLabel, "flavour"}, {"constituent.name", k.Name, "tracks"},
		{"constituent.id_label", k.IDLabel, "ftagTruthParentBarcode"},
	} {
		if f.val == "" {
			return c.errorf(p+f.key, "required: name the field or dataset, e.g. %q", f.example)
		}
	}
	if !slices.ContainsFunc(c.ConstituentNets(), func(n InitNet) bool { return n.Input == k.Name }) {
		return c.errorf(p+"constituent.name", "%q is not an input of the model: name the dataset of one of the [[model.init_nets]]", k.Name)
	}
	if k.ClassLabel != "" || len(k.ObjectClasses) > 0 {
		return c.errorf(p+"constituent", "class_label and object_classes describe the objects: move them to [data.mf_config.object]")
	}
	return c.validateObjectClasses(o.ObjectClasses, numClasses)
}

// validateObjectClasses checks that the mapped indices are 0…numClasses,
// each once, with "null" the last, and that the raw values are distinct.
func (c *Config) validateObjectClasses(classes map[string]ObjectClass, numClasses int) error {
	const key = "data.mf_config.object.object_classes"
	null, ok := classes["null"]
	switch {
	case !ok:
		return c.errorf(key, "no \"null\" class: add null = { raw = -1, mapped = %d }, the no-object class", numClasses)
	case len(classes) != numClasses+1:
		return c.errorf(key, "%d classes, but model.mask_decoder.loss_config.num_classes is %d: give that many and \"null\"", len(classes)-1, numClasses)
	case null.Mapped != numClasses:
		return c.errorf(key+".null.mapped", "%d: the no-object class is the last, %d", null.Mapped, numClasses)
	}
	mapped := map[int]string{}
	raw := map[int]string{}
	for _, name := range sortedKeys(classes) {
		oc := classes[name]
		r := -1
		if oc.Raw != nil {
			r = *oc.Raw
		} else if name != "null" {
			return c.errorf(key+"."+name+".raw", "required: the value of the class field that means %s", name)
		}
		if oc.Mapped < 0 || oc.Mapped > numClasses {
			return c.errorf(key+"."+name+".mapped", "%d: the indices are 0 to %d", oc.Mapped, numClasses)
		}
		if other, dup := mapped[oc.Mapped]; dup {
			return c.errorf(key+"."+name+".mapped", "%d is also %s's: each class needs its own index", oc.Mapped, other)
		}
		if other, dup := raw[r]; dup {
			return c.errorf(key+"."+name+".raw", "%d is also %s's: each class needs its own value", r, other)
		}
		mapped[oc.Mapped], raw[r] = name, name
	}
	return nil
}

// specMaskFormer returns the object decoder of a configuration with
// [model.mask_decoder] (nil without one), for a model whose encoder output
// has the given width.
func (c *Config) specMaskFormer(width int) (*model.Objects, error) {
	md := c.Model.MaskDecoder
	if md == nil {
		return nil, nil
	}
	const p = "model.mask_decoder."
	lc := md.LossConfig
	weights := func(w map[string]float64) nn.MaskFormerWeights {
		return nn.MaskFormerWeights{ClassCE: w["object_class_ce"], MaskCE: w["mask_ce"], MaskDice: w["mask_dice"], MaskFocal: w["mask_focal"]}
	}
	o := &model.Objects{
		Input:           c.Data.MFConfig.Constituent.Name,
		NumClasses:      lc.NumClasses,
		NullClassWeight: 0.5, // Salt's default
		AuxLoss:         md.AuxLoss,
		LossWeights:     weights(lc.LossWeights),
		MatcherWeights:  weights(lc.LossWeights),
		Decoder: nn.MaskDecoderConfig{
			Objects: md.NumObjects, Layers: md.NumLayers, Heads: md.MDConfig.NHeads,
			MaskAttention: md.MDConfig.MaskAttention, BidirectionalCA: md.MDConfig.BidirectionalCA,
			Classes: lc.NumClasses + 1, ClassHidden: decoderHidden(md.ClassNet, width), MaskHidden: decoderHidden(md.MaskNet, width),
		},
	}
	if lc.MatcherWeights != nil {
		o.MatcherWeights = weights(lc.MatcherWeights)
	}
	if lc.NullClassWeight != nil {
		o.NullClassWeight = *lc.NullClassWeight
	}
	if err := c.specObjectRegression(o); err != nil {
		return nil, err
	}
	// Salt's Dense takes one activation for its layers; the class and
	// mask nets share the decoder config's, so the class net's is used
	// unless only the mask net names one.
	act := md.ClassNet.Activation
	if m := md.MaskNet.Activation; act != "" && m != "" && m != act {
		return nil, c.errorf(p+"mask_net.activation", "%q differs from class_net's %q: salt-ort's decoder nets share one activation; give them the same", m, act)
	}
	if act == "" {
		act = md.MaskNet.Activation
	}
	if act != "" {
		o.Decoder.Activation, _ = nn.ParseActivation(act)
	}
	return o, nil
}

// decoderHidden is a decoder net's hidden layer sizes: as given, or Salt's
// Dense default of one layer twice the width.
func decoderHidden(n DecoderNet, width int) []int {
	if n.Hidden != nil {
		return n.Hidden
	}
	return []int{2 * width}
}

// sortedKeys returns a map's keys in order, for deterministic messages.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

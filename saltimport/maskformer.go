package saltimport

import (
	"sort"

	"github.com/salt-ort/salt-ort/config"
)

// maskDecoderClasses are the class paths of Salt's MaskDecoder.
var maskDecoderClasses = map[string]bool{"salt.models.maskformer.MaskDecoder": true, "salt.models.MaskDecoder": true}

// convertMaskDecoder carries Salt's MaskFormer decoder (p, the
// mask_decoder of SaltModel) on an encoder output width wide, and its
// truth objects (data.mf_config). A task on the objects (Salt's regression
// of the hadrons) is carried by objectTask.
func (c *converter) convertMaskDecoder(cfg *config.Config, p string, width int) {
	if v, _ := c.get(p); empty(v) {
		return
	}
	if cp := c.classPath(p); !maskDecoderClasses[cp] {
		c.problem(p+".class_path", "%q: salt-ort builds Salt's salt.models.maskformer.MaskDecoder", cp)
		return
	}
	a := p + ".init_args"
	md := &config.MaskDecoder{
		NumObjects: c.integer(a+".num_objects", 0),
		NumLayers:  c.integer(a+".num_layers", 0),
		AuxLoss:    c.boolean(a+".aux_loss", false),
	}
	if n := c.integer(a+".embed_dim", width); n != width {
		c.problem(a+".embed_dim", "%d, but the encoder's output has %d features", n, width)
	}
	if v, _ := c.get(a + ".constituent_name"); v != nil && c.str(a+".constituent_name") != c.str("data.mf_config.constituent.name") {
		c.problem(a+".constituent_name", "%v: salt-ort's decoder reads the constituents data.mf_config.constituent.name names", v)
	}
	if v, _ := c.get(a + ".class_weights"); !empty(v) {
		c.problem(a+".class_weights", "per-class weights of the object classes are not available in salt-ort yet; the no-object class takes loss_config.null_class_weight")
	}
	mc := a + ".md_config"
	md.MDConfig = config.MaskDecoderLayer{
		NHeads:          c.integer(mc+".n_heads", 1),
		MaskAttention:   c.boolean(mc+".mask_attention", false),
		BidirectionalCA: c.boolean(mc+".bidirectional_ca", false),
	}
	lc := a + ".loss_config"
	md.LossConfig.NumClasses = c.integer(lc+".num_classes", 0)
	md.LossConfig.LossWeights = c.weights(lc + ".loss_weights")
	if v, _ := c.get(lc + ".matcher_weights"); v != nil {
		md.LossConfig.MatcherWeights = c.weights(lc + ".matcher_weights")
	}
	if v, _ := c.get(lc + ".null_class_weight"); v != nil {
		w := c.number(lc+".null_class_weight", 0.5)
		md.LossConfig.NullClassWeight = &w
	}
	md.ClassNet = c.decoderNet(a+".class_net", width, md.LossConfig.NumClasses+1)
	md.MaskNet = c.decoderNet(a+".mask_net", width, width)
	cfg.Model.MaskDecoder = md
	cfg.Data.MFConfig = c.mfConfig("data.mf_config")
}

// weights reads a loss_weights or matcher_weights mapping.
func (c *converter) weights(p string) map[string]float64 {
	v, _ := c.get(p)
	m, _ := v.(map[string]any)
	out := map[string]float64{}
	for _, k := range sortedAny(m) {
		out[k] = c.number(p+"."+k, 0)
	}
	return out
}

// decoderNet reads a class or mask net, Salt's Dense from the decoder's
// width to out features.
func (c *converter) decoderNet(p string, width, out int) config.DecoderNet {
	if cp := c.classPath(p); cp != "salt.models.Dense" {
		c.problem(p+".class_path", "%q: the decoder's nets are Salt's salt.models.Dense in salt-ort", cp)
		return config.DecoderNet{}
	}
	dc := p + ".init_args"
	if n := c.integer(dc+".input_size", width); n != width {
		c.problem(dc+".input_size", "%d, but the decoder's width is %d", n, width)
	}
	if n := c.integer(dc+".output_size", out); n != out {
		c.problem(dc+".output_size", "%d: want %d (the object classes and no object for the class net, the decoder's width for the mask net)", n, out)
	}
	n := config.DecoderNet{Hidden: c.denseHidden(dc, width), Activation: c.activation(dc+".activation", "ReLU")}
	if fa, _ := c.get(dc + ".final_activation"); fa != nil {
		c.problem(dc+".final_activation", "%v: the decoder's nets end linear in salt-ort, as Salt's defaults do", fa)
	}
	c.noDropout(dc, c.denseCommon(dc, 0), "the mask decoder's nets")
	return n
}

// mfConfig reads Salt's data.mf_config.
func (c *converter) mfConfig(p string) *config.MFConfig {
	if v, _ := c.get(p); empty(v) {
		c.problem(p, "a mask decoder needs its truth objects: give data.mf_config (object and constituent), as Salt's MaskFormer.yaml does")
		return nil
	}
	mf := &config.MFConfig{
		Object: config.MFObject{Name: c.str(p + ".object.name"), IDLabel: c.str(p + ".object.id_label"), ClassLabel: c.str(p + ".object.class_label"),
			ObjectClasses: map[string]config.ObjectClass{}},
		Constituent: config.MFObject{Name: c.str(p + ".constituent.name"), IDLabel: c.str(p + ".constituent.id_label")},
	}
	oc := p + ".object.object_classes"
	v, _ := c.get(oc)
	classes, _ := v.(map[string]any)
	for _, name := range sortedAny(classes) {
		k := oc + "." + name
		cl := config.ObjectClass{Mapped: c.integer(k+".mapped", 0)}
		switch raw := c.peek(k + ".raw").(type) {
		case nil:
		case []any:
			c.get(k + ".raw")
			c.problem(k+".raw", "%v: a list of raw values for one class is not available in salt-ort yet; give one value", raw)
		default:
			r := c.integer(k+".raw", 0)
			cl.Raw = &r
		}
		mf.Object.ObjectClasses[name] = cl
	}
	for _, k := range []string{"max_lxy_mm", "lxy_field", "cuts", "sort_by", "pv_class", "max_objects"} {
		if v, _ := c.get(p + ".object." + k); v != nil {
			c.problem(p+".object."+k, "%v: not available in salt-ort yet", v)
		}
	}
	return mf
}

// sortedAny returns a mapping's keys in order.
func sortedAny(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// objectTask carries a task on the mask decoder's objects (tp, Salt's
// RegressionTask with input_name objects), whose name and weight t holds,
// into [model.mask_decoder.regression]: its targets, scaler, L1 loss and
// head on the decoder's width.
func (c *converter) objectTask(cfg *config.Config, tp string, t config.Task, width int) {
	a := tp + ".init_args"
	if cls := c.classPath(tp); cls != "salt.models.RegressionTask" {
		c.problem(tp+".class_path", "%q: the task on the mask decoder's objects is Salt's salt.models.RegressionTask in salt-ort", cls)
		return
	}
	if cfg.Model.MaskDecoder.Regression != nil {
		c.problem(a+".input_name", "%q: a second task on the objects; salt-ort trains one regression of them", t.Input)
		return
	}
	dc := a + ".dense_config"
	if in := c.integer(dc+".input_size", width); in != width {
		c.problem(dc+".input_size", "%d, but the head reads the object embeddings, %d features", in, width)
	}
	if v := c.peek(dc + ".context_size"); v != nil && v != 0 {
		c.problem(dc+".context_size", "%v: the objects' regression reads the object embeddings alone", v)
	}
	hidden, act := c.denseHidden(dc, width), c.activation(dc+".activation", "ReLU")
	if v, _ := c.get(dc + ".final_activation"); v != nil {
		c.problem(dc+".final_activation", "%v: salt-ort's heads end linear, as Salt's default", v)
	}
	c.noDropout(dc, c.denseCommon(dc, 0), "the objects' regression head")
	loss := c.lossOf(a + ".loss")
	if loss.class != "torch.nn.L1Loss" {
		c.problem(a+".loss.class_path", "%q: the objects' regression trains with L1Loss in salt-ort (Salt's MaskFormer.yaml)", loss.class)
	}
	c.regressionTask(cfg, &t, a, "salt.models.RegressionTask", loss, c.integer(dc+".output_size", 0), false)
	if t.NormParams != nil || len(t.TargetDenominators) > 0 {
		c.problem(a+".norm_params", "the objects' regression scales its targets with Salt's scaler (RegressionTargetScaler) in salt-ort; use scaler")
	}
	if t.SampleWeight != "" {
		c.problem(a+".sample_weight", "%q: the objects' regression has no sample weights", t.SampleWeight)
	}
	cfg.Model.MaskDecoder.Regression = &config.ObjectRegression{
		Name: t.Name, Targets: t.Targets, Weight: t.Weight, Hidden: hidden, Activation: act, Scaler: t.Scaler, Loss: "L1Loss",
	}
}

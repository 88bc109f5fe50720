package saltimport

import (
	"fmt"
	"strings"

	"github.com/salt-ort/salt-ort/config"
)

// legacyEncoderClasses are the class_path spellings of Salt's legacy
// TransformerEncoder (salt/models/transformer.py until commit c93d54f,
// "Global Salt refactoring"), with which ATLAS's GN2 taggers were trained.
var legacyEncoderClasses = []string{"salt.models.TransformerEncoder", "salt.models.transformer.TransformerEncoder"}

// isLegacyEncoder reports whether class_path cp is Salt's legacy
// TransformerEncoder.
func isLegacyEncoder(cp string) bool {
	for _, c := range legacyEncoderClasses {
		if cp == c {
			return true
		}
	}
	return false
}

// scaledDotProduct are the class_path spellings of the attention the
// legacy encoder's MultiheadAttention computes in salt-ort.
var scaledDotProduct = []string{"salt.models.ScaledDotProductAttention", "salt.models.attention.ScaledDotProductAttention"}

// convertLegacyEncoder maps Salt's legacy TransformerEncoder at the dotted
// path p (whose class_path the caller has read) onto
// model.encoder.kind = "legacy", for init nets of output size embed, and
// returns the encoder's output width (out_dim, or embed without a
// projection). Its init args are embed_dim, num_layers, mha_config
// (num_heads, the ScaledDotProductAttention and its dropout), dense_config
// (Salt's Dense: hidden_layers or hidden_dim_scale, activation, dropout),
// out_dim, and context_dim, edge_embed_dim, update_edges and mup, which
// salt-ort does not carry.
func (c *converter) convertLegacyEncoder(cfg *config.Config, p string, embed int) int {
	e := &cfg.Model.Encoder
	*e = config.Encoder{Kind: "legacy", DenseRatio: 2, FinalNorm: true, OutProj: true, Norm: "LayerNorm", NormType: "pre"}
	a := p + ".init_args"
	e.Layers = c.integer(a+".num_layers", 0)
	if e.Layers < 1 {
		c.problem(a+".num_layers", "%d: Salt's TransformerEncoder needs at least one layer", e.Layers)
	}
	if n := c.integer(a+".embed_dim", embed); n != embed {
		c.problem(a+".embed_dim", "%d differs from the init nets' output_size %d", n, embed)
	}
	e.OutDim = c.integer(a+".out_dim", 0) // Salt's default 0 (or null): no final_linear
	width := embed
	if e.OutDim > 0 {
		width = e.OutDim
	}
	if n := c.integer(a+".context_dim", 0); n != 0 {
		c.problem(a+".context_dim", "%d: salt-ort's legacy encoder has no context input to its dense blocks", n)
	}
	if n := c.integer(a+".edge_embed_dim", 0); n != 0 {
		c.problem(a+".edge_embed_dim", "%d: salt-ort's legacy encoder takes no edge features; Salt's Transformer (salt.models.Transformer) has them in salt-ort", n)
	}
	if c.boolean(a+".update_edges", false) {
		c.problem(a+".update_edges", "true: salt-ort's legacy encoder takes no edge features")
	}
	if c.boolean(a+".mup", false) {
		c.problem(a+".mup", "true: muP parametrisation is not available in salt-ort")
	}
	c.convertLegacyAttention(e, a+".mha_config", embed)
	c.convertLegacyDense(e, a+".dense_config")
	return width
}

// convertLegacyAttention maps the legacy encoder's mha_config: the keyword
// arguments of Salt's MultiheadAttention besides embed_dim.
func (c *converter) convertLegacyAttention(e *config.Encoder, m string, embed int) {
	if v, _ := c.get(m); v == nil {
		c.problem(m, "missing: Salt's TransformerEncoder needs mha_config with num_heads and attention")
		return
	}
	e.Heads = c.integer(m+".num_heads", 0)
	if e.Heads < 1 || embed%e.Heads != 0 {
		c.problem(m+".num_heads", "%d: must divide embed_dim %d", e.Heads, embed)
	}
	at := m + ".attention"
	cp := c.classPath(at)
	known := false
	for _, s := range scaledDotProduct {
		known = known || cp == s
	}
	if !known {
		c.problem(at+".class_path", "%q: salt-ort's legacy encoder computes Salt's ScaledDotProductAttention (salt.models.ScaledDotProductAttention) only", cp)
	}
	e.AttnDropout = c.number(at+".init_args.dropout", 0)
	for _, k := range []string{"k_dim", "v_dim"} {
		if n := c.integer(m+"."+k, 0); n != 0 && n != embed {
			c.problem(m+"."+k, "%d: salt-ort's legacy encoder attends within the sequence, keys and values of embed_dim %d", n, embed)
		}
	}
	e.OutProj = c.boolean(m+".out_proj", true)
	if n := c.integer(m+".edge_embed_dim", 0); n != 0 {
		c.problem(m+".edge_embed_dim", "%d: salt-ort's legacy encoder takes no edge features", n)
	}
	if c.boolean(m+".update_edges", false) {
		c.problem(m+".update_edges", "true: salt-ort's legacy encoder takes no edge features")
	}
	if c.boolean(m+".mup", false) {
		c.problem(m+".mup", "true: muP parametrisation is not available in salt-ort")
	}
}

// convertLegacyDense maps the legacy encoder's dense_config: the keyword
// arguments of the Salt Dense in each layer, whose input and output sizes
// are embed_dim.
func (c *converter) convertLegacyDense(e *config.Encoder, dc string) {
	if v, _ := c.get(dc); empty(v) {
		c.problem(dc, "missing: salt-ort's legacy layers without a dense block are not built; give %s", dc[strings.LastIndex(dc, ".")+1:])
		return
	}
	if v, _ := c.get(dc + ".hidden_layers"); v != nil {
		e.Hidden = c.ints(dc + ".hidden_layers")
		if len(e.Hidden) == 0 {
			c.problem(dc+".hidden_layers", "empty: salt-ort's legacy dense block has at least one hidden layer")
		}
	} else {
		e.DenseRatio = c.integer(dc+".hidden_dim_scale", 2)
	}
	c.get(dc + ".hidden_dim_scale")
	e.Activation = c.activation(dc+".activation", "ReLU")
	if fa, _ := c.get(dc + ".final_activation"); fa != nil {
		c.problem(dc+".final_activation", "%v: salt-ort's legacy dense block has no activation after its last layer", fa)
	}
	e.Dropout = c.number(dc+".dropout", 0)
	if !c.boolean(dc+".bias", true) {
		c.problem(dc+".bias", "false: salt-ort's dense layers always have biases")
	}
	if c.boolean(dc+".mup", false) {
		c.problem(dc+".mup", "true: muP parametrisation is not available in salt-ort")
	}
	for _, k := range []string{"input_size", "output_size", "context_size"} {
		if v, _ := c.get(dc + "." + k); v != nil {
			c.problem(dc+"."+k, "%v: Salt's TransformerEncoder sets the dense block's %s itself; remove it", v, k)
		}
	}
}

// convertCrossAttentionEncoder maps Salt's TransformerCrossAttentionEncoder
// (salt/models/transformer.py until commit c93d54f) at the dotted path p
// onto model.encoder.kind = "cross_attention" and returns its output
// width. Its init args are input_names (the init nets' groups, in their
// order), embed_dim, num_layers, mha_config (as the legacy encoder's),
// sa_dense_config and ca_dense_config (Salt Dense settings, which salt-ort
// shares between the self- and cross-attention layers), out_dim and
// ca_every_layer; context_dim, update_edges and mup are refused unless
// off.
func (c *converter) convertCrossAttentionEncoder(cfg *config.Config, p string, embed int) int {
	e := &cfg.Model.Encoder
	*e = config.Encoder{Kind: "cross_attention", DenseRatio: 2, FinalNorm: true, OutProj: true, Norm: "LayerNorm", NormType: "pre"}
	a := p + ".init_args"
	e.Layers = c.integer(a+".num_layers", 0)
	if e.Layers < 2 && !c.boolean(a+".ca_every_layer", false) {
		// Salt indexes the last cross-attention layer by i // (num_layers - 1).
		c.problem(a+".num_layers", "%d: Salt's TransformerCrossAttentionEncoder divides by num_layers - 1 unless ca_every_layer is true; give two or more layers", e.Layers)
	}
	if n := c.integer(a+".embed_dim", embed); n != embed {
		c.problem(a+".embed_dim", "%d differs from the init nets' output_size %d", n, embed)
	}
	e.OutDim = c.integer(a+".out_dim", 0)
	width := embed
	if e.OutDim > 0 {
		width = e.OutDim
	}
	e.CAEveryLayer = c.boolean(a+".ca_every_layer", false)
	var groups []string
	for _, n := range cfg.Model.InitNets {
		groups = append(groups, n.Input)
	}
	if names := c.strs(a + ".input_names"); strings.Join(names, ",") != strings.Join(groups, ",") {
		c.problem(a+".input_names", "%v: salt-ort's cross-attention encoder reads the init nets' groups in their order, %v; list those", names, groups)
	}
	if n := c.integer(a+".context_dim", 0); n != 0 {
		c.problem(a+".context_dim", "%d: salt-ort's cross-attention encoder has no context input to its dense blocks", n)
	}
	if c.boolean(a+".update_edges", false) {
		c.problem(a+".update_edges", "true: salt-ort's cross-attention encoder takes no edge features (nor does Salt's)")
	}
	if c.boolean(a+".mup", false) {
		c.problem(a+".mup", "true: μP is not built for the cross-attention encoder")
	}
	c.convertLegacyAttention(e, a+".mha_config", embed)
	c.convertLegacyDense(e, a+".sa_dense_config")
	ca := config.Encoder{DenseRatio: 2}
	c.convertLegacyDense(&ca, a+".ca_dense_config")
	if fmt.Sprint(ca.Hidden, ca.DenseRatio, ca.Activation, ca.Dropout) != fmt.Sprint(e.Hidden, e.DenseRatio, e.Activation, e.Dropout) {
		c.problem(a+".ca_dense_config", "differs from sa_dense_config: salt-ort's cross-attention layers take the self-attention layers' dense settings; make the two equal")
	}
	return width
}

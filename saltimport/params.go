package saltimport

import (
	"fmt"
	"strconv"

	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/nn"
)

// Param pairs a parameter of Salt's model (its name in the Lightning
// checkpoint's state_dict and its PyTorch shape) with salt-ort's (its name
// in the flat parameter layout). Salt's linear weights are [out, in] and
// salt-ort's [in, out], so Transpose is set for every weight matrix; other
// parameters are copied in their row-major order.
//
// Ort is empty for a parameter Salt registers but never uses in its
// forward pass (an edge-feature layer's edge_prenorm): its values are
// checked and not carried.
type Param struct {
	Salt, Ort string
	SaltShape []int
	Transpose bool
}

// Params lists the parameters of the model spec describes under Salt's
// names, in the order Salt's SaltModel registers them (the global
// featurewise net, init nets with their input featurewise nets, the edge
// init net, tasks, encoder with its featurewise nets, pooling), which is
// the order of its optimizer's parameters. Every parameter of salt-ort's
// layout appears once.
func Params(spec model.Spec) []Param {
	var out []Param
	linear := func(salt, ort string, in, outDim int) {
		out = append(out,
			Param{Salt: salt + ".weight", Ort: ort + "/weight", SaltShape: []int{outDim, in}, Transpose: true},
			Param{Salt: salt + ".bias", Ort: ort + "/bias", SaltShape: []int{outDim}})
	}
	// dense is Salt's Dense: Linear layers at the even indices of its
	// nn.Sequential, the activations between them; with dropout each
	// Linear has its Dropout before it (see legacyDenseIndex).
	dense := func(salt, ort string, in int, sizes []int, dropout float64) {
		for k, n := range sizes {
			linear(salt+".net."+strconv.Itoa(legacyDenseIndex(k, dropout > 0)), ort+"/"+strconv.Itoa(k), in, n)
			in = n
		}
	}
	d := spec.EmbedDim
	width := spec.Encoder.Width(d)
	// The jet variables attached to every constituent: all of them, or
	// those that are not only global.
	attached := len(spec.JetVars)
	if spec.AttachVars != nil {
		attached = len(spec.AttachVars)
	}
	// Salt's SaltModel makes its featurewise nets first: the global one
	// is its first module, an input one becomes part of each init net.
	fw := featurewiseByLayer(spec)
	nParams := len(spec.Parameters)
	featurewise := func(salt, ort string, f *model.Featurewise, width int) {
		for _, n := range []struct {
			salt, ort string
			d         *model.FeaturewiseDense
		}{{"scale_net", "scale", f.Scale}, {"bias_net", "bias", f.Bias}} {
			if n.d != nil {
				dense(salt+"."+n.salt, ort+"/"+n.ort, nParams, append(append([]int{}, n.d.Hidden...), width), 0)
			}
		}
		if f.Norm {
			// torch's nn.LayerNorm, with its scale and shift.
			out = append(out,
				Param{Salt: salt + ".norm.weight", Ort: ort + "/norm/weight", SaltShape: []int{width}},
				Param{Salt: salt + ".norm.bias", Ort: ort + "/norm/bias", SaltShape: []int{width}})
		}
	}
	if f := fw[model.FeaturewiseGlobal]; f != nil {
		featurewise("model.featurewise_global", "featurewise/global", f, spec.FeaturewiseWidth(model.FeaturewiseGlobal, ""))
	}
	// An init net reads the parameters too, unless an input featurewise
	// net takes them.
	paramsIn := nParams
	if fw[model.FeaturewiseInput] != nil {
		paramsIn = 0
	}
	initNet := func(i int, name string, n int, sizes []int, dropout float64) {
		s := fmt.Sprintf("model.init_nets.%d", i)
		dense(s+".net", "init/"+name, n, sizes, dropout)
		if f := fw[model.FeaturewiseInput]; f != nil {
			featurewise(s+".featurewise", "featurewise/input/"+name, f, spec.FeaturewiseWidth(model.FeaturewiseInput, name))
		}
	}
	if j := spec.JetInit; j != nil {
		// A jet-only model's init net reads the attached jet variables.
		initNet(0, j.Name, attached+paramsIn, append(append([]int{}, j.Hidden...), d), j.Dropout)
	}
	for i, in := range spec.Inputs {
		if spec.Pooling == model.FlattenPooling {
			break // Salt's R21Xbb flattens the group without an init net
		}
		sizes := append(append([]int{}, in.InitHidden...), d)
		n := len(in.Vars) + paramsIn
		if !in.NoJetVars {
			n += attached
		}
		initNet(i, in.Name, n, sizes, in.Dropout)
	}
	if e := spec.Edges; e != nil {
		// Salt's edge init net reads one column per edge feature.
		sizes := append(append([]int{}, e.Hidden...), spec.Encoder.EdgeDim)
		dense("model.edge_init_nets.0.net", "edge_init/"+e.Input, len(e.Features), sizes, 0)
	}
	// The jet representation the heads read is the pooled one with the
	// global variables after it; a constituent head reads it as context
	// before the constituent's (and a vertexing head's pair of) features.
	pooled := width + len(spec.GlobalVars)
	for i, t := range spec.Tasks {
		in := pooled
		switch {
		case t.Kind == model.Vertexing:
			in = pooled + 2*width
		case t.Kind.PerConstituent() && t.NoContext:
			in = width
		case t.Kind.PerConstituent():
			in = pooled + width
		}
		sizes := append(append([]int{}, t.Hidden...), t.Outputs())
		dense(fmt.Sprintf("model.tasks.%d.net", i), t.Name, in, sizes, t.Dropout)
	}
	e := spec.Encoder
	switch e.Kind {
	case nn.LegacyKind:
		out = append(out, legacyParams(e, d)...)
		linear("model.pool_net.gate_nn", "pooling/gate", width, 1)
		return out
	case nn.CrossAttentionKind:
		out = append(out, crossAttentionParams(spec, d)...)
		linear("model.pool_net.gate_nn", "pooling/gate", width, 1)
		return out
	}
	if e.Registers > 0 {
		out = append(out, Param{Salt: "model.encoder.registers", Ort: "encoder/registers", SaltShape: []int{e.Registers, d}})
	}
	// Salt's RMSNorm has a weight, its LayerNorm none.
	rms := e.Norm == nn.RMSNormKind
	vector := func(salt, ort string, n int) {
		out = append(out, Param{Salt: salt, Ort: ort, SaltShape: []int{n}})
	}
	hybrid := e.NormType == nn.HybridNorm
	qk, v := e.QKNorm || hybrid, e.VNorm || hybrid
	dh := 0
	if e.Heads > 0 {
		dh = d / e.Heads
	}
	hidden := e.DenseRatio * d
	for l := 0; l < e.Layers; l++ {
		s, o := fmt.Sprintf("model.encoder.layers.%d", l), fmt.Sprintf("encoder/layer%d", l)
		// A residual block (Salt's NormResidual) registers its function,
		// then its norm (none in a hybrid layer past the first) and its
		// LayerScale; a hybrid layer past the first registers its own norm
		// before the blocks.
		blockNorm := !hybrid || l == 0
		if hybrid && l > 0 && rms {
			vector(s+".norm.weight", o+"/norm/weight", d)
		}
		edges := e.EdgeDim > 0
		if edges && rms {
			// Salt's EncoderLayer makes an edge_prenorm it never applies,
			// then the edge_postnorm of update_edges.
			out = append(out, Param{Salt: s + ".edge_prenorm.weight", SaltShape: []int{e.EdgeDim}})
			if e.UpdateEdges {
				vector(s+".edge_postnorm.weight", o+"/edge_postnorm/weight", e.EdgeDim)
			}
		}
		norms := func() {
			if qk {
				vector(s+".attn.fn.q_norm.weight", o+"/attn/q_norm/weight", dh)
				vector(s+".attn.fn.k_norm.weight", o+"/attn/k_norm/weight", dh)
			}
			if v {
				vector(s+".attn.fn.v_norm.weight", o+"/attn/v_norm/weight", dh)
			}
		}
		if edges {
			norms() // EdgeAttention makes its norms first
		}
		out = append(out,
			Param{Salt: s + ".attn.fn.in_proj_weight", Ort: o + "/attn/in_proj/weight", SaltShape: []int{3 * d, d}, Transpose: true},
			Param{Salt: s + ".attn.fn.in_proj_bias", Ort: o + "/attn/in_proj/bias", SaltShape: []int{3 * d}})
		if !edges {
			norms()
		}
		linear(s+".attn.fn.out_proj", o+"/attn/out_proj", d, d)
		if edges {
			// One bias and one gate per head from each edge, and the
			// edges' update from the scores.
			linear(s+".attn.fn.linear_e", o+"/attn/linear_e", e.EdgeDim, e.Heads)
			linear(s+".attn.fn.linear_g", o+"/attn/linear_g", e.EdgeDim, e.Heads)
			if e.UpdateEdges {
				linear(s+".attn.fn.linear_e_out", o+"/attn/linear_e_out", e.Heads, e.EdgeDim)
			}
		}
		if blockNorm && rms {
			vector(s+".attn.norm.weight", o+"/attn_norm/weight", d)
		}
		if e.LayerScale > 0 {
			vector(s+".attn.ls.gamma", o+"/attn_layerscale/gamma", d)
		}
		if e.Gated {
			// Salt's gated in_proj chunks its output into the activated
			// half and the gate, in salt-ort's order.
			linear(s+".dense.fn.in_proj", o+"/dense/0", d, 2*hidden)
		} else {
			linear(s+".dense.fn.in_proj", o+"/dense/0", d, hidden)
		}
		linear(s+".dense.fn.out_proj", o+"/dense/1", hidden, d)
		if blockNorm && rms {
			vector(s+".dense.norm.weight", o+"/dense/norm/weight", d)
		}
		if e.LayerScale > 0 {
			vector(s+".dense.ls.gamma", o+"/dense/layerscale/gamma", d)
		}
	}
	if e.OutDim > 0 {
		linear("model.encoder.out_proj", "encoder/out_proj", d, e.OutDim)
	}
	if rms && !e.NoFinalNorm {
		vector("model.encoder.out_norm.weight", "encoder/out_norm/weight", width)
	}
	if f := fw[model.FeaturewiseEncoder]; f != nil {
		// The Transformer's featurewise list, one net per layer.
		for l := 0; l < e.Layers; l++ {
			featurewise(fmt.Sprintf("model.encoder.featurewise.%d", l), fmt.Sprintf("encoder/featurewise/layer%d", l), f, d)
		}
	}
	if spec.Pooling == model.AttentionPooling {
		linear("model.pool_net.gate_nn", "pooling/gate", width, 1)
	}
	return out
}

// buffer reports whether a state_dict entry of Salt's model is a buffer
// rather than a parameter: the input normalisation (norm.<input>_means and
// _stds), the register mask and the loss modules' class weights.
func buffer(name string) bool {
	switch {
	case len(name) > 5 && name[:5] == "norm.":
		return true
	case name == "model.encoder.register_mask":
		return true
	}
	var i int
	var rest string
	if n, _ := fmt.Sscanf(name, "model.tasks.%d.%s", &i, &rest); n == 2 {
		return rest == "loss.weight" || rest == "loss.pos_weight"
	}
	return false
}

// legacyParams lists the parameters of Salt's legacy TransformerEncoder
// (until 2026) with embedding d, in the order it registers them: per
// layer its MultiheadAttention (linear_q, linear_k, linear_v, and
// linear_out unless out_proj is false; ScaledDotProductAttention has
// none), its Dense, norm1 and norm2
// (nn.LayerNorm, weight and bias), then final_norm and final_linear.
func legacyParams(e nn.EncoderConfig, d int) []Param {
	var out []Param
	linear := func(salt, ort string, in, outDim int) {
		out = append(out,
			Param{Salt: salt + ".weight", Ort: ort + "/weight", SaltShape: []int{outDim, in}, Transpose: true},
			Param{Salt: salt + ".bias", Ort: ort + "/bias", SaltShape: []int{outDim}})
	}
	layerNorm := func(salt, ort string) {
		out = append(out,
			Param{Salt: salt + ".weight", Ort: ort + "/weight", SaltShape: []int{d}},
			Param{Salt: salt + ".bias", Ort: ort + "/bias", SaltShape: []int{d}})
	}
	for l := 0; l < e.Layers; l++ {
		out = append(out, legacyLayerParams(e, d, fmt.Sprintf("model.encoder.layers.%d", l), fmt.Sprintf("encoder/layer%d", l), false)...)
	}
	layerNorm("model.encoder.final_norm", "encoder/final_norm")
	if e.OutDim > 0 {
		linear("model.encoder.final_linear", "encoder/final_linear", d, e.OutDim)
	}
	return out
}

// legacyLayerParams lists the parameters of one of Salt's legacy
// TransformerEncoderLayer under Salt's prefix s and salt-ort's o: its
// MultiheadAttention (linear_q, linear_k, linear_v, and linear_out unless
// out_proj is false), its Dense, norm1 and norm2, and with cross the
// norm0 of a TransformerCrossAttentionLayer.
func legacyLayerParams(e nn.EncoderConfig, d int, s, o string, cross bool) []Param {
	var out []Param
	linear := func(salt, ort string, in, outDim int) {
		out = append(out,
			Param{Salt: salt + ".weight", Ort: ort + "/weight", SaltShape: []int{outDim, in}, Transpose: true},
			Param{Salt: salt + ".bias", Ort: ort + "/bias", SaltShape: []int{outDim}})
	}
	layerNorm := func(salt, ort string) {
		out = append(out,
			Param{Salt: salt + ".weight", Ort: ort + "/weight", SaltShape: []int{d}},
			Param{Salt: salt + ".bias", Ort: ort + "/bias", SaltShape: []int{d}})
	}
	projs := []string{"linear_q", "linear_k", "linear_v", "linear_out"}
	if e.NoOutProj {
		projs = projs[:3] // Salt registers linear_out as a None buffer
	}
	for _, proj := range projs {
		linear(s+".mha."+proj, o+"/mha/"+proj, d, d)
	}
	in := d
	for k, n := range append(append([]int{}, e.LegacyHidden(d)...), d) {
		linear(fmt.Sprintf("%s.dense.net.%d", s, legacyDenseIndex(k, e.Dropout > 0)), fmt.Sprintf("%s/dense/%d", o, k), in, n)
		in = n
	}
	layerNorm(s+".norm1", o+"/norm1")
	layerNorm(s+".norm2", o+"/norm2")
	if cross {
		layerNorm(s+".norm0", o+"/norm0")
	}
	return out
}

// crossAttentionParams lists the parameters of Salt's
// TransformerCrossAttentionEncoder with embedding d, in the order it
// registers them: type_layers (per group, per layer), cross_layers (per
// pair of groups, per cross-attention layer), final_norm and
// final_linear.
func crossAttentionParams(spec model.Spec, d int) []Param {
	e := spec.Encoder
	var out []Param
	for _, in := range spec.Inputs {
		for l := 0; l < e.Layers; l++ {
			out = append(out, legacyLayerParams(e, d,
				fmt.Sprintf("model.encoder.type_layers.%s.%d", in.Name, l), fmt.Sprintf("encoder/type_layers/%s/%d", in.Name, l), false)...)
		}
	}
	for a := range spec.Inputs {
		for b := a + 1; b < len(spec.Inputs); b++ {
			pair := spec.Inputs[a].Name + "_" + spec.Inputs[b].Name
			for k := 0; k < e.CrossAttentionLayers(); k++ {
				out = append(out, legacyLayerParams(e, d,
					fmt.Sprintf("model.encoder.cross_layers.%s.%d", pair, k), fmt.Sprintf("encoder/cross_layers/%s/%d", pair, k), true)...)
			}
		}
	}
	out = append(out,
		Param{Salt: "model.encoder.final_norm.weight", Ort: "encoder/final_norm/weight", SaltShape: []int{d}},
		Param{Salt: "model.encoder.final_norm.bias", Ort: "encoder/final_norm/bias", SaltShape: []int{d}})
	if e.OutDim > 0 {
		out = append(out,
			Param{Salt: "model.encoder.final_linear.weight", Ort: "encoder/final_linear/weight", SaltShape: []int{e.OutDim, d}, Transpose: true},
			Param{Salt: "model.encoder.final_linear.bias", Ort: "encoder/final_linear/bias", SaltShape: []int{e.OutDim}})
	}
	return out
}

// legacyDenseIndex is the index in a Salt Dense's nn.Sequential of its
// k-th Linear: each layer is [Dropout,] Linear, activation (none after the
// last), so the Linear layers sit at 2k, or 3k+1 with dropout.
func legacyDenseIndex(k int, dropout bool) int {
	if dropout {
		return 3*k + 1
	}
	return 2 * k
}

// featurewiseByLayer returns the model's featurewise transformations by
// the layer they apply to.
func featurewiseByLayer(spec model.Spec) map[model.FeaturewiseLayer]*model.Featurewise {
	m := map[model.FeaturewiseLayer]*model.Featurewise{}
	for i := range spec.Featurewise {
		m[spec.Featurewise[i].Layer] = &spec.Featurewise[i]
	}
	return m
}

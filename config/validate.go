package config

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/nn"
)

// taskKinds maps the configuration's task kinds to the model's.
var taskKinds = map[string]model.TaskKind{
	"jet_classification":         model.JetClassification,
	"constituent_classification": model.ConstituentClassification,
	"vertexing":                  model.Vertexing,
	"regression":                 model.JetRegression,
	"gaussian_regression":        model.JetGaussianRegression,
}

func (c *Config) errorf(key, format string, args ...any) error {
	return &Error{File: c.path, Line: lineOf(c.raw, lastPart(key)), Key: key, Msg: fmt.Sprintf(format, args...)}
}

// taskErrorf is errorf for a key of the task called task: the line is
// looked up after the task's name.
func (c *Config) taskErrorf(task, key, format string, args ...any) error {
	e := c.errorf(key, format, args...).(*Error)
	if start := lineOf(c.raw, "name", task); start > 0 {
		lines := strings.SplitAfter(string(c.raw), "\n")
		rest := strings.Join(lines[start-1:], "")
		if l := lineOf([]byte(rest), lastPart(key)); l > 0 {
			e.Line = start - 1 + l
		}
	}
	return e
}

func lastPart(key string) string {
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[i+1:]
	}
	return key
}

// Validate checks the configuration for consistency; each error names
// the key and what to do.
func (c *Config) Validate() error {
	d, m, t := &c.Data, &c.Model, &c.Training
	switch {
	case len(d.Train) == 0:
		return c.errorf("data.train", "no training files: list at least one HDF5 file")
	case len(d.Val) == 0:
		return c.errorf("data.val", "no validation files: list at least one HDF5 file (checkpoints are chosen on it)")
	case d.NormDict == "":
		return c.errorf("data.norm_dict", "required: Salt applies input normalisation; write one with `salt-ort norm`")
	case d.BatchSize < 1:
		return c.errorf("data.batch_size", "must be at least 1, got %d", d.BatchSize)
	case d.NumWorkers < 1:
		return c.errorf("data.num_workers", "must be at least 1, got %d", d.NumWorkers)
	case d.Prefetch < 1:
		return c.errorf("data.prefetch", "must be at least 1, got %d", d.Prefetch)
	case d.NonFinite != "error" && d.NonFinite != "zero":
		return c.errorf("data.non_finite", "must be \"error\" or \"zero\", got %q", d.NonFinite)
	case len(d.Variables[d.JetDataset]) == 0 && len(d.Variables[GlobalVariables]) == 0:
		return c.errorf("data.variables", "no variables for the jet dataset %q: add e.g. %s = [\"pt_btagJes\", \"eta_btagJes\"]", d.JetDataset, d.JetDataset)
	case d.JetDataset == GlobalVariables:
		return c.errorf("data.jet_dataset", "%q names the global variables of [data.variables]; name the jet dataset as the files do (e.g. \"jets\")", d.JetDataset)
	}
	for ds, vars := range d.Variables {
		seen := map[string]bool{}
		for _, v := range vars {
			if seen[v] {
				return c.errorf("data.variables", "variable %q is listed twice for %s", v, ds)
			}
			seen[v] = true
		}
	}

	if m.Name == "" {
		return c.errorf("model.name", "must not be empty (it prefixes the exported outputs, e.g. GN2_pb)")
	}
	if m.Flattens() {
		if err := c.validateFlatten(); err != nil {
			return err
		}
	} else if len(m.InitNets) == 0 {
		return c.errorf("model.init_nets", "no init nets: add one [[model.init_nets]] per constituent dataset (e.g. input = \"tracks\")")
	}
	nets := map[string]bool{}
	if m.Flattens() {
		nets[m.Pooling.Input] = true
	}
	for _, n := range m.InitNets {
		if n.Input == d.JetDataset {
			if err := c.validateJetNet(n); err != nil {
				return err
			}
			nets[n.Input] = true
			continue
		}
		if _, ok := d.Variables[n.Input]; !ok {
			return c.errorf("model.init_nets.input", "%q has no variables in [data.variables]", n.Input)
		}
		if nets[n.Input] {
			return c.errorf("model.init_nets.input", "two init nets for %q", n.Input)
		}
		nets[n.Input] = true
		if n.MaxLen < 0 {
			return c.errorf("model.init_nets.max_len", "%s: must be at least 1, or 0 for the training files' length; got %d", n.Input, n.MaxLen)
		}
		if n.Dropout < 0 || n.Dropout >= 1 {
			return c.errorf("model.init_nets.dropout", "%s: must be in [0, 1), got %g", n.Input, n.Dropout)
		}
		if _, err := nn.ParseActivation(n.Activation); err != nil {
			return c.errorf("model.init_nets.activation", "%s: %v", n.Input, err)
		}
		if n.FinalActivation != "" {
			if _, err := nn.ParseActivation(n.FinalActivation); err != nil {
				return c.errorf("model.init_nets.final_activation", "%s: %v", n.Input, err)
			}
		}
	}
	if _, jetOnly := c.JetNet(); !jetOnly && m.Pooling.Kind == "none" {
		return c.errorf("model.pooling.kind", "\"none\" is for a model that reads the jet variables alone: give it one [[model.init_nets]] with input = %q, or pool the constituents with \"attention\"", d.JetDataset)
	}
	for ds := range d.Variables {
		if ds != d.JetDataset && ds != GlobalVariables && ds != ParameterVariables && !nets[ds] {
			return c.errorf("data.variables", "dataset %q has variables but no [[model.init_nets]] entry reads it", ds)
		}
	}
	for ds, cuts := range d.Selections {
		if ds != d.JetDataset && !nets[ds] {
			return c.errorf("data.selections", "selections on %q, which is neither the jet dataset %q nor an init net's input", ds, d.JetDataset)
		}
		if len(cuts) == 0 {
			return c.errorf("data.selections", "%s: the list of cuts is empty", ds)
		}
	}
	if _, err := c.LoaderSelections(); err != nil {
		return err
	}
	if err := c.validateMultiTarget(); err != nil {
		return err
	}
	read := map[string]string{}
	for _, in := range sortedMapKeys(d.InputMap) {
		ds := d.InputMap[in]
		switch {
		case !nets[in] && in != d.JetDataset:
			return c.errorf("data.input_map", "%s: maps %q, which is neither the jet dataset %q nor an init net's input", in, in, d.JetDataset)
		case ds == "":
			return c.errorf("data.input_map", "%s: give the dataset it is read from, e.g. %s = \"%s_loose\"", in, in, in)
		case read[ds] != "":
			return c.errorf("data.input_map", "%s and %s are both read from dataset %q: map each input to a dataset of its own", read[ds], in, ds)
		}
		read[ds] = in
	}
	if err := c.validateEncoder(); err != nil {
		return err
	}
	if err := c.validateMuP(); err != nil {
		return err
	}
	if err := c.validateEdges(); err != nil {
		return err
	}
	if err := c.validateConditioning(); err != nil {
		return err
	}
	if k := m.Pooling.Kind; k != "attention" && k != "none" && k != "flatten" {
		return c.errorf("model.pooling.kind", "must be \"attention\" (Salt's global attention pooling), \"none\" (a model reading the jet variables alone) or \"flatten\" (Salt's R21Xbb), got %q", k)
	}
	if k := m.Pooling.Kind; k != "flatten" && (m.Pooling.Input != "" || m.Pooling.MaxLen != 0) {
		return c.errorf("model.pooling", "input and max_len are keys of kind = \"flatten\" (the init nets give the others' datasets and lengths): remove them")
	}
	if len(m.Tasks) == 0 {
		return c.errorf("model.tasks", "no tasks: add at least one [[model.tasks]]")
	}
	names := map[string]bool{}
	for _, task := range m.Tasks {
		if err := c.validateTask(task, names); err != nil {
			return err
		}
		if t.LossWeighting == "GLS" && *task.Weight != 1 {
			return c.taskErrorf(task.Name, "model.tasks.weight", "task %s: weight %g, but the geometric loss strategy (training.loss_weighting = \"GLS\") does not use task weights, as Salt's: remove the weight or set it to 1", task.Name, *task.Weight)
		}
	}

	if err := c.validateMaskFormer(); err != nil {
		return err
	}
	if err := c.ValidateTraining(); err != nil {
		return err
	}
	if mon := t.Checkpoints.Monitor; mon != "val_loss" && !(strings.HasPrefix(mon, "val_loss/") && names[strings.TrimPrefix(mon, "val_loss/")]) {
		return c.errorf("training.checkpoints.monitor", "must be \"val_loss\" or \"val_loss/<task name>\", got %q", mon)
	}
	return nil
}

// validateEdges checks the edge features: Salt's edge constructor, edge
// init net and the encoder's edge_embed_dim and update_edges.
func (c *Config) validateEdges() error {
	d, m := &c.Data, &c.Model
	e := m.Encoder
	switch {
	case len(d.EdgeConstructors) > 1:
		return c.errorf("data.edge_constructors", "%d edge constructors: salt-ort, as Salt, computes edge features for one dataset", len(d.EdgeConstructors))
	case len(m.EdgeInitNets) > 1:
		return c.errorf("model.edge_init_nets", "%d edge init nets: one embeds the edge features of the one edge constructor", len(m.EdgeInitNets))
	case len(d.EdgeConstructors) != len(m.EdgeInitNets):
		if len(d.EdgeConstructors) == 0 {
			return c.errorf("model.edge_init_nets", "there are no edge features to embed: add a [[data.edge_constructors]] entry, or remove the edge init net")
		}
		return c.errorf("model.edge_init_nets", "the edge features of [[data.edge_constructors]] need an edge init net: add [[model.edge_init_nets]] with input = %q", d.EdgeConstructors[0].Input)
	case e.EdgeEmbedDim < 0:
		return c.errorf("model.encoder.edge_embed_dim", "must not be negative, got %d", e.EdgeEmbedDim)
	case len(d.EdgeConstructors) == 0 && e.EdgeEmbedDim > 0:
		return c.errorf("model.encoder.edge_embed_dim", "%d, but there are no edge features: add [[data.edge_constructors]] and [[model.edge_init_nets]], or remove edge_embed_dim", e.EdgeEmbedDim)
	case len(d.EdgeConstructors) == 0 && e.UpdateEdges:
		return c.errorf("model.encoder.update_edges", "there are no edge features to update: add [[data.edge_constructors]], or remove update_edges")
	case len(d.EdgeConstructors) == 0:
		return nil
	}
	ec, en := d.EdgeConstructors[0], m.EdgeInitNets[0]
	nets := c.ConstituentNets()
	switch {
	case e.Layers == 0:
		return c.errorf("data.edge_constructors", "edge features are used by the encoder's attention: give the encoder layers")
	case e.EdgeEmbedDim == 0:
		return c.errorf("model.encoder.edge_embed_dim", "the edge init net's output width is needed: set edge_embed_dim (Salt's, e.g. 32)")
	case len(nets) == 0 || nets[0].Input != ec.Input:
		return c.errorf("data.edge_constructors.input", "%q must be the dataset of the first [[model.init_nets]] entry, as Salt puts the input with edges first: move its init net first", ec.Input)
	case en.Input != ec.Input:
		return c.errorf("model.edge_init_nets.input", "%q, but the edge constructor's input is %q", en.Input, ec.Input)
	case len(ec.EdgeFeatures) == 0:
		return c.errorf("data.edge_constructors.edge_features", "empty: list any of %s", edgeFeatureList())
	case *en.AttachGlobal:
		return c.errorf("model.edge_init_nets.attach_global", "Salt's edge init nets attach nothing: remove it")
	case en.MaxLen != 0:
		return c.errorf("model.edge_init_nets.max_len", "the edges have the length of %s's init net: remove it", en.Input)
	case en.Dropout != 0:
		return c.errorf("model.edge_init_nets.dropout", "dropout on the edge init net would need a mask over every pair of constituents, which salt-ort does not draw: remove it")
	}
	seen := map[string]bool{}
	for _, f := range ec.EdgeFeatures {
		if _, ok := model.EdgeFeatures[f]; !ok || seen[f] {
			return c.errorf("data.edge_constructors.edge_features", "%q is unknown or repeated: list any of %s", f, edgeFeatureList())
		}
		seen[f] = true
	}
	edges := c.edges()
	for name, v := range ec.Variables {
		if !slices.Contains([]string{"eta", "phi", "pt", "energy", "subjetIndex"}, name) {
			return c.errorf("data.edge_constructors.variables", "%q is none of the variables edge features need (eta, phi, pt, energy, subjetIndex)", name)
		}
		if !slices.Contains(edges.Needs(), name) {
			return c.errorf("data.edge_constructors.variables", "%s = %q: none of the edge features %s needs %s", name, v, strings.Join(ec.EdgeFeatures, ", "), name)
		}
	}
	vars := d.Variables[ec.Input]
	for _, v := range edges.Needs() {
		if f := edges.Variable(v); !slices.Contains(vars, f) {
			return c.errorf("data.edge_constructors", "edge features %s need %s, read from %q, which is not an input variable of %s: add it to [data.variables] %s (the deployed model computes the edges from its inputs), or map %s to one in [data.edge_constructors.variables]",
				strings.Join(ec.EdgeFeatures, ", "), v, f, ec.Input, ec.Input, v)
		}
	}
	if _, err := nn.ParseActivation(en.Activation); err != nil {
		return c.errorf("model.edge_init_nets.activation", "%v", err)
	}
	if en.FinalActivation != "" {
		if _, err := nn.ParseActivation(en.FinalActivation); err != nil {
			return c.errorf("model.edge_init_nets.final_activation", "%v", err)
		}
	}
	return nil
}

// edgeFeatureList lists the edge features Salt computes.
func edgeFeatureList() string {
	var names []string
	for f := range model.EdgeFeatures {
		names = append(names, strconv.Quote(f))
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// edges returns the model's edge features, or nil.
func (c *Config) edges() *model.Edges {
	if len(c.Data.EdgeConstructors) == 0 || len(c.Model.EdgeInitNets) == 0 {
		return nil
	}
	ec, en := c.Data.EdgeConstructors[0], c.Model.EdgeInitNets[0]
	a, _ := nn.ParseActivation(en.Activation)
	final := nn.None
	if en.FinalActivation != "" {
		final, _ = nn.ParseActivation(en.FinalActivation)
	}
	return &model.Edges{Input: ec.Input, Features: ec.EdgeFeatures, Vars: ec.Variables, Hidden: en.Hidden, Activation: a, FinalActivation: final}
}

// Edges returns the model's edge features (nil without): the loader reads
// the raw variables they are computed from.
func (c *Config) Edges() *model.Edges { return c.edges() }

// validateConditioning checks the parameters and the featurewise nets.
func (c *Config) validateConditioning() error {
	d, m := &c.Data, &c.Model
	names := d.Variables[ParameterVariables]
	for _, name := range names {
		p, ok := d.Parameters[name]
		switch {
		case !ok:
			return c.errorf("data.parameters", "parameter %q of [data.variables] parameters has no [data.parameters.%s] table: give its train values and test value, as Salt's data.parameters does", name, name)
		case len(p.Train) == 0:
			return c.errorf("data.parameters."+name+".train", "no values: list the values of %s the training set has", name)
		case p.Test == nil:
			return c.errorf("data.parameters."+name+".test", "missing: give the value of %s the evaluation uses", name)
		case p.Prob != nil && len(p.Prob) != len(p.Train):
			return c.errorf("data.parameters."+name+".prob", "%d probabilities for %d train values", len(p.Prob), len(p.Train))
		case slices.Contains(d.JetInputVariables(), name):
			return c.errorf("data.variables", "%q is both a parameter and a jet variable", name)
		}
		if p.Prob != nil {
			sum := 0.0
			for _, x := range p.Prob {
				if x < 0 {
					return c.errorf("data.parameters."+name+".prob", "negative probability %g", x)
				}
				sum += x
			}
			if math.Abs(sum-1) > 1e-6 {
				return c.errorf("data.parameters."+name+".prob", "the probabilities sum to %g, not 1", sum)
			}
		}
	}
	for name := range d.Parameters {
		if !slices.Contains(names, name) {
			return c.errorf("data.parameters", "[data.parameters.%s], but %q is not listed in [data.variables] parameters", name, name)
		}
	}
	layers := map[string]bool{}
	for _, f := range m.FeaturewiseNets {
		switch {
		case len(names) == 0:
			return c.errorf("model.featurewise_nets", "featurewise nets transform features by networks of the parameters: list them in [data.variables] parameters")
		case f.Layer != "input" && f.Layer != "encoder" && f.Layer != "global":
			return c.errorf("model.featurewise_nets.layer", "must be \"input\", \"encoder\" or \"global\" (Salt's layers), got %q", f.Layer)
		case layers[f.Layer]:
			return c.errorf("model.featurewise_nets.layer", "two featurewise nets of the %s layer: give one, with dense_config_scale and dense_config_bias", f.Layer)
		case f.DenseConfigScale == nil && f.DenseConfigBias == nil:
			return c.errorf("model.featurewise_nets", "the %s layer's featurewise net needs dense_config_scale or dense_config_bias", f.Layer)
		case f.Layer == "encoder" && m.Encoder.Layers == 0:
			return c.errorf("model.featurewise_nets.layer", "\"encoder\" transforms the encoder layers' inputs, but there is no encoder")
		}
		layers[f.Layer] = true
		for k, dc := range map[string]*FeaturewiseDense{"dense_config_scale": f.DenseConfigScale, "dense_config_bias": f.DenseConfigBias} {
			if dc == nil {
				continue
			}
			key := "model.featurewise_nets." + k
			if _, err := nn.ParseActivation(dc.Activation); err != nil {
				return c.errorf(key+".activation", "%v", err)
			}
			if dc.FinalActivation != "" {
				if _, err := nn.ParseActivation(dc.FinalActivation); err != nil {
					return c.errorf(key+".final_activation", "%v", err)
				}
			}
			if dc.OutputSize != 0 {
				if want := c.featurewiseWidths(f.Layer); !slices.Equal(want, []int{dc.OutputSize}) {
					return c.errorf(key+".output_size", "%d, but the %s layer has %v features", dc.OutputSize, f.Layer, want)
				}
			}
		}
	}
	return nil
}

// featurewiseWidths lists the widths of the features a featurewise net
// of layer transforms (one per init net for the input layer; salt-ort
// sizes each init net's own).
func (c *Config) featurewiseWidths(layer string) []int {
	m := &c.Model
	switch layer {
	case "encoder":
		return []int{m.EmbedDim}
	case "global":
		return []int{m.width()}
	}
	var out []int
	for _, n := range m.InitNets {
		w := len(c.Data.Variables[c.Data.JetDataset])
		if n.Input != c.Data.JetDataset {
			if !*n.AttachGlobal {
				w = 0
			}
			w += len(c.Data.Variables[n.Input])
		}
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}

// conditioning returns the model's parameters and featurewise
// transformations.
func (c *Config) conditioning() ([]model.Parameter, []model.Featurewise) {
	var params []model.Parameter
	for _, name := range c.Data.Variables[ParameterVariables] {
		p := c.Data.Parameters[name]
		params = append(params, model.Parameter{Name: name, Train: p.Train, Prob: p.Prob, Test: *p.Test})
	}
	var fws []model.Featurewise
	dense := func(d *FeaturewiseDense) *model.FeaturewiseDense {
		if d == nil {
			return nil
		}
		a, _ := nn.ParseActivation(d.Activation)
		final := nn.None
		if d.FinalActivation != "" {
			final, _ = nn.ParseActivation(d.FinalActivation)
		}
		return &model.FeaturewiseDense{Hidden: d.Hidden, Activation: a, FinalActivation: final}
	}
	for _, f := range c.Model.FeaturewiseNets {
		fws = append(fws, model.Featurewise{Layer: model.FeaturewiseLayer(f.Layer), Scale: dense(f.DenseConfigScale), Bias: dense(f.DenseConfigBias), Norm: f.ApplyNorm})
	}
	return params, fws
}

// validateJetNet checks the init net of the jet dataset: the one init
// net of a model that reads the jet variables alone (Salt's DL1, whose
// pool_net and encoder are unset).
func (c *Config) validateJetNet(n InitNet) error {
	m := &c.Model
	switch {
	case len(m.InitNets) > 1:
		return c.errorf("model.init_nets.input", "%q is the jet dataset: an init net on it makes a model of the jet variables alone, which has no other init net; remove the others, or the jet dataset's (the jet variables are attached to every constituent anyway)", n.Input)
	case m.Pooling.Kind != "none":
		return c.errorf("model.pooling.kind", "a model of the jet variables alone (init net on %q) has nothing to pool: set kind = \"none\"", n.Input)
	case m.Encoder.Layers != 0:
		return c.errorf("model.encoder.layers", "a model of the jet variables alone (init net on %q) has no constituents to encode: set layers = 0", n.Input)
	case n.MaxLen != 0:
		return c.errorf("model.init_nets.max_len", "%s is the jet dataset, one row per jet: remove max_len", n.Input)
	case n.AttachGlobal != nil && *n.AttachGlobal:
		return c.errorf("model.init_nets.attach_global", "%s is the jet dataset, whose variables are the init net's input already: remove attach_global or set it false", n.Input)
	case n.Dropout < 0 || n.Dropout >= 1:
		return c.errorf("model.init_nets.dropout", "%s: must be in [0, 1), got %g", n.Input, n.Dropout)
	}
	if _, err := nn.ParseActivation(n.Activation); err != nil {
		return c.errorf("model.init_nets.activation", "%s: %v", n.Input, err)
	}
	if n.FinalActivation != "" {
		if _, err := nn.ParseActivation(n.FinalActivation); err != nil {
			return c.errorf("model.init_nets.final_activation", "%s: %v", n.Input, err)
		}
	}
	return nil
}

// encoderKeys are the [model.encoder] keys besides layers, which have no
// effect without an encoder.
var encoderKeys = []string{"kind", "hidden", "heads", "dense_ratio", "activation", "registers", "out_dim", "final_norm", "out_proj", "dropout", "attn_dropout",
	"gated", "norm", "norm_type", "ls_init", "drop_path", "do_qk_norm", "do_v_norm", "edge_embed_dim", "update_edges", "drop_registers", "mup"}

// validateEncoder checks [model.encoder]; with layers = 0 (no encoder)
// it refuses any other key set in the file.
func (c *Config) validateEncoder() error {
	m := &c.Model
	e := m.Encoder
	switch {
	case m.EmbedDim < 1:
		return c.errorf("model.embed_dim", "must be at least 1, got %d", m.EmbedDim)
	case e.Layers < 0:
		return c.errorf("model.encoder.layers", "must be at least 1, or 0 for no encoder, got %d", e.Layers)
	case e.Layers == 0:
		for _, k := range encoderKeys {
			if key := "model.encoder." + k; c.Defined(key) && !reflect.ValueOf(fieldOf(&e, k)).IsZero() {
				return c.errorf(key, "has no effect without an encoder (layers = 0): remove it, or give the encoder layers")
			}
		}
		return nil
	case e.Heads < 1 || m.EmbedDim%e.Heads != 0:
		return c.errorf("model.encoder.heads", "embed_dim %d must be divisible by heads %d", m.EmbedDim, e.Heads)
	case e.DenseRatio < 1:
		return c.errorf("model.encoder.dense_ratio", "must be at least 1, got %d", e.DenseRatio)
	case e.Registers < 0:
		return c.errorf("model.encoder.registers", "must not be negative, got %d", e.Registers)
	case e.DropRegisters && e.Registers == 0:
		return c.errorf("model.encoder.drop_registers", "leaves the registers out of the pooling, but the encoder has none (registers = 0): remove it, or give registers")
	case e.OutDim < 0:
		return c.errorf("model.encoder.out_dim", "must be at least 1, or 0 for no output projection, got %d", e.OutDim)
	case e.Dropout < 0 || e.Dropout >= 1:
		return c.errorf("model.encoder.dropout", "must be in [0, 1), got %g", e.Dropout)
	case e.AttnDropout < 0 || e.AttnDropout >= 1:
		return c.errorf("model.encoder.attn_dropout", "must be in [0, 1), got %g", e.AttnDropout)
	case e.DropPath < 0 || e.DropPath >= 1:
		return c.errorf("model.encoder.drop_path", "must be in [0, 1), got %g", e.DropPath)
	case e.LSInit < 0:
		return c.errorf("model.encoder.ls_init", "must be positive, or 0 for no LayerScale, got %g", e.LSInit)
	case e.Norm != "LayerNorm" && e.Norm != "RMSNorm":
		return c.errorf("model.encoder.norm", "must be \"LayerNorm\" or \"RMSNorm\" (Salt's norms), got %q", e.Norm)
	case e.NormType != "pre" && e.NormType != "post" && e.NormType != "hybrid":
		return c.errorf("model.encoder.norm_type", "must be \"pre\", \"post\" or \"hybrid\" (Salt's norm_type), got %q", e.NormType)
	case e.NormType == "hybrid" && c.Defined("model.encoder.do_qk_norm") && !e.DoQKNorm:
		return c.errorf("model.encoder.do_qk_norm", "norm_type = \"hybrid\" normalises queries and keys, as Salt's: remove do_qk_norm = false")
	case e.NormType == "hybrid" && c.Defined("model.encoder.do_v_norm") && !e.DoVNorm:
		return c.errorf("model.encoder.do_v_norm", "norm_type = \"hybrid\" normalises values, as Salt's: remove do_v_norm = false")
	}
	if _, err := nn.ParseActivation(e.Activation); err != nil {
		return c.errorf("model.encoder.activation", "%v", err)
	}
	switch e.Kind {
	case "", "transformer":
		if len(e.Hidden) > 0 {
			return c.errorf("model.encoder.hidden", "sizes the dense block of kind = \"legacy\" only; Salt's Transformer sizes it by dense_ratio: remove hidden, or set kind = \"legacy\"")
		}
		if !e.OutProj {
			return c.errorf("model.encoder.out_proj", "false is for kind = \"legacy\" only (Salt's TransformerEncoder's mha_config.out_proj); Salt's Transformer always projects the attention's output: remove it, or set kind = \"legacy\"")
		}
	case "legacy", "cross_attention":
		if e.CAEveryLayer && e.Kind != "cross_attention" {
			return c.errorf("model.encoder.ca_every_layer", "is for kind = \"cross_attention\" only (Salt's TransformerCrossAttentionEncoder): remove it")
		}
		return c.validateLegacyEncoder()
	default:
		return c.errorf("model.encoder.kind", "must be \"transformer\" (Salt's Transformer), \"legacy\" (Salt's TransformerEncoder, until 2026) or \"cross_attention\" (Salt's TransformerCrossAttentionEncoder), got %q", e.Kind)
	}
	if e.CAEveryLayer {
		return c.errorf("model.encoder.ca_every_layer", "is for kind = \"cross_attention\" only (Salt's TransformerCrossAttentionEncoder): remove it")
	}
	return nil
}

// validateLegacyEncoder checks the keys of [model.encoder] with
// kind = "legacy": Salt's TransformerEncoder has none of the later
// Transformer's options.
func (c *Config) validateLegacyEncoder() error {
	e := c.Model.Encoder
	for _, h := range e.Hidden {
		if h < 1 {
			return c.errorf("model.encoder.hidden", "sizes must be at least 1, got %v", e.Hidden)
		}
	}
	for _, o := range []struct {
		key string
		set bool
	}{
		{"registers", e.Registers != 0},
		{"final_norm", !e.FinalNorm},
		{"gated", e.Gated},
		{"norm", e.Norm != "LayerNorm"},
		{"norm_type", e.NormType != "pre"},
		{"ls_init", e.LSInit != 0},
		{"drop_path", e.DropPath != 0},
		{"do_qk_norm", e.DoQKNorm},
		{"do_v_norm", e.DoVNorm},
		{"edge_embed_dim", e.EdgeEmbedDim != 0},
		{"update_edges", e.UpdateEdges},
	} {
		if o.set {
			return c.errorf("model.encoder."+o.key, "kind = %q (built of Salt's legacy TransformerEncoder layers) has no %s: remove it, or use kind = \"transformer\"", e.Kind, o.key)
		}
	}
	if len(c.Data.EdgeConstructors) > 0 {
		return c.errorf("model.encoder.kind", "%q: salt-ort's legacy encoders take no edge features; remove [[data.edge_constructors]], or use kind = \"transformer\"", e.Kind)
	}
	return nil
}

// fieldOf returns the value of the field of *s whose toml tag is tag.
func fieldOf(s any, tag string) any {
	v := reflect.ValueOf(s).Elem()
	f, _ := fieldByTag(v.Type(), tag)
	return v.FieldByIndex(f.Index).Interface()
}

// ValidateTraining checks the [training] table alone, for commands such as
// bench that use its settings without data (Validate includes it).
func (c *Config) ValidateTraining() error {
	t := &c.Training
	switch {
	case t.Epochs < 1:
		return c.errorf("training.epochs", "must be at least 1, got %d", t.Epochs)
	case t.Threads < 0:
		return c.errorf("training.threads", "must not be negative, got %d", t.Threads)
	case t.Device != "cpu" && t.Device != "cuda":
		return c.errorf("training.device", "must be \"cpu\" or \"cuda\", got %q", t.Device)
	case t.Precision != "fp32" && t.Precision != "tf32" && t.Precision != "fp16" && t.Precision != "bf16":
		return c.errorf("training.precision", "must be \"fp32\", \"tf32\", \"fp16\" or \"bf16\", got %q", t.Precision)
	case t.Precision != "fp32" && t.Device != "cuda":
		return c.errorf("training.precision", "%q needs device = \"cuda\"; on the CPU use \"fp32\" (ONNX Runtime's CPU provider has no half-precision kernels for these graphs)", t.Precision)
	case t.LossWeighting != "static" && t.LossWeighting != "uncertainty" && t.LossWeighting != "GLS":
		return c.errorf("training.loss_weighting", "must be \"static\", \"uncertainty\" or \"GLS\", got %q", t.LossWeighting)
	case t.Optimizer.Name != "adamw" && t.Optimizer.Name != "sgd" && t.Optimizer.Name != "lion":
		return c.errorf("training.optimizer.name", "must be \"adamw\", \"sgd\" or \"lion\", got %q", t.Optimizer.Name)
	case t.Optimizer.WeightDecay < 0:
		return c.errorf("training.optimizer.weight_decay", "must not be negative, got %g", t.Optimizer.WeightDecay)
	case t.LR.Initial <= 0 || t.LR.Max <= 0 || t.LR.End <= 0:
		return c.errorf("training.lr", "initial, max and end must be positive (got %g, %g, %g)", t.LR.Initial, t.LR.Max, t.LR.End)
	case t.LR.WarmupFraction <= 0 || t.LR.WarmupFraction >= 1:
		return c.errorf("training.lr.warmup_fraction", "must be in (0, 1), got %g", t.LR.WarmupFraction)
	case t.LR.CycleMomentum && !(t.LR.BaseMomentum > 0 && t.LR.BaseMomentum < 1 && t.LR.MaxMomentum > 0 && t.LR.MaxMomentum < 1):
		return c.errorf("training.lr", "cycle_momentum needs 0 < base_momentum, max_momentum < 1 (got %g, %g); set cycle_momentum = false to keep the optimizer's own", t.LR.BaseMomentum, t.LR.MaxMomentum)
	case t.GradClip < 0:
		return c.errorf("training.grad_clip", "must not be negative, got %g", t.GradClip)
	case t.Checkpoints.SaveTopK < 1:
		return c.errorf("training.checkpoints.save_top_k", "must be at least 1, got %d", t.Checkpoints.SaveTopK)
	case t.EarlyStopping.Patience < 0:
		return c.errorf("training.early_stopping.patience", "must not be negative, got %d", t.EarlyStopping.Patience)
	case t.LogEvery < 1:
		return c.errorf("training.log_every", "must be at least 1, got %d", t.LogEvery)
	case !(t.CollectiveTimeout > 0):
		return c.errorf("training.collective_timeout", "must be a positive number of seconds, got %g", t.CollectiveTimeout)
	}
	if t.Optimizer.Name == "adamw" && (t.Optimizer.Beta1 <= 0 || t.Optimizer.Beta1 >= 1 || t.Optimizer.Beta2 <= 0 || t.Optimizer.Beta2 >= 1 || t.Optimizer.Eps <= 0) {
		return c.errorf("training.optimizer", "AdamW needs 0 < beta1, beta2 < 1 and eps > 0")
	}
	if t.Optimizer.Name == "lion" && (t.Optimizer.Beta1 <= 0 || t.Optimizer.Beta1 >= 1 || t.Optimizer.Beta2 <= 0 || t.Optimizer.Beta2 >= 1) {
		return c.errorf("training.optimizer", "Lion needs 0 < beta1, beta2 < 1 (lion-pytorch's are 0.9 and 0.99)")
	}
	return nil
}

// TaskKind returns the model's kind of a configured task: a regression
// whose input is a constituent dataset regresses each constituent's
// targets. ok is false for an unknown kind.
func (c *Config) TaskKind(t Task) (kind model.TaskKind, ok bool) {
	kind, ok = taskKinds[t.Kind]
	if t.Input != "" && t.Input != c.Data.JetDataset {
		switch kind {
		case model.JetRegression:
			kind = model.ConstituentRegression
		case model.JetGaussianRegression:
			kind = model.ConstituentGaussianRegression
		}
	}
	return kind, ok
}

func (c *Config) validateTask(task Task, names map[string]bool) error {
	key := func(k string) string { return "model.tasks." + k }
	d, m := &c.Data, &c.Model
	kind, ok := c.TaskKind(task)
	switch {
	case task.Name == "":
		return c.errorf(key("name"), "a task has no name")
	case names[task.Name]:
		return c.errorf(key("name"), "task name %q is used twice", task.Name)
	case !ok:
		return c.taskErrorf(task.Name, key("kind"), "task %s: unknown kind %q (want jet_classification, track_classification, vertexing, regression or gaussian_regression)", task.Name, task.Kind)
	case task.Label == "" && len(task.Targets) == 0 && !task.UseLabeller:
		return c.taskErrorf(task.Name, key("label"), "task %s: no label field", task.Name)
	case *task.Weight < 0:
		return c.taskErrorf(task.Name, key("weight"), "task %s: must not be negative, got %g", task.Name, *task.Weight)
	}
	names[task.Name] = true
	if _, err := nn.ParseActivation(task.Activation); err != nil {
		return c.taskErrorf(task.Name, key("activation"), "task %s: %v", task.Name, err)
	}
	perTrack := kind.PerConstituent()
	if perTrack {
		found := false
		for _, n := range c.ConstituentNets() {
			found = found || n.Input == task.Input
		}
		if !found {
			return c.taskErrorf(task.Name, key("input"), "task %s: input %q is not a constituent dataset with an init net", task.Name, task.Input)
		}
	} else if task.Input != "" && task.Input != d.JetDataset {
		return c.taskErrorf(task.Name, key("input"), "task %s: a jet-level task reads the jet dataset %q, not %q", task.Name, d.JetDataset, task.Input)
	}
	classification := kind == model.JetClassification || kind == model.ConstituentClassification
	if err := c.namesErr[task.Name]; err != nil && namesFromFile(task) {
		return err
	}
	if err := c.validateLoss(task, kind); err != nil {
		return err
	}
	binary := task.Loss == "BCEWithLogitsLoss" && classification
	if classification && !binary && len(task.ClassNames) < 2 {
		hint := " (a binary classification has one, with loss = \"BCEWithLogitsLoss\")"
		if len(task.ClassNames) == 0 && kind == model.JetClassification {
			hint = fmt.Sprintf(": list them in label order (only a task with label = %q and no label_map or use_labeller may leave them to the %s attribute of the training file's jet dataset)", FlavourLabel, FlavourLabel)
		}
		return c.taskErrorf(task.Name, key("class_names"), "task %s: a classification needs at least 2 class names, got %d%s", task.Name, len(task.ClassNames), hint)
	}
	if binary && len(task.ClassNames) != 1 {
		return c.taskErrorf(task.Name, key("class_names"), "task %s: a binary classification (loss = \"BCEWithLogitsLoss\") has one output and one class name, the class label 1 means (e.g. [\"signal\"]); got %d", task.Name, len(task.ClassNames))
	}
	if binary && (task.UseClassDict || len(task.ClassWeights) > 0) {
		return c.taskErrorf(task.Name, key("class_weights"), "task %s: a binary classification (loss = \"BCEWithLogitsLoss\") takes no class weights: remove class_weights and use_class_dict", task.Name)
	}
	if !classification && (len(task.ClassNames) > 0 || task.UseClassDict || len(task.ClassWeights) > 0) {
		return c.taskErrorf(task.Name, key("class_names"), "task %s: class names and weights belong to classification tasks", task.Name)
	}
	if kind.Regression() && len(task.Targets) == 0 {
		return c.taskErrorf(task.Name, key("targets"), "task %s: list the fields of %s to regress in targets", task.Name, c.taskDataset(task))
	}
	if err := c.validateScaling(task, kind); err != nil {
		return err
	}
	if task.SampleWeight != "" && kind == model.Vertexing {
		return c.taskErrorf(task.Name, key("sample_weight"), "task %s: vertexing weighs pairs of constituents (origin_label), not single entries: remove sample_weight", task.Name)
	}
	if task.UseClassDict && d.ClassDict == "" {
		return c.errorf("data.class_dict", "task %s sets use_class_dict but no class_dict is given; write one with `salt-ort norm`", task.Name)
	}
	if task.UseClassDict && len(task.ClassWeights) > 0 {
		return c.taskErrorf(task.Name, key("class_weights"), "task %s: give class_weights or use_class_dict, not both", task.Name)
	}
	if len(task.ClassWeights) > 0 && len(task.ClassWeights) != len(task.ClassNames) {
		return c.taskErrorf(task.Name, key("class_weights"), "task %s: %d class weights for %d classes", task.Name, len(task.ClassWeights), len(task.ClassNames))
	}
	if task.OriginLabel != "" && kind != model.Vertexing {
		return c.taskErrorf(task.Name, key("origin_label"), "task %s: origin_label is for vertexing tasks", task.Name)
	}
	if !classification && (len(task.LabelMap) > 0 || task.UseLabeller) {
		return c.taskErrorf(task.Name, key("label_map"), "task %s: label_map and use_labeller belong to classification tasks", task.Name)
	}
	if task.UseLabeller && kind != model.JetClassification {
		return c.taskErrorf(task.Name, key("use_labeller"), "task %s: use_labeller labels jets by their flavour; it is for jet_classification tasks", task.Name)
	}
	if task.UseLabeller && len(task.LabelMap) > 0 {
		return c.taskErrorf(task.Name, key("label_map"), "task %s: give label_map or use_labeller, not both", task.Name)
	}
	if classification {
		if _, err := c.TaskLabel(task); err != nil {
			return err
		}
	}
	spec := model.Task{Kind: kind, Classes: task.ClassNames, Targets: task.Targets, Loss: c.taskLoss(task, kind)}
	if task.OutputSize != 0 && task.OutputSize != spec.Outputs() {
		return c.taskErrorf(task.Name, key("output_size"), "task %s: output_size %d, but the task has %d outputs (%d class names / targets)",
			task.Name, task.OutputSize, spec.Outputs(), max(len(task.ClassNames), len(task.Targets)))
	}
	global := len(d.Variables[GlobalVariables])
	context := m.width() + global
	if task.ContextSize != nil {
		switch {
		case !kind.PerConstituent() || kind == model.Vertexing:
			return c.taskErrorf(task.Name, key("context_size"), "task %s: only a constituent classification or regression may set context_size (0: its head reads the constituent's features alone)", task.Name)
		case *task.ContextSize != 0 && *task.ContextSize != context:
			return c.taskErrorf(task.Name, key("context_size"), "task %s: context_size %d, but the pooled jet representation the head reads as context has %d features; give %d, or 0 for no context", task.Name, *task.ContextSize, context, context)
		}
	}
	in := m.width()
	switch {
	case kind == model.Vertexing:
		in = 3*m.width() + global
	case kind.PerConstituent() && task.noContext():
	case kind.PerConstituent():
		in = 2*m.width() + global
	default:
		in += global
	}
	if task.InputSize != 0 && task.InputSize != in {
		extra := ""
		if global > 0 {
			extra = fmt.Sprintf(" and %d global variables", global)
		}
		return c.taskErrorf(task.Name, key("input_size"), "task %s: input_size %d, but the head reads %d features (encoder output width %d%s)", task.Name, task.InputSize, in, m.width(), extra)
	}
	return nil
}

// taskLosses are the losses a task of each kind may name in loss, the
// kind's default first.
var taskLosses = map[model.TaskKind][]string{
	model.JetClassification:             {"CrossEntropyLoss", "BCEWithLogitsLoss"},
	model.ConstituentClassification:     {"CrossEntropyLoss", "BCEWithLogitsLoss"},
	model.Vertexing:                     {"BCEWithLogitsLoss"},
	model.JetRegression:                 {"MSELoss", "HuberLoss", "L1Loss"},
	model.ConstituentRegression:         {"MSELoss", "HuberLoss", "L1Loss"},
	model.JetGaussianRegression:         {"GaussianNLLLoss"},
	model.ConstituentGaussianRegression: {"GaussianNLLLoss"},
}

// validateLoss checks a task's loss, loss_mean and dropout keys.
func (c *Config) validateLoss(task Task, kind model.TaskKind) error {
	key := func(k string) string { return "model.tasks." + k }
	if task.Loss != "" && !slices.Contains(taskLosses[kind], task.Loss) {
		return c.taskErrorf(task.Name, key("loss"), "task %s: a %s task's loss is one of %s (Salt's class names without torch.nn.), got %q", task.Name, task.Kind, strings.Join(taskLosses[kind], ", "), task.Loss)
	}
	if task.HuberDelta != 0 && (task.Loss == "MSELoss" || task.Loss == "L1Loss") {
		return c.taskErrorf(task.Name, key("huber_delta"), "task %s: huber_delta is the HuberLoss's, but loss is %q: remove one of them", task.Name, task.Loss)
	}
	if task.HuberDelta < 0 {
		return c.taskErrorf(task.Name, key("huber_delta"), "task %s: must be positive, got %g", task.Name, task.HuberDelta)
	}
	switch task.LossMean {
	case "", "weighted":
	case "entries":
		if kind == model.Vertexing {
			return c.taskErrorf(task.Name, key("loss_mean"), "task %s: vertexing divides its pair losses by the number of true pairs, as Salt's: remove loss_mean", task.Name)
		}
	default:
		return c.taskErrorf(task.Name, key("loss_mean"), "task %s: must be \"weighted\" (Σ w·l / Σ w, the default) or \"entries\" (Salt's reduction \"none\": the mean of weight × loss over every entry), got %q", task.Name, task.LossMean)
	}
	switch {
	case task.Dropout < 0 || task.Dropout >= 1:
		return c.taskErrorf(task.Name, key("dropout"), "task %s: must be in [0, 1), got %g", task.Name, task.Dropout)
	}
	return nil
}

// taskLoss is the model's loss of a configured task.
func (c *Config) taskLoss(t Task, kind model.TaskKind) model.Loss {
	switch t.Loss {
	case "BCEWithLogitsLoss":
		if kind == model.JetClassification || kind == model.ConstituentClassification {
			return model.BCELoss
		}
	case "L1Loss":
		return model.L1Loss
	}
	return model.DefaultLoss
}

// huberDelta is a task's Huber threshold: huber_delta, or PyTorch's
// default 1 for loss = "HuberLoss" without one.
func (t Task) huberDelta() float64 {
	if t.Loss == "HuberLoss" && t.HuberDelta == 0 {
		return 1
	}
	return t.HuberDelta
}

// taskDataset is the dataset a task reads its labels, targets and sample
// weights from.
func (c *Config) taskDataset(t Task) string {
	if t.Input != "" {
		return t.Input
	}
	return c.Data.JetDataset
}

// validateScaling checks a task's target scaling keys (Salt's norm_params,
// target_denominators and scaler).
func (c *Config) validateScaling(task Task, kind model.TaskKind) error {
	key := func(k string) string { return "model.tasks." + k }
	set := 0
	for _, on := range []bool{task.NormParams != nil, len(task.TargetDenominators) > 0, len(task.Scaler) > 0} {
		if on {
			set++
		}
	}
	if set == 0 {
		return nil
	}
	if !kind.Regression() {
		return c.taskErrorf(task.Name, key("norm_params"), "task %s: norm_params, target_denominators and scaler scale regression targets; remove them", task.Name)
	}
	if set > 1 {
		return c.taskErrorf(task.Name, key("norm_params"), "task %s: give one of norm_params, target_denominators and scaler, as Salt takes a single scaling method", task.Name)
	}
	n := len(task.Targets)
	if p := task.NormParams; p != nil {
		if len(p.Mean) != n || len(p.Std) != n {
			return c.taskErrorf(task.Name, key("norm_params"), "task %s: %d means and %d stds for %d targets: give one of each per target", task.Name, len(p.Mean), len(p.Std), n)
		}
		for i, sd := range p.Std {
			if !(sd > 0) {
				return c.taskErrorf(task.Name, key("norm_params"), "task %s: target %s: std %g must be positive", task.Name, task.Targets[i], sd)
			}
		}
	}
	if dens := task.TargetDenominators; len(dens) > 0 {
		if len(dens) != n {
			return c.taskErrorf(task.Name, key("target_denominators"), "task %s: %d denominators for %d targets: give one per target", task.Name, len(dens), n)
		}
		ds := c.taskDataset(task)
		vars := c.Data.JetInputVariables()
		if kind.PerConstituent() {
			vars = c.Data.Variables[ds]
		}
		for _, den := range dens {
			if !slices.Contains(vars, den) {
				return c.taskErrorf(task.Name, key("target_denominators"), "task %s: %q is not an input variable of %s (%s): the deployed model reads the denominator from its inputs to scale the prediction back; add it to [data.variables] %s", task.Name, den, ds, strings.Join(vars, ", "), ds)
			}
		}
	}
	for target, sc := range task.Scaler {
		if !slices.Contains(task.Targets, target) {
			return c.taskErrorf(task.Name, key("scaler"), "task %s: scaler for %q, which is not one of the targets %s", task.Name, target, strings.Join(task.Targets, ", "))
		}
		switch sc.Op {
		case "log", "exp", "linear":
		default:
			return c.taskErrorf(task.Name, key("scaler."+target+".op"), "task %s: target %s: op must be \"log\", \"exp\" or \"linear\" (Salt's scaler), got %q", task.Name, target, sc.Op)
		}
		for k, v := range map[string]*float64{"x_scale": sc.XScale, "op_scale": sc.OpScale} {
			if v != nil && *v == 0 {
				return c.taskErrorf(task.Name, key("scaler."+target+"."+k), "task %s: target %s: %s must not be 0", task.Name, target, k)
			}
		}
		if kind.Gaussian() && sc.Op != "linear" {
			return c.taskErrorf(task.Name, key("scaler."+target+".op"), "task %s: target %s: a Gaussian regression's predicted spread cannot be scaled back through %s, as in Salt; use norm_params, target_denominators or op = \"linear\"", task.Name, target, sc.Op)
		}
	}
	return nil
}

// scaling returns the model's target scalings of a configured task.
func (c *Config) scaling(t Task) []model.TargetScaling {
	if t.NormParams == nil && len(t.TargetDenominators) == 0 && len(t.Scaler) == 0 {
		return nil
	}
	out := make([]model.TargetScaling, len(t.Targets))
	for k, target := range t.Targets {
		switch {
		case t.NormParams != nil:
			out[k] = model.TargetScaling{Op: model.NormScaling, Mean: t.NormParams.Mean[k], Std: t.NormParams.Std[k]}
		case len(t.TargetDenominators) > 0:
			out[k] = model.TargetScaling{Op: model.DenominatorScaling, Denominator: t.TargetDenominators[k]}
		default:
			sc, ok := t.Scaler[target]
			if !ok {
				continue
			}
			ts := model.TargetScaling{Op: model.ScalingOp(sc.Op), XScale: 1, XOff: sc.XOff, OpScale: 1, OpOff: sc.OpOff}
			if sc.XScale != nil {
				ts.XScale = *sc.XScale
			}
			if sc.OpScale != nil {
				ts.OpScale = *sc.OpScale
			}
			out[k] = ts
		}
	}
	return out
}

// width is the size of the jet representation and of the constituent
// features the heads read: the encoder's out_dim, or embed_dim without an
// output projection or without an encoder.
func (m *Model) width() int {
	if m.Encoder.Layers > 0 && m.Encoder.OutDim > 0 {
		return m.Encoder.OutDim
	}
	return m.EmbedDim
}

// ClassWeightsFunc looks up the class_dict weights of a label field of a
// dataset.
type ClassWeightsFunc func(dataset, field string) ([]float64, error)

// UniformClassWeights is a ClassWeightsFunc that gives every class of the
// task reading field the weight 1. Class weights scale losses, not the
// network, so it serves where only the network matters: deployment models
// and benchmarks of configurations whose class dictionary is not at hand.
func (c *Config) UniformClassWeights(dataset, field string) ([]float64, error) {
	for _, t := range c.Model.Tasks {
		l, err := c.TaskLabel(t)
		if t.Label == field || err == nil && l.Field == field && len(t.ClassNames) > 0 {
			w := make([]float64, len(t.ClassNames))
			for i := range w {
				w[i] = 1
			}
			return w, nil
		}
	}
	return nil, fmt.Errorf("no task reads %s.%s", dataset, field)
}

// Spec returns the model the configuration describes. classWeights is
// consulted for tasks with use_class_dict (it may be nil otherwise).
func (c *Config) Spec(classWeights ClassWeightsFunc) (model.Spec, error) {
	m := c.Model
	s := model.Spec{
		Name:     m.Name,
		JetVars:  c.Data.Variables[c.Data.JetDataset],
		EmbedDim: m.EmbedDim,
	}
	if m.Encoder.Layers > 0 {
		enc, _ := nn.ParseActivation(m.Encoder.Activation)
		e := m.Encoder
		s.Encoder = nn.EncoderConfig{
			Layers: e.Layers, Heads: e.Heads, DenseRatio: e.DenseRatio,
			Activation: enc, Registers: e.Registers, OutDim: e.OutDim,
			NoFinalNorm: !e.FinalNorm, NoOutProj: !e.OutProj, Dropout: e.Dropout, AttnDropout: e.AttnDropout,
			Gated: e.Gated, LayerScale: e.LSInit, DropPath: e.DropPath, QKNorm: e.DoQKNorm, VNorm: e.DoVNorm,
		}
		switch e.Kind {
		case "legacy":
			s.Encoder.Kind, s.Encoder.Hidden = nn.LegacyKind, e.Hidden
		case "cross_attention":
			s.Encoder.Kind, s.Encoder.Hidden, s.Encoder.CAEveryLayer = nn.CrossAttentionKind, e.Hidden, e.CAEveryLayer
		}
		if e.Norm == "RMSNorm" {
			s.Encoder.Norm = nn.RMSNormKind
		}
		s.Encoder.EdgeDim, s.Encoder.UpdateEdges = e.EdgeEmbedDim, e.UpdateEdges
		s.Encoder.MuP = e.MuP
		s.DropRegisters = e.DropRegisters
		s.Edges = c.edges()
		switch e.NormType {
		case "post":
			s.Encoder.NormType = nn.PostNorm
		case "hybrid":
			s.Encoder.NormType = nn.HybridNorm
		}
	}
	if m.Pooling.Kind == "none" {
		s.Pooling = model.NoPooling
	}
	mup, err := c.muPSpec()
	if err != nil {
		return model.Spec{}, err
	}
	s.MuP = mup
	s.Parameters, s.Featurewise = c.conditioning()
	if c.Training.LossWeighting == "GLS" {
		s.LossMode = model.GeometricMean
	}
	if global := c.Data.Variables[GlobalVariables]; len(global) > 0 {
		s.JetVars = c.Data.JetInputVariables()
		s.GlobalVars = global
		s.AttachVars = append([]string{}, c.Data.Variables[c.Data.JetDataset]...)
	}
	if n, ok := c.JetNet(); ok {
		a, _ := nn.ParseActivation(n.Activation)
		final := nn.None
		if n.FinalActivation != "" {
			final, _ = nn.ParseActivation(n.FinalActivation)
		}
		s.JetInit = &model.JetInit{Name: n.Input, Hidden: n.Hidden, Activation: a, FinalActivation: final, Dropout: n.Dropout, MuP: n.MuP}
	}
	if m.Flattens() {
		p := m.Pooling
		s.Pooling = model.FlattenPooling
		fill, err := c.flattenFill()
		if err != nil {
			return model.Spec{}, err
		}
		s.Inputs = []model.Input{{Name: p.Input, Vars: c.Data.Variables[p.Input], MaxLen: p.MaxLen, Fill: fill}}
	}
	for _, n := range c.Model.InitNets {
		if n.Input == c.Data.JetDataset {
			continue
		}
		if n.MaxLen == 0 {
			return model.Spec{}, c.errorf("model.init_nets.max_len", "%s: 0 (the training files' length) is resolved when training starts; this command needs a length: give one", n.Input)
		}
		a, _ := nn.ParseActivation(n.Activation)
		final := nn.None
		if n.FinalActivation != "" {
			final, _ = nn.ParseActivation(n.FinalActivation)
		}
		s.Inputs = append(s.Inputs, model.Input{Name: n.Input, Vars: c.Data.Variables[n.Input], MaxLen: n.MaxLen, InitHidden: n.Hidden, Activation: a, FinalActivation: final,
			NoJetVars: n.AttachGlobal != nil && !*n.AttachGlobal, Dropout: n.Dropout, MuP: n.MuP})
	}
	for _, t := range m.Tasks {
		a, _ := nn.ParseActivation(t.Activation)
		kind, _ := c.TaskKind(t)
		mt := model.Task{
			Name: t.Name, Kind: kind, Input: t.Input, Classes: t.ClassNames, Targets: t.Targets,
			Hidden: t.Hidden, Activation: a, Weight: *t.Weight, ClassWeights: t.ClassWeights,
			HuberDelta: t.huberDelta(), OriginWeighting: t.OriginLabel != "",
			Scaling: c.scaling(t), SampleWeight: t.SampleWeight != "",
			Loss: c.taskLoss(t, kind), Dropout: t.Dropout, NoContext: t.noContext(),
		}
		if t.LossMean == "entries" {
			mt.Mean = model.EntryMean
		}
		if t.UseClassDict {
			ds := t.Input
			if ds == "" {
				ds = c.Data.JetDataset
			}
			ds = c.Data.DatasetOf(ds)
			if classWeights == nil {
				return model.Spec{}, c.errorf("model.tasks.use_class_dict", "task %s: no class dictionary loaded", t.Name)
			}
			// The class dict is keyed by the label's field (flavour_label
			// for a labeller without one), as salt-ort norm writes it.
			field := t.Label
			if l, err := c.TaskLabel(t); err == nil {
				field = l.Field
			}
			w, err := classWeights(ds, field)
			if err != nil {
				return model.Spec{}, c.errorf("data.class_dict", "task %s: %v", t.Name, err)
			}
			if len(w) != len(t.ClassNames) {
				return model.Spec{}, c.errorf("data.class_dict", "task %s: class_dict has %d weights for %s.%s, the task has %d classes", t.Name, len(w), ds, field, len(t.ClassNames))
			}
			mt.ClassWeights = w
		}
		s.Tasks = append(s.Tasks, mt)
	}
	objects, err := c.specMaskFormer(s.Width())
	if err != nil {
		return model.Spec{}, err
	}
	s.Objects = objects
	if err := s.Validate(); err != nil {
		return model.Spec{}, &Error{File: c.path, Msg: err.Error()}
	}
	return s, nil
}

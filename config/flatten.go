package config

import "github.com/salt-ort/salt-ort/loader"

// validateFlatten checks a model with pooling kind "flatten" (Salt's
// R21Xbb): one constituent dataset of fixed length, flattened into the
// jet representation, with no init nets, encoder or constituent tasks.
func (c *Config) validateFlatten() error {
	d, m := &c.Data, &c.Model
	p := m.Pooling
	switch {
	case p.Input == "":
		return c.errorf("model.pooling.input", "kind = \"flatten\" needs the constituent dataset it flattens, e.g. input = \"tracks\"")
	case p.Input == d.JetDataset || p.Input == GlobalVariables || p.Input == ParameterVariables:
		return c.errorf("model.pooling.input", "%q is not a constituent dataset: flatten reads one, e.g. \"tracks\"", p.Input)
	case len(d.Variables[p.Input]) == 0:
		return c.errorf("model.pooling.input", "%q has no variables in [data.variables]", p.Input)
	case p.MaxLen < 1:
		return c.errorf("model.pooling.max_len", "%s: the flattened width is max_len × %d variables, so give a fixed number of constituents per jet (at least 1), e.g. the training files' length", p.Input, len(d.Variables[p.Input]))
	case len(m.InitNets) > 0:
		return c.errorf("model.init_nets", "kind = \"flatten\" (Salt's R21Xbb) feeds the flattened %s to the task heads without init nets: remove the [[model.init_nets]]", p.Input)
	case m.Encoder.Layers != 0:
		return c.errorf("model.encoder.layers", "kind = \"flatten\" (Salt's R21Xbb) has no encoder: set layers = 0")
	case len(d.EdgeConstructors) > 0 || len(m.FeaturewiseNets) > 0 || m.MaskDecoder != nil || len(d.Variables[ParameterVariables]) > 0:
		return c.errorf("model.pooling.kind", "\"flatten\" (Salt's R21Xbb) reads the flattened %s alone: remove the edge constructors, featurewise nets, mask decoder and parameters", p.Input)
	}
	for ds := range d.Variables {
		if ds != d.JetDataset && ds != GlobalVariables && ds != p.Input {
			return c.errorf("data.variables", "dataset %q: kind = \"flatten\" reads %q alone; remove the other constituent datasets", ds, p.Input)
		}
	}
	if want := p.MaxLen * len(d.Variables[p.Input]); m.EmbedDim != want {
		return c.errorf("model.embed_dim", "%d, but kind = \"flatten\" makes a jet representation of max_len %d × %d variables = %d features: remove embed_dim", m.EmbedDim, p.MaxLen, len(d.Variables[p.Input]), want)
	}
	for _, t := range m.Tasks {
		if kind, _ := c.TaskKind(t); kind.PerConstituent() {
			return c.taskErrorf(t.Name, "model.tasks.kind", "task %s: kind = \"flatten\" keeps no per-constituent features, so its tasks are jet tasks", t.Name)
		}
	}
	return nil
}

// flattenFill returns what an empty slot of the flattened dataset holds
// in Salt's R21Xbb, per variable: Salt's dataset writes 0 into the raw
// variables of padded slots and its model normalises every slot, so the
// value is (0 − mean)/std from data.norm_dict.
func (c *Config) flattenFill() ([]float64, error) {
	p := c.Model.Pooling
	path, norm := c.Resolve(c.Data.NormDict), c.normDict
	if norm == nil {
		var err error
		if norm, err = loader.ReadNormDict(path); err != nil {
			return nil, c.errorf("data.norm_dict", "kind = \"flatten\" fills empty %s slots with the normalised zero: %v", p.Input, err)
		}
	}
	vars := norm[c.Data.DatasetOf(p.Input)]
	if vars == nil {
		vars = norm[p.Input]
	}
	fill := make([]float64, 0, len(c.Data.Variables[p.Input]))
	for _, v := range c.Data.Variables[p.Input] {
		e, ok := vars[v]
		if !ok {
			return nil, c.errorf("data.norm_dict", "%s has no mean and std for %s.%s: run salt-ort norm, or add them", path, p.Input, v)
		}
		fill = append(fill, -e.Mean/e.Std)
	}
	return fill, nil
}

// SetNormDict has the model read the normalisation from nd rather than
// from the file data.norm_dict names: a run directory's copy, or one held
// in memory. Only a "flatten" pooling reads it (Spec).
func (c *Config) SetNormDict(nd loader.NormDict) { c.normDict = nd }

package saltimport

import (
	"fmt"
	"reflect"
	"strconv"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/loader"
)

// convertInputMap carries data.input_map (an input name → the dataset of
// the files it is read from). Salt's CLI also maps "global" and
// "parameters" to the global object; entries mapping a name to itself
// change nothing and are left out.
func (c *converter) convertInputMap(d *config.Data) {
	v, _ := c.get("data.input_map")
	if v == nil {
		return
	}
	m, ok := v.(map[string]any)
	if !ok {
		c.problem("data.input_map", "%v is not a map of input names to datasets", v)
		return
	}
	for _, k := range sortedKeys(m) {
		ds, ok := m[k].(string)
		if !ok || ds == "" {
			c.problem("data.input_map."+k, "%v is not a dataset name", m[k])
			continue
		}
		if ds == k || k == config.GlobalVariables || k == config.ParameterVariables {
			continue
		}
		if d.InputMap == nil {
			d.InputMap = map[string]string{}
		}
		d.InputMap[k] = ds
	}
}

// convertParameters carries data.parameters: per parameter the values of
// the training set, their probabilities and the value evaluation uses.
func (c *converter) convertParameters(d *config.Data) {
	v, _ := c.get("data.parameters")
	m, _ := v.(map[string]any)
	if len(m) == 0 {
		return
	}
	d.Parameters = map[string]config.ParameterValues{}
	for _, name := range sortedKeys(m) {
		p := "data.parameters." + name
		pv := config.ParameterValues{Train: c.numbers(p + ".train"), Prob: c.numbers(p + ".prob")}
		if t, _ := c.get(p + ".test"); t != nil {
			x := c.number(p+".test", 0)
			pv.Test = &x
		}
		d.Parameters[name] = pv
	}
}

// convertEdgeConstructors carries data.edge_constructors, with Salt's
// indices_map (a variable Salt's edge features need → its column in the
// group's variables) given by name.
func (c *converter) convertEdgeConstructors(d *config.Data) {
	v, _ := c.get("data.edge_constructors")
	list, _ := v.([]any)
	for i := range list {
		p := fmt.Sprintf("data.edge_constructors.%d", i)
		e := config.EdgeConstructor{Input: c.str(p + ".input_name"), EdgeFeatures: c.strs(p + ".edge_features")}
		c.get(p + ".variables")
		if im, _ := c.get(p + ".indices_map"); im != nil {
			m, _ := im.(map[string]any)
			vars := d.Variables[e.Input]
			for _, k := range sortedKeys(m) {
				idx := c.integer(p+".indices_map."+k, -1)
				if idx < 0 || idx >= len(vars) {
					c.problem(p+".indices_map."+k, "%v is not a column of the %d variables of %q", m[k], len(vars), e.Input)
					continue
				}
				if e.Variables == nil {
					e.Variables = map[string]string{}
				}
				e.Variables[k] = vars[idx]
			}
		}
		d.EdgeConstructors = append(d.EdgeConstructors, e)
	}
	c.checkModelEdgeConstructors(list)
}

// checkModelEdgeConstructors accepts model.edge_constructors, the copy of
// data.edge_constructors that Salt's CLI gives its ModelWrapper (with the
// variables added), which a config.yaml Salt wrote holds; a list that is
// not that copy is refused.
func (c *converter) checkModelEdgeConstructors(data []any) {
	const key = "model.edge_constructors"
	v, _ := c.get(key)
	model, _ := v.([]any)
	if len(model) == 0 {
		return
	}
	strip := func(l []any) []any {
		out := make([]any, len(l))
		for i, e := range l {
			m, _ := e.(map[string]any)
			cp := map[string]any{}
			for k, x := range m {
				if k != "variables" {
					cp[k] = x
				}
			}
			out[i] = cp
		}
		return out
	}
	if !reflect.DeepEqual(strip(model), strip(data)) {
		c.problem(key, "differs from data.edge_constructors, of which Salt's CLI makes it a copy; give the edge constructors once, in data.edge_constructors")
	}
}

// convertSelections carries data.selections: cuts per dataset in
// atlas-ftag-tools' notation.
func (c *converter) convertSelections(d *config.Data) {
	v, _ := c.get("data.selections")
	m, _ := v.(map[string]any)
	for _, ds := range sortedKeys(m) {
		cuts := c.strs("data.selections." + ds)
		if len(cuts) == 0 {
			continue
		}
		if d.Selections == nil {
			d.Selections = map[string][]string{}
		}
		d.Selections[ds] = cuts
	}
}

// convertMultiTarget carries data.multi_target: conditional regression
// targets (input_name, sel_label, opp, value, target or custom_target,
// source).
func (c *converter) convertMultiTarget(d *config.Data) {
	v, _ := c.get("data.multi_target")
	l, ok := v.([]any)
	if !ok {
		if v != nil {
			c.problem("data.multi_target", "%v is not a list of conditions", v)
		}
		return
	}
	for i := range l {
		p := "data.multi_target." + strconv.Itoa(i)
		d.MultiTarget = append(d.MultiTarget, config.MultiTarget{
			Input: c.str(p + ".input_name"), SelLabel: c.str(p + ".sel_label"), Opp: c.str(p + ".opp"),
			Value: c.number(p+".value", 0), Target: c.str(p + ".target"), CustomTarget: c.str(p + ".custom_target"),
			Source: c.str(p + ".source"),
		})
	}
}

// numbers returns the list of numbers at path (nil where absent).
func (c *converter) numbers(path string) []float64 {
	v, _ := c.get(path)
	l, ok := v.([]any)
	if !ok {
		if v != nil {
			c.problem(path, "%v is not a list of numbers", v)
		}
		return nil
	}
	out := make([]float64, len(l))
	for i := range l {
		out[i] = c.number(path+"."+strconv.Itoa(i), 0)
	}
	return out
}

// flavourLabelNames reads the jet classes Salt's CLI takes where a
// jet classification of flavour_label leaves class_names unset: the
// flavour_label attribute of the first training file's jet dataset.
func flavourLabelNames(file, jets string) ([]string, error) {
	names, err := loader.ReadStringsAttr(file, jets, config.FlavourLabel)
	if err == nil && len(names) < 2 {
		err = fmt.Errorf("%s: the %s attribute of dataset %q names %d classes; a classification needs at least 2", file, config.FlavourLabel, jets, len(names))
	}
	return names, err
}

package config

import (
	"fmt"

	"github.com/salt-ort/salt-ort/loader"
)

// MultiTarget is one of Salt's data.multi_target conditions: where the
// field SelLabel of an entry of the input compares with Value as Opp
// says, the regression target named Target (a field of the files) or
// CustomTarget (a target the files do not hold, missing where no
// condition holds) takes the value of the field Source. The conditions
// apply in order, so a later one that holds wins.
type MultiTarget struct {
	// Input is the jet dataset or a constituent group (Salt's
	// input_name).
	Input    string  `toml:"input"`
	SelLabel string  `toml:"sel_label"`
	Opp      string  `toml:"opp"` // ==, !=, <, <=, > or >=
	Value    float64 `toml:"value"`
	// Target names a field of the files that the condition overwrites;
	// CustomTarget instead defines a new target. Give one.
	Target       string `toml:"target"`
	CustomTarget string `toml:"custom_target"`
	Source       string `toml:"source"`
}

// name is the target the condition sets.
func (m MultiTarget) name() string {
	if m.CustomTarget != "" {
		return m.CustomTarget
	}
	return m.Target
}

// multiTargetOps are the comparisons of Salt's multi_target (its
// OPERATORS).
var multiTargetOps = map[string]bool{"==": true, "!=": true, "<": true, "<=": true, ">": true, ">=": true}

// validateMultiTarget checks [[data.multi_target]]: every entry complete,
// on an input the model reads, setting a target of one of its
// regression tasks, and no target both overwritten and defined anew.
func (c *Config) validateMultiTarget() error {
	targets := map[[2]string]bool{} // (input, target) of the regression tasks
	for _, t := range c.Model.Tasks {
		if t.Kind == "regression" || t.Kind == "gaussian_regression" {
			for _, tg := range t.Targets {
				targets[[2]string{c.taskInput(t), tg}] = true
			}
		}
	}
	custom, plain := map[[2]string]bool{}, map[[2]string]bool{}
	for i, m := range c.Data.MultiTarget {
		key := func(k string) string { return fmt.Sprintf("data.multi_target.%s", k) }
		at := fmt.Sprintf("entry %d", i+1)
		switch {
		case m.Input == "":
			return c.errorf(key("input"), "%s: give the input whose entries it labels (Salt's input_name), e.g. input = %q", at, c.Data.JetDataset)
		case m.Input != c.Data.JetDataset && !c.readsInput(m.Input):
			return c.errorf(key("input"), "%s: %q is neither the jet dataset %q nor an init net's input", at, m.Input, c.Data.JetDataset)
		case m.SelLabel == "":
			return c.errorf(key("sel_label"), "%s: give the field the condition is on", at)
		case !multiTargetOps[m.Opp]:
			return c.errorf(key("opp"), "%s: %q: must be one of ==, !=, <, <=, >, >=", at, m.Opp)
		case m.Source == "":
			return c.errorf(key("source"), "%s: give the field whose value the target takes where the condition holds", at)
		case (m.Target == "") == (m.CustomTarget == ""):
			return c.errorf(key("target"), "%s: give either target (a field of the files the condition overwrites) or custom_target (a new target), not both or neither", at)
		case !targets[[2]string{m.Input, m.name()}]:
			return c.errorf(key("target"), "%s: %q is no target of a regression task on %q; salt-ort builds multi_target for regression targets only: add it to the task's targets, or remove the entry", at, m.name(), m.Input)
		}
		k := [2]string{m.Input, m.name()}
		if m.CustomTarget != "" {
			custom[k] = true
		} else {
			plain[k] = true
		}
		if custom[k] && plain[k] {
			return c.errorf(key("custom_target"), "%s: %q is both a target of the files and a custom target of %q: use one form for every entry that sets it", at, m.name(), m.Input)
		}
	}
	return nil
}

// taskInput is the input a task's labels belong to: its input, or the jet
// dataset.
func (c *Config) taskInput(t Task) string {
	if t.Input != "" {
		return t.Input
	}
	return c.Data.JetDataset
}

// readsInput reports whether an init net reads the input.
func (c *Config) readsInput(in string) bool {
	for _, n := range c.Model.InitNets {
		if n.Input == in {
			return true
		}
	}
	return false
}

// TargetLabel is the loader label named name of the regression target of
// the input (the jet dataset or a constituent group): its field, with
// the replacements of [[data.multi_target]] for it, and NaN read as a
// missing target. A custom target has no field: it is NaN (missing)
// where no condition holds.
func (c *Config) TargetLabel(name, input, target string) loader.Label {
	l := loader.Label{Name: name, Dataset: c.Data.DatasetOf(input), Field: target, Kind: loader.FloatLabel, KeepNaN: true}
	for _, m := range c.Data.MultiTarget {
		if m.Input != input || m.name() != target {
			continue
		}
		if m.CustomTarget != "" {
			l.Field = ""
		}
		l.Replace = append(l.Replace, loader.Replacement{Cut: loader.Cut{Field: m.SelLabel, Op: m.Opp, Values: []float64{m.Value}}, Source: m.Source})
	}
	return l
}

// TargetFields lists the fields of the files the regression target of
// the input is read from: the target, or with [[data.multi_target]] the
// fields of its conditions and sources (and the target unless custom).
func (c *Config) TargetFields(input, target string) []string {
	l := c.TargetLabel("", input, target)
	var out []string
	if l.Field != "" {
		out = append(out, l.Field)
	}
	for _, r := range l.Replace {
		out = append(out, r.Cut.Field, r.Source)
	}
	return out
}

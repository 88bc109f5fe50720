package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/salt-ort/salt-ort/flavour"
	"github.com/salt-ort/salt-ort/internal/nearest"
	"github.com/salt-ort/salt-ort/loader"
)

// GlobalVariables is the key of [data.variables] whose jet variables are
// joined to the pooled representation rather than to every constituent
// (Salt's data.variables.global).
const GlobalVariables = "global"

// ParameterVariables is the key of [data.variables] that lists the
// parameters the model is conditioned on (Salt's parameters): jet-dataset
// fields read raw, each described in [data.parameters.<name>].
const ParameterVariables = "parameters"

// hasGlob reports whether a path is a pattern (Salt's wildcard check).
func hasGlob(p string) bool { return strings.ContainsAny(filepath.Base(p), "*?[") }

// expand resolves a path against the configuration file's directory and,
// for a pattern, lists the files it matches, sorted; a pattern that
// matches nothing gives nil.
func (c *Config) expand(p string) ([]string, error) {
	r := c.Resolve(p)
	if !hasGlob(r) {
		return []string{r}, nil
	}
	m, err := filepath.Glob(r)
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", p, err)
	}
	sort.Strings(m)
	return m, nil
}

// ResolveAll resolves each path (see Resolve) and expands each pattern
// (*, ?, [...] in the file name) into the files it matches, sorted; a
// pattern that matches nothing is kept as it is, for the reader to
// report.
func (c *Config) ResolveAll(ps []string) []string {
	var out []string
	for _, p := range ps {
		m, err := c.expand(p)
		if err != nil || len(m) == 0 {
			out = append(out, c.Resolve(p))
			continue
		}
		out = append(out, m...)
	}
	return out
}

// Files resolves and expands the file list of data.train, data.val or
// data.test (key "train", "val" or "test"), failing on a pattern that
// matches no file.
func (c *Config) Files(key string) ([]string, error) {
	var list []string
	switch key {
	case "train":
		list = c.Data.Train
	case "val":
		list = c.Data.Val
	case "test":
		list = c.Data.Test
	default:
		return nil, fmt.Errorf("config: no file list %q", key)
	}
	var out []string
	for _, p := range list {
		m, err := c.expand(p)
		if err != nil {
			return nil, c.errorf("data."+key, "%v", err)
		}
		if len(m) == 0 {
			return nil, &Error{File: c.path, Line: lineOfValue(c.raw, p), Key: "data." + key,
				Msg: fmt.Sprintf("%q matches no file (relative patterns are read from the configuration file's directory, %s)", p, filepath.Dir(c.path))}
		}
		out = append(out, m...)
	}
	return out, nil
}

// lineOfValue returns the first line holding the quoted string v, or 0.
func lineOfValue(data []byte, v string) int {
	q := strconv.Quote(v)
	for i, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, q) {
			return i + 1
		}
	}
	return 0
}

// lineInTable returns the line of key in the table [table] (or an array
// of tables [[table]] — the first that has it), or 0.
func lineInTable(data []byte, table, key string) int {
	header := regexp.MustCompile(`^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$`)
	assign := regexp.MustCompile(`^\s*"?` + regexp.QuoteMeta(key) + `"?\s*=`)
	current := ""
	for i, line := range strings.Split(string(data), "\n") {
		if m := header.FindStringSubmatch(line); m != nil {
			current = m[1]
			continue
		}
		if current == table && assign.MatchString(line) {
			return i + 1
		}
	}
	return 0
}

// JetInputVariables lists the jet input variables: those of the jet
// dataset (attached to every constituent) then the global ones not among
// them (joined after pooling). They are the columns of the model's jet
// input and of the deployed model's jet_features.
func (d *Data) JetInputVariables() []string {
	out := append([]string(nil), d.Variables[d.JetDataset]...)
	for _, v := range d.Variables[GlobalVariables] {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// DatasetOf returns the dataset of the files an input is read from: its
// data.input_map entry, or the input's own name.
func (d *Data) DatasetOf(input string) string {
	if ds, ok := d.InputMap[input]; ok {
		return ds
	}
	return input
}

// InputOf returns the input read from a dataset of the files: the
// data.input_map entry that maps to it, or the dataset's own name.
func (d *Data) InputOf(dataset string) string {
	for in, ds := range d.InputMap {
		if ds == dataset {
			return in
		}
	}
	return dataset
}

// LoaderGroups returns the loader's input groups of the configuration:
// the jet dataset with its variables and the global ones, then every
// constituent init net's dataset (data.input_map naming where each is
// read from). Training, evaluation and salt-ort norm read the same groups.
func (c *Config) LoaderGroups() []loader.Group {
	d := c.Data
	groups := []loader.Group{{Name: d.JetDataset, Dataset: d.DatasetOf(d.JetDataset), Variables: d.JetInputVariables()}}
	for _, n := range c.ConstituentNets() {
		groups = append(groups, loader.Group{Name: n.Input, Dataset: d.DatasetOf(n.Input), Variables: d.Variables[n.Input], MaxLen: n.MaxLen})
	}
	return groups
}

// LoaderNonFinite returns the loader's policy for non-finite values that
// data.non_finite names.
func (c *Config) LoaderNonFinite() loader.NonFinitePolicy {
	if c.Data.NonFinite == "zero" {
		return loader.ZeroNonFinite
	}
	return loader.ErrorOnNonFinite
}

// LoaderSelections parses data.selections into the loader's cuts.
func (c *Config) LoaderSelections() (map[string][]loader.Cut, error) {
	if len(c.Data.Selections) == 0 {
		return nil, nil
	}
	out := map[string][]loader.Cut{}
	for _, ds := range sortedMapKeys(c.Data.Selections) {
		for _, s := range c.Data.Selections[ds] {
			cut, err := loader.ParseCut(s)
			if err != nil {
				return nil, &Error{File: c.path, Line: lineOfValue(c.raw, s), Key: "data.selections." + ds, Msg: err.Error()}
			}
			out[c.Data.DatasetOf(ds)] = append(out[c.Data.DatasetOf(ds)], cut)
		}
	}
	return out, nil
}

func sortedMapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// labelDataset is the dataset a task's labels are read from.
func (c *Config) labelDataset(t Task) string {
	if t.Kind == "constituent_classification" || t.Kind == "track_classification" || t.Kind == "vertexing" {
		return c.Data.DatasetOf(t.Input)
	}
	return c.Data.DatasetOf(c.Data.JetDataset)
}

// TaskLabel returns how a classification task's class indices come from
// the files (loader.Label named after the task), in this order:
//   - label_map: the label field's values mapped to classes (Salt's
//     label_map), each value to a class index or class name;
//   - use_labeller: every class is one of atlas-ftag-tools' flavours
//     (package flavour) and a jet's class is the first whose truth-label
//     cuts hold (ftag's Labeller, as Salt's labeller_config applies it);
//   - the label field is a truth field the classes' flavour cuts read
//     alone (label = "HadronConeExclTruthLabelID" with class_names bjets,
//     cjets, ujets, taujets or b, c, u, tau): the values those cuts name;
//   - otherwise the field holds class indices 0..N-1 as they are
//     (flavour_label, ftagTruthOriginLabel).
//
// require_labels = false reads values no class covers as "no class"
// (left out of the losses) instead of failing.
func (c *Config) TaskLabel(t Task) (loader.Label, error) {
	key := func(k string) string { return "model.tasks." + k }
	names := t.ClassNames
	binary := t.Loss == "BCEWithLogitsLoss" && len(names) == 1
	if binary {
		// A binary task's label is 1 for its one class and 0 otherwise,
		// as Salt's BCEWithLogitsLoss reads it.
		names = []string{"not " + names[0], names[0]}
		if t.UseLabeller {
			return loader.Label{}, c.taskErrorf(t.Name, key("use_labeller"), "task %s: a binary classification reads its label as 0 or 1 (or through label_map); remove use_labeller", t.Name)
		}
	}
	l := loader.Label{Name: t.Name, Dataset: c.labelDataset(t), Field: t.Label, Kind: loader.ClassLabel,
		NumClasses: len(names), ClassNames: names, IgnoreUnmatched: t.RequireLabels != nil && !*t.RequireLabels}
	index := map[string]int{}
	for i, n := range names {
		index[n] = i
	}
	switch {
	case len(t.LabelMap) > 0:
		l.Map = map[int64]int{}
		covered := make([]bool, len(names))
		for _, k := range sortedMapKeys(t.LabelMap) {
			v, err := strconv.ParseInt(strings.TrimSpace(k), 10, 64)
			if err != nil {
				return l, c.taskErrorf(t.Name, key("label_map"), "task %s: key %q is not an integer value of %s", t.Name, k, t.Label)
			}
			var class int
			switch x := t.LabelMap[k].(type) {
			case int64:
				class = int(x)
				if x < 0 || int(x) >= len(names) {
					return l, c.taskErrorf(t.Name, key("label_map"), "task %s: %s = %d: class indices run 0..%d (one per class name; 0 and 1 for a binary task)", t.Name, k, x, len(names)-1)
				}
			case string:
				i, ok := index[x]
				if !ok {
					return l, c.taskErrorf(t.Name, key("label_map"), "task %s: %s = %q is not one of class_names (%s)", t.Name, k, x, strings.Join(names, ", "))
				}
				class = i
			default:
				return l, c.taskErrorf(t.Name, key("label_map"), "task %s: %s = %v: give a class index or a class name", t.Name, k, t.LabelMap[k])
			}
			l.Map[v] = class
			covered[class] = true
		}
		for i, ok := range covered {
			if !ok {
				return l, c.taskErrorf(t.Name, key("label_map"), "task %s: no value maps to class %s (index %d), so it would never be trained: add one (e.g. %s = %q) or drop the class", t.Name, names[i], i, "<value>", names[i])
			}
		}
	case t.UseLabeller:
		rules, err := c.flavourRules(t, "")
		if err != nil {
			return l, err
		}
		l.Rules = rules
		if l.Field == "" {
			l.Field = "flavour_label"
		}
	case binary:
	default:
		if rules, ok := autoRules(t); ok {
			l.Rules = rules
		}
	}
	return l, nil
}

// flavourRules turns class names into ftag's flavour cuts; with field set
// every cut must read it.
func (c *Config) flavourRules(t Task, field string) ([]loader.ClassRule, error) {
	var rules []loader.ClassRule
	for i, name := range t.ClassNames {
		fl, ok := flavour.Resolve(name)
		if !ok {
			var known []string
			for _, k := range flavour.Classes() {
				known = append(known, k.Name)
			}
			msg := fmt.Sprintf("task %s: use_labeller needs atlas-ftag-tools flavour names; %q is not one (known: %s)", t.Name, name, strings.Join(known, ", "))
			if n := nearest.Name(name, known); n != "" {
				msg += fmt.Sprintf("; did you mean %q?", n)
			}
			return nil, c.taskErrorf(t.Name, "model.tasks.class_names", "%s", msg)
		}
		r := loader.ClassRule{Class: i}
		for _, cut := range fl.Cuts {
			if field != "" && cut.Field != field {
				return nil, nil
			}
			lc := loader.Cut{Field: cut.Field, Op: string(cut.Op)}
			for _, v := range cut.Values {
				lc.Values = append(lc.Values, float64(v))
			}
			r.Cuts = append(r.Cuts, lc)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// autoRules gives the rules of a task whose label field is the truth
// field that every class's flavour cuts read, and nothing else.
func autoRules(t Task) ([]loader.ClassRule, bool) {
	if t.Label == "" || len(t.ClassNames) == 0 || t.Kind != "jet_classification" {
		return nil, false
	}
	var rules []loader.ClassRule
	for i, name := range t.ClassNames {
		fl, ok := flavour.Resolve(name)
		if !ok || len(fl.Cuts) == 0 {
			return nil, false
		}
		r := loader.ClassRule{Class: i}
		for _, cut := range fl.Cuts {
			if cut.Field != t.Label {
				return nil, false
			}
			lc := loader.Cut{Field: cut.Field, Op: string(cut.Op)}
			for _, v := range cut.Values {
				lc.Values = append(lc.Values, float64(v))
			}
			r.Cuts = append(r.Cuts, lc)
		}
		rules = append(rules, r)
	}
	return rules, true
}

// LabelFields lists the fields of the label's dataset a task's class
// labels read (the label field, or the fields of its flavour cuts).
func LabelFields(l loader.Label) []string {
	if len(l.Rules) == 0 {
		return []string{l.Field}
	}
	var out []string
	for _, r := range l.Rules {
		for _, c := range r.Cuts {
			if !slices.Contains(out, c.Field) {
				out = append(out, c.Field)
			}
		}
	}
	return out
}

// DataError rewrites a loader error about a field or a label of the
// configured data into a *Mismatch naming the configuration key (and its
// line) to change and the fix: a misspelt variable gets the nearest
// field of the dataset and the corrected TOML line. Other errors are
// returned as they are.
func (c *Config) DataError(err error) error {
	var fe *loader.FieldError
	var le *loader.LabelError
	var out error
	switch {
	case errors.As(err, &fe):
		out = c.fieldError(fe)
	case errors.As(err, &le):
		out = c.labelError(le)
	default:
		return err
	}
	var ce *Error
	if errors.As(out, &ce) {
		return &Mismatch{At: ce, Cause: err}
	}
	return err
}

// Mismatch is a configuration and data that do not agree: a field the
// files lack, a label value no class takes. It names the key to change
// (At) and wraps the reader's error (Cause). It is a data error, not a
// configuration error: the configuration alone is valid.
type Mismatch struct {
	At    *Error
	Cause error
}

// Error is the message naming the key and the fix.
func (m *Mismatch) Error() string { return m.At.Error() }

// Unwrap returns the reader's error.
func (m *Mismatch) Unwrap() error { return m.Cause }

func (c *Config) fieldError(fe *loader.FieldError) error {
	where := fmt.Sprintf("dataset %q of %s", fe.Dataset, fe.File)
	near := ""
	if fe.Nearest != "" {
		near = fmt.Sprintf("; did you mean %q?", fe.Nearest)
	}
	problem := "is not a field of"
	if !fe.Missing {
		problem = fmt.Sprintf("cannot be read (%v) from", fe.Err)
	}
	switch fe.Role {
	case "variable":
		ds := fe.Group
		table := "data.variables"
		vars := c.Data.Variables[ds]
		if fe.Dataset == c.Data.DatasetOf(c.Data.JetDataset) && !slices.Contains(vars, fe.Name) {
			ds = GlobalVariables
			vars = c.Data.Variables[ds]
		}
		msg := fmt.Sprintf("variable %q %s %s%s", fe.Name, problem, where, near)
		if fe.Missing && fe.Nearest != "" {
			// The line as it would read with the nearest field (or
			// without the entry, when that field is listed already).
			var fixed []string
			for _, v := range vars {
				switch {
				case v != fe.Name:
					fixed = append(fixed, strconv.Quote(v))
				case !slices.Contains(vars, fe.Nearest):
					fixed = append(fixed, strconv.Quote(fe.Nearest))
				}
			}
			verb := "with it"
			if slices.Contains(vars, fe.Nearest) {
				verb = fmt.Sprintf("(%q is listed already) without it", fe.Nearest)
			}
			msg += fmt.Sprintf(" The line %s: %s = [%s]", verb, ds, strings.Join(fixed, ", "))
		} else if fe.Missing {
			msg += fmt.Sprintf(" (its fields: %s)", strings.Join(fe.Fields, ", "))
		}
		return &Error{File: c.path, Line: lineInTable(c.raw, table, ds), Key: table + "." + ds, Msg: msg}
	case "label":
		task, sub, _ := strings.Cut(fe.Group, "/")
		k := "label"
		switch {
		case sub == "origin":
			k = "origin_label"
		case sub != "":
			k = "targets"
		case fe.Name != fe.Field:
			k = "class_names"
		}
		msg := fmt.Sprintf("task %s: %s field %q %s %s%s", task, k, fe.Field, problem, where, near)
		if fe.Name != fe.Field {
			msg = fmt.Sprintf("task %s: the class cut %q reads field %q, which %s %s%s", task, fe.Name, fe.Field, problem, where, near)
		}
		if fe.Missing && fe.Nearest == "" {
			msg += fmt.Sprintf(" (its fields: %s)", strings.Join(fe.Fields, ", "))
		}
		return c.taskErrorf(task, "model.tasks."+k, "%s", msg)
	case "selection":
		return &Error{File: c.path, Line: lineOfValue(c.raw, fe.Name), Key: "data.selections." + c.Data.InputOf(fe.Dataset),
			Msg: fmt.Sprintf("cut %q: %q %s %s%s", fe.Name, fe.Field, problem, where, near)}
	case "weight field":
		return c.errorf("data.sample_weight", "%q %s %s%s", fe.Field, problem, where, near)
	}
	return fe
}

func (c *Config) labelError(le *loader.LabelError) error {
	task, _, _ := strings.Cut(le.Label, "/")
	at := fmt.Sprintf("jet %d", le.Row)
	if le.Entry >= 0 {
		at += fmt.Sprintf(", entry %d", le.Entry)
	}
	var t Task
	for _, x := range c.Model.Tasks {
		if x.Name == task {
			t = x
		}
	}
	if le.Unmatched {
		field, value, _ := strings.Cut(le.Values, " = ")
		msg := fmt.Sprintf("task %s: %s at %s of %s (dataset %q) is none of the classes %s; add a class for it, drop such jets with a selection (e.g. [data.selections] %s = [\"%s != %s\"]), or leave them out of the losses with require_labels = false",
			task, le.Values, at, le.File, le.Dataset, strings.Join(le.Classes, ", "), le.Dataset, field, value)
		if strings.Contains(le.Values, ",") {
			msg = fmt.Sprintf("task %s: %s at %s of %s (dataset %q) is none of the classes %s; add a class for it, drop such jets with a selection in [data.selections], or leave them out of the losses with require_labels = false",
				task, le.Values, at, le.File, le.Dataset, strings.Join(le.Classes, ", "))
		}
		k := "model.tasks.label_map"
		if len(t.LabelMap) == 0 {
			k = "model.tasks.class_names"
		}
		return c.taskErrorf(task, k, "%s", msg)
	}
	hint := "map the file's values to classes: list class names atlas-ftag-tools knows (e.g. class_names = [\"bjets\", \"cjets\", \"ujets\", \"taujets\"] with label = \"HadronConeExclTruthLabelID\"), or give a [model.tasks.label_map] table of value = class (e.g. 5 = \"bjets\")"
	return c.taskErrorf(task, "model.tasks.label", "task %s: label field %q holds %d at %s of %s, but the task's %d classes take indices 0..%d; %s",
		task, le.Field, le.Value, at, le.File, len(t.ClassNames), len(t.ClassNames)-1, hint)
}

package saltimport

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph/nn"
	"github.com/salt-ort/salt-ort/loader"
)

// Converted is a Salt configuration converted to salt-ort's.
type Converted struct {
	// Config is the salt-ort configuration, every default filled in.
	Config config.Config
	// NormDict and ClassDict are the dictionaries Salt's config names,
	// found on this machine ("" where neither the path nor a file of its
	// name beside config.yaml exists; ClassDict also where none is named).
	NormDict, ClassDict string
	// Ignored lists the keys salt-ort does not carry because they do not
	// change the model or how it trains (logging, loader performance,
	// bookkeeping), as "key: why", for the import report.
	Ignored []string
	// Notes say where salt-ort computes the same thing differently, or
	// where a value came from elsewhere than the key, as "key: note".
	Notes []string
	// Files are the configuration files combined, Salt's base.yaml first
	// where one was laid beneath.
	Files []string
	// Ranks is the number of processes Salt trained on (trainer.devices ×
	// trainer.num_nodes): salt-ort runs them as the ranks of an MPI job.
	Ranks int
}

// ConfigError lists every key of a Salt configuration that salt-ort cannot
// represent, each with why and, where there is one, the fix.
type ConfigError struct {
	File     string
	Problems []string // "key: problem"
}

// Error lists the file and every key with its problem, one per line.
func (e *ConfigError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d key(s) salt-ort cannot represent:", e.File, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  " + p)
	}
	return b.String()
}

// ConvertOptions configure Convert.
type ConvertOptions struct {
	// MaxLen gives the constituents per jet of groups whose count Salt takes
	// from the files (no data.num_inputs entry), by group name; where a
	// group has none here the training file is read for it.
	MaxLen map[string]int
	// Device overrides the device trainer.accelerator implies ("cpu" or
	// "cuda"; with "cpu", a 16-bit precision becomes fp32).
	Device string
	// Read says how the configuration files are combined with Salt's
	// base.yaml.
	Read ReadOptions
}

// converter walks Salt's configuration, marking the keys it uses.
type converter struct {
	file     string
	dir      string
	root     map[string]any
	used     map[string]bool
	problems []string
	ignored  []string
	notes    []string
	ranks    int
}

func (c *converter) problem(key, format string, args ...any) {
	c.problems = append(c.problems, key+": "+fmt.Sprintf(format, args...))
}

func (c *converter) note(key, format string, args ...any) {
	c.notes = append(c.notes, key+": "+fmt.Sprintf(format, args...))
}

// get returns the value at a dotted path (list elements by index) and
// marks it used.
func (c *converter) get(path string) (any, bool) {
	v, ok := lookup(c.root, path)
	if ok {
		c.used[path] = true
	}
	return v, ok
}

// peek returns the value at a dotted path without marking it used.
func (c *converter) peek(path string) any {
	v, _ := lookup(c.root, path)
	return v
}

func lookup(root any, path string) (any, bool) {
	cur := root
	for _, part := range strings.Split(path, ".") {
		switch n := cur.(type) {
		case map[string]any:
			v, ok := n[part]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(n) {
				return nil, false
			}
			cur = n[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

func (c *converter) str(path string) string {
	v, _ := c.get(path)
	s, _ := v.(string)
	return s
}

// integer returns the integer at path, def where it is absent or null, and
// records a problem where it is something else.
func (c *converter) integer(path string, def int) int {
	v, ok := c.get(path)
	if !ok || v == nil {
		return def
	}
	switch n := v.(type) {
	case int:
		return n
	case float64:
		if n == math.Trunc(n) {
			return int(n)
		}
	}
	c.problem(path, "%v is not a whole number", v)
	return def
}

func (c *converter) number(path string, def float64) float64 {
	v, ok := c.get(path)
	if !ok || v == nil {
		return def
	}
	switch n := v.(type) {
	case int:
		return float64(n)
	case float64:
		return n
	case string:
		// YAML 1.1 reads 1e-5 without a dot as a string; Salt's jsonargparse
		// reads it as a number.
		if f, err := strconv.ParseFloat(n, 64); err == nil {
			return f
		}
	}
	c.problem(path, "%v is not a number", v)
	return def
}

func (c *converter) boolean(path string, def bool) bool {
	v, ok := c.get(path)
	if !ok || v == nil {
		return def
	}
	b, isBool := v.(bool)
	if !isBool {
		c.problem(path, "%v is not true or false", v)
		return def
	}
	return b
}

func (c *converter) ints(path string) []int {
	v, _ := c.get(path)
	l, _ := v.([]any)
	var out []int
	for i := range l {
		out = append(out, c.integer(path+"."+strconv.Itoa(i), 0))
	}
	return out
}

func (c *converter) strs(path string) []string {
	v, _ := c.get(path)
	l, _ := v.([]any)
	var out []string
	for i, e := range l {
		s, ok := e.(string)
		if !ok {
			c.problem(path+"."+strconv.Itoa(i), "%v is not a string", e)
			continue
		}
		c.used[path+"."+strconv.Itoa(i)] = true
		out = append(out, s)
	}
	return out
}

// classPath returns the class_path of the object at path and marks it.
func (c *converter) classPath(path string) string {
	return c.str(path + ".class_path")
}

// Convert converts one Salt configuration, the text data of the file at
// path, into a salt-ort configuration: the config.yaml Salt writes into
// its log directory (LightningCLI's full configuration) or a configuration
// as Salt ships and users write them, laid over Salt's base.yaml as
// opts.Read says. Every key that changes the model or its training is
// either carried over or reported: one *ConfigError lists every key
// salt-ort cannot represent.
func Convert(path string, data []byte, opts ConvertOptions) (*Converted, error) {
	comb, err := Combine([]string{path}, opts.Read, map[string][]byte{path: data})
	if err != nil {
		return nil, err
	}
	return convertCombined(comb, opts)
}

// ConvertFiles converts the Salt configuration that `salt fit --config
// paths[0] --config paths[1] ...` would train: Salt's base.yaml beneath
// (opts.Read), then each file laid over the ones before.
func ConvertFiles(paths []string, opts ConvertOptions) (*Converted, error) {
	comb, err := Combine(paths, opts.Read, nil)
	if err != nil {
		return nil, err
	}
	return convertCombined(comb, opts)
}

// IsSaltConfig reports whether path names a Salt configuration (YAML)
// rather than salt-ort's TOML, by its extension.
func IsSaltConfig(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	return ext == ".yaml" || ext == ".yml"
}

func convertCombined(comb *Combined, opts ConvertOptions) (*Converted, error) {
	path := comb.Files[len(comb.Files)-1]
	root := comb.Root()
	c := &converter{file: path, dir: filepath.Dir(path), root: root, used: map[string]bool{}}
	out := &Converted{Config: config.Default(), Files: comb.Files}
	if comb.Base != "" {
		c.note("(base)", "Salt's %s laid beneath the configuration, as Salt's CLI does (--base to choose another)", comb.Base)
	}
	cfg := &out.Config
	for _, k := range []string{"model", "data", "trainer"} {
		if _, ok := root[k].(map[string]any); !ok {
			c.problem(k, "missing: a Salt configuration has model, data and trainer sections (is Salt's base.yaml beside it, or give --base)")
		}
	}
	if len(c.problems) > 0 {
		return nil, &ConfigError{File: strings.Join(comb.Files, " + "), Problems: c.problems}
	}
	c.convertData(cfg, opts)
	out.NormDict, out.ClassDict = c.dictionaries(cfg)
	c.convertModel(cfg)
	c.convertTraining(cfg, opts)
	c.checkRest()
	sort.Strings(c.problems)
	if len(c.problems) > 0 {
		return nil, &ConfigError{File: strings.Join(comb.Files, " + "), Problems: c.problems}
	}
	out.Ignored, out.Notes = c.ignored, c.notes
	out.Ranks = c.ranks
	return out, nil
}

func (c *converter) convertData(cfg *config.Config, opts ConvertOptions) {
	d := &cfg.Data
	d.JetDataset = c.str("data.global_object")
	if d.JetDataset == "" {
		d.JetDataset = "jets"
	}
	if mg := c.str("model.global_object"); mg != "" && mg != d.JetDataset {
		c.problem("model.global_object", "%q differs from data.global_object %q", mg, d.JetDataset)
	}
	vars, _ := c.get("data.variables")
	vm, ok := vars.(map[string]any)
	if !ok || len(vm) == 0 {
		c.problem("data.variables", "no input variables")
	}
	d.Variables = map[string][]string{}
	for _, ds := range sortedKeys(vm) {
		key := "data.variables." + ds
		if strings.HasPrefix(ds, "_") {
			// Salt's CLI adds _edge_features_<group> for its edge
			// constructors; salt-ort computes them from
			// data.edge_constructors.
			c.get(key)
			continue
		}
		d.Variables[ds] = c.strs(key)
	}
	c.convertInputMap(d)
	c.convertParameters(d)
	c.convertEdgeConstructors(d)
	c.convertSelections(d)
	c.convertMultiTarget(d)
	file := func(key string) []string {
		s := c.str(key)
		if s == "" {
			return nil
		}
		if strings.ContainsAny(s, "*?[") {
			matches, _ := filepath.Glob(s)
			if len(matches) == 0 {
				c.problem(key, "the pattern %q matches no file here; salt-ort lists files, so give the files (or make the pattern match)", s)
				return nil
			}
			sort.Strings(matches)
			c.note(key, "the pattern %q is listed as its %d files", s, len(matches))
			return matches
		}
		p := abs(s)
		if _, err := os.Stat(p); err != nil {
			c.note(key, "%s is not here: eval needs --test FILE, and train and export need the files at this path (edit config.toml)", p)
		}
		return []string{p}
	}
	d.Train, d.Val, d.Test = file("data.train_file"), file("data.val_file"), file("data.test_file")
	if len(d.Train) == 0 {
		c.problem("data.train_file", "missing")
	}
	if len(d.Val) == 0 {
		c.problem("data.val_file", "missing")
	}
	d.BatchSize = c.integer("data.batch_size", d.BatchSize)
	d.NumWorkers = max(1, c.integer("data.num_workers", d.NumWorkers))
	d.NumTrain = c.integer("data.num_train", -1)
	d.NumVal = c.integer("data.num_val", -1)
	if n := c.integer("data.num_test", -1); n != -1 {
		c.note("data.num_test", "salt-ort's eval reads every jet of the test files, not the first %d", n)
	}
	if c.boolean("data.non_finite_to_num", false) {
		d.NonFinite = "zero"
	}
	if c.boolean("data.ignore_finite_checks", false) {
		c.note("data.ignore_finite_checks", "salt-ort checks every input for NaN and Inf and stops at one (data.non_finite = \"zero\" replaces them instead)")
	}
	// Constituents per jet: num_inputs where Salt's config limits them, else
	// the files' count, which Salt uses.
	numInputs, _ := c.get("data.num_inputs")
	limits, _ := numInputs.(map[string]any)
	for _, ds := range sortedKeys(d.Variables) {
		if ds == d.JetDataset || ds == config.GlobalVariables || ds == config.ParameterVariables {
			continue
		}
		n := 0
		if _, ok := limits[ds]; ok {
			n = c.integer("data.num_inputs."+ds, 0)
		} else if m, ok := opts.MaxLen[ds]; ok {
			n = m
		} else if len(d.Train) > 0 {
			var err error
			if n, err = constituents(d.Train[0], d.DatasetOf(ds)); err != nil {
				c.problem("data.num_inputs."+ds, "Salt takes the %s per jet from the files, and %v; give the count with --max-len %s=N", ds, err, ds)
				continue
			}
		}
		cfg.Model.InitNets = append(cfg.Model.InitNets, config.InitNet{Input: ds, MaxLen: n})
	}
}

// dictionaries finds the norm and class dictionaries: at the path Salt's
// config gives, or, as Salt copies them into the log directory, beside
// config.yaml.
func (c *converter) dictionaries(cfg *config.Config) (norm, class string) {
	find := func(key string) string {
		p := c.str(key)
		if p == "" {
			return ""
		}
		if _, err := os.Stat(p); err == nil {
			return abs(p)
		}
		beside := filepath.Join(c.dir, filepath.Base(p))
		if _, err := os.Stat(beside); err == nil {
			c.note(key, "%s is not here; using the copy Salt wrote beside config.yaml, %s", p, beside)
			return abs(beside)
		}
		return ""
	}
	norm, class = find("data.norm_dict"), find("data.class_dict")
	c.get("model.norm_config")
	return norm, class
}

func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func (c *converter) convertModel(cfg *config.Config) {
	m := &cfg.Model
	if name := c.str("model.name"); name != "" {
		m.Name = name
	} else if name := c.str("name"); name != "" {
		m.Name = name
	}
	c.get("name")
	const sm = "model.model"
	const ia = sm + ".init_args"
	cp := c.classPath(sm)
	switch cp {
	case "salt.models.SaltModel", "salt.models.R21Xbb":
	default:
		c.problem(sm+".class_path", "%q: salt-ort builds Salt's SaltModel and R21Xbb only", cp)
		return
	}
	switch opt := c.str("model.optimizer"); opt {
	case "", "AdamW":
	case "lion":
		cfg.Training.Optimizer.Name = "lion"
		cfg.Training.Optimizer.Beta2 = 0.99 // lion-pytorch's default
	default:
		c.problem("model.optimizer", "%q: salt-ort trains Salt's models with AdamW or Lion (lion)", opt)
	}
	switch lm := c.str("model.loss_mode"); lm {
	case "", "wsum":
	case "GLS":
		cfg.Training.LossWeighting = "GLS"
	default:
		c.problem("model.loss_mode", "%q: salt-ort combines the task losses as Salt's wsum or GLS", lm)
	}
	c.convertMuP(cfg)
	if cp == "salt.models.R21Xbb" {
		c.convertR21Xbb(cfg, ia)
		return
	}

	// Init nets, in Salt's order (the order of the encoder's sequence).
	nets, _ := c.get(ia + ".init_nets")
	list, _ := nets.([]any)
	if len(list) == 0 {
		c.problem(ia+".init_nets", "no init nets")
	}
	counts := map[string]int{}
	for _, n := range m.InitNets {
		counts[n.Input] = n.MaxLen
	}
	m.InitNets = nil
	embed := 0
	seen := map[string]bool{}
	for i := range list {
		p := fmt.Sprintf("%s.init_nets.%d", ia, i)
		n, out := c.initNet(cfg, p, true)
		if embed == 0 {
			embed = out
		} else if out != embed {
			c.problem(p+".dense_config.output_size", "%d differs from the first init net's %d (Salt requires one embedding size)", out, embed)
		}
		if seen[n.Input] {
			c.problem(p+".input_name", "two init nets for %q", n.Input)
		}
		seen[n.Input] = true
		n.MaxLen = counts[n.Input]
		m.InitNets = append(m.InitNets, n)
	}
	m.EmbedDim = embed
	c.convertEdgeInitNets(cfg, ia+".edge_init_nets")
	c.convertFeaturewise(cfg, ia+".featurewise_nets")

	width := embed
	if v, _ := c.get(ia + ".encoder"); v == nil {
		// Salt's SaltModel without an encoder: the init nets' outputs are
		// pooled directly (DeepSets) or, without pool_net, are the jet's.
		cfg.Model.Encoder = config.Encoder{}
	} else {
		width = c.convertEncoder(cfg, ia+".encoder", embed)
	}
	switch v, _ := c.get(ia + ".pool_net"); {
	case v == nil:
		m.Pooling.Kind = "none"
		if len(m.InitNets) != 1 || m.InitNets[0].Input != cfg.Data.JetDataset {
			c.problem(ia+".pool_net", "unset, but Salt pools unless one init net reads the global object %q alone (Salt asserts the same)", cfg.Data.JetDataset)
		}
	case c.classPath(ia+".pool_net") == "salt.models.GlobalAttentionPooling":
		m.Pooling.Kind = "attention"
		if n := c.integer(ia+".pool_net.init_args.input_size", width); n != width {
			c.problem(ia+".pool_net.init_args.input_size", "%d, but the encoder's output has %d features", n, width)
		}
	default:
		c.problem(ia+".pool_net.class_path", "%q: salt-ort pools with Salt's GlobalAttentionPooling (or, with pool_net unset, reads a jet-only model's init net)", c.classPath(ia+".pool_net"))
	}
	if len(m.InitNets) == 1 && m.InitNets[0].Input == cfg.Data.JetDataset {
		// The jet init net is not a constituent group.
		m.InitNets[0].MaxLen = 0
	}
	if v, _ := c.get(ia + ".merge_dict"); !empty(v) {
		c.problem(ia+".merge_dict", "merging input groups into one stream is not available in salt-ort; give each group its own init net")
	}
	c.convertMaskDecoder(cfg, ia+".mask_decoder", width)
	c.convertTasks(cfg, ia+".tasks", width, len(cfg.Data.Variables[config.GlobalVariables]))
}

// initNet converts one of Salt's InitNet configurations (input_name,
// dense_config, attach_global) and returns it with its output size.
func (c *converter) initNet(cfg *config.Config, p string, constituents bool) (config.InitNet, int) {
	in := c.str(p + ".input_name")
	n := config.InitNet{Input: in}
	dc := p + ".dense_config"
	out := c.integer(dc+".output_size", 0)
	jet := cfg.Data.JetDataset
	// Salt's InitNet attaches the global object's variables (and the
	// parameters, unless a featurewise net takes them) unless told not to.
	attach := c.boolean(p+".attach_global", true)
	switch {
	case in == jet && attach:
		c.problem(p+".attach_global", "true (Salt's default) on the global object's own init net attaches the jet variables to themselves; set attach_global: false, as Salt's DL1 does")
	case in != jet && !attach:
		n.AttachGlobal = &attach
	}
	inputs := len(cfg.Data.Variables[in])
	if attach && in != jet {
		inputs += len(cfg.Data.Variables[jet])
		if !c.featurewiseInput() {
			inputs += len(cfg.Data.Variables[config.ParameterVariables])
		}
	}
	if constituents {
		if _, ok := cfg.Data.Variables[in]; !ok {
			c.problem(p+".input_name", "%q has no variables in data.variables", in)
		}
	}
	if n := c.integer(dc+".input_size", inputs); n != inputs {
		c.problem(dc+".input_size", "%d, but %s has %d variables (with the jets' %d where attach_global)", n, in, len(cfg.Data.Variables[in]), len(cfg.Data.Variables[jet]))
	}
	n.Hidden = c.denseHidden(dc, inputs)
	n.Activation = c.activation(dc+".activation", "ReLU")
	if fa, _ := c.get(dc + ".final_activation"); fa != nil {
		n.FinalActivation = c.activation(dc+".final_activation", "")
	}
	n.Dropout = c.denseCommon(dc, 0)
	n.MuP = c.boolean(dc+".mup", false)
	if c.boolean(p+".mup", false) {
		c.problem(p+".mup", "true: Salt's InitNet with mup calls reset_parameters, which its Dense does not have; set dense_config.mup: true, as GN2_muP.yaml does")
	}
	c.get(p + ".variables")
	c.get(p + ".global_object")
	if v, _ := c.get(p + ".featurewise"); !empty(v) {
		c.problem(p+".featurewise", "set by Salt's CLI from featurewise_nets; give those instead")
	}
	return n, out
}

// featurewiseInput reports whether a featurewise net transforms the init
// nets' inputs (Salt then does not attach the parameters).
func (c *converter) featurewiseInput() bool {
	list, _ := c.peek("model.model.init_args.featurewise_nets").([]any)
	for _, f := range list {
		if m, _ := f.(map[string]any); m != nil && m["layer"] == "input" {
			return true
		}
	}
	return false
}

// convertEdgeInitNets carries edge_init_nets: the Dense over the edge
// features, whose output width is the encoder's edge_embed_dim.
func (c *converter) convertEdgeInitNets(cfg *config.Config, path string) {
	v, _ := c.get(path)
	list, _ := v.([]any)
	for i := range list {
		p := fmt.Sprintf("%s.%d", path, i)
		in := strings.TrimPrefix(c.str(p+".input_name"), "_edge_features_")
		dc := p + ".dense_config"
		n := config.InitNet{Input: in, Activation: c.activation(dc+".activation", "ReLU")}
		c.get(p + ".input_name")
		feats := 0
		for _, e := range cfg.Data.EdgeConstructors {
			if e.Input == in {
				feats = edgeFeatureWidth(e.EdgeFeatures)
			}
		}
		n.Hidden = c.denseHidden(dc, feats)
		if fa, _ := c.get(dc + ".final_activation"); fa != nil {
			n.FinalActivation = c.activation(dc+".final_activation", "")
		}
		c.integer(dc+".output_size", 0)
		c.integer(dc+".input_size", 0)
		c.noDropout(dc, c.denseCommon(dc, 0), "edge init nets")
		c.noMuP(dc, "edge init nets")
		c.get(p + ".attach_global")
		c.get(p + ".variables")
		c.get(p + ".global_object")
		cfg.Model.EdgeInitNets = append(cfg.Model.EdgeInitNets, n)
	}
}

// edgeFeatureWidth is the number of edge feature columns Salt's
// EdgeConstructor makes of the features listed: one per feature
// (calculate_edge_features fills column i with the i-th feature).
func edgeFeatureWidth(features []string) int {
	return len(features)
}

// convertFeaturewise carries featurewise_nets: networks of the parameters
// that scale and shift a layer's features.
func (c *converter) convertFeaturewise(cfg *config.Config, path string) {
	v, _ := c.get(path)
	list, _ := v.([]any)
	for i := range list {
		p := fmt.Sprintf("%s.%d", path, i)
		f := config.FeaturewiseNet{Layer: c.str(p + ".layer"), ApplyNorm: c.boolean(p+".apply_norm", false)}
		dense := func(key string) *config.FeaturewiseDense {
			dc := p + "." + key
			if v, _ := c.get(dc); v == nil {
				return nil
			}
			d := &config.FeaturewiseDense{Hidden: c.ints(dc + ".hidden_layers"), Activation: c.activation(dc+".activation", "ReLU"),
				OutputSize: c.integer(dc+".output_size", 0)}
			if fa, _ := c.get(dc + ".final_activation"); fa != nil {
				d.FinalActivation = c.activation(dc+".final_activation", "")
			}
			c.integer(dc+".input_size", 0)
			c.noDropout(dc, c.denseCommon(dc, 0), "featurewise networks")
			c.noMuP(dc, "featurewise networks")
			return d
		}
		f.DenseConfigScale = dense("dense_config_scale")
		f.DenseConfigBias = dense("dense_config_bias")
		c.get(p + ".variables")
		cfg.Model.FeaturewiseNets = append(cfg.Model.FeaturewiseNets, f)
	}
}

// denseHidden reads the hidden layers of a Dense config: hidden_layers, or
// one layer of input_size·hidden_dim_scale as Salt's Dense defaults.
func (c *converter) denseHidden(dc string, inputSize int) []int {
	if v, _ := c.get(dc + ".hidden_layers"); v != nil {
		return c.ints(dc + ".hidden_layers")
	}
	if n := c.integer(dc+".input_size", 0); n > 0 {
		inputSize = n
	}
	return []int{inputSize * c.integer(dc+".hidden_dim_scale", 2)}
}

// denseCommon checks the Dense settings salt-ort has no key for (they
// must keep Salt's defaults) and returns the dropout. context is the
// context size the head must have.
func (c *converter) denseCommon(dc string, context int) (dropout float64) {
	dropout = c.number(dc+".dropout", 0)
	if !c.boolean(dc+".bias", true) {
		c.problem(dc+".bias", "false: salt-ort's dense layers always have biases")
	}
	if n := c.integer(dc+".context_size", 0); n != context {
		c.problem(dc+".context_size", "%d, but salt-ort's head here reads %d context features (the pooled jet representation for constituent tasks, none for jet tasks)", n, context)
	}
	c.get(dc + ".hidden_dim_scale")
	return dropout
}

// noDropout refuses dropout where salt-ort's network has none.
func (c *converter) noDropout(dc string, dropout float64, where string) {
	if dropout != 0 {
		c.problem(dc+".dropout", "%g: salt-ort has no dropout in %s", dropout, where)
	}
}

func (c *converter) activation(path, def string) string {
	v, _ := c.get(path)
	if v == nil {
		return def
	}
	s, _ := v.(string)
	a, err := nn.ParseActivation(s)
	if err != nil || a == nn.None {
		c.problem(path, "%v: salt-ort has ReLU, SiLU, GELU, Mish and Sigmoid", v)
		return def
	}
	return s
}

// convertEncoder maps Salt's Transformer and returns its output width.
func (c *converter) convertEncoder(cfg *config.Config, p string, embed int) int {
	e := &cfg.Model.Encoder
	cp := c.classPath(p)
	if isLegacyEncoder(cp) {
		return c.convertLegacyEncoder(cfg, p, embed)
	}
	switch cp {
	case "salt.models.Transformer":
	case "salt.models.TransformerCrossAttentionEncoder", "salt.models.transformer.TransformerCrossAttentionEncoder":
		return c.convertCrossAttentionEncoder(cfg, p, embed)
	default:
		c.problem(p+".class_path", "%q: salt-ort builds Salt's Transformer (salt.models.Transformer, alias TransformerV2) and its legacy TransformerEncoder", cp)
		return embed
	}
	a := p + ".init_args"
	e.Layers = c.integer(a+".num_layers", 0)
	if n := c.integer(a+".embed_dim", embed); n != embed {
		c.problem(a+".embed_dim", "%d differs from the init nets' output_size %d", n, embed)
	}
	width := embed
	if v, _ := c.get(a + ".out_dim"); v != nil {
		e.OutDim = c.integer(a+".out_dim", 0)
		width = e.OutDim
	} else {
		e.OutDim = 0
	}
	switch n := c.str(a + ".norm"); n {
	case "", "LayerNorm":
		e.Norm = "LayerNorm"
	case "RMSNorm":
		e.Norm = "RMSNorm"
	default:
		c.problem(a+".norm", "%q: salt-ort's encoder normalises with Salt's LayerNorm or RMSNorm", n)
	}
	if at := c.str(a + ".attn_type"); at != "" {
		c.note(a+".attn_type", "%q: salt-ort computes the same masked attention with ONNX operators; flash-varlen's packed sequences give the same values for valid constituents", at)
	}
	e.FinalNorm = c.boolean(a+".do_final_norm", true)
	e.Registers = c.integer(a+".num_registers", 1)
	e.DropRegisters = c.boolean(a+".drop_registers", false)
	if n := c.integer(a+".num_dense", 1); n != 1 {
		c.problem(a+".num_dense", "%d: salt-ort's encoder layers have one attention and one dense block", n)
	}
	e.EdgeEmbedDim = c.integer(a+".edge_embed_dim", 0)
	e.UpdateEdges = c.boolean(a+".update_edges", false)
	e.MuP = c.boolean(a+".mup", false)
	if v, _ := c.get(a + ".ls_init"); v != nil {
		e.LSInit = c.number(a+".ls_init", 0)
	}
	e.DropPath = c.number(a+".drop_path", 0)
	switch nt := c.str(a + ".norm_type"); nt {
	case "", "pre":
		e.NormType = "pre"
	case "post", "hybrid":
		e.NormType = nt
	default:
		c.problem(a+".norm_type", "%q: salt-ort's encoder layers are pre-norm, post-norm or hybrid, as Salt's", nt)
	}
	dk := a + ".dense_kwargs"
	e.Activation = c.activation(dk+".activation", "SiLU")
	e.Gated = c.boolean(dk+".gated", false)
	e.DenseRatio = 2
	if v, _ := c.get(dk + ".hidden_dim"); v != nil {
		h := c.integer(dk+".hidden_dim", 0)
		if embed == 0 || h%embed != 0 {
			c.problem(dk+".hidden_dim", "%d is not a multiple of embed_dim %d (salt-ort's dense_ratio)", h, embed)
		} else {
			e.DenseRatio = h / embed
		}
	}
	e.Dropout = c.number(dk+".dropout", 0)
	if !c.boolean(dk+".bias", true) {
		c.problem(dk+".bias", "false: salt-ort's dense layers always have biases")
	}
	if c.boolean(dk+".mup", false) && !e.MuP {
		c.problem(dk+".mup", "true without the encoder's mup: salt-ort builds μP for the whole encoder, as Salt's Transformer mup sets it; set mup: true on the encoder")
	}
	ak := a + ".attn_kwargs"
	e.Heads = c.integer(ak+".num_heads", 1)
	e.AttnDropout = c.number(ak+".dropout", 0)
	if !c.boolean(ak+".bias", true) {
		c.problem(ak+".bias", "false: salt-ort's attention projections always have biases")
	}
	e.DoQKNorm = c.boolean(ak+".do_qk_norm", false)
	e.DoVNorm = c.boolean(ak+".do_v_norm", false)
	if e.NormType == "hybrid" {
		e.DoQKNorm, e.DoVNorm = true, true // Salt's hybrid layers set both
	}
	if c.boolean(ak+".mup", false) && !e.MuP {
		c.problem(ak+".mup", "true without the encoder's mup: salt-ort builds μP for the whole encoder, as Salt's Transformer mup sets it; set mup: true on the encoder")
	}
	c.get(ak + ".attn_type")
	return width
}

// convertTasks maps Salt's task heads and their losses. width is the
// encoder's (or the init nets') output width and global the number of
// global variables joined to the pooled representation.
func (c *converter) convertTasks(cfg *config.Config, p string, width, global int) {
	if cp := c.classPath(p); cp != "torch.nn.ModuleList" {
		c.problem(p+".class_path", "%q: Salt's tasks are a torch.nn.ModuleList", cp)
		return
	}
	mods, _ := c.get(p + ".init_args.modules")
	list, _ := mods.([]any)
	if len(list) == 0 {
		c.problem(p+".init_args.modules", "no tasks")
	}
	groups := map[string]bool{}
	for _, n := range cfg.Model.InitNets {
		groups[n.Input] = true
	}
	pooled := width + global
	for i := range list {
		tp := fmt.Sprintf("%s.init_args.modules.%d", p, i)
		a := tp + ".init_args"
		t := config.Task{Name: c.str(a + ".name"), Input: c.str(a + ".input_name")}
		w := c.number(a+".weight", 1)
		t.Weight = &w
		dc := a + ".dense_config"
		jetLevel := t.Input == cfg.Data.JetDataset
		if t.Input == "objects" && cfg.Model.MaskDecoder != nil {
			c.objectTask(cfg, tp, t, width)
			continue
		}
		if !jetLevel && (!groups[t.Input] || t.Input == cfg.Data.JetDataset) {
			c.problem(a+".input_name", "%q is neither the global object %q nor an input with an init net", t.Input, cfg.Data.JetDataset)
		}
		// A jet task reads the pooled representation (with the global
		// variables); a constituent task reads its constituent's
		// encoding with the pooled representation as context; a
		// vertexing task a pair of them.
		headIn, context := pooled, 0
		cls := c.classPath(tp)
		switch {
		case jetLevel:
		case cls == "salt.models.VertexingTask":
			headIn, context = 2*width, pooled
		case c.peek(dc+".context_size") == nil || c.peek(dc+".context_size") == 0:
			// Salt's Dense attaches no context unless given its size: the
			// head reads the constituent's features alone.
			headIn = width
			zero := 0
			t.ContextSize = &zero
		default:
			headIn, context = width, pooled
		}
		if in := c.integer(dc+".input_size", headIn); in != headIn {
			c.problem(dc+".input_size", "%d, but the head reads %d features (the encoder's output is %d wide, the global variables %d)", in, headIn, width, global)
		}
		t.Hidden = c.denseHidden(dc, headIn)
		t.Activation = c.activation(dc+".activation", "ReLU")
		if v, _ := c.get(dc + ".final_activation"); v != nil {
			c.problem(dc+".final_activation", "%v: salt-ort's heads end with the logits, as Salt's default", v)
		}
		t.Dropout = c.denseCommon(dc, context)
		c.noMuP(dc, "task heads")
		out := c.integer(dc+".output_size", 0)
		loss := c.lossOf(a + ".loss")
		switch cls {
		case "salt.models.ClassificationTask":
			c.classificationTask(cfg, &t, a, loss, out, jetLevel)
		case "salt.models.VertexingTask":
			t.Kind = "vertexing"
			t.Label = c.str(a + ".label")
			// Salt always weights pairs by the origin label of the same name.
			t.OriginLabel = strings.Replace(t.Label, "VertexIndex", "OriginLabel", 1)
			if loss.class != "torch.nn.BCEWithLogitsLoss" {
				c.problem(a+".loss.class_path", "%q: Salt's vertexing uses BCEWithLogitsLoss", loss.class)
			}
			if loss.reduction != "none" {
				c.problem(loss.path+".reduction", "%q: Salt's vertexing loss needs reduction \"none\"", loss.reduction)
			}
			for _, k := range []string{"weight", "pos_weight"} {
				if v, _ := c.get(loss.path + "." + k); v != nil {
					c.problem(loss.path+"."+k, "%v: salt-ort's vertexing loss has no %s", v, k)
				}
			}
			if out != 1 {
				c.problem(dc+".output_size", "%d: a vertexing head has one output per pair", out)
			}
		case "salt.models.RegressionTask", "salt.models.GaussianRegressionTask":
			c.regressionTask(cfg, &t, a, cls, loss, out, jetLevel)
		default:
			c.problem(tp+".class_path", "%q: salt-ort has Salt's ClassificationTask, VertexingTask, RegressionTask and GaussianRegressionTask", cls)
			continue
		}
		if jetLevel {
			t.Input = ""
		}
		cfg.Model.Tasks = append(cfg.Model.Tasks, t)
	}
}

// lossConfig is a task's loss as Salt's configuration gives it.
type lossConfig struct {
	path      string // the loss's init_args
	class     string
	reduction string
}

// lossOf reads the loss of a task: its class and reduction, and checks
// the PyTorch arguments salt-ort has no use for.
func (c *converter) lossOf(p string) lossConfig {
	l := lossConfig{path: p + ".init_args", class: c.classPath(p)}
	l.reduction = c.str(l.path + ".reduction")
	for _, k := range []string{"size_average", "reduce"} {
		if v, _ := c.get(l.path + "." + k); v != nil {
			c.problem(l.path+"."+k, "%v: deprecated PyTorch argument salt-ort does not have; use reduction", v)
		}
	}
	return l
}

// classificationTask fills a ClassificationTask: its classes (from the
// configuration, the file's flavour_label attribute or Salt's names of
// truth labels), label map, loss and weights.
func (c *converter) classificationTask(cfg *config.Config, t *config.Task, a string, loss lossConfig, out int, jetLevel bool) {
	t.Label = c.str(a + ".label")
	if jetLevel {
		t.Kind = "jet_classification"
	} else {
		t.Kind = "constituent_classification"
	}
	la := loss.path
	switch loss.class {
	case "torch.nn.CrossEntropyLoss":
		if ls := c.number(la+".label_smoothing", 0); ls != 0 {
			c.problem(la+".label_smoothing", "%g: salt-ort has no label smoothing", ls)
		}
		c.get(la + ".ignore_index") // Salt sets -1, which salt-ort's padding labels are
	case "torch.nn.BCEWithLogitsLoss":
		// A binary classification: one output, the probability of label 1.
		t.Loss = "BCEWithLogitsLoss"
		if v, _ := c.get(la + ".pos_weight"); v != nil {
			c.problem(la+".pos_weight", "%v: salt-ort's binary classification has no pos_weight", v)
		}
	default:
		c.problem(a+".loss.class_path", "%q: salt-ort's classification tasks use CrossEntropyLoss, or BCEWithLogitsLoss with one output", loss.class)
	}
	if v, _ := c.get(la + ".weight"); v != nil {
		t.ClassWeights = c.numbers(la + ".weight")
	} else if c.boolean(a+".use_class_dict", false) {
		t.UseClassDict = true
	}
	c.get(a + ".use_class_dict")
	t.ClassNames = c.strs(a + ".class_names")
	if lc := "data.labeller_config"; jetLevel && t.Label == "flavour_label" && c.boolean(lc+".use_labeller", false) {
		// Salt's dataset labels the global object's flavour_label on the
		// fly with atlas-ftag-tools' Labeller of these classes.
		t.UseLabeller = true
		names := c.strs(lc + ".class_names")
		if t.ClassNames == nil {
			t.ClassNames = names
		} else if !slices.Equal(names, t.ClassNames) {
			c.problem(a+".class_names", "%v, but data.labeller_config labels the jets as %v", t.ClassNames, names)
		}
		if !c.boolean(lc+".require_labels", true) {
			f := false
			t.RequireLabels = &f
		}
		c.note(lc, "flavour_label is computed from the truth labels by atlas-ftag-tools' flavour cuts of %v, as Salt's Labeller does", names)
	}
	if t.ClassNames == nil {
		t.ClassNames = c.defaultClassNames(cfg, t, a)
	}
	if len(t.ClassNames) > 0 && out != len(t.ClassNames) {
		c.problem(a+".dense_config.output_size", "%d outputs for %d class names %v", out, len(t.ClassNames), t.ClassNames)
	}
	if v, _ := c.get(a + ".label_map"); v != nil {
		m, ok := v.(map[string]any)
		if !ok {
			c.problem(a+".label_map", "%v is not a map of label values to classes", v)
		}
		t.LabelMap = map[string]any{}
		for _, k := range sortedKeys(m) {
			switch x := m[k].(type) {
			case int, string:
				t.LabelMap[k] = x
			default:
				c.problem(a+".label_map."+k, "%v is neither a class index nor a class name", x)
			}
		}
	}
	c.sampleWeight(t, a, loss)
}

// sampleWeight carries a task's sample_weight, which Salt applies to the
// unreduced loss (reduction: none).
func (c *converter) sampleWeight(t *config.Task, a string, loss lossConfig) {
	t.SampleWeight = c.str(a + ".sample_weight")
	switch {
	case t.SampleWeight != "" && loss.reduction != "none":
		c.problem(a+".sample_weight", "%q with the loss's reduction %q: Salt weights samples only with reduction \"none\" (it asserts so)", t.SampleWeight, loss.reduction)
	case t.SampleWeight != "":
		// Salt's apply_sample_weight: the mean of weight × loss over every
		// entry.
		t.LossMean = "entries"
	case loss.reduction != "" && loss.reduction != "mean" && loss.reduction != "none":
		c.problem(loss.path+".reduction", "%q: salt-ort averages the loss (\"mean\")", loss.reduction)
	}
}

// defaultClassNames are the class names Salt uses where a classification
// leaves class_names unset: the flavour_label attribute of the training
// file's jet dataset (written by the ftag preprocessing) for the global
// object's flavour_label, Salt's names of the truth labels otherwise.
func (c *converter) defaultClassNames(cfg *config.Config, t *config.Task, a string) []string {
	if names, ok := classNames[t.Label]; ok {
		c.note(a+".class_names", "null: Salt's names for %s, %v", t.Label, names)
		return names
	}
	if t.Kind == "jet_classification" && t.Label == "flavour_label" && len(cfg.Data.Train) > 0 {
		names, err := flavourLabelNames(cfg.Data.Train[0], cfg.Data.DatasetOf(cfg.Data.JetDataset))
		if err == nil {
			c.note(a+".class_names", "null: %v, from the flavour_label attribute of %s's %s dataset, as Salt's CLI reads them", names, cfg.Data.Train[0], cfg.Data.JetDataset)
			return names
		}
		c.problem(a+".class_names", "null, and Salt reads them from the training file's flavour_label attribute, but %v; list class_names, or give the training file (data.train_file) as the ftag preprocessing writes it", err)
		return nil
	}
	c.problem(a+".class_names", "null, and %s has no class names salt-ort knows: list them", t.Label)
	return nil
}

// regressionTask fills a RegressionTask or GaussianRegressionTask: its
// targets, loss and target scaling.
func (c *converter) regressionTask(cfg *config.Config, t *config.Task, a, cls string, loss lossConfig, out int, jetLevel bool) {
	t.Kind = "regression"
	if cls == "salt.models.GaussianRegressionTask" {
		t.Kind = "gaussian_regression"
	}
	t.Targets = c.strs(a + ".targets")
	if t.Targets == nil {
		if s := c.str(a + ".targets"); s != "" {
			t.Targets = []string{s}
		}
	}
	la := loss.path
	switch {
	case t.Kind == "gaussian_regression":
		if loss.class != "torch.nn.GaussianNLLLoss" {
			c.problem(a+".loss.class_path", "%q: a Gaussian regression trains with GaussianNLLLoss", loss.class)
		}
		c.get(la + ".eps")
		c.get(la + ".full")
	case loss.class == "torch.nn.MSELoss":
	case loss.class == "torch.nn.L1Loss":
		t.Loss = "L1Loss"
	case loss.class == "torch.nn.HuberLoss":
		t.Loss = "HuberLoss"
		t.HuberDelta = c.number(la+".delta", 1)
	default:
		c.problem(a+".loss.class_path", "%q: salt-ort's regression has MSELoss, L1Loss and HuberLoss", loss.class)
	}
	c.sampleWeight(t, a, loss)
	if v, _ := c.get(a + ".target_denominators"); !empty(v) {
		t.TargetDenominators = c.strs(a + ".target_denominators")
		if t.TargetDenominators == nil {
			t.TargetDenominators = []string{c.str(a + ".target_denominators")}
		}
	}
	if v, _ := c.get(a + ".norm_params"); !empty(v) {
		np := &config.NormParams{Mean: c.listOrNumber(a + ".norm_params.mean"), Std: c.listOrNumber(a + ".norm_params.std")}
		t.NormParams = np
	}
	if v, _ := c.get(a + ".scaler"); !empty(v) {
		sp := a + ".scaler"
		if cp := c.classPath(sp); cp != "salt.utils.scalers.RegressionTargetScaler" {
			c.problem(sp+".class_path", "%q: salt-ort has Salt's RegressionTargetScaler", cp)
		}
		scales, _ := c.get(sp + ".init_args.scales")
		m, _ := scales.(map[string]any)
		t.Scaler = map[string]config.Scale{}
		for _, target := range sortedKeys(m) {
			p := sp + ".init_args.scales." + target
			sc := config.Scale{Op: c.str(p + ".op"), XOff: c.number(p+".x_off", 0), OpOff: c.number(p+".op_off", 0)}
			if v, _ := c.get(p + ".x_scale"); v != nil {
				x := c.number(p+".x_scale", 1)
				sc.XScale = &x
			}
			if v, _ := c.get(p + ".op_scale"); v != nil {
				x := c.number(p+".op_scale", 1)
				sc.OpScale = &x
			}
			t.Scaler[target] = sc
		}
	}
	if v, _ := c.get(a + ".custom_output_names"); !empty(v) {
		c.note(a+".custom_output_names", "salt-ort names each output after its target")
	}
	want := len(t.Targets)
	if t.Kind == "gaussian_regression" {
		want *= 2
	}
	if out != want {
		c.problem(a+".dense_config.output_size", "%d outputs for %d targets (a Gaussian regression has a mean and a variance each)", out, len(t.Targets))
	}
}

// listOrNumber reads a list of numbers, or one number as a list of one
// (Salt's listify).
func (c *converter) listOrNumber(path string) []float64 {
	v, _ := c.peek(path).([]any)
	if v != nil {
		return c.numbers(path)
	}
	return []float64{c.number(path, 0)}
}

// classNames are the class names Salt uses for a label where the config
// gives none (salt/utils/class_names.py).
var classNames = map[string][]string{
	"ftagTruthOriginLabel": {"Pileup", "Fake", "Primary", "FromB", "FromBC", "FromC", "FromTau", "OtherSecondary"},
	"ftagTruthTypeLabel":   {"NoTruth", "Other", "Pion", "Kaon", "Electron", "Muon"},
	"ftagTruthSourceLabel": {"NoTruth", "NotSecondary", "HadronicInteraction", "StrangeMesonDecay", "StrangeBaryonDecay", "GammaConversion", "Other"},
}

func (c *converter) convertTraining(cfg *config.Config, opts ConvertOptions) {
	t := &cfg.Training
	if v, _ := c.get("seed_everything"); v != nil {
		if n, ok := v.(int); ok && n >= 0 {
			t.Seed = uint64(n)
		} else if b, ok := v.(bool); !ok || b {
			c.note("seed_everything", "%v: salt-ort needs a fixed seed; it uses %d", v, t.Seed)
		}
	}
	t.Epochs = c.integer("trainer.max_epochs", 0)
	if t.Epochs < 1 {
		c.problem("trainer.max_epochs", "salt-ort trains for a number of epochs: set max_epochs")
	}
	lr := "model.lrs_config"
	t.LR.Initial = c.number(lr+".initial", t.LR.Initial)
	t.LR.Max = c.number(lr+".max", t.LR.Max)
	t.LR.End = c.number(lr+".end", t.LR.End)
	t.LR.WarmupFraction = c.number(lr+".pct_start", t.LR.WarmupFraction)
	t.Optimizer.WeightDecay = c.number(lr+".weight_decay", 1e-5)
	t.LR.CycleMomentum = true
	t.LR.BaseMomentum, t.LR.MaxMomentum = 0.85, 0.95
	if le := c.integer(lr+".last_epoch", -1); le != -1 {
		c.note(lr+".last_epoch", "%d: salt-ort continues the schedule from the step its checkpoint records", le)
	}
	if v, _ := c.get("model.lrs_config"); v != nil {
		m, _ := v.(map[string]any)
		for _, k := range sortedKeys(m) {
			if !c.used[lr+"."+k] {
				c.problem(lr+"."+k, "unknown learning-rate setting")
			}
		}
	}

	device := "cpu"
	switch acc := c.str("trainer.accelerator"); acc {
	case "gpu", "cuda":
		device = "cuda"
	case "", "cpu", "auto":
	default:
		c.problem("trainer.accelerator", "%q: salt-ort runs on \"cpu\" or \"gpu\" (CUDA)", acc)
	}
	if opts.Device != "" {
		device = opts.Device
	}
	t.Device = device
	precision := "fp32"
	key := "trainer.precision"
	v, _ := c.get(key)
	switch p := fmt.Sprint(v); p {
	case "<nil>", "32", "32-true", "fp32":
	case "16", "16-mixed":
		precision = "fp16"
	case "bf16", "bf16-mixed":
		precision = "bf16"
	default:
		c.problem(key, "%v: salt-ort trains in 32-true, 16-mixed or bf16-mixed", v)
	}
	if precision != "fp32" && device != "cuda" {
		c.note(key, "%v on the CPU: salt-ort trains in fp32 there", v)
		precision = "fp32"
	}
	t.Precision = precision
	c.ranks = c.deviceCount("trainer.devices") * c.deviceCount("trainer.num_nodes")
	if c.ranks > 1 {
		// Salt's batch_size is each device's; salt-ort's is the step's,
		// dealt between the ranks.
		c.note("trainer.devices", "Salt trained on %d devices (devices × num_nodes) with batch_size %d each; salt-ort runs them as the %d ranks of an MPI job, mpirun -n %d salt-ort train …, with data.batch_size = %d jets a step, %d a rank", c.ranks, cfg.Data.BatchSize, c.ranks, c.ranks, c.ranks*cfg.Data.BatchSize, cfg.Data.BatchSize)
		cfg.Data.BatchSize *= c.ranks
	}
	if v, _ := c.get("trainer.gradient_clip_val"); v != nil {
		t.GradClip = c.number("trainer.gradient_clip_val", 0)
		if a := c.str("trainer.gradient_clip_algorithm"); a != "" && a != "norm" {
			c.problem("trainer.gradient_clip_algorithm", "%q: salt-ort clips the global norm (\"norm\")", a)
		}
	}
	c.get("trainer.gradient_clip_algorithm")
	if n := c.integer("trainer.log_every_n_steps", 0); n > 0 {
		t.LogEvery = n
	}
	if n := c.integer("trainer.accumulate_grad_batches", 1); n != 1 {
		c.problem("trainer.accumulate_grad_batches", "%d: salt-ort steps the optimizer after every batch", n)
	}
	if n := c.integer("trainer.max_steps", -1); n != -1 {
		c.problem("trainer.max_steps", "%d: salt-ort trains for max_epochs epochs", n)
	}
	if v, _ := c.get("trainer.max_time"); v != nil {
		c.problem("trainer.max_time", "%v: salt-ort trains for max_epochs epochs", v)
	}
	for _, k := range []string{"limit_train_batches", "overfit_batches"} {
		v, _ := c.get("trainer." + k)
		if f, ok := v.(float64); v != nil && !(ok && (f == 1 && k == "limit_train_batches" || f == 0 && k == "overfit_batches")) {
			if n, ok := v.(int); !(ok && n == 0 && k == "overfit_batches") {
				c.problem("trainer."+k, "%v: salt-ort trains on every batch of num_train jets; set data.num_train instead", v)
			}
		}
	}
	if c.boolean("trainer.fast_dev_run", false) {
		c.problem("trainer.fast_dev_run", "true: a debugging run; import the configuration of a real training")
	}
	if v, _ := c.get("trainer.plugins"); v != nil {
		c.problem("trainer.plugins", "Lightning plugins are not available in salt-ort")
	}
	// The monitored loss of Salt's Checkpoint callback.
	list, _ := c.peek("trainer.callbacks").([]any)
	for i := range list {
		p := fmt.Sprintf("trainer.callbacks.%d", i)
		cp, _ := c.peek(p + ".class_path").(string)
		if cp == "salt.callbacks.IntegratedGradientWriter" {
			c.note(p, "integrated gradients are a command of their own: %s", explainCommand(c, p+".init_args"))
		}
		if cp != "salt.callbacks.Checkpoint" {
			continue
		}
		mon, _ := c.peek(p + ".init_args.monitor_loss").(string)
		switch {
		case mon == "val/loss":
			t.Checkpoints.Monitor = "val_loss"
		case strings.HasPrefix(mon, "val/") && strings.HasSuffix(mon, "_loss"):
			t.Checkpoints.Monitor = "val_loss/" + strings.TrimSuffix(strings.TrimPrefix(mon, "val/"), "_loss")
		default:
			c.note(p+".init_args.monitor_loss", "%q: salt-ort monitors val_loss", mon)
		}
		c.note(p, "Salt keeps every epoch's checkpoint; salt-ort keeps the last and the best %d by %s", t.Checkpoints.SaveTopK, t.Checkpoints.Monitor)
	}
	for _, k := range []string{"optimizer", "lr_scheduler"} {
		if v, _ := c.get(k); v != nil {
			c.problem(k, "LightningCLI's %s is not Salt's (model.lrs_config); salt-ort has Salt's AdamW with OneCycleLR", k)
		}
	}
	if c.boolean("compile", false) {
		c.note("compile", "true: torch.compile changes how, not what, Salt computes")
	}
}

// explainCommand is the salt-ort explain command line with the options of
// Salt's IntegratedGradientWriter at args.
func explainCommand(c *converter, args string) string {
	cmd := "salt-ort explain RUN_DIR"
	for _, o := range []struct{ key, flag string }{
		{"n_steps", "--steps"}, {"n_baselines", "--baselines"}, {"n_jets", "--num-jets"},
		{"min_allowed_track_sizes", "--min-constituents"}, {"max_allowed_track_sizes", "--max-constituents"},
	} {
		if n, ok := c.peek(args + "." + o.key).(int); ok && n > 0 {
			cmd += fmt.Sprintf(" %s %d", o.flag, n)
		}
	}
	return cmd
}

// deviceCount reads trainer.devices or trainer.num_nodes as Lightning
// does: a count, a list of device indices, or "auto" (one here).
func (c *converter) deviceCount(key string) int {
	v, _ := c.get(key)
	switch n := v.(type) {
	case int:
		if n > 0 {
			return n
		}
		if n == -1 {
			c.note(key, "-1 (every device of the node): salt-ort counts one; give mpirun -n the number you want")
		}
	case []any:
		if len(n) > 0 {
			return len(n)
		}
	case string:
		if k, err := strconv.Atoi(n); err == nil && k > 0 {
			return k
		}
		if n != "auto" && n != "" {
			c.problem(key, "%q: give a number of devices", n)
		}
	}
	return 1
}

// ignoredPrefixes are keys that do not change the model or how it trains,
// with why salt-ort does not carry them.
var ignoredPrefixes = []struct{ prefix, why string }{
	{"trainer.logger", "logging (salt-ort writes metrics/train.csv and metrics/val.csv)"},
	{"trainer.callbacks", "logging, progress and prediction-writing callbacks (salt-ort's eval writes predictions)"},
	{"trainer.default_root_dir", "the log directory (salt-ort's is the run directory)"},
	{"trainer.strategy", "how Lightning distributes one device's work"},
	{"trainer.enable_", "logging, progress and summary switches"},
	{"trainer.num_sanity_val_steps", "a check before training"},
	{"trainer.check_val_every_n_epoch", "validation schedule (salt-ort validates every epoch)"},
	{"trainer.val_check_interval", "validation schedule (salt-ort validates every epoch)"},
	{"trainer.limit_val_batches", "validation size (salt-ort uses data.num_val)"},
	{"trainer.limit_test_batches", "test size"},
	{"trainer.limit_predict_batches", "prediction size"},
	{"trainer.min_epochs", "salt-ort trains for max_epochs (early stopping is off unless configured)"},
	{"trainer.min_steps", "salt-ort trains for max_epochs"},
	{"trainer.deterministic", "salt-ort's runs are deterministic for a seed and thread count"},
	{"trainer.benchmark", "cuDNN autotuning"},
	{"trainer.inference_mode", "evaluation without autograd (salt-ort's evaluation graph has none)"},
	{"trainer.use_distributed_sampler", "multi-device sampling"},
	{"trainer.profiler", "profiling"},
	{"trainer.detect_anomaly", "autograd debugging"},
	{"trainer.barebones", "Lightning overhead switch"},
	{"trainer.sync_batchnorm", "there is no batch norm"},
	{"trainer.reload_dataloaders_every_n_epochs", "loader lifetime"},
	{"trainer.model_registry", "model registry"},
	{"data.pin_memory", "loader performance"},
	{"data.persistent_workers", "loader performance"},
	{"data.prefetch_factor", "loader performance (salt-ort: data.prefetch)"},
	{"data.multiprocessing_context", "loader processes"},
	{"data.move_files_temp", "file staging"},
	{"data.train_vds_path", "virtual dataset staging"},
	{"data.val_vds_path", "virtual dataset staging"},
	{"data.test_vds_path", "virtual dataset staging"},
	{"data.test_suff", "prediction file naming"},
	{"data.config_s3", "S3 access"},
	{"data.labels", "the labels Salt derived from the tasks"},
	{"data.norm_dict", "copied into the run directory"},
	{"data.class_dict", "copied into the run directory"},
	{"force", "Salt's git check"},
	{"tag", "Salt's git tag"},
	{"overwrite_config", "Salt's config writing"},
	{"log_suffix", "Salt's log directory name"},
	{"ckpt_path", "the checkpoint Salt resumed from"},
	{"config", "the config files Salt was given"},
}

// checkRest classifies every key the conversion did not use: keys
// without effect on the model or its training are noted as ignored; null,
// false, zero and empty values switch nothing on; any other value is a
// feature salt-ort lacks.
func (c *converter) checkRest() {
	var walk func(path string, v any)
	walk = func(path string, v any) {
		if c.usedOrAncestor(path) {
			return
		}
		for _, ig := range ignoredPrefixes {
			if path == ig.prefix || strings.HasPrefix(path, ig.prefix+".") || (strings.HasSuffix(ig.prefix, "_") && strings.HasPrefix(path, ig.prefix)) {
				if !empty(v) {
					c.ignored = append(c.ignored, path+": "+ig.why)
				}
				return
			}
		}
		switch n := v.(type) {
		case map[string]any:
			if len(n) == 0 {
				return
			}
			for _, k := range sortedKeys(n) {
				walk(joinKey(path, k), n[k])
			}
		case []any:
			for i, e := range n {
				walk(joinKey(path, strconv.Itoa(i)), e)
			}
		default:
			if !empty(v) {
				c.problem(path, "%v: salt-ort has no equivalent of this setting", v)
			}
		}
	}
	walk("", c.root)
	sort.Strings(c.ignored)
}

func joinKey(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

func (c *converter) usedOrAncestor(path string) bool {
	for p := path; p != ""; {
		if c.used[p] {
			return true
		}
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return false
}

// empty reports values that switch nothing on.
func empty(v any) bool {
	switch n := v.(type) {
	case nil:
		return true
	case bool:
		return !n
	case int:
		return n == 0
	case float64:
		return n == 0
	case string:
		return n == ""
	case []any:
		return len(n) == 0
	case map[string]any:
		return len(n) == 0
	}
	return false
}

// constituents returns the constituents per jet of a dataset of an HDF5
// file: what Salt trains on where data.num_inputs does not limit it.
func constituents(file, dataset string) (int, error) {
	t, err := loader.OpenFieldTable(file, dataset)
	if err != nil {
		return 0, err
	}
	defer t.Close()
	if t.Width() == 0 {
		return 0, fmt.Errorf("%s: dataset %q has one row per jet", file, dataset)
	}
	return t.Width(), nil
}

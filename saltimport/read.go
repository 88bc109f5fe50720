package saltimport

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/salt-ort/salt-ort/config"
)

// BaseFile is the name of the default configuration Salt's CLI loads
// beneath every configuration given to `salt fit` and `salt test`
// (salt/configs/base.yaml in Salt's source).
const BaseFile = "base.yaml"

// Limits on a configuration file read from disk: Salt's largest shipped
// configuration is a few kB, and a log directory's config.yaml tens of kB
// with mappings of tens of keys. go.yaml.in/yaml/v3 decodes a mapping in
// time quadratic in its number of keys (1 MiB of keys in one mapping took
// 2 minutes), and parses to nodes in linear time (0.5 s per MiB), so the
// nodes are parsed and counted before they are decoded.
const (
	// maxConfigBytes bounds the file's size.
	maxConfigBytes = 2 << 20
	// maxConfigNodes bounds its YAML nodes with every alias expanded.
	maxConfigNodes = 500_000
	// maxMappingKeys bounds the keys of one mapping.
	maxMappingKeys = 5000
)

// document is one YAML file of a Salt configuration, read and brought into
// the canonical form the converter reads.
type document struct {
	path string
	root map[string]any
}

// readYAML parses the text of one configuration file: YAML anchors,
// aliases and merge keys (<<) resolved, maps with keys that are not
// strings (Salt's label_map {0: 0, 5: 1}) keyed by the keys' text, and
// jsonargparse's class forms made canonical (see canonicalClasses).
func readYAML(path string, data []byte) (*document, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &ConfigError{File: path, Problems: []string{"(file): not YAML: " + err.Error()}}
	}
	if doc.Kind == 0 {
		return nil, &ConfigError{File: path, Problems: []string{"(file): empty"}}
	}
	if msg := checkNodes(&doc); msg != "" {
		return nil, &ConfigError{File: path, Problems: []string{msg}}
	}
	var root map[string]any
	if err := doc.Decode(&root); err != nil {
		return nil, &ConfigError{File: path, Problems: []string{"(file): not YAML: " + err.Error()}}
	}
	if root == nil {
		return nil, &ConfigError{File: path, Problems: []string{"(file): empty"}}
	}
	r, _ := stringKeys(root).(map[string]any)
	canonicalClasses("", r)
	return &document{path: path, root: r}, nil
}

// checkNodes says how the parsed document doc exceeds maxConfigNodes or
// maxMappingKeys, naming the mapping's key path; "" where it does not.
func checkNodes(doc *yaml.Node) string {
	w := nodeWalk{seen: map[*yaml.Node]int{}}
	n := w.count(doc, "")
	switch {
	case w.wide != "":
		return w.wide
	case n > maxConfigNodes:
		return fmt.Sprintf("(file): aliases expand the document to more than %d values; a Salt configuration has a few thousand", maxConfigNodes)
	}
	return ""
}

// nodeWalk counts a document's nodes with aliases expanded, saturating
// past maxConfigNodes, and notes the first mapping wider than
// maxMappingKeys.
type nodeWalk struct {
	seen map[*yaml.Node]int // expanded sizes of the nodes counted
	wide string
}

func (w *nodeWalk) count(n *yaml.Node, path string) int {
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return 1
		}
		return 1 + w.count(n.Alias, path)
	}
	if c, ok := w.seen[n]; ok {
		return c
	}
	w.seen[n] = 1 // breaks alias cycles, which Decode then refuses
	if n.Kind == yaml.MappingNode && len(n.Content)/2 > maxMappingKeys && w.wide == "" {
		key := path
		if key == "" {
			key = "(file)"
		}
		w.wide = fmt.Sprintf("%s: a mapping of %d keys, more than the %d salt-ort reads; a Salt configuration's have tens", key, len(n.Content)/2, maxMappingKeys)
	}
	total := 1
	for i, c := range n.Content {
		sub := path
		if n.Kind == yaml.MappingNode && i%2 == 1 {
			sub = strings.TrimPrefix(path+"."+n.Content[i-1].Value, ".")
		}
		if total += w.count(c, sub); total > maxConfigNodes || w.wide != "" {
			total = maxConfigNodes + 1
			break
		}
	}
	w.seen[n] = total
	return total
}

// readFile reads and parses one configuration file.
func readFile(path string) (*document, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("Salt configuration: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("Salt configuration %s: %w", path, err)
	}
	if len(data) > maxConfigBytes {
		return nil, &ConfigError{File: path, Problems: []string{fmt.Sprintf("(file): larger than %d MiB; a Salt configuration is a few kB, a log directory's config.yaml tens of kB", maxConfigBytes>>20)}}
	}
	return readYAML(path, data)
}

// stringKeys converts maps whose keys are not all strings into maps keyed
// by the keys' text, recursively, as jsonargparse reads them.
func stringKeys(v any) any {
	switch n := v.(type) {
	case map[string]any:
		for k, e := range n {
			n[k] = stringKeys(e)
		}
		return n
	case map[any]any:
		out := make(map[string]any, len(n))
		for k, e := range n {
			key := fmt.Sprint(k)
			if k == nil {
				key = "null" // YAML's null key, as MaskFormer's object_classes write the no-object class
			}
			out[key] = stringKeys(e)
		}
		return out
	case []any:
		for i, e := range n {
			n[i] = stringKeys(e)
		}
		return n
	}
	return v
}

// knownClasses are the full import paths of the classes Salt's
// configurations name by their bare class name (jsonargparse resolves a
// bare name against the classes the parameter's type allows).
var knownClasses = func() map[string]string {
	m := map[string]string{}
	for _, c := range []string{"CrossEntropyLoss", "BCEWithLogitsLoss", "BCELoss", "MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss", "GaussianNLLLoss", "NLLLoss", "ModuleList"} {
		m[c] = "torch.nn." + c
	}
	for _, c := range []string{"SaltModel", "Transformer", "TransformerV2", "TransformerEncoder", "TransformerCrossAttentionEncoder",
		"GlobalAttentionPooling", "NodeQueryGAP", "ClassificationTask", "RegressionTask", "GaussianRegressionTask", "VertexingTask",
		"Dense", "InitNet", "R21Xbb", "EdgeConstructor", "FeaturewiseTransformation", "ScaledDotProductAttention"} {
		m[c] = "salt.models." + c
	}
	return m
}()

// classAliases are class paths that name the same class as another.
var classAliases = map[string]string{
	// salt/models/transformer_v2.py: TransformerV2 = transformer.Transformer
	"salt.models.TransformerV2":                "salt.models.Transformer",
	"salt.models.transformer_v2.TransformerV2": "salt.models.Transformer",
	"salt.models.transformer.Transformer":      "salt.models.Transformer",
}

// classKeys are the configuration keys whose value is a class, which Salt's
// configurations may give in jsonargparse's shorthand: the class path
// alone, as a string (loss: torch.nn.CrossEntropyLoss).
var classKeys = map[string]bool{"loss": true, "encoder": true, "pool_net": true, "tasks": true, "scaler": true, "attention": true, "mask_decoder": true}

// canonicalClasses rewrites jsonargparse's class forms in place into one:
// {class_path: full.import.Path, init_args: {...}}. A bare class name
// becomes its full path, aliases their class, init arguments given beside
// class_path move into init_args, and a class key given as a string
// becomes an object with no init arguments.
func canonicalClasses(key string, v any) {
	switch n := v.(type) {
	case map[string]any:
		if cp, ok := n["class_path"].(string); ok {
			n["class_path"] = canonicalClassPath(cp)
			for k, e := range n {
				if k == "class_path" || k == "init_args" || k == "dict_kwargs" {
					continue
				}
				ia, _ := n["init_args"].(map[string]any)
				if ia == nil {
					ia = map[string]any{}
					n["init_args"] = ia
				}
				if _, dup := ia[k]; !dup {
					ia[k] = e
				}
				delete(n, k)
			}
		}
		for k, e := range n {
			if s, ok := e.(string); ok && classKeys[k] && looksLikeClass(s) {
				n[k] = map[string]any{"class_path": canonicalClassPath(s)}
				continue
			}
			canonicalClasses(k, e)
		}
	case []any:
		for _, e := range n {
			canonicalClasses(key, e)
		}
	}
}

// looksLikeClass tells a class path or a known bare class name from
// another string value.
func looksLikeClass(s string) bool {
	if _, ok := knownClasses[s]; ok {
		return true
	}
	return strings.Contains(s, ".") && !strings.ContainsAny(s, " /")
}

func canonicalClassPath(cp string) string {
	if full, ok := knownClasses[cp]; ok {
		cp = full
	}
	if to, ok := classAliases[cp]; ok {
		cp = to
	}
	return cp
}

// merge lays src over dst as jsonargparse layers successive configuration
// files: maps merge key by key, anything else (lists included) is
// replaced, and a class object whose class_path differs from the one
// beneath replaces it whole (its init arguments belong to another class).
func merge(dst, src any) any {
	sm, ok1 := src.(map[string]any)
	dm, ok2 := dst.(map[string]any)
	if !ok1 || !ok2 {
		return src
	}
	if scp, ok := sm["class_path"]; ok {
		if dcp, ok := dm["class_path"]; ok && dcp != scp {
			return src
		}
	}
	out := make(map[string]any, len(dm)+len(sm))
	for k, v := range dm {
		out[k] = v
	}
	for k, v := range sm {
		if dv, ok := out[k]; ok {
			out[k] = merge(dv, v)
		} else {
			out[k] = v
		}
	}
	return out
}

// findBase finds the base.yaml Salt's CLI would load beneath the
// configuration at path: beside it, or in a directory named configs
// above it (salt/configs/base.yaml for salt/configs/GN2/GN2.yaml).
// It returns "" where there is none.
func findBase(path string) string {
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return ""
	}
	if p := filepath.Join(dir, BaseFile); isFile(p) && !samePath(p, path) {
		return p
	}
	for d := dir; ; {
		if filepath.Base(d) == "configs" {
			if p := filepath.Join(d, BaseFile); isFile(p) && !samePath(p, path) {
				return p
			}
		}
		if p := filepath.Join(d, "configs", BaseFile); d != dir && isFile(p) && !samePath(p, path) {
			return p
		}
		parent := filepath.Dir(d)
		if parent == d {
			return ""
		}
		d = parent
	}
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func samePath(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// ReadOptions say how Salt's configuration files are combined.
type ReadOptions struct {
	// Base is Salt's base.yaml, laid beneath the configuration as Salt's
	// CLI lays it; "" finds it beside the first configuration file or in
	// a configs directory above it (none found: no base).
	Base string
	// NoBase reads the configuration files alone (a log directory's
	// config.yaml, which Salt wrote complete).
	NoBase bool
}

// Combined is a Salt configuration as Salt's CLI combines it from its
// files.
type Combined struct {
	// Files are the files read, base first, in the order they were laid.
	Files []string
	// Base is the base.yaml laid beneath ("" for none).
	Base string
	root map[string]any
}

// Root returns the combined configuration tree.
func (c *Combined) Root() map[string]any { return c.root }

// Combine reads Salt's configuration files as `salt fit --config A
// --config B` reads them: base.yaml beneath (see ReadOptions), then each
// file laid over the ones before it. texts, where not nil, gives a file's
// text instead of reading it (by path).
func Combine(paths []string, opts ReadOptions, texts map[string][]byte) (*Combined, error) {
	if len(paths) == 0 {
		return nil, errors.New("Salt configuration: no file given")
	}
	read := func(p string) (*document, error) {
		if t, ok := texts[p]; ok {
			return readYAML(p, t)
		}
		return readFile(p)
	}
	out := &Combined{}
	var root any = map[string]any{}
	base := opts.Base
	if base == "" && !opts.NoBase {
		base = findBase(paths[0])
	}
	if base != "" && !opts.NoBase {
		doc, err := read(base)
		if err != nil {
			return nil, fmt.Errorf("Salt's base configuration (--base): %w", err)
		}
		root = merge(root, doc.root)
		out.Base = base
		out.Files = append(out.Files, base)
	}
	for _, p := range paths {
		doc, err := read(p)
		if err != nil {
			return nil, err
		}
		root = merge(root, doc.root)
		out.Files = append(out.Files, p)
	}
	out.root = root.(map[string]any)
	return out, nil
}

// TrainConfig converts Salt's configuration files into the salt-ort
// configuration `salt-ort train CONFIG.yaml` trains, as `salt fit
// --config` would train them: the norm and class dictionaries at the
// paths the configuration names (or, as Salt copies them, beside it). The
// configuration is parsed and validated as config.Parse does a TOML file.
func TrainConfig(paths []string, opts ConvertOptions) (*config.Config, *Converted, error) {
	conv, err := ConvertFiles(paths, opts)
	if err != nil {
		return nil, nil, err
	}
	cfg := &conv.Config
	if conv.NormDict == "" {
		return nil, nil, &ConfigError{File: strings.Join(conv.Files, " + "), Problems: []string{"data.norm_dict: the file is not here (nor beside the configuration): give its path, or make one with salt-ort norm"}}
	}
	cfg.Data.NormDict = conv.NormDict
	cfg.Data.ClassDict = conv.ClassDict
	text, err := cfg.Encode()
	if err != nil {
		return nil, nil, err
	}
	header := fmt.Sprintf("# Converted by salt-ort from Salt's configuration %s.\n", strings.Join(conv.Files, " + "))
	parsed, err := config.Parse(paths[len(paths)-1], append([]byte(header), text...))
	if err != nil {
		return nil, nil, err
	}
	return parsed, conv, nil
}

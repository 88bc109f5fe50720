package loader

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/salt-ort/salt-ort/internal/atomicfile"
	"go.yaml.in/yaml/v3"
)

// NormEntry is one variable's normalisation: x → (x - Mean) / Std.
type NormEntry struct {
	Mean float64 `yaml:"mean"`
	Std  float64 `yaml:"std"`
}

// NormDict is Salt's norm_dict: dataset (input) name → variable → entry.
// Open looks a group up under its Dataset name first, then its Name.
type NormDict map[string]map[string]NormEntry

// lookup finds the entry for variable v of group g.
func (n NormDict) lookup(g *Group, v string) (NormEntry, bool) {
	for _, key := range []string{g.Dataset, g.Name} {
		if vars, ok := n[key]; ok {
			if e, ok := vars[v]; ok {
				return e, true
			}
		}
	}
	return NormEntry{}, false
}

// check applies Salt's checks to the entry used for variable v of group g.
func (e NormEntry) check(g *Group, v string) error {
	if math.IsNaN(e.Mean) || math.IsInf(e.Mean, 0) || math.IsNaN(e.Std) || math.IsInf(e.Std, 0) {
		return fmt.Errorf("loader: norm dict: %s.%s: non-finite mean %v or std %v", g.Dataset, v, e.Mean, e.Std)
	}
	if e.Std == 0 {
		return fmt.Errorf("loader: norm dict: %s.%s: zero std (the variable is constant; drop it or fix the dict)", g.Dataset, v)
	}
	if float32(e.Std) == 0 || math.Abs(e.Std) > math.MaxFloat32 || math.Abs(e.Mean) > math.MaxFloat32 {
		return fmt.Errorf("loader: norm dict: %s.%s: mean %v or std %v is out of float32 range", g.Dataset, v, e.Mean, e.Std)
	}
	return nil
}

// ReadNormDict reads a Salt norm_dict YAML file
// ({dataset: {variable: {mean: m, std: s}}}). Entries must have both mean
// and std; finiteness and non-zero std are checked by Open for the
// variables actually used, as Salt does.
func ReadNormDict(path string) (NormDict, error) {
	data, err := readDictFile(path)
	if err != nil {
		return nil, fmt.Errorf("loader: norm dict: %w", err)
	}
	return ParseNormDict(path, data)
}

// ParseNormDict is ReadNormDict on the text of a file; path names it in
// errors.
func ParseNormDict(path string, data []byte) (NormDict, error) {
	var raw map[string]map[string]struct {
		Mean *float64 `yaml:"mean"`
		Std  *float64 `yaml:"std"`
	}
	if err := decodeDict(data, &raw); err != nil {
		return nil, fmt.Errorf("loader: norm dict %s: %w (want {dataset: {variable: {mean: m, std: s}}})", path, err)
	}
	nd := NormDict{}
	for ds, vars := range raw {
		nd[ds] = map[string]NormEntry{}
		for v, e := range vars {
			if e.Mean == nil || e.Std == nil {
				return nil, fmt.Errorf("loader: norm dict %s: %s.%s: needs both mean and std", path, ds, v)
			}
			nd[ds][v] = NormEntry{Mean: *e.Mean, Std: *e.Std}
		}
	}
	return nd, nil
}

// WriteNormDict writes nd as Salt's norm_dict YAML, keys sorted, each entry
// as a flow mapping {mean: m, std: s}. Floats are written so that PyYAML
// (which Salt uses) also reads them as floats.
func WriteNormDict(path string, nd NormDict) error {
	return writeYAML(path, normDictNode(nd))
}

// EncodeNormDict returns the text WriteNormDict writes.
func EncodeNormDict(nd NormDict) ([]byte, error) {
	return encodeYAML(normDictNode(nd))
}

func normDictNode(nd NormDict) *yaml.Node {
	root := &yaml.Node{Kind: yaml.MappingNode}
	for _, ds := range sortedKeys(nd) {
		vars := &yaml.Node{Kind: yaml.MappingNode}
		for _, v := range sortedKeys(nd[ds]) {
			e := nd[ds][v]
			entry := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle, Content: []*yaml.Node{
				strNode("mean"), floatNode(e.Mean), strNode("std"), floatNode(e.Std),
			}}
			vars.Content = append(vars.Content, strNode(v), entry)
		}
		root.Content = append(root.Content, strNode(ds), vars)
	}
	return root
}

// ClassDict is Salt's class_dict: dataset → label field → per-class loss
// weights in class-index order.
type ClassDict map[string]map[string][]float64

// ReadClassDict reads a Salt class_dict YAML file.
func ReadClassDict(path string) (ClassDict, error) {
	data, err := readDictFile(path)
	if err != nil {
		return nil, fmt.Errorf("loader: class dict: %w", err)
	}
	return ParseClassDict(path, data)
}

// ParseClassDict is ReadClassDict on the text of a file; path names it in
// errors.
func ParseClassDict(path string, data []byte) (ClassDict, error) {
	var cd ClassDict
	if err := decodeDict(data, &cd); err != nil {
		return nil, fmt.Errorf("loader: class dict %s: %w (want {dataset: {label: [w0, w1, ...]}})", path, err)
	}
	for ds, labels := range cd {
		for l, ws := range labels {
			for i, w := range ws {
				if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
					return nil, fmt.Errorf("loader: class dict %s: %s.%s[%d] = %v: weights must be finite and ≥ 0", path, ds, l, i, w)
				}
			}
		}
	}
	return cd, nil
}

// WriteClassDict writes cd as Salt's class_dict YAML, keys sorted, each
// weight list as a flow sequence.
func WriteClassDict(path string, cd ClassDict) error {
	return writeYAML(path, classDictNode(cd))
}

// EncodeClassDict returns the text WriteClassDict writes.
func EncodeClassDict(cd ClassDict) ([]byte, error) {
	return encodeYAML(classDictNode(cd))
}

func classDictNode(cd ClassDict) *yaml.Node {
	root := &yaml.Node{Kind: yaml.MappingNode}
	for _, ds := range sortedKeys(cd) {
		labels := &yaml.Node{Kind: yaml.MappingNode}
		for _, l := range sortedKeys(cd[ds]) {
			seq := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
			for _, w := range cd[ds][l] {
				seq.Content = append(seq.Content, floatNode(w))
			}
			labels.Content = append(labels.Content, strNode(l), seq)
		}
		root.Content = append(root.Content, strNode(ds), labels)
	}
	return root
}

// Limits on dictionary files. go.yaml.in/yaml/v3 decodes a mapping in
// time quadratic in its number of keys (1 MiB of norm entries took 9 s) and
// expands aliases before its own excessive-aliasing check stops it (1 MiB
// of aliases to a mapping took 20-30 s). Salt's dictionaries hold tens of
// variables in a few KiB.
const (
	// MaxDictSize is the largest norm or class dictionary read, in bytes.
	MaxDictSize = 256 << 10
	// MaxDictNodes bounds the YAML nodes of a dictionary with every
	// alias expanded.
	MaxDictNodes = 100_000
)

// readDictFile reads a dictionary file, at most MaxDictSize+1 bytes of it,
// so that decodeDict refuses a larger one without it being read whole.
func readDictFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxDictSize+1))
}

// decodeDict decodes a dictionary's YAML into out within the limits.
func decodeDict(data []byte, out any) error {
	if len(data) > MaxDictSize {
		return fmt.Errorf("%d bytes; a dictionary is at most %d (256 KiB)", len(data), MaxDictSize)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	if doc.Kind == 0 { // empty document
		return nil
	}
	if n := expandedNodes(&doc, map[*yaml.Node]int{}); n > MaxDictNodes {
		return fmt.Errorf("aliases expand the document to more than %d nodes", MaxDictNodes)
	}
	return doc.Decode(out)
}

// expandedNodes counts the nodes of n with aliases expanded, saturating
// past MaxDictNodes. seen memoises anchored nodes (and breaks alias cycles,
// which Decode then rejects).
func expandedNodes(n *yaml.Node, seen map[*yaml.Node]int) int {
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return 1
		}
		return 1 + expandedNodes(n.Alias, seen)
	}
	if c, ok := seen[n]; ok {
		return c
	}
	seen[n] = 1
	total := 1
	for _, c := range n.Content {
		if total += expandedNodes(c, seen); total > MaxDictNodes {
			total = MaxDictNodes + 1
			break
		}
	}
	seen[n] = total
	return total
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func strNode(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

// formatYAMLFloat writes v so that both YAML 1.2 and PyYAML's YAML 1.1
// resolver read a float: a dot in the mantissa and a signed exponent.
func formatYAMLFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return ".nan"
	case math.IsInf(v, 1):
		return ".inf"
	case math.IsInf(v, -1):
		return "-.inf"
	}
	s := strconv.FormatFloat(v, 'g', -1, 64)
	mant, exp, hasExp := strings.Cut(s, "e")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	if hasExp {
		return mant + "e" + exp
	}
	return mant
}

func floatNode(v float64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: formatYAMLFloat(v)}
}

func encodeYAML(root *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeYAML(path string, root *yaml.Node) error {
	b, err := encodeYAML(root)
	if err != nil {
		return fmt.Errorf("loader: %s: %w", path, err)
	}
	if err := atomicfile.Write(path, b); err != nil {
		return fmt.Errorf("loader: %w", err)
	}
	return nil
}

// ComputeNorm makes a norm dict and a class dict from training files in one
// streaming pass (files in order, no shuffle). The norm dict has the mean
// and standard deviation (population, ddof 0) of every variable of every
// group over valid entries, keyed by dataset then variable. The class dict
// has, for each ClassLabel among labels, inverse-frequency weights
// w_i = N / (K · n_i) over valid entries (N entries, K classes, n_i of class
// i; K = NumClasses or the largest label + 1; a class never seen gets 0),
// keyed by dataset then field. Other label kinds are ignored. A constant
// variable (zero std) or a group with no valid entry is an error.
func ComputeNorm(files []string, groups []Group, labels ...Label) (NormDict, ClassDict, error) {
	return ComputeNormLimit(files, 0, groups, labels...)
}

// ComputeNormLimit is ComputeNorm over the first limit jets of the files
// (0 = all).
func ComputeNormLimit(files []string, limit int, groups []Group, labels ...Label) (NormDict, ClassDict, error) {
	r, err := ComputeNormWith(NormOptions{Files: files, Limit: limit, Groups: groups, Labels: labels})
	if err != nil {
		return nil, nil, err
	}
	return r.Norm, r.Class, nil
}

// ConstantPolicy decides what ComputeNormWith does with a variable whose
// values are all the same (zero standard deviation, which Salt rejects).
type ConstantPolicy int

const (
	// ConstantFail (the default) fails with a *ConstantError listing
	// every constant variable at once.
	ConstantFail ConstantPolicy = iota
	// ConstantDrop leaves constant variables out of the norm dict (and
	// lists them in NormResult.Constant): a configuration must then drop
	// them from its variables.
	ConstantDrop
	// ConstantKeep writes them with their value as mean and std 1, so
	// that they normalise to 0 and training can keep them.
	ConstantKeep
)

// NormOptions configure ComputeNormWith.
type NormOptions struct {
	Files  []string
	Limit  int // the first Limit jets (0 = all)
	Groups []Group
	// Labels are the labels to count for the class dict; only ClassLabel
	// ones are read.
	Labels []Label
	// Selections are the cuts of Config.Selections: the statistics are
	// over the jets and constituents training will read.
	Selections map[string][]Cut
	// NonFinite is Config.NonFinite: ZeroNonFinite counts non-finite
	// values as 0, as training reads them.
	NonFinite NonFinitePolicy
	// Constant decides what a constant variable gives.
	Constant ConstantPolicy
}

// ConstantVar is a variable with the same value everywhere.
type ConstantVar struct {
	Dataset, Variable string
	Value             float64
}

// ConstantError lists every variable that is constant in the files.
type ConstantError struct {
	Files []string
	Vars  []ConstantVar
}

// Error lists the variables and what to do.
func (e *ConstantError) Error() string {
	parts := make([]string, len(e.Vars))
	for i, v := range e.Vars {
		parts[i] = fmt.Sprintf("%s.%s = %v", v.Dataset, v.Variable, v.Value)
	}
	return fmt.Sprintf("loader: norm: %d variable(s) are constant in %s: %s; Salt rejects a zero std: drop them from the variables, or keep them normalised to 0 (std 1)",
		len(e.Vars), strings.Join(e.Files, ", "), strings.Join(parts, ", "))
}

// NormResult is what ComputeNormWith computed.
type NormResult struct {
	Norm  NormDict
	Class ClassDict
	// Constant lists the constant variables (dropped or kept as the
	// policy says).
	Constant []ConstantVar
	// NonFinite counts the non-finite values read as 0.
	NonFinite int64
	// Jets is the number of jets read.
	Jets int
}

// ComputeNormWith is ComputeNorm with options: a jet limit, the
// selections and non-finite policy of training, and what to do with
// constant variables.
func ComputeNormWith(o NormOptions) (*NormResult, error) {
	files, groups := o.Files, o.Groups
	var cls []Label
	for _, l := range o.Labels {
		if l.Kind == ClassLabel {
			cls = append(cls, l)
		}
	}
	ds, err := Open(Config{Files: files, Groups: groups, Labels: cls, Limit: o.Limit, BatchSize: 1024, ChunkSize: 1024, Workers: 2,
		Selections: o.Selections, NonFinite: o.NonFinite})
	if err != nil {
		return nil, err
	}
	defer ds.Close()
	cfg := ds.Config()
	type acc struct {
		n      float64
		shift  float64
		s1, s2 float64
		set    bool
	}
	accs := make([][]acc, len(cfg.Groups))
	for gi, g := range cfg.Groups {
		accs[gi] = make([]acc, len(g.Variables))
	}
	counts := make([][]float64, len(cls))
	add := func(a *acc, x float32) {
		v := float64(x)
		if !a.set {
			a.shift, a.set = v, true
		}
		v -= a.shift
		a.n++
		a.s1 += v
		a.s2 += v * v
	}
	batches, errc := ds.Batches(context.Background(), 0, 0)
	for b := range batches {
		for gi, g := range cfg.Groups {
			t := b.Inputs[g.Name]
			F := len(g.Variables)
			if t.Valid == nil {
				for j := range b.N {
					for v := range F {
						add(&accs[gi][v], t.Data[j*F+v])
					}
				}
				continue
			}
			T := t.Shape[1]
			for j := range b.N * T {
				if !t.Valid[j] {
					continue
				}
				for v := range F {
					add(&accs[gi][v], t.Data[j*F+v])
				}
			}
		}
		for li, l := range cls {
			for _, c := range b.Labels[l.Name] {
				if c < 0 {
					continue
				}
				for int(c) >= len(counts[li]) {
					counts[li] = append(counts[li], 0)
				}
				counts[li][c]++
			}
		}
		b.Release()
	}
	if err := <-errc; err != nil {
		return nil, err
	}
	res := &NormResult{Norm: NormDict{}, NonFinite: ds.NonFiniteCount(), Jets: ds.Len()}
	nd := res.Norm
	for gi, g := range cfg.Groups {
		if nd[g.Dataset] == nil {
			nd[g.Dataset] = map[string]NormEntry{}
		}
		for vi, v := range g.Variables {
			a := accs[gi][vi]
			if a.n == 0 {
				return nil, fmt.Errorf("loader: norm: %s.%s: no valid entries in %s", g.Dataset, v, strings.Join(files, ", "))
			}
			m := a.s1 / a.n
			std := math.Sqrt(math.Max(a.s2/a.n-m*m, 0))
			if std == 0 || float32(std) == 0 {
				res.Constant = append(res.Constant, ConstantVar{Dataset: g.Dataset, Variable: v, Value: a.shift + m})
				if o.Constant == ConstantKeep {
					nd[g.Dataset][v] = NormEntry{Mean: a.shift + m, Std: 1}
				}
				continue
			}
			nd[g.Dataset][v] = NormEntry{Mean: a.shift + m, Std: std}
		}
	}
	if len(res.Constant) > 0 && o.Constant == ConstantFail {
		return nil, &ConstantError{Files: files, Vars: res.Constant}
	}
	cd := ClassDict{}
	for li, l := range cls {
		k := max(l.NumClasses, len(counts[li]))
		if l.NumClasses > 0 && len(counts[li]) > l.NumClasses {
			return nil, fmt.Errorf("loader: class dict: %s.%s has label %d, beyond the %d classes given", l.Dataset, l.Field, len(counts[li])-1, l.NumClasses)
		}
		total := 0.0
		for _, c := range counts[li] {
			total += c
		}
		w := make([]float64, k)
		for i := range w {
			if i < len(counts[li]) && counts[li][i] > 0 {
				w[i] = total / (float64(k) * counts[li][i])
			}
		}
		if cd[l.Dataset] == nil {
			cd[l.Dataset] = map[string][]float64{}
		}
		cd[l.Dataset][l.Field] = w
	}
	res.Class = cd
	return res, nil
}

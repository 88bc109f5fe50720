package model

import (
	"fmt"
	"math"
	"strings"
	"unicode"

	"github.com/salt-ort/salt-ort/flavour"
	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/nn"
)

// Affine is the input normalisation (x − Mean)/Std of each variable, as
// the loader applies it in training (float32 arithmetic).
type Affine struct {
	Mean, Std []float32
}

// Normalisation holds the Affine of the jet variables and of each
// constituent group, folded into deployment graphs so that they read raw
// variables.
type Normalisation struct {
	Jets   Affine
	Inputs map[string]Affine
}

// normalise applies (x − mean)/std over the last axis of x.
func normalise(g *graph.Graph, name string, x *graph.Tensor, a Affine) *graph.Tensor {
	n := int64(len(a.Mean))
	if x.Dim(-1) != n || len(a.Std) != len(a.Mean) {
		g.Errorf("normalisation of %s: %d means, %d stds for %d variables", name, len(a.Mean), len(a.Std), x.Dim(-1))
		return x
	}
	defer g.Scope("normalise/" + name)()
	mean := make([]float64, n)
	std := make([]float64, n)
	for i := range mean {
		mean[i], std[i] = float64(a.Mean[i]), float64(a.Std[i])
	}
	return g.Div(g.Sub(x, g.Const("mean", graph.Float32, graph.Shape{n}, mean)), g.Const("std", graph.Float32, graph.Shape{n}, std))
}

// InferOptions configure the batched inference graph.
type InferOptions struct {
	// Batch is the number of jets per call; -1 makes it dynamic (then the
	// constituent groups must keep their static lengths).
	Batch int
	// Norm, when set, folds the input normalisation into the graph, which
	// then reads raw variables; padded entries are zeroed as the loader
	// does.
	Norm *Normalisation
}

// Infer builds the batched inference graph: inputs jets, constituents and
// valid masks, outputs every prediction. Its parameters stay graph
// parameters: written with graph.ModelOptions.ParamValues they become
// initializers holding the trained weights.
func (s *Spec) Infer(opts InferOptions) (*graph.Graph, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	g := graph.New(s.Name)
	// Raw inputs take the parameters in the jets' last columns, as the
	// one-jet interface does.
	in := s.declareInputsWith(g, int64(opts.Batch), false, opts.Norm != nil)
	if opts.Norm != nil {
		in.rawJets, in.rawSeqs = in.jets, append([]*graph.Tensor(nil), in.seqs...)
		in.jets = normalise(g, "jets", in.jets, opts.Norm.Jets)
		for i, grp := range s.Inputs {
			x := normalise(g, grp.Name, in.seqs[i], opts.Norm.Inputs[grp.Name])
			in.seqs[i] = g.Where(g.Unsqueeze(in.valid[i], -1), x, g.Scalar(graph.Float32, 0))
		}
	} else {
		// Normalised inputs: the raw variables of the edge features and
		// the raw denominators of regression targets come as inputs of
		// their own.
		if e := s.Edges; e != nil {
			t := int64(s.Inputs[0].MaxLen)
			in.edgeVars = g.Input(EdgeVariablesInput(e.Input), graph.Float32, graph.Shape{int64(opts.Batch), t, int64(max(len(e.Needs()), 1))})
		}
		for _, task := range s.Tasks {
			if task.HasDenominators() {
				shape := s.entryShape(task, int64(opts.Batch)).Clone()
				in.denoms[task.Name] = g.Input(DenominatorInput(task.Name), graph.Float32, append(shape, int64(len(task.Targets))))
			}
		}
	}
	s.predictions(g, s.forward(g, in, false), func(Task) bool { return true })
	if err := g.Err(); err != nil {
		return nil, fmt.Errorf("model %s: inference graph: %w", s.Name, err)
	}
	return g, nil
}

// JetFeaturesInput is the deployment graph's jet input.
const JetFeaturesInput = "jet_features"

// DeployInputName is the deployment input of a constituent group, named
// as Salt's exporter names it and as ATLAS's loader (one-jet interface,
// metadata v1) looks it up: the group's kind without its plural s,
// then "_features". Groups of tracks or flows are named after the text
// before the first '_' ("tracks_loose" → "track_features"); other groups
// after the whole name ("electrons" → "electron_features").
func DeployInputName(group string) string {
	return strings.TrimSuffix(AthenaGroupBase(group), "s") + "_features"
}

// AthenaGroupBase is the base name of a constituent group as Salt's
// exporter derives it: the text before the first '_' for groups whose
// name contains "tracks" or "flows", else the name itself.
func AthenaGroupBase(group string) string {
	if strings.Contains(group, "tracks") || strings.Contains(group, "flows") {
		return strings.SplitN(group, "_", 2)[0]
	}
	return group
}

// OutputKind says what a deployment output holds.
type OutputKind string

// The kinds of deployment outputs.
const (
	// ClassProbability is a float32 scalar: the probability of one class
	// of a jet classification.
	ClassProbability OutputKind = "class_probability"
	// RegressionValue is a float32 scalar: one regression target (the
	// mean of a Gaussian regression).
	RegressionValue OutputKind = "regression"
	// RegressionStddev is a float32 scalar: the predicted standard
	// deviation of one target of a Gaussian regression.
	RegressionStddev OutputKind = "regression_stddev"
	// ConstituentClass is int8 [n]: the most probable class of each
	// constituent of a constituent classification; for a binary one, 1
	// where the class's probability is at least ½, else 0.
	ConstituentClass OutputKind = "constituent_class"
	// VertexIndex is int8 [n]: for each constituent the smallest index of
	// the constituents it shares a vertex with (see Deploy).
	VertexIndex OutputKind = "vertex_index"
	// ConstituentRegressionValue is float32 [n]: one regression target of
	// each constituent (the mean of a Gaussian regression).
	ConstituentRegressionValue OutputKind = "constituent_regression"
	// ConstituentRegressionStddev is float32 [n]: the predicted standard
	// deviation of one target of each constituent.
	ConstituentRegressionStddev OutputKind = "constituent_regression_stddev"
	// ObjectIndex is int8 [n]: the mask decoder's object of each
	// constituent of its group (see ObjectIndices), exported with
	// DeployOptions.ObjectName.
	ObjectIndex OutputKind = "object_index"
)

// DeployOutput is one output of the deployment interface.
type DeployOutput struct {
	Name  string // e.g. GN2_pb
	Kind  OutputKind
	Task  string // the task it comes from
	Index int    // class index (ClassProbability) or target index (regression)
	Label string // the class or target name; "" for per-constituent outputs
	Group string // constituent group of per-constituent outputs
}

// PerConstituent reports whether the output has one value per constituent
// of its Group ([n]) rather than one per jet (a float32 scalar).
func (o DeployOutput) PerConstituent() bool {
	switch o.Kind {
	case ConstituentClass, VertexIndex, ConstituentRegressionValue, ConstituentRegressionStddev, ObjectIndex:
		return true
	}
	return false
}

// Int8 reports whether the output's values are int8 (constituent classes,
// vertex and object indices) rather than float32.
func (o DeployOutput) Int8() bool {
	return o.Kind == ConstituentClass || o.Kind == VertexIndex || o.Kind == ObjectIndex
}

// Regression reports whether the output is a regression value or spread,
// per jet or per constituent.
func (o DeployOutput) Regression() bool {
	switch o.Kind {
	case RegressionValue, RegressionStddev, ConstituentRegressionValue, ConstituentRegressionStddev:
		return true
	}
	return false
}

// DeployOptions choose the outputs of a deployment graph.
type DeployOptions struct {
	// Tasks are the tasks to export, by name; nil exports every task.
	Tasks []string
	// Rename renames outputs, by name without the model prefix (as Salt's
	// exporter --rename takes them): {"pu": "plight"} makes GN2_pu
	// GN2_plight.
	Rename map[string]string
	// Reference builds the graph from the forward pass the training and
	// evaluation graphs share, with a batch axis of one jet, instead of the
	// one-jet pass written for speed (see onejet.go). Both compute the same
	// outputs up to float32 rounding; Deploy builds the reference graph
	// anyway for a model with an option the one-jet pass does not know.
	Reference bool
	// ObjectName, if set, exports the objects of the mask decoder as
	// Salt's exporter does with --object_name: the output
	// <model>_<ObjectName>Index (ObjectIndex).
	ObjectName string
}

// CheckDeployName checks that a model name can prefix deployment outputs:
// ATLAS's loader takes the text before the first '_' of every output as
// the model name, and Salt's exporter allows no '-' either.
func CheckDeployName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("the model name is empty")
	case strings.ContainsAny(name, "_-"):
		return fmt.Errorf("model name %q contains '_' or '-': ATLAS's loader reads the model name as the text before the first '_' of every output, and Salt's exporter refuses both; choose a name without them (model.name, or export --name)", name)
	case strings.ContainsAny(name, " \t\n/"):
		return fmt.Errorf("model name %q contains white space or '/'", name)
	}
	return nil
}

// DeployOutputs lists the outputs of the deployment interface in graph
// order: the jet-level outputs of the exported tasks in task order, then
// their per-constituent outputs in task order (as Salt's exporter orders
// them). Names follow Salt's exporter:
//   - <model>_<short class name> per class of a jet classification, with
//     ATLAS's short names (class bjets or b → GN2_pb; see package flavour);
//   - <model>_<target> per regression target, and <model>_<target>_stddev
//     for Gaussian regression;
//   - <model>_<Task in PascalCase> for a constituent classification
//     (track_origin → GN2_TrackOrigin);
//   - <model>_VertexIndex for vertexing;
//   - <model>_<object name>Index, the objects of a mask decoder, last,
//     with DeployOptions.ObjectName.
//
// Two outputs with one name are an error naming both tasks: export fewer
// tasks or rename one.
func (s *Spec) DeployOutputs(opts DeployOptions) ([]DeployOutput, error) {
	if err := CheckDeployName(s.Name); err != nil {
		return nil, fmt.Errorf("model %s: %w", s.Name, err)
	}
	selected := map[string]bool{}
	for _, name := range opts.Tasks {
		found := false
		for _, t := range s.Tasks {
			found = found || t.Name == name
		}
		if !found {
			return nil, fmt.Errorf("model %s: no task %q to export; the tasks are %s", s.Name, name, strings.Join(s.taskNames(), ", "))
		}
		selected[name] = true
	}
	var jet, seq []DeployOutput
	for _, t := range s.Tasks {
		if len(opts.Tasks) > 0 && !selected[t.Name] {
			continue
		}
		switch t.Kind {
		case JetClassification:
			for i, c := range t.Classes {
				jet = append(jet, DeployOutput{Name: flavour.Short(c), Kind: ClassProbability, Task: t.Name, Index: i, Label: c})
			}
		case JetRegression, JetGaussianRegression:
			for i, target := range t.Targets {
				jet = append(jet, DeployOutput{Name: target, Kind: RegressionValue, Task: t.Name, Index: i, Label: target})
			}
			if t.Kind == JetGaussianRegression {
				for i, target := range t.Targets {
					jet = append(jet, DeployOutput{Name: target + "_stddev", Kind: RegressionStddev, Task: t.Name, Index: i, Label: target})
				}
			}
		case ConstituentRegression, ConstituentGaussianRegression:
			for i, target := range t.Targets {
				seq = append(seq, DeployOutput{Name: target, Kind: ConstituentRegressionValue, Task: t.Name, Index: i, Label: target, Group: t.Input})
			}
			if t.Kind.Gaussian() {
				for i, target := range t.Targets {
					seq = append(seq, DeployOutput{Name: target + "_stddev", Kind: ConstituentRegressionStddev, Task: t.Name, Index: i, Label: target, Group: t.Input})
				}
			}
		case ConstituentClassification:
			if len(t.Classes) > math.MaxInt8+1 {
				return nil, fmt.Errorf("model %s: task %s has %d classes; its int8 deployment output holds at most %d", s.Name, t.Name, len(t.Classes), math.MaxInt8+1)
			}
			seq = append(seq, DeployOutput{Name: pascalCase(t.Name), Kind: ConstituentClass, Task: t.Name, Group: t.Input})
		case Vertexing:
			seq = append(seq, DeployOutput{Name: "VertexIndex", Kind: VertexIndex, Task: t.Name, Group: t.Input})
		}
	}
	objs, err := s.objectDeployOutputs(opts)
	if err != nil {
		return nil, err
	}
	outs := append(append(jet, seq...), objs...)
	used := map[string]bool{}
	for old, name := range opts.Rename {
		found := false
		for i := range outs {
			if outs[i].Name == old {
				found = true
				outs[i].Name = name
			}
		}
		if !found {
			return nil, fmt.Errorf("model %s: rename %s: no output %s_%s to rename; the outputs are %s", s.Name, old, s.Name, old, strings.Join(deployNames(s.Name, outs), ", "))
		}
		if name == "" || strings.ContainsAny(name, " \t\n/") {
			return nil, fmt.Errorf("model %s: rename %s: new name %q is empty or has white space or '/'", s.Name, old, name)
		}
		used[old] = true
	}
	byName := map[string]DeployOutput{}
	for i := range outs {
		outs[i].Name = s.Name + "_" + outs[i].Name
		if prev, ok := byName[outs[i].Name]; ok {
			return nil, fmt.Errorf("model %s: tasks %s and %s both have the deployment output %s: export one of them (--tasks) or rename one (--rename)", s.Name, prev.Task, outs[i].Task, outs[i].Name)
		}
		byName[outs[i].Name] = outs[i]
	}
	if len(outs) == 0 {
		return nil, fmt.Errorf("model %s: no outputs to export", s.Name)
	}
	return outs, nil
}

func deployNames(model string, outs []DeployOutput) []string {
	names := make([]string, len(outs))
	for i, o := range outs {
		names[i] = model + "_" + o.Name
	}
	return names
}

func (s *Spec) taskNames() []string {
	names := make([]string, len(s.Tasks))
	for i, t := range s.Tasks {
		names[i] = t.Name
	}
	return names
}

func pascalCase(s string) string {
	var b strings.Builder
	up := true
	for _, r := range s {
		if r == '_' || r == '-' || r == ' ' {
			up = true
			continue
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// VertexIterations is the number of reachability squarings the deployment
// graph does to group constituents into vertices: components are exact
// for up to 2^VertexIterations = 256 constituents per jet.
const VertexIterations = 8

// Deploy builds the deployment graph in the interface ATLAS software
// loads: one jet per call, inputs jet_features [1, n_jet_vars] (the jet
// variables, then any parameters, raw) and, per
// constituent group, DeployInputName(group) [n, n_vars] (n dynamic, every
// constituent valid, in the order the model was trained with) with raw
// variables (the normalisation is folded in), and the outputs
// DeployOutputs lists:
//   - class probabilities, regression values and Gaussian standard
//     deviations: float32 scalars;
//   - constituent classes: int8 [n], the argmax class of each constituent;
//   - vertex indices: int8 [n], for each constituent the smallest index of
//     the constituents it shares a vertex with, from pairs whose
//     symmetrised probability is at least 0.5 (Salt's grouping). An index
//     that int8 cannot hold (a constituent beyond the 128th whose vertex
//     has no earlier member) is -1, never a wrapped value;
//   - object indices: int8 [n], the object of each constituent (see
//     ObjectIndices).
//
// The graph computes the forward pass of the training and evaluation
// graphs with the same parameters, in operators chosen for one jet on one
// CPU thread (see onejet.go); DeployOptions.Reference builds it from the
// shared forward pass instead.
func (s *Spec) Deploy(norm Normalisation, opts DeployOptions) (*graph.Graph, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	outs, err := s.DeployOutputs(opts)
	if err != nil {
		return nil, err
	}
	g := graph.New(s.Name)
	// jet_features holds the jet variables, then the parameters (raw).
	nj, np := int64(len(s.JetVars)), int64(len(s.Parameters))
	jets := g.Input(JetFeaturesInput, graph.Float32, graph.Shape{1, nj + np})
	var params *graph.Tensor
	if np > 0 {
		params = g.Slice(jets, []int{1}, []int64{nj}, []int64{nj + np})
		jets = g.Slice(jets, []int{1}, []int64{0}, []int64{nj})
	}
	names := map[string]string{}
	var feats []*graph.Tensor
	for _, grp := range s.Inputs {
		name := DeployInputName(grp.Name)
		if prev, ok := names[name]; ok {
			return nil, fmt.Errorf("model %s: constituent groups %s and %s both deploy as input %s; ATLAS's loader names inputs by the kind of constituent, so rename one group", s.Name, prev, grp.Name, name)
		}
		names[name] = grp.Name
		feats = append(feats, g.Input(name, graph.Float32, graph.Shape{-1, int64(len(grp.Vars))}))
	}
	// The heads of the reference pass have a batch axis of 1, those of the
	// one-jet pass none.
	var f *forward
	reference := opts.Reference || !s.oneJetSupported()
	unbatch := func(h *graph.Tensor) *graph.Tensor { return h }
	if reference {
		in := &inputs{params: params, jets: normalise(g, "jets", jets, norm.Jets), rawJets: jets}
		for i, grp := range s.Inputs {
			in.seqs = append(in.seqs, g.Unsqueeze(normalise(g, grp.Name, feats[i], norm.Inputs[grp.Name]), 0))
			in.rawSeqs = append(in.rawSeqs, g.Unsqueeze(feats[i], 0))
			in.valid = append(in.valid, nil)
		}
		f = s.forward(g, in, false)
		unbatch = func(h *graph.Tensor) *graph.Tensor { return g.Squeeze(h, 0) }
	} else {
		f = s.oneJetForward(g, jets, feats, norm)
	}
	probs := map[string][]*graph.Tensor{} // per jet classification, the probability of each class, computed once
	// Each regression's predictions in the targets' units, [1, k] or
	// [1, n, k], and its variances, computed once.
	means, variances := map[string]*graph.Tensor{}, map[string]*graph.Tensor{}
	regression := func(task Task) {
		if means[task.Name] != nil {
			return
		}
		h, den := f.heads[task.Name], f.denoms[task.Name]
		if !task.Kind.Gaussian() {
			means[task.Name] = s.unscale(g, task, h, den)
			return
		}
		k := int64(len(task.Targets))
		parts := g.Split(h, -1, k, k)
		means[task.Name] = s.unscale(g, task, parts[0], den)
		variances[task.Name] = s.unscaleVariance(g, task, nn.GaussianVariance(g, parts[1]), den)
	}
	// column is element i of the last axis of a per-constituent [1, n, k]
	// as [n].
	column := func(x *graph.Tensor, i int) *graph.Tensor {
		return g.Squeeze(g.Slice(g.Squeeze(x, 0), []int{1}, []int64{int64(i)}, []int64{int64(i) + 1}), 1)
	}
	for _, o := range outs {
		if o.Kind == ObjectIndex {
			g.Output(o.Name, deployObjectIndex(g, unbatch(f.objects.ClassProbs), unbatch(f.objects.Masks)))
			continue
		}
		task := s.task(o.Task)
		h := f.heads[task.Name]
		pop := g.Scope(task.Name + "/deploy")
		one := func(x *graph.Tensor, i int) *graph.Tensor { // element i of [1, k] as a scalar
			return g.Reshape(g.Slice(x, []int{1}, []int64{int64(i)}, []int64{int64(i) + 1}))
		}
		switch o.Kind {
		case ClassProbability:
			if probs[task.Name] == nil {
				probs[task.Name] = classColumns(g, classProbabilities(g, task, h))
			}
			g.Output(o.Name, probs[task.Name][o.Index])
		case RegressionValue:
			regression(task)
			g.Output(o.Name, one(means[task.Name], o.Index))
		case RegressionStddev:
			regression(task)
			g.Output(o.Name, g.Sqrt(one(variances[task.Name], o.Index)))
		case ConstituentRegressionValue:
			regression(task)
			g.Output(o.Name, column(means[task.Name], o.Index))
		case ConstituentRegressionStddev:
			regression(task)
			g.Output(o.Name, g.Sqrt(column(variances[task.Name], o.Index)))
		case ConstituentClass:
			if task.Binary() {
				// 1 where the class's probability, sigmoid(h), is at
				// least ½, which is where the logit is at least 0.
				g.Output(o.Name, g.Cast(g.GreaterOrEqual(g.Squeeze(unbatch(h), -1), g.Scalar(graph.Float32, 0)), graph.Int8))
				break
			}
			g.Output(o.Name, g.Cast(g.ArgMax(unbatch(h), -1, false), graph.Int8))
		case VertexIndex:
			g.Output(o.Name, vertexIndex(g, g.Sigmoid(unbatch(h))))
		}
		pop()
	}
	if err := g.Err(); err != nil {
		return nil, fmt.Errorf("model %s: deployment graph: %w", s.Name, err)
	}
	return g, nil
}

func (s *Spec) task(name string) Task {
	for _, t := range s.Tasks {
		if t.Name == name {
			return t
		}
	}
	return Task{}
}

// vertexIndex groups tracks into vertices from pair probabilities p [n, n]
// (n dynamic) without shape operators: pairs with (p_ij + p_ji)/2 ≥ 0.5
// are linked, reachability is closed by squaring the adjacency
// VertexIterations times (each product's entries count paths, Clip to
// [0, 1] makes them 0 or 1 again), and each track gets the first column it
// reaches, the smallest index in its component (ArgMax returns the first
// maximum), as int8 [n] (-1 where that index exceeds 127). A jet without
// constituents (n = 0) gives [0] in every ONNX Runtime release.
func vertexIndex(g *graph.Graph, p *graph.Tensor) *graph.Tensor {
	defer g.Scope("vertex_index")()
	half := g.Scalar(graph.Float32, 0.5)
	sym := g.Mul(g.Add(p, g.Transpose(p, 1, 0)), half)
	eye := g.Op("EyeLike", []*graph.Tensor{p}, []graph.TensorType{{DType: graph.Float32, Shape: p.Shape()}})[0]
	reach := g.Max(g.Cast(g.GreaterOrEqual(sym, half), graph.Float32), eye)
	zero, one := g.Scalar(graph.Float32, 0), g.Scalar(graph.Float32, 1)
	for i := 0; i < VertexIterations; i++ {
		m := g.MatMul(reach, reach)
		reach = g.Op("Clip", []*graph.Tensor{m, zero, one}, []graph.TensorType{{DType: graph.Float32, Shape: m.Shape()}})[0]
	}
	// A column of zeros after the last makes the reduced axis one longer:
	// it never holds a row's first maximum (the diagonal's 1 comes
	// before it), and on a jet without constituents ArgMax reduces
	// [0, 1] rather than [0, 0]. ONNX Runtime 1.14 refuses to reduce an
	// axis of length 0 with keepdims = 0 ("Can't reduce on dim with value
	// of 0") and gives the wrong shape [0, 0] with keepdims = 1; 1.17
	// and later give [0] either way.
	first := g.ArgMax(g.Pad(reach, []int64{0, 0}, []int64{0, 1}), 1, false)
	// Indices int8 cannot hold become -1 rather than wrapping.
	fits := g.LessOrEqual(first, g.Scalar(graph.Int64, math.MaxInt8))
	return g.Cast(g.Where(fits, first, g.Scalar(graph.Int64, -1)), graph.Int8)
}

// classColumns splits a jet's class probabilities [1, C] into C scalars.
func classColumns(g *graph.Graph, p *graph.Tensor) []*graph.Tensor {
	c := p.Dim(1)
	if c == 1 {
		return []*graph.Tensor{g.Reshape(p)}
	}
	sizes := make([]int64, c)
	for i := range sizes {
		sizes[i] = 1
	}
	var out []*graph.Tensor
	for _, col := range g.Split(p, 1, sizes...) {
		out = append(out, g.Reshape(col))
	}
	return out
}

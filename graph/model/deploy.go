package model

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/salt-ort/salt-ort/graph"
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
	in := s.declareInputs(g, int64(opts.Batch), false)
	if opts.Norm != nil {
		in.jets = normalise(g, "jets", in.jets, opts.Norm.Jets)
		for i, grp := range s.Inputs {
			x := normalise(g, grp.Name, in.seqs[i], opts.Norm.Inputs[grp.Name])
			in.seqs[i] = g.Where(g.Unsqueeze(in.valid[i], -1), x, g.Scalar(graph.Float32, 0))
		}
	}
	s.predictions(g, s.forward(g, in, false), func(Task) bool { return true })
	if err := g.Err(); err != nil {
		return nil, fmt.Errorf("model %s: inference graph: %w", s.Name, err)
	}
	return g, nil
}

// FeaturesInput is the deployment input name of a constituent group:
// "tracks" → "track_features", as ATLAS software names it.
func FeaturesInput(group string) string {
	return strings.TrimSuffix(group, "s") + "_features"
}

// JetFeaturesInput is the deployment graph's jet input.
const JetFeaturesInput = "jet_features"

// ClassOutput is the deployment output of class c of the first jet
// classification task: "<model>_p<class>", e.g. GN2_pb.
func (s *Spec) ClassOutput(class string) string { return s.Name + "_p" + class }

// ConstituentOutput is the deployment output of a constituent-level task:
// "<model>_<TaskInPascalCase>", e.g. GN2_TrackOrigin; vertexing tasks are
// "<model>_VertexIndex".
func (s *Spec) ConstituentOutput(t Task) string {
	if t.Kind == Vertexing {
		return s.Name + "_VertexIndex"
	}
	return s.Name + "_" + pascalCase(t.Name)
}

// RegressionOutput is the deployment output of one regression target.
func (s *Spec) RegressionOutput(t Task, target string) string {
	return s.Name + "_" + t.Name + "_" + target
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
// graph does to group tracks into vertices: components are exact for up to
// 2^VertexIterations = 128 tracks per jet.
const VertexIterations = 7

// Deploy builds the deployment graph in the interface ATLAS software
// loads: one jet per call, inputs jet_features [1, n_jet_vars] and
// <group>_features [n, n_vars] (n dynamic, every constituent valid) with
// raw variables (the normalisation is folded in), and outputs
//   - <model>_p<class>: float32 scalars, the first jet classification's
//     class probabilities;
//   - <model>_<Task>: int8 [n], the argmax class of each constituent of a
//     constituent classification (e.g. GN2_TrackOrigin);
//   - <model>_VertexIndex: int8 [n], for each track the smallest index of
//     the tracks it shares a vertex with, from pairs whose symmetrised
//     probability is at least 0.5 (Salt's grouping);
//   - <model>_<task>_<target>: float32 scalars of regression tasks.
//
// It supports one constituent group, as Salt's exporter does.
func (s *Spec) Deploy(norm Normalisation) (*graph.Graph, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if len(s.Inputs) != 1 {
		return nil, fmt.Errorf("model %s: the deployment interface takes one constituent group, the model has %d", s.Name, len(s.Inputs))
	}
	grp := s.Inputs[0]
	g := graph.New(s.Name)
	jets := g.Input(JetFeaturesInput, graph.Float32, graph.Shape{1, int64(len(s.JetVars))})
	feats := g.Input(FeaturesInput(grp.Name), graph.Float32, graph.Shape{-1, int64(len(grp.Vars))})
	in := &inputs{
		jets:  normalise(g, "jets", jets, norm.Jets),
		seqs:  []*graph.Tensor{g.Unsqueeze(normalise(g, grp.Name, feats, norm.Inputs[grp.Name]), 0)},
		valid: []*graph.Tensor{nil},
	}
	f := s.forward(g, in, false)
	firstJet := true
	for _, task := range s.Tasks {
		pop := g.Scope(task.Name + "/deploy")
		h := f.heads[task.Name]
		switch task.Kind {
		case JetClassification:
			probs := g.Softmax(h, -1)
			if !firstJet {
				break
			}
			firstJet = false
			ones := make([]int64, len(task.Classes))
			for i := range ones {
				ones[i] = 1
			}
			for i, p := range g.Split(probs, -1, ones...) {
				g.Output(s.ClassOutput(task.Classes[i]), g.Reshape(p))
			}
		case ConstituentClassification:
			cls := g.ArgMax(g.Squeeze(g.Softmax(h, -1), 0), -1, false)
			g.Output(s.ConstituentOutput(task), g.Cast(cls, graph.Int8))
		case Vertexing:
			g.Output(s.ConstituentOutput(task), vertexIndex(g, g.Squeeze(g.Sigmoid(h), 0)))
		case JetRegression, JetGaussianRegression:
			ones := make([]int64, len(task.Targets))
			for i := range ones {
				ones[i] = 1
			}
			mean := h
			if task.Kind == JetGaussianRegression {
				n := int64(len(task.Targets))
				mean = g.Split(h, -1, n, n)[0]
			}
			for i, v := range g.Split(mean, -1, ones...) {
				g.Output(s.RegressionOutput(task, task.Targets[i]), g.Reshape(v))
			}
		}
		pop()
	}
	if err := g.Err(); err != nil {
		return nil, fmt.Errorf("model %s: deployment graph: %w", s.Name, err)
	}
	return g, nil
}

// vertexIndex groups tracks into vertices from pair probabilities p [n, n]
// (n dynamic) without shape operators: pairs with (p_ij + p_ji)/2 ≥ 0.5
// are linked, reachability is closed by squaring the adjacency
// VertexIterations times, and each track gets the smallest index it
// reaches, as int8 [n].
func vertexIndex(g *graph.Graph, p *graph.Tensor) *graph.Tensor {
	defer g.Scope("vertex_index")()
	half := g.Scalar(graph.Float32, 0.5)
	sym := g.Mul(g.Add(p, g.Transpose(p, 1, 0)), half)
	eye := g.Op("EyeLike", []*graph.Tensor{p}, []graph.TensorType{{DType: graph.Float32, Shape: p.Shape()}})[0]
	linked := g.Or(g.GreaterOrEqual(sym, half), g.Cast(eye, graph.Bool))
	zero := g.Scalar(graph.Float32, 0)
	reach := g.Cast(linked, graph.Float32)
	for i := 0; i < VertexIterations; i++ {
		reach = g.Cast(g.Greater(g.MatMul(reach, reach), zero), graph.Float32)
	}
	// Column indices 0..n-1 from a cumulative sum of a row of ones.
	ones := g.ReduceSum(eye, []int{0}, true) // [1, n]
	cum := g.Op("CumSum", []*graph.Tensor{ones, g.Int64s(1)}, []graph.TensorType{{DType: graph.Float32, Shape: ones.Shape()}})[0]
	cols := g.Sub(cum, g.Scalar(graph.Float32, 1))
	candidates := g.Where(g.Greater(reach, zero), cols, g.Scalar(graph.Float32, 1e9))
	first := g.Op("ReduceMin", []*graph.Tensor{candidates}, []graph.TensorType{{DType: graph.Float32, Shape: graph.Shape{p.Dim(0)}}},
		graph.IntsAttr("axes", 1), graph.IntAttr("keepdims", 0))[0]
	return g.Cast(first, graph.Int8)
}

package model_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/nn"
	"github.com/salt-ort/salt-ort/graph/optim"
	"github.com/salt-ort/salt-ort/internal/onnxcheck"
)

// trained returns tiny()'s eval graph layout, random parameters as a flat
// vector and as deployment initializers.
func trainedTiny(t *testing.T, s model.Spec, batch int) (*graph.Graph, []float64, map[string][]byte) {
	g, layout, err := s.Eval(batch)
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	for _, sl := range layout {
		size += sl.Size
	}
	flat := initialParams(layout, size, 21)
	for i := range flat { // float32 values, as training keeps them
		flat[i] = float64(float32(flat[i]))
	}
	values := map[string][]byte{}
	for _, sl := range layout {
		f := make([]float32, sl.Size)
		for i := range f {
			f[i] = float32(flat[sl.Offset+int64(i)])
		}
		values[sl.Name] = graph.Float32Bytes(f)
	}
	return g, flat, values
}

func tinyNorm(s model.Spec) model.Normalisation {
	n := model.Normalisation{Inputs: map[string]model.Affine{}}
	for i := range s.JetVars {
		n.Jets.Mean = append(n.Jets.Mean, float32(i)+0.5)
		n.Jets.Std = append(n.Jets.Std, 2)
	}
	for _, grp := range s.Inputs {
		var a model.Affine
		for i := range grp.Vars {
			a.Mean = append(a.Mean, -float32(i))
			a.Std = append(a.Std, 0.5+float32(i))
		}
		n.Inputs[grp.Name] = a
	}
	return n
}

// tinyMulti is tiny() with a second constituent group (electrons), jet
// classes named as ftag names them, and a regression and a Gaussian
// regression task.
func tinyMulti() model.Spec {
	s := tiny()
	s.Inputs = append(s.Inputs, model.Input{Name: "electrons", Vars: []string{"ptfrac", "dr"}, MaxLen: 3, InitHidden: []int{8}, Activation: nn.ReLU})
	s.Tasks[0].Classes = []string{"bjets", "cjets", "ujets", "taujets"}
	s.Tasks = append(s.Tasks,
		model.Task{Name: "pt_regression", Kind: model.JetRegression, Targets: []string{"pt"}, Hidden: []int{6}, Activation: nn.ReLU, Weight: 1},
		model.Task{Name: "mass_regression", Kind: model.JetGaussianRegression, Targets: []string{"mass", "energy"}, Hidden: []int{6}, Activation: nn.ReLU, Weight: 1})
	return s
}

// tinyCrossAttention is tinyMulti() with Salt's
// TransformerCrossAttentionEncoder over its tracks and electrons: three
// layers (cross-attention after the first and the last), a dense block of
// two hidden layers.
func tinyCrossAttention() model.Spec {
	s := tinyMulti()
	s.Name = "GN2CA"
	s.Encoder = nn.EncoderConfig{Kind: nn.CrossAttentionKind, Layers: 3, Heads: 2, Hidden: []int{12, 10}, Activation: nn.ReLU, OutDim: 6,
		Dropout: 0.1, AttnDropout: 0.1}
	return s
}

// fillInputs completes feeds with zeros (labels) and ones (weights) for
// the inputs of g the test does not set, so the evaluation graph runs.
func fillInputs(g *graph.Graph, feeds map[string][]float64) {
	for _, in := range g.Inputs() {
		if _, ok := feeds[in.Name()]; ok {
			continue
		}
		v := make([]float64, in.Shape().Size())
		if in.Name() == model.JetWeightInput || in.Name() == model.TaskWeightsInput {
			for i := range v {
				v[i] = 1
			}
		}
		feeds[in.Name()] = v
	}
}

// TestDeployMatchesEval runs jets through the deployment graph one at a
// time (raw inputs, only their valid constituents) and through the
// evaluation graph (normalised, padded, batched) and compares every
// deployment output with what the evaluation graph's predictions give.
// Jet 0 has no valid constituent, jet 1 every one, jet 2 none of the
// groups after the first, the others some, not always first (the
// deployment graph gets them in order).
func TestDeployMatchesEval(t *testing.T) {
	for name, s := range map[string]model.Spec{"gn2": tiny(), "two groups and regressions": tinyMulti(), "global variables": tinyGlobal(),
		"deepsets": tinyDeepSets(), "jet only": tinyJetOnly(), "gn3 encoder": tinyGN3(), "regressions": tinyRegression(), "edge features": tinyEdges(),
		"parameterised": tinyParameterised(), "parameters attached": tinyBaldi(), "salt features": tinySalt(), "legacy encoder": tinyLegacy(), "cross-attention encoder": tinyCrossAttention()} {
		t.Run(name, func(t *testing.T) {
			const batch = 6
			evalG, flat, values := trainedTiny(t, s, batch)
			norm := tinyNorm(s)
			dep, err := s.Deploy(norm, model.DeployOptions{})
			if err != nil {
				t.Fatal(err)
			}
			outs, err := s.DeployOutputs(model.DeployOptions{})
			if err != nil {
				t.Fatal(err)
			}
			depRun := graphtest.Compile(t, dep, graph.ModelOptions{ParamValues: values})
			if onnxcheck.Available() {
				if err := onnxcheck.Check(depRun.Model); err != nil {
					t.Fatal(err)
				}
			}
			r := rand.New(rand.NewPCG(8, 8))
			nj := len(s.JetVars)
			raw := map[string][]float64{model.JetsInput: make([]float64, batch*nj)}
			feeds := map[string][]float64{model.JetsInput: make([]float64, batch*nj), optim.ParamsInput: flat}
			for i := range raw[model.JetsInput] {
				raw[model.JetsInput][i] = 50 * r.NormFloat64()
				k := i % nj
				feeds[model.JetsInput][i] = float64((float32(raw[model.JetsInput][i]) - norm.Jets.Mean[k]) / norm.Jets.Std[k])
			}
			for gi, grp := range s.Inputs {
				tt, nv := grp.MaxLen, len(grp.Vars)
				x, valid := make([]float64, batch*tt*nv), make([]float64, batch*tt)
				raw[grp.Name] = make([]float64, batch*tt*nv)
				for j := 0; j < batch; j++ {
					for i := 0; i < tt; i++ {
						v := j != 0 && (j == 1 || r.IntN(3) > 0) && (j != 2 || gi == 0)
						if !v {
							continue
						}
						valid[j*tt+i] = 1
						for k := 0; k < nv; k++ {
							p := (j*tt+i)*nv + k
							raw[grp.Name][p] = 3 * r.NormFloat64()
							a := norm.Inputs[grp.Name]
							x[p] = float64((float32(raw[grp.Name][p]) - a.Mean[k]) / a.Std[k])
						}
					}
				}
				feeds[grp.Name], feeds[model.ValidInput(grp.Name)] = x, valid
			}
			// The raw denominators of scaled regression targets.
			for _, task := range s.Tasks {
				if !task.HasDenominators() {
					continue
				}
				n := len(task.Targets)
				vars, x, rows := s.JetVars, raw[model.JetsInput], batch
				if task.Kind.PerConstituent() {
					grp := s.Inputs[0]
					vars, x, rows = grp.Vars, raw[grp.Name], batch*grp.MaxLen
				}
				den := make([]float64, rows*n)
				for e := 0; e < rows; e++ {
					for k, sc := range task.Scaling {
						den[e*n+k] = 1
						if sc.Op == model.DenominatorScaling {
							den[e*n+k] = float64(float32(x[e*len(vars)+slices.Index(vars, sc.Denominator)]))
						}
					}
				}
				feeds[model.DenominatorInput(task.Name)] = den
			}
			// The raw variables of the edge features.
			if e := s.Edges; e != nil {
				grp := s.Inputs[0]
				nv, needs := len(grp.Vars), e.Needs()
				ev := make([]float64, batch*grp.MaxLen*len(needs))
				for i := 0; i < batch*grp.MaxLen; i++ {
					for k, v := range needs {
						ev[i*len(needs)+k] = float64(float32(raw[grp.Name][i*nv+slices.Index(grp.Vars, e.Variable(v))]))
					}
				}
				feeds[model.EdgeVariablesInput(e.Input)] = ev
			}
			// The parameters: raw in both graphs, the last columns of
			// jet_features when deployed.
			np := len(s.Parameters)
			params := make([]float64, batch*np)
			for i := range params {
				params[i] = float64(1 + r.IntN(3))
			}
			if np > 0 {
				feeds[model.ParametersInput] = params
			}
			fillInputs(evalG, feeds)
			want, err := graphtest.Compile(t, evalG, graph.ModelOptions{}).Run(feeds)
			if err != nil {
				t.Fatal(err)
			}
			if centreBinaryLogits(t, s, feeds, want, values) {
				// Binary decisions on both sides: the changed parameters
				// in both graphs.
				if want, err = graphtest.Compile(t, evalG, graph.ModelOptions{}).Run(feeds); err != nil {
					t.Fatal(err)
				}
				depRun = graphtest.Compile(t, dep, graph.ModelOptions{ParamValues: values})
			}
			// The constituent classes the deployed model decided, which
			// for a binary task must include 0 and 1 for the comparison to
			// test both sides of its decision.
			decided := map[int]bool{}
			defer func() {
				for _, task := range s.Tasks {
					if task.Binary() && task.Kind == model.ConstituentClassification && (!decided[0] || !decided[1]) {
						t.Errorf("task %s: the deployed classes %v, want 0 and 1", task.Name, decided)
					}
				}
			}()
			for j := 0; j < batch; j++ {
				jf := append(append([]float64{}, raw[model.JetsInput][j*nj:(j+1)*nj]...), params[j*np:(j+1)*np]...)
				in := map[string][]float64{model.JetFeaturesInput: jf}
				shapes := map[string][]int64{}
				idx := map[string][]int{} // the valid slots of each group, in order
				for _, grp := range s.Inputs {
					tt, nv := grp.MaxLen, len(grp.Vars)
					var f []float64
					for i := 0; i < tt; i++ {
						if feeds[model.ValidInput(grp.Name)][j*tt+i] != 0 {
							idx[grp.Name] = append(idx[grp.Name], i)
							f = append(f, raw[grp.Name][(j*tt+i)*nv:(j*tt+i+1)*nv]...)
						}
					}
					name := model.DeployInputName(grp.Name)
					in[name], shapes[name] = f, []int64{int64(len(idx[grp.Name])), int64(nv)}
				}
				got, err := depRun.RunShaped(in, shapes)
				if err != nil {
					t.Fatalf("jet %d: %v", j, err)
				}
				for _, o := range outs {
					task := taskNamed(s, o.Task)
					pred := want[model.PredictionOutput(task.Name)]
					switch o.Kind {
					case model.ClassProbability, model.RegressionValue, model.RegressionStddev:
						per := len(pred) / batch
						w := pred[j*per+o.Index]
						if o.Kind == model.RegressionStddev {
							w = math.Sqrt(float64(float32(want[model.VarianceOutput(task.Name)][j*per+o.Index])))
						}
						if d := math.Abs(got[o.Name][0] - w); d > 1e-5*math.Max(1, math.Abs(w)) {
							t.Errorf("jet %d: %s = %g, eval graph %g", j, o.Name, got[o.Name][0], w)
						}
					case model.ConstituentRegressionValue, model.ConstituentRegressionStddev:
						tt, k := s.Inputs[0].MaxLen, len(task.Targets)
						if len(got[o.Name]) != len(idx[o.Group]) {
							t.Fatalf("jet %d: %s has %d values for %d constituents", j, o.Name, len(got[o.Name]), len(idx[o.Group]))
						}
						for a, ia := range idx[o.Group] {
							w := pred[(j*tt+ia)*k+o.Index]
							if o.Kind == model.ConstituentRegressionStddev {
								w = math.Sqrt(float64(float32(want[model.VarianceOutput(task.Name)][(j*tt+ia)*k+o.Index])))
							}
							if d := math.Abs(got[o.Name][a] - w); d > 1e-5*math.Max(1, math.Abs(w)) {
								t.Errorf("jet %d constituent %d: %s = %g, eval graph %g", j, a, o.Name, got[o.Name][a], w)
							}
						}
					case model.ConstituentClass:
						tt, c := s.Inputs[0].MaxLen, len(task.Classes)
						if len(got[o.Name]) != len(idx[o.Group]) {
							t.Fatalf("jet %d: %s has %d values for %d constituents", j, o.Name, len(got[o.Name]), len(idx[o.Group]))
						}
						for a, ia := range idx[o.Group] {
							row := pred[(j*tt+ia)*c : (j*tt+ia+1)*c]
							best := 0
							for k := range row {
								if row[k] > row[best] {
									best = k
								}
							}
							if task.Binary() && row[0] >= 0.5 {
								best = 1 // the class's probability decides
							}
							decided[best] = true
							if int(got[o.Name][a]) != best {
								t.Errorf("jet %d constituent %d: %s %v, eval argmax %d", j, a, o.Name, got[o.Name][a], best)
							}
						}
					case model.VertexIndex:
						tt, n := s.Inputs[0].MaxLen, len(idx[o.Group])
						sub := make([]float32, n*n)
						for a, ia := range idx[o.Group] {
							for b, ib := range idx[o.Group] {
								sub[a*n+b] = float32(pred[j*tt*tt+ia*tt+ib])
							}
						}
						ref := model.GroupVertices(sub, n, n)
						if len(got[o.Name]) != n {
							t.Fatalf("jet %d: %d vertex indices for %d tracks", j, len(got[o.Name]), n)
						}
						for a := range ref {
							if int8(got[o.Name][a]) != ref[a] {
								t.Errorf("jet %d: vertex indices %v, reference %v", j, got[o.Name], ref)
								break
							}
						}
					}
				}
			}
		})
	}
}

// centreBinaryLogits shifts the last bias of each binary constituent
// classification's head by the median logit of the valid constituents in
// want, in the flat parameters of feeds and in values, so that the
// decisions fall on both sides of ½ (untrained heads put every
// constituent on one side). It reports whether it changed anything.
func centreBinaryLogits(t *testing.T, s model.Spec, feeds, want map[string][]float64, values map[string][]byte) bool {
	t.Helper()
	_, layout, err := s.Eval(1)
	if err != nil {
		t.Fatal(err)
	}
	changed := false
	for _, task := range s.Tasks {
		if !task.Binary() || task.Kind != model.ConstituentClassification {
			continue
		}
		var logits []float64
		for e, p := range want[model.PredictionOutput(task.Name)] {
			if feeds[model.ValidInput(task.Input)][e] != 0 {
				logits = append(logits, math.Log(p/(1-p)))
			}
		}
		slices.Sort(logits)
		median := logits[len(logits)/2]
		bias := fmt.Sprintf("%s/%d/bias", task.Name, len(task.Hidden))
		i := slices.IndexFunc(layout, func(sl graph.ParamSlot) bool { return sl.Name == bias })
		if i < 0 {
			t.Fatalf("no parameter %s", bias)
		}
		off := layout[i].Offset
		v := float32(feeds[optim.ParamsInput][off] - median + 1e-3)
		feeds[optim.ParamsInput][off] = float64(v)
		values[bias] = graph.Float32Bytes([]float32{v})
		changed = true
	}
	return changed
}

func taskNamed(s model.Spec, name string) model.Task {
	for _, t := range s.Tasks {
		if t.Name == name {
			return t
		}
	}
	return model.Task{}
}

// TestDeployOutputs checks the output names against Salt's exporter's
// naming, the task selection and renaming, and the errors.
func TestDeployOutputs(t *testing.T) {
	names := func(outs []model.DeployOutput) string {
		var s []string
		for _, o := range outs {
			s = append(s, o.Name)
		}
		return strings.Join(s, " ")
	}
	twoJetTasks := tiny()
	twoJetTasks.Tasks = append(twoJetTasks.Tasks, twoJetTasks.Tasks[0])
	twoJetTasks.Tasks[3].Name = "other"
	manyClasses := tiny()
	manyClasses.Tasks[1].Classes = make([]string, 129)
	named := func(n string) model.Spec { s := tiny(); s.Name = n; return s }
	for _, tc := range []struct {
		name string
		spec model.Spec
		opts model.DeployOptions
		want string // names, or the error's text
		err  bool
	}{
		{"gn2", tiny(), model.DeployOptions{}, "GN2_pb GN2_pc GN2_pu GN2_ptau GN2_TrackOrigin GN2_VertexIndex", false},
		{"ftag class names and regressions", tinyMulti(), model.DeployOptions{},
			"GN2_pb GN2_pc GN2_pu GN2_ptau GN2_pt GN2_mass GN2_energy GN2_mass_stddev GN2_energy_stddev GN2_TrackOrigin GN2_VertexIndex", false},
		{"tasks", tinyMulti(), model.DeployOptions{Tasks: []string{"track_vertexing", "mass_regression"}},
			"GN2_mass GN2_energy GN2_mass_stddev GN2_energy_stddev GN2_VertexIndex", false},
		{"rename", tiny(), model.DeployOptions{Rename: map[string]string{"pu": "plight", "TrackOrigin": "Origin"}},
			"GN2_pb GN2_pc GN2_plight GN2_ptau GN2_Origin GN2_VertexIndex", false},
		{"unknown task", tiny(), model.DeployOptions{Tasks: []string{"jet"}}, `no task "jet"`, true},
		{"unknown rename", tiny(), model.DeployOptions{Rename: map[string]string{"pl": "x"}}, "no output GN2_pl", true},
		{"rename collision", tiny(), model.DeployOptions{Rename: map[string]string{"pu": "pb"}}, "both have the deployment output GN2_pb", true},
		{"two jet classifications", twoJetTasks, model.DeployOptions{}, "tasks jets_classification and other both have the deployment output GN2_pb", true},
		{"underscore", named("GN2_v1"), model.DeployOptions{}, "contains '_' or '-'", true},
		{"dash", named("GN-2"), model.DeployOptions{}, "contains '_' or '-'", true},
		{"empty", named(""), model.DeployOptions{}, "empty", true},
		{"int8 classes", manyClasses, model.DeployOptions{}, "129 classes", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			outs, err := tc.spec.DeployOutputs(tc.opts)
			if tc.err {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want one containing %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := names(outs); got != tc.want {
				t.Fatalf("outputs %s\nwant    %s", got, tc.want)
			}
		})
	}
}

func TestDeployInputName(t *testing.T) {
	for group, want := range map[string]string{
		"tracks": "track_features", "tracks_loose": "track_features", "flows": "flow_features",
		"electrons": "electron_features", "hits": "hit_features", "muons": "muon_features",
	} {
		if got := model.DeployInputName(group); got != want {
			t.Errorf("DeployInputName(%q) = %q, want %q", group, got, want)
		}
	}
	s := tiny()
	s.Inputs = append(s.Inputs, s.Inputs[0])
	s.Inputs[1].Name = "tracks_loose"
	if _, err := s.Deploy(tinyNorm(s), model.DeployOptions{}); err == nil || !strings.Contains(err.Error(), "both deploy as input track_features") {
		t.Fatalf("two track groups: %v", err)
	}
}

// TestBatchedInferMatchesEval checks the batched deployment graph (dynamic
// batch, folded normalisation, valid mask) against the evaluation graph.
func TestBatchedInferMatchesEval(t *testing.T) {
	s := tiny()
	evalG, flat, values := trainedTiny(t, s, 4)
	norm := tinyNorm(s)
	g, err := s.Infer(model.InferOptions{Batch: -1, Norm: &norm})
	if err != nil {
		t.Fatal(err)
	}
	run := graphtest.Compile(t, g, graph.ModelOptions{ParamValues: values})
	feeds := fakeBatch(s, 4, rand.New(rand.NewPCG(9, 9)))
	out, err := run.RunShaped(feeds, map[string][]int64{
		model.JetsInput: {4, int64(len(s.JetVars))},
		"tracks":        {4, int64(s.Inputs[0].MaxLen), int64(len(s.Inputs[0].Vars))},
		"tracks/valid":  {4, int64(s.Inputs[0].MaxLen)},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Normalise the same inputs for the evaluation graph.
	nj, nv, tt := len(s.JetVars), len(s.Inputs[0].Vars), s.Inputs[0].MaxLen
	for j := 0; j < 4; j++ {
		for k := 0; k < nj; k++ {
			x := float32(feeds[model.JetsInput][j*nj+k])
			feeds[model.JetsInput][j*nj+k] = float64((x - norm.Jets.Mean[k]) / norm.Jets.Std[k])
		}
		for i := 0; i < tt; i++ {
			for k := 0; k < nv; k++ {
				p := (j*tt+i)*nv + k
				if feeds["tracks/valid"][j*tt+i] == 0 {
					feeds["tracks"][p] = 0
					continue
				}
				a := norm.Inputs["tracks"]
				feeds["tracks"][p] = float64((float32(feeds["tracks"][p]) - a.Mean[k]) / a.Std[k])
			}
		}
	}
	feeds[optim.ParamsInput] = flat
	want, err := graphtest.Compile(t, evalG, graph.ModelOptions{}).Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range s.Tasks {
		name := model.PredictionOutput(task.Name)
		for i := range want[name] {
			if math.Abs(want[name][i]-out[name][i]) > 1e-5 {
				t.Fatalf("%s[%d]: batched %g, eval %g", name, i, out[name][i], want[name][i])
			}
		}
	}
}

// TestVertexIndexGraph compares the graph's grouping with the Go
// reference on random and chained pair matrices.
func TestVertexIndexGraph(t *testing.T) {
	s := tiny()
	s.Tasks = s.Tasks[2:]
	_, _, values := trainedTiny(t, s, 1)
	dep, err := s.Deploy(tinyNorm(s), model.DeployOptions{})
	if err != nil {
		t.Fatal(err)
	}
	run := graphtest.Compile(t, dep, graph.ModelOptions{ParamValues: values})
	r := rand.New(rand.NewPCG(1, 5))
	nv := len(s.Inputs[0].Vars)
	for _, n := range []int{0, 1, 2, 5, 17, 40, 129, 200} {
		tf := make([]float64, n*nv)
		for i := range tf {
			tf[i] = r.NormFloat64()
		}
		out, err := run.RunShaped(map[string][]float64{model.JetFeaturesInput: {0.3, -0.2}, "track_features": tf},
			map[string][]int64{"track_features": {int64(n), int64(nv)}})
		if err != nil {
			t.Fatalf("%d tracks: %v", n, err)
		}
		vertex := out["GN2_VertexIndex"]
		if got := len(vertex); got != n {
			t.Fatalf("%d tracks: %d vertex indices", n, got)
		}
		for i, v := range vertex {
			if v < -1 || v > float64(i) || (i > 127 && v != -1 && v > 127) {
				t.Fatalf("%d tracks: track %d has vertex index %v", n, i, v)
			}
		}
	}
	// The grouping alone, on matrices with long chains.
	g := graph.New("group")
	p := g.Input("p", graph.Float32, graph.Shape{-1, -1})
	g.Output("index", model.VertexIndexForTest(g, p))
	grp := graphtest.Compile(t, g, graph.ModelOptions{})
	for trial := 0; trial < 24; trial++ {
		n := 1 + r.IntN(60)
		if trial%4 == 3 {
			n = 129 + r.IntN(127) // past int8, and chains longer than 128
		}
		probs := make([]float32, n*n)
		perm := r.Perm(n)
		for i := range probs {
			probs[i] = 0.49 * r.Float32()
		}
		// A chain through a random permutation, in one direction only:
		// symmetrised it is still ≥ 0.5.
		for k := 0; k+1 < n && (k < n/2 || (n > 128 && trial%8 == 3)); k++ {
			probs[perm[k]*n+perm[k+1]] = 0.99
		}
		if trial%3 == 0 && n > 3 {
			probs[1*n+2], probs[2*n+1] = 0.5, 0.5 // exactly on the boundary: linked
		}
		in := make([]float64, len(probs))
		for i, v := range probs {
			in[i] = float64(v)
		}
		out, err := grp.RunShaped(map[string][]float64{"p": in}, map[string][]int64{"p": {int64(n), int64(n)}})
		if err != nil {
			t.Fatal(err)
		}
		ref := model.GroupVertices(probs, n, n)
		for i := range ref {
			if int8(out["index"][i]) != ref[i] {
				t.Fatalf("n=%d: graph %v, reference %v", n, out["index"], ref)
			}
		}
	}
}

package model_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/model"
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

// TestDeployMatchesEval runs jets through the deployment graph one at a
// time (raw inputs, only their valid tracks) and through the evaluation
// graph (normalised, padded, batched) and compares every output.
func TestDeployMatchesEval(t *testing.T) {
	s := tiny()
	const batch = 6
	evalG, flat, values := trainedTiny(t, s, batch)
	norm := tinyNorm(s)
	dep, err := s.Deploy(norm)
	if err != nil {
		t.Fatal(err)
	}
	depRun := graphtest.Compile(t, dep, graph.ModelOptions{ParamValues: values, DimNames: map[string]string{"track_features:0": "n_tracks"}})
	if onnxcheck.Available() {
		if err := onnxcheck.Check(depRun.Model); err != nil {
			t.Fatal(err)
		}
	}
	feeds := fakeBatch(s, batch, rand.New(rand.NewPCG(8, 8)))
	tt, nv, nj := s.Inputs[0].MaxLen, len(s.Inputs[0].Vars), len(s.JetVars)
	// Jet 0 has no valid track, jet 1 all of them.
	for i := 0; i < tt; i++ {
		feeds["tracks/valid"][i] = 0
		feeds["tracks/valid"][tt+i] = 1
	}
	raw := map[string][]float64{"jets": append([]float64(nil), feeds[model.JetsInput]...), "tracks": append([]float64(nil), feeds["tracks"]...)}
	// The evaluation graph reads normalised inputs (float32 arithmetic, as
	// the loader), zero where invalid.
	for j := 0; j < batch; j++ {
		for k := 0; k < nj; k++ {
			x := float32(raw["jets"][j*nj+k])
			feeds[model.JetsInput][j*nj+k] = float64((x - norm.Jets.Mean[k]) / norm.Jets.Std[k])
		}
		for i := 0; i < tt; i++ {
			for k := 0; k < nv; k++ {
				v := 0.0
				if feeds["tracks/valid"][j*tt+i] != 0 {
					a := norm.Inputs["tracks"]
					v = float64((float32(raw["tracks"][(j*tt+i)*nv+k]) - a.Mean[k]) / a.Std[k])
				}
				feeds["tracks"][(j*tt+i)*nv+k] = v
			}
		}
	}
	feeds[optim.ParamsInput] = flat
	want, err := graphtest.Compile(t, evalG, graph.ModelOptions{}).Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	classes := s.Tasks[0].Classes
	for j := 0; j < batch; j++ {
		var idx []int
		for i := 0; i < tt; i++ {
			if feeds["tracks/valid"][j*tt+i] != 0 {
				idx = append(idx, i)
			}
		}
		n := len(idx)
		tf := make([]float64, 0, n*nv)
		for _, i := range idx {
			tf = append(tf, raw["tracks"][(j*tt+i)*nv:(j*tt+i+1)*nv]...)
		}
		out, err := depRun.RunShaped(map[string][]float64{
			model.JetFeaturesInput: raw["jets"][j*nj : (j+1)*nj],
			"track_features":       tf,
		}, map[string][]int64{"track_features": {int64(n), int64(nv)}})
		if err != nil {
			t.Fatalf("jet %d (%d tracks): %v", j, n, err)
		}
		for c, name := range classes {
			got, w := out[s.ClassOutput(name)][0], want[model.PredictionOutput("jets_classification")][j*len(classes)+c]
			if math.Abs(got-w) > 1e-5 {
				t.Errorf("jet %d: %s = %g, eval graph %g", j, s.ClassOutput(name), got, w)
			}
		}
		origin := out[s.ConstituentOutput(s.Tasks[1])]
		vertex := out[s.ConstituentOutput(s.Tasks[2])]
		if len(origin) != n || len(vertex) != n {
			t.Fatalf("jet %d: %d origins, %d vertex indices for %d tracks", j, len(origin), len(vertex), n)
		}
		probs := want[model.PredictionOutput("track_origin")]
		pairs := want[model.PredictionOutput("track_vertexing")]
		sub := make([]float32, n*n)
		for a, ia := range idx {
			best := 0
			row := probs[(j*tt+ia)*8 : (j*tt+ia+1)*8]
			for c := range row {
				if row[c] > row[best] {
					best = c
				}
			}
			if int(origin[a]) != best {
				t.Errorf("jet %d track %d: origin %v, eval argmax %d", j, a, origin[a], best)
			}
			for b, ib := range idx {
				sub[a*n+b] = float32(pairs[j*tt*tt+ia*tt+ib])
			}
		}
		ref := model.GroupVertices(sub, n, n)
		for a := range ref {
			if int8(vertex[a]) != ref[a] {
				t.Errorf("jet %d: vertex indices %v, reference %v", j, vertex, ref)
				break
			}
		}
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
	dep, err := s.Deploy(tinyNorm(s))
	if err != nil {
		t.Fatal(err)
	}
	run := graphtest.Compile(t, dep, graph.ModelOptions{ParamValues: values})
	r := rand.New(rand.NewPCG(1, 5))
	nv := len(s.Inputs[0].Vars)
	for _, n := range []int{0, 1, 2, 5, 17, 40} {
		tf := make([]float64, n*nv)
		for i := range tf {
			tf[i] = r.NormFloat64()
		}
		out, err := run.RunShaped(map[string][]float64{model.JetFeaturesInput: {0.3, -0.2}, "track_features": tf},
			map[string][]int64{"track_features": {int64(n), int64(nv)}})
		if err != nil {
			t.Fatalf("%d tracks: %v", n, err)
		}
		if got := len(out[s.ConstituentOutput(s.Tasks[0])]); got != n {
			t.Fatalf("%d tracks: %d vertex indices", n, got)
		}
	}
	// The grouping alone, on matrices with long chains.
	g := graph.New("group")
	p := g.Input("p", graph.Float32, graph.Shape{-1, -1})
	g.Output("index", model.VertexIndexForTest(g, p))
	grp := graphtest.Compile(t, g, graph.ModelOptions{})
	for trial := 0; trial < 20; trial++ {
		n := 1 + r.IntN(60)
		probs := make([]float32, n*n)
		perm := r.Perm(n)
		for i := range probs {
			probs[i] = 0.49 * r.Float32()
		}
		// A chain through a random permutation, in one direction only:
		// symmetrised it is still ≥ 0.5.
		for k := 0; k+1 < n && k < n/2; k++ {
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

package deploy

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"

	"github.com/salt-ort/salt-ort/checkpoint"
	"github.com/salt-ort/salt-ort/codegen/cppgen"
	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/internal/testkit/salttwin"
	"github.com/salt-ort/salt-ort/runtime"
	"github.com/salt-ort/salt-ort/saltimport"
)

// saltShaped exports GN2 with salt_onnx.py (Salt's architecture, PyTorch's
// exporter at opset 17) in both ways of writing the vertexing pair rows,
// and the salt-ort deployment models of the same weights and
// normalisation: the one-jet graph Deploy builds and the reference graph
// from the shared forward pass (what Deploy built before the one-jet
// pass). It returns the models in that order, and the interface.
func saltShaped(b *testing.B, dir string) ([]LatencyModel, cppgen.Interface) {
	spec := model.GN2()
	pySpec := map[string]any{
		"seed": 5, "jet_vars": spec.JetVars, "track_vars": spec.Inputs[0].Vars,
		"embed": spec.EmbedDim, "init_hidden": spec.Inputs[0].InitHidden, "layers": spec.Encoder.Layers,
		"heads": spec.Encoder.Heads, "out_dim": spec.Encoder.OutDim, "registers": spec.Encoder.Registers,
		"task_hidden": spec.Tasks[0].Hidden, "name": spec.Name, "opset": graph.Opset,
	}
	pySpec["pair_rows"] = "assign"
	assign := salttwin.ExportONNX(b, dir, pySpec)
	pySpec["pair_rows"] = "concat"
	concat := salttwin.ExportONNX(b, dir, pySpec)

	w, err := checkpoint.Read(assign.Weights)
	if err != nil {
		b.Fatal(err)
	}
	values := map[string][]byte{}
	for _, p := range saltimport.Params(spec) {
		v, shape, err := w.Float32(p.Salt)
		if err != nil {
			b.Fatal(err)
		}
		if p.Transpose { // Salt's [out, in] to salt-ort's [in, out]
			t := make([]float32, len(v))
			rows, cols := int(shape[0]), int(shape[1])
			for i := 0; i < rows; i++ {
				for j := 0; j < cols; j++ {
					t[j*rows+i] = v[i*cols+j]
				}
			}
			v = t
		}
		values[p.Ort] = graph.Float32Bytes(v)
	}
	get := func(name string) []float32 {
		v, _, err := w.Float32(name)
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	norm := model.Normalisation{
		Jets:   model.Affine{Mean: get("norm.jets_means"), Std: get("norm.jets_stds")},
		Inputs: map[string]model.Affine{"tracks": {Mean: get("norm.tracks_means"), Std: get("norm.tracks_stds")}},
	}
	outs, err := spec.DeployOutputs(model.DeployOptions{})
	if err != nil {
		b.Fatal(err)
	}
	models := []LatencyModel{}
	for _, c := range []struct {
		label string
		opts  model.DeployOptions
	}{{"salt-ort", model.DeployOptions{}}, {"salt-ort reference graph", model.DeployOptions{Reference: true}}} {
		g, err := spec.Deploy(norm, c.opts)
		if err != nil {
			b.Fatal(err)
		}
		data, err := g.Marshal(graph.ModelOptions{ParamValues: values})
		if err != nil {
			b.Fatal(err)
		}
		path := filepath.Join(dir, strings.ReplaceAll(c.label, " ", "_")+".onnx")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			b.Fatal(err)
		}
		models = append(models, LatencyModel{Label: c.label, Path: path})
	}
	models = append(models,
		LatencyModel{Label: "PyTorch, Salt-shaped", Path: assign.ONNX},
		LatencyModel{Label: "PyTorch, pair rows concatenated", Path: concat.ONNX})
	return models, DeployInterface(spec, outs)
}

// sameOutputsTol is how far the models' per-jet probabilities may be
// apart in BenchmarkDeployVsSalt: the same function computed by other
// operators, so within float32 rounding (measured: 1.5e-8).
const sameOutputsTol = 1e-7

// checkSameOutputs runs every model on one jet of 40 tracks and stops the
// benchmark unless every model's outputs are the first model's: the
// per-jet probabilities within sameOutputsTol, the per-track outputs
// (classes, vertex indices) identical. It returns a line per model saying
// how close they came.
func checkSameOutputs(b *testing.B, rt *runtime.Runtime, models []LatencyModel, iface cppgen.Interface) string {
	jets := latencyJets(iface, 40, 1, rand.New(rand.NewPCG(2, 2)))
	var lines []string
	var first map[string][]float64
	for _, m := range models {
		data, err := os.ReadFile(m.Path)
		if err != nil {
			b.Fatal(err)
		}
		sess, err := rt.NewSession(m.Path, data, runtime.Options{IntraOpThreads: 1})
		if err != nil {
			b.Fatal(err)
		}
		got := runOnce(b, sess, iface, jets)
		sess.Close()
		if first == nil {
			first = got
			continue
		}
		maxProb, err := sameOutputs(iface, first, got, sameOutputsTol)
		if err != nil {
			b.Fatalf("%s against %s on a jet of 40 tracks: %v", m.Label, models[0].Label, err)
		}
		lines = append(lines, fmt.Sprintf("  %s: probabilities within %.1e of %s's, track outputs identical", m.Label, maxProb, models[0].Label))
	}
	return strings.Join(lines, "\n")
}

// sameOutputs compares one jet's outputs of two models: every output of
// the interface present with the same length, per-jet values within tol,
// per-constituent values identical. It returns the largest per-jet
// difference, and an error naming the first output that disagrees.
func sameOutputs(iface cppgen.Interface, want, got map[string][]float64, tol float64) (float64, error) {
	worst := 0.0
	for _, o := range iface.Outputs {
		w, g := want[o.Name], got[o.Name]
		if len(w) == 0 || len(g) != len(w) {
			return worst, fmt.Errorf("output %s has %d values, want %d", o.Name, len(g), len(w))
		}
		for i := range g {
			d := math.Abs(g[i] - w[i])
			if o.PerConstituent() {
				if d != 0 || math.IsNaN(d) {
					return worst, fmt.Errorf("output %s, constituent %d: %g, want %g", o.Name, i, g[i], w[i])
				}
				continue
			}
			if !(d <= tol) {
				return worst, fmt.Errorf("output %s: %g, want %g (differs by %.2g, more than %g)", o.Name, g[i], w[i], d, tol)
			}
			worst = max(worst, d)
		}
	}
	return worst, nil
}

// runOnce runs a session on the first jet of in.
func runOnce(b *testing.B, sess *runtime.Session, iface cppgen.Interface, in *cppgen.Inputs) map[string][]float64 {
	jet := in.Jets[0]
	n := jet.Groups[0].N
	byName := map[string]runtime.Value{}
	byName[iface.Inputs[0].Name], _ = runtime.NewTensor([]int64{1, int64(in.JetVars)}, jet.Features)
	for g, c := range iface.Constituents() {
		byName[c.Name], _ = runtime.NewTensor([]int64{int64(n), int64(in.GroupVars[g])}, jet.Groups[g].Features)
	}
	var ins, outs []runtime.Value
	for _, name := range sess.InputNames() {
		ins = append(ins, byName[name])
	}
	types := map[string]cppgen.ElementType{}
	for _, o := range iface.Outputs {
		types[o.Name] = o.Type
	}
	for _, name := range sess.OutputNames() {
		var v runtime.Value
		if types[name] == cppgen.Int8 {
			v, _ = runtime.NewTensor([]int64{int64(n)}, make([]int8, n))
		} else {
			v, _ = runtime.NewScalar[float32](0)
		}
		outs = append(outs, v)
	}
	defer runtime.Destroy(append(ins, outs...)...)
	if err := sess.Run(ins, outs); err != nil {
		b.Fatal(err)
	}
	res := map[string][]float64{}
	for i, name := range sess.OutputNames() {
		switch x := outs[i].(type) {
		case *runtime.Tensor[int8]:
			for _, c := range x.GetData() {
				res[name] = append(res[name], float64(c))
			}
		case *runtime.Scalar[float32]:
			res[name] = []float64{float64(x.GetData())}
		}
	}
	return res
}

var deployVsSalt sync.Once

// BenchmarkDeployVsSalt is the deployment benchmark (`make bench-deploy`):
// the one-jet latency of GN2's deployment model on one intra-op thread
// for 0, 10, 40, 100 and 200 tracks, from Go and from the generated C++
// latency program, beside a Salt-shaped GN2 that PyTorch exported as
// Salt's exporter does (internal/testkit/salttwin/salt_onnx.py, Debian's
// python3-torch, opset 17), with the same weights, normalisation and
// inputs in the same ONNX Runtime. It prints the medians and p90s and the
// ratios; nothing is asserted. It runs once whatever b.N.
func BenchmarkDeployVsSalt(b *testing.B) {
	deployVsSalt.Do(func() { benchDeployVsSalt(b) })
}

func benchDeployVsSalt(b *testing.B) {
	rt := graphtest.OpenRuntime(b)
	dir := b.TempDir()
	models, iface := saltShaped(b, dir)
	sizes := []int{0, 10, 40, 100, 200}
	out := os.Stdout
	fmt.Fprintf(out, "\nGN2 one-jet latency, ONNX Runtime %s, 1 intra-op thread, sequential; the same weights and jets for every model\n", rt.Version())
	fmt.Fprintf(out, "outputs on one jet of 40 tracks:\n%s\n", checkSameOutputs(b, rt, models, iface))
	for _, level := range []struct {
		opt  runtime.Optimization
		cpp  bool
		note string
	}{
		{runtime.OptimizeAll, true, "ONNX Runtime's default (ORT_ENABLE_ALL), as validate and the generated C++ use"},
		{runtime.OptimizeExtended, false, "ORT_ENABLE_EXTENDED, as ATLAS's loaders set it (Go only)"},
	} {
		res, err := MeasureLatency(context.Background(), LatencyOptions{Runtime: rt, Models: models, Interface: iface,
			Constituents: sizes, Optimization: level.opt, Cpp: level.cpp, WorkDir: filepath.Join(dir, "cpp"), Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(out, "\ngraph optimisation: %s\n", level.note)
		printLatency(out, res, models)
	}
}

// printLatency prints a table per side: per size, each model's median and
// p90 in ms, and each PyTorch model's median over salt-ort's.
func printLatency(out *os.File, res []Latency, models []LatencyModel) {
	for _, side := range []string{"Go", "C++"} {
		by := map[string]map[int]Latency{}
		var sizes []int
		for _, r := range res {
			if r.Side != side {
				continue
			}
			if by[r.Model] == nil {
				by[r.Model] = map[int]Latency{}
			}
			if _, ok := by[models[0].Label][r.Constituents]; !ok && r.Model == models[0].Label {
				sizes = append(sizes, r.Constituents)
			}
			by[r.Model][r.Constituents] = r
		}
		if len(sizes) == 0 {
			continue
		}
		fmt.Fprintf(out, "%s (time of %s), median / p90 in ms per jet:\n", side, map[string]string{"Go": "Session.Run", "C++": "the generated Model::Run"}[side])
		w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprint(w, "tracks\t")
		for _, m := range models {
			fmt.Fprintf(w, "%s\t", m.Label)
		}
		for _, m := range models[1:] {
			fmt.Fprintf(w, "%s / %s\t", shortLabel(m.Label), shortLabel(models[0].Label))
		}
		fmt.Fprintln(w)
		for _, n := range sizes {
			fmt.Fprintf(w, "%d\t", n)
			for _, m := range models {
				l := by[m.Label][n]
				fmt.Fprintf(w, "%.3f / %.3f\t", l.Median.Seconds()*1e3, l.P90.Seconds()*1e3)
			}
			for _, m := range models[1:] {
				fmt.Fprintf(w, "%.2f×\t", float64(by[m.Label][n].Median)/float64(by[models[0].Label][n].Median))
			}
			fmt.Fprintln(w)
		}
		w.Flush()
	}
}

func shortLabel(s string) string {
	switch {
	case strings.Contains(s, "reference"):
		return "reference"
	case strings.Contains(s, "concatenated"):
		return "PyTorch concat"
	case strings.Contains(s, "PyTorch"):
		return "PyTorch"
	}
	return s
}

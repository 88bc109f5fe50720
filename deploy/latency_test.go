package deploy

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/salt-ort/salt-ort/codegen/cppgen"
	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/nn"
	"github.com/salt-ort/salt-ort/runtime"
)

// latencySpec is a GN2-shaped model small enough for tests.
func latencySpec() model.Spec {
	s := model.GN2()
	s.Inputs[0].Vars = s.Inputs[0].Vars[:4]
	s.Inputs[0].InitHidden = []int{8}
	s.EmbedDim = 8
	s.Encoder = nn.EncoderConfig{Layers: 1, Heads: 2, DenseRatio: 2, Activation: nn.ReLU, Registers: 1, OutDim: 6}
	for i := range s.Tasks {
		s.Tasks[i].Hidden = []int{6}
	}
	return s
}

// writeDeployModel writes spec's deployment graph (opts) with random
// weights and an identity normalisation to path.
func writeDeployModel(t *testing.T, spec model.Spec, opts model.DeployOptions, path string) {
	t.Helper()
	if err := os.WriteFile(path, randomDeployModel(t, spec, opts), 0o644); err != nil {
		t.Fatal(err)
	}
}

// randomDeployModel is spec's deployment graph (opts) with random weights
// (a fixed seed) and an identity normalisation, as ONNX bytes.
func randomDeployModel(tb testing.TB, spec model.Spec, opts model.DeployOptions) []byte {
	tb.Helper()
	norm := model.Normalisation{Inputs: map[string]model.Affine{}}
	for range spec.JetVars {
		norm.Jets.Mean, norm.Jets.Std = append(norm.Jets.Mean, 0), append(norm.Jets.Std, 1)
	}
	for _, grp := range spec.Inputs {
		var a model.Affine
		for range grp.Vars {
			a.Mean, a.Std = append(a.Mean, 0), append(a.Std, 1)
		}
		norm.Inputs[grp.Name] = a
	}
	g, err := spec.Deploy(norm, opts)
	if err != nil {
		tb.Fatal(err)
	}
	_, layout, err := spec.Eval(1)
	if err != nil {
		tb.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 3))
	values := map[string][]byte{}
	for _, p := range layout {
		v := p.Init.Sample(r, int(p.Size))
		f := make([]float32, len(v))
		for i := range v {
			f[i] = float32(v[i])
		}
		values[p.Name] = graph.Float32Bytes(f)
	}
	data, err := g.Marshal(graph.ModelOptions{ParamValues: values})
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// TestMeasureLatency times two models of one interface from Go and from
// the generated C++ program and checks the shape of the results (never
// the figures).
func TestMeasureLatency(t *testing.T) {
	spec := latencySpec()
	outs, err := spec.DeployOutputs(model.DeployOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	models := []LatencyModel{{"one-jet", filepath.Join(dir, "a.onnx")}, {"reference", filepath.Join(dir, "b.onnx")}}
	writeDeployModel(t, spec, model.DeployOptions{}, models[0].Path)
	writeDeployModel(t, spec, model.DeployOptions{Reference: true}, models[1].Path)
	iface := DeployInterface(spec, outs)
	if got := len(iface.Inputs); got != 2 || iface.Inputs[1].Name != "track_features" || len(iface.Inputs[1].Vars) != 4 {
		t.Fatalf("interface inputs %+v", iface.Inputs)
	}
	var log strings.Builder
	res, err := MeasureLatency(context.Background(), LatencyOptions{Runtime: graphtest.OpenRuntime(t), Models: models, Interface: iface,
		Constituents: []int{0, 3}, Jets: 2, Rounds: 4, Budget: time.Minute, Optimization: runtime.OptimizeExtended,
		Cpp: true, WorkDir: filepath.Join(dir, "cpp"), Seed: 1, Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if len(res) != 2*2*2 {
		t.Fatalf("%d results, want 8 (2 sides × 2 sizes × 2 models): %+v", len(res), res)
	}
	for i, r := range res {
		side, n, m := []string{"Go", "C++"}[i/4], []int{0, 3}[i/2%2], models[i%2].Label
		if r.Side != side || r.Constituents != n || r.Model != m {
			t.Errorf("result %d is %s/%d/%s, want %s/%d/%s", i, r.Side, r.Constituents, r.Model, side, n, m)
		}
		if r.Calls != 4*2 || r.Median <= 0 || r.P90 < r.Median || r.Mean <= 0 {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	if _, err := MeasureLatency(context.Background(), LatencyOptions{Runtime: graphtest.OpenRuntime(t), Interface: iface, Constituents: []int{1}}); err == nil {
		t.Error("no models: no error")
	}
	other := iface
	other.Outputs = append([]cppgen.Output(nil), iface.Outputs[1:]...)
	if _, err := MeasureLatency(context.Background(), LatencyOptions{Runtime: graphtest.OpenRuntime(t), Models: models[:1], Interface: other,
		Constituents: []int{1}}); err == nil || !strings.Contains(err.Error(), "not in the interface") {
		t.Errorf("a model with an output the interface lacks: %v", err)
	}
}

// TestParseLatency reads the latency program's lines and refuses output
// that lacks a model.
func TestParseLatency(t *testing.T) {
	models := []LatencyModel{{"a", "/m/a.onnx"}, {"b", "/m/b (1).onnx"}}
	for _, c := range []struct {
		name, out string
		ok        bool
	}{
		{"both", "Model::Run latency: model 1 (/m/b (1).onnx): 6 calls, median 2000 ns, p90 3000 ns, mean 2500 ns\n" +
			"Model::Run latency: model 0 (/m/a.onnx): 6 calls, median 1000 ns, p90 1500 ns, mean 1200 ns\n", true},
		{"one missing", "Model::Run latency: model 0 (/m/a.onnx): 6 calls, median 1000 ns, p90 1500 ns, mean 1200 ns\n", false},
		{"model out of range", "Model::Run latency: model 2 (/m/c.onnx): 6 calls, median 1 ns, p90 1 ns, mean 1 ns\n", false},
		{"garbled", "Model::Run latency: model 0 (/m/a.onnx): many calls\n", false},
	} {
		got, err := parseLatency(c.out, models, 7)
		if (err == nil) != c.ok {
			t.Errorf("%s: error %v", c.name, err)
			continue
		}
		if c.ok && (got[0].Median != 1000 || got[1].P90 != 3000 || got[1].Model != "b" || got[0].Side != "C++" || got[0].Calls != 6 || got[1].Constituents != 7) {
			t.Errorf("%s: %+v", c.name, got)
		}
	}
}

// TestSameOutputs checks the comparison BenchmarkDeployVsSalt makes before
// it times anything: per-jet probabilities within the tolerance, track
// outputs identical, every output present.
func TestSameOutputs(t *testing.T) {
	iface := cppgen.Interface{Outputs: []cppgen.Output{
		{Name: "GN2_pb", Type: cppgen.Float32},
		{Name: "GN2_TrackOrigin", Type: cppgen.Int8, Input: "track_features"},
	}}
	want := map[string][]float64{"GN2_pb": {0.25}, "GN2_TrackOrigin": {0, 3, 1}}
	with := func(name string, v ...float64) map[string][]float64 {
		out := map[string][]float64{"GN2_pb": {0.25}, "GN2_TrackOrigin": {0, 3, 1}}
		out[name] = v
		return out
	}
	for _, tc := range []struct {
		name string
		got  map[string][]float64
		err  string
	}{
		{"identical", with("GN2_pb", 0.25), ""},
		{"rounding", with("GN2_pb", 0.25+2e-8), ""},
		{"probability off", with("GN2_pb", 0.25+1e-6), "output GN2_pb: 0.250001, want 0.25"},
		{"probability NaN", with("GN2_pb", math.NaN()), "output GN2_pb: NaN"},
		{"track class off", with("GN2_TrackOrigin", 0, 3, 2), "output GN2_TrackOrigin, constituent 2: 2, want 1"},
		{"track output short", with("GN2_TrackOrigin", 0, 3), "output GN2_TrackOrigin has 2 values, want 3"},
		{"output missing", with("GN2_pb"), "output GN2_pb has 0 values, want 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sameOutputs(iface, want, tc.got, sameOutputsTol)
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}

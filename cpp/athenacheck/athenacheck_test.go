package athenacheck

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
)

// ortDir is the ONNX Runtime install `make deps` makes.
func ortDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../third_party/onnxruntime/dist")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "include", "onnxruntime_cxx_api.h")); err != nil {
		t.Fatalf("ONNX Runtime is not installed: run `make deps` (%v)", err)
	}
	return dir
}

// spec describes a test model: a tagger shaped like Salt's GN2 export.
type spec struct {
	jetInput   string
	jetVars    int
	sequences  []input // constituent inputs of the ONNX graph
	outputs    []output
	config     map[string]any // gnn_config; nil for none
	rawConfig  string         // gnn_config as is, if not ""
	noMetadata bool
}

type input struct {
	name string
	vars int
}

type output struct {
	name string
	kind string // prob, label, int32, nan, doubled, negative, hitsum
}

func variables(names ...string) []any {
	var vs []any
	for _, n := range names {
		vs = append(vs, map[string]any{"name": n, "offset": 0.0, "scale": 1.0})
	}
	return vs
}

// goodSpec is a model as Salt's exporter (salt/onnx/to_onnx.py,
// add_metadata) writes it.
func goodSpec() spec {
	return spec{
		jetInput:  "jet_features",
		jetVars:   2,
		sequences: []input{{"track_features", 3}},
		outputs: []output{
			{"GN2_pb", "prob"}, {"GN2_pc", "prob"}, {"GN2_pu", "prob"}, {"GN2_TrackOrigin", "label"},
		},
		config: map[string]any{
			"onnx_model_version": "v1",
			"model_name":         "GN2",
			"output_names":       []any{"GN2_pb", "GN2_pc", "GN2_pu", "GN2_TrackOrigin"},
			"inputs":             []any{map[string]any{"name": "jet_var", "variables": variables("pt", "eta")}},
			"input_sequences": []any{
				map[string]any{"name": "tracks_r22default_sd0sort", "variables": variables("d0", "z0SinTheta", "dphi")},
			},
			"layers": []any{},
			"nodes":  []any{},
		},
	}
}

// model writes the model of s into dir and returns its path.
func model(t *testing.T, dir, name string, s spec) string {
	t.Helper()
	g := graph.New("tagger")
	jet := g.Input(s.jetInput, graph.Float32, graph.Shape{1, int64(s.jetVars)})
	total := g.ReduceSum(jet, []int{0, 1}, false)
	var first *graph.Tensor
	dims := map[string]string{}
	for _, in := range s.sequences {
		x := g.Input(in.name, graph.Float32, graph.Shape{-1, int64(in.vars)})
		dims[in.name+":0"] = "n_" + in.name
		total = g.Add(total, g.ReduceSum(x, []int{0, 1}, false))
		if first == nil {
			first = x
		}
	}
	for i, o := range s.outputs {
		var y *graph.Tensor
		switch o.kind {
		case "prob":
			scale := g.Const(o.name+"/scale", graph.Float32, graph.Shape{}, []float64{float64(i + 1)})
			y = g.Sigmoid(g.Mul(total, scale))
		case "nan":
			one := g.Const(o.name+"/one", graph.Float32, graph.Shape{}, []float64{1})
			y = g.Log(g.Neg(g.Add(g.Abs(total), one)))
		case "label":
			y = g.Cast(g.ArgMax(first, 1, false), graph.Int8)
		case "int32":
			y = g.Cast(g.ArgMax(first, 1, false), graph.Int32)
		case "doubled":
			y = g.Cast(g.ArgMax(g.Concat(0, first, first), 1, false), graph.Int8)
		case "negative":
			zero := g.Const(o.name+"/zero", graph.Float32, graph.Shape{}, []float64{0})
			minus3 := g.Const(o.name+"/minus3", graph.Float32, graph.Shape{}, []float64{-3})
			y = g.Cast(g.Add(g.Mul(g.ReduceSum(first, []int{1}, false), zero), minus3), graph.Int8)
		case "hitsum":
			y = g.ReduceSum(first, []int{1}, false)
		default:
			t.Fatalf("unknown output kind %q", o.kind)
		}
		g.Output(o.name, y)
	}
	switch {
	case s.rawConfig != "":
		g.SetMetadata("gnn_config", s.rawConfig)
	case s.config != nil:
		b, err := json.Marshal(s.config)
		if err != nil {
			t.Fatal(err)
		}
		g.SetMetadata("gnn_config", string(b))
	}
	b, err := g.Marshal(graph.ModelOptions{DimNames: dims})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".onnx")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// sequence returns the first entry of gnn_config's input_sequences.
func sequence(s *spec) map[string]any {
	return s.config["input_sequences"].([]any)[0].(map[string]any)
}

// TestAthenaCheck builds the program once and checks a model shaped like
// Salt's export passes, then that each broken variant fails the rule (or
// the run) it breaks.
func TestAthenaCheck(t *testing.T) {
	ctx := context.Background()
	work := t.TempDir()
	program, err := Build(ctx, work, ortDir(t), nil)
	if err != nil {
		t.Fatalf("building %s: %v", ProgramName, err)
	}
	// A second Build reuses the first.
	st, _ := os.Stat(program)
	if again, err := Build(ctx, work, ortDir(t), nil); err != nil || again != program {
		t.Fatalf("rebuilding: %s, %v", again, err)
	}
	if st2, _ := os.Stat(program); !st2.ModTime().Equal(st.ModTime()) {
		t.Error("a second Build relinked the program")
	}
	models := t.TempDir()

	t.Run("good", func(t *testing.T) {
		r, err := Run(ctx, program, model(t, models, "good", goodSpec()))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		if !r.Passed || r.Version != "v1" || r.ModelName != "GN2" || r.Session.IntraOpThreads != 1 ||
			r.Session.GraphOptimizationLevel != "ORT_ENABLE_EXTENDED" || r.Session.CPUMemArena {
			t.Errorf("report header %+v", r)
		}
		for _, rule := range r.Rules {
			if !rule.OK || rule.Source == "" || rule.Detail == "" {
				t.Errorf("rule %+v", rule)
			}
		}
		for _, name := range []string{"gnn_config_json", "onnx_model_version", "outputs_schema", "inputs_schema",
			"lwtnn_graph", "jet_variable_getters", "jet_variable_order", "sequence_types", "track_sort_selection",
			"sequence_variables", "onnx_input_names", "onnx_input_shapes", "output_model_name", "model_name",
			"output_types", "tracks_sequence", "decorate_version", "flip_tagger_names"} {
			if r.Rule(name) == nil {
				t.Errorf("no rule %s", name)
			}
		}
		var sizes []int
		for _, run := range r.Runs {
			sizes = append(sizes, run.Constituents)
		}
		if !slices.Equal(sizes, []int{0, 1, 40, 200}) {
			t.Errorf("runs with %v constituents", sizes)
		}
		if got := r.Runs[2].Shapes; !slices.Equal(got["track_features"], []int64{40, 3}) || !slices.Equal(got["jet_features"], []int64{1, 2}) {
			t.Errorf("run shapes %v", got)
		}
	})

	for _, c := range []struct {
		name string
		edit func(*spec)
		fail []string // rules that must fail
		pass []string // rules that must pass
		run  string   // what a failing run's detail must say ("" if the runs pass)
	}{
		{
			name: "outputs as a list of strings", // what salt-ort writes today
			edit: func(s *spec) { s.config["outputs"] = []any{"GN2_pb", "GN2_pc", "GN2_pu", "GN2_TrackOrigin"} },
			fail: []string{"outputs_schema"},
			pass: []string{"onnx_model_version", "inputs_schema", "lwtnn_graph"},
		},
		{
			name: "outputs labels not a list",
			edit: func(s *spec) {
				s.config["outputs"] = map[string]any{"GN2": map[string]any{"labels": "pb", "node_index": 0}}
			},
			fail: []string{"outputs_schema"},
		},
		{
			name: "outputs negative node index",
			edit: func(s *spec) {
				s.config["outputs"] = map[string]any{"GN2": map[string]any{"labels": []any{"pb"}, "node_index": -1}}
			},
			fail: []string{"outputs_schema"},
		},
		{
			name: "no nodes",
			edit: func(s *spec) { delete(s.config, "nodes") },
			fail: []string{"lwtnn_graph"},
			pass: []string{"inputs_schema", "outputs_schema"},
		},
		{
			name: "no layers",
			edit: func(s *spec) { delete(s.config, "layers") },
			fail: []string{"lwtnn_graph"},
		},
		{
			name: "unknown lwtnn node type",
			edit: func(s *spec) { s.config["nodes"] = []any{map[string]any{"type": "magic", "sources": []any{}}} },
			fail: []string{"lwtnn_graph"},
		},
		{
			name: "jet variable pt_btagJes",
			edit: func(s *spec) {
				s.config["inputs"] = []any{map[string]any{"name": "jet_var", "variables": variables("pt_btagJes", "eta")}}
			},
			fail: []string{"jet_variable_types", "jet_variable_getters"},
		},
		{
			name: "jet variable from the b-tagging object",
			edit: func(s *spec) {
				s.config["inputs"] = []any{map[string]any{"name": "jet_var", "variables": variables("IP3D_pb", "pt")}}
			},
			fail: []string{"jet_variable_getters"},
			pass: []string{"jet_variable_types", "jet_variable_order"},
		},
		{
			name: "jet variables the old loader reorders",
			edit: func(s *spec) {
				s.config["inputs"] = []any{map[string]any{"name": "jet_var", "variables": variables("pt", "IP3D_pb")}}
			},
			fail: []string{"jet_variable_order", "jet_variable_getters"},
			pass: []string{"jet_variable_types"},
		},
		{
			name: "two jet input nodes",
			edit: func(s *spec) {
				s.config["inputs"] = []any{
					map[string]any{"name": "jet_var", "variables": variables("pt")},
					map[string]any{"name": "more", "variables": variables("eta")},
				}
			},
			fail: []string{"jet_input_nodes"},
			run:  "Got invalid dimensions for input: jet_features",
		},
		{
			name: "sequence muons_var",
			edit: func(s *spec) { sequence(s)["name"] = "muons_var" },
			fail: []string{"sequence_types", "onnx_input_names"},
			run:  `gnn_inputs.at("track_features") throws`,
		},
		{
			name: "electrons, which the old loader rejects",
			edit: func(s *spec) {
				s.sequences = append(s.sequences, input{"electron_features", 1})
				s.config["input_sequences"] = append(s.config["input_sequences"].([]any),
					map[string]any{"name": "electrons_r22default", "variables": variables("pt")})
			},
			fail: []string{"sequence_types"},
			pass: []string{"onnx_input_names", "onnx_input_shapes", "sequence_variables", "track_sort_selection"},
		},
		{
			name: "two track sequences",
			edit: func(s *spec) {
				s.config["input_sequences"] = append(s.config["input_sequences"].([]any),
					map[string]any{"name": "tracks_r22loose_ptsort", "variables": variables("d0")})
			},
			fail: []string{"unique_sequence_types"},
			pass: []string{"onnx_input_names"},
		},
		{
			name: "track sequence without sort order",
			edit: func(s *spec) { sequence(s)["name"] = "tracks_r22default" },
			fail: []string{"track_sort_selection"},
		},
		{
			name: "track sequence without selection",
			edit: func(s *spec) { sequence(s)["name"] = "tracks_sd0sort" },
			fail: []string{"track_sort_selection"},
		},
		{
			name: "track variable of no type",
			edit: func(s *spec) { sequence(s)["variables"] = variables("d0", "z0SinTheta", "foo") },
			fail: []string{"sequence_variables"},
			pass: []string{"sequence_custom_getters"},
		},
		{
			name: "track variable without a custom getter",
			edit: func(s *spec) { sequence(s)["variables"] = variables("d0", "z0", "dphi") },
			fail: []string{"sequence_custom_getters"},
			pass: []string{"sequence_variables"},
		},
		{
			name: "variable without offset",
			edit: func(s *spec) {
				sequence(s)["variables"] = []any{map[string]any{"name": "d0", "scale": 1}, map[string]any{"name": "dphi", "offset": 0, "scale": 1}}
			},
			fail: []string{"inputs_schema", "onnx_input_names"},
			run:  "not run",
		},
		{
			name: "mixed model-name prefixes",
			edit: func(s *spec) { s.outputs[1].name = "GN3_pc" },
			fail: []string{"output_model_name"},
		},
		{
			name: "output name without underscore",
			edit: func(s *spec) { s.outputs[0].name = "pb" },
			fail: []string{"output_model_name"},
		},
		{
			name: "model_name disagrees",
			edit: func(s *spec) { s.config["model_name"] = "GN2v01" },
			fail: []string{"model_name"},
			pass: []string{"output_model_name"},
		},
		{
			name: "model name with a dash",
			edit: func(s *spec) {
				for i := range s.outputs {
					s.outputs[i].name = "GN2-x" + strings.TrimPrefix(s.outputs[i].name, "GN2")
				}
				s.config["model_name"] = "GN2-x"
			},
			fail: []string{"model_name"},
			pass: []string{"output_model_name"},
		},
		{
			name: "wrong input name",
			edit: func(s *spec) { s.sequences[0].name = "tracks" },
			fail: []string{"onnx_input_names"},
			run:  `gnn_inputs.at("tracks") throws`,
		},
		{
			name: "int32 output",
			edit: func(s *spec) { s.outputs[3].kind = "int32" },
			fail: []string{"output_types"},
			run:  "int32 of rank 1",
		},
		{
			name: "no onnx_model_version and no outputs",
			edit: func(s *spec) { delete(s.config, "onnx_model_version") },
			fail: []string{"onnx_model_version", "decorate_version"},
		},
		{
			name: "v0, by outputs without a version",
			edit: func(s *spec) {
				delete(s.config, "onnx_model_version")
				s.config["outputs"] = map[string]any{"GN2": map[string]any{"labels": []any{"pb", "pc", "pu"}, "node_index": 0}}
			},
			fail: []string{"decorate_version"},
			pass: []string{"onnx_model_version", "outputs_schema", "output_model_name"},
		},
		{
			name: "onnx_model_version v3",
			edit: func(s *spec) { s.config["onnx_model_version"] = "v3" },
			fail: []string{"onnx_model_version"},
		},
		{
			name: "v2",
			edit: func(s *spec) { s.config["onnx_model_version"] = "v2" },
			fail: []string{"decorate_version", "onnx_input_names"},
			pass: []string{"onnx_model_version"},
			run:  `gnn_inputs.at("jet_features") throws`,
		},
		{
			name: "variable count mismatch",
			edit: func(s *spec) { sequence(s)["variables"] = variables("d0", "dphi") },
			fail: []string{"onnx_input_shapes"},
			pass: []string{"onnx_input_names"},
			run:  "Ort::Session::Run throws",
		},
		{
			name: "no tracks sequence",
			edit: func(s *spec) {
				s.sequences[0].name = "flow_features"
				s.config["input_sequences"] = []any{map[string]any{"name": "flows", "variables": variables("pt", "deta", "dphi")}}
			},
			fail: []string{"tracks_sequence"},
			pass: []string{"sequence_types", "onnx_input_names"},
		},
		{
			name: "no gnn_config",
			edit: func(s *spec) { s.config = nil },
			fail: []string{"gnn_config_present"},
			run:  "not run",
		},
		{
			name: "gnn_config not JSON",
			edit: func(s *spec) { s.rawConfig = "{'inputs': []}" },
			fail: []string{"gnn_config_json"},
			run:  "not run",
		},
		{
			name: "non-finite scalar",
			edit: func(s *spec) { s.outputs[0].kind = "nan" },
			run:  ", not finite", // GN2_pb is nan (or -nan)
		},
		{
			name: "per-constituent output of 2n values",
			edit: func(s *spec) { s.outputs[3].kind = "doubled" },
			run:  "GN2_TrackOrigin has 80 values for 40 tracks",
		},
		{
			name: "int8 below -1",
			edit: func(s *spec) { s.outputs[3].kind = "negative" },
			run:  "GN2_TrackOrigin[0] is -3, below -1",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := goodSpec()
			c.edit(&s)
			r, err := Run(ctx, program, model(t, models, strings.ReplaceAll(c.name, " ", "_"), s))
			if err != nil {
				t.Fatal(err)
			}
			if r.Pass() || r.Passed || r.Err() == nil {
				t.Fatalf("the report passes: %+v", r)
			}
			for _, name := range c.fail {
				rule := r.Rule(name)
				if rule == nil || rule.OK {
					t.Errorf("rule %s does not fail: %+v", name, rule)
				} else if !strings.Contains(r.Err().Error(), "rule "+name+": ") {
					t.Errorf("Err does not name rule %s: %v", name, r.Err())
				}
			}
			for _, name := range c.pass {
				if rule := r.Rule(name); rule == nil || !rule.OK {
					t.Errorf("rule %s does not pass: %+v", name, rule)
				}
			}
			if len(c.fail) == 0 && len(r.Failed()) > 0 {
				t.Errorf("rules %v fail; only a run should", r.Failed())
			}
			failedRun := false
			for _, run := range r.Runs {
				if !run.OK {
					failedRun = true
					if c.run == "" {
						t.Errorf("run with %d constituents fails: %s", run.Constituents, run.Detail)
					} else if run.Constituents == 40 && !strings.Contains(run.Detail, c.run) {
						t.Errorf("run with 40 constituents: %q, want %q", run.Detail, c.run)
					}
				}
			}
			if c.run != "" && !failedRun {
				t.Errorf("no run fails, want one saying %q", c.run)
			}
		})
	}

	t.Run("flip-tagger names are advisory", func(t *testing.T) {
		s := goodSpec()
		for i := range s.outputs {
			s.outputs[i].name = "MyTagger" + strings.TrimPrefix(s.outputs[i].name, "GN2")
		}
		s.config["model_name"] = "MyTagger"
		r, err := Run(ctx, program, model(t, models, "mytagger", s))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		if rule := r.Rule("flip_tagger_names"); rule == nil || rule.OK || !rule.Advisory || !strings.Contains(rule.Detail, "'MyTagger_TrackLinks'") {
			t.Errorf("flip_tagger_names: %+v", rule)
		}
	})

	t.Run("cannot open", func(t *testing.T) {
		bad := filepath.Join(models, "bad.onnx")
		os.WriteFile(bad, []byte("not a model"), 0o644)
		if r, err := Run(ctx, program, bad); err == nil || !strings.Contains(err.Error(), "cannot open the model") {
			t.Errorf("got %+v, %v", r, err)
		}
	})
}

// TestMissingTools checks that a machine without the build tools gets an
// error saying `make deps` installs them.
func TestMissingTools(t *testing.T) {
	if _, err := exec.LookPath("cmake"); err != nil {
		t.Fatalf("cmake is not installed: run `make deps`")
	}
	t.Run("no cmake", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		t.Setenv("CXX", "")
		_, err := Build(context.Background(), t.TempDir(), ortDir(t), nil)
		if err == nil || !strings.Contains(err.Error(), "`make deps` installs") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("no nlohmann_json", func(t *testing.T) {
		src, build := filepath.Join(t.TempDir(), "src"), t.TempDir()
		if err := writeSources(src); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("cmake", "-S", src, "-B", build, "-DORT_DIR="+ortDir(t),
			"-DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON").CombinedOutput()
		// CMake wraps its messages.
		if msg := strings.Join(strings.Fields(string(out)), " "); err == nil || !strings.Contains(msg, "`make deps` installs Debian's nlohmann-json3-dev") {
			t.Errorf("cmake without nlohmann_json: %v\n%s", err, out)
		}
	})
}

// Package salttwin runs salt_twin.py, an independent PyTorch
// implementation of Salt's GN2 written for salt-ort's tests, to make a model
// "trained by Salt": the config.yaml Salt writes into its log directory, a
// Lightning checkpoint, and PyTorch's outputs to compare salt-ort with.
package salttwin

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/checkpoint"
	"github.com/salt-ort/salt-ort/gendata"
	"github.com/salt-ort/salt-ort/internal/testkit/torchref"
	"github.com/salt-ort/salt-ort/loader"
)

// Twin is a small GN2 the PyTorch twin trained on generated data.
type Twin struct {
	Dir string
	// ConfigYAML and Ckpt are Salt's config.yaml and the Lightning
	// checkpoint at the end of epoch Steps-1 (one step per epoch).
	ConfigYAML, Ckpt string
	Data             *gendata.Result
	// Expected holds PyTorch's outputs: eval/<task> (probabilities of the
	// checkpoint on the test file: [jets, 4], [jets, T, 8], [jets, T, T]),
	// step/lr and step/beta1 of the next step, and step/before/<name> and
	// step/after/<name>, every parameter (Salt's names) before and after it.
	Expected *checkpoint.File
}

// Sizes of the twin.
const (
	TrainJets = 64 // one batch per epoch: salt-ort and the twin step on the same jets
	TestJets  = 300
	Tracks    = 12
	Steps     = 3  // steps taken before the checkpoint
	Epochs    = 10 // the schedule's length, one step per epoch
	Embed     = 32
)

// Dir returns the directory of the twin's Python modules (salt_twin.py,
// lightning_state.py, ...), for scripts that import them.
func Dir() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Dir(file)
}

// script returns the path of salt_twin.py.
func script() string { return filepath.Join(Dir(), "salt_twin.py") }

// Build trains the twin in a new directory under dir and returns it; it
// fails the test where python3-torch is missing (`make deps`).
func Build(t testing.TB, dir string) *Twin {
	t.Helper()
	return build(t, dir, "salt_twin.py", func(spec map[string]any) { spec["registers"] = 1 })
}

// build generates the twin's data under dir, has the script name train
// the twin (its spec the common sizes, then edited by edit), and reads
// what it expects salt-ort to compute.
// BuildEdges is Build with Salt's edge features: an EdgeConstructor of dR
// (from the tracks' deta and dphi) and isSelfLoop, an edge init net of
// width 4 and edge attention in every encoder layer, updating the edges.
func BuildEdges(t testing.TB, dir string) *Twin {
	t.Helper()
	return build(t, dir, "salt_twin.py", func(spec map[string]any) {
		spec["registers"] = 1
		spec["edges"] = map[string]any{"features": []string{"dR", "isSelfLoop"}, "dim": 4, "hidden": []int{8},
			"update": true, "vars": map[string]string{"eta": "deta", "phi": "dphi"}}
	})
}

// BuildFeaturewise is Build conditioned on the generated jets'
// mass_hypothesis (gendata.MassHypotheses, tested at the second) with
// Salt's featurewise nets of all three layers: a scale and a bias of the
// init net's input, a scale and a bias with an affine norm before each
// encoder layer, and a sigmoid scale of the encoder's output.
func BuildFeaturewise(t testing.TB, dir string) *Twin {
	t.Helper()
	return build(t, dir, "salt_twin.py", func(spec map[string]any) {
		spec["registers"] = 1
		m := gendata.MassHypotheses()
		spec["parameters"] = map[string]any{"mass_hypothesis": map[string]any{"train": m, "test": m[1]}}
		net := func(final any) map[string]any { return map[string]any{"hidden": []int{4}, "final": final} }
		spec["featurewise"] = []map[string]any{
			{"layer": "input", "scale": net(nil), "bias": net(nil)},
			{"layer": "encoder", "scale": net(nil), "bias": net(nil), "norm": true},
			{"layer": "global", "scale": net("Sigmoid")},
		}
	})
}

// CrossAttention configures a twin with Salt's
// TransformerCrossAttentionEncoder (ca_twin.py) over the tracks and the
// generated flows, with legacy layers of Legacy's settings.
type CrossAttention struct {
	Legacy
	Flows        int  // flow slots per jet
	Layers       int  // num_layers (0: Build's 2)
	CAEveryLayer bool // ca_every_layer
}

// BuildCrossAttention is Build with two constituent groups, tracks and
// flows, and Salt's TransformerCrossAttentionEncoder over them (with its
// masked GlobalAttentionPooling over both); the tasks are Build's.
func BuildCrossAttention(t testing.TB, dir string, c CrossAttention) *Twin {
	t.Helper()
	return buildWith(t, dir, "ca_twin.py", c.Flows, func(spec map[string]any) {
		legacySpec(c.Legacy, spec)
		spec["flow_vars"] = gendata.FlowVariables()
		spec["ca_every_layer"] = c.CAEveryLayer
		if c.Layers > 0 {
			spec["layers"] = c.Layers
		}
	})
}

func build(t testing.TB, dir, name string, edit func(map[string]any)) *Twin {
	t.Helper()
	return buildWith(t, dir, name, 0, edit)
}

// buildWith is build on generated data with flows slots of flows per jet.
func buildWith(t testing.TB, dir, name string, flows int, edit func(map[string]any)) *Twin {
	t.Helper()
	torchref.Require(t)
	gen, err := gendata.Generate(gendata.Config{Seed: 11, Train: TrainJets, Val: TrainJets, Test: TestJets, MaxTracks: Tracks, Flows: flows}, filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	cd, err := loader.ReadClassDict(gen.ClassDict)
	if err != nil {
		t.Fatal(err)
	}
	tw := &Twin{Dir: dir, Data: gen, ConfigYAML: filepath.Join(dir, "logs", "config.yaml"),
		Ckpt: filepath.Join(dir, "logs", "ckpts", "epoch=002-val_loss=1.00000.ckpt")}
	if err := os.MkdirAll(filepath.Dir(tw.Ckpt), 0o755); err != nil {
		t.Fatal(err)
	}
	expected := filepath.Join(dir, "expected.safetensors")
	spec := map[string]any{
		"seed": 3, "jet_vars": loader.GN2JetVariables(), "track_vars": loader.GN2TrackVariables(),
		"embed": Embed, "init_hidden": []int{32}, "layers": 2, "heads": 4, "out_dim": 16,
		"task_hidden":       []int{16, 8},
		"jet_class_weights": cd["jets"]["flavour_label"], "origin_class_weights": cd["tracks"]["ftagTruthOriginLabel"],
		"lr": []float64{1e-4, 5e-3, 1e-5}, "pct_start": 0.3, "epochs": Epochs, "steps": Steps,
		"batch": TrainJets, "train": gen.Train, "val": gen.Val, "test": gen.Test,
		"norm_dict": gen.NormDict, "class_dict": gen.ClassDict,
		"ckpt": tw.Ckpt, "config_yaml": tw.ConfigYAML, "expected": expected,
	}
	edit(spec)
	runScript(t, name, "make", spec, dir)
	if tw.Expected, err = checkpoint.Read(expected); err != nil {
		t.Fatal(err)
	}
	return tw
}

// Count returns the parameter count of the twin at the sizes spec gives
// (jet_vars, track_vars, embed, init_hidden, layers, heads, out_dim,
// registers, task_hidden).
func Count(t testing.TB, spec map[string]any) int64 {
	t.Helper()
	return count(t, "salt_twin.py", spec)
}

// count returns the parameter count the script name prints for spec.
func count(t testing.TB, name string, spec map[string]any) int64 {
	t.Helper()
	out := strings.TrimSpace(string(runScript(t, name, "count", spec, t.TempDir())))
	n, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		t.Fatalf("%s count printed %q", name, out)
	}
	return n
}

// runScript runs the script of this directory called name in mode with
// spec, written as JSON into dir, and returns its standard output.
func runScript(t testing.TB, name, mode string, spec map[string]any, dir string) []byte {
	t.Helper()
	path := filepath.Join(dir, "spec-"+mode+".json")
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return torchref.RunFile(t, filepath.Join(filepath.Dir(script()), name), mode, path)
}

// Exported is a Salt-shaped GN2 that salt_onnx.py exported to ONNX the way
// Salt's exporter exports one.
type Exported struct {
	// ONNX is the model: jet_features and track_features in, Salt's
	// outputs (<name>_pb, ..., <name>_TrackOrigin, <name>_VertexIndex) out.
	ONNX string
	// Weights holds its parameters under Salt's state_dict names and its
	// normalisation (norm.jets_means, ...), a safetensors file.
	Weights string
}

// ExportONNX runs salt_onnx.py with spec (its keys: salt_onnx.py's
// documentation; onnx and weights are set here) and writes the model and
// its weights into dir. It fails the test where python3-torch is missing
// (`make deps`).
func ExportONNX(t testing.TB, dir string, spec map[string]any) Exported {
	t.Helper()
	name := "salt_" + strings.ReplaceAll(strings.ToLower(spec["pair_rows"].(string)), " ", "_")
	e := Exported{ONNX: filepath.Join(dir, name+".onnx"), Weights: filepath.Join(dir, name+".safetensors")}
	spec = maps.Clone(spec)
	spec["onnx"], spec["weights"] = e.ONNX, e.Weights
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	torchref.RunFile(t, filepath.Join(filepath.Dir(script()), "salt_onnx.py"), path)
	return e
}

package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/salt-ort/salt-ort/codegen/onnxpb"
	"github.com/salt-ort/salt-ort/cpp/athenacheck"
	"github.com/salt-ort/salt-ort/gendata"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/internal/onnxcheck"
	"github.com/salt-ort/salt-ort/internal/testkit/fixture"
)

// h5pyPython is Debian's python3, which has python3-h5py.
const h5pyPython = "/usr/bin/python3"

// regressionTasks are regressions of every kind of generated jet and
// track fields, with Salt's target scalings: pt over the jet's
// pt_btagJes (target_denominators), the mass with norm_params and a
// Gaussian spread, the b or c hadron's decay length (NaN for light jets)
// through a log scaler, and each track's eta with a Gaussian spread and
// per-track sample weights.
const regressionTasks = `
[[model.tasks]]
name = "pt_regression"
kind = "regression"
targets = ["pt"]
target_denominators = ["pt_btagJes"]
hidden = [8]
[[model.tasks]]
name = "mass_regression"
kind = "gaussian_regression"
targets = ["mass"]
hidden = [8]
[model.tasks.norm_params]
mean = [10000.0]
std = [5000.0]
[[model.tasks]]
name = "lxy_regression"
kind = "regression"
targets = ["HadronConeExclTruthLabelLxy"]
hidden = [8]
[model.tasks.scaler.HadronConeExclTruthLabelLxy]
op = "log"
x_off = 1.0
[[model.tasks]]
name = "track_eta"
kind = "gaussian_regression"
input = "tracks"
targets = ["eta"]
sample_weight = "pt"
hidden = [8]
[model.tasks.norm_params]
mean = [0.0]
std = [1.5]
`

// saltFeatureTasks use the features of Salt's shipped configurations
// beyond GN2: binary classifications of jets (b or not, Salt's
// BCEWithLogitsLoss) and of tracks (primary or not), an L1
// regression, dropout in the heads, Mish, and Salt's mean of weight ×
// loss over every entry.
const saltFeatureTasks = `
[[model.tasks]]
name = "bjets"
kind = "jet_classification"
label = "flavour_label"
class_names = ["b"]
loss = "BCEWithLogitsLoss"
loss_mean = "entries"
dropout = 0.1
activation = "Mish"
hidden = [8]
[model.tasks.label_map]
0 = "b"
1 = 0
2 = 0
3 = 0
[[model.tasks]]
name = "primary_tracks"
kind = "track_classification"
input = "tracks"
label = "ftagTruthOriginLabel"
class_names = ["primary"]
loss = "BCEWithLogitsLoss"
dropout = 0.1
hidden = [8]
[model.tasks.label_map]
0 = 0
1 = 0
2 = 1
3 = 0
4 = 0
5 = 0
6 = 0
7 = 0
[[model.tasks]]
name = "pt_regression"
kind = "regression"
targets = ["pt"]
target_denominators = ["pt_btagJes"]
loss = "L1Loss"
loss_mean = "entries"
dropout = 0.1
hidden = [8]
`

// modelKind is one kind of model every export must handle.
type modelKind struct {
	name    string
	gen     gendata.Config
	opts    fixture.Options
	outputs []string // the one-jet interface's outputs
	inputs  []string
	// athenaFails lists the rules of the Athena loader check the model
	// fails for a known limitation of a loader (nil: it passes), and
	// athenaDetail what the first one's detail says.
	athenaFails  []string
	athenaDetail string
	// jetVars are gnn_config's jet variables (nil: pt and eta).
	jetVars []string
}

var modelKinds = []modelKind{
	{name: "gn2", gen: gendata.Config{Seed: 4, Train: 800, Val: 300, Test: 100},
		opts:    fixture.Options{Name: "GN2", NumTrain: 500, Seed: 9},
		outputs: []string{"GN2_pb", "GN2_pc", "GN2_pu", "GN2_ptau", "GN2_TrackOrigin", "GN2_VertexIndex"},
		inputs:  []string{"jet_features", "track_features"}},
	{name: "jet tasks only", gen: gendata.Config{Seed: 4, Train: 800, Val: 300, Test: 100},
		opts:    fixture.Options{Name: "DL", NumTrain: 500, Seed: 9, JetTasksOnly: true},
		outputs: []string{"DL_pb", "DL_pc", "DL_pu", "DL_ptau"},
		inputs:  []string{"jet_features", "track_features"}},
	{name: "tracks and flows", gen: gendata.Config{Seed: 6, Train: 800, Val: 300, Test: 100, Flows: 12},
		opts:    fixture.Options{Name: "GN2X", NumTrain: 500, Seed: 9, Flows: 12},
		outputs: []string{"GN2X_pb", "GN2X_pc", "GN2X_pu", "GN2X_ptau", "GN2X_TrackOrigin", "GN2X_VertexIndex"},
		inputs:  []string{"jet_features", "track_features", "flow_features"}},
	// The older loader (FlavorTagDiscriminants) reads no electrons; the
	// current one does.
	{name: "tracks and electrons", gen: gendata.Config{Seed: 6, Train: 800, Val: 300, Test: 100, Electrons: 4},
		opts:        fixture.Options{Name: "GN2el", NumTrain: 500, Seed: 9, Electrons: 4, JetTasksOnly: true},
		outputs:     []string{"GN2el_pb", "GN2el_pc", "GN2el_pu", "GN2el_ptau"},
		inputs:      []string{"jet_features", "track_features", "electron_features"},
		athenaFails: []string{"sequence_types"}, athenaDetail: "older loader"},
	{name: "deepsets", gen: gendata.Config{Seed: 4, Train: 800, Val: 300, Test: 100},
		opts:    fixture.Options{Name: "DIPS", NumTrain: 500, Seed: 9, NoEncoder: true},
		outputs: []string{"DIPS_pb", "DIPS_pc", "DIPS_pu", "DIPS_ptau", "DIPS_TrackOrigin", "DIPS_VertexIndex"},
		inputs:  []string{"jet_features", "track_features"}},
	// Registers the pooling leaves out (Salt's drop_registers).
	{name: "registers dropped", gen: gendata.Config{Seed: 4, Train: 800, Val: 300, Test: 100},
		opts:    fixture.Options{Name: "GN2", NumTrain: 500, Seed: 9, DropRegisters: true},
		outputs: []string{"GN2_pb", "GN2_pc", "GN2_pu", "GN2_ptau", "GN2_TrackOrigin", "GN2_VertexIndex"},
		inputs:  []string{"jet_features", "track_features"}},
	// Edge features with GN3's encoder options.
	{name: "edge features", gen: gendata.Config{Seed: 4, Train: 800, Val: 300, Test: 100},
		opts:    fixture.Options{Name: "GN2dR", NumTrain: 500, Seed: 9, EdgeFeatures: []string{"dR", "kt", "z", "isSelfLoop"}, GN3Encoder: true},
		outputs: []string{"GN2dR_pb", "GN2dR_pc", "GN2dR_pu", "GN2dR_ptau", "GN2dR_TrackOrigin", "GN2dR_VertexIndex"},
		inputs:  []string{"jet_features", "track_features"}},
	// A mass-parameterised tagger (Salt's parameters and featurewise nets).
	{name: "parameterised", gen: gendata.Config{Seed: 4, Train: 800, Val: 300, Test: 100},
		opts:    fixture.Options{Name: "GN2X", NumTrain: 500, Seed: 9, Parameterised: true, JetTasksOnly: true},
		outputs: []string{"GN2X_pb", "GN2X_pc", "GN2X_pu", "GN2X_ptau"},
		inputs:  []string{"jet_features", "track_features"}, jetVars: []string{"pt", "eta", "mass_hypothesis"},
		// No jet getter of Athena's gives a parameter's value.
		athenaFails: []string{"jet_variable_types", "jet_variable_getters", "jet_variable_order"}, athenaDetail: "mass_hypothesis"},
	// Athena's GNN tool reads the track_features of every jet: a model of
	// the jet variables alone exports and validates, but Athena cannot run
	// it.
	{name: "jet only", gen: gendata.Config{Seed: 4, Train: 800, Val: 300, Test: 100},
		opts:        fixture.Options{Name: "DL1", NumTrain: 500, Seed: 9, JetOnly: true},
		outputs:     []string{"DL1_pb", "DL1_pc", "DL1_pu", "DL1_ptau"},
		inputs:      []string{"jet_features"},
		athenaFails: []string{"tracks_sequence"}, athenaDetail: "track_features"},
	// Salt's R21Xbb: the first 5 of 20 track slots flattened, so that
	// the deployed graph pads short jets and truncates long ones.
	{name: "flatten", gen: gendata.Config{Seed: 4, Train: 800, Val: 300, Test: 100},
		opts:    fixture.Options{Name: "Xbb", NumTrain: 500, Seed: 9, Flatten: 5},
		outputs: []string{"Xbb_pb", "Xbb_pc", "Xbb_pu", "Xbb_ptau"},
		inputs:  []string{"jet_features", "track_features"}},
	{name: "regression", gen: gendata.Config{Seed: 4, Train: 800, Val: 300, Test: 100},
		opts:    fixture.Options{Name: "Reg", NumTrain: 500, Seed: 9, NoGN2Tasks: true, NoClassDict: true, ExtraTasks: regressionTasks},
		outputs: []string{"Reg_pt", "Reg_mass", "Reg_mass_stddev", "Reg_HadronConeExclTruthLabelLxy", "Reg_eta", "Reg_eta_stddev"},
		inputs:  []string{"jet_features", "track_features"}},
	// Salt's TransformerCrossAttentionEncoder over tracks and flows: no
	// registers, and no warning for it, as absent keys weigh zero.
	{name: "cross-attention encoder", gen: gendata.Config{Seed: 6, Train: 800, Val: 300, Test: 100, Flows: 12},
		opts:    fixture.Options{Name: "GN2CA", NumTrain: 500, Seed: 9, Flows: 12, CrossAttention: true},
		outputs: []string{"GN2CA_pb", "GN2CA_pc", "GN2CA_pu", "GN2CA_ptau", "GN2CA_TrackOrigin", "GN2CA_VertexIndex"},
		inputs:  []string{"jet_features", "track_features", "flow_features"}},
	{name: "salt features", gen: gendata.Config{Seed: 4, Train: 800, Val: 300, Test: 100},
		opts:    fixture.Options{Name: "SF", NumTrain: 500, Seed: 9, NoGN2Tasks: true, NoClassDict: true, ExtraTasks: saltFeatureTasks},
		outputs: []string{"SF_pb", "SF_pt", "SF_PrimaryTracks"},
		inputs:  []string{"jet_features", "track_features"}},
}

// kindRuns trains each model kind once for the package's tests.
var kindRuns struct {
	sync.Mutex
	dirs map[string]string
}

// trainedKind returns the run directory of a model kind, training it on
// first use.
func trainedKind(t *testing.T, k modelKind) string {
	t.Helper()
	kindRuns.Lock()
	defer kindRuns.Unlock()
	if dir, ok := kindRuns.dirs[k.name]; ok {
		return dir
	}
	data := datasets.Get(t, k.gen)
	dir, err := os.MkdirTemp(data, "run-")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "model.toml")
	if err := os.WriteFile(cfg, []byte(fixture.Tiny(data, k.opts)), 0o644); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "run")
	trainRun(t, cfg, run)
	if kindRuns.dirs == nil {
		kindRuns.dirs = map[string]string{}
	}
	kindRuns.dirs[k.name] = run
	return run
}

// cppWork holds the C++ builds the package's tests share (TestMain
// makes and removes it).
var cppWork string

// athena is the Athena loader check, built once.
var athena struct {
	once    sync.Once
	program string
	err     error
}

// athenaProgram builds the Athena loader check on first use.
func athenaProgram(t *testing.T) string {
	t.Helper()
	athena.once.Do(func() {
		ort, err := FindORTDir("")
		if err != nil {
			athena.err = err
			return
		}
		athena.program, athena.err = athenacheck.Build(context.Background(), filepath.Join(cppWork, "athena"), ort, nil)
	})
	if athena.err != nil {
		t.Fatal(athena.err)
	}
	return athena.program
}

// TestExportModelKinds exports every kind of model salt-ort trains and
// checks that the export validates, is bit-identical when made again,
// has the inputs and outputs Salt's exporter would give it, and carries
// the gnn_config metadata ATLAS's loaders read.
func TestExportModelKinds(t *testing.T) {
	for _, k := range modelKinds {
		t.Run(k.name, func(t *testing.T) {
			run := trainedKind(t, k)
			dir := t.TempDir()
			a := export(t, run, filepath.Join(dir, "a", k.opts.Name+".onnx"), false)
			b := export(t, run, filepath.Join(dir, "b", k.opts.Name+".onnx"), false)
			if a.SHA256 != b.SHA256 || !bytes.Equal(readBytes(t, a.Vectors), readBytes(t, b.Vectors)) || !bytes.Equal(readBytes(t, a.Card), readBytes(t, b.Card)) || !bytes.Equal(readBytes(t, a.CardJSON), readBytes(t, b.CardJSON)) {
				t.Fatal("two exports of one checkpoint differ")
			}
			if !a.Validation.Pass() || len(a.Validation.Outputs) != len(k.outputs) {
				t.Fatalf("export validation: %+v", a.Validation.Outputs)
			}
			if onnxcheck.Available() != a.Checked {
				t.Errorf("ONNX checker available %v, ran %v", onnxcheck.Available(), a.Checked)
			}
			mp, err := onnxpb.Unmarshal(readBytes(t, a.Model))
			if err != nil {
				t.Fatal(err)
			}
			var ins, outs []string
			for _, in := range mp.GetGraph().GetInput() {
				ins = append(ins, in.GetName())
			}
			for _, o := range mp.GetGraph().GetOutput() {
				outs = append(outs, o.GetName())
			}
			if !slices.Equal(ins, k.inputs) || !slices.Equal(outs, k.outputs) {
				t.Errorf("inputs %v outputs %v, want %v and %v", ins, outs, k.inputs, k.outputs)
			}
			checkGnnConfig(t, mp, k)
			// validate, as a user runs it, on the files in place, then the
			// generated C++ program bit for bit.
			rep := validate(t, a.Model, "")
			if !rep.Pass() {
				t.Fatalf("validate: %+v", rep.Outputs)
			}
			cr, err := ValidateCppPath(context.Background(), graphtest.OpenRuntime(t), a.Model, "", nil, CppOptions{WorkDir: filepath.Join(cppWork, "validate")})
			if err != nil {
				t.Fatal(err)
			}
			if err := cr.Err(); err != nil {
				t.Fatal(err)
			}
			// ATLAS's loaders' rules, from C++.
			ar, err := athenacheck.Run(context.Background(), athenaProgram(t), a.Model)
			if err != nil {
				t.Fatal(err)
			}
			if (k.athenaFails != nil) != (len(a.Warnings) > 0) {
				t.Errorf("export warnings %q, known Athena failures %v", a.Warnings, k.athenaFails)
			}
			if k.athenaFails == nil {
				if err := ar.Err(); err != nil {
					t.Fatal(err)
				}
			} else if got := ar.Failed(); !slices.Equal(got, k.athenaFails) || !strings.Contains(ar.Rule(got[0]).Detail, k.athenaDetail) {
				t.Fatalf("the Athena check fails rules %v, want only %v (%s): %v", got, k.athenaFails, k.athenaDetail, ar.Err())
			}
		})
	}
}

// checkGnnConfig checks the gnn_config metadata of an export against the
// layout of Salt's exporter (salt/onnx/to_onnx.py, add_metadata).
func checkGnnConfig(t *testing.T, mp *onnxpb.ModelProto, k modelKind) {
	t.Helper()
	var raw string
	for _, kv := range mp.GetMetadataProps() {
		if kv.GetKey() == AthenaConfigKey {
			raw = kv.GetValue()
		}
	}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatalf("gnn_config: %v", err)
	}
	for _, key := range []string{"onnx_model_version", "model_name", "output_names", "inputs", "input_sequences", "layers", "nodes", "ckpt_path", "exporter_version"} {
		if _, ok := cfg[key]; !ok {
			t.Errorf("gnn_config has no %s", key)
		}
	}
	if _, ok := cfg["outputs"]; ok {
		t.Error("gnn_config has outputs, which ATLAS's loader reads as the v0 layout")
	}
	if cfg["onnx_model_version"] != "v1" || cfg["model_name"] != k.opts.Name {
		t.Errorf("version %v, model name %v", cfg["onnx_model_version"], cfg["model_name"])
	}
	var names []string
	for _, n := range cfg["output_names"].([]any) {
		names = append(names, n.(string))
	}
	if !slices.Equal(names, k.outputs) {
		t.Errorf("output_names %v, want %v", names, k.outputs)
	}
	jet := cfg["inputs"].([]any)[0].(map[string]any)
	if jet["name"] != "jet_var" {
		t.Errorf("jet input node %v", jet["name"])
	}
	var jetVars []string
	for _, v := range jet["variables"].([]any) {
		jetVars = append(jetVars, v.(map[string]any)["name"].(string))
	}
	wantJet := k.jetVars
	if wantJet == nil {
		wantJet = []string{"pt", "eta"}
	}
	if !slices.Equal(jetVars, wantJet) {
		t.Errorf("jet variables %v, want %v (Salt drops _btagJes)", jetVars, wantJet)
	}
	var seqs []string
	for _, s := range cfg["input_sequences"].([]any) {
		seqs = append(seqs, s.(map[string]any)["name"].(string))
	}
	want := []string{"tracks_r22default_sd0sort"}
	if k.opts.JetOnly {
		want = nil
	}
	if k.opts.Flows > 0 {
		want = append(want, "flows_r22default_sd0sort")
	}
	if k.opts.Electrons > 0 {
		want = append(want, "electrons_r22default")
	}
	if !slices.Equal(seqs, want) {
		t.Errorf("input_sequences %v, want %v", seqs, want)
	}
}

// TestExportInterleavedPadding trains on files whose valid tracks are
// interleaved with padding, as atlas-ftag-tools' mock writer makes them
// (written here with h5py), then exports and validates.
func TestExportInterleavedPadding(t *testing.T) {
	if err := exec.Command(h5pyPython, "-c", "import h5py, numpy").Run(); err != nil {
		t.Fatalf("%s cannot import h5py and numpy (%v): run `make deps`", h5pyPython, err)
	}
	src := datasets.Get(t, gendata.Config{Seed: 4, Train: 800, Val: 300, Test: 100})
	dir := t.TempDir()
	// Shuffle each jet's track slots, valid and padding alike, with numpy.
	script := `
import sys, shutil, h5py, numpy as np
src, dst = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(7)
for split in ("train", "val", "test"):
    shutil.copy(f"{src}/{split}.h5", f"{dst}/{split}.h5")
    with h5py.File(f"{dst}/{split}.h5", "r+") as f:
        tracks = f["tracks"][...]
        for j in range(len(tracks)):
            tracks[j] = tracks[j][rng.permutation(tracks.shape[1])]
        f["tracks"][...] = tracks
for name in ("norm_dict.yaml", "class_dict.yaml"):
    shutil.copy(f"{src}/{name}", f"{dst}/{name}")
`
	if out, err := exec.Command(h5pyPython, "-c", script, src, dir).CombinedOutput(); err != nil {
		t.Fatalf("h5py: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "model.toml")
	if err := os.WriteFile(cfg, []byte(fixture.Tiny(dir, fixture.Options{Name: "GN2", NumTrain: 500, Seed: 9})), 0o644); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "run")
	trainRun(t, cfg, run)
	ex := export(t, run, filepath.Join(dir, "export", "GN2.onnx"), false)
	rep := validate(t, ex.Model, "")
	if !rep.Pass() {
		t.Fatalf("validate: %+v", rep.Outputs)
	}
	// The vectors hold each jet's valid tracks first.
	m, err := Open(graphtest.OpenRuntime(t), ex.Model, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	v, err := m.ReadVectors(ex.Vectors)
	if err != nil {
		t.Fatal(err)
	}
	moved := 0
	g := v.Groups[0]
	for j := 0; j < v.Jets; j++ {
		if g.N[j] > 0 && g.N[j] < g.MaxLen {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("no jet has both valid tracks and padding: the test proves nothing")
	}
}

// TestExportRefusesAndLeavesNothing checks the export's errors: each
// names what is wrong and leaves no file behind.
func TestExportRefusesAndLeavesNothing(t *testing.T) {
	_, run := trainedRun(t)
	for _, tc := range []struct {
		name string
		opts ExportOptions
		want string
	}{
		{"model name with an underscore", ExportOptions{Name: "GN2_v2"}, "contains '_' or '-'"},
		{"unknown task", ExportOptions{Tasks: []string{"track_type"}}, `no task "track_type"`},
		{"unknown output to rename", ExportOptions{Rename: map[string]string{"pl": "plight"}}, "no output Tiny_pl"},
		{"track selection", ExportOptions{TrackSelection: "tight"}, "not one ATLAS's loader recognises"},
		{"failing validation", ExportOptions{Tolerance: -1}, "does not reproduce"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := tc.opts
			opts.RunDir, opts.Out, opts.ValidationJets, opts.Runtime, opts.Checker = run, filepath.Join(dir, "model.onnx"), 50, graphtest.OpenRuntime(t), onnxcheck.Checker{}
			_, err := Export(context.Background(), opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("files left behind: %v", left)
			}
		})
	}
}

package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/gendata"
)

// saltConfigs are the configurations under testdata/saltconfigs, written
// in the forms Salt's shipped configurations use (a base.yaml beside a
// model file with anchors and merge keys, class_path/init_args, bare
// class names and the shorthand loss, input_map, classes from the
// training file's flavour_label attribute), each with what its converted
// configuration must hold.
var saltConfigs = []struct {
	file  string
	check func(t *testing.T, c *config.Config)
}{
	{"GN2.yaml", func(t *testing.T, c *config.Config) {
		want(t, "classes from the file", strings.Join(c.Model.Tasks[0].ClassNames, ","), "bjets,cjets,ujets,taujets")
		want(t, "vertexing origin label", c.Model.Tasks[2].OriginLabel, "ftagTruthOriginLabel")
	}},
	{"GN2emu.yaml", func(t *testing.T, c *config.Config) {
		want(t, "global variables", strings.Join(c.Data.Variables[config.GlobalVariables], ","), "mass,n_tracks")
		want(t, "init nets", len(c.Model.InitNets), 2)
		want(t, "batch of two devices", c.Data.BatchSize, 100)
		want(t, "vertexing dropout", c.Model.Tasks[2].Dropout, 0.1)
	}},
	{"GN2X.yaml", func(t *testing.T, c *config.Config) {
		want(t, "input_map", c.Data.InputMap["flow"], "flows")
		want(t, "registers", c.Model.Encoder.Registers, 4)
		want(t, "gated", c.Model.Encoder.Gated, true)
		want(t, "max_len of flow", c.Model.InitNets[1].MaxLen, 10)
	}},
	{"DL1.yaml", func(t *testing.T, c *config.Config) {
		want(t, "pooling", c.Model.Pooling.Kind, "none")
		want(t, "encoder layers", c.Model.Encoder.Layers, 0)
		want(t, "label_map", fmt.Sprint(c.Model.Tasks[0].LabelMap["15"]), "0")
		want(t, "activation", c.Model.InitNets[0].Activation, "Mish")
	}},
	{"dips.yaml", func(t *testing.T, c *config.Config) {
		want(t, "encoder layers", c.Model.Encoder.Layers, 0)
		want(t, "pooling", c.Model.Pooling.Kind, "attention")
		want(t, "selection", strings.Join(c.Data.Selections["tracks"], ","), "d0 < 3.5")
		want(t, "head dropout", c.Model.Tasks[0].Dropout, 0.1)
	}},
	{"regression_gaussian.yaml", func(t *testing.T, c *config.Config) {
		want(t, "kind", c.Model.Tasks[0].Kind, "gaussian_regression")
		want(t, "norm_params std", c.Model.Tasks[0].NormParams.Std[0], 30000.0)
		want(t, "track regression without context", *c.Model.Tasks[1].ContextSize, 0)
	}},
	{"regression_multi_target.yaml", func(t *testing.T, c *config.Config) {
		want(t, "conditions", len(c.Data.MultiTarget), 2)
		want(t, "custom target", c.Data.MultiTarget[1].CustomTarget, "pt_label_handle")
		want(t, "source", c.Data.MultiTarget[0].Source, "HadronConeExclTruthLabelPt")
		want(t, "operator", c.Data.MultiTarget[1].Opp, "!=")
	}},
	{"MaskFormer.yaml", func(t *testing.T, c *config.Config) {
		md := c.Model.MaskDecoder
		want(t, "objects", md.NumObjects, 5)
		want(t, "regression weight", md.LossConfig.LossWeights["regression"], 2.0)
		want(t, "regression targets", strings.Join(md.Regression.Targets, ","), "pt,Lxy,deta,dphi,mass")
		want(t, "regression task weight", *md.Regression.Weight, 0.5)
		want(t, "pt scaler", *md.Regression.Scaler["pt"].OpScale, 0.2)
		want(t, "Lxy scaler", md.Regression.Scaler["Lxy"].XOff, 1.0)
		want(t, "jet and track tasks", len(c.Model.Tasks), 2)
	}},
	{"GN3V01.yaml", func(t *testing.T, c *config.Config) {
		want(t, "optimizer", c.Training.Optimizer.Name, "lion")
		want(t, "loss weighting", c.Training.LossWeighting, "GLS")
		want(t, "tasks", len(c.Model.Tasks), 6)
		want(t, "norm type", c.Model.Encoder.NormType, "hybrid")
		want(t, "norm", c.Model.Encoder.Norm, "RMSNorm")
		want(t, "registers", c.Model.Encoder.Registers, 8)
		want(t, "denominator", strings.Join(c.Model.Tasks[4].TargetDenominators, ","), "pt_btagJes")
		want(t, "L1 loss", c.Model.Tasks[4].Loss, "L1Loss")
		want(t, "init nets", len(c.Model.InitNets), 3)
	}},
	{"Baseline_Xbb.yaml", func(t *testing.T, c *config.Config) {
		want(t, "pooling", c.Model.Pooling.Kind, "flatten")
		want(t, "flattened group", c.Model.Pooling.Input, "tracks")
		want(t, "max_len from num_inputs", c.Model.Pooling.MaxLen, 5)
		want(t, "init nets", len(c.Model.InitNets), 0)
		want(t, "encoder layers", c.Model.Encoder.Layers, 0)
		want(t, "head dropout", c.Model.Tasks[0].Dropout, 0.1)
	}},
	{"GN2_muP.yaml", func(t *testing.T, c *config.Config) {
		want(t, "init net mup", c.Model.InitNets[0].MuP, true)
		want(t, "encoder mup", c.Model.Encoder.MuP, true)
		if c.Model.MuPConfig == nil {
			t.Fatal("no [model.mup_config]")
		}
		want(t, "base width", c.Model.MuPConfig.BaseEmbedDim, 16)
	}},
}

func want[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

// TestSaltConfigurationsTrain is the acceptance of Salt's configurations
// as they are: each converts with import-salt, trains one epoch on
// generated files, and `salt-ort train` given the YAML itself writes the
// same resolved configuration as import-salt; the run then evaluates,
// exports and validates.
func TestSaltConfigurationsTrain(t *testing.T) {
	data := t.TempDir()
	if _, err := gendata.Generate(gendata.Config{Seed: 3, Train: 300, Val: 100, Test: 100, MaxTracks: 20, Flows: 10, Electrons: 4, TruthHadrons: 5}, data); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src, err := filepath.Glob("testdata/saltconfigs/*.yaml")
	if err != nil || len(src) == 0 {
		t.Fatalf("no configurations: %v", err)
	}
	for _, p := range src {
		text, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		text = bytes.ReplaceAll(text, []byte("{{DATA}}"), []byte(data))
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), text, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, sc := range saltConfigs {
		t.Run(sc.file, func(t *testing.T) {
			yaml := filepath.Join(dir, sc.file)
			imported := filepath.Join(t.TempDir(), "imported")
			out, errOut, code := inProcess(t, "import-salt", yaml, "--out", imported, "--device", "cpu")
			if code != 0 {
				t.Fatalf("import-salt exited %d:\n%s%s", code, out, errOut)
			}
			cfg, err := config.Load(filepath.Join(imported, "resolved.toml"))
			if err != nil {
				t.Fatal(err)
			}
			sc.check(t, cfg)
			trained := filepath.Join(t.TempDir(), "trained")
			out, errOut, code = inProcess(t, "train", yaml, "--out", trained, "--device", "cpu", "--quiet")
			if code != 0 {
				t.Fatalf("train %s exited %d:\n%s%s", sc.file, code, out, errOut)
			}
			if !strings.Contains(out, "for 1 epochs") {
				t.Errorf("train %s: %s", sc.file, out)
			}
			// The same configuration either way, the dictionaries aside
			// (import-salt copies them into its run directory; train
			// reads them where the configuration names them).
			a := resolvedWithoutDicts(t, filepath.Join(imported, "resolved.toml"))
			b := resolvedWithoutDicts(t, filepath.Join(trained, "resolved.toml"))
			if a != b {
				t.Errorf("train %s resolved another configuration than import-salt:\n--- import-salt\n%s\n--- train\n%s", sc.file, a, b)
			}
			// Every other door: eval, export and validate the trained run.
			if out, errOut, code := inProcess(t, "eval", trained, "--no-plots"); code != 0 {
				t.Fatalf("eval %s exited %d:\n%s%s", sc.file, code, out, errOut)
			}
			model := filepath.Join(t.TempDir(), "model.onnx")
			// ATLAS's loader reads the model name before the first '_'.
			name := strings.NewReplacer("_", "", ".yaml", "").Replace(sc.file)
			if out, errOut, code := inProcess(t, "export", trained, "-o", model, "--validation-jets", "32", "--name", name); code != 0 {
				t.Fatalf("export %s exited %d:\n%s%s", sc.file, code, out, errOut)
			}
			if out, errOut, code := inProcess(t, "validate", model); code != 0 {
				t.Fatalf("validate %s exited %d:\n%s%s", sc.file, code, out, errOut)
			}
		})
	}
}

// resolvedWithoutDicts reads a run's resolved.toml without its comment
// lines and the dictionary paths.
func resolvedWithoutDicts(t *testing.T, path string) string {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, l := range strings.Split(string(text), "\n") {
		if s := strings.TrimSpace(l); strings.HasPrefix(s, "#") || strings.HasPrefix(s, "norm_dict") || strings.HasPrefix(s, "class_dict") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

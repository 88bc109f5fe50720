package train

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/internal/testkit/fixture"
	"github.com/salt-ort/salt-ort/loader"
	"github.com/salt-ort/salt-ort/run"
)

// ftagConfig is a tiny configuration over ftag-style files in dir
// (train.h5, val.h5 as fixture.Ftag writes them), with ftag's truth label
// and Salt's class names; edit changes its text.
func ftagConfig(t *testing.T, dir string, edit func(string) string) *config.Config {
	t.Helper()
	text := `
[data]
train = ["train*.h5"]
val = ["val.h5"]
norm_dict = "norm.yaml"
class_dict = "class.yaml"
batch_size = 50
num_train = 200
[data.variables]
jets = ["pt_btagJes", "eta_btagJes"]
tracks = ["d0", "z0SinTheta", "leptonID"]
[model]
embed_dim = 8
[[model.init_nets]]
input = "tracks"
max_len = 0
hidden = [8]
[model.encoder]
layers = 1
heads = 2
out_dim = 8
[[model.tasks]]
name = "jets_classification"
kind = "jet_classification"
label = "HadronConeExclTruthLabelID"
class_names = ["bjets", "cjets", "ujets", "taujets"]
use_class_dict = true
hidden = [8]
[training]
epochs = 1
threads = 2
`
	if edit != nil {
		text = edit(text)
	}
	path := filepath.Join(dir, "model.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ftagData writes ftag-style training (two files) and validation files
// and their dictionaries into a new directory.
func ftagData(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	fixture.WriteFtag(t, filepath.Join(dir, "train_1.h5"), fixture.Ftag{Jets: 150, Tracks: 24, Seed: 1})
	fixture.WriteFtag(t, filepath.Join(dir, "train_2.h5"), fixture.Ftag{Jets: 150, Tracks: 24, Seed: 2})
	fixture.WriteFtag(t, filepath.Join(dir, "val.h5"), fixture.Ftag{Jets: 100, Tracks: 24, Seed: 3})
	c := ftagConfig(t, dir, nil)
	files, err := c.Files("train")
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.TaskLabel(c.Model.Tasks[0])
	if err != nil {
		t.Fatal(err)
	}
	r, err := loader.ComputeNormWith(loader.NormOptions{Files: files, Labels: []loader.Label{l},
		Groups: []loader.Group{{Name: "jets", Variables: c.Data.Variables["jets"]}, {Name: "tracks", Variables: c.Data.Variables["tracks"]}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := loader.WriteNormDict(filepath.Join(dir, "norm.yaml"), r.Norm); err != nil {
		t.Fatal(err)
	}
	if err := loader.WriteClassDict(filepath.Join(dir, "class.yaml"), r.Class); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestTrainOnFtagFiles trains on ftag-style files as they are, and checks
// what the configuration asks that the files cannot give: max_len = 0
// takes the files' length (recorded in resolved.toml with the files a
// pattern matched), a max_len or num_train beyond the files is reported,
// and a misspelt label is reported as a label, not a class_dict problem.
func TestTrainOnFtagFiles(t *testing.T) {
	dir := ftagData(t)
	rt := graphtest.OpenRuntime(t)
	for _, c := range []struct {
		name    string
		edit    func(string) string
		err     []string
		log     []string
		resolve []string
	}{
		{"as written", nil, nil, []string{"training on 200 jets of 2 files"},
			[]string{"max_len = 24", filepath.Join(dir, "train_1.h5"), filepath.Join(dir, "train_2.h5")}},
		{"more than the files have", func(s string) string {
			return strings.Replace(strings.Replace(s, "max_len = 0", "max_len = 30", 1), "num_train = 200", "num_train = 5000", 1)
		}, nil, []string{"note: data.num_train = 5000, but the training files hold 300 jets: using all 300",
			"note: model.init_nets.max_len = 30 for tracks, but the training files have 24 slots per jet: the last 6 slots are always padding"}, nil},
		{"jet selection", func(s string) string {
			return s + "[data.selections]\njets = [\"HadronConeExclTruthLabelID != 15\"]\ntracks = [\"d0 < 0.5\"]\n"
		}, nil, []string{"note: selections on jets (HadronConeExclTruthLabelID != 15): kept", "note: selections on tracks (d0 < 0.5): kept"}, nil},
		{"misspelt label", func(s string) string {
			return strings.Replace(s, `label = "HadronConeExclTruthLabelID"`, `label = "HadronConeExclTruthLabelId"`, 1)
		}, []string{"model.toml:25", "model.tasks.label", `"HadronConeExclTruthLabelId" is not a field`, `did you mean "HadronConeExclTruthLabelID"?`}, nil, nil},
		{"misspelt variable", func(s string) string { return strings.Replace(s, `"z0SinTheta"`, `"z0sintheta"`, 1) },
			[]string{"model.toml:11", "data.variables.tracks", `did you mean "z0SinTheta"?`, `tracks = ["d0", "z0SinTheta", "leptonID"]`}, nil, nil},
		{"tau jets without a class", func(s string) string {
			s = strings.Replace(s, "use_class_dict = true\n", "", 1)
			return strings.Replace(s, `["bjets", "cjets", "ujets", "taujets"]`, `["bjets", "cjets", "ujets"]`, 1)
		}, []string{"model.tasks.class_names", "HadronConeExclTruthLabelID = 15", "none of the classes bjets, cjets, ujets", "require_labels = false"}, nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := ftagConfig(t, dir, c.edit)
			var log bytes.Buffer
			runDir := filepath.Join(t.TempDir(), "run")
			_, err := Run(context.Background(), Options{Config: cfg, RunDir: runDir, Runtime: rt, Log: &log})
			if c.err != nil {
				if err == nil {
					t.Fatal("trained")
				}
				for _, w := range c.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "class_dict") && !strings.Contains(c.name, "tau") {
					t.Errorf("reported as a class_dict problem: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, log.String())
			}
			for _, w := range c.log {
				if !strings.Contains(log.String(), w) {
					t.Errorf("log lacks %q:\n%s", w, log.String())
				}
			}
			resolved, err := os.ReadFile(filepath.Join(runDir, run.ResolvedFile))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range c.resolve {
				if !strings.Contains(string(resolved), w) {
					t.Errorf("resolved.toml lacks %q:\n%s", w, resolved)
				}
			}
		})
	}
}

package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/gendata"
	"github.com/salt-ort/salt-ort/internal/testkit/fixture"
	"github.com/salt-ort/salt-ort/loader"
	"github.com/salt-ort/salt-ort/run"
)

// TestTrainClassNamesFromFile trains a configuration whose jet
// classification of flavour_label leaves class_names out: the names come
// from the training file's flavour_label attribute (gen-data writes it as
// the ftag preprocessing does), the log says so, and the run directory's
// resolved configuration lists them. A training file without the
// attribute is a configuration error naming the file, the dataset, the
// attribute, the key and the fix, and leaves no run directory.
func TestTrainClassNamesFromFile(t *testing.T) {
	data := t.TempDir()
	if _, err := gendata.Generate(gendata.Config{Seed: 8, Train: 200, Val: 100, Test: 50}, data); err != nil {
		t.Fatal(err)
	}
	const given = `class_names = ["b", "c", "u", "tau"]`
	base := fixture.Tiny(data, fixture.Options{Epochs: 1, NumTrain: 200, NoClassDict: true, JetTasksOnly: true})
	if !strings.Contains(base, given) {
		t.Fatalf("the tiny configuration no longer lists %s", given)
	}
	text := strings.Replace(base, given+"\n", "", 1)
	trainFile := filepath.Join(data, "train.h5")

	t.Run("from the file", func(t *testing.T) {
		cfg := fixture.WriteConfig(t, text)
		runDir := filepath.Join(t.TempDir(), "run")
		out, code := runApp(t, "train", cfg, "--out", runDir)
		if code != ExitOK {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		log, err := os.ReadFile(filepath.Join(runDir, run.LogFile))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{out, string(log)} {
			for _, w := range []string{"note: task jets_classification: class_names = [\"bjets\", \"cjets\", \"ujets\", \"taujets\"]", "flavour_label attribute", `dataset "jets"`, trainFile} {
				if !strings.Contains(s, w) {
					t.Errorf("log lacks %q:\n%s", w, s)
				}
			}
		}
		resolved, err := config.Load(filepath.Join(runDir, run.ResolvedFile))
		if err != nil {
			t.Fatal(err)
		}
		if got := resolved.Model.Tasks[0].ClassNames; !slices.Equal(got, gendata.FlavourNames()) {
			t.Errorf("resolved.toml: class_names %q, want %q", got, gendata.FlavourNames())
		}
		if len(resolved.Notes()) != 0 {
			t.Errorf("resolved.toml still leaves the class names to the file: %q", resolved.Notes())
		}
	})

	t.Run("no attribute", func(t *testing.T) {
		bare := filepath.Join(t.TempDir(), "bare.h5")
		w, err := loader.Create(bare)
		if err != nil {
			t.Fatal(err)
		}
		l, err := loader.NewRowLayout(gendata.JetFields()...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.CreateTable("jets", l, []int{0}, loader.TableOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		cfg := fixture.WriteConfig(t, strings.Replace(text, trainFile, bare, 1))
		runDir := filepath.Join(t.TempDir(), "run")
		out, code := runApp(t, "train", cfg, "--out", runDir)
		if code != ExitUsage {
			t.Fatalf("exit %d, want %d:\n%s", code, ExitUsage, out)
		}
		for _, w := range []string{cfg, "model.tasks.class_names", "task jets_classification", bare, `dataset "jets"`, "no flavour_label attribute", `class_names = ["bjets"`} {
			if !strings.Contains(out, w) {
				t.Errorf("error lacks %q:\n%s", w, out)
			}
		}
		if _, err := os.Stat(runDir); err == nil {
			t.Error("a failed start left its run directory")
		}
	})
}

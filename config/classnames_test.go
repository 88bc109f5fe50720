package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/loader"
)

// writeJets writes an HDF5 file with a jets-like dataset called dataset,
// and on it the string attribute attrs (name → values; nil for none).
func writeJets(t *testing.T, path, dataset string, attrs map[string][]string) {
	t.Helper()
	w, err := loader.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	l, err := loader.NewRowLayout(loader.Field{Name: "flavour_label", Type: loader.Int32}, loader.Field{Name: "pt", Type: loader.Float32})
	if err != nil {
		t.Fatal(err)
	}
	tab, err := w.CreateTable(dataset, l, []int{4}, loader.TableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for name, vals := range attrs {
		if err := tab.SetStringsAttr(name, vals); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestClassNamesFromFile checks that a jet classification of
// flavour_label without class_names takes them from the flavour_label
// attribute of the first training file's jet dataset, as Salt does, and
// that a file that cannot supply them is an error at
// model.tasks.class_names naming the file, the dataset and the fix.
func TestClassNamesFromFile(t *testing.T) {
	dir := t.TempDir()
	ftag := []string{"bjets", "cjets", "ujets", "taujets"}
	writeJets(t, filepath.Join(dir, "upp.h5"), "jets", map[string][]string{"flavour_label": ftag})
	writeJets(t, filepath.Join(dir, "mc_a.h5"), "jets", map[string][]string{"flavour_label": {"hbb", "hcc", "top", "qcd"}})
	writeJets(t, filepath.Join(dir, "mc_b.h5"), "jets", map[string][]string{"flavour_label": {"x", "y"}})
	writeJets(t, filepath.Join(dir, "large_r.h5"), "fatjets", map[string][]string{"flavour_label": {"hbb", "qcd"}})
	writeJets(t, filepath.Join(dir, "bare.h5"), "jets", map[string][]string{"other": {"a", "b"}})
	writeJets(t, filepath.Join(dir, "one.h5"), "jets", map[string][]string{"flavour_label": {"bjets"}})

	noNames := strings.Replace(minimal, "class_names = [\"b\", \"c\", \"u\"]\n", "", 1)
	with := func(train string, edits ...string) string {
		text := strings.Replace(noNames, `train = ["train.h5"]`, "train = ["+train+"]", 1)
		for i := 0; i+1 < len(edits); i += 2 {
			text = strings.Replace(text, edits[i], edits[i+1], 1)
		}
		return text
	}
	labelLine := 0
	for i, l := range strings.Split(noNames, "\n") {
		if l == `label = "flavour_label"` {
			labelLine = i + 1
		}
	}
	for _, c := range []struct {
		name    string
		text    string
		want    []string // class names
		note    []string // substrings of the note; nil: no note
		err     []string // substrings of the error
		errKey  string
		errLine int
	}{
		{name: "UPP file", text: with(`"upp.h5"`), want: ftag,
			note: []string{"task jets_classification", `class_names = ["bjets", "cjets", "ujets", "taujets"]`, "flavour_label attribute", `dataset "jets"`, filepath.Join(dir, "upp.h5"), "first training file"}},
		{name: "first file of a pattern", text: with(`"mc_*.h5", "upp.h5"`), want: []string{"hbb", "hcc", "top", "qcd"},
			note: []string{filepath.Join(dir, "mc_a.h5")}},
		{name: "jet dataset", text: with(`"large_r.h5"`, "[data.variables]\njets", "jet_dataset = \"fatjets\"\n[data.variables]\nfatjets"), want: []string{"hbb", "qcd"},
			note: []string{`dataset "fatjets"`}},
		{name: "class names given", text: with(`"mc_a.h5"`, `label = "flavour_label"`, "label = \"flavour_label\"\nclass_names = [\"b\", \"c\", \"u\", \"tau\"]"),
			want: []string{"b", "c", "u", "tau"}},
		{name: "no attribute", text: with(`"bare.h5"`), errKey: "model.tasks.class_names", errLine: labelLine,
			err: []string{"task jets_classification: class_names is not set", filepath.Join(dir, "bare.h5"), `dataset "jets"`, "no flavour_label attribute (it has other)",
				`class_names = ["bjets", "cjets", "ujets", "taujets"]`}},
		{name: "no file", text: with(`"absent.h5"`), errKey: "model.tasks.class_names", errLine: labelLine,
			err: []string{"class_names is not set", filepath.Join(dir, "absent.h5"), "no such file", "list the classes"}},
		{name: "no jet dataset", text: with(`"large_r.h5"`), errKey: "model.tasks.class_names",
			err: []string{`no dataset "jets"`, "fatjets", "list the classes"}},
		{name: "one name", text: with(`"one.h5"`), errKey: "model.tasks.class_names",
			err: []string{"names 1 classes", `"bjets"`, "at least 2", "list the classes"}},
		{name: "pattern matching nothing", text: with(`"none_*.h5"`), errKey: "data.train", err: []string{`"none_*.h5" matches no file`}},
		{name: "another label", text: with(`"upp.h5"`, `label = "flavour_label"`, `label = "HadronConeExclTruthLabelID"`), errKey: "model.tasks.class_names",
			err: []string{"at least 2 class names, got 0"}},
		{name: "label map", text: with(`"upp.h5"`, `label = "flavour_label"`, "label = \"flavour_label\"\n[model.tasks.label_map]\n0 = 0\n1 = 1"), errKey: "model.tasks.class_names",
			err: []string{"at least 2 class names, got 0"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse(filepath.Join(dir, "model.toml"), []byte(c.text))
			if c.err != nil {
				var ce *Error
				if !errors.As(err, &ce) {
					t.Fatalf("error %v (%T) is not a *Error", err, err)
				}
				for _, w := range c.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if ce.Key != c.errKey || (c.errLine != 0 && ce.Line != c.errLine) {
					t.Errorf("error at line %d, key %s; want line %d, key %s", ce.Line, ce.Key, c.errLine, c.errKey)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Model.Tasks[0].ClassNames; !slices.Equal(got, c.want) {
				t.Errorf("class names %q, want %q", got, c.want)
			}
			notes := cfg.Notes()
			if c.note == nil && len(notes) > 0 {
				t.Errorf("notes %q, want none", notes)
			}
			if c.note != nil {
				if len(notes) != 1 {
					t.Fatalf("notes %q, want one", notes)
				}
				for _, w := range c.note {
					if !strings.Contains(notes[0], w) {
						t.Errorf("note %q lacks %q", notes[0], w)
					}
				}
			}
			// The resolved configuration lists them, so that a run
			// directory needs no data file to know its classes.
			abs, err := cfg.Absolute()
			if err != nil {
				t.Fatal(err)
			}
			if len(abs.Notes()) != len(notes) {
				t.Errorf("Absolute dropped the notes")
			}
			enc, err := abs.Encode()
			if err != nil {
				t.Fatal(err)
			}
			resolved := filepath.Join(t.TempDir(), "resolved.toml")
			if err := os.WriteFile(resolved, enc, 0o644); err != nil {
				t.Fatal(err)
			}
			back, err := Load(resolved)
			if err != nil {
				t.Fatalf("%v\n%s", err, enc)
			}
			if got := back.Model.Tasks[0].ClassNames; !slices.Equal(got, c.want) || len(back.Notes()) != 0 {
				t.Errorf("resolved configuration: class names %q, notes %q", got, back.Notes())
			}
		})
	}
}

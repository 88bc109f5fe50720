package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/loader"
)

// TestGlobs expands patterns in the file lists into the files they
// match, sorted, as the resolved configuration of a run records them.
func TestGlobs(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"mc23_b.h5", "mc23_a.h5", "mc23_c.txt", "val.h5"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name             string
		train, val, test string
		want             map[string][]string
		err              []string
	}{
		{"pattern", `["mc23_*.h5"]`, `["val.h5"]`, `["mc23_?.h5"]`,
			map[string][]string{"train": {"mc23_a.h5", "mc23_b.h5"}, "val": {"val.h5"}, "test": {"mc23_a.h5", "mc23_b.h5"}}, nil},
		{"pattern and file", `["mc23_[b]*.h5", "val.h5"]`, `["val.h5"]`, `[]`,
			map[string][]string{"train": {"mc23_b.h5", "val.h5"}, "val": {"val.h5"}, "test": nil}, nil},
		{"test pattern matching nothing yet", `["mc23_*.h5"]`, `["val.h5"]`, `["later_*.h5"]`,
			map[string][]string{"test": {"later_*.h5"}}, nil},
		{"train pattern matching nothing", `["mc21_*.h5"]`, `["val.h5"]`, `[]`, nil,
			[]string{"model.toml:3", "data.train", `"mc21_*.h5" matches no file`}},
		{"val pattern matching nothing", `["mc23_*.h5"]`, `["val_*.h5"]`, `[]`, nil,
			[]string{"data.val", `"val_*.h5" matches no file`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			text := strings.Replace(strings.Replace(minimal, `train = ["train.h5"]`, "train = "+c.train+"\ntest = "+c.test, 1), `val = ["val.h5"]`, "val = "+c.val, 1)
			path := filepath.Join(dir, "model.toml")
			cfg, err := Parse(path, []byte(text))
			if err != nil {
				t.Fatal(err)
			}
			abs, err := cfg.Absolute()
			if c.err != nil {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range c.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{"train": abs.Data.Train, "val": abs.Data.Val, "test": abs.Data.Test}
			for split, want := range c.want {
				var full []string
				for _, f := range want {
					full = append(full, filepath.Join(dir, f))
				}
				if len(got[split])+len(full) > 0 && !reflect.DeepEqual(got[split], full) {
					t.Errorf("%s: %v, want %v", split, got[split], full)
				}
			}
			enc, err := abs.Encode()
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range c.want["train"] {
				if !strings.Contains(string(enc), filepath.Join(dir, f)) {
					t.Errorf("resolved configuration lacks %s:\n%s", f, enc)
				}
			}
		})
	}
}

// labelled is minimal with a task whose label and class names the cases
// set.
func labelled(label, classes, extra string) string {
	return strings.Replace(minimal, `label = "flavour_label"
class_names = ["b", "c", "u"]`, "label = \""+label+"\"\nclass_names = "+classes+"\n"+extra, 1)
}

// TestTaskLabel maps the files' truth labels to classes as Salt's
// label_map and ftag's flavour definitions do.
func TestTaskLabel(t *testing.T) {
	cone := "HadronConeExclTruthLabelID"
	eq := func(class int, v float64) loader.ClassRule {
		return loader.ClassRule{Class: class, Cuts: []loader.Cut{{Field: cone, Op: "==", Values: []float64{v}}}}
	}
	for _, c := range []struct {
		name    string
		text    string
		mapping map[int64]int
		rules   []loader.ClassRule
		ignore  bool
		field   string
		err     []string
		errLine int
		errKey  string
	}{
		{"label map to indices", labelled(cone, `["ujets", "cjets", "bjets"]`, "[model.tasks.label_map]\n0 = 0\n4 = 1\n5 = 2"),
			map[int64]int{0: 0, 4: 1, 5: 2}, nil, false, cone, nil, 0, ""},
		{"label map to names", labelled(cone, `["b", "light"]`, "require_labels = false\n[model.tasks.label_map]\n5 = \"b\"\n0 = \"light\"\n4 = \"light\""),
			map[int64]int{5: 0, 0: 1, 4: 1}, nil, true, cone, nil, 0, ""},
		{"Salt class names", labelled(cone, `["bjets", "cjets", "ujets", "taujets"]`, ""),
			nil, []loader.ClassRule{eq(0, 5), eq(1, 4), eq(2, 0), eq(3, 15)}, false, cone, nil, 0, ""},
		{"GN2 class names", labelled(cone, `["b", "c", "u", "tau"]`, ""),
			nil, []loader.ClassRule{eq(0, 5), eq(1, 4), eq(2, 0), eq(3, 15)}, false, cone, nil, 0, ""},
		{"labeller", labelled("", `["ghostbjets", "ghostsjets"]`, "use_labeller = true"),
			nil, []loader.ClassRule{
				{Class: 0, Cuts: []loader.Cut{{Field: "HadronGhostTruthLabelID", Op: "==", Values: []float64{5}}}},
				{Class: 1, Cuts: []loader.Cut{{Field: "HadronGhostTruthLabelID", Op: "==", Values: []float64{0}}, {Field: "PartonTruthLabelID", Op: "==", Values: []float64{3}}}},
			}, false, "flavour_label", nil, 0, ""},
		{"indices as stored", labelled("flavour_label", `["bjets", "cjets", "ujets"]`, ""), nil, nil, false, "flavour_label", nil, 0, ""},
		{"label map key", labelled(cone, `["b", "c"]`, "[model.tasks.label_map]\nfive = 0\n4 = 1"), nil, nil, false, "",
			[]string{`key "five" is not an integer`}, 17, "model.tasks.label_map"},
		{"label map class", labelled(cone, `["b", "c"]`, "[model.tasks.label_map]\n5 = \"bjets\"\n4 = 1"), nil, nil, false, "",
			[]string{`5 = "bjets" is not one of class_names (b, c)`}, 17, "model.tasks.label_map"},
		{"label map index", labelled(cone, `["b", "c"]`, "[model.tasks.label_map]\n5 = 0\n4 = 2"), nil, nil, false, "",
			[]string{"4 = 2", "0..1"}, 17, "model.tasks.label_map"},
		{"class without value", labelled(cone, `["b", "c", "u"]`, "[model.tasks.label_map]\n5 = 0\n4 = 1"), nil, nil, false, "",
			[]string{"no value maps to class u"}, 17, "model.tasks.label_map"},
		{"labeller with unknown class", labelled("", `["bjet", "cjets"]`, "use_labeller = true"), nil, nil, false, "",
			[]string{`"bjet" is not one`, `did you mean "bjets"?`}, 0, "model.tasks.class_names"},
		{"label map on a regression", strings.Replace(minimal, "[[model.tasks]]", "[[model.tasks]]\nname = \"pt\"\nkind = \"regression\"\ntargets = [\"pt\"]\n[model.tasks.label_map]\n1 = 0\n[[model.tasks]]", 1),
			nil, nil, false, "", []string{"label_map and use_labeller belong to classification tasks"}, 0, "model.tasks.label_map"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse("minimal.toml", []byte(c.text))
			if c.err != nil {
				var ce *Error
				if !errors.As(err, &ce) {
					t.Fatalf("error %v is not a *Error", err)
				}
				for _, w := range c.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if ce.Key != c.errKey || (c.errLine != 0 && ce.Line != c.errLine) {
					t.Errorf("error at line %d key %s, want %d %s", ce.Line, ce.Key, c.errLine, c.errKey)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			task := cfg.Model.Tasks[len(cfg.Model.Tasks)-1]
			l, err := cfg.TaskLabel(task)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(l.Map, c.mapping) || !reflect.DeepEqual(l.Rules, c.rules) || l.IgnoreUnmatched != c.ignore || l.Field != c.field ||
				l.NumClasses != len(task.ClassNames) || l.Dataset != "jets" {
				t.Errorf("label %+v", l)
			}
		})
	}
}

// TestDataVariables covers the data keys of the issue: selections, global
// variables with attach_global, and max_len = 0.
func TestDataVariables(t *testing.T) {
	withTracks := func(extra string) string {
		return strings.Replace(minimal, "tracks = [\"d0\"]", "tracks = [\"d0\", \"z0\"]\n"+extra, 1)
	}
	for _, c := range []struct {
		name  string
		text  string
		err   []string
		check func(t *testing.T, c *Config)
	}{
		{"selections", minimal + "[data.selections]\ntracks = [\"d0 < 3.5\", \"z0 in [1, 2]\"]\njets = [\"pt > 20e3\"]\n", nil, func(t *testing.T, c *Config) {
			sel, err := c.LoaderSelections()
			if err != nil || len(sel["tracks"]) != 2 || len(sel["jets"]) != 1 || sel["jets"][0].String() != "pt > 20000" {
				t.Errorf("selections %v, %v", sel, err)
			}
		}},
		{"bad cut", minimal + "[data.selections]\ntracks = [\"d0 <\"]\n", []string{"minimal.toml:18", "data.selections.tracks", `cut "d0 <"`}, nil},
		{"selection on an unread dataset", minimal + "[data.selections]\nhits = [\"x < 1\"]\n", []string{"data.selections", `"hits"`}, nil},
		{"global variables", withTracks("global = [\"softMuon_pt\", \"pt\"]"), nil, func(t *testing.T, c *Config) {
			s, err := c.Spec(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.JetVars, []string{"pt", "softMuon_pt"}) || !reflect.DeepEqual(s.GlobalVars, []string{"softMuon_pt", "pt"}) ||
				!reflect.DeepEqual(s.AttachVars, []string{"pt"}) || s.Inputs[0].NoJetVars {
				t.Errorf("jet variables %v, global %v, attached %v", s.JetVars, s.GlobalVars, s.AttachVars)
			}
		}},
		{"global variables only", strings.Replace(minimal, "jets = [\"pt\"]", "global = [\"pt\"]", 1), nil, func(t *testing.T, c *Config) {
			s, err := c.Spec(nil)
			if err != nil || !reflect.DeepEqual(s.JetVars, []string{"pt"}) || s.AttachVars == nil || len(s.AttachVars) != 0 {
				t.Errorf("%+v, %v", s, err)
			}
		}},
		{"attach_global = false", strings.Replace(minimal, "max_len = 10", "max_len = 10\nattach_global = false", 1), nil, func(t *testing.T, c *Config) {
			s, err := c.Spec(nil)
			if err != nil || !s.Inputs[0].NoJetVars {
				t.Errorf("%+v, %v", s.Inputs, err)
			}
		}},
		{"input_size counts the global variables", withTracks("global = [\"softMuon_pt\"]") + "input_size = 128\n", []string{"input_size 128", "129 features", "1 global variables"}, nil},
		{"max_len = 0", strings.Replace(minimal, "max_len = 10", "max_len = 0", 1), nil, func(t *testing.T, c *Config) {
			_, err := c.Spec(nil)
			if err == nil || !strings.Contains(err.Error(), "model.init_nets.max_len") || !strings.Contains(err.Error(), "training files' length") {
				t.Errorf("Spec with max_len 0: %v", err)
			}
		}},
		{"negative max_len", strings.Replace(minimal, "max_len = 10", "max_len = -1", 1), []string{"model.init_nets.max_len", "0 for the training files' length"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse("minimal.toml", []byte(c.text))
			if c.err != nil {
				if err == nil {
					t.Fatal("accepted")
				}
				for _, w := range c.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, cfg)
		})
	}
}

// TestDataError rewrites the reader's errors about the configured fields
// into the key and line to change.
func TestDataError(t *testing.T) {
	text := strings.Replace(minimal, `tracks = ["d0"]`, `tracks = ["d00", "z0SinTheta"]`, 1)
	text = strings.Replace(text, `label = "flavour_label"`, `label = "flavor_label"`, 1)
	cfg, err := Parse("minimal.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		in   error
		line int
		want []string
	}{
		{"misspelt variable", &loader.FieldError{File: "f.h5", Dataset: "tracks", Role: "variable", Group: "tracks", Name: "d00", Field: "d00", Nearest: "d0", Missing: true},
			8, []string{"minimal.toml:8", "data.variables.tracks", `variable "d00"`, `did you mean "d0"?`, `tracks = ["d0", "z0SinTheta"]`, "f.h5"}},
		{"misspelt label", &loader.FieldError{File: "f.h5", Dataset: "jets", Role: "label", Group: "jets_classification", Name: "flavor_label", Field: "flavor_label", Nearest: "flavour_label", Missing: true},
			15, []string{"model.tasks.label", `label field "flavor_label"`, `did you mean "flavour_label"?`}},
		{"truth values as class indices", &loader.LabelError{File: "f.h5", Dataset: "jets", Label: "jets_classification", Field: "flavor_label", Row: 7, Entry: -1, Value: 4, NumClasses: 3},
			15, []string{"model.tasks.label", "holds 4 at jet 7", "0..2", "label_map", "class_names"}},
		{"unmatched value", &loader.LabelError{File: "f.h5", Dataset: "jets", Label: "jets_classification", Field: "HadronConeExclTruthLabelID", Row: 2, Entry: -1,
			Values: "HadronConeExclTruthLabelID = 15", Classes: []string{"b", "c", "u"}, NumClasses: 3, Unmatched: true},
			16, []string{"model.tasks.class_names", "HadronConeExclTruthLabelID = 15", `"HadronConeExclTruthLabelID != 15"`, "require_labels = false"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := cfg.DataError(c.in)
			var m *Mismatch
			if !errors.As(err, &m) || !errors.Is(err, c.in) {
				t.Fatalf("%T %v", err, err)
			}
			var ce *Error
			if errors.As(err, &ce) {
				t.Error("a mismatch of data and configuration reads as a configuration error")
			}
			if m.At.Line != c.line {
				t.Errorf("line %d, want %d: %v", m.At.Line, c.line, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	other := errors.New("disk on fire")
	if cfg.DataError(other) != other {
		t.Error("an unrelated error was rewritten")
	}
}

// TestLabellerClassDict looks a labeller task's class weights up under
// the field salt-ort norm writes them for: flavour_label.
func TestLabellerClassDict(t *testing.T) {
	text := labelled("", `["ghostbjets", "ghostcjets"]`, "use_labeller = true\nuse_class_dict = true")
	text = strings.Replace(text, `norm_dict = "norm.yaml"`, "norm_dict = \"norm.yaml\"\nclass_dict = \"class.yaml\"", 1)
	cfg, err := Parse("minimal.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	s, err := cfg.Spec(func(ds, field string) ([]float64, error) {
		asked = append(asked, ds+"."+field)
		return []float64{1, 3}, nil
	})
	if err != nil || !reflect.DeepEqual(asked, []string{"jets.flavour_label"}) || !reflect.DeepEqual(s.Tasks[0].ClassWeights, []float64{1, 3}) {
		t.Errorf("asked for %v, weights %v, %v", asked, s.Tasks, err)
	}
	if w, err := cfg.UniformClassWeights("jets", "flavour_label"); err != nil || len(w) != 2 {
		t.Errorf("uniform weights %v, %v", w, err)
	}
}

// TestAbsoluteFromRelativePath resolves the data files of a configuration
// read through a relative path with a directory (salt-ort train
// examples/model.toml), once: relative to the configuration's directory.
func TestAbsoluteFromRelativePath(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"examples", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"data/train.h5", "data/val.h5"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	text := strings.Replace(strings.Replace(minimal, `train = ["train.h5"]`, `train = ["../data/train.h5"]`, 1), `val = ["val.h5"]`, `val = ["../data/val.h5"]`, 1)
	cfg, err := Parse(filepath.Join("examples", "model.toml"), []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	abs, err := cfg.Absolute()
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "data", "train.h5")
	if len(abs.Data.Train) != 1 || abs.Data.Train[0] != want {
		t.Errorf("train files %v, want [%s]", abs.Data.Train, want)
	}
}

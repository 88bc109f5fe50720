package config

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/loader"
)

func loadExample(t *testing.T, name string) *Config {
	t.Helper()
	c, err := Load("../examples/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestExamplesParse(t *testing.T) {
	for _, name := range []string{"gn2.toml", "gn2-small.toml", "gn2emu.toml", "dl1.toml", "r21xbb.toml", "gn2x.toml", "gn2-edges.toml", "maskformer.toml"} {
		c := loadExample(t, name)
		if c.Model.Flattens() {
			// The flatten model reads the norm dict, which gen-data
			// writes; a unit normalisation stands in for it.
			unit := map[string]loader.NormEntry{}
			for _, v := range c.Data.Variables[c.Model.Pooling.Input] {
				unit[v] = loader.NormEntry{Mean: 0, Std: 1}
			}
			c.SetNormDict(loader.NormDict{c.Model.Pooling.Input: unit})
		}
		uniform := func(ds, field string) ([]float64, error) {
			n := map[string]int{"flavour_label": 4, "ftagTruthOriginLabel": 8}[field]
			w := make([]float64, n)
			for i := range w {
				w[i] = 1
			}
			return w, nil
		}
		if _, err := c.Spec(uniform); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestGN2ExampleIsGN2 checks that examples/gn2.toml describes the model of
// the spec that model.GN2 builds.
func TestGN2ExampleIsGN2(t *testing.T) {
	c := loadExample(t, "gn2.toml")
	got, err := c.Spec(func(string, string) ([]float64, error) { return nil, nil })
	if err == nil {
		t.Fatal("empty class weights accepted")
	}
	for i := range c.Model.Tasks {
		c.Model.Tasks[i].UseClassDict = false
	}
	got, err = c.Spec(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := model.GN2()
	want.Tasks[2].OriginWeighting = true
	if !reflect.DeepEqual(got, want) {
		t.Errorf("examples/gn2.toml:\n%+v\nmodel.GN2():\n%+v", got, want)
	}
}

const minimal = `
[data]
train = ["train.h5"]
val = ["val.h5"]
norm_dict = "norm.yaml"
[data.variables]
jets = ["pt"]
tracks = ["d0"]
[[model.init_nets]]
input = "tracks"
max_len = 10
[[model.tasks]]
name = "jets_classification"
kind = "jet_classification"
label = "flavour_label"
class_names = ["b", "c", "u"]
`

func TestMinimalDefaults(t *testing.T) {
	c, err := Parse("minimal.toml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.Training.Epochs != 40 || c.Model.EmbedDim != 256 || *c.Model.Tasks[0].Weight != 1 || c.Model.Tasks[0].Activation != "ReLU" {
		t.Errorf("defaults not applied: %+v", c)
	}
	if got := c.Resolve("train.h5"); got != "train.h5" {
		t.Errorf("Resolve = %q", got)
	}
	enc, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("resolved.toml", enc)
	if err != nil {
		t.Fatalf("resolved config does not parse: %v\n%s", err, enc)
	}
	if !reflect.DeepEqual(back.Model, c.Model) || !reflect.DeepEqual(back.Training, c.Training) {
		t.Error("resolved config does not round-trip")
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name     string
		text     string
		wantLine int
		want     []string
	}{
		{"malformed", minimal + "\n[training\nepochs = 3\n", 19, []string{"minimal.toml:19"}},
		{"wrong type", minimal + "[training]\nepochs = \"three\"\n", 18, []string{"training.epochs", "string"}},
		{"unknown key", minimal + "[training]\nepohcs = 3\n", 18, []string{"training.epohcs", `did you mean "epochs"`}},
		{"unknown task key", strings.Replace(minimal, `label = "flavour_label"`, "label = \"flavour_label\"\nwieght = 2.0", 1), 16, []string{"model.tasks.wieght", `"weight"`}},
		{"unknown table", minimal + "[trainig]\nepochs = 3\n", 17, []string{"trainig", `"training"`}},
		{"heads", minimal + "[model.encoder]\nheads = 7\n", 18, []string{"model.encoder.heads", "divisible"}},
		{"output size", strings.Replace(minimal, `class_names = ["b", "c", "u"]`, "class_names = [\"b\", \"c\", \"u\"]\noutput_size = 4", 1), 17, []string{"output_size 4", "3 outputs"}},
		{"input size", strings.Replace(minimal, `class_names = ["b", "c", "u"]`, "class_names = [\"b\", \"c\", \"u\"]\ninput_size = 256", 1), 17, []string{"input_size 256", "128"}},
		{"no norm dict", strings.Replace(minimal, `norm_dict = "norm.yaml"`, "", 1), 0, []string{"data.norm_dict", "salt-ort norm"}},
		{"class dict missing", strings.Replace(minimal, `class_names = ["b", "c", "u"]`, "class_names = [\"b\", \"c\", \"u\"]\nuse_class_dict = true", 1), 0, []string{"data.class_dict"}},
		{"orphan variables", strings.Replace(minimal, `tracks = ["d0"]`, "tracks = [\"d0\"]\nhits = [\"x\"]", 1), 0, []string{`"hits"`, "init_nets"}},
		{"track task input", minimal + "[[model.tasks]]\nname = \"origin\"\nkind = \"track_classification\"\ninput = \"hits\"\nlabel = \"o\"\nclass_names = [\"a\", \"b\"]\n", 20, []string{"origin", `"hits"`}},
		{"precision", minimal + "[training]\nprecision = \"fp16\"\n", 18, []string{"training.precision", "fp32"}},
		{"monitor", minimal + "[training.checkpoints]\nmonitor = \"val_auc\"\n", 18, []string{"monitor", "val_auc"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("minimal.toml", []byte(c.text))
			if err == nil {
				t.Fatal("accepted")
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *config.Error: %v", err, err)
			}
			if ce.File != "minimal.toml" || (c.wantLine != 0 && ce.Line != c.wantLine) {
				t.Errorf("error at %s:%d, want minimal.toml:%d (%v)", ce.File, ce.Line, c.wantLine, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("no/such/model.toml")
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "no/such/model.toml") {
		t.Fatalf("err = %v", err)
	}
}

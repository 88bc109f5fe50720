package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/internal/testkit/fixture"
	"github.com/salt-ort/salt-ort/loader"
)

// TestNormCommand runs `salt-ort norm` on ftag-style files: with a
// configuration it reads that configuration's variables and max_len (not
// the 40 tracks of the flag's default), lists every constant variable at
// once, and says how to go on from a NaN in the configuration's terms.
func TestNormCommand(t *testing.T) {
	dir := t.TempDir()
	fixture.WriteFtag(t, filepath.Join(dir, "train.h5"), fixture.Ftag{Jets: 300, Tracks: 40, Seed: 4})
	fixture.WriteFtag(t, filepath.Join(dir, "nan.h5"), fixture.Ftag{Jets: 300, Tracks: 40, Seed: 4, NaN: true})
	config := func(maxLen, extra string) string {
		text := strings.Replace(ftagModel, `train = ["mc23_part*.h5"]`, `train = ["train.h5"]`, 1)
		text = strings.Replace(text, "max_len = 0", "max_len = "+maxLen, 1)
		text = strings.Replace(text, `, "numberOfPixelHits", "numberOfSCTHits", "numberOfPixelHoles"`, "", 1)
		return text + extra
	}
	// What the statistics over the first 5 and all 40 track slots are.
	d0 := func(maxLen int) loader.NormEntry {
		r, err := loader.ComputeNormWith(loader.NormOptions{Files: []string{filepath.Join(dir, "train.h5")},
			Groups:     []loader.Group{{Name: "jets", Variables: []string{"pt_btagJes"}}, {Name: "tracks", Variables: []string{"d0"}, MaxLen: maxLen}},
			Selections: map[string][]loader.Cut{"jets": {{Field: "pt_btagJes", Op: ">", Values: []float64{25e3}}}, "tracks": {{Field: "d0", Op: "<", Values: []float64{3.5}}}}})
		if err != nil {
			t.Fatal(err)
		}
		return r.Norm["tracks"]["d0"]
	}
	first5, all := d0(5), d0(40)
	if first5 == all {
		t.Fatal("the first 5 tracks have the statistics of all 40: the test cannot tell them apart")
	}
	// A NaN fails the d0 cut, as in ftag's cuts: look at it without.
	nan := strings.Replace(strings.Replace(config("5", ""), `"train.h5"`, `"nan.h5"`, 1), "tracks = [\"d0 < 3.5\"]\n", "", 1)
	for _, c := range []struct {
		name   string
		config string
		args   []string
		code   int
		want   []string
		d0     *loader.NormEntry
	}{
		{"max_len from the configuration", config("5", ""), nil, 0, []string{"wrote dicts/norm_dict.yaml", "wrote dicts/class_dict.yaml"}, &first5},
		{"max_len = 0 is the file's length", config("0", ""), nil, 0, nil, &all},
		{"--max-tracks with --config", config("5", ""), []string{"--max-tracks", "40"}, ExitUsage, []string{"--max-tracks and --config"}, nil},
		{"NaN dropped by the d0 cut", strings.Replace(config("5", ""), `"train.h5"`, `"nan.h5"`, 1), nil, 0, nil, nil},
		{"NaN", nan, nil, ExitFailure,
			[]string{"nan.h5", `field "d0"`, "NaN", `data.non_finite = "zero"`, "--non-finite zero"}, nil},
		{"NaN as zero", nan, []string{"--non-finite", "zero"}, 0, []string{"1 non-finite values counted as 0"}, nil},
		{"NaN as zero by the configuration", strings.Replace(nan, "batch_size = 50", "batch_size = 50\nnon_finite = \"zero\"", 1),
			nil, 0, []string{"1 non-finite values counted as 0"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := os.MkdirAll(filepath.Join(dir, "dicts"), 0o755); err != nil {
				t.Fatal(err)
			}
			os.Remove(filepath.Join(dir, "dicts", "norm_dict.yaml"))
			if err := os.WriteFile(filepath.Join(dir, "model.toml"), []byte(c.config), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Chdir(dir)
			out, errs, code := inProcess(t, append([]string{"norm", "--config", "model.toml"}, c.args...)...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, c.code, out, errs)
			}
			for _, w := range c.want {
				if !strings.Contains(out+errs, w) {
					t.Errorf("output lacks %q:\n%s%s", w, out, errs)
				}
			}
			if c.d0 == nil {
				return
			}
			nd, err := loader.ReadNormDict(filepath.Join(dir, "dicts", "norm_dict.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if got := nd["tracks"]["d0"]; got != *c.d0 {
				t.Errorf("d0 %+v, want %+v (first 5 tracks %+v, all %+v)", got, *c.d0, first5, all)
			}
			if _, ok := nd["jets"]["softMuon_pt"]; !ok {
				t.Error("the global variable has no norm entry")
			}
		})
	}
}

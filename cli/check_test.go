package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/gendata"
)

// TestCheckBadInputs runs `salt-ort check` on a good configuration and on
// broken variants of its data and configuration, and checks each answer:
// the exit code and the file, field or fix the message names.
func TestCheckBadInputs(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	if _, err := gendata.Generate(gendata.Config{Seed: 5, Train: 1200, Val: 200, Test: 100}, data); err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(data, "truncated.h5")
	whole, err := os.ReadFile(filepath.Join(data, "train.h5"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(truncated, whole[:len(whole)/2], 0o644)
	empty := t.TempDir()
	if _, err := gendata.Generate(gendata.Config{Seed: 5, Train: 0, NoDicts: true}, empty); err != nil {
		t.Fatal(err)
	}
	normMissing := filepath.Join(data, "norm_missing.yaml")
	norm, _ := os.ReadFile(filepath.Join(data, "norm_dict.yaml"))
	os.WriteFile(normMissing, []byte(strings.Replace(string(norm), "  d0:", "  d0_renamed:", 1)), 0o644)
	normZero := filepath.Join(data, "norm_zero.yaml")
	var zeroed []string
	for _, line := range strings.Split(string(norm), "\n") {
		if strings.HasPrefix(line, "  d0: {") {
			line = "  d0: {mean: 0.0, std: 0.0}"
		}
		zeroed = append(zeroed, line)
	}
	os.WriteFile(normZero, []byte(strings.Join(zeroed, "\n")), 0o644)

	// A copy with a NaN in a track input, made the way physicists edit
	// files (h5py), when Debian's python3-h5py is there.
	withNaN := filepath.Join(data, "nan.h5")
	script := `import h5py, shutil, sys
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "r+") as f:
    row = f["tracks"][3]
    row["d0"][0] = float("nan")
    f["tracks"][3] = row
`
	haveNaN := exec.Command("/usr/bin/python3", "-c", script, filepath.Join(data, "train.h5"), withNaN).Run() == nil

	base := tinyModel(data)
	cases := []struct {
		name string
		edit func(string) string
		code int
		want []string
	}{
		{"good", func(s string) string { return s }, ExitOK, []string{"ok", "train"}},
		{"missing variable", func(s string) string { return strings.Replace(s, `"z0SinTheta"`, `"z0SinTheta_typo"`, 1) }, ExitFailure, []string{"train.h5", "z0SinTheta_typo"}},
		{"missing dataset", func(s string) string { return strings.Replace(s, `input = "tracks"`, `input = "hits"`, 1) }, ExitUsage, []string{"hits"}},
		{"labels beyond the classes", func(s string) string {
			return strings.Replace(s, `class_names = ["b", "c", "u", "tau"]`, `class_names = ["b", "c", "u"]`, 1)
		}, ExitFailure, []string{"flavour_label", "class_names"}},
		{"truncated file", func(s string) string { return strings.Replace(s, data+"/train.h5", truncated, 1) }, ExitFailure, []string{"truncated.h5"}},
		{"empty file", func(s string) string { return strings.Replace(s, data+"/train.h5", empty+"/train.h5", 1) }, ExitFailure, []string{"no jets"}},
		{"missing file", func(s string) string { return strings.Replace(s, data+"/train.h5", data+"/nope.h5", 1) }, ExitFailure, []string{"nope.h5"}},
		{"norm dict lacks a variable", func(s string) string { return strings.Replace(s, data+"/norm_dict.yaml", normMissing, 1) }, ExitFailure, []string{"d0"}},
		{"zero std", func(s string) string { return strings.Replace(s, data+"/norm_dict.yaml", normZero, 1) }, ExitFailure, []string{"zero std"}},
		{"NaN input", func(s string) string { return strings.Replace(s, data+"/train.h5", withNaN, 1) }, ExitFailure, []string{"nan.h5", "d0", "jet 3"}},
		{"unknown key", func(s string) string { return s + "\n[training.optimizer]\nweight_decy = 0.1\n" }, ExitUsage, []string{"weight_decy", `"weight_decay"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "NaN input" && !haveNaN {
				t.Skip("python3-h5py is not installed (apt-get install python3-h5py, or make deps)")
			}
			cfg := filepath.Join(t.TempDir(), "model.toml")
			os.WriteFile(cfg, []byte(c.edit(base)), 0o644)
			out, err := exec.Command(bin, "check", cfg).CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != c.code {
				t.Fatalf("exit %d, want %d:\n%s", code, c.code, out)
			}
			for _, w := range c.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output does not mention %q:\n%s", w, out)
				}
			}
		})
	}
}

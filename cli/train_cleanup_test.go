package cli

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/gendata"
	"github.com/salt-ort/salt-ort/internal/testkit/fixture"
	"github.com/urfave/cli/v2"
)

// runApp runs the salt-ort application in this process and returns its
// output and exit code.
func runApp(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	app := App(&out, &out)
	app.ExitErrHandler = func(*cli.Context, error) {} // no os.Exit
	err := app.Run(Interspersed(app, append([]string{"salt-ort"}, args...)))
	var ec cli.ExitCoder
	switch {
	case err == nil:
		return out.String(), ExitOK
	case errors.As(err, &ec):
		return out.String() + err.Error(), ec.ExitCode()
	default:
		return out.String() + err.Error(), ExitUsage
	}
}

// TestFailedTrainRemovesItsRunDir checks what a failed `salt-ort train`
// leaves: a run directory it created and that has no checkpoint is
// removed, so the same command line runs once the input is fixed; one
// that has a checkpoint (the starting point, written after the first
// validation) stays to be resumed, and a directory that was there before
// stays.
func TestFailedTrainRemovesItsRunDir(t *testing.T) {
	data := t.TempDir()
	if _, err := gendata.Generate(gendata.Config{Seed: 8, Train: 200, Val: 100, Test: 50}, data); err != nil {
		t.Fatal(err)
	}
	// A training file with a label beyond the classes in jet 150: training
	// fails in its first epoch, after the starting point's checkpoint.
	badLabel := filepath.Join(data, "bad_label.h5")
	script := `import h5py, shutil, sys
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "r+") as f:
    row = f["jets"][150]
    row["flavour_label"] = 7
    f["jets"][150] = row
`
	if out, err := exec.Command("/usr/bin/python3", "-c", script, filepath.Join(data, "train.h5"), badLabel).CombinedOutput(); err != nil {
		t.Fatalf("h5py (`make deps` installs python3-h5py): %v\n%s", err, out)
	}
	base := fixture.Tiny(data, fixture.Options{Epochs: 1, NumTrain: 200, NoClassDict: true})
	cases := []struct {
		name     string
		edit     func(string) string
		existing bool // the run directory exists before
		kept     bool // and is there after
		want     string
	}{
		{"missing train file", func(s string) string { return strings.Replace(s, "train.h5", "absent.h5", 1) }, false, false, "absent.h5"},
		{"missing train file, directory made beforehand", func(s string) string { return strings.Replace(s, "train.h5", "absent.h5", 1) }, true, true, "absent.h5"},
		{"a label beyond the classes, after the first checkpoint", func(s string) string {
			return strings.Replace(s, "train.h5", "bad_label.h5", 1)
		}, false, true, "class_names"},
		{"labels beyond the classes in the validation split, before it", func(s string) string {
			return strings.Replace(s, `class_names = ["b", "c", "u", "tau"]`, `class_names = ["b", "c", "u"]`, 1)
		}, false, false, "class_names"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := fixture.WriteConfig(t, c.edit(base))
			run := filepath.Join(t.TempDir(), "run")
			if c.existing {
				if err := os.Mkdir(run, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			out, code := runApp(t, "train", cfg, "--out", run, "--quiet")
			if code != ExitFailure || !strings.Contains(out, c.want) {
				t.Fatalf("exit %d, want 1 naming %q:\n%s", code, c.want, out)
			}
			_, err := os.Stat(run)
			if kept := err == nil; kept != c.kept {
				t.Errorf("run directory kept: %v, want %v", kept, c.kept)
			}
		})
	}
}

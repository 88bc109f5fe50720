package evaluate_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	saltcli "github.com/salt-ort/salt-ort/cli"
	"github.com/salt-ort/salt-ort/evaluate"
	"github.com/urfave/cli/v2"
)

// runCLI runs salt-ort in process with args (flags may follow the
// positional arguments, as main arranges) and returns its output and the
// exit code it would end with.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	app := saltcli.App(&out, &errb)
	exiter, errWriter := cli.OsExiter, cli.ErrWriter
	defer func() { cli.OsExiter, cli.ErrWriter = exiter, errWriter }()
	cli.OsExiter = func(c int) { code = c }
	cli.ErrWriter = &errb
	if err := app.Run(saltcli.Interspersed(app, append([]string{"salt-ort"}, args...))); err != nil && code == 0 {
		code = saltcli.ExitUsage // as cmd/salt-ort does for parse errors
	}
	return out.String(), errb.String(), code
}

// TestEvalCommand runs `salt-ort eval` end to end on the fixture run, then
// --compare, and the usage and data errors with their exit codes.
func TestEvalCommand(t *testing.T) {
	run, _ := evaluate.TrainedRunForTest(t)
	dir := t.TempDir()
	out, errs, code := runCLI(t, "eval", run, "--out", dir, "--threads", "2")
	if code != 0 {
		t.Fatalf("exit code %d\n%s", code, errs)
	}
	t.Log("\n" + out)
	for _, want := range []string{"b-eff", "c-rej", "light-rej", "85%", "AUC", "track_origin: accuracy", "track_vertexing: pair efficiency", "jet_eta eta: bias"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, f := range []string{"test.h5", "test.json", "test_disc_b.png", "test_roc.png", "loss.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}

	cmpDir := t.TempDir()
	out, errs, code = runCLI(t, "eval", "--compare", run, run, "--out", cmpDir, "--threads", "2", "--fc", "0.1")
	if code != 0 {
		t.Fatalf("--compare: exit code %d\n%s", code, errs)
	}
	if !strings.Contains(out, "rejection ratio B/A") || !strings.Contains(out, "f_c = 0.1") || !strings.Contains(out, "light:  60% 1.000") {
		t.Errorf("--compare output:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(cmpDir, "compare_test_roc.png")); err != nil {
		t.Error(err)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no run", []string{"eval"}, saltcli.ExitUsage, "exactly one run directory"},
		{"one run to compare", []string{"eval", "--compare", run}, saltcli.ExitUsage, "two run directories"},
		{"bad fc", []string{"eval", run, "--fc", "1.5"}, saltcli.ExitUsage, "--fc"},
		{"missing keep field", []string{"eval", run, "--out", t.TempDir(), "--keep", "eventNumber,nope", "--no-plots"}, saltcli.ExitFailure, `no field "nope"`},
		{"not a run", []string{"eval", t.TempDir()}, saltcli.ExitFailure, "not a run directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs, code := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.msg) {
				t.Errorf("exit code %d, stderr %q; want %d and %q", code, errs, tc.code, tc.msg)
			}
		})
	}
}

// TestEvalImportedGPURun runs `salt-ort eval` with its defaults on a run as
// import-salt makes one of a model Salt trained on a GPU, on a machine
// without CUDA: it writes every output but the loss plot, with notes on
// stderr saying why; --device cuda is an error naming the fixes.
func TestEvalImportedGPURun(t *testing.T) {
	run := evaluate.ImportedGPURunForTest(t)
	_, errs, code := runCLI(t, "eval", run, "--threads", "2", "-n", "100")
	if code != 0 {
		t.Fatalf("exit code %d\n%s", code, errs)
	}
	for _, want := range []string{`note: the run was trained with training.device = "cuda"`, "note: no loss.png", "no training history"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	for _, f := range []string{"test.h5", "test.json", "test_disc_b.png", "test_roc.png"} {
		if _, err := os.Stat(filepath.Join(run, evaluate.Dir, f)); err != nil {
			t.Error(err)
		}
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  []string
	}{
		{[]string{"--device", "cuda"}, saltcli.ExitFailure, []string{"--device cuda", "make deps-cuda", "--device cpu"}},
		{[]string{"--device", "gpu"}, saltcli.ExitUsage, []string{`--device "gpu": give cpu or cuda`}},
	} {
		_, errs, code := runCLI(t, append([]string{"eval", run, "--out", t.TempDir()}, tc.args...)...)
		for _, m := range tc.msg {
			if code != tc.code || !strings.Contains(errs, m) {
				t.Errorf("%v: exit code %d, stderr %q; want %d and %q", tc.args, code, errs, tc.code, m)
			}
		}
	}
}

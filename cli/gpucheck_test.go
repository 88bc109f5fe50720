package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gpuCheckScript runs scripts/gpu/check.sh with DEVICE=cpu and the small
// sizes in a fresh directory holding the examples it edits; it returns
// the summary it wrote and how it exited.
func gpuCheckScript(t *testing.T, bin string) (summary string, err error) {
	t.Helper()
	script, err := filepath.Abs("../scripts/gpu/check.sh")
	if err != nil {
		t.Fatal(err)
	}
	work, out := t.TempDir(), t.TempDir()
	if err := os.Mkdir(filepath.Join(work, "examples"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"gn2.toml", "gn2-small.toml"} {
		b, err := os.ReadFile(filepath.Join("../examples", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, "examples", f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("bash", script)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "DEVICE=cpu", "MODEL=gn2-small.toml", "JETS=600", "MIXED_TRAIN=300",
		"REF=", "SALT_ORT="+bin, "OUT="+out)
	output, err := cmd.CombinedOutput()
	b, rerr := os.ReadFile(filepath.Join(out, "summary.txt"))
	if rerr != nil {
		t.Fatalf("no summary: %v\n%s", rerr, output)
	}
	if string(b) != string(output) {
		t.Errorf("the summary differs from what the script printed:\n%s\nprinted:\n%s", b, output)
	}
	return string(b), err
}

// TestGPUCheckScriptOnCPU runs the GPU acceptance script's plumbing on
// the CPU: every check prints one verdict, the script exits 0 when all
// pass, and 1 with a FAIL verdict for each check when salt-ort fails.
func TestGPUCheckScriptOnCPU(t *testing.T) {
	bin := buildBinary(t)
	checks := []string{"version", "gen-data", "loss-cpu", "loss-cpu-1thread", "loss-match", "cpu-salt-ort", "cpu-ref", "mixed-fp32", "mixed-vs-fp32"}
	verdicts := func(summary string) map[string]string {
		got := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(summary), "\n") {
			status, rest, _ := strings.Cut(line, " ")
			name, _, _ := strings.Cut(rest, ":")
			if status == "PASS" || status == "FAIL" || status == "SKIP" {
				got[name] = status
			}
		}
		return got
	}
	summary, err := gpuCheckScript(t, bin)
	if err != nil {
		t.Fatalf("check.sh: %v\n%s", err, summary)
	}
	got := verdicts(summary)
	for _, c := range checks {
		want := "PASS"
		if c == "cpu-ref" || c == "mixed-vs-fp32" {
			want = "SKIP"
		}
		if got[c] != want {
			t.Errorf("check %s: verdict %q, want %s", c, got[c], want)
		}
	}
	if !strings.HasSuffix(summary, "PASS: every check passed\n") || len(got) != len(checks) {
		t.Fatalf("%d verdicts, want %d, and the last line PASS:\n%s", len(got), len(checks), summary)
	}

	// A salt-ort that fails: every check that runs it fails, and so does
	// the loss match, which has nothing to compare.
	summary, err = gpuCheckScript(t, "/bin/false")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("check.sh with a failing salt-ort: %v, want exit 1:\n%s", err, summary)
	}
	got = verdicts(summary)
	for _, c := range checks {
		if want := "FAIL"; c != "cpu-ref" && c != "mixed-vs-fp32" && got[c] != want {
			t.Errorf("check %s with a failing salt-ort: verdict %q, want FAIL", c, got[c])
		}
	}
	if want := fmt.Sprintf("FAIL: %d check(s) failed", len(checks)-2); !strings.Contains(summary, want) {
		t.Errorf("the summary lacks %q:\n%s", want, summary)
	}
}

// TestGPUCheckCompare checks the pass conditions of the GPU script's two
// comparisons (scripts/gpu/compare.py) on metrics tables made here.
func TestGPUCheckCompare(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	trainCSV := func(rows int, scale float64) string {
		var b strings.Builder
		b.WriteString("step,epoch,lr,loss,loss/jets,grad_norm\n")
		for i := 1; i <= rows; i++ {
			fmt.Fprintf(&b, "%d,1,1e-5,%.9g,%.9g,%.9g\n", i, 2.5*scale, 1.25, 3.0*float64(i))
		}
		return b.String()
	}
	valCSV := func(epochs int, scale float64) string {
		var b strings.Builder
		b.WriteString("epoch,step,val_loss,val_loss/jets,auc\n")
		for e := 0; e <= epochs; e++ {
			fmt.Fprintf(&b, "%d,%d,%.9g,%.9g,0.7\n", e, 10*e, 4*scale, 1.5)
		}
		return b.String()
	}
	ref := write("ref.csv", trainCSV(5, 1))
	refVal := write("ref-val.csv", valCSV(2, 1))
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"same losses", []string{"losses", ref, write("same.csv", trainCSV(5, 1)), "1e-4", "5"}, 0},
		{"loss within tolerance", []string{"losses", ref, write("near.csv", trainCSV(5, 1+5e-5)), "1e-4", "5"}, 0},
		{"loss off", []string{"losses", ref, write("off.csv", trainCSV(5, 1+2e-4)), "1e-4", "5"}, 1},
		{"too few steps", []string{"losses", ref, write("short.csv", trainCSV(4, 1)), "1e-4", "5"}, 1},
		{"missing run", []string{"losses", ref, filepath.Join(dir, "absent.csv"), "1e-4", "5"}, 2},
		{"validation within tolerance", []string{"val", refVal, write("v-near.csv", valCSV(2, 1.02)), "0.03"}, 0},
		{"validation off", []string{"val", refVal, write("v-off.csv", valCSV(2, 1.04)), "0.03"}, 1},
		{"validation ends earlier", []string{"val", refVal, write("v-short.csv", valCSV(1, 1)), "0.03"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command("python3", append([]string{"../scripts/gpu/compare.py"}, tc.args...)...).CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			want := "PASS"
			if tc.code != 0 {
				want = "FAIL"
			}
			if code != tc.code || !strings.HasPrefix(string(out), want) {
				t.Fatalf("exit %d, want %d, output %q (want it to start with %s)", code, tc.code, out, want)
			}
		})
	}
}

package fuzztest

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFuzzcheck runs scripts/fuzzcheck, which `make fuzz` uses to fail a
// target whose rate falls below 500 execs/s, on progress lines of real
// runs: FuzzParse stalled by minimisation, a steady run, a dip below the
// minimum, a run too short for a window after warm-up, no run, a run
// whose workers were slow to stop, and runs longer than a minute.
func TestFuzzcheck(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	script := filepath.Join("..", "..", "..", "scripts", "fuzzcheck")
	cases := []struct {
		log, fuzztime string
		code          int
		want          []string
	}{
		{"stalled.log", "30s", 1, []string{"FAIL stalled: below 500 execs/s: 0/s at 3s-6s;", "0/s at 27s-30s;"}},
		{"steady.log", "30s", 0, []string{"239565 execs in  30s", "min 1206/s (3s-6s)", "over 9 windows"}},
		{"dip.log", "10s", 1, []string{"FAIL dip: below 500 execs/s: 311/s at 6s-9s;"}},
		{"short.log", "4s", 0, []string{"1190/s overall (run too short"}},
		{"none.log", "10s", 2, []string{"no progress lines"}},
		// A 9 s run whose workers took 3 s to stop: the window after
		// -fuzztime is not the target's fault, but without the bound it
		// looks like a dip.
		{"stopping.log", "9s", 0, []string{"min 1326/s (6s-9s)", "over 2 windows"}},
		{"stopping.log", "", 1, []string{"100/s at 9s-12s"}},
		// Past a minute Go writes the elapsed time as 1m0s, 1m3s, ...
		// (made in the format of the lines above): every window counts,
		// and a stall after the first minute fails.
		{"minute.log", "1m30s", 0, []string{"604845 execs in  90s", "over 29 windows"}},
		{"minute-stall.log", "1m30s", 1, []string{"FAIL minute-stall: below 500 execs/s: 0/s at 66s-69s;"}},
	}
	for _, c := range cases {
		name := strings.TrimSuffix(c.log, ".log")
		args := []string{script, "-min", "500", "-name", name}
		if c.fuzztime != "" {
			args = append(args, "-fuzztime", c.fuzztime)
		}
		out, err := exec.Command(bash, append(args, filepath.Join("testdata", c.log))...).CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.code {
			t.Errorf("%s: exit %d, want %d\n%s", c.log, code, c.code, out)
		}
		for _, w := range c.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("%s: output lacks %q:\n%s", c.log, w, out)
			}
		}
	}
}

// TestFuzzcheckCoordinatorRace checks the rule by which `make fuzz` runs a
// target a second time: only a failure that is Go 1.26's bare coordinator
// deadline (go.dev/issue/75804, from a real run of FuzzReadNormDict) is
// retried; a failing input, a build failure or a clean log is not.
func TestFuzzcheckCoordinatorRace(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	script := filepath.Join("..", "..", "..", "scripts", "fuzzcheck")
	for _, c := range []struct {
		log   string
		retry bool
	}{
		{"race.log", true},
		{"crash.log", false},
		{"build.log", false},
		{"steady.log", false},
	} {
		err := exec.Command(bash, script, "-coordinator-race", filepath.Join("testdata", c.log)).Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		if got := err == nil; got != c.retry {
			t.Errorf("%s: retry %v, want %v", c.log, got, c.retry)
		}
	}
}

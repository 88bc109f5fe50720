package explain_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/salt-ort/salt-ort/cli"
	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/deploy"
	"github.com/salt-ort/salt-ort/explain"
	"github.com/salt-ort/salt-ort/gendata"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/internal/onnxcheck"
	"github.com/salt-ort/salt-ort/internal/testkit/fixture"
	"github.com/salt-ort/salt-ort/loader"
	"github.com/salt-ort/salt-ort/train"
	urfave "github.com/urfave/cli/v2"
)

var (
	datasets fixture.Datasets
	shared   struct {
		once      sync.Once
		run, data string
		err       error
	}
)

func TestMain(m *testing.M) {
	code := m.Run()
	datasets.RemoveAll()
	os.Exit(code)
}

// trainedRun trains a tiny GN2 (jet flavour and a jet regression) on
// generated data once for the package's tests.
func trainedRun(t *testing.T) (run, data string) {
	t.Helper()
	shared.once.Do(func() {
		shared.data = datasets.Get(t, gendata.Config{Seed: 7, Train: 2000, Val: 200, Test: 400})
		text := fixture.Tiny(shared.data, fixture.Options{NumTrain: 2000, Epochs: 4, Seed: 3, JetTasksOnly: true,
			ExtraTasks: "[[model.tasks]]\nname = \"jet_eta\"\nkind = \"regression\"\ntargets = [\"eta\"]\nhidden = [8]\nweight = 0.2\n"})
		path := filepath.Join(shared.data, "tiny.toml")
		if shared.err = os.WriteFile(path, []byte(text), 0o644); shared.err != nil {
			return
		}
		var c *config.Config
		if c, shared.err = config.Load(path); shared.err != nil {
			return
		}
		shared.run = filepath.Join(shared.data, "run")
		_, shared.err = train.Run(context.Background(), train.Options{Config: c, RunDir: shared.run, Runtime: graphtest.OpenRuntime(t)})
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.run, shared.data
}

// TestRunGN2 explains a trained GN2-like model: completeness holds per jet
// within the stated tolerance, the impact-parameter significances lead the
// b-against-light ranking, and the file, summary and plots are written.
func TestRunGN2(t *testing.T) {
	run, data := trainedRun(t)
	out := t.TempDir()
	rep, err := explain.Run(context.Background(), explain.Options{RunDir: run, File: filepath.Join(data, "test.h5"), OutDir: out,
		NumJets: 200, Steps: 50, Baselines: 2, MinConst: 1, MaxConst: 20, Runtime: graphtest.OpenRuntime(t), Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("outputs %v; max |Δ| %.2g; ranking %v; permutation %v (AUC %.3f)", rep.Outputs, rep.MaxDelta, rep.Ranking[:4], rep.Permutation[:4], rep.BaseAUC)
	if rep.Failed != 0 || !(rep.MaxDelta <= explain.DefaultTolerance) || rep.Tolerance != explain.DefaultTolerance {
		t.Errorf("completeness: %d jets over the tolerance %g (max |Δ| %g)", rep.Failed, rep.Tolerance, rep.MaxDelta)
	}
	if want := []string{"jets_classification/b", "jets_classification/c", "jets_classification/u", "jets_classification/tau", "jet_eta/eta"}; strings.Join(rep.Outputs, ",") != strings.Join(want, ",") {
		t.Errorf("outputs %v, want %v", rep.Outputs, want)
	}
	if rep.RankOutput != "jets_classification/b" || rep.RankJets != "b+u" {
		t.Errorf("ranking of %s over %s jets, want p_b over b+u", rep.RankOutput, rep.RankJets)
	}
	// Physics: b-hadron decays displace tracks, so the impact-parameter
	// significances separate b from light jets best.
	if top := rep.Ranking[0].Var; top != "IP3D_signed_d0_significance" || rank(rep.Ranking, "IP3D_signed_z0_significance") > 2 {
		t.Errorf("integrated gradients rank %v first, want IP3D_signed_d0_significance first and IP3D_signed_z0_significance in the top 3", rep.Ranking[:3])
	}
	if rank(rep.Permutation, "IP3D_signed_d0_significance") > 1 || rank(rep.Permutation, "IP3D_signed_z0_significance") > 1 {
		t.Errorf("permutation importance ranks %v first, want the two significances", rep.Permutation[:3])
	}
	for _, want := range []string{"test__attributions.h5", "test_explain.json", explain.RankingFile, "test_attr_jets.png", "test_attr_tracks.png", "test_attr_tracks_positions.png"} {
		if _, err := os.Stat(filepath.Join(out, want)); err != nil {
			t.Error(err)
		}
	}
	// The per-jet attributions of p_b over the tracks are [jets, 20].
	tab, err := loader.OpenFieldTable(filepath.Join(out, "test__attributions.h5"), "attributions/jets_classification/b/tracks")
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	if d := tab.Dims(); len(d) != 2 || d[1] != 20 || !tab.Has("IP3D_signed_d0_significance") {
		t.Errorf("attributions/jets_classification/b/tracks: dims %v", d)
	}
	back, ok, err := explain.ReadRanking(out)
	if err != nil || !ok || len(back.Ranking) != len(rep.Ranking) || back.Ranking[0] != rep.Ranking[0] {
		t.Errorf("ReadRanking: %v %v %v", ok, err, back)
	}
}

// rank returns the position of variable v in rs, len(rs) if absent.
func rank(rs []explain.Rank, v string) int {
	for i, r := range rs {
		if r.Var == v {
			return i
		}
	}
	return len(rs)
}

// TestOptionErrors checks that bad options are refused with the flag's
// name.
func TestOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		o    explain.Options
		want string
	}{
		{explain.Options{Steps: -1}, "--steps"},
		{explain.Options{Baselines: -2}, "--baselines"},
		{explain.Options{MinConst: 9, MaxConst: 3}, "--min-constituents"},
		{explain.Options{Tolerance: -1}, "--tolerance"},
		{explain.Options{FC: 2}, "--fc"},
		{explain.Options{RunDir: t.TempDir()}, "not a run directory"},
	} {
		_, err := explain.Run(context.Background(), tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one naming %s", tc.o, err, tc.want)
		}
	}
}

// TestNoJetsInWindow checks the message when no jet has an allowed size.
func TestNoJetsInWindow(t *testing.T) {
	run, data := trainedRun(t)
	_, err := explain.Run(context.Background(), explain.Options{RunDir: run, File: filepath.Join(data, "test.h5"), OutDir: t.TempDir(),
		NumJets: 20, Steps: 2, Baselines: 1, MinConst: 100, MaxConst: 200, Runtime: graphtest.OpenRuntime(t), Threads: 2})
	if err == nil || !strings.Contains(err.Error(), "--max-constituents") {
		t.Errorf("error %v, want one naming the constituent window", err)
	}
}

// TestCommandAndModelCard runs `salt-ort explain` on the trained run (into
// its explain directory) and checks that export puts the ranking into the
// model card.
func TestCommandAndModelCard(t *testing.T) {
	run, data := trainedRun(t)
	var stdout, stderr bytes.Buffer
	app := cli.App(&stdout, &stderr)
	app.ExitErrHandler = func(*urfave.Context, error) {}
	args := []string{"salt-ort", "explain", run, "--test", filepath.Join(data, "test.h5"), "--num-jets", "120", "--steps", "8",
		"--baselines", "1", "--min-constituents", "1", "--max-constituents", "20", "--tolerance", "0.5", "--threads", "2"}
	if err := app.Run(cli.Interspersed(app, args)); err != nil {
		t.Fatalf("%v\n%s%s", err, stdout.String(), stderr.String())
	}
	for _, want := range []string{"completeness holds", "permutation importance", "IP3D_signed_d0_significance", "wrote " + filepath.Join(run, "explain", "test__attributions.h5")} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
	stdout.Reset()
	if err := app.Run(cli.Interspersed(app, []string{"salt-ort", "explain", run, "--steps", "0"})); err == nil || !strings.Contains(err.Error(), "--steps") {
		t.Errorf("--steps 0: %v", err)
	} else if ec, ok := err.(urfave.ExitCoder); !ok || ec.ExitCode() != cli.ExitUsage {
		t.Errorf("--steps 0: exit %v, want %d", err, cli.ExitUsage)
	}
	ex, err := deploy.Export(context.Background(), deploy.ExportOptions{RunDir: run, Out: filepath.Join(t.TempDir(), "GN2.onnx"), ValidationJets: 20, Runtime: graphtest.OpenRuntime(t), Checker: onnxcheck.Checker{}})
	if err != nil {
		t.Fatal(err)
	}
	card, err := os.ReadFile(ex.Card)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Feature attributions", "| 1 | `tracks` | `", "AUC drop when shuffled", "`IP3D_signed_d0_significance`"} {
		if !strings.Contains(string(card), want) {
			t.Errorf("model card lacks %q:\n%s", want, card)
		}
	}
}

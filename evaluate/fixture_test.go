package evaluate

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/gendata"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/internal/testkit/fixture"
	"github.com/salt-ort/salt-ort/train"
)

// shared is a small trained run shared by the tests of the package.
var shared struct {
	once sync.Once
	data string // generated dataset
	run  string // trained run directory
	err  error
}

var datasets fixture.Datasets

// jetEtaTask adds a Gaussian regression of the jet eta, so the fixture has
// every task kind: jet flavour, track origin, vertexing and regression.
const jetEtaTask = `[[model.tasks]]
name = "jet_eta"
kind = "gaussian_regression"
targets = ["eta"]
hidden = [8]
weight = 0.2
`

// fixtureTestJets is the number of jets in the fixture's test file.
const fixtureTestJets = 300

// trainedRun returns the shared trained run and its dataset directory,
// creating them on first use.
func trainedRun(t testing.TB) (runDir, dataDir string) {
	t.Helper()
	shared.once.Do(func() {
		shared.data = datasets.Get(t, gendata.Config{Seed: 4, Train: 600, Val: 200, Test: fixtureTestJets})
		cfgPath := filepath.Join(shared.data, "tiny.toml")
		text := fixture.Tiny(shared.data, fixture.Options{Name: "Tiny", Epochs: 6, Seed: 9, ExtraTasks: jetEtaTask})
		if shared.err = os.WriteFile(cfgPath, []byte(text), 0o644); shared.err != nil {
			return
		}
		var c *config.Config
		if c, shared.err = config.Load(cfgPath); shared.err != nil {
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

// TrainedRunForTest exposes the shared trained run to the package's
// external tests (this file is compiled only into the test binary).
func TrainedRunForTest(t testing.TB) (runDir, dataDir string) { return trainedRun(t) }

func TestMain(m *testing.M) {
	code := m.Run()
	datasets.RemoveAll()
	os.Exit(code)
}

// pythonH5py returns the interpreter with h5py and numpy, or why it is
// missing.
func pythonH5py() (string, string) {
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		return "", py + " not found (install python3-h5py)"
	}
	if out, err := exec.Command(py, "-c", "import h5py, numpy").CombinedOutput(); err != nil {
		return "", "python3-h5py is not installed (" + strings.TrimSpace(string(out)) + ")"
	}
	return py, ""
}

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
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/loader"
	"github.com/salt-ort/salt-ort/train"
)

// fixture is a small trained run shared by the tests of the package.
var fixture struct {
	once sync.Once
	dir  string // temporary directory holding data and run
	data string // generated dataset
	run  string // trained run directory
	err  error
}

// fixtureConfig is a tiny model with every task kind: jet flavour, track
// origin, vertexing and a Gaussian regression of the jet eta.
const fixtureConfig = `
[data]
train = ["DATA/train.h5"]
val = ["DATA/val.h5"]
test = ["DATA/test.h5"]
norm_dict = "DATA/norm_dict.yaml"
class_dict = "DATA/class_dict.yaml"
batch_size = 50
num_train = 600
[data.variables]
jets = ["pt_btagJes", "eta_btagJes"]
tracks = ["d0", "z0SinTheta", "dphi", "deta", "IP3D_signed_d0_significance", "IP3D_signed_z0_significance", "numberOfPixelHits"]
[model]
name = "Tiny"
embed_dim = 16
[[model.init_nets]]
input = "tracks"
max_len = 20
hidden = [16]
[model.encoder]
layers = 1
heads = 2
out_dim = 8
[[model.tasks]]
name = "jets_classification"
kind = "jet_classification"
label = "flavour_label"
class_names = ["b", "c", "u", "tau"]
hidden = [8]
use_class_dict = true
[[model.tasks]]
name = "track_origin"
kind = "constituent_classification"
input = "tracks"
label = "ftagTruthOriginLabel"
class_names = ["pileup", "fake", "primary", "fromB", "fromBC", "fromC", "fromTau", "otherSecondary"]
hidden = [8]
weight = 0.5
[[model.tasks]]
name = "track_vertexing"
kind = "vertexing"
input = "tracks"
label = "ftagTruthVertexIndex"
hidden = [8]
weight = 1.5
[[model.tasks]]
name = "jet_eta"
kind = "gaussian_regression"
targets = ["eta"]
hidden = [8]
weight = 0.2
[training]
epochs = 6
seed = 9
threads = 2
[training.lr]
max = 3e-3
warmup_fraction = 0.2
`

// fixtureTestJets is the number of jets in the fixture's test file.
const fixtureTestJets = 300

// trainedRun returns the shared trained run and its dataset directory,
// creating them on first use.
func trainedRun(t testing.TB) (runDir, dataDir string) {
	t.Helper()
	fixture.once.Do(func() {
		if fixture.dir, fixture.err = os.MkdirTemp("", "salt-ort-evaluate"); fixture.err != nil {
			return
		}
		fixture.data = filepath.Join(fixture.dir, "data")
		if _, fixture.err = loader.Generate(loader.GenConfig{Seed: 4, Train: 600, Val: 200, Test: fixtureTestJets}, fixture.data); fixture.err != nil {
			return
		}
		cfgPath := filepath.Join(fixture.dir, "tiny.toml")
		if fixture.err = os.WriteFile(cfgPath, []byte(strings.ReplaceAll(fixtureConfig, "DATA", fixture.data)), 0o644); fixture.err != nil {
			return
		}
		var c *config.Config
		if c, fixture.err = config.Load(cfgPath); fixture.err != nil {
			return
		}
		fixture.run = filepath.Join(fixture.dir, "run")
		_, fixture.err = train.Run(context.Background(), train.Options{Config: c, RunDir: fixture.run, Runtime: graphtest.OpenRuntime(t)})
	})
	if fixture.err != nil {
		t.Fatal(fixture.err)
	}
	return fixture.run, fixture.data
}

// TrainedRunForTest exposes the shared trained run to the package's
// external tests (this file is compiled only into the test binary).
func TrainedRunForTest(t testing.TB) (runDir, dataDir string) { return trainedRun(t) }

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.dir != "" {
		os.RemoveAll(fixture.dir)
	}
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

package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/internal/testkit/fixture"
	"github.com/salt-ort/salt-ort/runtime"
	"github.com/urfave/cli/v2"
)

// inProcess runs salt-ort with args in this process (as main does) and
// returns its output and exit code.
func inProcess(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	app := App(&out, &errb)
	exiter, errWriter := cli.OsExiter, cli.ErrWriter
	defer func() { cli.OsExiter, cli.ErrWriter = exiter, errWriter }()
	cli.OsExiter = func(c int) { code = c }
	cli.ErrWriter = &errb
	if err := app.Run(Interspersed(app, append([]string{"salt-ort"}, args...))); err != nil && code == 0 {
		code = ExitUsage
	}
	return out.String(), errb.String(), code
}

// ftagModel trains on the files atlas-ftag-tools writes, as they are: the
// training files a pattern over the parts of a virtual file merging LZF
// files, ftag's HadronConeExclTruthLabelID with Salt's class names, a jet
// and a track selection, a global variable joined after pooling and
// max_len = 0; its hit counts are all zero, as the mock writer's.
const ftagModel = `
[data]
train = ["mc23_part*.h5"]
val = ["val.h5"]
test = ["test.h5"]
norm_dict = "dicts/norm_dict.yaml"
class_dict = "dicts/class_dict.yaml"
batch_size = 50
[data.variables]
jets = ["pt_btagJes", "eta_btagJes"]
global = ["softMuon_pt"]
tracks = ["d0", "z0SinTheta", "dphi", "deta", "IP3D_signed_d0_significance", "numberOfPixelHits", "numberOfSCTHits", "numberOfPixelHoles", "leptonID"]
[data.selections]
jets = ["pt_btagJes > 25e3"]
tracks = ["d0 < 3.5"]
[model]
name = "GN2"
embed_dim = 16
[[model.init_nets]]
input = "tracks"
max_len = 0
hidden = [16]
[model.encoder]
layers = 1
heads = 2
out_dim = 8
[[model.tasks]]
name = "jets_classification"
kind = "jet_classification"
label = "HadronConeExclTruthLabelID"
class_names = ["bjets", "cjets", "ujets", "taujets"]
use_class_dict = true
hidden = [8]
[[model.tasks]]
name = "track_origin"
kind = "track_classification"
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
[training]
epochs = 2
threads = 2
`

// TestFtagFilesTrainEvalExportValidate is the acceptance run of issue 16:
// norm, train, eval, export and validate on files written by Debian's
// h5py the way atlas-ftag-tools writes them, none rewritten.
func TestFtagFilesTrainEvalExportValidate(t *testing.T) {
	dir := t.TempDir()
	fixture.WriteFtag(t, filepath.Join(dir, "mc23.h5"), fixture.Ftag{Jets: 600, Tracks: 30, Seed: 1, Parts: 3})
	fixture.WriteFtag(t, filepath.Join(dir, "val.h5"), fixture.Ftag{Jets: 200, Tracks: 30, Seed: 2})
	fixture.WriteFtag(t, filepath.Join(dir, "test.h5"), fixture.Ftag{Jets: 150, Tracks: 30, Seed: 3, NoTruth: true})
	if err := os.Mkdir(filepath.Join(dir, "dicts"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "model.toml")
	if err := os.WriteFile(cfg, []byte(ftagModel), 0o644); err != nil {
		t.Fatal(err)
	}
	// The ONNX Runtime library is found from the repository until the
	// test leaves it.
	lib, err := runtime.LibraryPath("")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SALT_ORT_LIB", lib)
	t.Chdir(dir)

	// norm lists the three all-zero hit counts at once, with the line to
	// write; --constant drop leaves them out.
	_, errs, code := inProcess(t, "norm", "--config", "model.toml")
	for _, w := range []string{"3 variable(s) are constant", "tracks.numberOfPixelHits = 0", "tracks.numberOfSCTHits = 0", "tracks.numberOfPixelHoles = 0",
		`tracks = ["d0", "z0SinTheta", "dphi", "deta", "IP3D_signed_d0_significance", "leptonID"]`, "--constant drop", "--constant keep"} {
		if code != ExitFailure || !strings.Contains(errs, w) {
			t.Errorf("norm with constant variables: exit %d, stderr lacks %q:\n%s", code, w, errs)
		}
	}
	out, errs, code := inProcess(t, "norm", "--config", "model.toml", "--constant", "drop")
	if code != 0 || !strings.Contains(out, "left out 3 constant variables") {
		t.Fatalf("norm --constant drop: exit %d\n%s%s", code, out, errs)
	}
	text := strings.Replace(ftagModel, `, "numberOfPixelHits", "numberOfSCTHits", "numberOfPixelHoles"`, "", 1)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}

	out, errs, code = inProcess(t, "train", "model.toml", "--out", "run")
	if code != 0 {
		t.Fatalf("train: exit %d\n%s%s", code, out, errs)
	}
	for _, w := range []string{"note: selections on jets (pt_btagJes > 25000): kept", "note: selections on tracks (d0 < 3.5): kept"} {
		if !strings.Contains(errs, w) {
			t.Errorf("train log lacks %q:\n%s", w, errs)
		}
	}

	// The test file has no truth labels: predictions only.
	out, errs, code = inProcess(t, "eval", "run", "--no-plots")
	if code != 0 || !strings.Contains(out, "has no truth labels") || !strings.Contains(out, "wrote the predictions only") {
		t.Fatalf("eval on an unlabelled file: exit %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join("run", "eval", "test.json")); err == nil {
		t.Error("a summary for a file without truth labels")
	}
	// A labelled file by a path relative to the working directory, its
	// first 60 jets; Salt's class names show as b, c, light, tau.
	out, errs, code = inProcess(t, "eval", "run", "--test", "val.h5", "--num-jets", "60", "--out", "ev", "--no-plots")
	if code != 0 {
		t.Fatalf("eval --test val.h5: exit %d\n%s%s", code, out, errs)
	}
	for _, w := range []string{"val.h5: 60 jets", "jets: b ", ", c ", ", light ", ", tau ", "c-rej", "light-rej", "track_origin: accuracy", "track_vertexing"} {
		if !strings.Contains(out, w) {
			t.Errorf("eval output lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "bjets") {
		t.Errorf("eval table names classes by their long names:\n%s", out)
	}
	h5 := exec.Command(fixture.Python, "-c", `
import h5py
with h5py.File("ev/val.h5") as f, h5py.File("run/eval/test.h5") as g:
    j, t = f["jets"], f["tracks"]
    print(j.shape[0], ",".join(n for n in j.dtype.names if n.startswith("GN2_")), t.shape[1], int(t["valid"].sum()), g["jets"].shape[0], "HadronConeExclTruthLabelID" in g["jets"].dtype.names)
`)
	got, err := h5.CombinedOutput()
	if err != nil {
		t.Fatalf("h5py: %v\n%s", err, got)
	}
	// 141 of the test file's 150 jets pass pt_btagJes > 25e3.
	fields := strings.Fields(string(got))
	if len(fields) != 6 || fields[0] != "60" || fields[1] != "GN2_pb,GN2_pc,GN2_pu,GN2_ptau" || fields[2] != "30" || fields[4] != "141" || fields[5] != "False" {
		t.Errorf("prediction files: %s", got)
	}

	out, errs, code = inProcess(t, "export", "run", "-o", "export/GN2.onnx")
	if code != 0 {
		t.Fatalf("export: exit %d\n%s%s", code, out, errs)
	}
	out, errs, code = inProcess(t, "validate", "export/GN2.onnx")
	if code != 0 || !strings.Contains(out, "GN2_pb") || !strings.Contains(out, "GN2_VertexIndex") {
		t.Fatalf("validate: exit %d\n%s%s", code, out, errs)
	}
	md, err := os.ReadFile("export/GN2.md")
	if err != nil || !strings.Contains(string(md), "`jet_features` float32 [1, 3]") || !strings.Contains(string(md), "`softMuon_pt`") {
		t.Errorf("the deployed jet_features lack the global variable: %v\n%s", err, md)
	}
}

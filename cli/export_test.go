package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/gendata"
)

// TestExportCommand runs `salt-ort export` with its choices of name,
// tasks and renames, and its refusals, through the binary.
func TestExportCommand(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	if _, err := gendata.Generate(gendata.Config{Seed: 2, Train: 400, Val: 200, Test: 50}, data); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "tiny.toml")
	if err := os.WriteFile(cfg, []byte(tinyModel(data)), 0o644); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(t.TempDir(), "run")
	if out, err := exec.Command(bin, "train", cfg, "--out", run, "--epochs", "1", "--quiet").CombinedOutput(); err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	var env []string // further environment of the next command
	salt := func(args ...string) (string, int) {
		var out bytes.Buffer
		cmd := exec.Command(bin, args...)
		// No CUDA provider, even on a machine that has one.
		cmd.Env = append(os.Environ(), "SALT_ORT_CUDA_LIB="+filepath.Join(data, "libonnxruntime_providers_cuda.so"))
		cmd.Env, env = append(cmd.Env, env...), nil
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), code
	}

	dir := t.TempDir()
	model := filepath.Join(dir, "GN2X.onnx")
	out, code := salt("export", run, "-o", model, "--name", "GN2X", "--tasks", "jets_classification,track_vertexing",
		"--rename", "pu:plight", "--validation-jets", "100", "--json")
	if code != 0 {
		t.Fatalf("export exited %d:\n%s", code, out)
	}
	var ex struct {
		Metadata struct {
			Outputs []struct{ Name string }
		}
		Validation struct{ Jets int }
	}
	if err := json.Unmarshal([]byte(out), &ex); err != nil {
		t.Fatalf("export --json: %v\n%s", err, out)
	}
	var names []string
	for _, o := range ex.Metadata.Outputs {
		names = append(names, o.Name)
	}
	if got := strings.Join(names, " "); got != "GN2X_pb GN2X_pc GN2X_plight GN2X_ptau GN2X_VertexIndex" || ex.Validation.Jets != 100 {
		t.Fatalf("outputs %s, %d validation jets", got, ex.Validation.Jets)
	}
	// The model card's JSON twin names the model's hash and the command
	// that validates it.
	var card struct {
		SHA256     string `json:"sha256"`
		Validation struct {
			Command string `json:"command"`
		} `json:"validation"`
	}
	if b, err := os.ReadFile(filepath.Join(dir, "GN2X.card.json")); err != nil || json.Unmarshal(b, &card) != nil ||
		card.SHA256 != fileSHA256(t, model) || card.Validation.Command != "salt-ort validate GN2X.onnx" {
		t.Fatalf("model card GN2X.card.json: %v, %+v", err, card)
	}
	// Where the checker's Python cannot import onnx, export succeeds and
	// says the checker was skipped and why.
	noPython := filepath.Join(dir, "no-python3")
	env = []string{"SALT_ORT_ONNX_PYTHON=" + noPython}
	if out, code := salt("export", run, "-o", filepath.Join(dir, "unchecked.onnx"), "--validation-jets", "20"); code != 0 ||
		!strings.Contains(out, "checked: the ONNX checker was skipped: "+noPython+" cannot import onnx (install python3-onnx, or set SALT_ORT_ONNX_PYTHON") {
		t.Fatalf("export with SALT_ORT_ONNX_PYTHON=%s exited %d:\n%s", noPython, code, out)
	}
	if out, code := salt("validate", model, "--cpp", "--work-dir", t.TempDir()); code != 0 || !strings.Contains(out, "GN2X_plight") ||
		!strings.Contains(out, "bit-identical to Go") || !strings.Contains(out, "ATLAS's loaders") {
		t.Fatalf("validate --cpp exited %d:\n%s", code, out)
	}
	// Other ONNX Runtime releases, each in a salt-ort worker process.
	if _, err := os.Stat("../third_party/onnxruntime/versions/1.31.1"); err == nil {
		if out, code := salt("validate", model, "--ort", "1.14.0", "--ort", "1.17.3", "--ort", "1.31.1"); code != 0 ||
			!regexp.MustCompile(`(?m)^1\.14\.0 .* ok$`).MatchString(out) ||
			!regexp.MustCompile(`(?m)^1\.17\.3 .* ok$`).MatchString(out) || !regexp.MustCompile(`(?m)^1\.31\.1 .* ok$`).MatchString(out) {
			t.Fatalf("validate --ort exited %d:\n%s", code, out)
		}
	}
	if out, code := salt("validate", model, "--ort", "1.99.0"); code != ExitFailure || !strings.Contains(out, "ONNX Runtime 1.99.0 is not installed: run third_party/onnxruntime/fetch-versions.sh 1.99.0") {
		t.Fatalf("validate --ort 1.99.0 exited %d:\n%s", code, out)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--device", "cuda"}, ExitFailure, "--device cuda"},
		{[]string{"--device", "cuda", "--cpp"}, ExitUsage, "drop --device cuda"},
		{[]string{"--device", "tpu"}, ExitUsage, "give cpu or cuda"},
	} {
		if out, code := salt(append([]string{"validate", model}, tc.args...)...); code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("validate %v: exit %d, want %d with %q:\n%s", tc.args, code, tc.code, tc.want, out)
		}
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"name with an underscore", []string{"--name", "GN2_X"}, ExitUsage, "contains '_' or '-'"},
		{"rename without a colon", []string{"--rename", "pu"}, ExitUsage, "give OLD:NEW"},
		{"unknown track selection", []string{"--track-selection", "tight"}, ExitUsage, "not one ATLAS's loader recognises"},
		{"unknown task", []string{"--tasks", "jet_flavour"}, ExitFailure, `no task "jet_flavour"`},
		{"opset too old", []string{"--opset", "13"}, ExitFailure, "which opset 15 introduced: export with --opset 15 or later"},
		{"opset too new", []string{"--opset", "30"}, ExitFailure, "export with --opset 23 or lower"},
		{"unknown device", []string{"--device", "tpu"}, ExitUsage, `--device "tpu": give cpu or cuda`},
		{"CUDA not here", []string{"--device", "cuda"}, ExitFailure, "--device cuda"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out, code := salt(append([]string{"export", run, "-o", filepath.Join(dir, "m.onnx")}, tc.args...)...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s", code, tc.code, tc.want, out)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("files left behind: %v", left)
			}
		})
	}
}

// TestTrainOutputInBatchJobs runs train with its output going to a pipe,
// as in a batch job: progress comes as lines, never carriage returns, and
// --quiet keeps the final summary.
func TestTrainOutputInBatchJobs(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	if _, err := gendata.Generate(gendata.Config{Seed: 2, Train: 400, Val: 100, Test: 50}, data); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "tiny.toml")
	if err := os.WriteFile(cfg, []byte(tinyModel(data)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "train", cfg, "--out", filepath.Join(t.TempDir(), "run"), "--epochs", "1").CombinedOutput()
	if err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "\r") || !strings.Contains(string(out), "epoch 1/1: 100% 400/400 jets") || !strings.Contains(string(out), "ETA") {
		t.Fatalf("train's output in a batch job:\n%q", out)
	}
	quiet, err := exec.Command(bin, "train", cfg, "--out", filepath.Join(t.TempDir(), "run"), "--epochs", "1", "--quiet").CombinedOutput()
	if err != nil {
		t.Fatalf("train --quiet: %v\n%s", err, quiet)
	}
	if lines := strings.Split(strings.TrimSpace(string(quiet)), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "trained ") {
		t.Fatalf("train --quiet printed:\n%s", quiet)
	}
}

// fileSHA256 returns the hex SHA-256 of a file.
func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

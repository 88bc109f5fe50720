package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/internal/testkit/salttwin"
)

// saltRunner runs the salt-ort binary and returns its output and exit
// code.
func saltRunner(t *testing.T, bin string) func(args ...string) (string, int) {
	return func(args ...string) (string, int) {
		t.Helper()
		var out bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), 0
	}
}

// TestImportSaltCommand carries a model "trained by Salt" (the PyTorch
// twin's config.yaml and Lightning checkpoint) into salt-ort with
// import-salt, then evaluates, exports, validates it with the C++ program,
// and fine-tunes it with train --resume, all through the binary; and checks
// that bad input (features salt-ort lacks, a checkpoint that does not fit
// its configuration, a truncated checkpoint) exits 1 or 2 with the key or
// tensor named and writes nothing.
func TestImportSaltCommand(t *testing.T) {
	bin := buildBinary(t)
	tw := salttwin.Build(t, t.TempDir())
	salt := saltRunner(t, bin)

	run := filepath.Join(t.TempDir(), "run")
	out, code := salt("import-salt", tw.ConfigYAML, tw.Ckpt, "--out", run)
	if code != 0 || !strings.Contains(out, "imported GN2") || !strings.Contains(out, "training continues with epoch 4 of 10 from batch 0, after step 3") {
		t.Fatalf("import-salt exited %d:\n%s", code, out)
	}
	for _, f := range []string{"config.toml", "resolved.toml", "norm_dict.yaml", "class_dict.yaml", "checkpoints/last.safetensors", "salt-import.txt"} {
		if _, err := os.Stat(filepath.Join(run, f)); err != nil {
			t.Errorf("the run directory lacks %s", f)
		}
	}
	if out, code := salt("eval", run, "--test", tw.Data.Test, "--no-plots", "--threads", "1"); code != 0 || !strings.Contains(out, "track_vertexing") {
		t.Fatalf("eval exited %d:\n%s", code, out)
	}
	model := filepath.Join(t.TempDir(), "GN2.onnx")
	if out, code := salt("export", run, "-o", model, "--validation-jets", "64"); code != 0 {
		t.Fatalf("export exited %d:\n%s", code, out)
	}
	if out, code := salt("validate", model, "--cpp", "--work-dir", t.TempDir()); code != 0 || !strings.Contains(out, "bit-identical to Go") {
		t.Fatalf("validate --cpp exited %d:\n%s", code, out)
	}
	// Fine-tuning: two more epochs (steps) from Salt's state.
	if out, code := salt("train", filepath.Join(run, "config.toml"), "--resume", run, "--epochs", "5", "--threads", "1", "--quiet"); code != 0 || !strings.Contains(out, "(5 steps") {
		t.Fatalf("train --resume exited %d:\n%s", code, out)
	}

	// The configuration alone, trained from the start.
	fresh := filepath.Join(t.TempDir(), "fresh")
	if out, code := salt("import-salt", tw.ConfigYAML, "--out", fresh); code != 0 || !strings.Contains(out, "no checkpoint") {
		t.Fatalf("import-salt without a checkpoint exited %d:\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(fresh, "checkpoints", "last.safetensors")); err == nil {
		t.Fatal("import-salt without a checkpoint wrote one")
	}
	if out, code := salt("train", filepath.Join(fresh, "config.toml"), "--resume", fresh, "--epochs", "1", "--threads", "1", "--quiet"); code != 0 || !strings.Contains(out, "(1 steps") {
		t.Fatalf("train --resume of the configuration alone exited %d:\n%s", code, out)
	}

	// Bad input.
	text, err := os.ReadFile(tw.ConfigYAML)
	if err != nil {
		t.Fatal(err)
	}
	edited := func(pairs ...string) string {
		s := string(text)
		for i := 0; i < len(pairs); i += 2 {
			if !strings.Contains(s, pairs[i]) {
				t.Fatalf("the twin's config.yaml has no %q", pairs[i])
			}
			s = strings.Replace(s, pairs[i], pairs[i+1], 1)
		}
		path := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	ckpt, err := os.ReadFile(tw.Ckpt)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(t.TempDir(), "truncated.ckpt")
	if err := os.WriteFile(truncated, ckpt[:len(ckpt)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		config string
		ckpt   string
		code   int
		want   []string
	}{
		{"features salt-ort lacks", edited("label_smoothing: 0.0", "label_smoothing: 0.1", "fast_dev_run: false", "fast_dev_run: true", "accumulate_grad_batches: 1", "accumulate_grad_batches: 8"),
			tw.Ckpt, ExitUsage, []string{"3 key(s) salt-ort cannot represent", "model.model.init_args.tasks.init_args.modules.0.init_args.loss.init_args.label_smoothing:", "trainer.fast_dev_run:", "trainer.accumulate_grad_batches:"}},
		{"a checkpoint of another model", edited("num_layers: 2", "num_layers: 3"),
			tw.Ckpt, ExitFailure, []string{"does not fit the model its configuration describes", "model.encoder.layers.2.attn.fn.in_proj_weight: missing"}},
		{"a checkpoint of other sizes", edited("embed_dim: 32", "embed_dim: 48", "output_size: 32", "output_size: 48", "hidden_layers:\n          - 32", "hidden_layers:\n          - 48"),
			tw.Ckpt, ExitFailure, []string{"model.init_nets.0.net.net.0.weight: shape [32 21], but the configuration's model needs [48 21]"}},
		{"a truncated checkpoint", tw.ConfigYAML, truncated, ExitFailure, []string{"truncated.ckpt: not a readable PyTorch checkpoint"}},
		{"no checkpoint file", tw.ConfigYAML, filepath.Join(t.TempDir(), "none.ckpt"), ExitFailure, []string{"none.ckpt: no such file"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			parent := t.TempDir()
			out, code := salt("import-salt", c.config, c.ckpt, "--out", filepath.Join(parent, "run"))
			if code != c.code {
				t.Fatalf("exit %d, want %d:\n%s", code, c.code, out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("the message lacks %q:\n%s", w, out)
				}
			}
			if left, _ := os.ReadDir(parent); len(left) != 0 {
				t.Errorf("files left behind: %v", left)
			}
		})
	}
}

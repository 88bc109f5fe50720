package salttwin

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/checkpoint"
	"github.com/salt-ort/salt-ort/gendata"
	"github.com/salt-ort/salt-ort/internal/torchref"
	"github.com/salt-ort/salt-ort/loader"
)

// Legacy configures the encoder of a twin with Salt's legacy
// TransformerEncoder (legacy_twin.py): its dense block and attention.
type Legacy struct {
	Hidden      []int   // dense_config.hidden_layers (nil: Salt's default, 2 × embed)
	Dropout     float64 // dense_config.dropout, before each Linear
	Activation  string  // dense_config.activation
	AttnDropout float64 // ScaledDotProductAttention's dropout
}

// BuildLegacy is Build with Salt's legacy TransformerEncoder in place of
// its Transformer (and its GlobalAttentionPooling with a masked softmax):
// the twin is trained, checkpointed and described in config.yaml as a Salt
// of before 2026 would have it. Expected holds the same outputs as
// Build's; with dropout, the training step in it used PyTorch's draws.
func BuildLegacy(t testing.TB, dir string, l Legacy) *Twin {
	t.Helper()
	torchref.Require(t)
	gen, err := gendata.Generate(gendata.Config{Seed: 11, Train: TrainJets, Val: TrainJets, Test: TestJets, MaxTracks: Tracks}, filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	cd, err := loader.ReadClassDict(gen.ClassDict)
	if err != nil {
		t.Fatal(err)
	}
	tw := &Twin{Dir: dir, Data: gen, ConfigYAML: filepath.Join(dir, "logs", "config.yaml"),
		Ckpt: filepath.Join(dir, "logs", "ckpts", "epoch=002-val_loss=1.00000.ckpt")}
	if err := os.MkdirAll(filepath.Dir(tw.Ckpt), 0o755); err != nil {
		t.Fatal(err)
	}
	expected := filepath.Join(dir, "expected.safetensors")
	spec := legacySpec(l, map[string]any{
		"seed": 3, "jet_vars": loader.GN2JetVariables(), "track_vars": loader.GN2TrackVariables(),
		"embed": Embed, "init_hidden": []int{32}, "layers": 2, "heads": 4, "out_dim": 16,
		"task_hidden":       []int{16, 8},
		"jet_class_weights": cd["jets"]["flavour_label"], "origin_class_weights": cd["tracks"]["ftagTruthOriginLabel"],
		"lr": []float64{1e-4, 5e-3, 1e-5}, "pct_start": 0.3, "epochs": Epochs, "steps": Steps,
		"batch": TrainJets, "train": gen.Train, "val": gen.Val, "test": gen.Test,
		"norm_dict": gen.NormDict, "class_dict": gen.ClassDict,
		"ckpt": tw.Ckpt, "config_yaml": tw.ConfigYAML, "expected": expected,
	})
	runScript(t, "legacy_twin.py", "make", spec, dir)
	if tw.Expected, err = checkpoint.Read(expected); err != nil {
		t.Fatal(err)
	}
	return tw
}

// CountLegacy is Count for the legacy encoder l (spec as Count's, without
// registers).
func CountLegacy(t testing.TB, spec map[string]any, l Legacy) int64 {
	t.Helper()
	out := strings.TrimSpace(string(runScript(t, "legacy_twin.py", "count", legacySpec(l, spec), t.TempDir())))
	n, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		t.Fatalf("legacy_twin.py count printed %q", out)
	}
	return n
}

// legacySpec adds l's settings to a twin spec.
func legacySpec(l Legacy, spec map[string]any) map[string]any {
	spec["legacy_dropout"], spec["legacy_attn_dropout"] = l.Dropout, l.AttnDropout
	if l.Hidden != nil {
		spec["legacy_hidden"] = l.Hidden
	}
	if l.Activation != "" {
		spec["legacy_activation"] = l.Activation
	}
	return spec
}

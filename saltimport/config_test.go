package saltimport

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/salt-ort/salt-ort/config"
)

// gn2Config is testdata/gn2-config.yaml: the config.yaml Salt writes for
// GN2.yaml's model.
func gn2Config(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile("testdata/gn2-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// set sets the value at a dotted path of a decoded YAML document, making
// maps on the way.
func set(t *testing.T, root map[string]any, path string, v any) {
	t.Helper()
	parts := strings.Split(path, ".")
	var cur any = root
	for i, p := range parts {
		last := i == len(parts)-1
		switch n := cur.(type) {
		case map[string]any:
			if last {
				n[p] = v
				return
			}
			if _, ok := n[p]; !ok || n[p] == nil {
				n[p] = map[string]any{}
			}
			cur = n[p]
		case []any:
			var k int
			for _, c := range p {
				k = 10*k + int(c-'0')
			}
			if last {
				n[k] = v
				return
			}
			cur = n[k]
		default:
			t.Fatalf("set %s: %s is not a map or list", path, strings.Join(parts[:i], "."))
		}
	}
}

func convert(t *testing.T, m map[string]any, opts ConvertOptions) (*Converted, error) {
	t.Helper()
	data, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if opts.MaxLen == nil {
		opts.MaxLen = map[string]int{"tracks": 40}
	}
	return Convert("config.yaml", data, opts)
}

// TestConvertGN2 converts the config.yaml of Salt's GN2 and checks that it
// describes the model examples/gn2.toml builds, trained as GN2.yaml trains
// it.
func TestConvertGN2(t *testing.T) {
	conv, err := convert(t, gn2Config(t), ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := conv.Config
	classes := func(ds, field string) ([]float64, error) { return nil, nil }
	got, err := c.Spec(classes)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := config.Load("../examples/gn2.toml")
	if err != nil {
		t.Fatal(err)
	}
	want, err := ex.Spec(ex.UniformClassWeights)
	if err != nil {
		t.Fatal(err)
	}
	// Salt's config names the classes as the files do and bakes the class
	// weights in; the example names them as flavour tools do and reads the
	// class dictionary. Everything else must agree.
	for i := range got.Tasks {
		got.Tasks[i].Classes, want.Tasks[i].Classes = nil, nil
		got.Tasks[i].ClassWeights, want.Tasks[i].ClassWeights = nil, nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Salt's GN2 converts to\n%+v\nexamples/gn2.toml is\n%+v", got, want)
	}
	tr := c.Training
	for _, chk := range []struct {
		key       string
		got, want any
	}{
		{"training.epochs", tr.Epochs, 40},
		{"training.device", tr.Device, "cuda"},
		{"training.precision", tr.Precision, "fp16"},
		{"training.lr", tr.LR, config.OneCycle{Initial: 1e-7, Max: 5e-4, End: 1e-5, WarmupFraction: 0.01, CycleMomentum: true, BaseMomentum: 0.85, MaxMomentum: 0.95}},
		{"training.optimizer.weight_decay", tr.Optimizer.WeightDecay, 1e-5},
		{"training.grad_clip", tr.GradClip, 0.0},
		{"training.seed", tr.Seed, uint64(42)},
		{"training.log_every", tr.LogEvery, 50},
		{"training.checkpoints.monitor", tr.Checkpoints.Monitor, "val_loss"},
		{"data.batch_size", c.Data.BatchSize, 4000},
		{"data.train", c.Data.Train, []string{"/data/pp_output_train.h5"}},
		{"data.test", c.Data.Test, []string{"/data/pp_output_test_ttbar.h5"}},
		{"tasks[0].class_weights", c.Model.Tasks[0].ClassWeights, []float64{1, 1.9, 0.7, 6.4}},
		{"tasks[1].class_names", c.Model.Tasks[1].ClassNames, classNames["ftagTruthOriginLabel"]},
		{"tasks[2].origin_label", c.Model.Tasks[2].OriginLabel, "ftagTruthOriginLabel"},
	} {
		if !reflect.DeepEqual(chk.got, chk.want) {
			t.Errorf("%s = %v, want %v", chk.key, chk.got, chk.want)
		}
	}
	report := strings.Join(conv.Ignored, "\n")
	for _, k := range []string{"trainer.logger", "trainer.callbacks", "data.pin_memory", "trainer.default_root_dir"} {
		if !strings.Contains(report, k+":") {
			t.Errorf("the import report does not list %s among the keys not carried over:\n%s", k, report)
		}
	}
	if notes := strings.Join(conv.Notes, "\n"); !strings.Contains(notes, "attn_type") {
		t.Errorf("no note on flash-varlen attention:\n%s", notes)
	}
	// On the CPU the 16-bit precision becomes fp32.
	cpu, err := convert(t, gn2Config(t), ConvertOptions{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	if cpu.Config.Training.Device != "cpu" || cpu.Config.Training.Precision != "fp32" {
		t.Errorf("--device cpu: device %q, precision %q", cpu.Config.Training.Device, cpu.Config.Training.Precision)
	}
}

// TestIntegratedGradientWriterNote checks that Salt's attribution callback
// is answered with the explain command of the same options.
func TestIntegratedGradientWriterNote(t *testing.T) {
	m := gn2Config(t)
	cbs, _ := m["trainer"].(map[string]any)["callbacks"].([]any)
	cbs = append(cbs, map[string]any{"class_path": "salt.callbacks.IntegratedGradientWriter",
		"init_args": map[string]any{"n_steps": 30, "n_baselines": 3, "min_allowed_track_sizes": 4, "max_allowed_track_sizes": 12}})
	set(t, m, "trainer.callbacks", cbs)
	conv, err := convert(t, m, ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "salt-ort explain RUN_DIR --steps 30 --baselines 3 --min-constituents 4 --max-constituents 12"
	if notes := strings.Join(conv.Notes, "\n"); !strings.Contains(notes, want) {
		t.Errorf("notes lack %q:\n%s", want, notes)
	}
}

// TestConvertMapsSettings checks keys with a salt-ort equivalent one by
// one.
func TestConvertMapsSettings(t *testing.T) {
	const enc = "model.model.init_args.encoder.init_args."
	const task0 = "model.model.init_args.tasks.init_args.modules.0.init_args."
	for _, c := range []struct {
		key   string
		value any
		check func(config.Config) any
		want  any
	}{
		{enc + "do_final_norm", false, func(c config.Config) any { return c.Model.Encoder.FinalNorm }, false},
		{enc + "num_registers", 4, func(c config.Config) any { return c.Model.Encoder.Registers }, 4},
		{enc + "dense_kwargs.hidden_dim", 768, func(c config.Config) any { return c.Model.Encoder.DenseRatio }, 3},
		{enc + "dense_kwargs.dropout", 0.1, func(c config.Config) any { return c.Model.Encoder.Dropout }, 0.1},
		{enc + "attn_kwargs.dropout", 0.2, func(c config.Config) any { return c.Model.Encoder.AttnDropout }, 0.2},
		{"model.model.init_args.init_nets.0.dense_config.final_activation", "SiLU", func(c config.Config) any { return c.Model.InitNets[0].FinalActivation }, "SiLU"},
		{"trainer.gradient_clip_val", 5.0, func(c config.Config) any { return c.Training.GradClip }, 5.0},
		{"trainer.precision", "bf16-mixed", func(c config.Config) any { return c.Training.Precision }, "bf16"},
		{"data.num_inputs", map[string]any{"tracks": 25}, func(c config.Config) any { return c.Model.InitNets[0].MaxLen }, 25},
		{"data.non_finite_to_num", true, func(c config.Config) any { return c.Data.NonFinite }, "zero"},
		{"trainer.callbacks.0.init_args.monitor_loss", "val/jets_classification_loss", func(c config.Config) any { return c.Training.Checkpoints.Monitor }, "val_loss/jets_classification"},
		{task0 + "weight", 2.5, func(c config.Config) any { return *c.Model.Tasks[0].Weight }, 2.5},
		{"model.lrs_config.weight_decay", "1e-4", func(c config.Config) any { return c.Training.Optimizer.WeightDecay }, 1e-4},
		{enc + "norm", "RMSNorm", func(c config.Config) any { return c.Model.Encoder.Norm }, "RMSNorm"},
		{enc + "norm_type", "hybrid", func(c config.Config) any {
			e := c.Model.Encoder
			return [3]any{e.NormType, e.DoQKNorm, e.DoVNorm}
		}, [3]any{"hybrid", true, true}},
		{enc + "dense_kwargs.gated", true, func(c config.Config) any { return c.Model.Encoder.Gated }, true},
		{enc + "attn_kwargs.do_qk_norm", true, func(c config.Config) any { return c.Model.Encoder.DoQKNorm }, true},
		{enc + "attn_kwargs.do_v_norm", true, func(c config.Config) any { return c.Model.Encoder.DoVNorm }, true},
		{enc + "ls_init", 1e-3, func(c config.Config) any { return c.Model.Encoder.LSInit }, 1e-3},
		{enc + "drop_path", 0.1, func(c config.Config) any { return c.Model.Encoder.DropPath }, 0.1},
		{enc + "drop_registers", true, func(c config.Config) any { return c.Model.Encoder.DropRegisters }, true},
		{"model.model.init_args.init_nets.0.dense_config.dropout", 0.1, func(c config.Config) any { return c.Model.InitNets[0].Dropout }, 0.1},
		{task0 + "dense_config.dropout", 0.2, func(c config.Config) any { return c.Model.Tasks[0].Dropout }, 0.2},
		{"model.model.init_args.tasks.init_args.modules.2.init_args.dense_config.dropout", 0.1, func(c config.Config) any { return c.Model.Tasks[2].Dropout }, 0.1},
		{"model.model.init_args.init_nets.0.dense_config.activation", "Mish", func(c config.Config) any { return c.Model.InitNets[0].Activation }, "Mish"},
		{"model.model.init_args.encoder.class_path", "salt.models.TransformerV2", func(c config.Config) any { return c.Model.Encoder.Layers }, 4},
		{"trainer.devices", 4, func(c config.Config) any { return c.Data.BatchSize }, 16000},
		{"data.input_map", map[string]any{"tracks": "tracks_loose", "jets": "jets"}, func(c config.Config) any { return c.Data.InputMap["tracks"] }, "tracks_loose"},
		{"data.selections", map[string]any{"tracks": []any{"d0 < 3.5"}}, func(c config.Config) any { return c.Data.Selections["tracks"][0] }, "d0 < 3.5"},
		{"model.optimizer", "lion", func(c config.Config) any { return [2]any{c.Training.Optimizer.Name, c.Training.Optimizer.Beta2} }, [2]any{"lion", 0.99}},
		{"model.loss_mode", "GLS", func(c config.Config) any { return c.Training.LossWeighting }, "GLS"},
	} {
		t.Run(c.key, func(t *testing.T) {
			m := gn2Config(t)
			set(t, m, c.key, c.value)
			conv, err := convert(t, m, ConvertOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := c.check(conv.Config); !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s: %v gives %v, want %v", c.key, c.value, got, c.want)
			}
		})
	}
}

// TestConvertRejects checks that a configuration using what salt-ort
// lacks is one error that names every such key, and that each key alone is
// refused with its reason.
func TestConvertRejects(t *testing.T) {
	const ia = "model.model.init_args."
	const enc = ia + "encoder.init_args."
	const task0 = ia + "tasks.init_args.modules.0.init_args."
	cases := []struct {
		key   string
		value any
		want  string
	}{
		{enc + "norm", "BatchNorm", "LayerNorm or RMSNorm"},
		{enc + "norm_type", "sandwich", "pre-norm, post-norm or hybrid"},
		{ia + "pool_net.class_path", "salt.models.NodeQueryGAP", "GlobalAttentionPooling"},
		{ia + "merge_dict", map[string]any{"all": []any{"tracks"}}, "give each group its own init net"},
		{task0 + "loss.init_args.label_smoothing", 0.1, "label smoothing"},
		{task0 + "sample_weight", "weight", "reduction \"none\""},
		{ia + "tasks.init_args.modules.2.class_path", "salt.models.MaskFormerTask", "GaussianRegressionTask"},
		{"model.loss_mode", "geometric", "wsum or GLS"},
		{"model.optimizer", "HybridMuonAdamW", "AdamW or Lion"},
		{"trainer.accumulate_grad_batches", 4, "after every batch"},
		{"trainer.devices", "many", "number of devices"},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			m := gn2Config(t)
			set(t, m, c.key, c.value)
			_, err := convert(t, m, ConvertOptions{})
			var ce *ConfigError
			if !errors.As(err, &ce) || !names(err, c.key) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%s = %v: got %v, want an error naming the key with %q", c.key, c.value, err, c.want)
			}
		})
	}
	// All at once: one error, every key in it.
	m := gn2Config(t)
	for _, c := range cases {
		if !strings.HasSuffix(c.key, "class_path") {
			set(t, m, c.key, c.value)
		}
	}
	_, err := convert(t, m, ConvertOptions{})
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a ConfigError", err)
	}
	for _, c := range cases {
		if !strings.HasSuffix(c.key, "class_path") && !names(err, c.key) {
			t.Errorf("the error does not name %s:\n%v", c.key, err)
		}
	}
}

// names reports whether err names key, or a key below it, as a problem.
func names(err error, key string) bool {
	return strings.Contains(err.Error(), "\n  "+key+":") || strings.Contains(err.Error(), "\n  "+key+".")
}

// TestConvertNeedsConstituentCount checks that a group whose constituent
// count neither data.num_inputs, --max-len nor a readable training file
// gives is an error naming the key and both fixes.
func TestConvertNeedsConstituentCount(t *testing.T) {
	data, err := yaml.Marshal(gn2Config(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Convert("config.yaml", data, ConvertOptions{})
	if err == nil || !strings.Contains(err.Error(), "data.num_inputs.tracks:") || !strings.Contains(err.Error(), "--max-len tracks=N") {
		t.Fatalf("got %v", err)
	}
}

// TestConvertLosses checks the losses Salt's configurations write beyond
// cross entropy: BCEWithLogitsLoss for a binary classification, L1Loss
// for a regression, and a sample weight on the unreduced loss (Salt's
// mean of weight × loss over every entry).
func TestConvertLosses(t *testing.T) {
	const task0 = "model.model.init_args.tasks.init_args.modules.0.init_args."
	m := gn2Config(t)
	set(t, m, task0+"loss", map[string]any{"class_path": "torch.nn.BCEWithLogitsLoss", "init_args": map[string]any{"reduction": "none"}})
	set(t, m, task0+"class_names", []any{"bjets"})
	set(t, m, task0+"dense_config.output_size", 1)
	set(t, m, task0+"sample_weight", "weight")
	delete(lookupMap(t, m, task0+"loss"), "weight")
	set(t, m, task0+"use_class_dict", false)
	conv, err := convert(t, m, ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	task := conv.Config.Model.Tasks[0]
	if task.Loss != "BCEWithLogitsLoss" || task.SampleWeight != "weight" || task.LossMean != "entries" || len(task.ClassWeights) != 0 {
		t.Errorf("binary task converted to loss %q, sample_weight %q, loss_mean %q, class weights %v", task.Loss, task.SampleWeight, task.LossMean, task.ClassWeights)
	}
}

// lookupMap returns the map at a dotted path of a configuration tree.
func lookupMap(t *testing.T, m map[string]any, path string) map[string]any {
	t.Helper()
	v, ok := lookup(m, path)
	out, isMap := v.(map[string]any)
	if !ok || !isMap {
		t.Fatalf("%s is not a map", path)
	}
	return out
}

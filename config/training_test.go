package config

import (
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/graph/model"
)

// TestOptimizerDefaults checks the optimizer settings each name gets.
func TestOptimizerDefaults(t *testing.T) {
	for _, c := range []struct {
		name, text   string
		beta1, beta2 float64
	}{
		{"adamw", "", 0.9, 0.999},
		{"lion takes lion-pytorch's beta2", "[training.optimizer]\nname = \"lion\"\n", 0.9, 0.99},
		{"lion with beta2 set", "[training.optimizer]\nname = \"lion\"\nbeta2 = 0.98\n", 0.9, 0.98},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse("minimal.toml", []byte(minimal+c.text))
			if err != nil {
				t.Fatal(err)
			}
			if o := cfg.Training.Optimizer; o.Beta1 != c.beta1 || o.Beta2 != c.beta2 {
				t.Errorf("betas %g, %g; want %g, %g", o.Beta1, o.Beta2, c.beta1, c.beta2)
			}
			enc, err := cfg.Encode()
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse("resolved.toml", enc)
			if err != nil || back.Training.Optimizer != cfg.Training.Optimizer {
				t.Errorf("resolved configuration: %v, optimizer %+v, want %+v", err, back.Training.Optimizer, cfg.Training.Optimizer)
			}
		})
	}
}

// TestTrainingErrors checks the errors of [training] settings.
func TestTrainingErrors(t *testing.T) {
	for _, c := range []struct {
		name, text, key, want string
	}{
		{"unknown optimizer", "[training.optimizer]\nname = \"adam\"\n", "training.optimizer.name", `"lion"`},
		{"lion beta2", "[training.optimizer]\nname = \"lion\"\nbeta2 = 1.0\n", "training.optimizer", "Lion needs 0 < beta1, beta2 < 1"},
		{"unknown loss weighting", "[training]\nloss_weighting = \"geometric\"\n", "training.loss_weighting", `"GLS"`},
		{"GLS with a task weight", "weight = 0.5\n[training]\nloss_weighting = \"GLS\"\n", "model.tasks.weight", "does not use task weights"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("minimal.toml", []byte(minimal+c.text))
			ce, ok := err.(*Error)
			if !ok || ce.Key != c.key || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want key %s and %q", err, c.key, c.want)
			}
		})
	}
}

// TestGLS checks that loss_weighting = "GLS" (any case) makes the model's
// loss the geometric mean.
func TestGLS(t *testing.T) {
	for _, v := range []string{"GLS", "gls"} {
		cfg, err := Parse("minimal.toml", []byte(minimal+"[training]\nloss_weighting = \""+v+"\"\n"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := cfg.Spec(nil)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Training.LossWeighting != "GLS" || s.LossMode != model.GeometricMean {
			t.Errorf("%s: loss weighting %q, loss mode %q", v, cfg.Training.LossWeighting, s.LossMode)
		}
	}
}

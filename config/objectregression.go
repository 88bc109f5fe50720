package config

import (
	"slices"
	"strings"

	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/nn"
)

// ObjectRegression is Salt's RegressionTask on the mask decoder's objects
// (a task with input_name objects): [model.mask_decoder.regression]. An
// MLP on each object's embedding regresses the properties (targets,
// fields of data.mf_config.object.name) of the truth object it is matched
// to, scaled by Salt's RegressionTargetScaler operations (scaler), with an
// L1 loss over the slots holding a truth object.
type ObjectRegression struct {
	// Name names the loss term (default "regression", Salt's task name).
	Name string `toml:"name"`
	// Targets are the truth objects' fields regressed.
	Targets []string `toml:"targets"`
	// Weight is the task's weight (default 1); the loss term is
	// weight × loss_config.loss_weights.regression × the L1 loss.
	Weight *float64 `toml:"weight"`
	// Hidden and Activation are the head's hidden layer sizes (Salt's
	// dense_config.hidden_layers) and their activation (default ReLU).
	Hidden     []int  `toml:"hidden"`
	Activation string `toml:"activation"`
	// Scaler maps targets to Salt's RegressionTargetScaler operations; a
	// target without one is regressed as it is.
	Scaler map[string]Scale `toml:"scaler"`
	// Loss is the loss by PyTorch's class name: "L1Loss", the only one
	// (Salt's MaskFormer.yaml's).
	Loss string `toml:"loss,omitempty"`
}

// objectRegressionKey is the table of the object regression.
const objectRegressionKey = "model.mask_decoder.regression"

// validateObjectRegression checks [model.mask_decoder.regression].
func (c *Config) validateObjectRegression(r *ObjectRegression) error {
	const p = objectRegressionKey + "."
	switch {
	case len(r.Targets) == 0:
		return c.errorf(p+"targets", "no targets: name the fields of data.mf_config.object.name to regress, e.g. [\"pt\", \"Lxy\", \"deta\", \"dphi\", \"mass\"]")
	case r.Weight != nil && !(*r.Weight >= 0):
		return c.errorf(p+"weight", "%g: the task weight must be a number ≥ 0", *r.Weight)
	case r.Loss != "" && r.Loss != "L1Loss":
		return c.errorf(p+"loss", "%q: the objects' regression trains with L1Loss (Salt's MaskFormer); set loss = \"L1Loss\" or remove it", r.Loss)
	case slices.Contains([]string{"object_class_ce", "mask_ce", "mask_dice", "mask_focal"}, r.Name):
		return c.errorf(p+"name", "%q is a mask decoder loss term's name: give the regression another (Salt's: \"regression\")", r.Name)
	}
	for i, t := range r.Targets {
		if slices.Contains(r.Targets[:i], t) {
			return c.errorf(p+"targets", "%q is given twice: list each target once", t)
		}
	}
	for _, h := range r.Hidden {
		if h < 1 {
			return c.errorf(p+"hidden", "layer size %d: sizes must be at least 1", h)
		}
	}
	if r.Activation != "" {
		if _, err := nn.ParseActivation(r.Activation); err != nil {
			return c.errorf(p+"activation", "%q: use ReLU, SiLU or GELU", r.Activation)
		}
	}
	for _, target := range sortedKeys(r.Scaler) {
		sc := r.Scaler[target]
		if !slices.Contains(r.Targets, target) {
			return c.errorf(p+"scaler", "scaler for %q, which is not one of the targets %s", target, strings.Join(r.Targets, ", "))
		}
		if !slices.Contains([]string{"log", "exp", "linear"}, sc.Op) {
			return c.errorf(p+"scaler."+target+".op", "op must be \"log\", \"exp\" or \"linear\" (Salt's scaler), got %q", sc.Op)
		}
		for k, v := range map[string]*float64{"x_scale": sc.XScale, "op_scale": sc.OpScale} {
			if v != nil && *v == 0 {
				return c.errorf(p+"scaler."+target+"."+k, "target %s: %s must not be 0", target, k)
			}
		}
	}
	return nil
}

// validateRegressionWeights checks the object regression, where given,
// and that the regression weights come with one.
func (c *Config) validateRegressionWeights(md *MaskDecoder) error {
	if md.Regression != nil {
		return c.validateObjectRegression(md.Regression)
	}
	lc := md.LossConfig
	for _, w := range []struct {
		key string
		m   map[string]float64
	}{{"loss_weights", lc.LossWeights}, {"matcher_weights", lc.MatcherWeights}} {
		if w.m["regression"] > 0 {
			return c.errorf("model.mask_decoder.loss_config."+w.key+".regression", "a regression weight without an object regression: add [%s] with its targets (Salt's regression task on the objects), or remove the weight", objectRegressionKey)
		}
	}
	return nil
}

// specObjectRegression returns the model's object regression (nil
// without [model.mask_decoder.regression]) and sets the regression loss
// and matching weights of o as Salt reads them: the loss weight defaults
// to 1 (Salt's loss_weights.get("regression", 1.0)); the matching cost
// has a regression term only where the weights name one.
func (c *Config) specObjectRegression(o *model.Objects) error {
	md := c.Model.MaskDecoder
	lc := md.LossConfig
	r := md.Regression
	if err := c.validateRegressionWeights(md); err != nil || r == nil {
		return err
	}
	o.LossWeights.Regression = 1
	if w, ok := lc.LossWeights["regression"]; ok {
		o.LossWeights.Regression = w
	}
	o.MatcherWeights.Regression = lc.LossWeights["regression"]
	if lc.MatcherWeights != nil {
		o.MatcherWeights.Regression = lc.MatcherWeights["regression"]
	}
	mr := &model.ObjectRegression{Name: r.Name, Targets: r.Targets, Hidden: r.Hidden, Weight: 1}
	if mr.Name == "" {
		mr.Name = "regression"
	}
	if r.Weight != nil {
		mr.Weight = *r.Weight
	}
	if r.Activation != "" {
		mr.Activation, _ = nn.ParseActivation(r.Activation)
	}
	if len(r.Scaler) > 0 {
		mr.Scaling = c.scaling(Task{Targets: r.Targets, Scaler: r.Scaler})
	}
	o.Regression = mr
	return nil
}

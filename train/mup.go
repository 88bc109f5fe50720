package train

import (
	"fmt"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/optim"
)

// muPScales returns the per-parameter AdamW scales of a μP model (Salt's
// MuAdamW; see config.MuPConfig.LRScaling), nil for a model without
// [model.mup_config] or an optimizer other than AdamW, which Salt does not
// scale either.
func muPScales(spec model.Spec, c *config.Config) (map[string]optim.ParamScale, error) {
	if spec.MuP == nil || c.Training.Optimizer.Name == "sgd" || c.Training.Optimizer.Name == "lion" {
		return nil, nil
	}
	mults, err := spec.MuPWidthMults()
	if err != nil {
		return nil, fmt.Errorf("train: μP width multipliers: %w", err)
	}
	scales := map[string]optim.ParamScale{}
	for name, w := range mults {
		sc := optim.MuAdamWScale(w)
		if c.Model.MuPConfig.LRScaling != config.MuPScalingMuP {
			// Salt's OneCycleLR sets every param group's learning rate
			// to the schedule's, undoing MuAdamW's 1/w; the weight decay
			// MuAdamW multiplied by w stays.
			sc.LR = 1
		}
		if sc != (optim.ParamScale{LR: 1, WeightDecay: 1}) {
			scales[name] = sc
		}
	}
	return scales, nil
}

package train

import (
	"fmt"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/loader"
)

// originLabel is the loader label name of a vertexing task's origin labels.
func originLabel(task string) string { return task + "/origin" }

// targetLabel is the loader label name of one regression target.
func targetLabel(task, target string) string { return task + "/" + target }

// LoaderConfig returns the loader configuration of one split (files) of a
// training configuration: the jet dataset and every init net's dataset as
// input groups, and the labels every task reads.
func LoaderConfig(c *config.Config, files []string, norm loader.NormDict, shuffle bool, limit int) loader.Config {
	d := c.Data
	lc := loader.Config{
		Files:         c.ResolveAll(files),
		Weight:        d.SampleWeight,
		WeightDataset: d.JetDataset,
		BatchSize:     d.BatchSize,
		Shuffle:       shuffle,
		Seed:          c.Training.Seed,
		Partial:       loader.PadPartial,
		Norm:          norm,
		Workers:       d.NumWorkers,
		Prefetch:      d.Prefetch,
	}
	if limit > 0 {
		lc.Limit = limit
	}
	if d.NonFinite == "zero" {
		lc.NonFinite = loader.ZeroNonFinite
	}
	lc.Groups = append(lc.Groups, loader.Group{Name: d.JetDataset, Dataset: d.JetDataset, Variables: d.Variables[d.JetDataset]})
	for _, n := range c.Model.InitNets {
		lc.Groups = append(lc.Groups, loader.Group{Name: n.Input, Dataset: n.Input, Variables: d.Variables[n.Input], MaxLen: n.MaxLen})
	}
	for _, t := range c.Model.Tasks {
		switch t.Kind {
		case "jet_classification":
			lc.Labels = append(lc.Labels, loader.Label{Name: t.Name, Dataset: d.JetDataset, Field: t.Label, Kind: loader.ClassLabel, NumClasses: len(t.ClassNames)})
		case "constituent_classification":
			lc.Labels = append(lc.Labels, loader.Label{Name: t.Name, Dataset: t.Input, Field: t.Label, Kind: loader.ClassLabel, NumClasses: len(t.ClassNames)})
		case "vertexing":
			lc.Labels = append(lc.Labels, loader.Label{Name: t.Name, Dataset: t.Input, Field: t.Label, Kind: loader.IndexLabel})
			if t.OriginLabel != "" {
				lc.Labels = append(lc.Labels, loader.Label{Name: originLabel(t.Name), Dataset: t.Input, Field: t.OriginLabel, Kind: loader.ClassLabel})
			}
		case "regression", "gaussian_regression":
			for _, target := range t.Targets {
				lc.Labels = append(lc.Labels, loader.Label{Name: targetLabel(t.Name, target), Dataset: d.JetDataset, Field: target, Kind: loader.FloatLabel})
			}
		}
	}
	return lc
}

// feeder copies loader batches into a graph binding.
type feeder struct {
	spec       model.Spec
	jetDataset string
	labels     bool
}

// fill copies batch b into the inputs of binding bind: the jet and
// constituent inputs and valid masks, and for graphs with losses the jet
// weights and the labels.
func (f *feeder) fill(bind tensors, b *loader.Batch) error {
	copyInto := func(name string, src []float32) error {
		dst, err := bind.Float32(name)
		if err != nil {
			return err
		}
		if len(dst) != len(src) {
			return fmt.Errorf("train: input %s: batch has %d values, graph wants %d", name, len(src), len(dst))
		}
		copy(dst, src)
		return nil
	}
	jets, ok := b.Inputs[f.jetDataset]
	if !ok {
		return fmt.Errorf("train: batch has no %q input", f.jetDataset)
	}
	if err := copyInto(model.JetsInput, jets.Data); err != nil {
		return err
	}
	for _, in := range f.spec.Inputs {
		t, ok := b.Inputs[in.Name]
		if !ok {
			return fmt.Errorf("train: batch has no %q input", in.Name)
		}
		if err := copyInto(in.Name, t.Data); err != nil {
			return err
		}
		valid, err := bind.Bool(model.ValidInput(in.Name))
		if err != nil {
			return err
		}
		copy(valid, t.Valid)
	}
	if !f.labels {
		return nil
	}
	if err := copyInto(model.JetWeightInput, b.Weights); err != nil {
		return err
	}
	for _, task := range f.spec.Tasks {
		switch task.Kind {
		case model.JetRegression, model.JetGaussianRegression:
			dst, err := bind.Float32(model.LabelInput(task.Name))
			if err != nil {
				return err
			}
			n := len(task.Targets)
			for k, target := range task.Targets {
				src := b.Targets[targetLabel(task.Name, target)]
				for j := range src {
					dst[j*n+k] = src[j]
				}
			}
		default:
			dst, err := bind.Int64(model.LabelInput(task.Name))
			if err != nil {
				return err
			}
			copy(dst, b.Labels[task.Name])
			if task.Kind == model.Vertexing && task.OriginWeighting {
				o, err := bind.Int64(model.OriginInput(task.Name))
				if err != nil {
					return err
				}
				copy(o, b.Labels[originLabel(task.Name)])
			}
		}
	}
	return nil
}

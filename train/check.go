package train

import (
	"context"
	"fmt"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/optim"
	"github.com/salt-ort/salt-ort/loader"
	"github.com/salt-ort/salt-ort/run"
)

// SplitCheck is what Check found in one split's files.
type SplitCheck struct {
	Split   string
	Files   []string
	Jets    int
	Batches int
	// NonFinite counts values replaced by 0 (non_finite = "zero").
	NonFinite int64
	// Notes say what the configuration asks that the files do not have
	// (more jets or constituent slots) and what the selections kept.
	Notes []string `json:",omitempty"`
}

// CheckReport is the result of Check.
type CheckReport struct {
	Model         string
	Parameters    int64
	MFLOPsPerJet  float64 // of the training step
	TrainingNodes int
	Splits        []SplitCheck
}

// Check validates a configuration and the data it names without training:
// the dictionaries cover the variables, every file has the datasets and
// fields, every batch reads (labels within their class counts, no
// non-finite inputs unless configured), and the graphs build.
func Check(ctx context.Context, cfg *config.Config) (*CheckReport, error) {
	c, err := Prepare(cfg)
	if err != nil {
		return nil, err
	}
	norm, err := loader.ReadNormDict(c.Data.NormDict)
	if err != nil {
		return nil, err
	}
	// Open every split before the model: a misspelt variable or label is
	// reported as what it is.
	splits := []struct {
		name  string
		key   string
		files []string
		limit int
	}{{"train", "num_train", c.Data.Train, c.Data.NumTrain}, {"val", "num_val", c.Data.Val, c.Data.NumVal}, {"test", "", c.Data.Test, 0}}
	var opened []*loader.Dataset
	defer func() {
		for _, ds := range opened {
			ds.Close()
		}
	}()
	for _, s := range splits {
		if len(s.files) == 0 {
			opened = append(opened, nil)
			continue
		}
		ds, err := loader.Open(run.LoaderConfig(c, s.files, norm, false, s.limit))
		if err != nil {
			return nil, fmt.Errorf("check: %s split: %w", s.name, c.DataError(err))
		}
		opened = append(opened, ds)
	}
	spec, err := run.SpecWithClasses(c, c.Data.ClassDict)
	if err != nil {
		return nil, err
	}
	g, layout, err := spec.TrainStep(model.TrainOptions{Batch: c.Data.BatchSize, Step: optim.Step{Optimizer: optim.DefaultAdamW(), ClipNorm: c.Training.GradClip}})
	if err != nil {
		return nil, err
	}
	cost := g.Cost()
	rep := &CheckReport{Model: spec.Name, Parameters: layout.Size, TrainingNodes: cost.Nodes,
		MFLOPsPerJet: float64(cost.FLOPs()) / float64(c.Data.BatchSize) / 1e6}
	for i, s := range splits {
		ds := opened[i]
		if ds == nil {
			continue
		}
		sc := SplitCheck{Split: s.name, Files: s.files, Jets: ds.Len(), Batches: ds.NumBatches()}
		if s.key != "" {
			sc.Notes = dataNotes(c, s.name, s.key, ds, s.limit)
		}
		ch, errc := ds.Batches(ctx, 0, 0)
		for b := range ch {
			b.Release()
		}
		err = <-errc
		sc.NonFinite = ds.NonFiniteCount()
		sc.Notes = append(sc.Notes, selectionNotes(ds, c.Data.JetDataset, false)...)
		sc.Notes = append(sc.Notes, selectionNotes(ds, c.Data.JetDataset, true)...)
		if err != nil {
			return nil, fmt.Errorf("check: %s split: %w", s.name, c.DataError(err))
		}
		if sc.Jets == 0 {
			return nil, fmt.Errorf("check: %s split: the files hold no jets (%v)", s.name, s.files)
		}
		rep.Splits = append(rep.Splits, sc)
	}
	return rep, nil
}

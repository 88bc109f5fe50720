package evaluate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// runStaged runs the evaluation into a staging directory inside out and
// publishes its files into out.
func runStaged(ctx context.Context, opts Options, out string) (*Report, error) {
	stage, err := os.MkdirTemp(out, ".eval-")
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	defer os.RemoveAll(stage)
	staged := opts
	staged.OutDir = stage
	rep, err := evaluateRun(ctx, staged)
	if err != nil {
		return nil, err
	}
	if err := publish(stage, out); err != nil {
		return nil, err
	}
	rep.OutDir = out
	moved := func(p string) string {
		if p == "" {
			return ""
		}
		return filepath.Join(out, filepath.Base(p))
	}
	for i := range rep.Files {
		f := &rep.Files[i]
		f.Predictions, f.JSON = moved(f.Predictions), moved(f.JSON)
		for k := range f.Plots {
			f.Plots[k] = moved(f.Plots[k])
		}
	}
	rep.LossPlot = moved(rep.LossPlot)
	return rep, nil
}

// publish moves every file of stage into out, replacing files of the same
// names. Should a move fail, the files already moved are removed again.
func publish(stage, out string) error {
	entries, err := os.ReadDir(stage)
	if err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	var done []string
	for _, e := range entries {
		dst := filepath.Join(out, e.Name())
		if err := os.Rename(filepath.Join(stage, e.Name()), dst); err != nil {
			for _, d := range done {
				os.Remove(d)
			}
			return fmt.Errorf("evaluate: %w", err)
		}
		done = append(done, dst)
	}
	return nil
}

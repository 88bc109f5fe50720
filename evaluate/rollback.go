package evaluate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Run evaluates a run on its test files and writes the prediction files,
// summaries and plots (see the package documentation). It writes them
// into a staging directory inside the output directory and moves them
// into place only when every file has been written, so a failed
// evaluation (bad input, a full disk) leaves no output that looks like a
// result, new or half-replaced: the files that were there before stay as
// they were, and an output directory it made is removed.
func Run(ctx context.Context, opts Options) (*Report, error) {
	out := opts.OutDir
	if out == "" {
		out = filepath.Join(opts.RunDir, Dir)
	}
	_, statErr := os.Lstat(out)
	existed := !errors.Is(statErr, fs.ErrNotExist) // a file there, too
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	rep, err := runStaged(ctx, opts, out)
	if err != nil {
		if !existed {
			os.Remove(out) // fails, as it should, when something else is in it
		}
		return nil, err
	}
	if opts.Log != nil {
		for _, f := range rep.Files {
			fmt.Fprintf(opts.Log, "evaluated %s: wrote %s %s\n", f.File, f.Predictions, f.JSON)
		}
	}
	return rep, nil
}

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

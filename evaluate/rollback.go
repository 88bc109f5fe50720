package evaluate

import (
	"context"
	"os"
	"path/filepath"
)

// Run evaluates a run on its test files and writes the prediction files,
// summaries and plots (see the package documentation). When it fails it
// removes the files it had written, and the output directory if it made
// it, so that a failed evaluation (bad input, a full disk) leaves no
// output that looks like a result; files that were there before stay.
func Run(ctx context.Context, opts Options) (*Report, error) {
	out := opts.OutDir
	if out == "" {
		out = filepath.Join(opts.RunDir, Dir)
	}
	before, existed := listNames(out)
	rep, err := run(ctx, opts)
	if err != nil {
		removeNew(out, before, existed)
	}
	return rep, err
}

// listNames returns the names in dir and whether dir exists.
func listNames(dir string) (map[string]bool, bool) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, false
	}
	names := make(map[string]bool, len(entries))
	for _, e := range entries {
		names[e.Name()] = true
	}
	return names, true
}

// removeNew removes the regular files in dir that are not in before, and
// dir itself, when it did not exist before and is then empty.
func removeNew(dir string, before map[string]bool, existed bool) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !before[e.Name()] && e.Type().IsRegular() {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	if !existed {
		os.Remove(dir) // fails, as it should, when something else is in it
	}
}

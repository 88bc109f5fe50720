package evaluate

import (
	"context"
	"errors"
	"io/fs"
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
	_, statErr := os.Lstat(out)
	existed := !errors.Is(statErr, fs.ErrNotExist) // a file there, too
	before := listNames(out)
	rep, err := run(ctx, opts)
	if err != nil {
		removeNew(out, before, existed)
	}
	return rep, err
}

// listNames returns the names in dir (none when it is not a directory).
func listNames(dir string) map[string]bool {
	entries, _ := os.ReadDir(dir)
	names := make(map[string]bool, len(entries))
	for _, e := range entries {
		names[e.Name()] = true
	}
	return names
}

// removeNew removes the regular files in dir that are not in before, and
// dir itself when it did not exist before (existed false) and is then an
// empty directory.
func removeNew(dir string, before map[string]bool, existed bool) {
	if existed {
		if st, err := os.Lstat(dir); err != nil || !st.IsDir() {
			return // not a directory Run wrote into: nothing of Run's there
		}
	}
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

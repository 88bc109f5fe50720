package evaluate

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/graph/graphtest"
)

// copyRun copies a run directory (its files are small).
func copyRun(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "run")
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			if rel == Dir {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestFailedRunLeavesNoOutput makes Run fail after it has written
// predictions, summaries and plots, and checks that it removes them (and
// the output directory it made), keeping what was there before.
func TestFailedRunLeavesNoOutput(t *testing.T) {
	run, data := trainedRun(t)
	cases := []struct {
		name    string
		files   func(run string) []string // test files (nil: the run's)
		breakIt func(t *testing.T, run string)
		outDir  bool // the output directory exists beforehand, with a file
		outFile bool // the output "directory" is a file
		want    string
	}{
		{
			name:    "the output directory is a file",
			outFile: true,
			want:    "eval",
		},
		{
			name:    "the loss plot fails (metrics missing)",
			breakIt: func(t *testing.T, run string) { os.Remove(filepath.Join(run, "metrics", "val.csv")) },
			want:    "val.csv",
		},
		{
			name:    "the loss plot fails, in an existing directory",
			breakIt: func(t *testing.T, run string) { os.Remove(filepath.Join(run, "metrics", "val.csv")) },
			outDir:  true,
			want:    "val.csv",
		},
		{
			name: "the second test file is missing",
			files: func(string) []string {
				return []string{filepath.Join(data, "test.h5"), filepath.Join(data, "absent.h5")}
			},
			want: "absent.h5",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := copyRun(t, run)
			if c.breakIt != nil {
				c.breakIt(t, r)
			}
			out := filepath.Join(t.TempDir(), "eval")
			var before []string
			if c.outFile {
				if err := os.WriteFile(out, []byte("mine"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if c.outDir {
				if err := os.Mkdir(out, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(out, "notes.txt"), []byte("mine"), 0o644); err != nil {
					t.Fatal(err)
				}
				before = []string{"notes.txt"}
			}
			opts := Options{RunDir: r, OutDir: out, FC: DefaultFC, Runtime: graphtest.OpenRuntime(t), Threads: 2}
			if c.files != nil {
				opts.Files = c.files(r)
			}
			_, err := Run(context.Background(), opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one naming %s", err, c.want)
			}
			entries, err := os.ReadDir(out)
			switch {
			case c.outFile:
				if b, err := os.ReadFile(out); err != nil || string(b) != "mine" {
					t.Errorf("the file given as the output directory is now %q (%v)", b, err)
				}
			case !c.outDir && err == nil:
				t.Errorf("the output directory %s was made and left (%d entries)", out, len(entries))
			case c.outDir:
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				if !slices.Equal(names, before) {
					t.Errorf("the output directory holds %v, want %v", names, before)
				}
			}
		})
	}
}

// TestFailedRerunKeepsEarlierResults evaluates a run, then fails a second
// evaluation into the same directory after its first file is written, and
// checks that the earlier results are still there byte for byte: a failed
// run replaces nothing.
func TestFailedRerunKeepsEarlierResults(t *testing.T) {
	run, data := trainedRun(t)
	out := filepath.Join(t.TempDir(), "eval")
	opts := Options{RunDir: run, OutDir: out, FC: DefaultFC, Runtime: graphtest.OpenRuntime(t), Threads: 2, NumJets: 50}
	if _, err := Run(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	before := readDir(t, out)
	opts.NumJets = 60 // other predictions, were they written
	opts.Files = []string{filepath.Join(data, "test.h5"), filepath.Join(data, "absent.h5")}
	if _, err := Run(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "absent.h5") {
		t.Fatalf("error %v, want one naming absent.h5", err)
	}
	after := readDir(t, out)
	if len(after) != len(before) {
		t.Fatalf("the output directory holds %d files after the failed run, %d before", len(after), len(before))
	}
	for name, b := range before {
		if string(after[name]) != string(b) {
			t.Errorf("%s changed although the evaluation failed", name)
		}
	}
}

// readDir returns the contents of every entry of dir by name.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		files[e.Name()] = b
	}
	return files
}

// TestRunWithoutHistory evaluates a run without training history, as
// import-salt makes it: every output but the loss plot is written, and a
// note says why that one is not.
func TestRunWithoutHistory(t *testing.T) {
	run, _ := trainedRun(t)
	r := copyRun(t, run)
	for _, m := range []string{"train.csv", "val.csv"} {
		if err := os.Remove(filepath.Join(r, "metrics", m)); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := Run(context.Background(), Options{RunDir: r, FC: DefaultFC, Runtime: graphtest.OpenRuntime(t), Threads: 2, NumJets: 100})
	if err != nil {
		t.Fatal(err)
	}
	if rep.LossPlot != "" {
		t.Errorf("loss plot %s written without training history", rep.LossPlot)
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], LossPlot) || !strings.Contains(rep.Notes[0], "no training history") {
		t.Errorf("notes %q, want one saying why there is no %s", rep.Notes, LossPlot)
	}
	fr := rep.Files[0]
	for _, p := range append([]string{fr.Predictions, fr.JSON}, fr.Plots...) {
		if filepath.Dir(p) != filepath.Join(r, Dir) {
			t.Errorf("%s: not in the run's eval directory", p)
		}
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
	}
	if len(fr.Plots) != 2 {
		t.Errorf("plots %v, want the discriminant and the ROC curves", fr.Plots)
	}
	if left := readDir(t, filepath.Join(r, Dir)); len(left) != 4 {
		t.Errorf("the eval directory holds %d entries, want the predictions, the summary and 2 plots", len(left))
	}
}

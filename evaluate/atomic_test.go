package evaluate

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestOutputsAtomic writes a summary and a plot to a disk that takes no
// more than 1 KiB per file (RLIMIT_FSIZE; Go ignores SIGXFSZ, so writes
// fail with EFBIG as on a full disk) and checks that neither leaves a
// partial file.
func TestOutputsAtomic(t *testing.T) {
	dir := t.TempDir()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	limit := old
	limit.Cur = 1 << 10
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatal(err)
	}
	jsonErr := writeJSON(filepath.Join(dir, "summary.json"), map[string]string{"pad": strings.Repeat("x", 4<<10)})
	plotErr := PlotROC(filepath.Join(dir, "roc.png"), "title", []ROC{{Background: "light", Efficiency: []float64{0.6, 0.7}, Rejection: []float64{100, math.Inf(1)}}})
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{"summary.json": jsonErr, "roc.png": plotErr} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v, want one naming it", name, err)
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("files left: %v", left)
	}
}

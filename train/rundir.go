package train

import (
	"encoding/csv"
	"errors"
	"fmt"
	"github.com/salt-ort/salt-ort/internal/atomicfile"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Files of a run directory.
const (
	ConfigFile      = "config.toml"   // the configuration as given
	ResolvedFile    = "resolved.toml" // with every default filled in
	NormDictFile    = "norm_dict.yaml"
	ClassDictFile   = "class_dict.yaml"
	CheckpointDir   = "checkpoints"
	LastCheckpoint  = "checkpoints/last.safetensors"
	TrainMetrics    = "metrics/train.csv"
	ValMetrics      = "metrics/val.csv"
	SummaryFile     = "summary.json"
	LogFile         = "train.log"
	checkpointMode  = 0o644
	directoryMode   = 0o755
	temporaryPrefix = atomicfile.TempPrefix
)

// writeFileAtomic writes a run-directory file atomically.
func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.Write(path, data); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// prepareRunDir creates a fresh run directory, refusing one that already
// holds a checkpoint (which --resume continues instead) unless restart is
// set because a resumed run found none. Metrics of a run that stopped
// before its first checkpoint are discarded.
func prepareRunDir(dir string, restart bool) error {
	if _, err := os.Stat(filepath.Join(dir, LastCheckpoint)); err == nil {
		return fmt.Errorf("train: %s already holds a run: continue it with --resume %s, or choose another --out", dir, dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("train: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ResolvedFile)); err == nil && !restart {
		return fmt.Errorf("train: %s holds a run that stopped before its first checkpoint: start it again with --resume %s, or choose another --out", dir, dir)
	}
	for _, stale := range []string{TrainMetrics, ValMetrics} {
		os.Remove(filepath.Join(dir, stale))
	}
	for _, sub := range []string{"", CheckpointDir, "metrics"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), directoryMode); err != nil {
			return fmt.Errorf("train: creating run directory: %w", err)
		}
	}
	return nil
}

// metricsTable is a CSV file of metrics rows that a resumed run cuts back
// to the checkpoint before appending.
type metricsTable struct {
	path   string
	header []string
	rows   [][]string
}

// openMetrics reads an existing table at path (if any), keeping the rows
// whose first column is at most keepUpTo, or starts a new one.
func openMetrics(path string, header []string, keepUpTo int) (*metricsTable, error) {
	t := &metricsTable{path: path, header: header}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	records, err := csv.NewReader(strings.NewReader(string(data))).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("train: %s: %w", path, err)
	}
	if len(records) == 0 || strings.Join(records[0], ",") != strings.Join(header, ",") {
		return nil, fmt.Errorf("train: %s: columns differ from this configuration's (was the configuration changed?)", path)
	}
	for _, r := range records[1:] {
		if n, err := strconv.Atoi(r[0]); err == nil && n <= keepUpTo {
			t.rows = append(t.rows, r)
		}
	}
	return t, nil
}

// add appends a row; flush writes the table.
func (t *metricsTable) add(row []string) { t.rows = append(t.rows, row) }

func (t *metricsTable) flush() error {
	if t.path == "" { // a table kept in memory only
		return nil
	}
	var b strings.Builder
	w := csv.NewWriter(&b)
	w.Write(t.header)
	w.WriteAll(t.rows)
	if err := w.Error(); err != nil {
		return err
	}
	return writeFileAtomic(t.path, []byte(b.String()))
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', 8, 64) }

// removeStaleTemporaries deletes the temporary files a run killed while
// writing (kill -9, power loss) leaves in its run directory; the files they
// were meant to replace are intact.
func removeStaleTemporaries(dir string) {
	for _, sub := range []string{"", CheckpointDir, "metrics"} {
		matches, _ := filepath.Glob(filepath.Join(dir, sub, ".*"))
		for _, m := range matches {
			base := filepath.Base(m)
			if strings.HasPrefix(base, temporaryPrefix) || strings.Contains(base, ".tmp") {
				os.Remove(m)
			}
		}
	}
}

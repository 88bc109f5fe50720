package run

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/salt-ort/salt-ort/internal/atomicfile"
)

// Files of a run directory.
const (
	ConfigFile     = "config.toml"   // the configuration as given
	ResolvedFile   = "resolved.toml" // with every default filled in
	NormDictFile   = "norm_dict.yaml"
	ClassDictFile  = "class_dict.yaml"
	CheckpointDir  = "checkpoints"
	LastCheckpoint = "checkpoints/last.safetensors"
	MetricsDir     = "metrics"
	TrainMetrics   = "metrics/train.csv" // TrainColumns
	ValMetrics     = "metrics/val.csv"   // ValColumns
	SummaryFile    = "summary.json"
	LogFile        = "train.log"
)

// Permissions of what a run directory holds, and the prefix of the
// temporary names its files are written under before they are renamed into
// place (RemoveTemporaries).
const (
	FileMode   = 0o644
	DirMode    = 0o755
	TempPrefix = atomicfile.TempPrefix
)

// WriteFile writes a run-directory file atomically.
func WriteFile(path string, data []byte) error {
	if err := atomicfile.Write(path, data); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	return nil
}

// PrepareDir creates a fresh run directory, refusing one that already
// holds a checkpoint (which --resume continues instead) unless restart is
// set because a resumed run found none. Metrics of a run that stopped
// before its first checkpoint are discarded.
func PrepareDir(dir string, restart bool) error {
	if _, err := os.Stat(filepath.Join(dir, LastCheckpoint)); err == nil {
		return fmt.Errorf("run: %s already holds a run: continue it with --resume %s, or choose another --out", dir, dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("run: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ResolvedFile)); err == nil && !restart {
		return fmt.Errorf("run: %s holds a run that stopped before its first checkpoint: start it again with --resume %s, or choose another --out", dir, dir)
	}
	for _, stale := range []string{TrainMetrics, ValMetrics} {
		os.Remove(filepath.Join(dir, stale))
	}
	for _, sub := range []string{"", CheckpointDir, MetricsDir} {
		if err := os.MkdirAll(filepath.Join(dir, sub), DirMode); err != nil {
			return fmt.Errorf("run: creating run directory: %w", err)
		}
	}
	return nil
}

// MetricsTable is a CSV file of metrics rows that a resumed run cuts back
// to the checkpoint before appending.
type MetricsTable struct {
	path   string
	header []string
	rows   [][]string
}

// OpenMetrics reads an existing table at path (if any), keeping the rows
// whose first column is at most keepUpTo, or starts a new one.
func OpenMetrics(path string, header []string, keepUpTo int) (*MetricsTable, error) {
	t := &MetricsTable{path: path, header: header}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	records, err := csv.NewReader(strings.NewReader(string(data))).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("run: %s: %w", path, err)
	}
	if len(records) == 0 || strings.Join(records[0], ",") != strings.Join(header, ",") {
		return nil, fmt.Errorf("run: %s: columns differ from this configuration's (was the configuration changed?)", path)
	}
	for _, r := range records[1:] {
		if n, err := strconv.Atoi(r[0]); err == nil && n <= keepUpTo {
			t.rows = append(t.rows, r)
		}
	}
	return t, nil
}

// Add appends a row.
func (t *MetricsTable) Add(row []string) { t.rows = append(t.rows, row) }

// Rows returns the table's rows, the header left out.
func (t *MetricsTable) Rows() [][]string { return t.rows }

// Header returns the table's column names.
func (t *MetricsTable) Header() []string { return t.header }

// Flush writes the table; one opened with path "" is kept in memory only.
func (t *MetricsTable) Flush() error {
	if t.path == "" {
		return nil
	}
	var b strings.Builder
	w := csv.NewWriter(&b)
	w.Write(t.header)
	w.WriteAll(t.rows)
	if err := w.Error(); err != nil {
		return err
	}
	return WriteFile(t.path, []byte(b.String()))
}

// RemoveTemporaries deletes the temporary files a run killed while
// writing (kill -9, power loss) leaves in its run directory, which every
// writer names with TempPrefix (internal/atomicfile); the files they were
// meant to replace are intact.
func RemoveTemporaries(dir string) {
	for _, sub := range []string{"", CheckpointDir, MetricsDir} {
		matches, _ := filepath.Glob(filepath.Join(dir, sub, ".*"))
		for _, m := range matches {
			base := filepath.Base(m)
			if strings.HasPrefix(base, TempPrefix) {
				os.Remove(m)
			}
		}
	}
}

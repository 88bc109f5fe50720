package loader

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestWriteDictsAtomic writes norm and class dictionaries over existing
// ones on a disk that takes no more than 16 bytes per file (RLIMIT_FSIZE;
// Go ignores SIGXFSZ, so writes fail with EFBIG as on a full disk), and
// checks that each write fails naming the file and leaves the old
// dictionary intact and no temporary file: `salt-ort norm` on a full disk
// left a truncated norm_dict.yaml.
func TestWriteDictsAtomic(t *testing.T) {
	nd := NormDict{"tracks": {"d0": {Mean: 0.5, Std: 1.5}, "z0SinTheta": {Mean: -0.25, Std: 2}}}
	cd := ClassDict{"jets": {"flavour_label": {0.8, 1.2, 0.5, 4.9}}}
	cases := []struct {
		name  string
		write func(path string) error
	}{
		{"norm_dict.yaml", func(p string) error { return WriteNormDict(p, nd) }},
		{"class_dict.yaml", func(p string) error { return WriteClassDict(p, cd) }},
	}
	dir := t.TempDir()
	old := []byte("old: {}\n")
	for _, c := range cases {
		if err := os.WriteFile(filepath.Join(dir, c.name), old, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var saved syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &saved); err != nil {
		t.Fatal(err)
	}
	small := saved
	small.Cur = 16
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &small); err != nil {
		t.Fatal(err)
	}
	errs := make([]error, len(cases))
	for i, c := range cases {
		errs[i] = c.write(filepath.Join(dir, c.name))
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &saved); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		path := filepath.Join(dir, c.name)
		if errs[i] == nil || !strings.Contains(errs[i].Error(), path) {
			t.Errorf("%s: error %v, want one naming the file", c.name, errs[i])
		}
		if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, old) {
			t.Errorf("%s: now %q (%v), want the old dictionary", c.name, b, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != len(cases) {
		t.Errorf("the directory holds %d files, want %d: %v", len(entries), len(cases), entries)
	}
}

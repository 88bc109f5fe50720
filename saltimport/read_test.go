package saltimport

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestReadYAMLBounds gives the configuration reader YAML on which
// go.yaml.in/yaml/v3 spends far more than the file's size: each is refused
// within a second, naming the file and the key path, while Salt's own
// configurations still read.
func TestReadYAMLBounds(t *testing.T) {
	var wide, aliases, laughs strings.Builder
	wide.WriteString("data:\n  variables:\n")
	for i := 0; wide.Len() < maxConfigBytes-100; i++ {
		fmt.Fprintf(&wide, "    v%d: 1\n", i)
	}
	aliases.WriteString("base: &b {a: 1, b: 2, c: 3}\nmodel:\n")
	for aliases.Len() < maxConfigBytes-100 {
		aliases.WriteString("- *b\n")
	}
	laughs.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 12; i++ {
		fmt.Fprintf(&laughs, "a%d: &a%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 10), ", "))
	}
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("a: "+strings.Repeat("x", maxConfigBytes)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, text, want string
	}{
		{"wide mapping", wide.String(), "data.variables: a mapping of"},
		{"aliases to a mapping", aliases.String(), "(file): aliases expand the document to more than 500000 values"},
		{"billion laughs", laughs.String(), "(file): aliases expand the document to more than 500000 values"},
		{"over the size limit", "", "(file): larger than 2 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			if tc.text == "" {
				path = big
			} else if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { _, err := readFile(path); done <- err }()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("still reading after 5 s")
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.File != path || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a configuration error naming %s with %q", err, path, tc.want)
			}
		})
	}
}

// TestFileHashStreams hashes a 64 MiB file, as the import report hashes a
// checkpoint: the digest is the file's and the file is not held in memory.
func TestFileHashStreams(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.ckpt")
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := fh.Truncate(64 << 20); err != nil { // sparse: zeros, no disk used
		t.Fatal(err)
	}
	fh.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got := fileHash(path)
	runtime.ReadMemStats(&after)
	want := sha256.Sum256(make([]byte, 64<<20))
	if got != hex.EncodeToString(want[:]) {
		t.Errorf("fileHash = %s, want %x", got, want)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("hashing a 64 MiB file allocated %d bytes", n)
	}
	if got := fileHash(filepath.Join(t.TempDir(), "missing")); got != "unreadable" {
		t.Errorf("fileHash of a missing file = %q", got)
	}
}

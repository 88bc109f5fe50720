package checkpoint

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// allocated returns the bytes the heap allocated while f ran.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestDecodeBoundsAllocation gives Decode and Read files whose header
// declares far more data than they hold: each fails as truncated, naming
// the tensor, after allocating about what the file holds, not what it
// declares.
func TestDecodeBoundsAllocation(t *testing.T) {
	const huge = 8 << 30 // declared bytes of tensor "w"
	header := `{"w":{"dtype":"F32","shape":[2147483648],"data_offsets":[0,8589934592]}}`
	small := file(header, make([]byte, 16))
	tests := []struct {
		name string
		size int64 // the size Decode is told
		want string
	}{
		// The header's offsets are checked against the file's size
		// before anything is read.
		{"offsets past the file", int64(len(small)), `tensor "w": data_offsets [0 8589934592] reach past the 16-byte data section`},
		// A size the reader does not back: the data section is read as
		// it arrives.
		{"size past the reader", int64(len(small)) - 16 + huge, `file ended inside tensor "w" (data_offsets [0 8589934592]), 16 bytes into the data section`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			n := allocated(func() { _, err = Decode(bytes.NewReader(small), tt.size) })
			if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode error = %v, want it truncated with %q", err, tt.want)
			}
			if n > 2*dataChunk {
				t.Errorf("Decode allocated %d bytes for a %d-byte file", n, len(small))
			}
		})
	}
	path := filepath.Join(t.TempDir(), "hostile.safetensors")
	if err := os.WriteFile(path, small, 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	if n := allocated(func() { _, err = Read(path) }); n > 1<<20 {
		t.Errorf("Read allocated %d bytes for a %d-byte file", n, len(small))
	}
	if err == nil || !strings.Contains(err.Error(), path+`: truncated: tensor "w": data_offsets [0 8589934592] reach past`) {
		t.Errorf("Read error = %v, want it to name %s and tensor w", err, path)
	}
}

package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/salt-ort/salt-ort/internal/atomicfile"
)

// faultyFile is a real temporary file whose writes fail with ENOSPC once
// room bytes have been written, as on a full disk, and whose Sync and Close
// can be made to fail.
type faultyFile struct {
	*os.File
	room     int
	syncErr  error
	closeErr error
}

func (f *faultyFile) Write(p []byte) (int, error) {
	if len(p) <= f.room {
		f.room -= len(p)
		return f.File.Write(p)
	}
	n, _ := f.File.Write(p[:f.room])
	f.room = 0
	return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
}

func (f *faultyFile) Sync() error {
	if f.syncErr != nil {
		return f.syncErr
	}
	return f.File.Sync()
}

func (f *faultyFile) Close() error {
	err := f.File.Close()
	if f.closeErr != nil {
		return f.closeErr
	}
	return err
}

// listDir returns the names in dir, sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	for i, f := range []*File{sample(), {Metadata: map[string]string{"epoch": "4"}}} {
		if err := Write(path, f); err != nil {
			t.Fatalf("Write %d: %v", i, err)
		}
		got, err := Read(path)
		if err != nil {
			t.Fatalf("Read %d: %v", i, err)
		}
		if !sameFile(got, f) {
			t.Errorf("Read(Write(f)) %d = %+v, want %+v", i, got, f)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if want := encode(t, sealed(f)); !bytes.Equal(b, want) {
			t.Errorf("Write %d wrote other bytes than Encode with the checksum", i)
		}
		if names := listDir(t, dir); !slices.Equal(names, []string{"model.safetensors"}) {
			t.Errorf("directory after Write %d holds %q", i, names)
		}
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm&0o600 != 0o600 || perm&0o111 != 0 {
		t.Errorf("permissions %v, want rw for the owner and no execute", perm)
	}
}

func TestWriteRelativePath(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := Write("ckpt.safetensors", sample()); err != nil {
		t.Fatal(err)
	}
	if _, err := Read("ckpt.safetensors"); err != nil {
		t.Fatal(err)
	}
}

// TestWriteFailures checks that a failed Write, at any point before the
// rename, leaves the previous checkpoint byte-identical and no temporary
// file behind.
func TestWriteFailures(t *testing.T) {
	old := &File{Metadata: map[string]string{"epoch": "1"}}
	old.SetFloat32("w", []int64{2}, []float32{1, 2})
	next := sample()
	// What Write writes: the file with its checksum.
	size := len(encode(t, sealed(next)))
	header := 8 + int(binary.LittleEndian.Uint64(encode(t, sealed(next))))
	errSync := errors.New("injected sync failure")
	errClose := errors.New("injected close failure")
	errRename := errors.New("injected rename failure")

	tests := []struct {
		name     string
		file     *File
		room     int // bytes the disk takes before ENOSPC
		syncErr  error
		closeErr error
		rename   error
		want     error  // wrapped by Write's error, when not nil
		wantMsg  string // in Write's error
	}{
		{"disk full at once", next, 0, nil, nil, nil, syscall.ENOSPC, "write header: "},
		{"disk full in length prefix", next, 5, nil, nil, nil, syscall.ENOSPC, "write header: "},
		{"disk full in header", next, header / 2, nil, nil, nil, syscall.ENOSPC, "write header: "},
		{"disk full after header", next, header, nil, nil, nil, syscall.ENOSPC, "write data: "},
		{"disk full in data", next, header + 3, nil, nil, nil, syscall.ENOSPC, "write data: "},
		{"disk full at last byte", next, size - 1, nil, nil, nil, syscall.ENOSPC, "write data: "},
		{"sync fails", next, size, errSync, nil, nil, errSync, "sync "},
		{"close fails", next, size, nil, errClose, nil, errClose, "close "},
		{"rename fails", next, size, nil, nil, errRename, errRename, ""},
		{"invalid file", &File{Tensors: map[string]Tensor{"w": {DType: F32, Shape: []int64{3}}}}, size, nil, nil, nil, nil,
			`tensor "w": shape [3] of F32 needs 12 bytes, data has 0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "model.safetensors")
			if err := Write(path, old); err != nil {
				t.Fatal(err)
			}
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			fs := atomicfile.OS()
			created := false
			fs.Create = func(name string) (atomicfile.File, error) {
				created = true
				if filepath.Dir(name) != dir || !strings.HasPrefix(filepath.Base(name), atomicfile.TempPrefix+"model.safetensors-") {
					t.Errorf("temporary file %s, want %smodel.safetensors-* in %s", name, atomicfile.TempPrefix, dir)
				}
				f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
				if err != nil {
					return nil, err
				}
				return &faultyFile{File: f, room: tt.room, syncErr: tt.syncErr, closeErr: tt.closeErr}, nil
			}
			if tt.rename != nil {
				fs.Rename = func(from, to string) error { return tt.rename }
			}
			fs.SyncDir = func(string) error {
				t.Error("directory synced after a failure")
				return nil
			}

			err = write(fs, path, tt.file)
			if err == nil {
				t.Fatal("write succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v does not wrap %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "checkpoint: "+path+": ") || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q, want it to name %s and contain %q", err, path, tt.wantMsg)
			}
			if tt.want == nil && created {
				t.Error("an invalid file reached the disk")
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(after, before) {
				t.Error("the previous checkpoint changed")
			}
			if names := listDir(t, dir); !slices.Equal(names, []string{"model.safetensors"}) {
				t.Errorf("directory holds %q, want only the previous checkpoint", names)
			}
		})
	}
}

func TestWriteSyncDirFailure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	fs := atomicfile.OS()
	errDir := errors.New("injected directory sync failure")
	fs.SyncDir = func(string) error { return errDir }
	err := write(fs, path, sample())
	if !errors.Is(err, errDir) || !strings.Contains(err.Error(), "written, but syncing directory") {
		t.Fatalf("write = %v, want the directory sync failure", err)
	}
	if _, err := Read(path); err != nil {
		t.Errorf("the new checkpoint is not in place: %v", err)
	}
}

func TestWriteMissingDirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "no", "such", "model.safetensors")
	err := Write(path, sample())
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "checkpoint: "+path+": create temporary file: ") {
		t.Errorf("Write = %v", err)
	}
	if names := listDir(t, dir); len(names) != 0 {
		t.Errorf("directory holds %q", names)
	}
}

func TestWriteTempNameCollision(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	fs := atomicfile.OS()
	tries := 0
	create := fs.Create
	fs.Create = func(name string) (atomicfile.File, error) {
		tries++
		if tries < 3 {
			return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrExist}
		}
		return create(name)
	}
	if err := write(fs, path, sample()); err != nil {
		t.Fatal(err)
	}
	if tries != 3 {
		t.Errorf("%d tries, want 3", tries)
	}
}

// TestChecksum checks that Read refuses a checkpoint whose tensor bytes
// changed after Write, wherever the change is, and reads one without a
// checksum (written by Encode, or by another tool) as before.
func TestChecksum(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.safetensors")
	if err := Write(good, sample()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	data := 8 + int(binary.LittleEndian.Uint64(b)) // the data section's first byte
	cases := []struct {
		name string
		edit func([]byte) []byte
		want error // nil: reads
	}{
		{"as written", func(b []byte) []byte { return b }, nil},
		{"first data byte flipped", func(b []byte) []byte { b[data] ^= 1; return b }, ErrChecksum},
		{"last data byte flipped", func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }, ErrChecksum},
		{"a middle byte's high bit", func(b []byte) []byte { b[(data+len(b))/2] ^= 0x40; return b }, ErrChecksum},
		{"checksum digit changed", func(b []byte) []byte {
			i := bytes.Index(b, []byte(ChecksumKey+`":"`)) + len(ChecksumKey) + 3
			b[i] ^= 1 // the recorded sum no longer matches the data
			return b
		}, ErrChecksum},
		{"without a checksum (Encode)", func([]byte) []byte { return encode(t, sample()) }, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "edited.safetensors")
			if err := os.WriteFile(path, c.edit(slices.Clone(b)), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := Read(path)
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if !sameFile(f, sample()) {
					t.Fatalf("read %+v, want the sample without the checksum", f)
				}
				return
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "another checkpoint") {
				t.Fatalf("error %v; want %v naming %s and the fix", err, c.want, path)
			}
		})
	}
}

// TestReadCorruptSaysFix checks that Read's errors for a file that is not
// a whole checkpoint (cut short, damaged, not safetensors) name the file
// and the fix.
func TestReadCorruptSaysFix(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.safetensors")
	if err := Write(good, sample()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"cut short", b[:len(b)/2]},
		{"4 bytes", b[:4]},
		{"header length damaged", append([]byte{b[0] ^ 0x02}, b[1:]...)},
		{"an ONNX model", []byte{0x08, 0x08, 0x12, 0x08, 's', 'a', 'l', 't', '-', 'o', 'r', 't'}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.safetensors")
			if err := os.WriteFile(path, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Read(path)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "use another checkpoint or copy it again") {
				t.Fatalf("error %v, want one naming %s and the fix", err, path)
			}
		})
	}
}

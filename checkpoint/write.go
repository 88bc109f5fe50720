package checkpoint

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

// Write writes f to path in canonical safetensors form (see [Encode]),
// with a checksum of the tensor data added to the metadata under
// [ChecksumKey], atomically: it writes a temporary file in the same directory, named
// ".<base of path>.tmp<random digits>", syncs it to stable storage, renames
// it over path and syncs the directory. Readers of path see either the old
// file or the complete new one, never a partial file. On any error before
// the rename (invalid f, disk full, failed sync) the file at path, if any,
// is left untouched and the temporary file is removed. An error from the
// final directory sync means the new file is in place but may not survive
// a crash.
//
// The new file has permissions 0644 before the umask, as [os.WriteFile]
// gives. When path is a symbolic link, the link itself is replaced.
func Write(path string, f *File) error {
	return osFileSystem().write(path, f)
}

// tempFile is the part of *os.File that writing a checkpoint uses.
type tempFile interface {
	io.Writer
	Sync() error
	Close() error
}

// fileSystem is the seam between Write and the operating system, so tests
// can inject failures (a full disk, a failing sync or rename).
type fileSystem struct {
	create  func(name string) (tempFile, error) // create name exclusively
	rename  func(from, to string) error
	remove  func(name string) error
	syncDir func(dir string) error
}

func osFileSystem() fileSystem {
	return fileSystem{
		create: func(name string) (tempFile, error) {
			return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		},
		rename:  os.Rename,
		remove:  os.Remove,
		syncDir: syncDir,
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (fs fileSystem) write(path string, f *File) error {
	e, err := plan(sealed(f))
	if err != nil {
		return fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	var tmp string
	var fh tempFile
	for try := 0; ; try++ {
		tmp = filepath.Join(dir, "."+base+".tmp"+strconv.FormatUint(rand.Uint64()%1e12, 10))
		fh, err = fs.create(tmp)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) || try == 100 {
			return fmt.Errorf("checkpoint: %s: create temporary file: %w", path, err)
		}
	}
	// fail closes and removes the temporary file, leaving path as it was.
	fail := func(err error) error {
		fh.Close()
		fs.remove(tmp)
		return fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	if err := e.writeTo(fh); err != nil {
		return fail(err)
	}
	if err := fh.Sync(); err != nil {
		return fail(fmt.Errorf("sync %s: %w", tmp, err))
	}
	if err := fh.Close(); err != nil {
		fs.remove(tmp)
		return fmt.Errorf("checkpoint: %s: close %s: %w", path, tmp, err)
	}
	if err := fs.rename(tmp, path); err != nil {
		fs.remove(tmp)
		return fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	if err := fs.syncDir(dir); err != nil {
		// The new file is in place; removing it now would lose it.
		return fmt.Errorf("checkpoint: %s: written, but syncing directory %s failed: %w", path, dir, err)
	}
	return nil
}

// Package atomicfile writes files so that readers, and a later run after
// a crash, see either the old content or the new, never a part. Every
// file salt-ort writes in place (checkpoints, metrics tables, reports,
// exported models) goes through it, so the temporary files a killed run
// leaves all start with TempPrefix.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

// TempPrefix starts the name of every temporary file Write creates, so
// that a run can remove the ones a crash left behind.
const TempPrefix = ".tmp-"

// Write writes data to path atomically, as WriteFrom does.
func Write(path string, data []byte) error {
	return WriteFrom(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFrom writes what write writes to path atomically: into a temporary
// file in the same directory, named TempPrefix + "<base of path>-<random
// digits>", synced to stable storage, renamed over path, and the directory
// synced. Readers of path see either the old file or the complete new one,
// never a partial file. On any error before the rename (write fails, disk
// full, failed sync) the file at path, if any, is left untouched and the
// temporary file is removed. An error from the final directory sync means
// the new file is in place but may not survive a crash. Errors start with
// path.
//
// The new file has permissions 0644 before the umask, as os.WriteFile
// gives. When path is a symbolic link, the link itself is replaced.
func WriteFrom(path string, write func(io.Writer) error) error {
	return OS().WriteFrom(path, write)
}

// File is the part of *os.File that writing a file uses.
type File interface {
	io.Writer
	Sync() error
	Close() error
}

// FileSystem is the seam between WriteFrom and the operating system, so
// that tests can inject failures (a full disk, a failing sync or rename).
type FileSystem struct {
	Create  func(name string) (File, error) // create name exclusively
	Rename  func(from, to string) error
	Remove  func(name string) error
	SyncDir func(dir string) error
}

// OS is the operating system's file system.
func OS() FileSystem {
	return FileSystem{
		Create: func(name string) (File, error) {
			return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		},
		Rename:  os.Rename,
		Remove:  os.Remove,
		SyncDir: syncDir,
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

// WriteFrom is the package's WriteFrom on fs.
func (fs FileSystem) WriteFrom(path string, write func(io.Writer) error) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	var tmp string
	var fh File
	for try := 0; ; try++ {
		var err error
		tmp = filepath.Join(dir, TempPrefix+base+"-"+strconv.FormatUint(rand.Uint64()%1e12, 10))
		fh, err = fs.Create(tmp)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) || try == 100 {
			return fmt.Errorf("%s: create temporary file: %w", path, err)
		}
	}
	// fail closes and removes the temporary file, leaving path as it was.
	fail := func(err error) error {
		fh.Close()
		fs.Remove(tmp)
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := write(fh); err != nil {
		return fail(err)
	}
	if err := fh.Sync(); err != nil {
		return fail(fmt.Errorf("sync %s: %w", tmp, err))
	}
	if err := fh.Close(); err != nil {
		fs.Remove(tmp)
		return fmt.Errorf("%s: close %s: %w", path, tmp, err)
	}
	if err := fs.Rename(tmp, path); err != nil {
		fs.Remove(tmp)
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := fs.SyncDir(dir); err != nil {
		// The new file is in place; removing it now would lose it.
		return fmt.Errorf("%s: written, but syncing directory %s failed: %w", path, dir, err)
	}
	return nil
}

package checkpoint

import (
	"fmt"

	"github.com/salt-ort/salt-ort/internal/atomicfile"
)

// Write writes f to path in canonical safetensors form (see [Encode]),
// with a checksum of the tensor data added to the metadata under
// [ChecksumKey], atomically (internal/atomicfile): it writes a temporary
// file in the same directory, syncs it to stable storage, renames it over
// path and syncs the directory. Readers of path see either the old file or
// the complete new one, never a partial file. On any error before the
// rename (invalid f, disk full, failed sync) the file at path, if any, is
// left untouched and the temporary file is removed. An error from the
// final directory sync means the new file is in place but may not survive
// a crash.
//
// The new file has permissions 0644 before the umask, as [os.WriteFile]
// gives. When path is a symbolic link, the link itself is replaced.
func Write(path string, f *File) error {
	return write(atomicfile.OS(), path, f)
}

// write is Write on the file system fs, which tests make fail.
func write(fs atomicfile.FileSystem, path string, f *File) error {
	e, err := plan(sealed(f))
	if err != nil {
		return fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	if err := fs.WriteFrom(path, e.writeTo); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

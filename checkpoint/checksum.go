package checkpoint

import (
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
)

// ChecksumKey is the metadata key under which [Write] records a CRC-32C
// (Castagnoli) of the tensors' bytes, in sorted-name order, as 8 lowercase
// hexadecimal digits. safetensors has no checksum of its own, and a bit
// flipped in a weight on disk or in a damaged copy leaves a file that
// decodes into a slightly different model; [Read] recomputes the sum and
// refuses such a file. Other readers (Python's safetensors) see one more
// metadata string. The sum does not depend on the order of the data
// section, so a file another tool re-laid out still verifies.
const ChecksumKey = "salt_ort_data_crc32c"

// ErrChecksum reports tensor bytes that differ from those [Write] wrote;
// errors from [Read] wrap it.
var ErrChecksum = errors.New("checksum mismatch")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// dataChecksum returns the CRC-32C of f's tensor bytes in sorted-name
// order, formatted as ChecksumKey records it.
func dataChecksum(f *File) string {
	var sum uint32
	for _, name := range f.Names() {
		sum = crc32.Update(sum, castagnoli, f.Tensors[name].Data)
	}
	return fmt.Sprintf("%08x", sum)
}

// sealed returns f with ChecksumKey set in a copy of its metadata; the
// tensors are shared.
func sealed(f *File) *File {
	m := maps.Clone(f.Metadata)
	if m == nil {
		m = map[string]string{}
	}
	m[ChecksumKey] = dataChecksum(f)
	return &File{Metadata: m, Tensors: f.Tensors}
}

// verify checks a decoded file's ChecksumKey, when it has one, and
// removes it from the metadata, so that Read returns what Write was
// given.
func verify(f *File) error {
	want, ok := f.Metadata[ChecksumKey]
	if !ok {
		return nil
	}
	delete(f.Metadata, ChecksumKey)
	if got := dataChecksum(f); got != want {
		return fmt.Errorf("%w: the tensor data has CRC-32C %s, the file records %s: the file is corrupt (a flipped bit or a damaged copy); use another checkpoint or copy it again (a file changed on purpose reads once its %q metadata is removed)",
			ErrChecksum, got, want, ChecksumKey)
	}
	return nil
}

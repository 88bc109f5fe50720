package checkpoint

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Read reads and validates the safetensors file at path; see [Decode].
// When the file records a [ChecksumKey], Read checks the tensor data
// against it (an error wrapping [ErrChecksum]) and leaves the key out of
// the returned metadata. Errors name path, and the tensor where one is at
// fault.
func Read(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	defer fh.Close()
	info, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("checkpoint: %s: not a regular file", path)
	}
	f, err := decode(fh, info.Size(), true)
	if err == nil {
		err = verify(f)
	} else {
		err = fmt.Errorf("%w: not a whole safetensors file; use another checkpoint or copy it again", err)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	return f, nil
}

// Decode reads a safetensors file of size bytes from r and validates all of
// it: the header length against size (a short file fails with an error
// wrapping [ErrTruncated]), the header against [MaxHeaderSize], the header
// as UTF-8 JSON without duplicate keys, string-valued metadata, each tensor
// entry (exactly the fields dtype, shape and data_offsets; a known dtype;
// non-negative integer dimensions; offsets spanning exactly the bytes the
// shape and dtype imply) and the layout (tensors tile the data section from
// its first to its last byte, with no overlap and no gap). Errors name the
// tensor or metadata key at fault.
//
// The tensors' Data slices share one buffer of the data section; each has
// its capacity clipped to its length, so appending to one never overwrites
// another. The header is checked before the data section is read, and the
// section's buffer grows with the bytes r delivers rather than to size at
// once, so a size that r does not back fails without allocating it.
func Decode(r io.Reader, size int64) (*File, error) {
	f, err := decode(r, size, false)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return f, nil
}

// decode reads a safetensors file of size bytes from r; with sized set,
// size is the file's own (os.File.Stat), and the data section is allocated
// whole.
func decode(r io.Reader, size int64, sized bool) (*File, error) {
	if size < 8 {
		return nil, fmt.Errorf("%w: file has %d bytes, fewer than the 8-byte header length", ErrTruncated, size)
	}
	var prefix [8]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		return nil, readErr("header length", err)
	}
	n := binary.LittleEndian.Uint64(prefix[:])
	if n > uint64(size-8) {
		return nil, fmt.Errorf("%w: header says %d bytes, file has %d", ErrTruncated, n, size)
	}
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("header length %d exceeds the %d-byte limit", n, MaxHeaderSize)
	}
	header := make([]byte, n)
	if _, err := io.ReadFull(r, header); err != nil {
		return nil, readErr("header", err)
	}
	f, entries, err := parseHeader(header, uint64(size-8-int64(n)))
	if err != nil {
		return nil, err
	}
	data, err := readData(r, size-8-int64(n), sized)
	if err != nil {
		return nil, dataErr(err, int64(len(data)), entries)
	}
	for _, e := range entries {
		t := f.Tensors[e.name]
		t.Data = data[e.begin:e.end:e.end]
		f.Tensors[e.name] = t
	}
	return f, nil
}

// dataChunk is how far the data section's buffer grows at a time where the
// file's size is only what the caller says.
const dataChunk = 64 << 20

// readData reads the n-byte data section. Unless sized, it grows the buffer
// a chunk at a time as the bytes arrive, so that a reader shorter than n
// costs what it holds; on a short read it returns the bytes read.
func readData(r io.Reader, n int64, sized bool) ([]byte, error) {
	if sized || n <= dataChunk {
		data := make([]byte, n)
		k, err := io.ReadFull(r, data)
		return data[:k], err
	}
	var data []byte
	for int64(len(data)) < n {
		c := int(min(n-int64(len(data)), dataChunk))
		data = slices.Grow(data, c)
		k, err := io.ReadFull(r, data[len(data):len(data)+c])
		data = data[:len(data)+k]
		if err != nil {
			return data, err
		}
	}
	return data, nil
}

// dataErr describes a failure to read the data section after got of its
// bytes, naming the tensor the file ended in.
func dataErr(err error, got int64, entries []entry) error {
	if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read data: %w", err)
	}
	for _, e := range entries {
		if uint64(got) < e.end {
			return fmt.Errorf("%w: file ended inside tensor %q (data_offsets [%d %d]), %d bytes into the data section", ErrTruncated, e.name, e.begin, e.end, got)
		}
	}
	return fmt.Errorf("%w: file ended inside the data", ErrTruncated)
}

func readErr(what string, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: file ended inside the %s", ErrTruncated, what)
	}
	return fmt.Errorf("read %s: %w", what, err)
}

// entry is one tensor's header entry with its resolved location.
type entry struct {
	name       string
	begin, end uint64
}

// parseHeader validates header against a data section of dataLen bytes
// and returns the File without its tensors' data, and the tensors' places
// in the section in order of their offsets.
func parseHeader(header []byte, dataLen uint64) (*File, []entry, error) {
	if !utf8.Valid(header) {
		return nil, nil, errors.New("header is not valid UTF-8")
	}
	if len(header) == 0 || header[0] != '{' {
		return nil, nil, errors.New("header is not a JSON object")
	}
	members, err := object(header, true)
	if err != nil {
		return nil, nil, fmt.Errorf("header: %w", err)
	}
	f := &File{Metadata: map[string]string{}, Tensors: make(map[string]Tensor, len(members))}
	entries := make([]entry, 0, len(members))
	for _, m := range members {
		if m.key == MetadataKey {
			if err := parseMetadata(m.value, f.Metadata); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", MetadataKey, err)
			}
			continue
		}
		if m.key == "" {
			return nil, nil, errors.New("tensor with an empty name")
		}
		t, begin, end, err := parseTensor(m.value)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", m.key, err)
		}
		f.Tensors[m.key] = t
		entries = append(entries, entry{m.key, begin, end})
	}
	// The tensors must tile the data section: sorted by offsets, each
	// begins where the previous one ends, the first at 0, the last at the
	// section's end. Zero-size tensors may share an offset.
	slices.SortFunc(entries, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.begin, b.begin), cmp.Compare(a.end, b.end), cmp.Compare(a.name, b.name))
	})
	var pos uint64
	prev := ""
	for _, e := range entries {
		switch {
		case e.begin > pos && prev == "":
			return nil, nil, fmt.Errorf("tensor %q: data_offsets [%d %d]: gap of %d bytes at the start of the data section", e.name, e.begin, e.end, e.begin-pos)
		case e.begin > pos:
			return nil, nil, fmt.Errorf("tensor %q: data_offsets [%d %d]: gap of %d bytes after tensor %q, which ends at %d", e.name, e.begin, e.end, e.begin-pos, prev, pos)
		case e.begin < pos:
			return nil, nil, fmt.Errorf("tensor %q: data_offsets [%d %d] overlap tensor %q, which ends at %d", e.name, e.begin, e.end, prev, pos)
		case e.end > dataLen:
			return nil, nil, fmt.Errorf("%w: tensor %q: data_offsets [%d %d] reach past the %d-byte data section", ErrTruncated, e.name, e.begin, e.end, dataLen)
		}
		pos, prev = e.end, e.name
	}
	if pos != dataLen {
		if prev == "" {
			return nil, nil, fmt.Errorf("no tensors, but %d bytes of data", dataLen)
		}
		return nil, nil, fmt.Errorf("%d bytes of data after tensor %q, which ends at %d", dataLen-pos, prev, pos)
	}
	return f, entries, nil
}

func parseMetadata(raw json.RawMessage, into map[string]string) error {
	if raw[0] != '{' {
		return errors.New("not a JSON object")
	}
	members, err := object(raw, false)
	if err != nil {
		return err
	}
	for _, m := range members {
		if m.value[0] != '"' {
			return fmt.Errorf("key %q: value %s is not a string", m.key, m.value)
		}
		var s string
		if err := json.Unmarshal(m.value, &s); err != nil {
			return fmt.Errorf("key %q: %w", m.key, err)
		}
		into[m.key] = s
	}
	return nil
}

func parseTensor(raw json.RawMessage) (t Tensor, begin, end uint64, err error) {
	if raw[0] != '{' {
		return t, 0, 0, fmt.Errorf("entry %s is not a JSON object", raw)
	}
	members, err := object(raw, false)
	if err != nil {
		return t, 0, 0, err
	}
	var dtype, shape, offsets json.RawMessage
	for _, m := range members {
		switch m.key {
		case "dtype":
			dtype = m.value
		case "shape":
			shape = m.value
		case "data_offsets":
			offsets = m.value
		default:
			return t, 0, 0, fmt.Errorf("unknown field %q", m.key)
		}
	}
	switch {
	case dtype == nil:
		return t, 0, 0, errors.New("no dtype")
	case shape == nil:
		return t, 0, 0, errors.New("no shape")
	case offsets == nil:
		return t, 0, 0, errors.New("no data_offsets")
	}
	var name string
	if dtype[0] != '"' || json.Unmarshal(dtype, &name) != nil {
		return t, 0, 0, fmt.Errorf("dtype %s is not a string", dtype)
	}
	t.DType = DType(name)
	dims, ok := integers(shape)
	if !ok {
		return t, 0, 0, fmt.Errorf("shape %s is not an array of non-negative integers", shape)
	}
	t.Shape = make([]int64, len(dims))
	for i, d := range dims {
		if d > math.MaxInt64 {
			return t, 0, 0, fmt.Errorf("shape %s: dimension %d too large", shape, i)
		}
		t.Shape[i] = int64(d)
	}
	off, ok := integers(offsets)
	if !ok || len(off) != 2 {
		return t, 0, 0, fmt.Errorf("data_offsets %s is not an array of two non-negative integers", offsets)
	}
	begin, end = off[0], off[1]
	n, err := byteSize(t.DType, t.Shape)
	if err != nil {
		return t, 0, 0, err
	}
	if end < begin {
		return t, 0, 0, fmt.Errorf("data_offsets [%d %d] end before they begin", begin, end)
	}
	if end-begin != uint64(n) {
		return t, 0, 0, fmt.Errorf("shape %v of %s is %d bytes, but data_offsets [%d %d] span %d", t.Shape, t.DType, n, begin, end, end-begin)
	}
	return t, begin, end, nil
}

// integers parses a JSON array of non-negative integers, each fitting
// uint64. Unlike json.Unmarshal into []uint64 it rejects null elements.
func integers(raw json.RawMessage) ([]uint64, bool) {
	if raw[0] != '[' {
		return nil, false
	}
	var elems []json.RawMessage
	if json.Unmarshal(raw, &elems) != nil {
		return nil, false
	}
	v := make([]uint64, len(elems))
	for i, e := range elems {
		x, err := strconv.ParseUint(string(e), 10, 64)
		if err != nil {
			return nil, false
		}
		v[i] = x
	}
	return v, true
}

// member is one key and raw value of a JSON object, in document order.
type member struct {
	key   string
	value json.RawMessage
}

// object splits the JSON object in b into its members, rejecting duplicate
// keys (which encoding/json would silently merge). With whole set, only
// whitespace may follow the object.
func object(b []byte, whole bool) ([]member, error) {
	members, err := splitObject(b, whole)
	if errors.Is(err, io.EOF) {
		return nil, errors.New("JSON ends before the object closes")
	}
	return members, err
}

func splitObject(b []byte, whole bool) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil {
		return nil, err
	} else if tok != json.Delim('{') {
		return nil, fmt.Errorf("%v is not a JSON object", tok)
	}
	var members []member
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("object key %v is not a string", tok)
		}
		if seen[key] {
			return nil, fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
		members = append(members, member{key, v})
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, err
	}
	if whole {
		switch tok, err := dec.Token(); {
		case err == io.EOF:
		case err != nil:
			return nil, err
		default:
			return nil, fmt.Errorf("data after the JSON object: %v", tok)
		}
	}
	return members, nil
}

package checkpoint

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Encode writes f to w in canonical safetensors form (see the package
// documentation). It validates f before writing anything: every tensor
// needs a non-empty valid UTF-8 name other than [MetadataKey], a known
// dtype, non-negative dimensions and exactly as many data bytes as its
// shape and dtype imply; metadata keys and values must be valid UTF-8.
// Errors name the offending tensor or metadata key.
func Encode(w io.Writer, f *File) error {
	p, err := plan(f)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := p.writeTo(w); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// encoding is a validated file ready to be written: the 8-byte length
// prefix and padded header, then the tensors' data in order.
type encoding struct {
	head []byte   // length prefix and padded JSON header
	data [][]byte // tensor bytes in sorted-name order
}

// size returns the number of bytes the encoding occupies.
func (e *encoding) size() int64 {
	n := int64(len(e.head))
	for _, d := range e.data {
		n += int64(len(d))
	}
	return n
}

func (e *encoding) writeTo(w io.Writer) error {
	if _, err := w.Write(e.head); err != nil {
		return fmt.Errorf("write header: %w", err)
	}
	for _, d := range e.data {
		if len(d) == 0 {
			continue
		}
		if _, err := w.Write(d); err != nil {
			return fmt.Errorf("write data: %w", err)
		}
	}
	return nil
}

// plan validates f and builds its canonical header.
func plan(f *File) (*encoding, error) {
	h := []byte("{")
	if len(f.Metadata) > 0 {
		keys := make([]string, 0, len(f.Metadata))
		for k, v := range f.Metadata {
			if !utf8.ValidString(k) {
				return nil, fmt.Errorf("metadata key %q: not valid UTF-8", k)
			}
			if !utf8.ValidString(v) {
				return nil, fmt.Errorf("metadata %q: value not valid UTF-8", k)
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		h = appendString(h, MetadataKey)
		h = append(h, ":{"...)
		for i, k := range keys {
			if i > 0 {
				h = append(h, ',')
			}
			h = appendString(h, k)
			h = append(h, ':')
			h = appendString(h, f.Metadata[k])
		}
		h = append(h, '}')
	}
	names := f.Names()
	e := &encoding{data: make([][]byte, 0, len(names))}
	var offset uint64
	for _, name := range names {
		t := f.Tensors[name]
		switch {
		case name == "":
			return nil, fmt.Errorf("tensor with an empty name")
		case name == MetadataKey:
			return nil, fmt.Errorf("tensor %q: the name is reserved for metadata", name)
		case !utf8.ValidString(name):
			return nil, fmt.Errorf("tensor %q: name not valid UTF-8", name)
		}
		if err := t.check(); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		if len(h) > 1 {
			h = append(h, ',')
		}
		h = appendString(h, name)
		h = append(h, `:{"dtype":`...)
		h = appendString(h, string(t.DType))
		h = append(h, `,"shape":[`...)
		for i, d := range t.Shape {
			if i > 0 {
				h = append(h, ',')
			}
			h = strconv.AppendInt(h, d, 10)
		}
		end := offset + uint64(len(t.Data))
		h = append(h, `],"data_offsets":[`...)
		h = strconv.AppendUint(h, offset, 10)
		h = append(h, ',')
		h = strconv.AppendUint(h, end, 10)
		h = append(h, "]}"...)
		e.data = append(e.data, t.Data)
		offset = end
	}
	h = append(h, '}')
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	if len(h) > MaxHeaderSize {
		return nil, fmt.Errorf("header of %d bytes exceeds the %d-byte limit readers enforce", len(h), MaxHeaderSize)
	}
	e.head = make([]byte, 8, 8+len(h))
	binary.LittleEndian.PutUint64(e.head, uint64(len(h)))
	e.head = append(e.head, h...)
	return e, nil
}

// appendString appends s as a JSON string. s must be valid UTF-8.
func appendString(b []byte, s string) []byte {
	q, err := json.Marshal(s)
	if err != nil { // unreachable: strings always marshal
		panic(err)
	}
	return append(b, q...)
}

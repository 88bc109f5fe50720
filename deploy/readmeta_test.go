package deploy

import (
	"strings"
	"testing"
)

// TestReadMetadataSaysFix checks ReadMetadata's errors for bytes that are
// no exported model: each says what the file is not and how to get one.
func TestReadMetadataSaysFix(t *testing.T) {
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty file: export the model again"},
		{"not protobuf", []byte{0xff, 0xff, 0xff}, "not an ONNX model, or a truncated or damaged one; export it again"},
		{"HDF5", []byte("\x89HDF\r\n\x1a\n\x00\x00\x00\x00\x00\x08\x08\x00"), "not an ONNX model"},
		{"an ONNX model salt-ort did not write", []byte{0x08, 0x08}, "no salt_ort metadata: was the model exported by salt-ort?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := ReadMetadata(c.data); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}

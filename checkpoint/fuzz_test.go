package checkpoint

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/internal/testkit/fuzztest"
)

// FuzzDecode checks that Decode never panics, and that whatever it accepts
// encodes again: the re-encoding decodes to the same content and is a fixed
// point of Decode and Encode, and a file whose header is already canonical
// re-encodes to identical bytes. The seed corpus lives in
// testdata/fuzz/FuzzDecode; run with
//
//	go test -fuzz=FuzzDecode ./checkpoint/
func FuzzDecode(f *testing.F) {
	fuzztest.BoundMinimization(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Decode(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "checkpoint: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			return
		}
		var re bytes.Buffer
		if err := Encode(&re, got); err != nil {
			t.Fatalf("Decode accepted a file that does not encode: %v", err)
		}
		again, err := Decode(bytes.NewReader(re.Bytes()), int64(re.Len()))
		if err != nil {
			t.Fatalf("re-encoded file does not decode: %v", err)
		}
		if !sameFile(again, got) {
			t.Fatalf("re-encoding changed the content: %+v, then %+v", got, again)
		}
		var twice bytes.Buffer
		if err := Encode(&twice, again); err != nil || !bytes.Equal(twice.Bytes(), re.Bytes()) {
			t.Fatalf("encoding is not a fixed point (%v)", err)
		}
		n := binary.LittleEndian.Uint64(b)
		m := binary.LittleEndian.Uint64(re.Bytes())
		if uint64(len(b))-8-n != uint64(re.Len())-8-m {
			t.Fatalf("data section of %d bytes re-encoded as %d", uint64(len(b))-8-n, uint64(re.Len())-8-m)
		}
		if bytes.Equal(b[:8+n], re.Bytes()[:8+m]) && !bytes.Equal(b, re.Bytes()) {
			t.Fatalf("canonical file re-encoded to other bytes:\n got %q\nwant %q", re.Bytes(), b)
		}
	})
}

// TestFuzzCorpus keeps the committed seed corpus meaningful: it must hold
// canonical files Decode accepts and files it rejects.
func TestFuzzCorpus(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecode", "*"))
	if err != nil {
		t.Fatal(err)
	}
	valid, invalid := 0, 0
	for _, path := range paths {
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		lit, ok := strings.CutPrefix(string(text), "go test fuzz v1\n[]byte(")
		lit, ok2 := strings.CutSuffix(strings.TrimSpace(lit), ")")
		if !ok || !ok2 {
			t.Fatalf("%s: not a corpus file of one []byte", path)
		}
		s, err := strconv.Unquote(lit)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		b := []byte(s)
		if f, err := Decode(bytes.NewReader(b), int64(len(b))); err != nil {
			invalid++
		} else if re := encode(t, f); bytes.Equal(re, b) {
			valid++
		}
	}
	if valid < 3 || invalid < 3 {
		t.Errorf("corpus holds %d canonical and %d invalid seeds, want at least 3 of each", valid, invalid)
	}
}

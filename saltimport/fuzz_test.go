package saltimport

import (
	"archive/zip"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/internal/testkit/fuzztest"
)

// maxFuzzPickle and maxFuzzStorage bound FuzzReadCheckpoint's inputs:
// room for a state_dict of a few tensors and their optimizer state, and a
// storage of a few hundred elements, while keeping inputs cheap to run
// and to minimise.
const (
	maxFuzzPickle  = 4 << 10
	maxFuzzStorage = 1 << 10
)

// FuzzReadCheckpoint reads checkpoints whose data.pkl and one storage
// (data/0) the fuzzer writes: ReadCheckpoint must return, within the
// limits, either tensors whose data fills their shape or an error that
// names the file in words (no Go type, no bare EOF). The seeds are a
// valid checkpoint and the hostile ones of TestReadCheckpointHostile.
// Run it with
//
//	go test -run '^$' -fuzz '^FuzzReadCheckpoint$' -fuzztime 1m ./saltimport
func FuzzReadCheckpoint(f *testing.F) {
	fuzztest.BoundMinimization(f)
	storage := make([]byte, 16)
	valid := lightning(func(p *pkl) { p.tensor("0", 4) })
	f.Add(valid, storage)
	f.Add(valid, []byte{})
	f.Add(lightning(func(p *pkl) { p.tensor("0", 1<<31-1) }), storage)
	f.Add(lightning(func(p *pkl) { p.tensor("1", 4) }), storage)
	f.Add(lightning(func(p *pkl) { p.op("]") }), storage)
	f.Add((&pkl{}).op("\x80\x02").global("os", "system").op("(").str("touch /tmp/owned").op("tR.").Bytes(), storage)
	f.Add((&pkl{}).op("\x80\x02}(").str("state_dict").global("salt.models", "SaltModel").op(")Ru.").Bytes(), storage)
	f.Add([]byte("\x80\x02"+strings.Repeat("]", 1000)+"."), storage)
	f.Add([]byte("\x80\x02"+strings.Repeat("(", 1000)+"."), storage)
	f.Add([]byte("\x80\x02X\xff\xff\xff\xffabc."), storage)
	f.Add([]byte("\x80\x02}u."), storage)
	dir := fuzztest.ScratchDir(f)
	path := filepath.Join(dir, "model.ckpt")
	f.Fuzz(func(t *testing.T, data, storage []byte) {
		if len(data) > maxFuzzPickle || len(storage) > maxFuzzStorage {
			return
		}
		writeFuzzCkpt(t, path, data, storage)
		ck, err := ReadCheckpoint(path)
		if err != nil {
			msg := err.Error()
			if !strings.Contains(msg, path) {
				t.Fatalf("the error does not name the file: %v", err)
			}
			if s := goSpelling(msg); s != "" {
				t.Fatalf("the error has %q: %v", s, err)
			}
			if !errors.Is(err, ErrNotCheckpoint) && !strings.Contains(msg, "state_dict") && !strings.Contains(msg, "optimizer_states") {
				t.Fatalf("an error neither about the file nor about its state_dict or optimizer: %v", err)
			}
			return
		}
		for name, tensor := range ck.Tensors {
			n := 1
			for _, d := range tensor.Shape {
				n *= d
			}
			if n != len(tensor.Data) {
				t.Fatalf("tensor %s: shape %v, %d values", name, tensor.Shape, len(tensor.Data))
			}
		}
	})
}

// writeFuzzCkpt writes an archive of data.pkl and data/0 to path.
func writeFuzzCkpt(t *testing.T, path string, data, storage []byte) {
	file, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	z := zip.NewWriter(file)
	for _, m := range []member{{"data.pkl", data}, {"data/0", storage}} {
		w, err := z.CreateHeader(&zip.FileHeader{Name: "archive/" + m.name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(m.data)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}
}

// maxFuzzConfig bounds FuzzConvert's input: the whole of a GN2
// config.yaml (testdata/gn2-config.yaml, 9 kB) and a little more.
const maxFuzzConfig = 12 << 10

// FuzzConvert converts config.yaml texts the fuzzer writes: Convert must
// not panic, and must return a configuration or a *ConfigError naming the
// file. The seeds are Salt's GN2 configuration, a small one, and YAML
// meant to hurt a reader (aliases that multiply, deep nesting, keys of
// the wrong kind). Texts naming files under /dev, /proc or /sys are
// skipped: Convert reads the training file where a group's count is
// missing, and a device file never ends. Run it with
//
//	go test -run '^$' -fuzz '^FuzzConvert$' -fuzztime 1m ./saltimport
func FuzzConvert(f *testing.F) {
	fuzztest.BoundMinimization(f)
	gn2, err := os.ReadFile("testdata/gn2-config.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(gn2)
	f.Add([]byte("model:\n  model: {}\ndata:\n  variables: {jets: [pt], tracks: [d0]}\ntrainer: {max_epochs: 2}\n"))
	f.Add([]byte("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nmodel: *c\ndata: *c\ntrainer: *c\n"))
	f.Add([]byte("model: " + strings.Repeat("[", 2000) + strings.Repeat("]", 2000) + "\ndata: {}\ntrainer: {}\n"))
	f.Add([]byte("model: 1\ndata: [1]\ntrainer: null\n"))
	// An alias to a mapping, repeated (TestReadYAMLBounds).
	f.Add([]byte("base: &b {a: 1, b: 2, c: 3}\nmodel: [" + strings.TrimSuffix(strings.Repeat("*b, ", 200), ", ") + "]\ndata: {}\ntrainer: {}\n"))
	f.Add([]byte(""))
	path := filepath.Join(fuzztest.ScratchDir(f), "config.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzConfig {
			return
		}
		for _, dir := range []string{"/dev", "/proc", "/sys"} {
			if bytes.Contains(data, []byte(dir)) {
				return
			}
		}
		out, err := Convert(path, data, ConvertOptions{MaxLen: map[string]int{"tracks": 40}})
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.File != path || len(ce.Problems) == 0 {
				t.Fatalf("not a *ConfigError naming %s with its problems: %v", path, err)
			}
			return
		}
		if out == nil {
			t.Fatal("no configuration and no error")
		}
	})
}

package saltimport

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// pkl builds pickle bytes (protocol 2) for the tests' checkpoints.
type pkl struct{ bytes.Buffer }

func (p *pkl) op(ops string) *pkl { p.WriteString(ops); return p }

// str writes a BINUNICODE string.
func (p *pkl) str(s string) *pkl {
	p.WriteByte('X')
	binary.Write(p, binary.LittleEndian, uint32(len(s)))
	p.WriteString(s)
	return p
}

// int32 writes a BININT.
func (p *pkl) int32(v int32) *pkl {
	p.WriteByte('J')
	binary.Write(p, binary.LittleEndian, v)
	return p
}

// global writes a GLOBAL module.name.
func (p *pkl) global(module, name string) *pkl { return p.op("c" + module + "\n" + name + "\n") }

// tensor writes torch's _rebuild_tensor_v2 of storage key, of elements
// float32 elements, with a 2×2 shape.
func (p *pkl) tensor(key string, elements int32) *pkl {
	p.global("torch._utils", "_rebuild_tensor_v2").op("(")
	p.op("(").str("storage").global("torch", "FloatStorage").str(key).str("cpu").int32(elements).op("tQ")
	p.op("K\x00").op("(K\x02K\x02t").op("(K\x02K\x01t").op("\x89")
	return p.global("collections", "OrderedDict").op(")R").op("tR")
}

// lightning writes a Lightning checkpoint's dictionary: a state_dict of
// what value writes under "w", and epoch 3.
func lightning(value func(p *pkl)) []byte {
	p := &pkl{}
	p.op("\x80\x02}(").str("state_dict").global("collections", "OrderedDict").op(")R(").str("w")
	value(p)
	p.op("u").str("epoch").op("K\x03u.")
	return p.Bytes()
}

// member is a file of a test checkpoint's archive.
type member struct {
	name string
	data []byte
}

// writeCkpt writes a torch.save-shaped archive (members under archive/,
// stored) and returns its path.
func writeCkpt(t testing.TB, members ...member) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "model.ckpt")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	z := zip.NewWriter(f)
	for _, m := range members {
		w, err := z.CreateHeader(&zip.FileHeader{Name: "archive/" + m.name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(m.data)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// goPointer matches a Go pointer type or value (*types.List, &{...}).
var goPointer = regexp.MustCompile(`(^|[\s(\[{,])[*&][A-Za-z{]\w*`)

// goSpelling finds what an error message must not hold: Go types and
// bare reader errors.
func goSpelling(msg string) string {
	if m := goPointer.FindString(msg); m != "" {
		return m
	}
	for _, s := range []string{"saltimport.", "types.", "pytorch.", "interface {}", "<nil>", "[]", "%!"} {
		if strings.Contains(msg, s) {
			return s
		}
	}
	if strings.HasSuffix(msg, "EOF") {
		return "EOF"
	}
	return ""
}

// TestReadCheckpointHostile reads checkpoints built to hurt the reader or
// damaged: every one is refused with a message that names the file and
// the member or tensor in words, before it allocates more than its
// limits allow; the valid one reads.
func TestReadCheckpointHostile(t *testing.T) {
	storage := make([]byte, 16) // four float32
	binary.LittleEndian.PutUint32(storage[4:], 0x3f800000)
	valid := lightning(func(p *pkl) { p.tensor("0", 4) })
	repeat := func(ops string, n int) []byte {
		return append(append([]byte("\x80\x02"), bytes.Repeat([]byte(ops), n)...), '.')
	}
	for _, c := range []struct {
		name    string
		members []member
		want    string // "" for a checkpoint that reads
	}{
		{"valid", []member{{"data.pkl", valid}, {"data/0", storage}, {"version", []byte("3\n")}}, ""},
		{"storage emptied", []member{{"data.pkl", valid}, {"data/0", nil}},
			"tensor storage 0: archive/data/0 holds 0 bytes, too few for the 4 Float elements its tensors declare"},
		{"storage missing", []member{{"data.pkl", valid}}, "tensor storage 0: the archive has no member archive/data/0"},
		{"storage of 2³¹ elements", []member{{"data.pkl", lightning(func(p *pkl) { p.tensor("0", 1<<31-1) })}, {"data/0", storage}},
			"archive/data/0 holds 16 bytes, too few for the 2147483647 Float elements"},
		{"GLOBAL os.system and REDUCE", []member{{"data.pkl", (&pkl{}).op("\x80\x02").global("os", "system").op("(").str("touch /tmp/owned").op("tR.").Bytes()}},
			"the pickle holds an object of class os.system, not a Lightning checkpoint's dictionary"},
		{"state_dict a list", []member{{"data.pkl", (&pkl{}).op("\x80\x02}(").str("state_dict").op("]u.").Bytes()}}, "state_dict is a list, not a dictionary"},
		{"state_dict an object", []member{{"data.pkl", (&pkl{}).op("\x80\x02}(").str("state_dict").global("salt.models", "SaltModel").op(")Ru.").Bytes()}},
			"state_dict is an object of class salt.models.SaltModel, not a dictionary"},
		{"a list for a tensor", []member{{"data.pkl", lightning(func(p *pkl) { p.op("]") })}}, "state_dict w: a list, not a tensor"},
		{"a stack of lists", []member{{"data.pkl", repeat("]", 1<<17)}}, "archive/data.pkl: its stack grows past 65536 items"},
		{"marks without end", []member{{"data.pkl", repeat("(", 1<<17)}}, "archive/data.pkl: its stack grows past 65536 items"},
		{"an opcode flood", []member{{"data.pkl", repeat("N0", 1<<20)}}, "archive/data.pkl: it holds more than 524288 opcodes"},
		{"a string longer than the pickle", []member{{"data.pkl", []byte("\x80\x02X\xff\xff\xff\xffabc.")}}, "declares 4294967295 bytes, more than the 4 left"},
		{"no STOP", []member{{"data.pkl", []byte("\x80\x02}")}}, "archive/data.pkl: it ends at byte 3 without a STOP opcode"},
		{"an unknown opcode", []member{{"data.pkl", []byte("\x80\x02\xff.")}}, "unknown opcode 0xff at byte 2"},
		{"a SETITEMS without a mark", []member{{"data.pkl", []byte("\x80\x02}u.")}}, "needs a mark, and there is none"},
		{"a REDUCE on an empty stack", []member{{"data.pkl", []byte("\x80\x02R.")}}, "takes more from the stack than it holds"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := writeCkpt(t, c.members...)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			ck, err := ReadCheckpoint(path)
			runtime.ReadMemStats(&after)
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
				t.Errorf("reading allocated %d MB", alloc>>20)
			}
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if w := ck.Tensors["w"]; w == nil || len(w.Data) != 4 || w.Data[1] != 1 || ck.Epoch != 3 {
					t.Fatalf("read %+v, epoch %d", ck.Tensors, ck.Epoch)
				}
				return
			}
			if err == nil {
				t.Fatalf("read it; want an error with %q", c.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || !strings.Contains(msg, c.want) {
				t.Fatalf("%v\nwant it to name %s and say %q", err, path, c.want)
			}
			if s := goSpelling(msg); s != "" {
				t.Errorf("the message has %q: %v", s, err)
			}
			if !strings.Contains(c.name, "state_dict") && c.name != "a list for a tensor" && !errors.Is(err, ErrNotCheckpoint) {
				t.Errorf("%v does not wrap ErrNotCheckpoint", err)
			}
		})
	}
}

// TestReadCheckpointHugePickle reads a checkpoint whose data.pkl is 300 MB
// of one opcode (EMPTY_LIST, compressed to a small file), which
// unpickled would take tens of GB: it must fail within 5 s having
// allocated less than 500 MB. The archive is written in a stream, so the
// test itself holds little.
func TestReadCheckpointHugePickle(t *testing.T) {
	const size = 300 << 20
	path := filepath.Join(t.TempDir(), "huge.ckpt")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	z := zip.NewWriter(f)
	z.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) { return flate.NewWriter(w, flate.BestSpeed) })
	w, err := z.CreateHeader(&zip.FileHeader{Name: "archive/data.pkl", Method: zip.Deflate})
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	bw.WriteString("\x80\x02")
	chunk := bytes.Repeat([]byte("]"), 1<<20)
	for written := 0; written < size; written += len(chunk) {
		bw.Write(chunk)
	}
	bw.WriteString(".")
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	chunk = nil

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err = ReadCheckpoint(path)
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("refused in %v, %d MB allocated: %v", took.Round(time.Millisecond), alloc>>20, err)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "archive/data.pkl") {
		t.Fatalf("got %v, want an error naming %s and its data.pkl", err, path)
	}
	if took > 5*time.Second || alloc > 500<<20 {
		t.Fatalf("refusing it took %v and %d MB; the limit is 5 s and 500 MB", took, alloc>>20)
	}
}

// TestScanPickleProtocols checks that the scan accepts what CPython's
// pickle writes in every protocol, 0 to 5 (testdata/pickle: a dictionary
// with every kind of value, shared references, long lists and
// dictionaries batched by the pickler, written by Python 3.11).
func TestScanPickleProtocols(t *testing.T) {
	files, _ := filepath.Glob("testdata/pickle/protocol*.pkl")
	if len(files) != 6 {
		t.Fatalf("%d pickles in testdata/pickle, want protocols 0 to 5", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := scanPickle(data, limitsFor(0)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		// The same with a limit of opcodes just below what it needs.
		if err := scanPickle(data, pickleLimits{bytes: 1 << 20, ops: 100, stack: 1 << 16}); err == nil {
			t.Errorf("%s: read within 100 opcodes", f)
		}
	}
}

// TestLimitsFor checks that the limits grow with the storages a
// checkpoint holds, but not past maxCountedStorages: members added to an
// archive cannot buy a pickle whose unpickling takes 500 MB.
func TestLimitsFor(t *testing.T) {
	small, gn2, capped := limitsFor(0), limitsFor(900), limitsFor(maxCountedStorages)
	if !(small.ops < gn2.ops && gn2.ops < capped.ops && small.bytes < gn2.bytes && small.stack < gn2.stack) {
		t.Errorf("the limits do not grow with the storages: %+v, %+v, %+v", small, gn2, capped)
	}
	if huge := limitsFor(1 << 30); huge != capped {
		t.Errorf("a billion storages raise the limits to %+v, past %+v", huge, capped)
	}
	// About 250 bytes per opcode at worst (lists of empty lists).
	if worst := int64(capped.ops) * 250; worst > 500<<20 {
		t.Errorf("%d opcodes may take %d MB", capped.ops, worst>>20)
	}
}

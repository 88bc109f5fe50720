package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// sample returns a checkpoint with every typed accessor's dtype, a scalar,
// a zero-size tensor, raw dtypes and metadata.
func sample() *File {
	f := &File{Metadata: map[string]string{"epoch": "3", "model": `{"dim":4}`, "ünïcode": "värde"}}
	f.SetFloat32("encoder/layer0/attn/in_proj/weight", []int64{2, 3}, []float32{1, -2, 3.5, float32(math.Inf(1)), 0, -0})
	f.SetFloat64("optimizer/step_size", []int64{}, []float64{1e-3})
	f.SetInt64("optimizer/step", []int64{1}, []int64{-42})
	f.SetInt32("labels", []int64{2, 2}, []int32{0, 1, 2, math.MaxInt32})
	f.SetFloat32("empty", []int64{0, 5}, nil)
	f.Set("mask", Tensor{DType: BOOL, Shape: []int64{3}, Data: []byte{1, 0, 1}})
	f.Set("bytes", Tensor{DType: U8, Shape: []int64{1, 1, 2}, Data: []byte{7, 255}})
	f.Set("half", Tensor{DType: F16, Shape: []int64{1}, Data: []byte{0x00, 0x3c}})
	return f
}

func encode(t *testing.T, f *File) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Encode(&b, f); err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b.Bytes()
}

// sameFile reports whether a and b hold the same content, treating nil and
// empty maps and slices alike.
func sameFile(a, b *File) bool {
	if len(a.Metadata) != len(b.Metadata) || len(a.Tensors) != len(b.Tensors) {
		return false
	}
	for k, v := range a.Metadata {
		if w, ok := b.Metadata[k]; !ok || v != w {
			return false
		}
	}
	for name, ta := range a.Tensors {
		tb, ok := b.Tensors[name]
		if !ok || ta.DType != tb.DType || !slices.Equal(ta.Shape, tb.Shape) || !bytes.Equal(ta.Data, tb.Data) {
			return false
		}
	}
	return true
}

// file assembles a safetensors file from a header and data section.
func file(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

func TestGolden(t *testing.T) {
	f := &File{Metadata: map[string]string{"step": "10", "epoch": "3"}}
	f.SetInt64("b", []int64{}, []int64{5})
	f.SetFloat32("a", []int64{2}, []float32{1, 2})
	header := `{"__metadata__":{"epoch":"3","step":"10"},` +
		`"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},` +
		`"b":{"dtype":"I64","shape":[],"data_offsets":[8,16]}}`
	for len(header)%8 != 0 {
		header += " "
	}
	want := file(header, []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 5, 0, 0, 0, 0, 0, 0, 0})
	if got := encode(t, f); !bytes.Equal(got, want) {
		t.Errorf("Encode:\n got %q\nwant %q", got, want)
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		file *File
	}{
		{"empty", &File{}},
		{"metadata only", &File{Metadata: map[string]string{"a": "b"}}},
		{"one scalar", func() *File { f := &File{}; f.SetFloat64("x", nil, []float64{math.Pi}); return f }()},
		{"only zero-size tensors", func() *File {
			f := &File{}
			f.SetFloat32("a", []int64{0}, nil)
			f.SetInt64("b", []int64{3, 0}, nil)
			return f
		}()},
		{"every kind", sample()},
		{"names needing escapes", func() *File {
			f := &File{}
			f.SetInt32("a\"b\\c\n<&>\u2028", []int64{1}, []int32{1})
			return f
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := encode(t, tt.file)
			n := binary.LittleEndian.Uint64(b)
			if n%8 != 0 {
				t.Errorf("header length %d is not a multiple of 8", n)
			}
			got, err := Decode(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !sameFile(got, tt.file) {
				t.Errorf("Decode(Encode(f)) = %+v, want %+v", got, tt.file)
			}
			if again := encode(t, got); !bytes.Equal(again, b) {
				t.Errorf("re-encoding changed the bytes:\n got %q\nwant %q", again, b)
			}
			// Maps iterate in random order; encoding must not depend on it.
			for range 5 {
				if again := encode(t, tt.file); !bytes.Equal(again, b) {
					t.Fatal("Encode is not deterministic")
				}
			}
		})
	}
}

func TestDecodeAliasing(t *testing.T) {
	f := &File{}
	f.SetFloat32("a", []int64{1}, []float32{1})
	f.SetFloat32("b", []int64{1}, []float32{2})
	b := encode(t, f)
	got, err := Decode(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	a := got.Tensors["a"]
	_ = append(a.Data, 9, 9, 9, 9)
	if v, _, _ := got.Float32("b"); v[0] != 2 {
		t.Errorf("appending to tensor a overwrote tensor b: %v", v)
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		file *File
		want string
	}{
		{"short data", &File{Tensors: map[string]Tensor{"w": {DType: F32, Shape: []int64{2, 3}, Data: make([]byte, 20)}}},
			`tensor "w": shape [2 3] of F32 needs 24 bytes, data has 20`},
		{"wrong count from setter", func() *File { f := &File{}; f.SetFloat64("w", []int64{4}, []float64{1}); return f }(),
			`tensor "w": shape [4] of F64 needs 32 bytes, data has 8`},
		{"unknown dtype", &File{Tensors: map[string]Tensor{"w": {DType: "F8", Shape: []int64{1}, Data: []byte{0}}}},
			`tensor "w": unknown dtype "F8"`},
		{"negative dimension", &File{Tensors: map[string]Tensor{"w": {DType: U8, Shape: []int64{2, -1}}}},
			`tensor "w": shape [2 -1]: dimension 1 is negative`},
		{"overflowing shape", &File{Tensors: map[string]Tensor{"w": {DType: F64, Shape: []int64{1 << 40, 1 << 40}}}},
			`tensor "w": shape [1099511627776 1099511627776]: element count overflows int64`},
		{"empty name", &File{Tensors: map[string]Tensor{"": {DType: U8}}}, "tensor with an empty name"},
		{"reserved name", &File{Tensors: map[string]Tensor{MetadataKey: {DType: U8, Data: []byte{1}}}},
			`tensor "__metadata__": the name is reserved for metadata`},
		{"name not UTF-8", &File{Tensors: map[string]Tensor{"w\xff": {DType: U8, Data: []byte{1}}}},
			`tensor "w\xff": name not valid UTF-8`},
		{"metadata value not UTF-8", &File{Metadata: map[string]string{"k": "\xfe"}}, `metadata "k": value not valid UTF-8`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			err := Encode(&b, tt.file)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Encode error = %v, want it to contain %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "checkpoint: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if b.Len() != 0 {
				t.Errorf("Encode wrote %d bytes before failing", b.Len())
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	f32 := func(name, shape, offsets string) string {
		return `"` + name + `":{"dtype":"F32","shape":` + shape + `,"data_offsets":` + offsets + `}`
	}
	tests := []struct {
		name      string
		input     []byte
		want      string
		truncated bool
	}{
		{"empty file", nil, "truncated: file has 0 bytes, fewer than the 8-byte header length", true},
		{"cut in the length", []byte{8, 0, 0}, "truncated: file has 3 bytes", true},
		{"header longer than file", file(`{}      `, nil)[:12], "truncated: header says 8 bytes, file has 12", true},
		{"huge header length", binary.LittleEndian.AppendUint64(nil, math.MaxUint64), "truncated: header says 18446744073709551615 bytes, file has 8", true},
		{"zero-length header", file("", nil), "header is not a JSON object", false},
		{"header not an object", file(`[1,2,3] `, nil), "header is not a JSON object", false},
		{"leading space", file(` {}`, nil), "header is not a JSON object", false},
		{"bad JSON", file(`{"a":}  `, nil), "header: ", false},
		{"unclosed object", file(`{"a":{} `, nil), "header: ", false},
		{"trailing data", file(`{}{}`, nil), "header: data after the JSON object", false},
		{"trailing NUL padding", file("{}\x00\x00", nil), "header: ", false},
		{"not UTF-8", file("{\"\xff\":1}", nil), "header is not valid UTF-8", false},
		{"duplicate tensor", file(`{`+f32("w", "[1]", "[0,4]")+`,`+f32("w", "[1]", "[4,8]")+`}`, make([]byte, 8)),
			`header: key "w" appears twice`, false},
		{"duplicate metadata key", file(`{"__metadata__":{"a":"1","a":"2"}}`, nil), `__metadata__: key "a" appears twice`, false},
		{"metadata not strings", file(`{"__metadata__":{"epoch":3}}`, nil), `__metadata__: key "epoch": value 3 is not a string`, false},
		{"metadata null", file(`{"__metadata__":{"epoch":null}}`, nil), `__metadata__: key "epoch": value null is not a string`, false},
		{"metadata not an object", file(`{"__metadata__":"x"}`, nil), `__metadata__: not a JSON object`, false},
		{"entry not an object", file(`{"w":[1]}`, nil), `tensor "w": entry [1] is not a JSON object`, false},
		{"unknown dtype", file(`{"w":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}}`, []byte{0}), `tensor "w": unknown dtype "F8"`, false},
		{"lower-case dtype", file(`{"w":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "w": unknown dtype "f32"`, false},
		{"dtype not a string", file(`{"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "w": dtype 4 is not a string`, false},
		{"missing dtype", file(`{"w":{"shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "w": no dtype`, false},
		{"missing shape", file(`{"w":{"dtype":"F32","data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "w": no shape`, false},
		{"missing offsets", file(`{"w":{"dtype":"F32","shape":[1]}}`, make([]byte, 4)), `tensor "w": no data_offsets`, false},
		{"unknown field", file(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"stride":[1]}}`, make([]byte, 4)), `tensor "w": unknown field "stride"`, false},
		{"field in other case", file(`{"w":{"DTYPE":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "w": unknown field "DTYPE"`, false},
		{"negative dimension", file(`{`+f32("w", "[-1]", "[0,4]")+`}`, make([]byte, 4)), `tensor "w": shape [-1] is not an array of non-negative integers`, false},
		{"fractional dimension", file(`{`+f32("w", "[1.0]", "[0,4]")+`}`, make([]byte, 4)), `tensor "w": shape [1.0] is not an array`, false},
		{"null dimension", file(`{`+f32("w", "[null]", "[0,0]")+`}`, nil), `tensor "w": shape [null] is not an array`, false},
		{"shape null", file(`{`+f32("w", "null", "[0,4]")+`}`, make([]byte, 4)), `tensor "w": shape null is not an array`, false},
		{"dimension past int64", file(`{`+f32("w", "[9223372036854775808]", "[0,4]")+`}`, make([]byte, 4)), `tensor "w": shape [9223372036854775808]: dimension 0 too large`, false},
		{"overflowing element count", file(`{`+f32("w", "[4294967296,4294967296]", "[0,4]")+`}`, make([]byte, 4)), `tensor "w": shape [4294967296 4294967296]: element count overflows int64`, false},
		{"three offsets", file(`{`+f32("w", "[1]", "[0,4,8]")+`}`, make([]byte, 4)), `tensor "w": data_offsets [0,4,8] is not an array of two`, false},
		{"offsets reversed", file(`{`+f32("w", "[0]", "[4,0]")+`}`, make([]byte, 4)), `tensor "w": data_offsets [4 0] end before they begin`, false},
		{"span differs from shape", file(`{`+f32("w", "[2,3]", "[0,20]")+`}`, make([]byte, 20)),
			`tensor "w": shape [2 3] of F32 is 24 bytes, but data_offsets [0 20] span 20`, false},
		{"gap at start", file(`{`+f32("w", "[1]", "[4,8]")+`}`, make([]byte, 8)), `tensor "w": data_offsets [4 8]: gap of 4 bytes at the start`, false},
		{"gap between", file(`{`+f32("a", "[1]", "[0,4]")+`,`+f32("b", "[1]", "[8,12]")+`}`, make([]byte, 12)),
			`tensor "b": data_offsets [8 12]: gap of 4 bytes after tensor "a", which ends at 4`, false},
		{"overlap", file(`{`+f32("a", "[2]", "[0,8]")+`,`+f32("b", "[1]", "[4,8]")+`}`, make([]byte, 8)),
			`tensor "b": data_offsets [4 8] overlap tensor "a", which ends at 8`, false},
		{"same offsets", file(`{`+f32("a", "[1]", "[0,4]")+`,`+f32("b", "[1]", "[0,4]")+`}`, make([]byte, 4)),
			`tensor "b": data_offsets [0 4] overlap tensor "a"`, false},
		{"data cut short", file(`{`+f32("a", "[1]", "[0,4]")+`,`+f32("b", "[2]", "[4,12]")+`}`, make([]byte, 6)),
			`truncated: tensor "b": data_offsets [4 12] reach past the 6-byte data section`, true},
		{"data after last tensor", file(`{`+f32("a", "[1]", "[0,4]")+`}`, make([]byte, 7)), `3 bytes of data after tensor "a", which ends at 4`, false},
		{"data but no tensors", file(`{}      `, make([]byte, 2)), `no tensors, but 2 bytes of data`, false},
		{"empty name", file(`{`+f32("", "[1]", "[0,4]")+`}`, make([]byte, 4)), `tensor with an empty name`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(bytes.NewReader(tt.input), int64(len(tt.input)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode error = %v, want it to contain %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "checkpoint: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if got := errors.Is(err, ErrTruncated); got != tt.truncated {
				t.Errorf("errors.Is(err, ErrTruncated) = %v, want %v", got, tt.truncated)
			}
		})
	}
}

// TestDecodeForeign reads valid files in forms Encode does not produce, as
// other writers (the Python safetensors library, hand-written numpy code)
// make them, and checks each re-encodes to the canonical form.
func TestDecodeForeign(t *testing.T) {
	want := &File{Metadata: map[string]string{"format": "np"}}
	want.SetFloat32("a", []int64{1}, []float32{1})
	want.SetInt64("b", []int64{1}, []int64{2})
	want.Set("z", Tensor{DType: U8, Shape: []int64{0}, Data: []byte{}})
	canonical := encode(t, want)
	dataBA := []byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x3f}
	tests := []struct {
		name   string
		header string
		data   []byte
	}{
		{"dtype order, whitespace, metadata last", `{ "b": {"shape": [1], "dtype": "I64", "data_offsets": [0, 8]},
			"a": {"data_offsets": [8 , 12], "dtype": "F32", "shape": [ 1 ]}, "z": {"dtype":"U8","shape":[0],"data_offsets":[12,12]},
			"__metadata__": {"format": "np"} }`, dataBA},
		{"zero-size tensor first, unpadded header", `{"z":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"__metadata__":{"format":"np"},"b":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, dataBA},
		{"escaped names", `{"\u0061":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},"b":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"z":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"__metadata__":{"form\u0061t":"np"}}`, dataBA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := file(tt.header, tt.data)
			got, err := Decode(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !sameFile(got, want) {
				t.Errorf("Decode = %+v, want %+v", got, want)
			}
			if re := encode(t, got); !bytes.Equal(re, canonical) {
				t.Errorf("re-encoded:\n got %q\nwant %q", re, canonical)
			}
		})
	}
}

func TestReadTruncated(t *testing.T) {
	b := encode(t, sample())
	n := int(binary.LittleEndian.Uint64(b))
	dir := t.TempDir()
	for _, cut := range []int{0, 5, 8, 8 + n/2, 8 + n, 8 + n + 3, len(b) - 1} {
		path := filepath.Join(dir, "cut.safetensors")
		if err := os.WriteFile(path, b[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Read(path)
		if err == nil {
			t.Fatalf("Read of %d of %d bytes succeeded", cut, len(b))
		}
		if !errors.Is(err, ErrTruncated) || !strings.HasPrefix(err.Error(), "checkpoint: "+path+": truncated: ") {
			t.Errorf("Read of %d of %d bytes: %v, want a truncation error naming the file", cut, len(b), err)
		}
	}
	if _, err := Read(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Read of a missing file: %v, want os.ErrNotExist", err)
	}
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Read of a directory: %v", err)
	}
}

func TestAccessors(t *testing.T) {
	f := sample()
	in := []float32{1, 2}
	shape := []int64{2}
	f.SetFloat32("copy", shape, in)
	in[0], shape[0] = 9, 9 // Set must have copied both
	got, gotShape, err := f.Float32("copy")
	if err != nil || !slices.Equal(got, []float32{1, 2}) || !slices.Equal(gotShape, []int64{2}) {
		t.Errorf("Float32(copy) = %v, %v, %v", got, gotShape, err)
	}
	if v, s, err := f.Float64("optimizer/step_size"); err != nil || !slices.Equal(v, []float64{1e-3}) || len(s) != 0 {
		t.Errorf("Float64 = %v, %v, %v", v, s, err)
	}
	if v, _, err := f.Int64("optimizer/step"); err != nil || !slices.Equal(v, []int64{-42}) {
		t.Errorf("Int64 = %v, %v", v, err)
	}
	if v, _, err := f.Int32("labels"); err != nil || !slices.Equal(v, []int32{0, 1, 2, math.MaxInt32}) {
		t.Errorf("Int32 = %v, %v", v, err)
	}
	if v, s, err := f.Float32("empty"); err != nil || len(v) != 0 || !slices.Equal(s, []int64{0, 5}) {
		t.Errorf("Float32(empty) = %v, %v, %v", v, s, err)
	}
	errTests := []struct {
		name string
		call func() error
		want string
	}{
		{"missing", func() error { _, _, err := f.Float32("nope"); return err }, `checkpoint: tensor "nope": not in checkpoint`},
		{"wrong dtype", func() error { _, _, err := f.Float64("labels"); return err }, `checkpoint: tensor "labels": dtype I32, want F64`},
		{"bad data", func() error {
			g := &File{Tensors: map[string]Tensor{"w": {DType: I64, Shape: []int64{2}, Data: make([]byte, 8)}}}
			_, _, err := g.Int64("w")
			return err
		}, `checkpoint: tensor "w": shape [2] of I64 needs 16 bytes, data has 8`},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err == nil || err.Error() != tt.want {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
	if _, _, err := f.Float32("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing tensor error %v does not wrap ErrNotFound", err)
	}
}

func TestCompare(t *testing.T) {
	model := func(shape []int64, extra ...string) *File {
		f := &File{}
		f.SetFloat32("encoder/layer0/attn/in_proj/weight", shape, make([]float32, shape[0]*shape[1]))
		f.SetFloat32("encoder/layer0/attn/in_proj/bias", []int64{shape[1]}, make([]float32, shape[1]))
		for _, name := range extra {
			f.SetFloat32(name, []int64{1}, []float32{0})
		}
		return f
	}
	retyped := model([]int64{2, 6})
	retyped.SetFloat64("encoder/layer0/attn/in_proj/bias", []int64{6}, make([]float64, 6))
	tests := []struct {
		name              string
		checkpoint, model *File
		want              string
	}{
		{"equal", model([]int64{2, 6}), model([]int64{2, 6}), ""},
		{"data ignored", func() *File { f := model([]int64{2, 6}); f.SetFloat32("x", []int64{1}, []float32{1}); return f }(),
			model([]int64{2, 6}, "x"), ""},
		{"shape", model([]int64{256, 768}), model([]int64{256, 768 / 2}),
			`checkpoint: checkpoint does not match the model: tensor "encoder/layer0/attn/in_proj/bias": shape [768] in checkpoint, [384] in model (and 1 more difference)`},
		{"dtype", retyped, model([]int64{2, 6}),
			`checkpoint: checkpoint does not match the model: tensor "encoder/layer0/attn/in_proj/bias": dtype F64 in checkpoint, F32 in model`},
		{"only in checkpoint", model([]int64{2, 6}, "a", "z"), model([]int64{2, 6}),
			`checkpoint: checkpoint does not match the model: tensor "a": in checkpoint, not in model (and 1 more difference)`},
		{"only in model", model([]int64{2, 6}), model([]int64{2, 6}, "head/w", "head/b", "a"),
			`checkpoint: checkpoint does not match the model: tensor "a": in model, not in checkpoint (and 2 more differences)`},
		{"empty checkpoint", &File{}, model([]int64{2, 6}),
			`checkpoint: checkpoint does not match the model: tensor "encoder/layer0/attn/in_proj/bias": in model, not in checkpoint (and 1 more difference)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Compare(tt.checkpoint, tt.model)
			got := ""
			if err != nil {
				got = err.Error()
				if !errors.Is(err, ErrMismatch) {
					t.Errorf("error does not wrap ErrMismatch")
				}
			}
			if got != tt.want {
				t.Errorf("Compare =\n %s\nwant\n %s", got, tt.want)
			}
		})
	}
}

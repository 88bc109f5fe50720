package checkpoint

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// python is Debian's interpreter, which has python3-numpy; a python3 first
// on PATH may be another build without Debian's packages.
const python = "/usr/bin/python3"

func needNumpy(t *testing.T) {
	t.Helper()
	if err := exec.Command(python, "-c", "import numpy").Run(); err != nil {
		t.Skipf("skipping: %s cannot import numpy (apt-get install python3-numpy): %v", python, err)
	}
}

// readerScript reads a safetensors file the way a physicist without the
// safetensors library would: json for the header, np.frombuffer for the
// tensors. It prints every tensor's numpy dtype, shape and values (floats
// as float.hex, so that the comparison is exact and Inf survives JSON).
const readerScript = `
import json, struct, sys
import numpy as np
DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
          "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}
raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
assert n % 8 == 0, "header length not a multiple of 8"
header = json.loads(raw[8:8 + n])
data = raw[8 + n:]
meta = header.pop("__metadata__", {})
pos = 0
out = {"metadata": meta, "tensors": {}}
for name in sorted(header):
    e = header[name]
    begin, end = e["data_offsets"]
    assert begin == pos, (name, begin, pos)
    pos = end
    a = np.frombuffer(data[begin:end], dtype=DTYPES[e["dtype"]]).reshape(e["shape"])
    flat = a.ravel().tolist()
    if a.dtype.kind == "f":
        flat = [float(x).hex() for x in flat]
    out["tensors"][name] = {"dtype": a.dtype.str, "shape": list(a.shape), "values": flat}
assert pos == len(data), "data after the last tensor"
print(json.dumps(out))
`

// writerScript writes a safetensors file with numpy only, laid out as the
// Python safetensors library lays it out (larger dtypes first), with
// json.dumps' default spacing and an unpadded header.
const writerScript = `
import json, struct, sys
import numpy as np
tensors = {
    "w": np.arange(6, dtype="<f4").reshape(2, 3) - 2.5,
    "step": np.array(7, dtype="<i8"),
    "mask": np.array([True, False, True]),
    "ids": np.array([-1, 2**31 - 1], dtype="<i4"),
}
names = {np.dtype("<f4"): "F32", np.dtype("<i8"): "I64", np.dtype("?"): "BOOL", np.dtype("<i4"): "I32"}
order = sorted(tensors, key=lambda k: (-tensors[k].dtype.itemsize, k))
header, blobs, pos = {"__metadata__": {"source": "numpy"}}, [], 0
for k in order:
    b = tensors[k].tobytes()
    header[k] = {"dtype": names[tensors[k].dtype], "shape": list(tensors[k].shape), "data_offsets": [pos, pos + len(b)]}
    blobs.append(b)
    pos += len(b)
h = json.dumps(header).encode()
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
`

func TestPythonReadsCheckpoint(t *testing.T) {
	needNumpy(t)
	path := filepath.Join(t.TempDir(), "model.safetensors")
	f := &File{Metadata: map[string]string{"epoch": "12", "note": "ünïcode ✓"}}
	f.SetFloat32("encoder/w", []int64{2, 3}, []float32{1.5, -2, float32(math.Inf(-1)), 0, 3.4028235e38, 1e-45})
	f.SetFloat64("lr", []int64{}, []float64{math.Pi})
	f.SetInt64("step", []int64{1}, []int64{math.MinInt64})
	f.SetInt32("ids", []int64{3, 1}, []int32{-7, 0, math.MaxInt32})
	f.Set("mask", Tensor{DType: BOOL, Shape: []int64{2}, Data: []byte{0, 1}})
	f.Set("bytes", Tensor{DType: U8, Shape: []int64{2}, Data: []byte{0, 255}})
	f.Set("half", Tensor{DType: F16, Shape: []int64{1}, Data: []byte{0x00, 0xbc}}) // -1.0
	f.SetFloat32("none", []int64{0, 4}, nil)
	if err := Write(path, f); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, "-c", readerScript, path).CombinedOutput()
	if err != nil {
		t.Fatalf("numpy reader: %v\n%s", err, out)
	}
	type pyTensor struct {
		DType  string            `json:"dtype"`
		Shape  []int64           `json:"shape"`
		Values []json.RawMessage `json:"values"`
	}
	var got struct {
		Metadata map[string]string   `json:"metadata"`
		Tensors  map[string]pyTensor `json:"tensors"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("numpy reader output %q: %v", out, err)
	}
	if len(got.Metadata) != 3 || got.Metadata["note"] != "ünïcode ✓" || got.Metadata["epoch"] != "12" || got.Metadata[ChecksumKey] != dataChecksum(f) {
		t.Errorf("metadata in Python: %v", got.Metadata)
	}
	hexFloat := func(raw json.RawMessage) float64 {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("value %s: %v", raw, err)
		}
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("value %s: %v", raw, err)
		}
		return x
	}
	strs := func(raw []json.RawMessage) []string {
		var s []string
		for _, r := range raw {
			s = append(s, string(r))
		}
		return s
	}
	tests := []struct {
		name, dtype string
		shape       []int64
		check       func(values []json.RawMessage) bool
	}{
		{"encoder/w", "<f4", []int64{2, 3}, func(v []json.RawMessage) bool {
			want, _, _ := f.Float32("encoder/w")
			for i := range want {
				if hexFloat(v[i]) != float64(want[i]) {
					return false
				}
			}
			return len(v) == len(want)
		}},
		{"lr", "<f8", []int64{}, func(v []json.RawMessage) bool { return len(v) == 1 && hexFloat(v[0]) == math.Pi }},
		{"step", "<i8", []int64{1}, func(v []json.RawMessage) bool {
			return slices.Equal(strs(v), []string{"-9223372036854775808"})
		}},
		{"ids", "<i4", []int64{3, 1}, func(v []json.RawMessage) bool {
			return slices.Equal(strs(v), []string{"-7", "0", "2147483647"})
		}},
		{"mask", "|b1", []int64{2}, func(v []json.RawMessage) bool { return slices.Equal(strs(v), []string{"false", "true"}) }},
		{"bytes", "|u1", []int64{2}, func(v []json.RawMessage) bool { return slices.Equal(strs(v), []string{"0", "255"}) }},
		{"half", "<f2", []int64{1}, func(v []json.RawMessage) bool { return len(v) == 1 && hexFloat(v[0]) == -1 }},
		{"none", "<f4", []int64{0, 4}, func(v []json.RawMessage) bool { return len(v) == 0 }},
	}
	if len(got.Tensors) != len(tests) {
		t.Errorf("Python read %d tensors, want %d", len(got.Tensors), len(tests))
	}
	for _, tt := range tests {
		p, ok := got.Tensors[tt.name]
		switch {
		case !ok:
			t.Errorf("tensor %q: not read by Python", tt.name)
		case p.DType != tt.dtype || !slices.Equal(p.Shape, tt.shape):
			t.Errorf("tensor %q: numpy dtype %s shape %v, want %s %v", tt.name, p.DType, p.Shape, tt.dtype, tt.shape)
		case !tt.check(p.Values):
			t.Errorf("tensor %q: numpy values %s", tt.name, strs(p.Values))
		}
	}
}

func TestReadPythonCheckpoint(t *testing.T) {
	needNumpy(t)
	path := filepath.Join(t.TempDir(), "numpy.safetensors")
	if out, err := exec.Command(python, "-c", writerScript, path).CombinedOutput(); err != nil {
		t.Fatalf("numpy writer: %v\n%s", err, out)
	}
	f, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["source"] != "numpy" || len(f.Metadata) != 1 {
		t.Errorf("metadata %v", f.Metadata)
	}
	if v, s, err := f.Float32("w"); err != nil || !slices.Equal(v, []float32{-2.5, -1.5, -0.5, 0.5, 1.5, 2.5}) || !slices.Equal(s, []int64{2, 3}) {
		t.Errorf("w = %v %v %v", v, s, err)
	}
	if v, s, err := f.Int64("step"); err != nil || !slices.Equal(v, []int64{7}) || len(s) != 0 {
		t.Errorf("step = %v %v %v", v, s, err)
	}
	if v, _, err := f.Int32("ids"); err != nil || !slices.Equal(v, []int32{-1, math.MaxInt32}) {
		t.Errorf("ids = %v %v", v, err)
	}
	if m := f.Tensors["mask"]; m.DType != BOOL || !slices.Equal(m.Data, []byte{1, 0, 1}) {
		t.Errorf("mask = %+v", m)
	}
	// Written again, the file takes the canonical form and still reads.
	again := filepath.Join(filepath.Dir(path), "again.safetensors")
	if err := Write(again, f); err != nil {
		t.Fatal(err)
	}
	g, err := Read(again)
	if err != nil || !sameFile(f, g) {
		t.Errorf("rewritten file: %v", err)
	}
	if _, err := os.Stat(again); err != nil {
		t.Fatal(err)
	}
}

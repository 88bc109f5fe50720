package loader

import (
	"math"
	"path/filepath"
	"testing"
)

// TestHalf checks float16 decoding against encoding for every bit pattern
// and the rounding of values between halves.
func TestHalf(t *testing.T) {
	for h := range 1 << 16 {
		f := halfToFloat32(uint16(h))
		if f != f {
			if float32ToHalf(f)&0x7c00 != 0x7c00 || float32ToHalf(f)&0x3ff == 0 {
				t.Fatalf("NaN %#04x does not stay NaN", h)
			}
			continue
		}
		if back := float32ToHalf(f); back != uint16(h) {
			t.Fatalf("%#04x → %v → %#04x", h, f, back)
		}
	}
	cases := []struct {
		in   float32
		want float32
	}{
		{1 + 1.0/2048, 1},                      // tie to even
		{1 + 3.0/2048, 1 + 2.0/1024},           // tie to even, upwards
		{65519, 65504},                         // largest half
		{65520, float32(math.Inf(1))},          // overflows
		{-1e-8, float32(math.Copysign(0, -1))}, // underflows to -0
		{6e-8, float32(math.Ldexp(1, -24))},    // smallest subnormal
		{0.1, 0.0999755859375},                 // nearest half
		{float32(math.Inf(-1)), float32(math.Inf(-1))},
	}
	for _, c := range cases {
		if got := halfToFloat32(float32ToHalf(c.in)); got != c.want || math.Signbit(float64(got)) != math.Signbit(float64(c.want)) {
			t.Errorf("half(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// TestRowLayout checks packing and Put/Get for each type.
func TestRowLayout(t *testing.T) {
	l, err := NewRowLayout(Field{Name: "a", Type: Uint8}, Field{Name: "b", Type: Float64, BigEndian: true}, Field{Name: "c", Type: Bool}, Field{Name: "d", Type: Int16})
	if err != nil {
		t.Fatal(err)
	}
	if l.Size != 12 || l.Offsets[3] != 10 || l.Index("c") != 2 || l.Index("z") != -1 {
		t.Fatalf("layout %+v", l)
	}
	row := make([]byte, l.Size)
	for i, v := range []float64{200, -3.5, 7, -300} {
		l.Put(row, i, v)
	}
	for i, want := range []float64{200, -3.5, 1, -300} {
		if got := l.Get(row, i); got != want {
			t.Errorf("field %d = %v, want %v", i, got, want)
		}
	}
	if _, err := NewRowLayout(Field{Name: "a", Type: Uint8}, Field{Name: "a", Type: Int8}); err == nil {
		t.Error("duplicate names accepted")
	}
}

// TestNULInNames checks that names HDF5 would cut at a NUL byte are
// refused rather than written or read as their prefix (FuzzH5Fields wrote
// field "0\x00" as "0" and could not read it back).
func TestNULInNames(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewRowLayout(Field{Name: "pt\x00x", Type: Float32}); err == nil || !contains(err.Error(), "NUL") {
		t.Errorf("field name: %v", err)
	}
	if _, err := Create(filepath.Join(dir, "a.h5\x00b")); err == nil || !contains(err.Error(), "NUL") {
		t.Errorf("path: %v", err)
	}
	path := filepath.Join(dir, "a.h5")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewRowLayout(Field{Name: "pt", Type: Float32}, Field{Name: "valid", Type: Bool})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.CreateTable("jets\x00x", l, []int{1}, TableOptions{}); err == nil || !contains(err.Error(), "NUL") {
		t.Errorf("dataset name: %v", err)
	}
	tab, err := w.CreateTable("jets", l, []int{1}, TableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tab.WriteRows(0, make([]byte, l.Size)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFieldTable(path, "jets\x00x"); err == nil || !contains(err.Error(), "NUL") {
		t.Errorf("OpenFieldTable: %v", err)
	}
	cfg := Config{Files: []string{path}, BatchSize: 1, Groups: []Group{{Name: "jets", Dataset: "jets\x00x", Variables: []string{"pt"}}}}
	if _, err := Open(cfg); err == nil || !contains(err.Error(), "NUL") {
		t.Errorf("Open: %v", err)
	}
}

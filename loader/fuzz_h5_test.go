package loader

import (
	"math"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/salt-ort/salt-ort/internal/testkit/fuzztest"
)

// maxFuzzH5 bounds the names and bytes FuzzH5Fields turns into a file: a
// dozen fields and rows, tiny files that cost well under a millisecond to
// write and read.
const maxFuzzH5 = 256

// fieldKind is the converter kind Open must find for a field the Writer
// wrote with type t (a bool is h5py's enum over int8).
var fieldKind = map[FieldType]numKind{
	Float16: kF16, Float32: kF32, Float64: kF64,
	Int8: kI8, Int16: kI16, Int32: kI32, Int64: kI64,
	Uint8: kU8, Uint16: kU16, Uint32: kU32, Uint64: kU64,
	Bool: kI8,
}

// FuzzH5Fields writes a tiny HDF5 file with the package's own Writer, one
// compound dataset whose name, field names, field types, byte orders,
// shape and raw contents are fuzzed, and reads it back the ways salt-ort
// reads inputs: OpenFieldTable and FieldReader (fields copied in their
// stored types, as `salt-ort convert` does) and Open (datasets, shapes and
// fields validated and interpreted for conversion to float32). Nothing may
// panic or leave HDF5 objects or goroutines behind; every refusal is a
// "loader: " error; a file the Writer wrote opens, reports the types and
// shape written and reads back the bytes written. Run it with
//
//	go test -run '^$' -fuzz '^FuzzH5Fields$' -fuzztime 1m ./loader
//
// types[i] is field i's FieldType in its low 4 bits (0 and 13-15 are not
// types), big-endian if bit 7 is set; rows and maxLen (0: 1-D) are taken
// modulo 5; raw fills the rows, repeated; storage's low 2 bits choose
// contiguous storage, chunks, gzip or LZF, with 1 + (storage>>2)%4 jets
// per chunk.
//
// Among the seeds are the shapes of files that broke salt-ort: tracks
// whose valid entries are interleaved with padding (atlas-ftag-tools'
// mock writer makes them), and LZF-compressed datasets (h5py's filter,
// the default of ftag's H5Writer until 2026). Virtual datasets with a
// missing source are FuzzVDSCoverage's.
func FuzzH5Fields(f *testing.F) {
	fuzztest.BoundMinimization(f)
	dir := fuzztest.ScratchDir(f)
	objects := -1 // HDF5 objects open between calls
	f.Add("jets", "pt_btagJes,eta_btagJes,flavour_label", []byte{2, 3, 6}, uint8(3), uint8(0), []byte("0123456789abcdef"), "flavour_label", uint8(0))
	f.Add("tracks", "d0,valid,ftagTruthOriginLabel", []byte{1, 12, 0x87}, uint8(2), uint8(3), []byte{0xff, 0x7c, 1, 0, 2, 0x80}, "ftagTruthOriginLabel", uint8(0))
	f.Add("/hits", "a,b,c,d,e,f,g,h,i,j,k,valid", []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, uint8(4), uint8(1), []byte{0x7f, 0xf8, 0, 0, 0, 0, 0, 1}, "z", uint8(0))
	f.Add("x", "a,a", []byte{2, 2}, uint8(1), uint8(0), []byte{}, "a", uint8(0))
	f.Add("a/b", "a,b", []byte{0, 13}, uint8(1), uint8(0), []byte{1}, "", uint8(0))
	f.Add("jets", "valid", []byte{0x8c}, uint8(1), uint8(4), []byte{2}, "valid", uint8(0))
	// Tracks with valid entries interleaved with padding: rows of 10
	// bytes (d0, z0SinTheta, valid, ftagTruthOriginLabel), a valid track
	// then padding (valid 0, d0 NaN, label -1), repeated.
	interleaved := []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xbf, 1, 2, 0, 0, 0xc0, 0x7f, 0, 0, 0, 0, 0, 0xff}
	f.Add("tracks", "d0,z0SinTheta,valid,ftagTruthOriginLabel", []byte{2, 2, 12, 4}, uint8(3), uint8(4), interleaved, "ftagTruthOriginLabel", uint8(0))
	f.Add("tracks", "d0,z0SinTheta,valid,ftagTruthOriginLabel", []byte{2, 2, 12, 4}, uint8(3), uint8(4), interleaved, "ftagTruthOriginLabel", uint8(3))
	// LZF, as ftag's H5Writer wrote jets, in chunks of 2 jets; and gzip.
	f.Add("jets", "pt_btagJes,eta_btagJes,flavour_label", []byte{2, 2, 6}, uint8(4), uint8(0), []byte{0, 0x40, 0x9c, 0x46, 0xcd, 0xcc, 0x4c, 0x3f, 2, 0, 0, 0}, "flavour_label", uint8(3|1<<2))
	f.Add("jets", "pt_btagJes,eta_btagJes,flavour_label", []byte{2, 2, 6}, uint8(4), uint8(0), []byte{0, 0x40, 0x9c, 0x46, 0xcd, 0xcc, 0x4c, 0x3f, 2, 0, 0, 0}, "flavour_label", uint8(2))
	f.Fuzz(func(t *testing.T, dataset, names string, types []byte, rows, maxLen uint8, raw []byte, query string, storage uint8) {
		if len(dataset)+len(names)+len(types)+len(raw)+len(query) > maxFuzzH5 {
			return
		}
		if objects < 0 { // once
			objects = h5OpenObjects()
		}
		goroutines := runtime.NumGoroutine()
		defer func() {
			if n := h5OpenObjects(); n != objects {
				t.Errorf("%d HDF5 objects open after the call, %d before", n, objects)
			}
			if n := settledGoroutines(goroutines); n > goroutines {
				t.Errorf("%d goroutines after the call, %d before", n, goroutines)
			}
		}()
		refused := func(what string, err error) {
			t.Helper()
			if !strings.HasPrefix(err.Error(), "loader: ") {
				t.Fatalf("%s: error %q lacks the package prefix", what, err)
			}
		}

		var fields []Field
		for i, n := range strings.Split(names, ",") {
			var b byte
			if i < len(types) {
				b = types[i]
			}
			fields = append(fields, Field{Name: n, Type: FieldType(b & 0x0f), BigEndian: b&0x80 != 0})
		}
		layout, err := NewRowLayout(fields...)
		if err != nil {
			refused("NewRowLayout", err)
			return
		}
		dims := []int{int(rows % 5)}
		if maxLen != 0 {
			dims = append(dims, int(maxLen%5))
		}
		path := filepath.Join(dir, "fuzz.h5")
		w, err := Create(path)
		if err != nil {
			t.Fatal(err)
		}
		var opts TableOptions
		if storage&3 != 0 {
			opts.ChunkRows = 1 + int(storage>>2)%4
			opts.Deflate = map[bool]int{true: 1}[storage&3 == 2]
			opts.LZF = storage&3 == 3
		}
		tab, err := w.CreateTable(dataset, layout, dims, opts)
		if err != nil {
			refused("CreateTable", err)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			return
		}
		data := make([]byte, dims[0]*tab.RowsPer()*layout.Size)
		for i := range data {
			if len(raw) > 0 {
				data[i] = raw[i%len(raw)]
			}
		}
		if err := tab.WriteRows(0, data); err != nil {
			t.Fatalf("writing %d rows of %d bytes: %v", dims[0], layout.Size, err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}

		// As `salt-ort convert` copies fields: in their stored types.
		ft, err := OpenFieldTable(path, dataset)
		if err != nil {
			t.Fatalf("the written file does not open: %v", err)
		}
		defer ft.Close()
		if ft.Rows() != dims[0] || ft.Rank() != len(dims) {
			t.Fatalf("shape %d rows, rank %d; wrote %v", ft.Rows(), ft.Rank(), dims)
		}
		all := make([]int, len(fields))
		le := make([]Field, len(fields))
		for i, fl := range fields {
			all[i] = i
			le[i] = Field{Name: fl.Name, Type: fl.Type}
			if got, err := ft.Type(fl.Name); err != nil || got != fl.Type || !ft.Has(fl.Name) {
				t.Fatalf("field %q: type %v (%v), wrote %v", fl.Name, got, err, fl.Type)
			}
		}
		if layout.Index(query) < 0 {
			if _, err := ft.Type(query); err == nil {
				t.Fatalf("field %q, never written, has a type", query)
			} else {
				refused("Type", err)
			}
		}
		perJet := max(1, tab.RowsPer())
		fr, err := ft.NewFieldReader(layout, all, perJet)
		if err != nil {
			t.Fatalf("NewFieldReader: %v", err)
		}
		defer fr.Close()
		got := make([]byte, len(data))
		if err := fr.Read(0, dims[0], got); err != nil {
			t.Fatalf("Read: %v", err)
		}
		// The reader's memory types are little-endian: compare values.
		mem, _ := NewRowLayout(le...)
		for r := 0; r < len(data)/max(layout.Size, 1); r++ {
			for i := range fields {
				w := layout.Get(data[r*layout.Size:], i)
				g := mem.Get(got[r*layout.Size:], i)
				if !sameFloat(w, g) {
					t.Fatalf("row %d field %q (%v): wrote %v, read %v", r, fields[i].Name, fields[i].Type, w, g)
				}
			}
		}

		// As training reads inputs: validated, fields interpreted for
		// conversion.
		var vars []string
		for _, fl := range fields {
			if fl.Name != "valid" {
				vars = append(vars, fl.Name)
			}
		}
		if len(vars) == 0 {
			vars = []string{"valid"}
		}
		cfg := Config{Files: []string{path}, BatchSize: 1, Workers: 1,
			Groups: []Group{{Name: "g", Dataset: dataset, Variables: vars}}}
		if query != "" {
			cfg.Labels = []Label{{Name: "l", Dataset: dataset, Field: query, Kind: ClassLabel}}
		}
		d, err := Open(cfg)
		if err != nil {
			refused("Open", err)
			return
		}
		defer d.Close()
		sf := d.files[0]
		check := func(c fieldConv, name string) {
			t.Helper()
			i := layout.Index(name)
			fl := fields[i]
			be := fl.BigEndian && fl.Type != Bool // the Writer's bool enum is over native int8
			if c.kind != fieldKind[fl.Type] || c.be != be || c.off != layout.Offsets[i] {
				t.Fatalf("field %q written as %v (big-endian %v) at offset %d is read as %v (big-endian %v) at %d",
					name, fl.Type, fl.BigEndian, layout.Offsets[i], c.kind, c.be, c.off)
			}
			if fl.Type == Int64 || fl.Type == Uint64 {
				return // Get's float64 rounds before float32 does
			}
			for r := 0; r+layout.Size <= len(data); r += layout.Size {
				w := float32(layout.Get(data[r:], i))
				if fl.Type == Bool {
					w = float32(int8(data[r+layout.Offsets[i]])) // an enum over int8; Get reads the byte unsigned
				}
				if g := c.f32(data[r:]); math.Float32bits(w) != math.Float32bits(g) && !(w != w && g != g) {
					t.Fatalf("field %q (%v): %v converts to %v", name, fl.Type, w, g)
				}
			}
		}
		for vi, v := range vars {
			check(sf.groupConv[0][vi], v)
		}
		if len(dims) == 2 {
			check(sf.ds[0].valid, "valid")
		}
		if query != "" {
			check(sf.labelConv[0], query)
		}
		if d.Len() != dims[0] {
			t.Fatalf("Open counts %d jets, wrote %d", d.Len(), dims[0])
		}
	})
}

// settledGoroutines is the number of goroutines once it has come back to
// at most want, or after a second of waiting: a goroutine the testing
// package's fuzz worker starts and ends around an input must not count as
// one the loader leaked, while a leaked one is still there a second later.
func settledGoroutines(want int) int {
	deadline := time.Now().Add(time.Second)
	n := runtime.NumGoroutine()
	for n > want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

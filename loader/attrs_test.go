package loader

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/internal/testkit/fuzztest"
)

// h5pyAttrScript writes a jets dataset with string attributes of every
// kind h5py writes: a list of str (variable-length UTF-8, what the ftag
// preprocessing's H5Writer.add_attr writes for flavour_label), numpy "S"
// arrays (fixed-length, NUL-padded), space-padded fixed-length strings,
// scalars, and attributes that are not lists of strings.
const h5pyAttrScript = `
import sys
import numpy as np, h5py
with h5py.File(sys.argv[1], "w") as f:
    d = f.create_dataset("jets", data=np.zeros(3, dtype=[("flavour_label", "<i4")]))
    d.attrs["flavour_label"] = ["bjets", "cjets", "ujets", "taujets"]
    d.attrs["unicode"] = ["b", "τjets"]
    d.attrs["fixed"] = np.array([b"bjets", b"c", b"ujets"], dtype="S7")
    d.attrs["scalar_vlen"] = "bjets"
    d.attrs["scalar_fixed"] = np.bytes_(b"hbb")
    d.attrs["empty"] = np.array([], dtype=h5py.string_dtype())
    d.attrs["ints"] = np.arange(4)
    d.attrs["matrix"] = np.array([["a", "b"], ["c", "d"]], dtype=h5py.string_dtype())
    d.attrs["latin1"] = np.array([b"\xe9t\xe9"], dtype="S3")
    tid = h5py.h5t.C_S1.copy()
    tid.set_size(6)
    tid.set_strpad(h5py.h5t.STR_SPACEPAD)
    a = h5py.h5a.create(d.id, b"spacepad", tid, h5py.h5s.create_simple((2,)))
    a.write(np.array([b"bjets", b"c"], dtype="S6"))
    f.create_group("meta").attrs["flavour_label"] = ["x", "y"]
# Dense attribute storage (libver latest) holds attributes over 64 KiB.
with h5py.File(sys.argv[2], "w", libver="latest") as f:
    d = f.create_dataset("jets", data=np.zeros(3, dtype=[("flavour_label", "<i4")]))
    d.attrs["too_many"] = np.zeros(70000, dtype="S1")
    d.attrs["long_vlen"] = np.array(["x" * 60000] * 300, dtype=h5py.string_dtype())
    d.attrs["long_fixed"] = np.zeros(300, dtype="S60000")
`

// TestReadStringsAttrH5py reads string attributes h5py wrote.
func TestReadStringsAttrH5py(t *testing.T) {
	py := needH5py(t)
	path, dense := filepath.Join(t.TempDir(), "attrs.h5"), filepath.Join(t.TempDir(), "dense.h5")
	if out, err := exec.Command(py, "-c", h5pyAttrScript, path, dense).CombinedOutput(); err != nil {
		t.Fatalf("writing with h5py: %v\n%s", err, out)
	}
	cases := []struct {
		dataset, attr string
		want          []string
		err           []string // substrings of the error
	}{
		{dataset: "jets", attr: "flavour_label", want: []string{"bjets", "cjets", "ujets", "taujets"}},
		{dataset: "jets", attr: "unicode", want: []string{"b", "τjets"}},
		{dataset: "jets", attr: "fixed", want: []string{"bjets", "c", "ujets"}},
		{dataset: "jets", attr: "spacepad", want: []string{"bjets", "c"}},
		{dataset: "jets", attr: "scalar_vlen", want: []string{"bjets"}},
		{dataset: "jets", attr: "scalar_fixed", want: []string{"hbb"}},
		{dataset: "jets", attr: "empty", want: []string{}},
		{dataset: "meta", attr: "flavour_label", want: []string{"x", "y"}},
		{dataset: "jets", attr: "ints", err: []string{path, `dataset "jets"`, `attribute "ints"`, "integer values, not strings"}},
		{dataset: "jets", attr: "matrix", err: []string{`attribute "matrix"`, "2-dimensional"}},
		{dataset: "jets", attr: "latin1", err: []string{`attribute "latin1"`, "not valid UTF-8"}},
		{dataset: "jets", attr: "class_names", err: []string{path, `dataset "jets" has no attribute "class_names"`, "it has empty, fixed, flavour_label", "list class_names in the configuration"}},
		{dataset: "tracks", attr: "flavour_label", err: []string{path, `no dataset "tracks"`, "the file has jets, meta"}},
		{dataset: "jets\x00x", attr: "flavour_label", err: []string{"NUL"}},
		{dataset: "jets", attr: "flavour_label\x00x", err: []string{"NUL"}},
	}
	objects := h5OpenObjects()
	for _, c := range cases {
		got, err := ReadStringsAttr(path, c.dataset, c.attr)
		if c.err != nil {
			if err == nil {
				t.Errorf("%s/%s: read %q, want an error", c.dataset, c.attr, got)
				continue
			}
			for _, s := range c.err {
				if !contains(err.Error(), s) {
					t.Errorf("%s/%s: error %q lacks %q", c.dataset, c.attr, err, s)
				}
			}
			continue
		}
		if err != nil {
			t.Errorf("%s/%s: %v", c.dataset, c.attr, err)
			continue
		}
		if got == nil || !slices.Equal(got, c.want) {
			t.Errorf("%s/%s = %q, want %q", c.dataset, c.attr, got, c.want)
		}
	}
	for attr, want := range map[string]string{
		"too_many":   "holds 70000 strings, more than the 65536",
		"long_vlen":  "holds more than 16777216 bytes of text",
		"long_fixed": "holds 300 strings of 60000 bytes, more than 16777216 bytes of text",
	} {
		if _, err := ReadStringsAttr(dense, "jets", attr); err == nil || !contains(err.Error(), dense) || !contains(err.Error(), `attribute "`+attr+`" `+want) {
			t.Errorf("%s: %v, want an error naming %s with %q", attr, err, dense, want)
		}
	}
	if n := h5OpenObjects(); n != objects {
		t.Errorf("%d HDF5 objects open after reading, %d before", n, objects)
	}
}

// TestReadStringsAttrErrors checks the errors for a file that is missing
// or not HDF5, and that a missing attribute is an *AttrError.
func TestReadStringsAttrErrors(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("not hdf5"), 0o644); err != nil {
		t.Fatal(err)
	}
	h5 := filepath.Join(dir, "jets.h5")
	writeH5(t, h5, tbl{name: "jets", dims: []int{2}, cols: []col{{Field{Name: "flavour_label", Type: Int32}, func(j, _ int) float64 { return float64(j) }}}})
	for _, c := range []struct {
		file string
		err  []string
	}{
		{filepath.Join(dir, "absent.h5"), []string{"absent.h5", "no such file"}},
		{text, []string{text, "HDF5"}},
		{h5, []string{h5, `dataset "jets" has no attribute "flavour_label" (it has none)`, "list class_names"}},
	} {
		_, err := ReadStringsAttr(c.file, "jets", "flavour_label")
		if err == nil {
			t.Errorf("%s: no error", c.file)
			continue
		}
		for _, s := range c.err {
			if !contains(err.Error(), s) {
				t.Errorf("%s: error %q lacks %q", c.file, err, s)
			}
		}
	}
	_, err := ReadStringsAttr(h5, "jets", "flavour_label")
	var ae *AttrError
	if !errors.As(err, &ae) || !ae.Missing || ae.File != h5 || ae.Dataset != "jets" || ae.Attr != "flavour_label" {
		t.Errorf("missing attribute: %#v", err)
	}
}

// TestStringsAttrRoundTrip writes string attributes with the writer and
// reads them back here and with h5py, which must see lists of str.
func TestStringsAttrRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.h5")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewRowLayout(Field{Name: "flavour_label", Type: Int32})
	if err != nil {
		t.Fatal(err)
	}
	tab, err := w.CreateTable("jets", l, []int{2}, TableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"flavour_label": {"bjets", "cjets", "ujets", "taujets"},
		"unicode":       {"τjets", ""},
		"empty":         {},
	}
	if err := tab.SetStringsAttr("flavour_label", []string{"replaced"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"flavour_label", "unicode", "empty"} {
		if err := tab.SetStringsAttr(name, want[name]); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		vals []string
		err  string
	}{
		{"", []string{"a"}, "needs a name"},
		{"a\x00b", []string{"a"}, "NUL"},
		{"nul", []string{"a\x00b"}, "string 0"},
		{"utf8", []string{"ok", "\xff"}, "string 1"},
	} {
		if err := tab.SetStringsAttr(c.name, c.vals); err == nil || !contains(err.Error(), c.err) || !contains(err.Error(), path) {
			t.Errorf("SetStringsAttr(%q, %q): %v, want an error naming the file and %q", c.name, c.vals, err, c.err)
		}
	}
	if err := tab.WriteRows(0, make([]byte, 2*l.Size)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tab.SetStringsAttr("late", []string{"a"}); err == nil || !contains(err.Error(), "closed") {
		t.Errorf("after Close: %v", err)
	}
	for name, vals := range want {
		got, err := ReadStringsAttr(path, "jets", name)
		if err != nil || !slices.Equal(got, vals) {
			t.Errorf("%s: read %q, %v; want %q", name, got, err, vals)
		}
	}
	if _, err := ReadStringsAttr(path, "jets", "nul"); err == nil {
		t.Error("a refused attribute was written")
	}

	py := needH5py(t)
	script := `
import sys, json, h5py
with h5py.File(sys.argv[1], "r") as f:
    out = {}
    for k, v in f["jets"].attrs.items():
        vals = list(v)
        assert all(type(s) is str for s in vals), (k, vals)
        out[k] = vals
    print(json.dumps(out))
`
	out, err := exec.Command(py, "-c", script, path).CombinedOutput()
	if err != nil {
		t.Fatalf("reading with h5py: %v\n%s", err, out)
	}
	var got map[string][]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(got) != len(want) {
		t.Errorf("h5py sees attributes %v, want %v", got, want)
	}
	for name, vals := range want {
		if !slices.Equal(got[name], vals) {
			t.Errorf("h5py reads %s = %q, want %q", name, got[name], vals)
		}
	}
}

// FuzzStringsAttr writes a string attribute with fuzzed name and values
// (split at "|") on a dataset and reads it back: a value the writer
// accepts reads back as written, a refusal is a "loader: " error that
// writes nothing, and nothing leaves HDF5 objects open. Run it with
//
//	go test -run '^$' -fuzz '^FuzzStringsAttr$' -fuzztime 1m ./loader
func FuzzStringsAttr(f *testing.F) {
	fuzztest.BoundMinimization(f)
	dir := fuzztest.ScratchDir(f)
	objects := -1
	f.Add("flavour_label", "bjets|cjets|ujets|taujets")
	f.Add("unicode", "τjets|")
	f.Add("", "a")
	f.Add("nul\x00", "a")
	f.Add("bad", "\xff|a\x00b")
	f.Fuzz(func(t *testing.T, name, joined string) {
		if len(name)+len(joined) > 512 {
			return
		}
		if objects < 0 {
			objects = h5OpenObjects()
		}
		defer func() {
			if n := h5OpenObjects(); n != objects {
				t.Errorf("%d HDF5 objects open after the call, %d before", n, objects)
			}
		}()
		vals := strings.Split(joined, "|")
		path := filepath.Join(dir, "attr.h5")
		w, err := Create(path)
		if err != nil {
			t.Fatal(err)
		}
		l, err := NewRowLayout(Field{Name: "flavour_label", Type: Int32})
		if err != nil {
			t.Fatal(err)
		}
		tab, err := w.CreateTable("jets", l, []int{1}, TableOptions{})
		if err != nil {
			t.Fatal(err)
		}
		werr := tab.SetStringsAttr(name, vals)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got, rerr := ReadStringsAttr(path, "jets", name)
		if werr != nil {
			if !strings.HasPrefix(werr.Error(), "loader: ") {
				t.Fatalf("refusal %q lacks the package prefix", werr)
			}
			if rerr == nil {
				t.Fatalf("a refused attribute (%v) reads back as %q", werr, got)
			}
			return
		}
		if rerr != nil || !slices.Equal(got, vals) {
			t.Fatalf("wrote %q, read %q, %v", vals, got, rerr)
		}
	})
}

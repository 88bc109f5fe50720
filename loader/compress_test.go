package loader

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/hdf5"
)

// datasetFilters returns the filter pipeline of a dataset.
func datasetFilters(t testing.TB, path, name string) []h5Filter {
	t.Helper()
	f, err := hdf5.OpenFile(path, hdf5.F_ACC_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := f.OpenDataset(name)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	l, err := h5Describe(d.ID())
	if err != nil {
		t.Fatal(err)
	}
	return l.filters
}

func hasFilter(fs []h5Filter, id int) bool {
	return slices.ContainsFunc(fs, func(f h5Filter) bool { return f.id == id })
}

// TestCompressedFtagFiles reads files compressed the ways Salt's toolchain
// compresses them, written by h5py as atlas-ftag-tools' H5Writer writes:
// LZF (h5py's own filter, the writer's default until 2026), gzip, and the
// plugin filters through Debian's plugin packages (found by the writer
// process through HDF5_PLUGIN_PATH, by salt-ort without it). Zstandard has
// no Debian plugin: its chunks are made by the zstd tool.
func TestCompressedFtagFiles(t *testing.T) {
	plugins := "HDF5_PLUGIN_PATH=" + debianPluginDir()
	cases := []struct {
		name   string
		filter int
		args   []string // ftagScript arguments after the path, size and first jet
	}{
		{"lzf", filterLZF, []string{"h5writer", "lzf", "null"}},
		{"gzip", filterDeflate, []string{"h5writer", "gzip", "4"}},
		{"lz4 (hdf5plugin.LZ4)", filterLZ4, []string{"h5writer", "32004", "[0]"}},
		{"blosc lz4 with byte shuffle", filterBlosc, []string{"h5writer", "32001", "[0,0,0,0,5,1,1]"}},
		{"bitshuffle lz4", filterBitshuffle, []string{"h5writer", "32008", "[0,2]"}},
		{"bzip2", 307, []string{"h5writer", "307", "[9]"}},
		{"zstd frames with their size (hdf5plugin.Zstd)", filterZstd, []string{"direct", "32015", "zstd"}},
		{"zstd frames without their size", filterZstd, []string{"direct", "32015", "zstd-stream"}},
	}
	dir := t.TempDir()
	if err := setupFilters(); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !filterAvailable(c.filter) {
				t.Fatalf("%s (`make deps` installs what the tests need)", filterHelp(c.filter, "", pluginPath()))
			}
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".h5")
			const n, first = 250, 3
			args := append([]string{c.args[0], path, "250", "3"}, c.args[1:]...)
			runFtag(t, []string{plugins}, args...)
			for _, ds := range []string{"jets", "tracks"} {
				if fs := datasetFilters(t, path, ds); !hasFilter(fs, c.filter) {
					t.Fatalf("case %d: %s carries filters %+v, not %d: the test wrote the wrong file", i, ds, fs, c.filter)
				}
			}
			pt, d0, valid := readFtag(t, path)
			if len(pt) != n {
				t.Fatalf("read %d jets, want %d", len(pt), n)
			}
			checkFtagValues(t, first, pt, d0, valid)
		})
	}
}

// TestWriterLZF writes LZF with salt-ort's writer, as Salt's
// PredictionWriter did by default before LZ4, and checks that h5py reads
// it and that the filter is salt-ort's in-process one (not a plugin).
func TestWriterLZF(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pred.h5")
	jl, err := NewRowLayout(Field{Name: "pt_btagJes", Type: Float32}, Field{Name: "eventNumber", Type: Int64}, Field{Name: "flavour_label", Type: Int32})
	if err != nil {
		t.Fatal(err)
	}
	tl, err := NewRowLayout(Field{Name: "d0", Type: Float32}, Field{Name: "valid", Type: Bool})
	if err != nil {
		t.Fatal(err)
	}
	const n = 230
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	jt, err := w.CreateTable("jets", jl, []int{n}, TableOptions{ChunkRows: 100, LZF: true})
	if err != nil {
		t.Fatal(err)
	}
	tt, err := w.CreateTable("tracks", tl, []int{n, ftagT}, TableOptions{ChunkRows: 100, LZF: true})
	if err != nil {
		t.Fatal(err)
	}
	jrows := make([]byte, n*jl.Size)
	trows := make([]byte, n*ftagT*tl.Size)
	for g := range n {
		jl.Put(jrows[g*jl.Size:], 0, float64(1000+10*g))
		jl.Put(jrows[g*jl.Size:], 1, float64(7*g))
		for k := range ftagT {
			row := trows[(g*ftagT+k)*tl.Size:]
			if k < g%(ftagT+1) {
				tl.Put(row, 0, float64(g)+float64(k)/8)
				tl.Put(row, 1, 1)
			}
		}
	}
	if err := jt.WriteRows(0, jrows); err != nil {
		t.Fatal(err)
	}
	if err := tt.WriteRows(0, trows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fs := datasetFilters(t, path, "tracks")
	if len(fs) != 1 || fs[0].id != filterLZF || !strings.Contains(fs[0].name, "salt-ort") {
		t.Fatalf("tracks filters %+v, want salt-ort's lzf", fs)
	}
	d := dumpFtag(t, path)
	if d.Nbytes != int64(len(trows)) || d.Stored >= d.Nbytes/2 {
		t.Errorf("tracks stored in %d bytes for %d bytes of rows (%d written): LZF did not compress", d.Stored, d.Nbytes, len(trows))
	}
	if d.Compression != "lzf" || len(d.Pt) != n {
		t.Fatalf("h5py sees compression %v and %d jets", d.Compression, len(d.Pt))
	}
	for g := range n {
		if d.Pt[g] != float32(1000+10*g) || d.Event[g] != int64(7*g) {
			t.Fatalf("h5py jet %d: pt %v event %d", g, d.Pt[g], d.Event[g])
		}
	}
	pt, d0, valid := readFtag(t, path)
	checkFtagValues(t, 0, pt, d0, valid)
	if !slices.Equal(d0, d.D0) || !slices.Equal(valid, d.Valid) {
		t.Fatal("h5py and the loader read different tracks")
	}
	if _, err := w.CreateTable("x", jl, []int{n}, TableOptions{LZF: true}); err == nil {
		t.Error("LZF without chunks: no error")
	}
}

// TestUnavailableFilter checks that a filter this process cannot apply is
// an error naming it and where to get it, before any jet is read.
func TestUnavailableFilter(t *testing.T) {
	cases := []struct {
		name   string
		filter string
		want   []string
	}{
		{"blosc2, which Debian has no plugin for", "32026", []string{`dataset "jets"`, "32026 (blosc2)", "Debian has no plugin", "HDF5_PLUGIN_PATH"}},
		{"an unregistered filter", "40123", []string{"40123", "does not know", "gzip or lzf"}},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.filter+".h5")
			runFtag(t, nil, "direct", path, "120", "0", c.filter, "junk")
			_, err := Open(ftagConfig(path))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range append(c.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if _, err := OpenFieldTable(path, "jets"); err == nil || !strings.Contains(err.Error(), c.filter) {
				t.Errorf("OpenFieldTable: %v", err)
			}
		})
	}
}

// TestFilterHelp checks the advice for each kind of missing filter.
func TestFilterHelp(t *testing.T) {
	broken := t.TempDir()
	if err := os.WriteFile(filepath.Join(broken, "libh5lz4.so"), []byte("not a shared object"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	cases := []struct {
		name string
		id   int
		dirs []string
		want []string
	}{
		{"plugin package in make deps", filterLZ4, []string{empty}, []string{"32004 (lz4)", "hdf5-filter-plugin", "`make deps` does)", empty}},
		{"plugin package not in make deps", 32013, []string{empty}, []string{"32013 (zfp)", "apt-get install hdf5-filter-plugin-zfp-serial", "does not"}},
		{"plugin installed but not loading", filterLZ4, []string{broken}, []string{"libh5lz4.so is installed but does not load", "reinstall Debian's hdf5-filter-plugin"}},
		{"no Debian plugin", 32017, nil, []string{"32017 (sz)", "Debian has no plugin", "no plugin directory"}},
		{"unknown filter", 45000, []string{empty}, []string{"45000 (my filter)", "does not know"}},
		{"built in", 4, nil, []string{"4 (szip)", "built into HDF5"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := filterHelp(c.id, "my filter", c.dirs)
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("%q lacks %q", got, w)
				}
			}
		})
	}
}

// TestPluginPathKept checks that salt-ort finds Debian's plugins even when
// the user's HDF5_PLUGIN_PATH names other directories: a child test
// process with such a setting reads an LZ4 file.
func TestPluginPathKept(t *testing.T) {
	if path := os.Getenv("SALT_ORT_TEST_LZ4_FILE"); path != "" {
		if _, err := Open(ftagConfig(path)); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(pluginPath(), debianPluginDir()) {
			t.Fatalf("plugin path %v lacks %s", pluginPath(), debianPluginDir())
		}
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "lz4.h5")
	runFtag(t, []string{"HDF5_PLUGIN_PATH=" + debianPluginDir()}, "h5writer", path, "150", "0", "32004", "[0]")
	cmd := exec.Command(os.Args[0], "-test.run=^TestPluginPathKept$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SALT_ORT_TEST_LZ4_FILE="+path, "HDF5_PLUGIN_PATH="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("with HDF5_PLUGIN_PATH set elsewhere: %v\n%s", err, out)
	}
}

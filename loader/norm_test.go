package loader

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestNormDictRoundTrip(t *testing.T) {
	dir := t.TempDir()
	nd := NormDict{
		"jets":   {"pt_btagJes": {Mean: 1.2e5, Std: 9e4}, "eta_btagJes": {Mean: 0, Std: 1.2}},
		"tracks": {"d0": {Mean: -0.01, Std: 0.9}, "numberOfPixelHits": {Mean: 4, Std: 1e-7}},
	}
	path := filepath.Join(dir, "norm.yaml")
	if err := WriteNormDict(path, nd); err != nil {
		t.Fatal(err)
	}
	got, err := ReadNormDict(path)
	if err != nil {
		t.Fatal(err)
	}
	for ds, vars := range nd {
		for v, e := range vars {
			if got[ds][v] != e {
				t.Errorf("%s.%s = %+v, want %+v", ds, v, got[ds][v], e)
			}
		}
	}
	cd := ClassDict{"jets": {"flavour_label": {0.8, 1.25, 0.5, 5}}, "tracks": {"ftagTruthOriginLabel": {1, 0, 2}}}
	cpath := filepath.Join(dir, "class.yaml")
	if err := WriteClassDict(cpath, cd); err != nil {
		t.Fatal(err)
	}
	gotC, err := ReadClassDict(cpath)
	if err != nil {
		t.Fatal(err)
	}
	for ds, labels := range cd {
		for l, ws := range labels {
			for i, w := range ws {
				if gotC[ds][l][i] != w {
					t.Errorf("%s.%s[%d] = %v, want %v", ds, l, i, gotC[ds][l][i], w)
				}
			}
		}
	}
	// Salt reads these with PyYAML, whose YAML 1.1 resolver wants "1.0e+05",
	// not "1e+05", for a float.
	py, why := pythonH5py()
	if py == "" {
		t.Logf("PyYAML check skipped: %s", why)
		return
	}
	out, err := exec.Command(py, "-c", `
import sys, yaml
for p in sys.argv[1:]:
    d = yaml.safe_load(open(p))
    for ds in d.values():
        for v in ds.values():
            vals = list(v.values()) if isinstance(v, dict) else v
            assert all(isinstance(x, float) for x in vals), (p, v)
print("ok")`, path, cpath).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "No module named 'yaml'") {
			t.Logf("PyYAML check skipped: python3-yaml is not installed")
			return
		}
		t.Fatalf("PyYAML rejects our YAML: %v\n%s", err, out)
	}
}

func TestReadDictErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, text string
		class      bool
		want       string
	}{
		{"salt block style", "jets:\n  pt_btagJes:\n    mean: 1.2e5\n    std: 9.0e4\n", false, ""},
		{"missing std", "jets:\n  pt_btagJes: {mean: 1.0}\n", false, "needs both mean and std"},
		{"not a mapping", "- 1\n- 2\n", false, "want {dataset"},
		{"class ok", "jets:\n  flavour_label: [1.0, 2, 0.5]\n", true, ""},
		{"class negative", "jets:\n  flavour_label: [1.0, -2]\n", true, "must be finite and ≥ 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".yaml")
			writeText(t, path, c.text)
			var err error
			if c.class {
				_, err = ReadClassDict(path)
			} else {
				var nd NormDict
				nd, err = ReadNormDict(path)
				if err == nil && nd["jets"]["pt_btagJes"] != (NormEntry{1.2e5, 9e4}) {
					t.Fatalf("parsed %+v", nd)
				}
			}
			if c.want == "" && err != nil {
				t.Fatal(err)
			}
			if c.want != "" && (err == nil || !contains(err.Error(), c.want)) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}

// TestDictLimits reproduces dictionaries on which the YAML decoder takes
// quadratic time (1 MiB of keys in one mapping: 9 s; 1 MiB of aliases to a
// mapping: 20-30 s) and checks that they are refused at once, while a
// dictionary using a few aliases, and empty ones, still read.
func TestDictLimits(t *testing.T) {
	var keys, aliases, laughs strings.Builder
	keys.WriteString("jets:\n")
	for i := 0; keys.Len() <= MaxDictSize; i++ {
		fmt.Fprintf(&keys, "  v%d: {mean: 1, std: 2}\n", i)
	}
	aliases.WriteString("d0: &x\n")
	for i := range 1000 {
		fmt.Fprintf(&aliases, "  v%d: {mean: 1, std: 2}\n", i)
	}
	for i := 1; i < 500; i++ {
		fmt.Fprintf(&aliases, "d%d: *x\n", i)
	}
	laughs.WriteString("a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&laughs, "a%d: &a%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 9), ", "))
	}
	cases := []struct {
		name, text string
		want       string // "" for no error, "*" for any answer
	}{
		{"large", keys.String(), "a dictionary is at most 262144"},
		{"aliased mapping", aliases.String(), "aliases expand the document to more than 100000 nodes"},
		{"billion laughs", laughs.String(), "aliases expand the document to more than 100000 nodes"},
		{"a few aliases", "jets:\n  pt: &e {mean: 1, std: 2}\n  eta: *e\ntracks:\n  <<: {d0: *e}\n", ""},
		{"empty", "", ""},
		{"comment", "# nothing\n", ""},
		{"recursive", "a: &a {b: *a}\nb: &b [*b]\n", "*"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			nd, errN := ParseNormDict("norm.yaml", []byte(c.text))
			_, errC := ParseClassDict("class.yaml", []byte(c.text))
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
			switch c.want {
			case "*":
				return
			case "":
				if errN != nil {
					t.Fatal(errN)
				}
				if c.name == "a few aliases" && (nd["jets"]["eta"] != NormEntry{1, 2} || nd["tracks"]["d0"] != NormEntry{1, 2}) {
					t.Fatalf("parsed %+v", nd)
				}
				return
			}
			for _, err := range []error{errN, errC} {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("error %v, want %q", err, c.want)
				}
			}
		})
	}
}

// TestComputeNorm compares the streaming statistics with a direct
// computation over the same values, across two files.
func TestComputeNorm(t *testing.T) {
	dir := t.TempDir()
	const T = 5
	files := []string{smallFile(t, dir, "a.h5", 37, T, 0), smallFile(t, dir, "b.h5", 23, T, 500)}
	groups := []Group{{Name: "jets", Variables: []string{"pt_btagJes"}}, {Name: "tracks", Variables: []string{"d0", "hits"}}}
	labels := []Label{
		{Name: "f", Dataset: "jets", Field: "flavour_label", Kind: ClassLabel, NumClasses: 5},
		{Name: "o", Dataset: "tracks", Field: "origin", Kind: ClassLabel},
		{Name: "v", Dataset: "tracks", Field: "vtx", Kind: IndexLabel}, // ignored
	}
	nd, cd, err := ComputeNorm(files, groups, labels...)
	if err != nil {
		t.Fatal(err)
	}
	var pt, d0, hits []float64
	flav := make([]float64, 5)
	origin := make([]float64, 8)
	for _, f := range []struct{ n, base int }{{37, 0}, {23, 500}} {
		for j := range f.n {
			pt = append(pt, float64(float32(1000*float64(j+f.base))))
			flav[j%4]++
			for tt := range j % (T + 1) {
				d0 = append(d0, float64(float32(float64(j+f.base)+float64(tt)/100)))
				hits = append(hits, float64(tt%7))
				if tt != 3 {
					origin[tt%8]++
				}
			}
		}
	}
	for _, c := range []struct {
		ds, v string
		xs    []float64
	}{{"jets", "pt_btagJes", pt}, {"tracks", "d0", d0}, {"tracks", "hits", hits}} {
		m, s := meanStd(c.xs)
		e := nd[c.ds][c.v]
		if !near(e.Mean, m) || !near(e.Std, s) {
			t.Errorf("%s.%s = %+v, want mean %v std %v", c.ds, c.v, e, m, s)
		}
	}
	check := func(name string, got []float64, counts []float64, k int) {
		total := 0.0
		for _, c := range counts {
			total += c
		}
		if len(got) != k {
			t.Fatalf("%s: %d weights, want %d", name, len(got), k)
		}
		for i := range k {
			want := 0.0
			if i < len(counts) && counts[i] > 0 {
				want = total / (float64(k) * counts[i])
			}
			if !near(got[i], want) {
				t.Errorf("%s[%d] = %v, want %v", name, i, got[i], want)
			}
		}
	}
	check("flavour", cd["jets"]["flavour_label"], flav, 5) // class 4 never seen: weight 0
	check("origin", cd["tracks"]["origin"], origin[:5], 5) // tt < 5: largest label 4
	if _, ok := cd["tracks"]["vtx"]; ok {
		t.Error("index label in the class dict")
	}
	// A constant variable is an error, as Salt would reject its zero std.
	_, _, err = ComputeNorm(files, []Group{{Name: "jets", Variables: []string{"eta_btagJes"}}})
	if err == nil || !contains(err.Error(), "constant") || !contains(err.Error(), "jets.eta_btagJes = 0.5") {
		t.Fatalf("constant variable: %v", err)
	}
}

func meanStd(xs []float64) (float64, float64) {
	m := 0.0
	for _, x := range xs {
		m += x
	}
	m /= float64(len(xs))
	v := 0.0
	for _, x := range xs {
		v += (x - m) * (x - m)
	}
	return m, math.Sqrt(v / float64(len(xs)))
}

// TestNormApplied checks (x-mean)/std on valid entries, zeros elsewhere.
func TestNormApplied(t *testing.T) {
	path := smallFile(t, t.TempDir(), "a.h5", 6, 3, 0)
	cfg := smallConfig(path)
	cfg.Norm = NormDict{
		"jets":   {"pt_btagJes": {Mean: 1000, Std: 500}, "eta_btagJes": {Mean: 0.5, Std: 3}},
		"tracks": {"d0": {Mean: 1, Std: 0.5}, "hits": {Mean: 2, Std: 4}},
	}
	ds, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	b := collect(t, ds, 0, 0)[0]
	jets, tr := b.Inputs["jets"].Data, b.Inputs["tracks"].Data
	for j := range 6 {
		if got, want := jets[2*j], (float32(1000*j)-1000)/500; got != want {
			t.Errorf("jet %d pt %v, want %v", j, got, want)
		}
		for tt := range 3 {
			k := (j*3 + tt) * 2
			want0, want1 := float32(0), float32(0)
			if tt < j%4 {
				want0 = (float32(float64(j)+float64(tt)/100) - 1) / 0.5
				want1 = (float32(tt%7) - 2) / 4
			}
			if tr[k] != want0 || tr[k+1] != want1 {
				t.Errorf("jet %d track %d = %v, want %v %v", j, tt, tr[k:k+2], want0, want1)
			}
		}
	}
	// Padding rows stay zero.
	for s := 6; s < 8; s++ {
		if jets[2*s] != 0 || tr[s*6] != 0 {
			t.Errorf("padding slot %d normalised", s)
		}
	}
}

// TestReadDictReadsNoMoreThanItsLimit gives the dictionary readers a
// 64 MiB file: each refuses it naming the file, having read little more
// than MaxDictSize of it.
func TestReadDictReadsNoMoreThanItsLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "huge.yaml")
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := fh.Truncate(64 << 20); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	fh.Close()
	for name, read := range map[string]func(string) error{
		"norm dict":  func(p string) error { _, err := ReadNormDict(p); return err },
		"class dict": func(p string) error { _, err := ReadClassDict(p); return err },
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err := read(path)
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), name+" "+path+": ") || !strings.Contains(err.Error(), "a dictionary is at most 262144") {
			t.Errorf("%s: error %v, want it to name %s and the limit", name, err, path)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 4*MaxDictSize {
			t.Errorf("%s: allocated %d bytes to refuse a 64 MiB file", name, n)
		}
	}
}

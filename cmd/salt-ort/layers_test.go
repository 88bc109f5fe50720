package main

import (
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// module is the module path every package of the repository starts with.
const module = "github.com/salt-ort/salt-ort"

// testKits is where the test harnesses live: only tests and other test
// kits import them.
const testKits = "internal/testkit"

// layers is the package map, lowest layer first: a package imports only
// packages of lower layers (and, for the harnesses under testKits, other
// harnesses). A new package goes into the layer its imports put it in.
var layers = [][]string{
	// Leaf utilities and bindings: they import no other package here.
	{"codegen/cppgen", "codegen/onnxpb", "flavour", "internal/atomicfile", "internal/cmake", "internal/detrand",
		"internal/nearest", "internal/onnxcheck", "matching", "metrics", "mpi", "runtime/ortcompat"},
	{"checkpoint", "cpp/athenacheck", "graph", "loader", "nccl", "runtime"},
	{"gendata", "graph/graphtest", "graph/nn", "graph/optim"},
	{"graph/model"},
	{"config"},
	// A run at rest: its directory, checkpoints and evaluation graph.
	{"run"},
	// The training loop, and the evaluation of a run.
	{"evaluate", "train"},
	{"explain"},
	// Deployment reads a run; the import of Salt's runs writes one with
	// the training step's parameter layout, so it alone sits above train.
	{"deploy", "saltimport"},
	{"cli"},
	{"cmd/salt-ort"},
}

// readsRuns are the packages that read a finished run: they must not reach
// the training loop, directly or through another package.
var readsRuns = []string{"run", "evaluate", "explain", "deploy"}

// goPackages parses the imports of every package under root: by package
// directory (relative, slash-separated), the module's packages its
// non-test files import. Tests may import what they like.
func goPackages(root string) (map[string][]string, error) {
	lib := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (name == "testdata" || name == "third_party" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(rel)
		if _, ok := lib[pkg]; !ok {
			lib[pkg] = nil
		}
		for _, spec := range f.Imports {
			p, err := strconv.Unquote(spec.Path.Value)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if dep, ok := strings.CutPrefix(p, module+"/"); ok && !slices.Contains(lib[pkg], dep) {
				lib[pkg] = append(lib[pkg], dep)
			}
		}
		return nil
	})
	return lib, err
}

// checkLayers returns the package map's violations: a package off the map,
// an import of a package not below the importer, a library package that
// imports a test kit, and a package of readsRuns that reaches train.
func checkLayers(lib map[string][]string) []string {
	layer := map[string]int{}
	for i, ps := range layers {
		for _, p := range ps {
			layer[p] = i
		}
	}
	isKit := func(p string) bool { return p == testKits || strings.HasPrefix(p, testKits+"/") }
	var bad []string
	for pkg, deps := range lib {
		_, known := layer[pkg]
		if !known && !isKit(pkg) {
			bad = append(bad, fmt.Sprintf("%s is not on the package map: add it to a layer in cmd/salt-ort/layers_test.go", pkg))
			continue
		}
		for _, dep := range deps {
			switch {
			case isKit(dep) && !isKit(pkg):
				bad = append(bad, fmt.Sprintf("%s imports the test kit %s: only tests may", pkg, dep))
			case isKit(pkg) || isKit(dep):
			case layer[dep] >= layer[pkg]:
				bad = append(bad, fmt.Sprintf("%s (layer %d) imports %s (layer %d): an arrow back up", pkg, layer[pkg], dep, layer[dep]))
			}
		}
	}
	for _, pkg := range readsRuns {
		if path := reach(lib, pkg, "train"); path != nil {
			bad = append(bad, fmt.Sprintf("%s reads a run but reaches the training loop: %s", pkg, strings.Join(path, " → ")))
		}
	}
	slices.Sort(bad)
	return bad
}

// reach returns an import path from one package to another (both
// included), or nil where there is none.
func reach(deps map[string][]string, from, to string) []string {
	seen := map[string]bool{}
	var walk func(p string) []string
	walk = func(p string) []string {
		if p == to {
			return []string{p}
		}
		if seen[p] {
			return nil
		}
		seen[p] = true
		for _, d := range deps[p] {
			if path := walk(d); path != nil {
				return append([]string{p}, path...)
			}
		}
		return nil
	}
	return walk(from)
}

// TestPackageMap checks that the packages form the layers of the package
// map: no import runs back up, no library code imports a test kit, and
// nothing that reads a finished run depends on the training loop.
func TestPackageMap(t *testing.T) {
	lib, err := goPackages(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := lib["train"]; !ok {
		t.Fatalf("found no package train under ../..: %d packages", len(lib))
	}
	for _, v := range checkLayers(lib) {
		t.Error(v)
	}
}

// TestCheckLayers checks that each kind of violation is found.
func TestCheckLayers(t *testing.T) {
	cases := []struct {
		name string
		lib  map[string][]string
		want string
	}{
		{"back up", map[string][]string{"loader": {"config"}, "config": nil}, "loader (layer 1) imports config (layer 4): an arrow back up"},
		{"same layer", map[string][]string{"evaluate": {"train"}, "train": nil}, "evaluate (layer 6) imports train (layer 6): an arrow back up"},
		{"reaches train", map[string][]string{"deploy": {"saltimport"}, "saltimport": {"train"}, "train": nil}, "deploy reads a run but reaches the training loop: deploy → saltimport → train"},
		{"test kit", map[string][]string{"deploy": {"internal/testkit/fixture"}, "internal/testkit/fixture": {"gendata"}, "gendata": nil}, "deploy imports the test kit internal/testkit/fixture: only tests may"},
		{"off the map", map[string][]string{"newthing": nil}, "newthing is not on the package map"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := checkLayers(c.lib)
			if !slices.ContainsFunc(got, func(v string) bool { return strings.HasPrefix(v, c.want) }) {
				t.Errorf("got %q, want one starting %q", got, c.want)
			}
		})
	}
	ok := map[string][]string{"run": {"config", "loader"}, "train": {"run"}, "internal/testkit/fixture": {"gendata", "internal/testkit/torchref"}, "internal/testkit/torchref": nil}
	if got := checkLayers(ok); len(got) != 0 {
		t.Errorf("a layered map: %q", got)
	}
	if _, err := os.Stat(filepath.Join("..", "..", "go.mod")); err != nil {
		t.Fatalf("the module root is not ../..: %v", err)
	}
}

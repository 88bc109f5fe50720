package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// layoutDoc is the page whose "Layout" table lists every package.
const layoutDoc = "docs/design.md"

// goDirs returns every directory under root (relative, slash-separated)
// that holds a Go file, tests included, skipping what goPackages skips.
func goDirs(root string) ([]string, error) {
	seen := map[string]bool{}
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
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		if rel != "." {
			seen[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	dirs := make([]string, 0, len(seen))
	for d := range seen {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	return dirs, err
}

// layoutRow is one row of the layout table: the package and its layer as
// written ("10", …, "0", "kit" or "test").
type layoutRow struct {
	pkg, layer string
	line       int
}

// layoutRows parses the package table of the "## Layout" section of a
// markdown page: the rows whose first cell is a layer and whose second is
// a package in backquotes.
func layoutRows(text string) ([]layoutRow, error) {
	_, section, ok := strings.Cut(text, "\n## Layout\n")
	if !ok {
		return nil, fmt.Errorf("no \"## Layout\" section")
	}
	start := strings.Count(text[:len(text)-len(section)], "\n") + 1
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	var rows []layoutRow
	inTable := false
	for i, line := range strings.Split(section, "\n") {
		if line == "| layer | package | job |" {
			inTable = true
			continue
		}
		if !inTable || line == "|---|---|---|" {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			return nil, fmt.Errorf("line %d: a row of fewer than three cells", start+i)
		}
		layer, pkg := strings.TrimSpace(cells[1]), strings.TrimSpace(cells[2])
		if len(pkg) < 3 || pkg[0] != '`' || pkg[len(pkg)-1] != '`' {
			return nil, fmt.Errorf("line %d: the package cell %q is not one path in backquotes", start+i, pkg)
		}
		rows = append(rows, layoutRow{pkg: strings.Trim(pkg, "`"), layer: layer, line: start + i})
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("no \"| layer | package | job |\" table in the Layout section")
	}
	return rows, nil
}

// wantLayer is the layer the layout table must give a package: its index
// in layers, "kit" for a test kit, "test" for a directory of tests alone,
// and "" for a package that is none of these (TestPackageMap reports it).
func wantLayer(pkg string, lib map[string][]string) string {
	for i, ps := range layers {
		if slices.Contains(ps, pkg) {
			return strconv.Itoa(i)
		}
	}
	switch _, hasLib := lib[pkg]; {
	case pkg == testKits || strings.HasPrefix(pkg, testKits+"/"):
		return "kit"
	case !hasLib:
		return "test"
	}
	return ""
}

// checkLayout returns the disagreements between the layout table and the
// tree: a package without a row, a row twice, a row for no package, a
// layer that is not the map's, and rows out of order from cmd down.
func checkLayout(rows []layoutRow, dirs []string, lib map[string][]string) []string {
	var bad []string
	rank := func(layer string) int {
		switch layer {
		case "kit":
			return -1
		case "test":
			return -2
		}
		n, _ := strconv.Atoi(layer)
		return n
	}
	listed := map[string]bool{}
	for i, r := range rows {
		switch {
		case listed[r.pkg]:
			bad = append(bad, fmt.Sprintf("%s:%d: %s has a second row", layoutDoc, r.line, r.pkg))
		case !slices.Contains(dirs, r.pkg):
			bad = append(bad, fmt.Sprintf("%s:%d: %s is no Go package of the tree: remove its row or fix the path", layoutDoc, r.line, r.pkg))
		case r.layer != wantLayer(r.pkg, lib):
			bad = append(bad, fmt.Sprintf("%s:%d: %s is in layer %s, the package map (cmd/salt-ort/layers_test.go) says %q", layoutDoc, r.line, r.pkg, r.layer, wantLayer(r.pkg, lib)))
		case i > 0 && rank(r.layer) > rank(rows[i-1].layer):
			bad = append(bad, fmt.Sprintf("%s:%d: %s (layer %s) comes after layer %s: the rows go from cmd down", layoutDoc, r.line, r.pkg, r.layer, rows[i-1].layer))
		}
		listed[r.pkg] = true
	}
	for _, d := range dirs {
		if !listed[d] {
			bad = append(bad, fmt.Sprintf("%s: the Layout table has no row for %s: add one with its layer and job", layoutDoc, d))
		}
	}
	return bad
}

// TestLayoutDoc checks that the layout table of the design page lists
// every Go package of the tree once, in the package map's layers, from
// cmd down.
func TestLayoutDoc(t *testing.T) {
	root := filepath.Join("..", "..")
	text, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(layoutDoc)))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := layoutRows(string(text))
	if err != nil {
		t.Fatalf("%s: %v", layoutDoc, err)
	}
	dirs, err := goDirs(root)
	if err != nil {
		t.Fatal(err)
	}
	lib, err := goPackages(root)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(dirs, "train") || !slices.Contains(dirs, "cmd/salt-ort") {
		t.Fatalf("found no train or cmd/salt-ort under %s: %q", root, dirs)
	}
	for _, v := range checkLayout(rows, dirs, lib) {
		t.Error(v)
	}
}

// TestCheckLayout checks that each kind of disagreement is found.
func TestCheckLayout(t *testing.T) {
	lib := map[string][]string{"cmd/salt-ort": {"cli"}, "cli": nil, "train": nil, "internal/testkit/fixture": nil}
	dirs := []string{"cli", "cmd/salt-ort", "cpp", "internal/testkit/fixture", "train"}
	good := []layoutRow{{"cmd/salt-ort", "10", 1}, {"cli", "9", 2}, {"train", "6", 3}, {"internal/testkit/fixture", "kit", 4}, {"cpp", "test", 5}}
	if got := checkLayout(good, dirs, lib); len(got) != 0 {
		t.Errorf("a matching table: %q", got)
	}
	cases := []struct {
		name string
		rows []layoutRow
		want string
	}{
		{"missing", good[1:], "the Layout table has no row for cmd/salt-ort"},
		{"twice", append(slices.Clone(good), layoutRow{"cpp", "test", 6}), "cpp has a second row"},
		{"no package", append(slices.Clone(good), layoutRow{"gone", "test", 6}), "gone is no Go package of the tree"},
		{"wrong layer", []layoutRow{{"cmd/salt-ort", "10", 1}, {"cli", "8", 2}, good[2], good[3], good[4]}, `cli is in layer 8, the package map (cmd/salt-ort/layers_test.go) says "9"`},
		{"order", []layoutRow{good[1], good[0], good[2], good[3], good[4]}, "cmd/salt-ort (layer 10) comes after layer 9"},
		{"kit order", []layoutRow{good[0], good[1], good[3], good[2], good[4]}, "train (layer 6) comes after layer kit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := checkLayout(c.rows, dirs, lib)
			if !slices.ContainsFunc(got, func(v string) bool { return strings.Contains(v, c.want) }) {
				t.Errorf("got %q, want one containing %q", got, c.want)
			}
		})
	}
	rows, err := layoutRows("# T\n\n## Layout\n\n| layer | package | job |\n|---|---|---|\n| 10 | `cmd/salt-ort` | the binary |\n| kit | `internal/testkit/fixture` | data |\n\n## Next\n| 1 | `x` | y |\n")
	if err != nil || len(rows) != 2 || rows[0] != (layoutRow{"cmd/salt-ort", "10", 7}) || rows[1].pkg != "internal/testkit/fixture" {
		t.Errorf("layoutRows: %+v, %v", rows, err)
	}
	if _, err := layoutRows("# T\n\n## Layout\n\nno table\n"); err == nil {
		t.Error("layoutRows: no error for a section without the table")
	}
}

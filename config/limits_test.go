package config

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestLimitsRefusePathologicalText reproduces inputs on which the TOML
// decoder takes quadratic or worse time (found while fuzzing Parse: a
// 16 KiB dotted key took 3 s, 16 KiB of nested inline tables 2.5 s) and
// checks that Parse refuses them at once with an error naming the line.
func TestLimitsRefusePathologicalText(t *testing.T) {
	n := 16 << 10
	cases := []struct {
		name, text string
		line       int
		want       string
	}{
		{"dotted key", "[data]\n" + strings.Repeat("a.", n/2) + "a = 1\n", 2, "more than 16 parts"},
		{"quoted dotted key", strings.Repeat(`"a".`, n/4) + "a = 1\n", 1, "more than 16 parts"},
		{"table name", "\n\n[" + strings.Repeat("a.", n/2) + "a]\n", 3, "more than 16 parts"},
		{"array table name", "[[" + strings.Repeat("a . ", n/4) + "a]]\n", 1, "more than 16 parts"},
		{"inline tables", "x = " + strings.Repeat("{a=", n/3), 1, "nested more than 8 deep"},
		{"arrays", "x = [\n" + strings.Repeat("[", n), 2, "nested more than 8 deep"},
		{"arrays and tables", "x = " + strings.Repeat("[{a=", n/4), 1, "nested more than 8 deep"},
		{"size", minimal + "#" + strings.Repeat("x", MaxSize), 0, "at most 262144"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := Parse("big.toml", []byte(tc.text))
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Line != tc.line || !strings.Contains(ce.Msg, tc.want) {
				t.Fatalf("got %v, want line %d and %q", err, tc.line, tc.want)
			}
		})
	}
}

// TestLimitsIgnoreStringsAndComments checks that dots and brackets inside
// strings and comments, and long arrays of floats, count for nothing.
func TestLimitsIgnoreStringsAndComments(t *testing.T) {
	many := func(s string) string { return strings.Repeat(s, 40) }
	texts := []string{
		"# " + many("a.") + many("[{") + "\n",
		`x = "` + many("a.") + many("[") + `"` + "\n",
		`x = 'C:\` + many("a.") + `'` + "\n",
		`x = "\"` + many("{") + `"` + "\n",
		"x = \"\"\"\n" + many("a.\n") + many("[") + "\"\"\"\"\"\n",
		"x = '''" + many("{") + "\n'''\n",
		"x = [" + many("0.5, ") + "1.5]\n",
		"x = [\n" + many("1.5e-3, # a.b.c\n") + "]\n",
		"t = 1979-05-27T07:32:00.999999Z\n",
		`"a.b.c"."d.e" = 1` + "\n",
		"[[model.tasks]]\n[model.tasks.a.b.c]\n",
	}
	for _, text := range texts {
		if err := checkLimits("ok.toml", []byte(text)); err != nil {
			t.Errorf("%q: %v", text, err)
		}
	}
}

// TestLoadReadsNoMoreThanMaxSize gives Load a 64 MiB file: it is refused
// naming the file, having read little more than MaxSize of it.
func TestLoadReadsNoMoreThanMaxSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "huge.toml")
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := fh.Truncate(64 << 20); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	fh.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = Load(path)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "a configuration is at most 262144") {
		t.Errorf("error %v, want it to name %s and the limit", err, path)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 4*MaxSize {
		t.Errorf("allocated %d bytes to refuse a 64 MiB file", n)
	}
}

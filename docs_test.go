// Package saltort_test checks the documentation: README.md, the front
// page, and the user guide's pages in docs/.
package saltort_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// docsDir holds the user guide; the front page links each of its pages.
const (
	frontPage = "README.md"
	docsDir   = "docs"
)

var (
	// mdLink matches an inline link or image, [text](target "title"),
	// capturing the target.
	mdLink = regexp.MustCompile(`!?\[[^\]]*\]\(<?([^)\s>]+)>?(?:\s+"[^"]*")?\)`)
	// codeSpan matches inline code, whose brackets are no links.
	codeSpan = regexp.MustCompile("`[^`\n]*`")
	// heading matches an ATX heading, capturing its text.
	heading = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
)

// mdDoc is what the checks need of one Markdown file: the targets of its
// links and the anchors of its headings.
type mdDoc struct {
	links   []mdTarget
	anchors map[string]bool
}

// mdTarget is one link's target and the line it is on.
type mdTarget struct {
	line   int
	target string
}

// parseMarkdown reads the links and heading anchors of Markdown text,
// leaving out fenced code blocks and inline code.
func parseMarkdown(text string) mdDoc {
	d := mdDoc{anchors: map[string]bool{}}
	seen := map[string]int{}
	fenced := false
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		if m := heading.FindStringSubmatch(line); m != nil {
			a := slug(m[1])
			if n := seen[a]; n > 0 {
				d.anchors[fmt.Sprintf("%s-%d", a, n)] = true
			} else {
				d.anchors[a] = true
			}
			seen[a]++
		}
		for _, m := range mdLink.FindAllStringSubmatch(codeSpan.ReplaceAllString(line, "code"), -1) {
			d.links = append(d.links, mdTarget{line: i + 1, target: m[1]})
		}
	}
	return d
}

// slug is the anchor GitHub gives a heading: its text in lower case,
// without links' targets, inline code's backticks and punctuation, with
// hyphens for spaces.
func slug(text string) string {
	text = mdLink.ReplaceAllStringFunc(text, func(l string) string {
		return l[strings.Index(l, "[")+1 : strings.Index(l, "]")]
	})
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestSlug(t *testing.T) {
	for _, c := range []struct{ heading, want string }{
		{"Deployment latency beside Salt's export (`make bench-deploy`)", "deployment-latency-beside-salts-export-make-bench-deploy"},
		{"ONNX Runtime releases and the opset", "onnx-runtime-releases-and-the-opset"},
		{"Salt's legacy encoder (`TransformerEncoder`)", "salts-legacy-encoder-transformerencoder"},
		{"Beyond GN2: the model family of Salt's configurations", "beyond-gn2-the-model-family-of-salts-configurations"},
		{"Attributions (`salt/callbacks/integrated_gradients_writer.py`)", "attributions-saltcallbacksintegrated_gradients_writerpy"},
		{"See [Data](docs/data.md) — the files", "see-data--the-files"},
	} {
		if got := slug(c.heading); got != c.want {
			t.Errorf("slug(%q) = %q, want %q", c.heading, got, c.want)
		}
	}
}

func TestParseMarkdown(t *testing.T) {
	text := strings.Join([]string{
		"# Title",
		"A [page](docs/a.md#part), an ![image](docs/p.png \"title\") and [a site](https://example.org).",
		"`salt-ort eval [--test FILE](not a link)` stays code.",
		"```sh",
		"[fenced](nowhere.md)",
		"# a shell comment",
		"```",
		"## Part",
		"## Part",
	}, "\n")
	d := parseMarkdown(text)
	var got []string
	for _, l := range d.links {
		got = append(got, fmt.Sprintf("%d:%s", l.line, l.target))
	}
	if want := []string{"2:docs/a.md#part", "2:docs/p.png", "2:https://example.org"}; !slices.Equal(got, want) {
		t.Errorf("links %q, want %q", got, want)
	}
	for _, a := range []string{"title", "part", "part-1"} {
		if !d.anchors[a] {
			t.Errorf("no anchor %q in %v", a, d.anchors)
		}
	}
	if d.anchors["a-shell-comment"] {
		t.Errorf("a comment in a fenced block made an anchor: %v", d.anchors)
	}
}

// readDocs parses the front page and every Markdown page of docs/, keyed
// by their paths relative to the repository root.
func readDocs(t *testing.T) map[string]mdDoc {
	t.Helper()
	pages, err := filepath.Glob(filepath.Join(docsDir, "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]mdDoc{}
	for _, p := range append([]string{frontPage}, pages...) {
		docs[p] = parseMarkdown(readFile(t, p))
	}
	return docs
}

// TestDocLinks requires every relative link of README.md and docs/*.md to
// name a file that exists and, with a #fragment, a heading of that page.
func TestDocLinks(t *testing.T) {
	docs := readDocs(t)
	for page, d := range docs {
		for _, l := range d.links {
			if strings.Contains(l.target, "://") || strings.HasPrefix(l.target, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(l.target, "#")
			target := page
			if path != "" {
				target = filepath.Clean(filepath.Join(filepath.Dir(page), path))
				if _, err := os.Stat(target); err != nil {
					t.Errorf("%s:%d: the link to %s names no file (%s)", page, l.line, l.target, target)
					continue
				}
			}
			if frag == "" {
				continue
			}
			td, ok := docs[target]
			if !ok {
				if strings.HasSuffix(target, ".md") {
					td = parseMarkdown(readFile(t, target))
				} else {
					t.Errorf("%s:%d: the link to %s has a #fragment, but %s is no Markdown page", page, l.line, l.target, target)
					continue
				}
			}
			if !td.anchors[frag] {
				t.Errorf("%s:%d: the link to %s names no heading of %s", page, l.line, l.target, target)
			}
		}
	}
}

// TestDocsLinkedFromFrontPage requires README.md to link every page of
// docs/, and some page to use every other file there (the images).
func TestDocsLinkedFromFrontPage(t *testing.T) {
	docs := readDocs(t)
	linked := map[string]map[string]bool{} // file in docs/ → the pages linking it
	for page, d := range docs {
		for _, l := range d.links {
			path, _, _ := strings.Cut(l.target, "#")
			if path == "" || strings.Contains(path, "://") {
				continue
			}
			target := filepath.Clean(filepath.Join(filepath.Dir(page), path))
			if linked[target] == nil {
				linked[target] = map[string]bool{}
			}
			linked[target][page] = true
		}
	}
	entries, err := os.ReadDir(docsDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		f := filepath.Join(docsDir, e.Name())
		switch {
		case strings.HasSuffix(f, ".md") && !linked[f][frontPage]:
			t.Errorf("%s does not link %s: add it to the user guide's table", frontPage, f)
		case len(linked[f]) == 0:
			t.Errorf("no page links %s: link it or delete it", f)
		}
	}
}

// readFile returns a file's text, failing the test if it cannot be read.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

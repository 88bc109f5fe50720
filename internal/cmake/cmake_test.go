package cmake

import (
	"context"
	"strings"
	"testing"
)

func TestCheckToolsAndRun(t *testing.T) {
	if err := CheckTools(""); err != nil {
		t.Fatalf("%v", err)
	}
	t.Setenv("PATH", t.TempDir())
	t.Setenv("CXX", "")
	if err := CheckTools("nlohmann-json3-dev"); err == nil || !strings.Contains(err.Error(), "`make deps` installs it") || !strings.Contains(err.Error(), "nlohmann-json3-dev") {
		t.Errorf("no cmake: %v", err)
	}
	if err := Run(context.Background(), nil, "--version"); err == nil {
		t.Error("cmake ran without a PATH to find it")
	}
}

func TestTail(t *testing.T) {
	var lines []string
	for i := 0; i < 50; i++ {
		lines = append(lines, strings.Repeat("x", i))
	}
	got := strings.Split(Tail(strings.Join(lines, "\n")+"\n"), "\n")
	if len(got) != 41 || got[0] != "..." || got[40] != lines[49] {
		t.Fatalf("Tail kept %d lines, first %q", len(got), got[0])
	}
	if Tail("a\nb\n") != "a\nb" {
		t.Error("a short output changed")
	}
}

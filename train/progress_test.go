package train

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestProgressLines(t *testing.T) {
	for _, tc := range []struct {
		name        string
		total, step int
		lines       int
		last        string
	}{
		{"even steps", 1000, 50, 20, "100% 1000/1000 jets"},
		{"coarse steps", 1000, 300, 4, "100% 1000/1000 jets"}, // 30, 60, 90 %, then the rest
		{"stopped early", 1000, 30, 2, " 6% 60/1000 jets"},    // 5 % at 60 jets, then Finish
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			p := newProgress(&buf, "epoch 1/2", tc.total).(*progressLines)
			clock := p.start
			p.now = func() time.Time { return clock }
			for done := 0; done < tc.total; done += tc.step {
				if tc.name == "stopped early" && done >= 60 {
					break
				}
				clock = clock.Add(time.Second)
				if err := p.Add(min(tc.step, tc.total-done)); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Finish(); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if strings.Contains(out, "\r") || len(lines) != tc.lines || !strings.Contains(lines[len(lines)-1], tc.last) {
				t.Fatalf("%d lines, want %d ending with %q:\n%s", len(lines), tc.lines, tc.last, out)
			}
			if !strings.Contains(lines[0], "jets/s, ETA ") {
				t.Errorf("line %q has no rate and ETA", lines[0])
			}
		})
	}
	if isTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is a terminal")
	}
}

package cli

import (
	"io"
	"slices"
	"testing"
)

func TestInterspersed(t *testing.T) {
	app := App(io.Discard, io.Discard)
	cases := []struct{ in, want []string }{
		{[]string{"salt-ort", "train", "m.toml", "--resume", "runs/x"}, []string{"salt-ort", "train", "--resume", "runs/x", "--", "m.toml"}},
		{[]string{"salt-ort", "train", "--quiet", "m.toml", "--epochs", "3"}, []string{"salt-ort", "train", "--quiet", "--epochs", "3", "--", "m.toml"}},
		{[]string{"salt-ort", "--ort-lib", "/x.so", "train", "m.toml", "--out=runs/y"}, []string{"salt-ort", "--ort-lib", "/x.so", "train", "--out=runs/y", "--", "m.toml"}},
		{[]string{"salt-ort", "train", "--", "--odd-name.toml"}, []string{"salt-ort", "train", "--", "--odd-name.toml"}},
		{[]string{"salt-ort", "version"}, []string{"salt-ort", "version"}},
		{[]string{"salt-ort"}, []string{"salt-ort"}},
	}
	for _, c := range cases {
		if got := Interspersed(app, c.in); !slices.Equal(got, c.want) {
			t.Errorf("Interspersed(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

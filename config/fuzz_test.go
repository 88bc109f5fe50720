package config

import (
	"errors"
	"os"
	"testing"
)

// FuzzParse checks that no configuration text makes the decoder panic, that
// every rejection is a *config.Error naming the file, and that an accepted
// configuration survives Encode and Parse unchanged.
func FuzzParse(f *testing.F) {
	for _, path := range []string{"../examples/gn2.toml", "../examples/gn2-small.toml"} {
		if data, err := os.ReadFile(path); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(minimal))
	f.Add([]byte(minimal + "[training]\nepochs = \"three\"\n"))
	f.Add([]byte("[[model.tasks]]\nname = 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.toml", data)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || ce.File != "fuzz.toml" {
				t.Fatalf("error %v (%T) is not a config.Error naming the file", err, err)
			}
			return
		}
		enc, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse("resolved.toml", enc)
		if err != nil {
			t.Fatalf("the resolved form of an accepted configuration is rejected: %v\n%s", err, enc)
		}
		enc2, err := back.Encode()
		if err != nil || string(enc2) != string(enc) {
			t.Fatalf("resolved configuration does not round-trip:\n%s\n---\n%s", enc, enc2)
		}
	})
}

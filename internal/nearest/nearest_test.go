package nearest

import "testing"

// TestName suggests the field a misspelt name meant.
func TestName(t *testing.T) {
	fields := []string{"d0", "z0SinTheta", "IP3D_signed_d0_significance", "numberOfPixelHits", "valid"}
	for _, c := range []struct{ in, want string }{
		{"d00", "d0"},
		{"D0", "d0"},
		{"numberofpixelhits", "numberOfPixelHits"},
		{"IP3D_signed_d0_significanc", "IP3D_signed_d0_significance"},
		{"z0sintheta", "z0SinTheta"},
		{"ptfrac", ""},
	} {
		if got := Name(c.in, fields); got != c.want {
			t.Errorf("Name(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestKey suggests the configuration key a misspelt one meant, as written
// (keys are case-sensitive), and nothing for a key too far from any.
func TestKey(t *testing.T) {
	keys := []string{"batch_size", "num_workers", "embed_dim", "lr", "max_len"}
	for _, c := range []struct{ in, want string }{
		{"batch_sise", "batch_size"},
		{"numworkers", "num_workers"},
		{"Embed_Dim", "embed_dim"}, // 2 edits, within len/2+2
		{"lrr", "lr"},
		{"maxlen", "max_len"},
		{"learning_rate_schedule", ""},
		{"", ""}, // fewer than 2 edits from nothing
	} {
		if got := Key(c.in, keys); got != c.want {
			t.Errorf("Key(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestDistance checks the Levenshtein distance, in runes.
func TestDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"kitten", "sitting", 3},
		{"flaw", "lawn", 2},
		{"pT", "pt", 1},
		{"η", "eta", 3},
		{"jets_η", "jets_e", 1},
	} {
		if got := Distance(c.a, c.b); got != c.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := Distance(c.b, c.a); got != c.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.b, c.a, got, c.want)
		}
	}
}

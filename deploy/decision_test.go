package deploy

import "testing"

// TestClassDecisions checks the class a constituent's probabilities
// decide and the near ties validation forgives: the most probable of
// several classes, and for a binary task's one probability p, 1 from
// p = ½ up, as the deployed model decides on its logit.
func TestClassDecisions(t *testing.T) {
	for _, c := range []struct {
		name  string
		probs []float32
		class int
		tie   bool
	}{
		{"most probable", []float32{0.2, 0.5, 0.3}, 1, false},
		{"first of equals", []float32{0.4, 0.4, 0.2}, 0, true},
		{"near tie", []float32{0.300004, 0.35, 0.349996}, 1, true},
		{"binary yes", []float32{0.8}, 1, false},
		{"binary no", []float32{0.3}, 0, false},
		{"binary at one half", []float32{0.5}, 1, true},
		{"binary just below one half", []float32{0.499999}, 0, true},
		{"binary clearly below one half", []float32{0.49}, 0, false},
	} {
		if got := classOf(c.probs); got != c.class {
			t.Errorf("%s: class %d, want %d", c.name, got, c.class)
		}
		if got := nearTie(c.probs, DefaultTolerance); got != c.tie {
			t.Errorf("%s: near tie %v, want %v", c.name, got, c.tie)
		}
	}
}

package loader

import (
	"math"
	"strings"
	"testing"
)

// TestParseCut reads cuts in atlas-ftag-tools' notation and checks which
// values pass.
func TestParseCut(t *testing.T) {
	nan := math.NaN()
	cases := []struct {
		text string
		pass []float64
		fail []float64
		str  string
	}{
		{"d0 < 3.5", []float64{3.49, -10}, []float64{3.5, 4, nan}, "d0 < 3.5"},
		{"pt_btagJes>20e3", []float64{20001}, []float64{20000, nan}, "pt_btagJes > 20000"},
		{"HadronConeExclTruthLabelID == 5", []float64{5}, []float64{4, nan}, "HadronConeExclTruthLabelID == 5"},
		{"HadronConeExclTruthLabelID != 15", []float64{0, 5, nan}, []float64{15}, "HadronConeExclTruthLabelID != 15"},
		{"abs_eta <= 2.5", []float64{2.5}, []float64{2.51}, "abs_eta <= 2.5"},
		{"n_tracks >= 2", []float64{2, 3}, []float64{1}, "n_tracks >= 2"},
		{"HadronConeExclTruthLabelID in [4, 5]", []float64{4, 5}, []float64{0, 15, nan}, "HadronConeExclTruthLabelID in [4, 5]"},
		{"HadronConeExclTruthLabelID notin (4,5)", []float64{0, 15, nan}, []float64{4, 5}, "HadronConeExclTruthLabelID notin [4, 5]"},
		{"eventNumber %10<= 7", []float64{7, 10, 27}, []float64{8, 19, nan}, "eventNumber %10<= 7"},
		{"eventNumber %2== 1", []float64{1, 3}, []float64{0, 2}, "eventNumber %2== 1"},
		{"d0 != nan", []float64{0}, []float64{nan}, "d0 != NaN"},
		{"valid == true", []float64{1}, []float64{0}, "valid == 1"},
	}
	for _, c := range cases {
		t.Run(c.text, func(t *testing.T) {
			cut, err := ParseCut(c.text)
			if err != nil {
				t.Fatal(err)
			}
			if err := cut.check(); err != nil {
				t.Fatalf("check: %v", err)
			}
			for _, v := range c.pass {
				if !cut.Holds(v) {
					t.Errorf("%v fails", v)
				}
			}
			for _, v := range c.fail {
				if cut.Holds(v) {
					t.Errorf("%v passes", v)
				}
			}
			if got := cut.String(); got != c.str {
				t.Errorf("String() = %q, want %q", got, c.str)
			}
		})
	}
	for _, c := range []struct{ text, want string }{
		{"d0", "field op value"},
		{"d0 ~ 3", "field op value"},
		{"d0 < x", `"x" is not a number`},
		{"d0 in 4", "list of values"},
		{"d0 in []", "empty"},
		{"eventNumber %1== 0", "modulus"},
	} {
		if _, err := ParseCut(c.text); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseCut(%q) = %v, want an error with %q", c.text, err, c.want)
		}
	}
}

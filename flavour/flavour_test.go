package flavour

import "testing"

func TestShort(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"bjets", "pb"},
		{"cjets", "pc"},
		{"ujets", "pu"},
		{"taujets", "ptau"},
		{"singlebjets", "pb"},
		{"bbjets", "pbb"},
		{"hbb", "phbb"},
		{"b", "pb"},
		{"tau", "ptau"},
		{"pileup", "ppileup"},
		{"fromB", "pfromB"},
	} {
		if got := Short(tc.name); got != tc.want {
			t.Errorf("Short(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestTable(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Classes() {
		if seen[c.Name] {
			t.Errorf("class %s is defined twice", c.Name)
		}
		seen[c.Name] = true
		if len(c.Short) < 2 || c.Short[0] != 'p' {
			t.Errorf("class %s: short name %q does not start with p", c.Name, c.Short)
		}
		if len(c.Cuts) == 0 {
			t.Errorf("class %s has no cuts", c.Name)
		}
	}
	b, ok := Lookup("bjets")
	if !ok || len(b.Cuts) != 1 || b.Cuts[0].String() != "HadronConeExclTruthLabelID == 5" {
		t.Errorf("bjets = %+v, %v", b, ok)
	}
	if _, ok := Lookup("b"); ok {
		t.Error("Lookup(b) found a class; only ftag's names are in the table")
	}
}

func TestCut(t *testing.T) {
	for _, tc := range []struct {
		cut  Cut
		v    int64
		want bool
		str  string
	}{
		{Cut{"f", Eq, []int64{5}}, 5, true, "f == 5"},
		{Cut{"f", Eq, []int64{5}}, 4, false, "f == 5"},
		{Cut{"f", Ne, []int64{21}}, 3, true, "f != 21"},
		{Cut{"f", Lt, []int64{2}}, 2, false, "f < 2"},
		{Cut{"f", Le, []int64{2}}, 2, true, "f <= 2"},
		{Cut{"f", Ge, []int64{2}}, 1, false, "f >= 2"},
		{Cut{"f", Gt, []int64{-3}}, -2, true, "f > -3"},
		{Cut{"f", In, []int64{1, 6, 7}}, 6, true, "f in (1,6,7)"},
		{Cut{"f", In, []int64{1, 6, 7}}, 2, false, "f in (1,6,7)"},
	} {
		if got := tc.cut.Matches(tc.v); got != tc.want {
			t.Errorf("%s with %d = %v, want %v", tc.cut, tc.v, got, tc.want)
		}
		if got := tc.cut.String(); got != tc.str {
			t.Errorf("String() = %q, want %q", got, tc.str)
		}
	}
}

// TestResolve finds the flavour a class name means, by its name or by
// the short name of its output.
func TestResolve(t *testing.T) {
	for _, c := range []struct {
		name, want string
		ok         bool
	}{
		{"bjets", "bjets", true}, {"b", "bjets", true}, {"c", "cjets", true}, {"u", "ujets", true},
		{"tau", "taujets", true}, {"ghostsjets", "ghostsjets", true}, {"hbb", "hbb", true},
		{"light", "", false}, {"pileup", "", false}, {"bjet", "", false},
	} {
		got, ok := Resolve(c.name)
		if ok != c.ok || got.Name != c.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q, %v", c.name, got.Name, ok, c.want, c.ok)
		}
	}
}

// Package flavour knows the jet flavour classes of ATLAS's flavour-tagging
// toolchain by name: the short name Salt and Athena give each class's
// probability output ("bjets" → "pb", so GN2_pb) and the truth-label cut
// that defines it ("bjets" is HadronConeExclTruthLabelID == 5). The
// definitions follow the flavour list that atlas-ftag-tools ships and
// Salt reads (its flavours.yaml); names that are not in the table are
// still valid class names, with the short name "p" + name.
package flavour

import (
	"strconv"
	"strings"
)

// Class is one flavour class.
type Class struct {
	// Name is the class name as configurations give it (class_names).
	Name string
	// Short is the name of the class's probability output without the
	// model prefix, e.g. "pb".
	Short string
	// Category groups classes that are trained together (single-btag,
	// single-btag-extended, xbb, …).
	Category string
	// Cuts select the class's jets: every cut must hold. A cut reads one
	// integer truth-label field of the jets dataset.
	Cuts []Cut
}

// Op is the comparison of a Cut.
type Op string

// The comparisons cuts use.
const (
	Eq Op = "=="
	Ne Op = "!="
	Lt Op = "<"
	Le Op = "<="
	Ge Op = ">="
	Gt Op = ">"
	In Op = "in"
)

// Cut compares one jets field with constant values: Values holds one
// value, or the set for In.
type Cut struct {
	Field  string
	Op     Op
	Values []int64
}

// Matches reports whether the cut holds for value v of its field.
func (c Cut) Matches(v int64) bool {
	switch c.Op {
	case Eq:
		return v == c.Values[0]
	case Ne:
		return v != c.Values[0]
	case Lt:
		return v < c.Values[0]
	case Le:
		return v <= c.Values[0]
	case Ge:
		return v >= c.Values[0]
	case Gt:
		return v > c.Values[0]
	case In:
		for _, x := range c.Values {
			if v == x {
				return true
			}
		}
	}
	return false
}

// String writes the cut as ftag's cut strings do, e.g.
// "HadronConeExclTruthLabelID == 5".
func (c Cut) String() string {
	if c.Op == In {
		parts := make([]string, len(c.Values))
		for i, v := range c.Values {
			parts[i] = strconv.FormatInt(v, 10)
		}
		return c.Field + " in (" + strings.Join(parts, ",") + ")"
	}
	return c.Field + " " + string(c.Op) + " " + strconv.FormatInt(c.Values[0], 10)
}

func eq(field string, v int64) Cut { return Cut{Field: field, Op: Eq, Values: []int64{v}} }

const (
	cone         = "HadronConeExclTruthLabelID"
	coneExtended = "HadronConeExclExtendedTruthLabelID"
	ghost        = "HadronGhostTruthLabelID"
	parton       = "PartonTruthLabelID"
	largeR       = "R10TruthLabel_R22v1"
	ghostB       = "GhostBHadronsFinalCount"
	ghostC       = "GhostCHadronsFinalCount"
)

// table holds the classes Salt's taggers are trained on. Where two
// categories define a class of the same name (ujets is light in both the
// single-btag and the extended labelling), the first definition wins, as
// it does for a name lookup in ftag.
var table = []Class{
	{Name: "bjets", Short: "pb", Category: "single-btag", Cuts: []Cut{eq(cone, 5)}},
	{Name: "cjets", Short: "pc", Category: "single-btag", Cuts: []Cut{eq(cone, 4)}},
	{Name: "ujets", Short: "pu", Category: "single-btag", Cuts: []Cut{eq(cone, 0)}},
	{Name: "taujets", Short: "ptau", Category: "single-btag", Cuts: []Cut{eq(cone, 15)}},

	{Name: "singlebjets", Short: "pb", Category: "single-btag-extended", Cuts: []Cut{eq(coneExtended, 5)}},
	{Name: "bcjets", Short: "pbc", Category: "single-btag-extended", Cuts: []Cut{eq(coneExtended, 54)}},
	{Name: "bbjets", Short: "pbb", Category: "single-btag-extended", Cuts: []Cut{eq(coneExtended, 55)}},
	{Name: "singlecjets", Short: "pc", Category: "single-btag-extended", Cuts: []Cut{eq(coneExtended, 4)}},
	{Name: "ccjets", Short: "pcc", Category: "single-btag-extended", Cuts: []Cut{eq(coneExtended, 44)}},

	{Name: "ghostbjets", Short: "pb", Category: "single-btag-ghost", Cuts: []Cut{eq(ghost, 5)}},
	{Name: "ghostcjets", Short: "pc", Category: "single-btag-ghost", Cuts: []Cut{eq(ghost, 4)}},
	{Name: "ghostsjets", Short: "ps", Category: "single-btag-ghost", Cuts: []Cut{eq(ghost, 0), eq(parton, 3)}},
	{Name: "ghostudjets", Short: "pud", Category: "single-btag-ghost", Cuts: []Cut{eq(ghost, 0), {Field: parton, Op: Le, Values: []int64{2}}}},
	{Name: "ghostgjets", Short: "pg", Category: "single-btag-ghost", Cuts: []Cut{eq(ghost, 0), eq(parton, 21)}},
	{Name: "ghosttaujets", Short: "ptau", Category: "single-btag-ghost", Cuts: []Cut{eq(ghost, 15)}},

	{Name: "hbb", Short: "phbb", Category: "xbb", Cuts: []Cut{eq(largeR, 11)}},
	{Name: "hcc", Short: "phcc", Category: "xbb", Cuts: []Cut{eq(largeR, 12)}},
	{Name: "top", Short: "ptop", Category: "xbb", Cuts: []Cut{{Field: largeR, Op: In, Values: []int64{1, 6, 7}}}},
	{Name: "qcd", Short: "pqcd", Category: "xbb", Cuts: []Cut{eq(largeR, 10)}},
	{Name: "qcdbb", Short: "pqcdbb", Category: "xbb", Cuts: []Cut{eq(largeR, 10), {Field: ghostB, Op: Ge, Values: []int64{2}}}},
	{Name: "qcdnonbb", Short: "pqcdnonbb", Category: "xbb", Cuts: []Cut{eq(largeR, 10), {Field: ghostB, Op: Lt, Values: []int64{2}}}},
	{Name: "qcdbx", Short: "pqcdbx", Category: "xbb", Cuts: []Cut{eq(largeR, 10), eq(ghostB, 1)}},
	{Name: "qcdcx", Short: "pqcdcx", Category: "xbb", Cuts: []Cut{eq(largeR, 10), {Field: ghostC, Op: Ge, Values: []int64{1}}, eq(ghostB, 0)}},
	{Name: "qcdll", Short: "pqcdll", Category: "xbb", Cuts: []Cut{eq(largeR, 10), eq(ghostB, 0), eq(ghostC, 0)}},
	{Name: "htautauel", Short: "phtautauel", Category: "xbb", Cuts: []Cut{eq(largeR, 14)}},
	{Name: "htautaumu", Short: "phtautaumu", Category: "xbb", Cuts: []Cut{eq(largeR, 15)}},
	{Name: "htautauhad", Short: "phtautauhad", Category: "xbb", Cuts: []Cut{eq(largeR, 16)}},
	{Name: "Zbb", Short: "pZbb", Category: "xbb", Cuts: []Cut{eq(largeR, 3)}},
	{Name: "Zcc", Short: "pZcc", Category: "xbb", Cuts: []Cut{eq(largeR, 4)}},
	{Name: "Zqq", Short: "pZqq", Category: "xbb", Cuts: []Cut{eq(largeR, 5)}},
}

// Lookup returns the class called name and whether the table knows it.
func Lookup(name string) (Class, bool) {
	for _, c := range table {
		if c.Name == name {
			return c, true
		}
	}
	return Class{}, false
}

// Classes returns every class the table knows, in its order.
func Classes() []Class { return append([]Class(nil), table...) }

// Short returns the short output name of class name: the table's for a
// known flavour ("bjets" → "pb", "singlebjets" → "pb"), else "p" + name
// ("b" → "pb", "pileup" → "ppileup"), as Salt names class outputs.
func Short(name string) string {
	if c, ok := Lookup(name); ok {
		return c.Short
	}
	return "p" + name
}

// Resolve returns the class a configuration's class name means: the
// class of that name ("bjets"), else the first class whose short output
// name is "p" + name, so that the short names GN2's outputs use name the
// same classes ("b" → bjets, "tau" → taujets, "hbb" → hbb).
func Resolve(name string) (Class, bool) {
	if c, ok := Lookup(name); ok {
		return c, true
	}
	for _, c := range table {
		if c.Short == "p"+name {
			return c, true
		}
	}
	return Class{}, false
}

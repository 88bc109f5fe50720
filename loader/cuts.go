package loader

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Cut is one selection on a field of a dataset, written as atlas-ftag-tools
// writes cuts: "d0 < 3.5", "HadronConeExclTruthLabelID in [4, 5]",
// "eventNumber %10<= 7" (eventNumber modulo 10 at most 7). Values compare
// as float64; a NaN passes only "!=" and "notin" (IEEE comparisons).
type Cut struct {
	Field string
	// Op is ==, !=, <, <=, >, >=, in or notin.
	Op string
	// Mod, when positive, compares the field modulo Mod (ftag's "%N=="
	// operators; Op is then ==, !=, <= or >=).
	Mod int64
	// Values holds one value, or the set of in and notin.
	Values []float64
}

var cutRE = regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(?:(%[0-9]+\s*(?:==|!=|<=|>=)|==|!=|<=|>=|<|>)|\s(notin|in)\s)\s*(.*?)\s*$`)

// ParseCut reads a cut such as "d0 < 3.5" or "HadronConeExclTruthLabelID
// in [4, 5]" (see Cut).
func ParseCut(s string) (Cut, error) {
	m := cutRE.FindStringSubmatch(s)
	if m == nil {
		return Cut{}, fmt.Errorf("cut %q: want \"field op value\" with op one of ==, !=, <, <=, >, >=, in, notin or %%N== (e.g. \"d0 < 3.5\")", s)
	}
	c := Cut{Field: m[1], Op: m[2] + m[3]}
	if strings.HasPrefix(c.Op, "%") {
		i := strings.IndexAny(c.Op, "=!<>")
		mod, err := strconv.ParseInt(strings.TrimSpace(c.Op[1:i]), 10, 64)
		if err != nil || mod < 2 {
			return Cut{}, fmt.Errorf("cut %q: the modulus must be an integer of at least 2", s)
		}
		c.Mod, c.Op = mod, c.Op[i:]
	}
	val := m[4]
	if c.Op == "in" || c.Op == "notin" {
		inner := strings.TrimSpace(val)
		if len(inner) < 2 || !(inner[0] == '[' && inner[len(inner)-1] == ']' || inner[0] == '(' && inner[len(inner)-1] == ')') {
			return Cut{}, fmt.Errorf("cut %q: %s takes a list of values, e.g. [4, 5]", s, c.Op)
		}
		for _, p := range strings.Split(inner[1:len(inner)-1], ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			v, err := parseCutValue(p)
			if err != nil {
				return Cut{}, fmt.Errorf("cut %q: %w", s, err)
			}
			c.Values = append(c.Values, v)
		}
		if len(c.Values) == 0 {
			return Cut{}, fmt.Errorf("cut %q: the list of values is empty", s)
		}
		return c, nil
	}
	v, err := parseCutValue(val)
	if err != nil {
		return Cut{}, fmt.Errorf("cut %q: %w", s, err)
	}
	c.Values = []float64{v}
	return c, nil
}

func parseCutValue(s string) (float64, error) {
	switch strings.ToLower(s) {
	case "nan":
		return math.NaN(), nil
	case "inf", "+inf":
		return math.Inf(1), nil
	case "-inf":
		return math.Inf(-1), nil
	case "true":
		return 1, nil
	case "false":
		return 0, nil
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
	if err != nil {
		return 0, fmt.Errorf("value %q is not a number", s)
	}
	return v, nil
}

// String writes the cut back in ftag's form.
func (c Cut) String() string {
	op := c.Op
	if c.Mod > 0 {
		op = "%" + strconv.FormatInt(c.Mod, 10) + op
	}
	if c.Op == "in" || c.Op == "notin" {
		parts := make([]string, len(c.Values))
		for i, v := range c.Values {
			parts[i] = strconv.FormatFloat(v, 'g', -1, 64)
		}
		return c.Field + " " + op + " [" + strings.Join(parts, ", ") + "]"
	}
	return c.Field + " " + op + " " + strconv.FormatFloat(c.Values[0], 'g', -1, 64)
}

// Holds reports whether value x of the cut's field passes.
func (c *Cut) Holds(x float64) bool {
	if c.Mod > 0 {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return c.Op == "!="
		}
		x = float64(int64(x) % c.Mod)
	}
	switch c.Op {
	case "==":
		return x == c.Values[0] || math.IsNaN(x) && math.IsNaN(c.Values[0])
	case "!=":
		return !(x == c.Values[0] || math.IsNaN(x) && math.IsNaN(c.Values[0]))
	case "<":
		return x < c.Values[0]
	case "<=":
		return x <= c.Values[0]
	case ">":
		return x > c.Values[0]
	case ">=":
		return x >= c.Values[0]
	case "in", "notin":
		in := false
		for _, v := range c.Values {
			in = in || x == v
		}
		return in == (c.Op == "in")
	}
	return false
}

// check reports an operator Holds does not know (cuts built in Go rather
// than parsed).
func (c *Cut) check() error {
	switch c.Op {
	case "==", "!=", "<", "<=", ">", ">=":
		if len(c.Values) != 1 {
			return fmt.Errorf("cut on %q: %s takes one value, got %d", c.Field, c.Op, len(c.Values))
		}
	case "in", "notin":
		if len(c.Values) == 0 {
			return fmt.Errorf("cut on %q: %s needs values", c.Field, c.Op)
		}
	default:
		return fmt.Errorf("cut on %q: unknown operator %q", c.Field, c.Op)
	}
	if c.Field == "" {
		return fmt.Errorf("cut %s has no field", c)
	}
	if c.Mod > 0 && c.Op != "==" && c.Op != "!=" && c.Op != "<=" && c.Op != ">=" {
		return fmt.Errorf("cut on %q: a modulus goes with ==, !=, <= or >=, not %s", c.Field, c.Op)
	}
	return nil
}

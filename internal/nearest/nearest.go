// Package nearest suggests, for a misspelt name, the valid name it most
// likely meant: the configuration's keys (Key) and the datasets' fields and
// variables (Name), for the "did you mean" of an error message.
package nearest

import "strings"

// Key returns the candidate at the smallest edit distance from s, if it is
// close enough to be a plausible typo of a configuration key (fewer than
// len(s)/2+2 edits), or "". Keys are compared as written: TOML keys are
// case-sensitive.
func Key(s string, candidates []string) string {
	best, bestD := "", len(s)/2+2
	for _, c := range candidates {
		// The distance is at least the difference in length: skip the
		// quadratic computation for candidates that cannot win (a long
		// unknown key is compared with short names).
		if abs(len(s)-len(c)) >= bestD {
			continue
		}
		if d := Distance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// Name returns the candidate closest to a field or variable name s: one
// that differs only in case, else the one at the smallest edit distance
// (case ignored) if that distance is at most max(2, len(s)/3); "" if none
// is close.
func Name(s string, candidates []string) string {
	for _, c := range candidates {
		if strings.EqualFold(c, s) {
			return c
		}
	}
	best, bestD := "", max(2, len(s)/3)+1
	for _, c := range candidates {
		if d := Distance(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// Distance is the Levenshtein distance between a and b: the number of
// single-character insertions, deletions and substitutions that turn a
// into b, counted in runes.
func Distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	row := make([]int, len(rb)+1)
	for j := range row {
		row[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		diag := row[0]
		row[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			next := min(row[j]+1, row[j-1]+1, diag+cost)
			diag, row[j] = row[j], next
		}
	}
	return row[len(rb)]
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

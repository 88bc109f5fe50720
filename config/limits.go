package config

import "fmt"

// Limits on configuration text, checked before the TOML decoder sees it.
// github.com/BurntSushi/toml (v1.6.0) takes time and memory quadratic or
// worse in the number of parts of a dotted key or table name and in the
// nesting of inline tables (upstream issue BurntSushi/toml#496): a 16 KiB
// line "a.a.a.….a = 1" took 3 s to decode and 16 KiB of "{a=" 2.5 s. A
// salt-ort configuration needs keys of at most four parts, values nested
// two deep and a few KiB, so these bounds refuse nothing meaningful; within
// them the worst text found decodes in under a second.
const (
	// MaxSize is the largest configuration accepted, in bytes.
	MaxSize = 256 << 10
	// MaxKeyParts bounds the parts of a dotted key or table name.
	MaxKeyParts = 16
	// MaxNesting bounds how deeply arrays and inline tables nest.
	MaxNesting = 8
)

// checkLimits scans data as TOML lexes it (strings and comments skipped)
// and reports the first place that exceeds a limit. It only counts: text
// it cannot make sense of is left to the decoder to reject.
func checkLimits(path string, data []byte) error {
	if len(data) > MaxSize {
		return &Error{File: path, Msg: fmt.Sprintf("%d bytes; a configuration is at most %d (256 KiB)", len(data), MaxSize)}
	}
	line, depth := 1, 0
	parts := 0         // parts in the current dotted chain
	afterPart := false // the last token was a key part (bare or quoted)
	dotted := false    // a dot follows a part: the next part continues the chain
	part := func() error {
		if dotted {
			parts++
		} else {
			parts = 1
		}
		afterPart, dotted = true, false
		if parts > MaxKeyParts {
			return &Error{File: path, Line: line, Msg: fmt.Sprintf("a dotted key or table name of more than %d parts", MaxKeyParts)}
		}
		return nil
	}
	reset := func() { parts, afterPart, dotted = 0, false, false }
	for i := 0; i < len(data); {
		c := data[i]
		switch c {
		case ' ', '\t', '\r':
			i++
		case '\n':
			line++
			reset()
			i++
		case '.':
			if afterPart {
				dotted = true
			}
			afterPart = false
			i++
		case '#':
			for i < len(data) && data[i] != '\n' {
				i++
			}
		case '"', '\'':
			var nl int
			i, nl = skipString(data, i)
			if err := part(); err != nil {
				return err
			}
			line += nl
		case '[', '{':
			reset()
			if depth++; depth > MaxNesting {
				return &Error{File: path, Line: line, Msg: fmt.Sprintf("arrays and inline tables nested more than %d deep", MaxNesting)}
			}
			i++
		case ']', '}':
			reset()
			depth = max(depth-1, 0)
			i++
		case '=', ',':
			reset()
			i++
		default:
			for i < len(data) && !isStructural(data[i]) {
				i++
			}
			if err := part(); err != nil {
				return err
			}
		}
	}
	return nil
}

// isStructural reports whether b ends a bare key or scalar value.
func isStructural(b byte) bool {
	switch b {
	case ' ', '\t', '\r', '\n', '.', '#', '"', '\'', '[', ']', '{', '}', '=', ',':
		return true
	}
	return false
}

// skipString returns the index after the string opening at data[i] (basic
// or literal, one-line or multi-line) and the newlines it spans. A one-line
// string ends at the end of its line at the latest.
func skipString(data []byte, i int) (int, int) {
	q := data[i]
	escapes := q == '"'
	if i+2 < len(data) && data[i+1] == q && data[i+2] == q {
		nl := 0
		for i += 3; i < len(data); i++ {
			switch {
			case data[i] == '\n':
				nl++
			case escapes && data[i] == '\\':
				if i+1 < len(data) && data[i+1] == '\n' {
					nl++
				}
				i++
			case data[i] == q && i+2 < len(data) && data[i+1] == q && data[i+2] == q:
				// Up to two more quotes may belong to the content.
				i += 3
				for n := 0; n < 2 && i < len(data) && data[i] == q; n++ {
					i++
				}
				return i, nl
			}
		}
		return i, nl
	}
	for i++; i < len(data); i++ {
		switch {
		case data[i] == '\n':
			return i, 0
		case escapes && data[i] == '\\':
			if i+1 < len(data) && data[i+1] != '\n' {
				i++
			}
		case data[i] == q:
			return i + 1, 0
		}
	}
	return i, 0
}

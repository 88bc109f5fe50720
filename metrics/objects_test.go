package metrics

import (
	"math"
	"strings"
	"testing"
)

// TestObjectCountsInput checks the empty counts (every metric NaN) and the
// refusal of buffers too short for the batch's shape.
func TestObjectCountsInput(t *testing.T) {
	var empty ObjectCounts
	for _, name := range ObjectMetricNames {
		if v := empty.Metrics()[name]; !math.IsNaN(v) {
			t.Errorf("%s of no jets = %g, want NaN", name, v)
		}
	}
	one := func() ObjectBatch {
		// One jet, two objects (b, null), two classes and null, three
		// constituents.
		return ObjectBatch{Jets: 1, Objects: 2, Classes: 3, Constituents: 3,
			Probs: []float32{0.9, 0.05, 0.05, 0.1, 0.1, 0.8}, Logits: []float32{1, 1, -1, -1, -1, -1},
			Class: []int64{0, 2}, Perm: []int64{0, 1},
			Target: []bool{true, true, true, false, false, false}, Valid: []bool{true, true, true}}
	}
	tests := []struct {
		name   string
		mutate func(*ObjectBatch)
		want   string
	}{
		{"valid", func(*ObjectBatch) {}, ""},
		{"probabilities", func(b *ObjectBatch) { b.Probs = b.Probs[:5] }, "5 class probabilities"},
		{"logits", func(b *ObjectBatch) { b.Logits = nil }, "0 mask logits"},
		{"matching", func(b *ObjectBatch) { b.Perm = b.Perm[:1] }, "1 matching"},
		{"targets", func(b *ObjectBatch) { b.Target = b.Target[:3] }, "3 truth masks"},
		{"valid constituents", func(b *ObjectBatch) { b.Valid = b.Valid[:2] }, "2 valid constituents"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := one()
			tt.mutate(&b)
			var cnt ObjectCounts
			err := cnt.Add(b)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				// The b object has 2 of the 3 tracks, all right: loose, not
				// perfect.
				m := cnt.Metrics()
				for name, want := range map[string]float64{"class_exact_match": 1, "assignment_eff": 2.0 / 3, "assignment_pur": 1,
					"query_loose_match_eff": 1, "query_perfect_match_eff": 0, "query_perfect_match_fake": 1} {
					if m[name] != want {
						t.Errorf("%s = %g, want %g", name, m[name], want)
					}
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one naming %q", err, tt.want)
			}
		})
	}
}

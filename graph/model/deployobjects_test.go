package model

import (
	"slices"
	"testing"
)

// TestObjectIndices checks each constituent's object in the one-jet
// interface: objects likely null claim nothing, the largest logit wins,
// and the first object claiming a constituent becomes 0.
func TestObjectIndices(t *testing.T) {
	// Three objects (b, c, null probabilities) over five slots, four
	// constituents valid.
	tests := []struct {
		name   string
		probs  []float32
		logits []float32
		want   []int
	}{
		{"every object present",
			[]float32{0.8, 0.1, 0.1, 0.1, 0.7, 0.2, 0.6, 0.1, 0.3},
			[]float32{
				2, -1, 0.5, -3, 9,
				-2, 3, 1.5, -1, 9,
				-1, -2, 0.7, -0.1, 9,
			},
			[]int{0, 1, 1, ObjectIndexNone}},
		{"object 0 null, shifted",
			[]float32{0.1, 0.1, 0.8, 0.1, 0.7, 0.2, 0.6, 0.1, 0.3},
			[]float32{
				2, -1, 0.5, -3, 9,
				-2, 3, 1.5, -1, 9,
				-1, -2, 0.7, 4, 9,
			},
			// Track 0 only claimed by the null object; objects 1 and 2
			// become 0 and 1.
			[]int{ObjectIndexNone, 0, 0, 1}},
		{"null at exactly one half is kept",
			[]float32{0.25, 0.25, 0.5, 0.1, 0.1, 0.8, 0.1, 0.1, 0.8},
			[]float32{
				-1, 1, -1, -1, 9,
				5, 5, 5, 5, 9,
				5, 5, 5, 5, 9,
			},
			[]int{ObjectIndexNone, 0, ObjectIndexNone, ObjectIndexNone}},
		{"a tie goes to the first", []float32{0.8, 0.1, 0.1, 0.8, 0.1, 0.1, 0.1, 0.1, 0.8},
			[]float32{
				-1, 1, -1, -1, 0,
				-1, 1, 2, -1, 0,
				5, 5, 5, 5, 0,
			},
			[]int{ObjectIndexNone, 0, 1, ObjectIndexNone}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make([]int, 4)
			ObjectIndices(tt.probs, tt.logits, 3, 5, 4, got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

package model

import (
	"fmt"
	"slices"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
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

// TestLeadingObject checks the leading object's regression, in Go
// (LeadingObject) and in the deployment graph (deployObjectLeading):
// the largest first target among the objects that are not null, the first
// on a tie, ObjectLeadingNone when every object is null.
func TestLeadingObject(t *testing.T) {
	// Three objects (b, c, null probabilities), two targets each.
	tests := []struct {
		name       string
		probs, reg []float32
		want       []float32
	}{
		{"largest first target", []float32{0.8, 0.1, 0.1, 0.1, 0.7, 0.2, 0.6, 0.1, 0.3}, []float32{10, 1, 30, 2, 20, 3}, []float32{30, 2}},
		{"null objects left out", []float32{0.8, 0.1, 0.1, 0.1, 0.1, 0.8, 0.6, 0.1, 0.3}, []float32{10, 1, 30, 2, 20, 3}, []float32{20, 3}},
		{"null at exactly one half is kept", []float32{0.8, 0.1, 0.1, 0.25, 0.25, 0.5, 0.1, 0.1, 0.8}, []float32{10, 1, 30, 2, 50, 3}, []float32{30, 2}},
		{"a tie goes to the first", []float32{0.8, 0.1, 0.1, 0.1, 0.7, 0.2, 0.1, 0.1, 0.8}, []float32{30, 1, 30, 2, 50, 3}, []float32{30, 1}},
		{"every object null", []float32{0.1, 0.1, 0.8, 0.1, 0.1, 0.8, 0.1, 0.1, 0.8}, []float32{10, 1, 30, 2, 20, 3}, []float32{ObjectLeadingNone, ObjectLeadingNone}},
	}
	g := graph.New("leading")
	probs := g.Input("probs", graph.Float32, graph.Shape{3, 3})
	reg := g.Input("reg", graph.Float32, graph.Shape{3, 2})
	for i := range 2 {
		g.Output(fmt.Sprint("lead", i), deployObjectLeading(g, probs, reg, i))
	}
	run := graphtest.Compile(t, g, graph.ModelOptions{})
	same := func(a, b float32) bool { return a == b }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make([]float32, 2)
			LeadingObject(tt.probs, tt.reg, 3, got)
			if !slices.EqualFunc(got, tt.want, same) {
				t.Errorf("LeadingObject: %v, want %v", got, tt.want)
			}
			f64 := func(xs []float32) []float64 {
				out := make([]float64, len(xs))
				for i, x := range xs {
					out[i] = float64(x)
				}
				return out
			}
			out, err := run.Run(map[string][]float64{"probs": f64(tt.probs), "reg": f64(tt.reg)})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				if v := float32(out[fmt.Sprint("lead", i)][0]); !same(v, tt.want[i]) {
					t.Errorf("the deployment graph's target %d: %g, want %g", i, v, tt.want[i])
				}
			}
		})
	}
}

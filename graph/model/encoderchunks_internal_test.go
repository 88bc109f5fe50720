package model

import (
	"slices"
	"testing"

	"github.com/salt-ort/salt-ort/graph/nn"
)

func TestChunkLengths(t *testing.T) {
	for _, c := range []struct {
		n, chunk int64
		want     []int64
	}{
		{100, 0, []int64{100}},
		{100, 100, []int64{100}},
		{100, 200, []int64{100}},
		{100, 83, []int64{50, 50}},
		{1000, 20, slices.Repeat([]int64{20}, 50)},
		{5, 2, []int64{2, 2, 1}},
		{7, 3, []int64{3, 2, 2}},
		{3, 1, []int64{1, 1, 1}},
	} {
		if got := chunkLengths(c.n, c.chunk); !slices.Equal(got, c.want) {
			t.Errorf("chunkLengths(%d, %d) = %v, want %v", c.n, c.chunk, got, c.want)
		}
	}
}

// TestEncoderChunkJets checks the chunk sizes the bounds give: GN2's
// encoder (40 tracks and a register at width 256, packed q, k, v 768
// wide) runs 20 jets per chunk, its small example's (width 64, 4 heads)
// 83, unless the batch would need more than 50 chunks.
func TestEncoderChunkJets(t *testing.T) {
	gn2 := GN2().Encoder
	small := gn2
	small.Heads = 4
	for _, c := range []struct {
		name         string
		batch, width int64
		cfg          nn.EncoderConfig
		want         int64
	}{
		{"GN2 at 100", 100, 256, gn2, 20},
		{"GN2 at 1000", 1000, 256, gn2, 20},
		{"GN2 at 1001", 1001, 256, gn2, 21},
		{"GN2 at 4000", 4000, 256, gn2, 80},
		{"GN2 small at 100", 100, 64, small, 83},
	} {
		if got := encoderChunkJets(c.batch, 40, c.width, c.cfg); got != c.want {
			t.Errorf("%s: %d jets per chunk, want %d", c.name, got, c.want)
		}
	}
}

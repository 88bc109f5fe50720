package nn

import "github.com/salt-ort/salt-ort/graph"

// PairUniforms are the random inputs of the dropout masks of a layer of a
// pair network (a vertexing head), whose input is [B, T, T, F]: one
// uniform number per (jet, row constituent, feature), per (jet, column
// constituent, feature) and per (jet, pair). A mask over every element of
// [B, T, T, F] drawn in Go would be too large to feed every step (2.4 GB
// for a GN2 batch of 1000 jets of 40 tracks at F = 384); these are
// B·T·(2F + T) numbers.
type PairUniforms struct {
	Row  *graph.Tensor // [B, T, 1, F]
	Col  *graph.Tensor // [B, 1, T, F]
	Pair *graph.Tensor // [B, T, T, 1]
}

// NewPairUniforms declares the uniform random inputs (graph.RandomUniform,
// float32) of a pair layer of width f over batch jets of t constituents,
// named name/row, name/col and name/pair.
func NewPairUniforms(g *graph.Graph, name string, batch, t, f int64) PairUniforms {
	return PairUniforms{
		Row:  g.Random(name+"/row", graph.Float32, graph.Shape{batch, t, 1, f}, graph.RandomUniform, 0),
		Col:  g.Random(name+"/col", graph.Float32, graph.Shape{batch, 1, t, f}, graph.RandomUniform, 0),
		Pair: g.Random(name+"/pair", graph.Float32, graph.Shape{batch, t, t, 1}, graph.RandomUniform, 0),
	}
}

// Split cuts the uniforms along the batch axis into chunks of the given
// numbers of jets.
func (u PairUniforms) Split(g *graph.Graph, lens ...int64) []PairUniforms {
	if len(lens) == 1 {
		return []PairUniforms{u}
	}
	rows, cols, pairs := g.Split(u.Row, 0, lens...), g.Split(u.Col, 0, lens...), g.Split(u.Pair, 0, lens...)
	out := make([]PairUniforms, len(lens))
	for i := range out {
		out[i] = PairUniforms{Row: rows[i], Col: cols[i], Pair: pairs[i]}
	}
	return out
}

// PairDropoutMask is the dropout mask, of type dt, of a pair layer's input
// [B, T, T, F]: 0 with probability p and 1/(1−p) otherwise. Its element
// (b, i, j, f) is kept where frac(row[b,i,f] + col[b,j,f] + pair[b,i,j]) ≥ p.
// The fractional part of a sum of independent numbers of which one is
// uniform in [0, 1) is uniform and independent of the others, so every
// element is kept with probability 1−p, the masks of one pair's features
// are independent of each other (row differs per feature), and so are the
// masks of one feature over the pairs (pair differs per pair). Unlike
// Dropout's, the elements are not all jointly independent: the alternating
// sum of the eight sums of two rows, two columns and two features is a
// whole number.
func PairDropoutMask(g *graph.Graph, u PairUniforms, p float64, dt graph.DType) *graph.Tensor {
	s := g.Add(g.Add(u.Row, u.Col), u.Pair)
	frac := g.Sub(s, g.Floor(s))
	keep := g.GreaterOrEqual(frac, g.Scalar(graph.Float32, p))
	mask := g.Mul(g.Cast(keep, graph.Float32), g.Scalar(graph.Float32, 1/(1-p)))
	if dt == graph.Float32 {
		return mask
	}
	return g.Cast(mask, dt)
}

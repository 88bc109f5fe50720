package model

import (
	"math"
	"strconv"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/nn"
)

// pairChunkElements (a variable for tests) bounds the elements of the widest pair tensor that one
// chunk of a static-batch pair head computes at once: 2^24 float32 values
// (64 MiB), 81 GN2 jets of 40×40 pairs at width 128.
var pairChunkElements int64 = 1 << 24

// pairChunkJets is the number of jets per chunk of a pair head over t
// constituents whose widest layer is width: at least 1.
func pairChunkJets(t, width int64) int64 {
	return max(1, pairChunkElements/max(1, t*t*width))
}

// forwardOptions select how the forward pass is built.
type forwardOptions struct {
	// training adds dropout.
	training bool
	// chunkPairs builds the vertexing heads of a static batch as
	// pairHead does, in chunks of jets with their pair activations
	// recomputed in the backward pass, rather than as one broadcast
	// MLP over every pair of the batch.
	chunkPairs bool
	// chunkEncoder runs the encoder of a static batch on chunks of
	// jets (see runEncoder).
	chunkEncoder bool
	// objectLosses builds what the MaskFormer losses read: with the
	// auxiliary losses (Objects.AuxLoss), the predictions of the queries
	// entering each decoder layer. Deployment graphs leave them out.
	objectLosses bool
}

// pairHead is a vertexing head on every ordered pair (i, j) of
// constituents, [g, x_i, x_j] through the MLP of the given sizes: the same
// parameters, names and arithmetic as head over the broadcast parts,
// bit for bit in the forward pass, with a fraction of its memory.
//   - The first layer stays factorised: W·[g, x_i, x_j] + b is
//     ((W_g·g + b) + W_i·x_i) + W_j·x_j, the per-jet and per-track terms
//     computed once and added in the order nn.ConcatLinear adds them.
//   - The pair tensors ([b, T, T, width]) are computed for chunks of
//     pairChunkJets jets, one after the other, so that one chunk's are
//     alive at a time.
//   - Every pair tensor of a chunk but its logits is marked for
//     recomputation (graph.Recompute): the backward pass recomputes the
//     chunk from its per-track terms instead of keeping every layer's
//     activations of every pair from the forward pass to the backward.
//
// The logits are [B, T, T, 1]. The gradient sums over the chunks in
// another order than over the whole batch, so it equals head's up to
// float32 rounding.
//
// With dropout p > 0 (training), every layer's input is dropped as Salt's
// Dense drops it, the first layer's over the concatenation [g, x_i, x_j]
// of each pair, with the masks of nn.PairDropoutMask. The first layer is
// then computed on the pairs, (m_g⊙g)·W_g + (m_i⊙x_i)·W_i + (m_j⊙x_j)·W_j
// + b, and the chunks are sized by its input width.
func pairHead(g *graph.Graph, name string, pooled, x *graph.Tensor, sizes []int, a nn.Activation, p float64) *graph.Tensor {
	defer g.Scope(name)()
	dt := x.DType()
	dp, dx := pooled.Dim(-1), x.Dim(-1)
	pop := g.Scope("0")
	bound := 1 / math.Sqrt(float64(dp+2*dx))
	w := g.ParamOf("weight", dt, graph.Shape{dp + 2*dx, int64(sizes[0])}, graph.InitUniform(bound))
	b := g.ParamOf("bias", dt, graph.Shape{int64(sizes[0])}, graph.InitUniform(bound))
	ws := g.Split(w, 0, dp, dx, dx)
	var row, col *graph.Tensor
	if p == 0 {
		jet := g.Add(g.MatMul(g.Unsqueeze(pooled, 1, 2), ws[0]), b) // [B, 1, 1, H]
		row = g.Add(jet, g.MatMul(g.Unsqueeze(x, 2), ws[1]))        // [B, T, 1, H]
		col = g.MatMul(g.Unsqueeze(x, 1), ws[2])                    // [B, 1, T, H]
	}
	pop()
	weights, biases := pairLayers(g, sizes, dt)

	width := int64(0)
	for _, n := range sizes {
		width = max(width, int64(n))
	}
	if p > 0 {
		width = max(width, dp+2*dx)
	}
	batch, t := x.Dim(0), x.Dim(1)
	chunk := pairChunkJets(t, width)
	var lens []int64
	for start := int64(0); start < batch; start += chunk {
		lens = append(lens, min(chunk, batch-start))
	}
	rows, cols := []*graph.Tensor{row}, []*graph.Tensor{col}
	pooleds, xs := []*graph.Tensor{pooled}, []*graph.Tensor{x}
	switch {
	case len(lens) == 1:
	case p == 0:
		rows, cols = g.Split(row, 0, lens...), g.Split(col, 0, lens...)
	default:
		pooleds, xs = g.Split(pooled, 0, lens...), g.Split(x, 0, lens...)
	}
	// uniforms[i][k] are the random inputs of layer i's dropout mask in
	// chunk k.
	var uniforms [][]nn.PairUniforms
	if p > 0 {
		uniforms = make([][]nn.PairUniforms, len(sizes))
		for i := range sizes {
			in := dp + 2*dx
			if i > 0 {
				in = int64(sizes[i-1])
			}
			uniforms[i] = nn.NewPairUniforms(g, "dropout/"+strconv.Itoa(i), batch, t, in).Split(g, lens...)
		}
	}
	logits := make([]*graph.Tensor, len(lens))
	for k := range lens {
		pop := g.Scope("chunk" + strconv.Itoa(k))
		first := len(g.Nodes())
		var h *graph.Tensor
		if p > 0 {
			h = droppedFirstLayer(g, pooleds[k], xs[k], ws, b, nn.PairDropoutMask(g, uniforms[0][k], p, dt))
		} else {
			h = g.Add(rows[k], cols[k])
		}
		for i := 1; i < len(sizes); i++ {
			in := nn.Activate(g, h, a)
			if p > 0 {
				in = g.Mul(in, nn.PairDropoutMask(g, uniforms[i][k], p, dt))
			}
			h = g.Add(g.MatMul(in, weights[i]), biases[i])
		}
		var recompute []*graph.Tensor
		for _, n := range g.Nodes()[first : len(g.Nodes())-1] {
			recompute = append(recompute, n.Outputs...)
		}
		g.Recompute(recompute...)
		logits[k] = h
		pop()
	}
	if len(logits) == 1 {
		return logits[0]
	}
	return g.Concat(0, logits...)
}

// droppedFirstLayer is the first layer of a pair head on the dropped-out
// concatenation of each pair, [m_g⊙g, m_i⊙x_i, m_j⊙x_j]·[W_g; W_i; W_j] + b,
// for pooled [c, D_g], x [c, T, D_x] and mask [c, T, T, D_g + 2·D_x]: each
// part through its rows of the weight, added in nn.ConcatLinear's order.
func droppedFirstLayer(g *graph.Graph, pooled, x *graph.Tensor, ws []*graph.Tensor, b, mask *graph.Tensor) *graph.Tensor {
	dp, dx := pooled.Dim(-1), x.Dim(-1)
	m := g.Split(mask, 3, dp, dx, dx)
	jet := g.MatMul(g.Mul(g.Unsqueeze(pooled, 1, 2), m[0]), ws[0]) // [c, T, T, H]
	h := g.Add(jet, b)
	h = g.Add(h, g.MatMul(g.Mul(g.Unsqueeze(x, 2), m[1]), ws[1]))
	return g.Add(h, g.MatMul(g.Mul(g.Unsqueeze(x, 1), m[2]), ws[2]))
}

// pairLayers declares the parameters of the pair MLP's layers after the
// first, as nn.Linear declares them under scopes "1", "2", …; index 0 of
// the results is unused.
func pairLayers(g *graph.Graph, sizes []int, dt graph.DType) (weights, biases []*graph.Tensor) {
	weights, biases = make([]*graph.Tensor, len(sizes)), make([]*graph.Tensor, len(sizes))
	for i := 1; i < len(sizes); i++ {
		pop := g.Scope(strconv.Itoa(i))
		in, out := int64(sizes[i-1]), int64(sizes[i])
		bound := 1 / math.Sqrt(float64(in))
		weights[i] = g.ParamOf("weight", dt, graph.Shape{in, out}, graph.InitUniform(bound))
		biases[i] = g.ParamOf("bias", dt, graph.Shape{out}, graph.InitUniform(bound))
		pop()
	}
	return weights, biases
}

// recomputeLayers marks for recomputation (graph.Recompute), one group per
// layer, every tensor computed by the nodes of the layers named
// prefix+"0", prefix+"1", … that no node outside its layer reads: the
// backward pass then keeps each layer's input and output and recomputes
// the layer's activations from them, one layer at a time.
func recomputeLayers(g *graph.Graph, prefix string, layers int) {
	layerOf := func(n *graph.Node) int {
		for i := 0; i < layers; i++ {
			if p := prefix + strconv.Itoa(i) + "/"; len(n.Name) > len(p) && n.Name[:len(p)] == p {
				return i
			}
		}
		return -1
	}
	owner := map[*graph.Tensor]int{}
	for _, n := range g.Nodes() {
		if k := layerOf(n); k >= 0 {
			for _, o := range n.Outputs {
				owner[o] = k
			}
		}
	}
	escapes := map[*graph.Tensor]bool{}
	for _, o := range g.Outputs() {
		escapes[o] = true
	}
	for _, n := range g.Nodes() {
		k := layerOf(n)
		for _, in := range n.Inputs {
			if o, ok := owner[in]; ok && o != k {
				escapes[in] = true
			}
		}
	}
	groups := make([][]*graph.Tensor, layers)
	for _, n := range g.Nodes() {
		if k := layerOf(n); k >= 0 {
			for _, o := range n.Outputs {
				if !escapes[o] {
					groups[k] = append(groups[k], o)
				}
			}
		}
	}
	for _, ts := range groups {
		if len(ts) > 0 {
			g.Recompute(ts...)
		}
	}
}

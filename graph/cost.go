package graph

// Cost counts the arithmetic of the nodes the graph's outputs depend on.
type Cost struct {
	// MatMulFLOPs counts 2·M·N·K per matrix product (times its batch).
	MatMulFLOPs int64
	// ElementwiseOps counts one operation per output element of every
	// other operator (a lower bound for softmax, normalisation, etc.).
	ElementwiseOps int64
	// Nodes is the number of nodes.
	Nodes int
}

// FLOPs returns the total of both counts.
func (c Cost) FLOPs() int64 { return c.MatMulFLOPs + c.ElementwiseOps }

// Cost counts the graph's arithmetic; dynamic dimensions count as 1.
func (g *Graph) Cost() Cost {
	var c Cost
	size := func(s Shape) int64 {
		n := int64(1)
		for _, d := range s {
			if d > 0 {
				n *= d
			}
		}
		return n
	}
	for _, n := range g.liveNodes() {
		c.Nodes++
		switch n.Op {
		case "MatMul":
			out := n.Outputs[0].shape
			k := n.Inputs[0].shape[n.Inputs[0].Rank()-1]
			c.MatMulFLOPs += 2 * size(out) * max(k, 1)
		case "Reshape", "Unsqueeze", "Squeeze", "Identity", "Expand", "Split", "Concat", "Slice", "Transpose", "Cast":
			// Data movement, no arithmetic.
		default:
			for _, o := range n.Outputs {
				c.ElementwiseOps += size(o.shape)
			}
		}
	}
	return c
}

package nn

import "github.com/salt-ort/salt-ort/graph"

// MaskFormerRegressionCost is the regression term of Salt's matching
// cost: the mean absolute difference [B, N, M], over the R targets,
// between each predicted object's scaled regression pred [B, N, R] and
// each truth slot's scaled targets target [B, M, R]. The caller
// multiplies it by the matcher's regression weight.
func MaskFormerRegressionCost(g *graph.Graph, pred, target *graph.Tensor) *graph.Tensor {
	target = castTo(g, target, pred.DType())
	d := g.Sub(g.Unsqueeze(pred, 2), g.Unsqueeze(target, 1)) // [B, N, M, R]
	return g.ReduceMean(g.Abs(d), []int{-1}, false)
}

// MaskFormerRegressionLoss is the regression loss of Salt's
// MaskFormerLoss: the L1 loss of the predictions pred [B, N, R], permuted
// by the one-hot assignment a [B, M, N], against the scaled targets target
// [B, M, R], averaged over the targets of the valid slots, valid [B, M]
// (1 for a slot holding a truth object of a jet that counts, else 0). A
// batch without valid slots gives 0, as Salt's does.
func MaskFormerRegressionLoss(g *graph.Graph, pred, target, a, valid *graph.Tensor) *graph.Tensor {
	dt := pred.DType()
	target, a, valid = castTo(g, target, dt), castTo(g, a, dt), castTo(g, valid, dt)
	matched := g.MatMul(a, pred) // [B, M, R]
	r := float64(pred.Dim(-1))
	l := g.Mul(g.Abs(g.Sub(matched, target)), g.Unsqueeze(valid, 2))
	count := g.Max(g.Mul(g.ReduceSum(valid, []int{0, 1}, false), g.Scalar(dt, r)), g.Scalar(dt, 1))
	return g.Div(g.ReduceSum(l, []int{0, 1, 2}, false), count)
}

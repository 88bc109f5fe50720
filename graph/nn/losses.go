package nn

import "github.com/salt-ort/salt-ort/graph"

// The losses below reduce to a scalar weighted mean over the entries a
// mask selects, Σ m·l / Σ m, as PyTorch's reduction="mean" does for the
// entries Salt keeps. A nil mask includes every entry. The denominator is
// floored at a tiny value so that a batch with no selected entry gives a
// zero loss rather than NaN. Each has a ...Mean variant that returns the
// numerator and the denominator apart, for data-parallel training, which
// sums both over the ranks' shards of a batch before it divides.

// Mean is a loss as Σ m·l over the selected entries (Num) and Σ m (Den),
// both scalars.
type Mean struct {
	Num, Den *graph.Tensor
	// Floor bounds Den from below in Value: a tiny value for the losses
	// here, 1 where a loss divides by a count (Salt's vertexing).
	Floor float64
}

// Value is the loss, Num / max(Den, Floor).
func (m Mean) Value(g *graph.Graph) *graph.Tensor { return m.Over(g, m.Den) }

// Over is the loss with another denominator, Num / max(den, Floor): the
// denominator of the whole batch where Num is one shard's.
func (m Mean) Over(g *graph.Graph, den *graph.Tensor) *graph.Tensor {
	return g.Div(m.Num, g.Max(den, g.ScalarLike(den, m.Floor)))
}

// tiny is the floor of the masked means' denominators.
const tiny = 1e-12

func allAxes(t *graph.Tensor) []int {
	a := make([]int, t.Rank())
	for i := range a {
		a[i] = i
	}
	return a
}

// weightedMean returns Σ w·l and Σ w; w may be nil (every entry counts
// once, for a tensor of static shape).
func weightedMean(g *graph.Graph, l, w *graph.Tensor) Mean {
	if w == nil {
		return Mean{Num: g.ReduceSum(l, allAxes(l), false), Den: g.ScalarLike(l, float64(l.Shape().Size())), Floor: tiny}
	}
	num := g.ReduceSum(g.Mul(l, w), allAxes(l), false)
	den := g.ReduceSum(g.Expand(w, l.Shape()), allAxes(l), false)
	return Mean{Num: num, Den: den, Floor: tiny}
}

// OneHot returns the one-hot encoding [..., classes] of int64 labels of
// any shape; a label outside [0, classes) (such as -1 padding) encodes as
// all zeros.
func OneHot(g *graph.Graph, labels *graph.Tensor, classes int, dtype graph.DType) *graph.Tensor {
	idx := make([]int64, classes)
	for i := range idx {
		idx[i] = int64(i)
	}
	return g.Cast(g.Equal(g.Unsqueeze(labels, -1), g.Int64s(idx...)), dtype)
}

// CrossEntropy is the softmax cross-entropy of logits [..., C] against
// int64 class labels [...], with optional per-class weights (PyTorch's
// weight=, whose mean divides by the summed weights of the selected
// entries) and an optional mask [...] (also carrying sample weights).
func CrossEntropy(g *graph.Graph, name string, logits, labels, mask *graph.Tensor, classWeights []float64) *graph.Tensor {
	defer g.Scope(name)()
	return crossEntropy(g, logits, labels, mask, classWeights).Value(g)
}

// CrossEntropyMean is CrossEntropy's numerator and denominator.
func CrossEntropyMean(g *graph.Graph, name string, logits, labels, mask *graph.Tensor, classWeights []float64) Mean {
	defer g.Scope(name)()
	return crossEntropy(g, logits, labels, mask, classWeights)
}

func crossEntropy(g *graph.Graph, logits, labels, mask *graph.Tensor, classWeights []float64) Mean {
	c := int(logits.Dim(-1))
	dt := logits.DType()
	if len(classWeights) > 0 && len(classWeights) != c {
		g.Errorf("%d class weights for %d classes", len(classWeights), c)
	}
	onehot := OneHot(g, labels, c, dt)
	nll := g.Neg(g.ReduceSum(g.Mul(onehot, g.LogSoftmax(logits, -1)), []int{-1}, false))
	// Per-entry weight: the label's class weight, or 1; 0 for labels out
	// of range (padding), so they never count whatever the mask says.
	var w *graph.Tensor
	if len(classWeights) > 0 {
		cw := g.Const("class_weights", dt, graph.Shape{int64(c)}, classWeights)
		w = g.ReduceSum(g.Mul(onehot, cw), []int{-1}, false)
	} else {
		w = g.ReduceSum(onehot, []int{-1}, false)
	}
	if mask != nil {
		w = g.Mul(w, mask)
	}
	return weightedMean(g, nll, w)
}

// softplus is ln(1+eᶻ) computed stably as max(z,0) + ln(1+e^-|z|) from
// operators every execution provider has for every float type.
func softplus(g *graph.Graph, z *graph.Tensor) *graph.Tensor {
	one := g.ScalarLike(z, 1)
	return g.Add(g.Relu(z), g.Log(g.Add(one, g.Exp(g.Neg(g.Abs(z))))))
}

// BCEWithLogitsTerms returns the elementwise binary cross-entropy of
// logits z against targets y in [0, 1], softplus(z) − z·y, for callers that
// reduce it their own way.
func BCEWithLogitsTerms(g *graph.Graph, logits, targets *graph.Tensor) *graph.Tensor {
	return g.Sub(softplus(g, logits), g.Mul(logits, targets))
}

// BCEWithLogits is binary cross-entropy on logits averaged over the mask.
func BCEWithLogits(g *graph.Graph, name string, logits, targets, mask *graph.Tensor) *graph.Tensor {
	defer g.Scope(name)()
	return weightedMean(g, BCEWithLogitsTerms(g, logits, targets), mask).Value(g)
}

// MSE is the mean squared error, averaged over the mask.
func MSE(g *graph.Graph, name string, pred, target, mask *graph.Tensor) *graph.Tensor {
	defer g.Scope(name)()
	return mse(g, pred, target, mask).Value(g)
}

// MSEMean is MSE's numerator and denominator.
func MSEMean(g *graph.Graph, name string, pred, target, mask *graph.Tensor) Mean {
	defer g.Scope(name)()
	return mse(g, pred, target, mask)
}

func mse(g *graph.Graph, pred, target, mask *graph.Tensor) Mean {
	d := g.Sub(pred, target)
	return weightedMean(g, g.Mul(d, d), mask)
}

// Huber is the Huber loss with threshold delta: ½d² for |d| ≤ δ and
// δ(|d| − ½δ) beyond, written as ½q² + δ(|d| − q) with q = min(|d|, δ).
func Huber(g *graph.Graph, name string, pred, target, mask *graph.Tensor, delta float64) *graph.Tensor {
	defer g.Scope(name)()
	return huber(g, pred, target, mask, delta).Value(g)
}

// HuberMean is Huber's numerator and denominator.
func HuberMean(g *graph.Graph, name string, pred, target, mask *graph.Tensor, delta float64) Mean {
	defer g.Scope(name)()
	return huber(g, pred, target, mask, delta)
}

func huber(g *graph.Graph, pred, target, mask *graph.Tensor, delta float64) Mean {
	a := g.Abs(g.Sub(pred, target))
	q := g.Min(a, g.ScalarLike(a, delta))
	l := g.Add(g.Mul(g.ScalarLike(q, 0.5), g.Mul(q, q)), g.Mul(g.ScalarLike(a, delta), g.Sub(a, q)))
	return weightedMean(g, l, mask)
}

// GaussianVariance maps an unconstrained network output to a variance:
// softplus(raw) + 1e-6.
func GaussianVariance(g *graph.Graph, raw *graph.Tensor) *graph.Tensor {
	return g.Add(softplus(g, raw), g.ScalarLike(raw, 1e-6))
}

// GaussianNLL is the Gaussian negative log-likelihood of target under
// N(mean, variance), ½(ln σ² + (y−μ)²/σ²), as PyTorch's GaussianNLLLoss
// (without the constant), averaged over the mask.
func GaussianNLL(g *graph.Graph, name string, mean, variance, target, mask *graph.Tensor) *graph.Tensor {
	defer g.Scope(name)()
	return gaussianNLL(g, mean, variance, target, mask).Value(g)
}

// GaussianNLLMean is GaussianNLL's numerator and denominator.
func GaussianNLLMean(g *graph.Graph, name string, mean, variance, target, mask *graph.Tensor) Mean {
	defer g.Scope(name)()
	return gaussianNLL(g, mean, variance, target, mask)
}

func gaussianNLL(g *graph.Graph, mean, variance, target, mask *graph.Tensor) Mean {
	d := g.Sub(target, mean)
	l := g.Mul(g.ScalarLike(d, 0.5), g.Add(g.Log(variance), g.Div(g.Mul(d, d), variance)))
	return weightedMean(g, l, mask)
}

// L1 is the mean absolute error, averaged over the mask (PyTorch's
// L1Loss).
func L1(g *graph.Graph, name string, pred, target, mask *graph.Tensor) *graph.Tensor {
	defer g.Scope(name)()
	return l1(g, pred, target, mask).Value(g)
}

// L1Mean is L1's numerator and denominator.
func L1Mean(g *graph.Graph, name string, pred, target, mask *graph.Tensor) Mean {
	defer g.Scope(name)()
	return l1(g, pred, target, mask)
}

func l1(g *graph.Graph, pred, target, mask *graph.Tensor) Mean {
	return weightedMean(g, g.Abs(g.Sub(pred, target)), mask)
}

// BinaryCrossEntropyMean is the binary cross-entropy of one logit per
// entry, logits [..., 1], against int64 labels [...] (1: the class, 0:
// not), as PyTorch's BCEWithLogitsLoss on the squeezed logits: Σ m·l / Σ m
// over the entries the mask [...] selects. A label other than 0 or 1
// (such as -1 padding) weighs 0 whatever the mask says.
func BinaryCrossEntropyMean(g *graph.Graph, name string, logits, labels, mask *graph.Tensor) Mean {
	defer g.Scope(name)()
	z := g.Squeeze(logits, -1)
	dt := z.DType()
	target := g.Cast(g.Equal(labels, g.Scalar(graph.Int64, 1)), dt)
	w := g.Cast(g.Or(g.Equal(labels, g.Scalar(graph.Int64, 0)), g.Equal(labels, g.Scalar(graph.Int64, 1))), dt)
	if mask != nil {
		w = g.Mul(w, mask)
	}
	return weightedMean(g, BCEWithLogitsTerms(g, z, target), w)
}

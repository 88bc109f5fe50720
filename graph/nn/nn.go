// Package nn is the layer library salt-ort's models are written in: dense
// layers and MLPs, layer normalisation, masked multi-head self-attention,
// pre-norm transformer encoder layers with register tokens, global
// attention pooling, dropout and the losses of Salt's tasks. Every layer
// appends ordinary ONNX operators to a graph.Graph and declares its
// parameters under the current scope, so the same code builds the training,
// evaluation and deployment graphs.
package nn

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/salt-ort/salt-ort/graph"
)

// Activation names a nonlinearity.
type Activation string

// The activations salt-ort supports (Salt's names, lower case).
const (
	ReLU Activation = "relu"
	SiLU Activation = "silu"
	GELU Activation = "gelu"
	// Sigmoid is the logistic function, as the final activation of Salt's
	// featurewise scale networks.
	Sigmoid Activation = "sigmoid"
	// Mish is x·tanh(softplus(x)) (Misra 2019), PyTorch's nn.Mish, which
	// Salt's DL1 configuration uses.
	Mish Activation = "mish"
	None Activation = "none"
)

// ParseActivation accepts Salt's spellings ("ReLU", "SiLU", "GELU",
// "Sigmoid", "Mish").
func ParseActivation(s string) (Activation, error) {
	switch a := Activation(strings.ToLower(s)); a {
	case ReLU, SiLU, GELU, Sigmoid, Mish, None:
		return a, nil
	}
	return "", fmt.Errorf("nn: unknown activation %q (want ReLU, SiLU, GELU, Mish, Sigmoid or none)", s)
}

// Activate applies a to x.
func Activate(g *graph.Graph, x *graph.Tensor, a Activation) *graph.Tensor {
	switch a {
	case ReLU:
		return g.Relu(x)
	case SiLU:
		return g.Mul(x, g.Sigmoid(x))
	case GELU:
		// The exact GELU, x·Φ(x) = ½x(1 + erf(x/√2)), as PyTorch's default.
		half := g.Mul(x, g.ScalarLike(x, 0.5))
		return g.Mul(half, g.Add(g.ScalarLike(x, 1), g.Erf(g.Mul(x, g.ScalarLike(x, 1/math.Sqrt2)))))
	case Sigmoid:
		return g.Sigmoid(x)
	case Mish:
		// ONNX's Mish operator needs opset 18; the graphs are opset 17,
		// so it is composed: x·tanh(softplus(x)), with the stable
		// softplus of the losses (finite for any x, every float type).
		return g.Mul(x, g.Tanh(softplus(g, x)))
	case None, "":
		return x
	}
	g.Errorf("unknown activation %q", a)
	return x
}

// Linear applies y = x·W + b over the last dimension of x, with W of shape
// [in, out]. Parameters are called weight and bias under scope name and
// drawn as PyTorch's nn.Linear draws them: U(±1/√in).
func Linear(g *graph.Graph, name string, x *graph.Tensor, out int, bias bool) *graph.Tensor {
	defer g.Scope(name)()
	in := x.Dim(-1)
	bound := 1 / math.Sqrt(float64(in))
	w := g.ParamOf("weight", x.DType(), graph.Shape{in, int64(out)}, graph.InitUniform(bound))
	y := g.MatMul(x, w)
	if bias {
		b := g.ParamOf("bias", x.DType(), graph.Shape{int64(out)}, graph.InitUniform(bound))
		y = g.Add(y, b)
	}
	return y
}

// ConcatLinear computes Linear(concat(parts, -1)) without building the
// concatenation: Σ_k parts[k]·W_k + b, where the parts may have different
// broadcastable leading shapes (e.g. [B,T,1,d], [B,1,T,d] and [B,1,1,d] for
// track pairs). The weight is one [Σd_k, out] parameter, the same as the
// Linear it replaces, so checkpoints do not depend on the rewrite.
func ConcatLinear(g *graph.Graph, name string, parts []*graph.Tensor, out int) *graph.Tensor {
	defer g.Scope(name)()
	var in int64
	sizes := make([]int64, len(parts))
	for i, p := range parts {
		sizes[i] = p.Dim(-1)
		in += sizes[i]
	}
	bound := 1 / math.Sqrt(float64(in))
	dt := parts[0].DType()
	w := g.ParamOf("weight", dt, graph.Shape{in, int64(out)}, graph.InitUniform(bound))
	b := g.ParamOf("bias", dt, graph.Shape{int64(out)}, graph.InitUniform(bound))
	ws := []*graph.Tensor{w}
	if len(parts) > 1 {
		ws = g.Split(w, 0, sizes...)
	}
	// Add the smallest terms first, and the bias to the smallest, so that
	// only the last addition produces the full broadcast shape (one pass
	// over a [B,T,T,H] pair tensor instead of three, forward and backward).
	terms := make([]*graph.Tensor, len(parts))
	for i, p := range parts {
		terms[i] = g.MatMul(p, ws[i])
	}
	sort.SliceStable(terms, func(i, j int) bool { return orderSize(terms[i].Shape()) < orderSize(terms[j].Shape()) })
	y := g.Add(terms[0], b)
	for _, term := range terms[1:] {
		y = g.Add(y, term)
	}
	return y
}

// orderSize is a shape's element count with dynamic dimensions counted as
// large, so that static and dynamic versions of a graph add the same terms
// in the same order.
func orderSize(s graph.Shape) int64 {
	n := int64(1)
	for _, d := range s {
		if d < 0 {
			d = 1 << 16
		}
		n *= d
	}
	return n
}

// MLP applies Linear layers of the given output sizes with activation a
// between them, and after the last one too if finalActivation is set.
// Layers are scoped name/0, name/1, …
func MLP(g *graph.Graph, name string, x *graph.Tensor, sizes []int, a Activation, finalActivation bool) *graph.Tensor {
	defer g.Scope(name)()
	for i, n := range sizes {
		x = Linear(g, strconv.Itoa(i), x, n, true)
		if i < len(sizes)-1 || finalActivation {
			x = Activate(g, x, a)
		}
	}
	return x
}

// LayerNorm normalises over the last dimension with a learnable scale
// (init 1) and bias (init 0), ε = 1e-5 as PyTorch's nn.LayerNorm.
func LayerNorm(g *graph.Graph, name string, x *graph.Tensor) *graph.Tensor {
	defer g.Scope(name)()
	d := graph.Shape{x.Dim(-1)}
	scale := g.ParamOf("weight", x.DType(), d, graph.InitOnes())
	bias := g.ParamOf("bias", x.DType(), d, graph.InitZeros())
	return g.LayerNorm(x, scale, bias, 1e-5)
}

// Norm normalises over the last dimension without learnable parameters,
// ε = 1e-5: Salt's LayerNorm (salt/models/layernorm.py), which is
// PyTorch's nn.LayerNorm with elementwise_affine=False, the norm of every
// residual block and of the output of Salt's Transformer. It declares no
// parameters, so name only scopes its nodes.
func Norm(g *graph.Graph, name string, x *graph.Tensor) *graph.Tensor {
	defer g.Scope(name)()
	d := x.Dim(-1)
	ones := make([]float64, d)
	for i := range ones {
		ones[i] = 1
	}
	return g.LayerNorm(x, g.Const("ones", x.DType(), graph.Shape{d}, ones), nil, 1e-5)
}

// RMSNorm is Salt's RMSNorm over the last dimension:
// x/√(mean(x²) + ε)·w with a learnable scale w (init 1), ε = 1e-5. The
// statistics are computed in float32 for half-precision x, as Salt
// computes them on x.float().
func RMSNorm(g *graph.Graph, name string, x *graph.Tensor) *graph.Tensor {
	defer g.Scope(name)()
	dt := x.DType()
	w := g.ParamOf("weight", dt, graph.Shape{x.Dim(-1)}, graph.InitOnes())
	xs := x
	if dt == graph.Float16 || dt == graph.BFloat16 {
		xs = g.Cast(x, graph.Float32)
	}
	ms := g.ReduceMean(g.Mul(xs, xs), []int{-1}, true)
	y := g.Div(xs, g.Sqrt(g.Add(ms, g.ScalarLike(ms, 1e-5))))
	if y.DType() != dt {
		y = g.Cast(y, dt)
	}
	return g.Mul(y, w)
}

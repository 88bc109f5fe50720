// Package optim writes optimizer updates and gradient clipping as ONNX
// operators, and turns a forward graph with a scalar loss into a complete
// training step: gradients, clipping and the update in one graph that ONNX
// Runtime runs per batch.
//
// Parameters and optimizer state travel as flat vectors (see
// graph.FlattenParams), so one step reads and writes a few buffers and the
// update is a handful of elementwise operators whatever the model's size.
// The learning rate and the step count are graph inputs: the schedule lives
// in Go.
package optim

import (
	"fmt"
	"math"

	"github.com/salt-ort/salt-ort/graph"
)

// Optimizer writes the update of a flat parameter vector.
type Optimizer interface {
	// Slots names the per-parameter state vectors, e.g. exp_avg.
	Slots() []string
	// Update returns the new parameters and state given the parameters p,
	// their gradient, the state (in Slots order), the learning rate and the
	// 1-based step count (both scalars of p's type).
	Update(g *graph.Graph, p, grad *graph.Tensor, state []*graph.Tensor, lr, step *graph.Tensor) (newP *graph.Tensor, newState []*graph.Tensor)
}

// AdamW is Adam with decoupled weight decay (Loshchilov & Hutter), as
// torch.optim.AdamW computes it:
//
//	p ← p − lr·λ·p
//	m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²
//	p ← p − lr·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε)
type AdamW struct {
	Beta1, Beta2, Eps, WeightDecay float64
}

// DefaultAdamW returns PyTorch's defaults with Salt's weight decay 1e-5.
func DefaultAdamW() AdamW { return AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-5} }

// Slots implements Optimizer.
func (AdamW) Slots() []string { return []string{"exp_avg", "exp_avg_sq"} }

// Update implements Optimizer.
func (o AdamW) Update(g *graph.Graph, p, grad *graph.Tensor, state []*graph.Tensor, lr, step *graph.Tensor) (*graph.Tensor, []*graph.Tensor) {
	return o.UpdateWithMomentum(g, p, grad, state, lr, step, g.ScalarLike(p, o.Beta1))
}

// UpdateWithMomentum implements MomentumOptimizer: β₁ is the scalar
// momentum, of p's type, and also enters the bias correction 1 − β₁ᵗ, as
// torch.optim.AdamW reads the β₁ its param group holds at each step.
func (o AdamW) UpdateWithMomentum(g *graph.Graph, p, grad *graph.Tensor, state []*graph.Tensor, lr, step, beta1 *graph.Tensor) (*graph.Tensor, []*graph.Tensor) {
	return o.update(g, p, grad, state, lr, lr, step, beta1)
}

// UpdateScaled implements ScaledOptimizer: each element is updated as in
// a param group of its own with learning rate lr·lrMult and weight decay
// λ·decayMult, as torch.optim.AdamW updates the groups of mup's MuAdamW:
// the Adam step with lr·lrMult, the decay with lr·lrMult·λ·decayMult.
func (o AdamW) UpdateScaled(g *graph.Graph, p, grad *graph.Tensor, state []*graph.Tensor, lr, step, beta1, lrMult, decayMult *graph.Tensor) (*graph.Tensor, []*graph.Tensor) {
	stepLR, decayLR := lr, lr
	if lrMult != nil {
		stepLR = g.Mul(lr, lrMult)
		decayLR = stepLR
	}
	if decayMult != nil {
		decayLR = g.Mul(stepLR, decayMult)
	}
	return o.update(g, p, grad, state, stepLR, decayLR, step, beta1)
}

// update is AdamW's update with the learning rate of the Adam step,
// stepLR, and that of the weight decay, decayLR, each a scalar or a
// vector of p's size.
func (o AdamW) update(g *graph.Graph, p, grad *graph.Tensor, state []*graph.Tensor, stepLR, decayLR, step, beta1 *graph.Tensor) (*graph.Tensor, []*graph.Tensor) {
	defer g.Scope("adamw")()
	c := func(v float64) *graph.Tensor { return g.ScalarLike(p, v) }
	m := g.Add(g.Mul(state[0], beta1), g.Mul(grad, g.Sub(c(1), beta1)))
	v := g.Add(g.Mul(state[1], c(o.Beta2)), g.Mul(g.Mul(grad, grad), c(1-o.Beta2)))
	// Scalars first: the bias corrections and the step size.
	bc1 := g.Sub(c(1), g.Pow(beta1, step))
	bc2 := g.Sub(c(1), g.Pow(c(o.Beta2), step))
	stepSize := g.Div(stepLR, bc1)
	denom := g.Add(g.Div(g.Sqrt(v), g.Sqrt(bc2)), c(o.Eps))
	decayed := p
	if o.WeightDecay != 0 {
		decayed = g.Mul(p, g.Sub(c(1), g.Mul(decayLR, c(o.WeightDecay))))
	}
	newP := g.Sub(decayed, g.Mul(stepSize, g.Div(m, denom)))
	return newP, []*graph.Tensor{m, v}
}

// SGD is stochastic gradient descent with momentum and L2 weight decay, as
// torch.optim.SGD (dampening 0):
//
//	g ← g + λp,  b ← μb + g,  p ← p − lr·(Nesterov ? g + μb : b)
type SGD struct {
	Momentum, WeightDecay float64
	Nesterov              bool
}

// Slots implements Optimizer.
func (o SGD) Slots() []string {
	if o.Momentum == 0 {
		return nil
	}
	return []string{"momentum_buffer"}
}

// Update implements Optimizer.
func (o SGD) Update(g *graph.Graph, p, grad *graph.Tensor, state []*graph.Tensor, lr, step *graph.Tensor) (*graph.Tensor, []*graph.Tensor) {
	if o.Momentum == 0 {
		defer g.Scope("sgd")()
		if o.WeightDecay != 0 {
			grad = g.Add(grad, g.Mul(p, g.ScalarLike(p, o.WeightDecay)))
		}
		return g.Sub(p, g.Mul(lr, grad)), nil
	}
	return o.UpdateWithMomentum(g, p, grad, state, lr, step, g.ScalarLike(p, o.Momentum))
}

// UpdateWithMomentum implements MomentumOptimizer with the scalar momentum
// μ of p's type; the momentum buffer is kept whatever o.Momentum says.
func (o SGD) UpdateWithMomentum(g *graph.Graph, p, grad *graph.Tensor, state []*graph.Tensor, lr, _, momentum *graph.Tensor) (*graph.Tensor, []*graph.Tensor) {
	defer g.Scope("sgd")()
	if o.WeightDecay != 0 {
		grad = g.Add(grad, g.Mul(p, g.ScalarLike(p, o.WeightDecay)))
	}
	buf := g.Add(g.Mul(state[0], momentum), grad)
	dir := buf
	if o.Nesterov {
		dir = g.Add(grad, g.Mul(buf, momentum))
	}
	return g.Sub(p, g.Mul(lr, dir)), []*graph.Tensor{buf}
}

// Lion is the Lion optimizer (Chen et al. 2023, "Symbolic Discovery of
// Optimization Algorithms"), as the lion-pytorch package Salt trains with
// (model.optimizer: lion) computes it, with its default coupled weight
// decay:
//
//	p ← p·(1 − lr·λ)
//	p ← p − lr·sign(β₁m + (1−β₁)g)
//	m ← β₂m + (1−β₂)g
//
// The update has the same size in every coordinate, so Lion wants a
// smaller learning rate than AdamW. sign(0) is 0.
type Lion struct {
	Beta1, Beta2, WeightDecay float64
}

// DefaultLion returns lion-pytorch's betas (0.9, 0.99) with Salt's weight
// decay 1e-5.
func DefaultLion() Lion { return Lion{Beta1: 0.9, Beta2: 0.99, WeightDecay: 1e-5} }

// Slots implements Optimizer.
func (Lion) Slots() []string { return []string{"exp_avg"} }

// SlotsWithMomentum implements MomentumOptimizer.
func (o Lion) SlotsWithMomentum() []string { return o.Slots() }

// Update implements Optimizer.
func (o Lion) Update(g *graph.Graph, p, grad *graph.Tensor, state []*graph.Tensor, lr, step *graph.Tensor) (*graph.Tensor, []*graph.Tensor) {
	return o.UpdateWithMomentum(g, p, grad, state, lr, step, g.ScalarLike(p, o.Beta1))
}

// UpdateWithMomentum implements MomentumOptimizer: β₁ is the scalar
// momentum, as OneCycleLR cycles the first of Lion's betas.
func (o Lion) UpdateWithMomentum(g *graph.Graph, p, grad *graph.Tensor, state []*graph.Tensor, lr, _, beta1 *graph.Tensor) (*graph.Tensor, []*graph.Tensor) {
	defer g.Scope("lion")()
	c := func(v float64) *graph.Tensor { return g.ScalarLike(p, v) }
	m := state[0]
	dir := g.Sign(g.Add(g.Mul(m, beta1), g.Mul(grad, g.Sub(c(1), beta1))))
	decayed := p
	if o.WeightDecay != 0 {
		decayed = g.Mul(p, g.Sub(c(1), g.Mul(lr, c(o.WeightDecay))))
	}
	newP := g.Sub(decayed, g.Mul(lr, dir))
	newM := g.Add(g.Mul(m, c(o.Beta2)), g.Mul(grad, c(1-o.Beta2)))
	return newP, []*graph.Tensor{newM}
}

// MomentumOptimizer is an Optimizer whose momentum coefficient can be a
// graph input (AdamW's β₁, SGD's momentum), so that the schedule can change
// it every step as PyTorch's OneCycleLR does with cycle_momentum.
type MomentumOptimizer interface {
	Optimizer
	// UpdateWithMomentum is Update with the momentum coefficient given as a
	// scalar tensor of p's type. Its state has the slots SlotsWithMomentum
	// names.
	UpdateWithMomentum(g *graph.Graph, p, grad *graph.Tensor, state []*graph.Tensor, lr, step, momentum *graph.Tensor) (newP *graph.Tensor, newState []*graph.Tensor)
	// SlotsWithMomentum names the state of UpdateWithMomentum.
	SlotsWithMomentum() []string
}

// SlotsWithMomentum implements MomentumOptimizer.
func (o AdamW) SlotsWithMomentum() []string { return o.Slots() }

// ScaledOptimizer is a MomentumOptimizer that scales the learning rate and
// the weight decay of each parameter by its own factors (Step.Scales).
type ScaledOptimizer interface {
	MomentumOptimizer
	// UpdateScaled is UpdateWithMomentum with lrMult multiplying the
	// learning rate of each element's step and decayMult that of its
	// weight decay, both vectors of p's size and type; nil means 1
	// everywhere.
	UpdateScaled(g *graph.Graph, p, grad *graph.Tensor, state []*graph.Tensor, lr, step, momentum, lrMult, decayMult *graph.Tensor) (newP *graph.Tensor, newState []*graph.Tensor)
	// Momentum is the momentum coefficient UpdateScaled is given when
	// the schedule does not cycle it.
	Momentum() float64
}

// Momentum implements ScaledOptimizer: β₁.
func (o AdamW) Momentum() float64 { return o.Beta1 }

// ParamScale are the factors of one parameter's learning rate and weight
// decay.
type ParamScale struct {
	// LR multiplies the parameter's learning rate (of its step and of
	// its decay, as a param group's lr).
	LR float64
	// WeightDecay multiplies the weight decay λ (the decay per step is
	// lr·LR·λ·WeightDecay).
	WeightDecay float64
}

// MuAdamWScale is the scale mup's MuAdamW gives a matrix-like parameter
// of width multiplier w: the learning rate over w and the weight decay
// times w (mup's default, decoupled_wd false), so that AdamW's decay per
// step, lr·λ, is unchanged.
func MuAdamWScale(w float64) ParamScale { return ParamScale{LR: 1 / w, WeightDecay: w} }

// allOnes reports whether every element of v is 1.
func allOnes(v []float64) bool {
	for _, x := range v {
		if x != 1 {
			return false
		}
	}
	return true
}

// scaleVectors returns the per-element factors of the learning rate and
// the weight decay over the flat parameters, 1 where scales says nothing.
func scaleVectors(params []graph.ParamSlot, size int64, scales map[string]ParamScale) (lr, decay []float64, err error) {
	lr, decay = make([]float64, size), make([]float64, size)
	names := map[string]bool{}
	for _, p := range params {
		names[p.Name] = true
		sc, ok := scales[p.Name]
		if !ok {
			sc = ParamScale{LR: 1, WeightDecay: 1}
		}
		for i := p.Offset; i < p.Offset+p.Size; i++ {
			lr[i], decay[i] = sc.LR, sc.WeightDecay
		}
	}
	for name := range scales {
		if !names[name] {
			return nil, nil, fmt.Errorf("optim: scale for parameter %q, which the model does not have", name)
		}
	}
	return lr, decay, nil
}

// SlotsWithMomentum implements MomentumOptimizer: the buffer exists even
// where o.Momentum is 0, since the input sets the coefficient.
func (SGD) SlotsWithMomentum() []string { return []string{"momentum_buffer"} }

// ClipByGlobalNorm scales grad so that its L2 norm is at most maxNorm, as
// torch.nn.utils.clip_grad_norm_ does (factor min(1, maxNorm/(‖g‖+1e-6))),
// and returns the clipped gradient and the norm before clipping, of grad's
// type. The sum of squares is accumulated in float64 whatever grad's type:
// one float32 sum over a million parameters loses ~1e-5 relative, far more
// than the float32 rounding of the norm itself.
func ClipByGlobalNorm(g *graph.Graph, grad *graph.Tensor, maxNorm float64) (clipped, norm *graph.Tensor) {
	defer g.Scope("clip")()
	wide := grad
	if grad.DType() != graph.Float64 {
		wide = g.Cast(grad, graph.Float64)
	}
	norm64 := g.Sqrt(g.ReduceSum(g.Mul(wide, wide), allAxes(grad.Rank()), false))
	norm = norm64
	if grad.DType() != graph.Float64 {
		norm = g.Cast(norm64, grad.DType())
	}
	if maxNorm <= 0 {
		return grad, norm
	}
	coef := g.Div(g.ScalarLike(norm64, maxNorm), g.Add(norm64, g.ScalarLike(norm64, 1e-6)))
	coef = g.Min(coef, g.ScalarLike(coef, 1))
	if grad.DType() != graph.Float64 {
		coef = g.Cast(coef, grad.DType())
	}
	return g.Mul(grad, coef), norm
}

func allAxes(rank int) []int {
	a := make([]int, rank)
	for i := range a {
		a[i] = i
	}
	return a
}

// Step configures BuildStep.
type Step struct {
	Optimizer Optimizer
	// ClipNorm is the gradient-clipping threshold (0: no clipping; the
	// norm is still reported).
	ClipNorm float64
	// Master is the element type of the flat parameter vector, of the
	// optimizer state, of lr and step and of the whole update (0: the
	// parameters' own type). Parameters declared with another float type
	// (the compute type of mixed-precision training) are cast from the
	// master vector where the forward pass reads them, and their gradients
	// are cast back to Master before they are concatenated (see
	// graph.Graph.FlattenParamsAs).
	Master graph.DType
	// LossScaling multiplies the loss by the scalar input "loss_scale"
	// before differentiating and divides the gradient by it (in Master)
	// afterwards, so that small gradients of a float16 forward pass do not
	// flush to zero. It also makes the step safe against overflow: when
	// the gradient norm is not finite the step outputs the parameters and
	// the optimizer state unchanged, and the output "grad_finite" (1 or 0)
	// tells the caller to lower the scale (see LossScaler).
	LossScaling bool
	// CycleMomentum reads the optimizer's momentum coefficient (AdamW's β₁,
	// SGD's momentum) from the scalar input "momentum" each step, for a
	// schedule that cycles it (PyTorch's OneCycleLR with cycle_momentum).
	// The optimizer must be a MomentumOptimizer.
	CycleMomentum bool
	// Scales multiplies the learning rate and the weight decay of the
	// parameters it names (mup's MuAdamW; see MuAdamWScale). The factors
	// are constants of the update graph. The optimizer must be a
	// ScaledOptimizer.
	Scales map[string]ParamScale
}

// Names of the training step's inputs and outputs besides the model's own.
const (
	ParamsInput    = "params"     // flat parameters
	LRInput        = "lr"         // learning rate (scalar)
	StepInput      = "step"       // 1-based step count (scalar)
	NewParams      = "new/params" // updated flat parameters
	GradNormOutput = "grad_norm"  // global gradient norm before clipping
	// MomentumInput is the momentum input (scalar, Master type) of a step
	// built with Step.CycleMomentum: AdamW's β₁ or SGD's momentum.
	MomentumInput = "momentum"
	// LossScaleInput is the loss-scale input (scalar, Master type) of a
	// step built with Step.LossScaling.
	LossScaleInput = "loss_scale"
	// GradFiniteOutput is the output (scalar, Master type) of a step built
	// with Step.LossScaling that is 1 when the gradient norm was finite
	// and the update was applied, 0 when the step was skipped.
	GradFiniteOutput = "grad_finite"
	statePrefix      = "opt/"     // optimizer state inputs: opt/<slot>
	newStatePrefix   = "new/opt/" // optimizer state outputs: new/opt/<slot>
)

// StateInput returns the graph input name of optimizer slot s.
func StateInput(s string) string { return statePrefix + s }

// NewStateOutput returns the graph output name of the updated slot s.
func NewStateOutput(s string) string { return newStatePrefix + s }

// Layout describes the flat vectors of a training step.
type Layout struct {
	Params []graph.ParamSlot
	Size   int64    // elements in the flat parameter vector
	Slots  []string // optimizer state vectors, each of Size elements
	// LossScaling reports that the step reads LossScaleInput and writes
	// GradFiniteOutput (Step.LossScaling).
	LossScaling bool
	// CycleMomentum reports that the step reads MomentumInput
	// (Step.CycleMomentum).
	CycleMomentum bool
}

// BuildStep turns g, whose parameters the scalar loss depends on, into a
// training step. It flattens the parameters into the input "params",
// declares the scalar inputs "lr" and "step" and the state inputs
// "opt/<slot>", appends the gradient, clipping and update, and adds the
// outputs "new/params", "new/opt/<slot>" and "grad_norm". Outputs already
// declared (losses, predictions) stay first. With cfg.LossScaling it also
// declares "loss_scale" and adds "grad_finite".
//
// A skipped step (grad_finite 0) leaves the parameters and the state as
// they were, but the step count is Go's: as torch.cuda.amp.GradScaler skips
// optimizer.step(), the caller should feed the same "step" again next time
// so that Adam's bias correction does not count the skipped step.
func BuildStep(g *graph.Graph, loss *graph.Tensor, cfg Step) (*Layout, error) {
	flat, grad, scale, layout, err := gradient(g, loss, cfg)
	if err != nil {
		return nil, err
	}
	if err := update(g, flat, grad, scale, cfg, layout); err != nil {
		return nil, err
	}
	return layout, nil
}

// GradOutput is the flat gradient output of a gradient graph, and
// GradInput the gradient input of an update graph.
const (
	GradOutput = "grad"
	GradInput  = "grad"
)

// BuildGradient turns g, whose parameters the scalar loss depends on, into
// the first half of a training step: it flattens the parameters into the
// input "params" and adds the flat gradient of loss as the output "grad"
// (multiplied by the scalar input "loss_scale" with cfg.LossScaling;
// BuildUpdate divides it out). Data-parallel training runs it on each
// rank's shard of a batch, sums the gradients over the ranks and runs
// BuildUpdate's graph on the sum; BuildStep does both halves in one graph.
func BuildGradient(g *graph.Graph, loss *graph.Tensor, cfg Step) (*Layout, error) {
	_, grad, _, layout, err := gradient(g, loss, cfg)
	if err != nil {
		return nil, err
	}
	g.Output(GradOutput, grad)
	if err := g.Err(); err != nil {
		return nil, err
	}
	return layout, nil
}

// BuildUpdate builds the second half of a training step as a graph of its
// own: inputs "params", "grad" (as BuildGradient's graph writes it, the
// sum over the ranks), the state "opt/<slot>", "lr", "step" and, as cfg
// asks, "momentum" and "loss_scale"; it unscales and clips the gradient
// and writes the outputs of BuildStep: "new/params", "new/opt/<slot>",
// "grad_norm" and with loss scaling "grad_finite". layout is
// BuildGradient's.
func BuildUpdate(name string, layout *Layout, cfg Step) (*graph.Graph, error) {
	master := cfg.Master
	if master == 0 {
		master = graph.Float32
	}
	g := graph.New(name)
	flat := g.Input(ParamsInput, master, graph.Shape{layout.Size})
	grad := g.Input(GradInput, master, graph.Shape{layout.Size})
	var scale *graph.Tensor
	if cfg.LossScaling {
		scale = g.Input(LossScaleInput, master, graph.Shape{})
	}
	if err := update(g, flat, grad, scale, cfg, layout); err != nil {
		return nil, err
	}
	return g, nil
}

// gradient adds the flat parameter input and the flat gradient of loss
// (scaled by the loss-scale input with cfg.LossScaling, which it returns).
func gradient(g *graph.Graph, loss *graph.Tensor, cfg Step) (flat, grad, scale *graph.Tensor, layout *Layout, err error) {
	if cfg.Optimizer == nil {
		return nil, nil, nil, nil, fmt.Errorf("optim: no optimizer")
	}
	var views []*graph.Tensor
	var params []graph.ParamSlot
	if cfg.Master == 0 {
		flat, views, params = g.FlattenParams(ParamsInput)
	} else {
		flat, views, params = g.FlattenParamsAs(ParamsInput, cfg.Master)
	}
	if err := g.Err(); err != nil {
		return nil, nil, nil, nil, err
	}
	if cfg.LossScaling {
		scale = g.Input(LossScaleInput, flat.DType(), graph.Shape{})
		pop := g.Scope("loss_scale")
		loss = g.Mul(loss, g.Cast(scale, loss.DType()))
		pop()
	}
	grads, err := g.Grad(loss, views)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	pop := g.Scope("grad/flatten")
	parts := make([]*graph.Tensor, len(grads))
	for i, gr := range grads {
		parts[i] = gr
		if gr.Rank() != 1 {
			parts[i] = g.Reshape(gr, -1)
		}
	}
	grad = g.Concat(0, parts...)
	pop()
	slots := cfg.Optimizer.Slots()
	if cfg.CycleMomentum {
		mo, ok := cfg.Optimizer.(MomentumOptimizer)
		if !ok {
			return nil, nil, nil, nil, fmt.Errorf("optim: %T has no momentum to cycle", cfg.Optimizer)
		}
		slots = mo.SlotsWithMomentum()
	}
	layout = &Layout{Params: params, Size: flat.Shape()[0], Slots: slots, LossScaling: cfg.LossScaling, CycleMomentum: cfg.CycleMomentum}
	return flat, grad, scale, layout, nil
}

// update adds, for the flat parameters and their (scaled, with a non-nil
// scale) gradient, the unscaling, clipping and optimizer update and the
// outputs new/params, new/opt/<slot>, grad_norm and grad_finite.
func update(g *graph.Graph, flat, grad, scale *graph.Tensor, cfg Step, layout *Layout) error {
	master := flat.DType()
	if scale != nil {
		pop := g.Scope("grad/unscale")
		grad = g.Div(grad, scale)
		pop()
	}
	grad, norm := ClipByGlobalNorm(g, grad, cfg.ClipNorm)
	lr := g.Input(LRInput, master, graph.Shape{})
	step := g.Input(StepInput, master, graph.Shape{})
	var state []*graph.Tensor
	for _, s := range layout.Slots {
		state = append(state, g.Input(StateInput(s), master, flat.Shape()))
	}
	var newP *graph.Tensor
	var newState []*graph.Tensor
	if len(cfg.Scales) > 0 {
		so, ok := cfg.Optimizer.(ScaledOptimizer)
		if !ok {
			return fmt.Errorf("optim: %T cannot scale the learning rate per parameter", cfg.Optimizer)
		}
		lrv, decayv, err := scaleVectors(layout.Params, layout.Size, cfg.Scales)
		if err != nil {
			return err
		}
		pop := g.Scope("param_scale")
		var lrMult, decayMult *graph.Tensor
		if !allOnes(lrv) {
			lrMult = g.Const("lr", master, flat.Shape(), lrv)
		}
		if !allOnes(decayv) {
			decayMult = g.Const("weight_decay", master, flat.Shape(), decayv)
		}
		pop()
		var momentum *graph.Tensor
		if cfg.CycleMomentum {
			momentum = g.Input(MomentumInput, master, graph.Shape{})
		} else {
			momentum = g.ScalarLike(flat, so.Momentum())
		}
		newP, newState = so.UpdateScaled(g, flat, grad, state, lr, step, momentum, lrMult, decayMult)
	} else if cfg.CycleMomentum {
		momentum := g.Input(MomentumInput, master, graph.Shape{})
		newP, newState = cfg.Optimizer.(MomentumOptimizer).UpdateWithMomentum(g, flat, grad, state, lr, step, momentum)
	} else {
		newP, newState = cfg.Optimizer.Update(g, flat, grad, state, lr, step)
	}
	var finite *graph.Tensor
	if scale != nil {
		// Skip the update when the gradient overflowed: Where keeps the old
		// values, whatever Inf or NaN the update computed from it.
		pop := g.Scope("skip_nonfinite")
		finite = isFinite(g, norm)
		newP = g.Where(finite, newP, flat)
		for i := range newState {
			newState[i] = g.Where(finite, newState[i], state[i])
		}
		pop()
	}
	g.Output(NewParams, newP)
	for i, s := range layout.Slots {
		g.Output(NewStateOutput(s), newState[i])
	}
	g.Output(GradNormOutput, norm)
	if finite != nil {
		pop := g.Scope("skip_nonfinite")
		g.Output(GradFiniteOutput, g.Cast(finite, master))
		pop()
	}
	return g.Err()
}

// isFinite returns whether the scalar x, which is not negative (a norm),
// is neither +Inf nor NaN: x < +Inf, which is false for both.
func isFinite(g *graph.Graph, x *graph.Tensor) *graph.Tensor {
	return g.Less(x, g.ScalarLike(x, math.Inf(1)))
}

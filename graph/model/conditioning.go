package model

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/nn"
)

// Parameter is a variable the model is conditioned on, such as the mass
// hypothesis of a parameterised tagger (Salt's parameters): a jet-level
// value the model reads raw, attached to every init net's input or fed to
// featurewise transformations.
type Parameter struct {
	Name string
	// Train are the values the training set's signal has. In training and
	// validation every other value (that of background jets, which have
	// none) is replaced by one of them drawn with the probabilities Prob
	// (nil: equal); in evaluation every jet gets Test.
	Train []float64
	Prob  []float64
	Test  float64
}

// FeaturewiseLayer is where a featurewise transformation applies.
type FeaturewiseLayer string

// The layers of featurewise transformations (Salt's featurewise_nets).
const (
	// FeaturewiseInput transforms each init net's input (the jet and
	// constituent variables), which then does not read the parameters.
	FeaturewiseInput FeaturewiseLayer = "input"
	// FeaturewiseEncoder transforms the sequence before each encoder
	// layer, with a network per layer.
	FeaturewiseEncoder FeaturewiseLayer = "encoder"
	// FeaturewiseGlobal transforms the encoder's output, which the pooling
	// and the constituent tasks read.
	FeaturewiseGlobal FeaturewiseLayer = "global"
)

// FeaturewiseDense is a dense network from the parameters to one scale or
// shift per feature (Salt's dense_config_scale and dense_config_bias).
type FeaturewiseDense struct {
	Hidden          []int
	Activation      nn.Activation
	FinalActivation nn.Activation
}

// Featurewise is a featurewise transformation (FiLM, Dumoulin et al.
// 2018) of one layer's features f from the parameters p: f·scale(p) +
// bias(p), then a LayerNorm with learnable scale and shift if Norm (Salt's
// FeaturewiseTransformation and apply_norm).
type Featurewise struct {
	Layer       FeaturewiseLayer
	Scale, Bias *FeaturewiseDense
	Norm        bool
}

// ParametersInput is the float32 [B, n_parameters] input of the
// parameters' raw values in graphs that read normalised jets (training,
// evaluation); the deployment graphs read them from the last columns of
// jet_features.
const ParametersInput = "parameters"

// featurewise returns the transformation of layer, or nil.
func (s *Spec) featurewise(layer FeaturewiseLayer) *Featurewise {
	for i := range s.Featurewise {
		if s.Featurewise[i].Layer == layer {
			return &s.Featurewise[i]
		}
	}
	return nil
}

// validateConditioning checks the parameters and featurewise nets.
func (s *Spec) validateConditioning() error {
	seen := map[string]bool{}
	for _, p := range s.Parameters {
		switch {
		case p.Name == "" || seen[p.Name] || slices.Contains(s.JetVars, p.Name):
			return fmt.Errorf("model %s: parameter %q is empty, repeated or a jet variable", s.Name, p.Name)
		case len(p.Train) == 0:
			return fmt.Errorf("model %s: parameter %s has no training values", s.Name, p.Name)
		case p.Prob != nil && len(p.Prob) != len(p.Train):
			return fmt.Errorf("model %s: parameter %s: %d probabilities for %d training values", s.Name, p.Name, len(p.Prob), len(p.Train))
		}
		seen[p.Name] = true
	}
	layers := map[FeaturewiseLayer]bool{}
	for _, f := range s.Featurewise {
		switch {
		case len(s.Parameters) == 0:
			return fmt.Errorf("model %s: featurewise transformations need parameters", s.Name)
		case f.Layer != FeaturewiseInput && f.Layer != FeaturewiseEncoder && f.Layer != FeaturewiseGlobal:
			return fmt.Errorf("model %s: featurewise layer %q is not input, encoder or global", s.Name, f.Layer)
		case layers[f.Layer]:
			return fmt.Errorf("model %s: two featurewise transformations of the %s layer", s.Name, f.Layer)
		case f.Scale == nil && f.Bias == nil:
			return fmt.Errorf("model %s: the featurewise transformation of the %s layer has neither a scale nor a bias network", s.Name, f.Layer)
		case f.Layer == FeaturewiseEncoder && !s.HasEncoder():
			return fmt.Errorf("model %s: featurewise transformations of the encoder need an encoder", s.Name)
		}
		layers[f.Layer] = true
	}
	return nil
}

// FeaturewiseWidth is the number of features the transformation of a
// layer scales and shifts: each init net's input width for the input
// layer (input names the group, or the jet dataset of a jet-only model),
// EmbedDim for the encoder's layers, Width for its output.
func (s *Spec) FeaturewiseWidth(layer FeaturewiseLayer, input string) int {
	switch layer {
	case FeaturewiseEncoder:
		return s.EmbedDim
	case FeaturewiseGlobal:
		return s.Width()
	}
	if s.JetInit != nil {
		return len(s.attached())
	}
	grp := s.group(input)
	n := len(grp.Vars)
	if !grp.NoJetVars {
		n += len(s.attached())
	}
	return n
}

// applyFeaturewise transforms x ([B, F] or [B, T, F]) with f from the
// parameters p [B, P], under scope name.
func applyFeaturewise(g *graph.Graph, name string, f *Featurewise, p, x *graph.Tensor) *graph.Tensor {
	defer g.Scope(name)()
	n := int(x.Dim(-1))
	net := func(scope string, d *FeaturewiseDense) *graph.Tensor {
		sizes := append(append([]int{}, d.Hidden...), n)
		y := nn.Activate(g, head(g, scope, []*graph.Tensor{g.Cast(p, x.DType())}, sizes, d.Activation), d.FinalActivation)
		if x.Rank() == 3 {
			y = g.Unsqueeze(y, 1)
		}
		return y
	}
	if f.Scale != nil {
		x = g.Mul(x, net("scale", f.Scale))
	}
	if f.Bias != nil {
		x = g.Add(x, net("bias", f.Bias))
	}
	if f.Norm {
		x = nn.LayerNorm(g, "norm", x)
	}
	return x
}

// encoderFeaturewise is the encoder's BeforeLayer hook of the encoder
// featurewise transformation, or nil.
func (s *Spec) encoderFeaturewise(params *graph.Tensor) func(*graph.Graph, int, *graph.Tensor) *graph.Tensor {
	f := s.featurewise(FeaturewiseEncoder)
	if f == nil {
		return nil
	}
	return func(g *graph.Graph, layer int, x *graph.Tensor) *graph.Tensor {
		return applyFeaturewise(g, "featurewise/layer"+strconv.Itoa(layer), f, params, x)
	}
}

// initParts returns the parts an init net reads, in Salt's order: the
// parameters (unless an input featurewise transformation takes them),
// the attached jet variables, the group's variables; with an input
// featurewise transformation, its transformation of their concatenation.
// jets is [B, 1, J] or nil, seq [B, T, V], for a constituent group; for
// the jet init net jets is [B, J] and seq nil.
func (s *Spec) initParts(g *graph.Graph, name string, in *inputs, jets, seq *graph.Tensor) []*graph.Tensor {
	var parts []*graph.Tensor
	for _, x := range []*graph.Tensor{jets, seq} {
		if x != nil {
			parts = append(parts, x)
		}
	}
	if in.params == nil {
		return parts
	}
	f := s.featurewise(FeaturewiseInput)
	if f == nil {
		p := in.params
		if seq != nil {
			p = g.Unsqueeze(p, 1)
		}
		return append([]*graph.Tensor{g.Cast(p, parts[0].DType())}, parts...)
	}
	x := parts[len(parts)-1]
	if len(parts) > 1 {
		// The jet variables broadcast over the constituents (dynamic in
		// number when deployed): added to zeros of the sequence's shape.
		pop := g.Scope("init/" + name + "/attach")
		zeros := g.Mul(g.Slice(seq, []int{2}, []int64{0}, []int64{1}), g.ScalarLike(seq, 0))
		x = g.Concat(-1, g.Add(jets, zeros), seq)
		pop()
	}
	return []*graph.Tensor{applyFeaturewise(g, "featurewise/input/"+name, f, in.params, x)}
}

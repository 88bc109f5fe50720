package model

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/nn"
)

// MuP is Salt's μP parametrisation of a model (Yang et al. 2022,
// "Tensor Programs V", arXiv:2203.03466, as the mup package implements
// it): the parts that ask for it (Input.MuP, JetInit.MuP,
// Encoder.MuP) are initialised as Salt initialises them, the encoder's
// attention and output projection scale as μP says, and AdamW scales
// the update of each parameter by its width multiplier (see
// Spec.MuPWidthMults).
type MuP struct {
	// BaseEmbedDim is the width of the base model (Salt's
	// mup_config.embed_dim.parameter_base, or the base shapes file's):
	// every parameter dimension that follows EmbedDim is "infinite" with
	// this base size, and its width multiplier is EmbedDim/BaseEmbedDim.
	BaseEmbedDim int
}

// WidthMult is EmbedDim over the base width: the mup package's
// width_mult of every parameter dimension that follows the embedding.
func (s *Spec) WidthMult() float64 {
	if s.MuP == nil || s.MuP.BaseEmbedDim <= 0 {
		return 1
	}
	return float64(s.EmbedDim) / float64(s.MuP.BaseEmbedDim)
}

// usesMuP reports whether any part of the model asks for μP.
func (s *Spec) usesMuP() bool {
	if s.Encoder.MuP || (s.JetInit != nil && s.JetInit.MuP) {
		return true
	}
	return slices.ContainsFunc(s.Inputs, func(in Input) bool { return in.MuP })
}

// validateMuP checks the μP settings.
func (s *Spec) validateMuP() error {
	if s.MuP != nil {
		if b := s.MuP.BaseEmbedDim; b <= 0 {
			return fmt.Errorf("model %s: the μP base embedding width must be positive, got %d", s.Name, b)
		}
		if h := s.Encoder.Heads; s.HasEncoder() && h > 0 && s.MuP.BaseEmbedDim%h != 0 {
			return fmt.Errorf("model %s: the μP base embedding width %d is not divisible by %d heads", s.Name, s.MuP.BaseEmbedDim, h)
		}
	}
	if !s.Encoder.MuP {
		return nil
	}
	switch {
	case !s.HasEncoder():
		return fmt.Errorf("model %s: μP encoder without encoder layers", s.Name)
	case s.Encoder.Kind == nn.LegacyKind:
		return fmt.Errorf("model %s: the legacy encoder has no μP parametrisation", s.Name)
	case s.Encoder.OutDim <= 0:
		return fmt.Errorf("model %s: a μP encoder needs an output projection (out_dim): its MuReadout is the last layer of the μP part, as Salt requires", s.Name)
	case s.Encoder.EdgeDim > 0:
		return fmt.Errorf("model %s: a μP encoder with edge features is not built", s.Name)
	case s.MuP == nil:
		return fmt.Errorf("model %s: a μP encoder needs the base widths (Salt's mup_config), which scale its readout and its updates", s.Name)
	}
	return nil
}

// muPInitNets gives the linear layers of the init nets that ask for μP
// Salt's μP initialisation (Dense with mup): weights N(0, 1/fan_out),
// biases zero. g holds the model's parameters, named init/<input>/…
func (s *Spec) muPInitNets(g *graph.Graph) {
	var prefixes []string
	for _, in := range s.Inputs {
		if in.MuP {
			prefixes = append(prefixes, "init/"+in.Name+"/")
		}
	}
	if s.JetInit != nil && s.JetInit.MuP {
		prefixes = append(prefixes, "init/"+s.JetInit.Name+"/")
	}
	for _, p := range g.Params() {
		name := p.Tensor.Name()
		if !slices.ContainsFunc(prefixes, func(pre string) bool { return strings.HasPrefix(name, pre) }) {
			continue
		}
		switch {
		case strings.HasSuffix(name, "/weight"):
			p.Init = nn.MuPDenseInit(int(p.Tensor.Dim(-1)))
		case strings.HasSuffix(name, "/bias"):
			p.Init = graph.InitZeros()
		}
	}
}

// MuPWidthMults returns the width multiplier of each of the model's
// matrix-like parameters, as the mup package's set_base_shapes and
// MuAdamW find them: the dimensions of a parameter that differ between
// the model built at the base width and at another width are infinite;
// a parameter with two infinite dimensions is matrix-like, and its width
// multiplier is that of its fan-in (its size over its base size). Other
// parameters are vector-like and absent from the map. A model without μP
// (MuP nil) has none.
func (s *Spec) MuPWidthMults() (map[string]float64, error) {
	if s.MuP == nil {
		return nil, nil
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	base := s.MuP.BaseEmbedDim
	shapes := make([]map[string]graph.Shape, 3)
	for i, width := range []int{s.EmbedDim, base, 2 * base} {
		m := *s
		m.EmbedDim = width
		sh, err := m.paramShapes()
		if err != nil {
			return nil, fmt.Errorf("model %s: μP base shapes at width %d: %w", s.Name, width, err)
		}
		shapes[i] = sh
	}
	mults := map[string]float64{}
	for _, name := range slices.Sorted(maps.Keys(shapes[0])) {
		full, b, delta := shapes[0][name], shapes[1][name], shapes[2][name]
		if len(b) != len(full) || len(delta) != len(full) {
			return nil, fmt.Errorf("model %s: μP: parameter %s changes rank with the width", s.Name, name)
		}
		// Our weights are stored [fan_in, fan_out]: the fan-in is the
		// first dimension, the one mup calls the last infinite one.
		var inf []int
		for k := range full {
			if b[k] != delta[k] {
				inf = append(inf, k)
			}
		}
		switch len(inf) {
		case 0, 1:
		case 2:
			k := inf[0]
			mults[name] = float64(full[k]) / float64(b[k])
		default:
			return nil, fmt.Errorf("model %s: μP: parameter %s has more than two dimensions that follow the width", s.Name, name)
		}
	}
	return mults, nil
}

// paramShapes builds the evaluation forward pass for one jet and returns
// the shape of each parameter.
func (s *Spec) paramShapes() (map[string]graph.Shape, error) {
	g := graph.New(s.Name + "_shapes")
	in := s.declareInputs(g, 1, false)
	s.forward(g, in, false)
	if err := g.Err(); err != nil {
		return nil, err
	}
	shapes := map[string]graph.Shape{}
	for _, p := range g.Params() {
		shapes[p.Tensor.Name()] = p.Tensor.Shape()
	}
	return shapes, nil
}

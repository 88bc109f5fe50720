package config

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/salt-ort/salt-ort/graph/model"
)

// MuPConfig is Salt's model.mup_config: the base widths of the μP
// parametrisation (Yang et al. 2022, arXiv:2203.03466) that the parts
// with mup = true ([[model.init_nets]] and [model.encoder]) are scaled
// against, and how AdamW scales their updates.
type MuPConfig struct {
	// BaseEmbedDim is the embedding width of the base model (Salt's
	// mup_config.embed_dim.parameter_base, the value its apply_to sets as
	// the init nets' output_size and the encoder's embed_dim). The width
	// multiplier of every dimension that follows the embedding is
	// embed_dim / base_embed_dim. Optional when shape_path is given.
	BaseEmbedDim int `toml:"base_embed_dim,omitzero"`
	// ShapePath is Salt's mup_config.shape_path: the directory in which
	// Salt's main_muP wrote the base shapes (the file storeshapes, in the
	// mup package's YAML form), or that file itself. When it is given the
	// base width is read from it: the base fan-in of the encoder's
	// attention input projections. Relative paths are resolved against
	// the configuration's directory.
	ShapePath string `toml:"shape_path,omitempty"`
	// LRScaling is how AdamW scales the matrix-like parameters (the
	// encoder's attention and feed-forward weights) by their width
	// multiplier w: "salt" (the default), as Salt trains — mup's MuAdamW
	// divides their learning rate by w and multiplies their weight decay
	// by w, but Salt's OneCycleLR then sets one learning rate for every
	// parameter group, so only the weight decay stays scaled; or "mup",
	// MuAdamW as the mup package means it: learning rate over w, weight
	// decay times w, the decay per step unchanged. Both are the same at
	// w = 1 (embed_dim = base_embed_dim, as in Salt's GN2_muP.yaml). Lion
	// and SGD are not scaled, as Salt scales AdamW alone.
	LRScaling string `toml:"lr_scaling,omitempty"`
}

// The μP learning-rate scalings.
const (
	MuPScalingSalt = "salt"
	MuPScalingMuP  = "mup"
)

// usesMuP reports whether a part of the model has mup = true.
func (m *Model) usesMuP() bool {
	if m.Encoder.MuP {
		return true
	}
	for _, n := range m.InitNets {
		if n.MuP {
			return true
		}
	}
	return false
}

// validateMuP checks the μP keys: an encoder with mup needs
// [model.mup_config], an output projection and no edge features; the
// base width must divide by the heads.
func (c *Config) validateMuP() error {
	m := &c.Model
	e := m.Encoder
	if e.MuP && e.Layers > 0 {
		switch {
		case m.MuPConfig == nil:
			return c.errorf("model.encoder.mup", "true needs [model.mup_config] with base_embed_dim (Salt's mup_config.embed_dim.parameter_base) or shape_path: the readout and the updates scale with embed_dim over the base width")
		case e.OutDim == 0:
			return c.errorf("model.encoder.mup", "true needs out_dim: the output projection is the μP readout, the last layer of the μP part (Salt asserts the same)")
		case e.EdgeEmbedDim > 0:
			return c.errorf("model.encoder.mup", "true with edge_embed_dim is not built in salt-ort: remove one of them")
		case e.Kind == "legacy":
			return c.errorf("model.encoder.mup", "Salt's legacy TransformerEncoder has no μP: remove mup, or use kind = \"transformer\"")
		}
	}
	for _, n := range m.EdgeInitNets {
		if n.MuP {
			return c.errorf("model.edge_init_nets.mup", "Salt has no μP edge init nets: remove mup from [[model.edge_init_nets]] %s", n.Input)
		}
	}
	mc := m.MuPConfig
	if mc == nil {
		return nil
	}
	switch mc.LRScaling {
	case "", MuPScalingSalt, MuPScalingMuP:
	default:
		return c.errorf("model.mup_config.lr_scaling", "must be %q (as Salt trains: only the weight decay scaled) or %q (MuAdamW's learning rates), got %q", MuPScalingSalt, MuPScalingMuP, mc.LRScaling)
	}
	base, err := c.MuPBaseEmbedDim()
	if err != nil {
		return err
	}
	if h := e.Heads; e.Layers > 0 && h > 0 && base%h != 0 {
		return c.errorf("model.mup_config.base_embed_dim", "the base width %d must be divisible by the encoder's heads %d, as the base model's embed_dim", base, h)
	}
	return nil
}

// MuPBaseEmbedDim returns the μP base embedding width: read from
// model.mup_config.shape_path when it is given (and then equal to
// base_embed_dim if that is given too), else base_embed_dim.
func (c *Config) MuPBaseEmbedDim() (int, error) {
	mc := c.Model.MuPConfig
	if mc == nil {
		return 0, nil
	}
	if mc.ShapePath == "" {
		if mc.BaseEmbedDim < 1 {
			return 0, c.errorf("model.mup_config.base_embed_dim", "must be at least 1, got %d: give the base model's embed_dim (Salt's mup_config.embed_dim.parameter_base), or shape_path", mc.BaseEmbedDim)
		}
		return mc.BaseEmbedDim, nil
	}
	path := c.Resolve(mc.ShapePath)
	base, err := ReadBaseShapes(path)
	if err != nil {
		return 0, c.errorf("model.mup_config.shape_path", "%v: give the directory Salt's main_muP wrote (holding storeshapes), or leave shape_path out and give base_embed_dim", err)
	}
	if mc.BaseEmbedDim != 0 && mc.BaseEmbedDim != base {
		return 0, c.errorf("model.mup_config.base_embed_dim", "%d, but the base shapes in %s say %d: remove one of them", mc.BaseEmbedDim, path, base)
	}
	return base, nil
}

// baseShapesFile is the name of the base shapes file in Salt's
// shape_path directory (salt/utils/muP_utils/configuration_muP.py).
const baseShapesFile = "storeshapes"

// ReadBaseShapes reads the mup package's base shapes file (YAML: each
// parameter's name and its base shape, null for a dimension that does
// not follow the width), or the file storeshapes in the directory path,
// as Salt's instantiate_mup loads it, and returns the base embedding
// width: the base fan-in of the encoder's attention input projections
// (…layers.N….in_proj_weight, shape [3·D, D]), which must agree.
func ReadBaseShapes(path string) (int, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, baseShapesFile)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("reading μP base shapes: %w", err)
	}
	var shapes map[string][]*int
	if err := yaml.Unmarshal(raw, &shapes); err != nil {
		return 0, fmt.Errorf("reading μP base shapes %s: %w", path, err)
	}
	names := make([]string, 0, len(shapes))
	for name := range shapes {
		if strings.Contains(name, "layers.") && strings.HasSuffix(name, "in_proj_weight") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return 0, fmt.Errorf("μP base shapes %s: no encoder attention (…layers.N…in_proj_weight) to read the base width from", path)
	}
	base := 0
	for _, name := range names {
		sh := shapes[name]
		if len(sh) != 2 || sh[1] == nil || *sh[1] < 1 {
			return 0, fmt.Errorf("μP base shapes %s: %s is %s, want [3·D, D] with D the base width", path, name, formatShape(sh))
		}
		if base != 0 && *sh[1] != base {
			return 0, fmt.Errorf("μP base shapes %s: %s has base width %d, others %d", path, name, *sh[1], base)
		}
		base = *sh[1]
	}
	return base, nil
}

// formatShape writes a base shape as the file does, null for a finite
// dimension.
func formatShape(sh []*int) string {
	parts := make([]string, len(sh))
	for i, d := range sh {
		parts[i] = "null"
		if d != nil {
			parts[i] = fmt.Sprint(*d)
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// muPSpec returns the μP settings of the model Spec: the base widths,
// when [model.mup_config] is given.
func (c *Config) muPSpec() (*model.MuP, error) {
	if c.Model.MuPConfig == nil {
		return nil, nil
	}
	base, err := c.MuPBaseEmbedDim()
	if err != nil {
		return nil, err
	}
	return &model.MuP{BaseEmbedDim: base}, nil
}

package saltimport

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph/model"
)

// muPTargets are the model parts and keys a mup_config entry may scale:
// the embedding width, which is all salt-ort's μP follows.
var muPTargets = map[string]string{"init_nets": "output_size", "encoder": "embed_dim"}

// noMuP refuses dense_config.mup where salt-ort has no μP (where names
// the networks).
func (c *converter) noMuP(dc, where string) {
	if c.boolean(dc+".mup", false) {
		c.problem(dc+".mup", "true: salt-ort has no μP initialisation of %s (Salt's GN2_muP.yaml sets it on the init nets and the encoder)", where)
	}
}

// convertMuP carries Salt's model.mup_config: its entry that scales the
// embedding width (apply_to init_nets' output_size and the encoder's
// embed_dim) gives base_embed_dim from its parameter_base; shape_path, when
// the directory or file is found, is carried (absolute) and the base width
// read from it.
func (c *converter) convertMuP(cfg *config.Config) {
	const p = "model.mup_config"
	v, _ := c.get(p)
	if empty(v) {
		return
	}
	mc, ok := v.(map[string]any)
	if !ok {
		c.problem(p, "must be a mapping of shape_path and the parameters μP scales")
		return
	}
	out := &config.MuPConfig{}
	keys := make([]string, 0, len(mc))
	for k := range mc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "shape_path" {
			continue
		}
		base, ok := c.muPEntry(p + "." + k)
		if !ok {
			continue
		}
		if out.BaseEmbedDim != 0 && base != out.BaseEmbedDim {
			c.problem(p+"."+k+".parameter_base", "%d, but another entry gives the embedding's base %d", base, out.BaseEmbedDim)
			continue
		}
		out.BaseEmbedDim = base
	}
	if sp := c.str(p + ".shape_path"); sp != "" {
		found := ""
		for _, cand := range []string{sp, filepath.Join(c.dir, sp)} {
			if _, err := os.Stat(cand); err == nil {
				found = abs(cand)
				break
			}
		}
		if found == "" {
			c.note(p+".shape_path", "%s is not here (Salt's main_muP writes it before training); the base width is embed_dim.parameter_base, %d, from which the same base shapes follow", sp, out.BaseEmbedDim)
		} else {
			out.ShapePath = found
		}
	}
	if out.BaseEmbedDim == 0 && out.ShapePath == "" {
		c.problem(p, "gives no base embedding width: salt-ort needs an entry with apply_to [init_nets, encoder], parameter_name [output_size, embed_dim] and parameter_base, or the shape_path Salt's main_muP wrote")
		return
	}
	c.note(p, "μP: AdamW scales as Salt trains (lr_scaling = \"salt\"): Salt's OneCycleLR gives every parameter group the same learning rate, so of MuAdamW's scaling only the weight decay's remains; set lr_scaling = \"mup\" for MuAdamW's learning rates")
	cfg.Model.MuPConfig = out
}

// muPEntry reads one entry of mup_config (apply_to, parameter_name,
// parameter_base, parameter_delta) and returns its parameter_base; it
// must scale the embedding width alone.
func (c *converter) muPEntry(e string) (int, bool) {
	apply, _ := c.get(e + ".apply_to")
	names, _ := c.get(e + ".parameter_name")
	al, _ := apply.([]any)
	nl, _ := names.([]any)
	if len(al) == 0 || len(al) != len(nl) {
		c.problem(e, "needs apply_to and parameter_name, one name per model part, as Salt asserts")
		return 0, false
	}
	var parts []string
	for i, a := range al {
		part, _ := a.(string)
		name, _ := nl[i].(string)
		if want, ok := muPTargets[part]; !ok || name != want {
			c.problem(e+".apply_to", "%s.%s: salt-ort's μP follows the embedding width alone (init_nets.output_size and encoder.embed_dim)", part, name)
			return 0, false
		}
		parts = append(parts, part)
	}
	if !slices.Contains(parts, "encoder") {
		c.problem(e+".apply_to", "%v: the embedding width is the encoder's embed_dim too; apply it to [init_nets, encoder]", parts)
		return 0, false
	}
	base := c.integer(e+".parameter_base", 0)
	if base < 1 {
		c.problem(e+".parameter_base", "must be a positive width, got %d", base)
		return 0, false
	}
	if d := c.integer(e+".parameter_delta", 0); d < 1 || d == base {
		c.problem(e+".parameter_delta", "%d: must be a positive width other than parameter_base %d, as mup's make_base_shapes needs", d, base)
		return 0, false
	}
	return base, true
}

// muAdamWOrder returns the model's parameters (Salt's names, in the model's
// order) in the order of the parameter groups mup's MuAdamW made of them,
// which a checkpoint's optimizer state follows: one group per width
// multiplier of the matrix-like parameters, in the order of their first
// parameter, then the vector-like parameters. It checks the groups' sizes,
// and that each group's weight decay is the last group's times its width
// multiplier, as MuAdamW sets it.
func muAdamWOrder(order []string, groups []ParamGroup, bySalt map[string]Param, spec model.Spec) ([]string, error) {
	if spec.MuP == nil {
		return nil, fmt.Errorf("%d parameter groups: Salt's AdamW has one, its MuAdamW several, but the configuration has no model.mup_config", len(groups))
	}
	mults, err := spec.MuPWidthMults()
	if err != nil {
		return nil, err
	}
	var widths []float64
	byWidth := map[float64][]string{}
	var vector []string
	for _, name := range order {
		w, ok := mults[bySalt[name].Ort]
		if !ok {
			vector = append(vector, name)
			continue
		}
		if _, seen := byWidth[w]; !seen {
			widths = append(widths, w)
		}
		byWidth[w] = append(byWidth[w], name)
	}
	var out []string
	sizes := make([]int, 0, len(widths)+1)
	for _, w := range widths {
		out = append(out, byWidth[w]...)
		sizes = append(sizes, len(byWidth[w]))
	}
	out = append(out, vector...)
	sizes = append(sizes, len(vector))
	got := make([]int, len(groups))
	for i, g := range groups {
		got[i] = g.Size
	}
	if !slices.Equal(got, sizes) {
		return nil, fmt.Errorf("parameter groups of %v parameters, but MuAdamW groups this model's as %v (matrix-like by width multiplier %v, then the others): was it trained with these base widths?", got, sizes, widths)
	}
	decay := groups[len(groups)-1].Settings["weight_decay"]
	for i, w := range widths {
		if got, want := groups[i].Settings["weight_decay"], decay*w; math.Abs(got-want) > 1e-9*math.Abs(want) {
			return nil, fmt.Errorf("param_groups[%d].weight_decay: %g, but MuAdamW gives the matrix-like parameters of width multiplier %g the weight decay %g", i, got, w, want)
		}
	}
	return out, nil
}

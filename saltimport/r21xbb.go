package saltimport

import (
	"github.com/salt-ort/salt-ort/config"
)

// convertR21Xbb converts Salt's R21Xbb (salt.models.R21Xbb, the model of
// legacy/Baseline_Xbb.yaml): the one constituent group, normalised (an
// empty slot holding the normalised zero, as Salt's), is flattened to
// max_len × its variables and read by every task head, with no init nets,
// encoder or pooling network. In salt-ort that is pooling kind "flatten".
func (c *converter) convertR21Xbb(cfg *config.Config, ia string) {
	m, d := &cfg.Model, &cfg.Data
	// convertData made one init net per constituent dataset to carry its
	// length; R21Xbb has none.
	groups := m.InitNets
	m.InitNets = nil
	m.Encoder = config.Encoder{}
	if len(groups) != 1 {
		var names []string
		for _, g := range groups {
			names = append(names, g.Input)
		}
		c.problem("data.variables", "R21Xbb flattens one constituent group, the configuration has %d (%v): keep the jets and one group, e.g. tracks", len(groups), names)
		return
	}
	g := groups[0]
	if len(d.Variables[config.GlobalVariables]) > 0 {
		c.problem("data.variables.global", "R21Xbb's heads read the flattened %s alone; remove the global variables", g.Input)
	}
	c.note(ia, "Salt's R21Xbb reads its input as inputs[\"track\"]; salt-ort flattens the configuration's one constituent group, %s (max_len %d), and does not read the jet variables, as R21Xbb does not", g.Input, g.MaxLen)
	m.Pooling = config.Pooling{Kind: "flatten", Input: g.Input, MaxLen: g.MaxLen}
	width := g.MaxLen * len(d.Variables[g.Input])
	m.EmbedDim = width
	c.convertTasks(cfg, ia+".tasks", width, 0)
	for _, t := range m.Tasks {
		if t.Input != "" && t.Input != d.JetDataset {
			c.problem(ia+".tasks", "task %s reads %q: R21Xbb feeds the flattened %s to jet tasks alone (Salt warns and runs a jet task instead)", t.Name, t.Input, g.Input)
		}
	}
}

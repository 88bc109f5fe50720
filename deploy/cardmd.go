package deploy

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/salt-ort/salt-ort/evaluate"
)

// Markdown writes the model card as the Markdown file exported beside the
// model.
func (c *Card) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", c.Model)
	fmt.Fprintf(&b, "`%s` (SHA-256 `%s`), exported by salt-ort %s (%s interface, ONNX opset %d). ", c.ModelFile, c.SHA256, c.SaltORTVersion, c.Interface, c.Opset)
	b.WriteString("It reads raw (unnormalised) variables; the normalisation below is inside the model.\n")
	for _, section := range []func(*strings.Builder){c.intendedUse, c.inputs, c.outputs, c.athena, c.provenance, c.performance, c.validation, c.releases, c.attributions} {
		section(&b)
	}
	b.WriteString("\nThe full training configuration is in the model's `salt_ort` metadata; this card is also in JSON beside the model (`" + strings.TrimSuffix(c.ModelFile, ".onnx") + ".card.json`).\n")
	return b.String()
}

func (c *Card) intendedUse(b *strings.Builder) {
	u := c.IntendedUse
	b.WriteString("\n## Intended use and domain\n\n")
	for _, t := range u.Tasks {
		fmt.Fprintf(b, "- task `%s` (%s", t.Name, t.Kind)
		if t.Input != "" {
			fmt.Fprintf(b, " of the %s", t.Input)
		}
		if len(t.Classes) > 0 {
			fmt.Fprintf(b, "): classes %s\n", strings.Join(t.Classes, ", "))
		} else {
			b.WriteString(")\n")
		}
	}
	if len(u.Selections) == 0 {
		b.WriteString("- selections: none (every jet of the training files)\n")
	}
	for _, ds := range sortedKeys(u.Selections) {
		fmt.Fprintf(b, "- selections on `%s`: %s\n", ds, quoteAll(u.Selections[ds]))
	}
	fmt.Fprintf(b, "\nThe kinematic range of the %d training jets (after the selections):\n\n", u.Jets)
	b.WriteString("| variable | field | unit | min |")
	for _, q := range quantiles {
		fmt.Fprintf(b, " %g%% |", 100*q)
	}
	b.WriteString(" max |\n|---|---|---|---|" + strings.Repeat("---|", len(quantiles)) + "---|\n")
	for _, r := range u.Kinematics {
		fmt.Fprintf(b, "| %s | `%s`%s | %s | %.6g |", strings.ReplaceAll(r.Variable, "|", "\\|"), r.Field, map[bool]string{true: "", false: " (not an input)"}[r.Input], r.Unit, r.Min)
		for _, q := range r.Quantiles {
			fmt.Fprintf(b, " %.6g |", q)
		}
		fmt.Fprintf(b, " %.6g |\n", r.Max)
	}
	if len(u.Kinematics) > 0 && u.Kinematics[0].Sampled < u.Jets {
		fmt.Fprintf(b, "\nMinimum and maximum are over every jet; the quantiles over a uniform sample of %d of them (reservoir sampling, fixed seed).\n", u.Kinematics[0].Sampled)
	}
	for _, n := range u.Notes {
		fmt.Fprintf(b, "\nNote: %s.\n", n)
	}
}

func (c *Card) inputs(b *strings.Builder) {
	b.WriteString("\n## Inputs\n\nUnits are those of ATLAS's flavour-tagging files, from the variable names (the files carry none); the model normalises each variable as (x − mean)/std with the values below, from the run's norm dictionary.\n")
	for _, in := range c.Inputs {
		fmt.Fprintf(b, "\n### `%s` float32 [%s] (from `%s`)\n\n| # | variable | unit | mean | std |\n|---|---|---|---|---|\n", in.Name, strings.Join(in.Shape, ", "), in.Group)
		for i, v := range in.Variables {
			fmt.Fprintf(b, "| %d | `%s` | %s | %.8g | %.8g |\n", i, v.Name, v.Unit, v.Mean, v.Std)
		}
		if in.Valid != "" {
			fmt.Fprintf(b, "\nValid mask: `%s` (bool, false for padding).\n", in.Valid)
		}
	}
}

func (c *Card) outputs(b *strings.Builder) {
	b.WriteString("\n## Outputs\n\n| name | type | shape | meaning |\n|---|---|---|---|\n")
	for _, o := range c.Outputs {
		fmt.Fprintf(b, "| `%s` | %s | [%s] | %s |\n", o.Name, o.Type, strings.Join(o.Shape, ", "), o.Meaning)
	}
	for _, d := range c.Discriminants {
		fmt.Fprintf(b, "\n%s = %s", d.Name, d.Formula)
		if d.Fraction != nil {
			fmt.Fprintf(b, ", with f_c = %g (%s).\n", *d.Fraction, d.FractionSource)
		} else {
			fmt.Fprintf(b, ": %s.\n", d.FractionSource)
		}
	}
}

func (c *Card) athena(b *strings.Builder) {
	if len(c.AthenaWarnings) == 0 {
		return
	}
	b.WriteString("\n## ATLAS's loader\n\n")
	for _, w := range c.AthenaWarnings {
		fmt.Fprintf(b, "- %s\n", w)
	}
}

func (c *Card) provenance(b *strings.Builder) {
	b.WriteString("\n## Training data provenance\n\n")
	fmt.Fprintf(b, "- checkpoint `%s`, SHA-256 `%s`\n", c.Checkpoint.Name, c.Checkpoint.SHA256)
	for _, sd := range c.Data {
		for _, f := range sd.Files {
			fmt.Fprintf(b, "- %s file `%s`, %d bytes, SHA-256 `%s`\n", sd.Split, f.Name, f.Bytes, f.SHA256)
		}
	}
	b.WriteString("\n| split | jets in the files | passing the selections | read |")
	var classes []string
	for _, sd := range c.Data {
		if len(sd.Classes) > len(classes) {
			classes = sd.Classes
		}
	}
	for _, cl := range classes {
		fmt.Fprintf(b, " %s |", cl)
	}
	b.WriteString("\n|---|---|---|---|" + strings.Repeat("---|", len(classes)) + "\n")
	for _, sd := range c.Data {
		read := fmt.Sprint(sd.Jets)
		if sd.Limit > 0 {
			read += fmt.Sprintf(" (limit %d)", sd.Limit)
		}
		fmt.Fprintf(b, "| %s | %d | %d | %s |", sd.Split, sd.FileJets, sd.Selected, read)
		for i := range classes {
			if i < len(sd.Counts) {
				fmt.Fprintf(b, " %d |", sd.Counts[i])
			} else {
				b.WriteString(" |")
			}
		}
		b.WriteString("\n")
	}
	for _, sd := range c.Data {
		if sd.Unlabelled > 0 {
			fmt.Fprintf(b, "\n%d jets of the %s split have no class of task %s and were left out of its loss.\n", sd.Unlabelled, sd.Split, sd.Task)
		}
	}
}

func (c *Card) performance(b *strings.Builder) {
	b.WriteString("\n## Performance on the test set\n\n")
	if len(c.Performance) == 0 {
		fmt.Fprintf(b, "None recorded: %s.\n", c.PerformanceNote)
		return
	}
	fmt.Fprintf(b, "From `salt-ort eval` of the exported checkpoint. Uncertainties are statistical: the AUC's is the %s, the rejection's %s.\n", AUCMethod, RejectionMethod)
	for _, p := range c.Performance {
		sha := "not found when exporting"
		if p.SHA256 != "" {
			sha = "SHA-256 `" + p.SHA256 + "`"
		}
		var jets []string
		for _, k := range sortedKeys(p.Jets) {
			jets = append(jets, fmt.Sprintf("%s %d", k, p.Jets[k]))
		}
		fmt.Fprintf(b, "\n### `%s` (%s)\n\nf_c = %g; jets: %s\n\n", p.File, sha, p.FC, strings.Join(jets, ", "))
		b.WriteString("| background | jets | AUC |")
		var effs []float64
		for _, bg := range p.Backgrounds {
			for _, wp := range bg.WorkingPoints {
				if !slices.Contains(effs, wp.Efficiency) {
					effs = append(effs, wp.Efficiency)
				}
			}
		}
		for _, e := range effs {
			fmt.Fprintf(b, " rejection at %g%% %s-eff |", 100*e, p.Signal)
		}
		b.WriteString("\n|---|---|---|" + strings.Repeat("---|", len(effs)) + "\n")
		for _, bg := range p.Backgrounds {
			fmt.Fprintf(b, "| %s | %d | %s |", bg.Name, bg.Jets, plusMinus(float64(bg.AUC), float64(bg.AUCUncertainty), "%.3f ± %.3f"))
			for _, e := range effs {
				i := slices.IndexFunc(bg.WorkingPoints, func(wp evaluate.WorkingPoint) bool { return wp.Efficiency == e })
				if i < 0 {
					b.WriteString(" – |")
					continue
				}
				wp := bg.WorkingPoints[i]
				format := "%.1f ± %.1f" // as eval prints rejections
				if float64(wp.Rejection) >= 100 {
					format = "%.0f ± %.0f"
				}
				fmt.Fprintf(b, " %s |", plusMinus(float64(wp.Rejection), float64(wp.Uncertainty), format))
			}
			b.WriteString("\n")
		}
	}
}

func (c *Card) validation(b *strings.Builder) {
	v := c.Validation
	b.WriteString("\n## Validation\n\n")
	fmt.Fprintf(b, "The validation vectors `%s` (SHA-256 `%s`) hold %d jets of the validation split with the outputs of the training-time evaluation graph. Check that the model reproduces them within %g:\n\n",
		v.Vectors.Name, v.Vectors.SHA256, v.Jets, v.Tolerance)
	fmt.Fprintf(b, "```sh\n%s\n%s    # also a generated C++ program, bit for bit with Go\n", v.Command, v.CppCommand)
	if v.ReleasesCommand != "" {
		fmt.Fprintf(b, "%s\n", v.ReleasesCommand)
	}
	b.WriteString("```\n")
}

func (c *Card) releases(b *strings.Builder) {
	rs := c.Validation.Runtimes
	if len(rs) == 0 {
		return
	}
	b.WriteString("\n## ONNX Runtime releases\n\n")
	fmt.Fprintf(b, "The validation vectors run in each release (one thread), compared with the vectors and with ONNX Runtime %s's outputs:\n\n", rs[0].Reference)
	b.WriteString("| release | reproduces the vectors | largest difference from the vectors | from " + rs[0].Reference + " |\n|---|---|---|---|\n")
	for _, r := range rs {
		if r.Error != "" {
			fmt.Fprintf(b, "| %s | no: %s | | |\n", r.Version, strings.ReplaceAll(r.Error, "|", "/"))
			continue
		}
		fmt.Fprintf(b, "| %s | %s | %.3g | %.3g |\n", r.Version, map[bool]string{true: "yes", false: "NO"}[r.Reproduced], r.MaxAbs, r.FromReference)
	}
}

func (c *Card) attributions(b *strings.Builder) {
	a := c.Attributions
	if a == nil {
		return
	}
	b.WriteString("\n## Feature attributions\n\n")
	fmt.Fprintf(b, "Integrated gradients (`salt-ort explain`) of `%s` over the %s jets of `%s` (%d jets attributed, %d Gauss–Legendre steps, %d sampled baselines per jet, %d–%d constituents), with respect to the normalised inputs. ",
		a.Output, a.RankJets, a.File, a.Jets, a.Steps, a.Baselines, a.MinConst, a.MaxConst)
	fmt.Fprintf(b, "Completeness (Σ attributions = output − baseline output) holds within %.3g for %d of %d jets (tolerance %g). ", a.MaxDelta, a.Jets-a.Failed, a.Jets, a.Tolerance)
	if a.BaseAUC != 0 {
		fmt.Fprintf(b, "The permutation importance is the drop of the b-vs-light AUC (%.4f) when the variable is shuffled across jets.\n\n", a.BaseAUC)
	} else {
		b.WriteString("\n\n")
	}
	b.WriteString("| rank | input | variable | mean \\|attribution\\| | AUC drop when shuffled |\n|---|---|---|---|---|\n")
	for i, rk := range a.Ranking {
		drop := ""
		if rk.AUCDrop != nil {
			drop = fmt.Sprintf("%.4f", *rk.AUCDrop)
		}
		fmt.Fprintf(b, "| %d | `%s` | `%s` | %.4g | %s |\n", i+1, rk.Input, rk.Var, rk.Score, drop)
	}
}

// plusMinus prints v ± u in format; "–" for NaN, "inf" for an infinite
// v.
func plusMinus(v, u float64, format string) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case math.IsInf(v, 1):
		return "inf (no jet passes)"
	}
	return fmt.Sprintf(format, v, u)
}

func quoteAll(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = "`" + x + "`"
	}
	return strings.Join(q, ", ")
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

package deploy

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/salt-ort/salt-ort/explain"
)

// cardAttributions returns the model card's section on the feature
// attributions `salt-ort explain` wrote into the run's explain directory:
// the variables ranked by integrated gradients beside their permutation
// importance. It is "" for a run never explained.
func cardAttributions(runDir string) (string, error) {
	r, ok, err := explain.ReadRanking(filepath.Join(runDir, "explain"))
	if err != nil || !ok {
		return "", err
	}
	perm := map[string]float64{}
	for _, p := range r.Permutation {
		perm[p.Group+"."+p.Var] = p.Score
	}
	jets := 0
	for _, f := range r.Flavours {
		if f.Flavour == "all" {
			jets = f.Jets
		}
	}
	var b strings.Builder
	b.WriteString("\n## Feature attributions\n\n")
	fmt.Fprintf(&b, "Integrated gradients (`salt-ort explain`) of `%s` over the %s jets of `%s` (%d jets attributed, %d Gauss–Legendre steps, %d sampled baselines per jet, %d–%d constituents), with respect to the normalised inputs. ",
		r.RankOutput, r.RankJets, filepath.Base(r.File), jets, r.Steps, r.NumBaselines, r.MinConst, r.MaxConst)
	fmt.Fprintf(&b, "Completeness (Σ attributions = output − baseline output) holds within %.3g for %d of %d jets (tolerance %g). ", r.MaxDelta, jets-r.Failed, jets, r.Tolerance)
	if len(r.Permutation) > 0 {
		fmt.Fprintf(&b, "The permutation importance is the drop of the b-vs-light AUC (%.4f) when the variable is shuffled across jets.\n\n", r.BaseAUC)
	} else {
		b.WriteString("\n\n")
	}
	b.WriteString("| rank | input | variable | mean \\|attribution\\| | AUC drop when shuffled |\n|---|---|---|---|---|\n")
	for i, rk := range r.Ranking {
		drop := ""
		if d, ok := perm[rk.Group+"."+rk.Var]; ok {
			drop = fmt.Sprintf("%.4f", d)
		}
		fmt.Fprintf(&b, "| %d | `%s` | `%s` | %.4g | %s |\n", i+1, rk.Group, rk.Var, rk.Score, drop)
	}
	return b.String(), nil
}

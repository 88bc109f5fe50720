package deploy

import (
	"path/filepath"

	"github.com/salt-ort/salt-ort/explain"
)

// CardAttributions is the model card's account of the feature
// attributions `salt-ort explain` wrote into the run's explain directory.
type CardAttributions struct {
	Output    string `json:"output"`    // the output ranked, "<task>/<class>"
	RankJets  string `json:"rank_jets"` // the jets ranked over
	File      string `json:"file"`      // the file attributed
	Jets      int    `json:"jets"`      // jets attributed
	Steps     int    `json:"steps"`     // Gauss–Legendre steps
	Baselines int    `json:"baselines"` // sampled baselines per jet
	MinConst  int    `json:"min_constituents"`
	MaxConst  int    `json:"max_constituents"`
	// Completeness: the largest |Σ attributions − (output − baseline
	// output)|, the jets over Tolerance.
	MaxDelta  float64 `json:"max_abs_delta"`
	Failed    int     `json:"jets_over_tolerance"`
	Tolerance float64 `json:"tolerance"`
	// BaseAUC is the b-vs-light AUC the permutation importance starts
	// from (0 without one).
	BaseAUC float64           `json:"auc,omitempty"`
	Ranking []AttributionRank `json:"ranking"`
}

// AttributionRank is one variable's mean |attribution| and, where
// computed, the AUC drop when it is shuffled across jets.
type AttributionRank struct {
	Input   string   `json:"input"`
	Var     string   `json:"variable"`
	Score   float64  `json:"mean_abs_attribution"`
	AUCDrop *float64 `json:"auc_drop,omitempty"`
}

// cardAttributions reads the ranking `salt-ort explain` wrote into the
// run's explain directory: the variables ranked by integrated gradients
// beside their permutation importance. It is nil for a run never
// explained.
func cardAttributions(runDir string) (*CardAttributions, error) {
	r, ok, err := explain.ReadRanking(filepath.Join(runDir, "explain"))
	if err != nil || !ok {
		return nil, err
	}
	perm := map[string]float64{}
	for _, p := range r.Permutation {
		perm[p.Group+"."+p.Var] = p.Score
	}
	a := &CardAttributions{Output: r.RankOutput, RankJets: r.RankJets, File: filepath.Base(r.File), Steps: r.Steps, Baselines: r.NumBaselines,
		MinConst: r.MinConst, MaxConst: r.MaxConst, MaxDelta: r.MaxDelta, Failed: r.Failed, Tolerance: r.Tolerance}
	for _, f := range r.Flavours {
		if f.Flavour == "all" {
			a.Jets = f.Jets
		}
	}
	if len(r.Permutation) > 0 {
		a.BaseAUC = r.BaseAUC
	}
	for _, rk := range r.Ranking {
		ar := AttributionRank{Input: rk.Group, Var: rk.Var, Score: rk.Score}
		if d, ok := perm[rk.Group+"."+rk.Var]; ok {
			ar.AUCDrop = &d
		}
		a.Ranking = append(a.Ranking, ar)
	}
	return a, nil
}

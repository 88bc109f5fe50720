package explain

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/salt-ort/salt-ort/flavour"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/metrics"
)

// Report is what Run computed. The per-jet arrays stay out of the JSON
// summary; the HDF5 file holds them.
type Report struct {
	File       string   `json:"file"`
	Checkpoint string   `json:"checkpoint"`
	Outputs    []string `json:"outputs"` // "<task>/<class or target>"
	Groups     []Group  `json:"inputs"`
	// Steps, NumBaselines and the constituent window are the options the
	// attributions were computed with.
	Steps        int `json:"steps"`
	NumBaselines int `json:"baselines"`
	MinConst     int `json:"min_constituents"`
	MaxConst     int `json:"max_constituents"`
	JetsRead     int `json:"jets_read"`

	// Completeness: Δ = Σ attributions − (F_k(x) − mean F_k(x')) of each
	// attributed jet and output; Failed counts the jets with some |Δ|
	// above Tolerance·max(1, |F_k(x) − mean F_k(x')|) (absolute for
	// probabilities, relative for regression targets that change by more
	// than 1).
	Tolerance float64 `json:"tolerance"`
	MaxDelta  float64 `json:"max_abs_delta"`
	Failed    int     `json:"jets_over_tolerance"`

	// Flavours are the per-flavour summaries (plus "all").
	Flavours []FlavourMeans `json:"flavours"`
	// Ranking orders the input variables by Score, the mean |attribution|
	// of Output over the jets of RankJets (summed over constituent
	// positions).
	RankOutput string `json:"ranking_output"`
	RankJets   string `json:"ranking_jets"`
	Ranking    []Rank `json:"ranking"`
	// Permutation is the AUC drop (b against light, D_b) when each
	// variable is shuffled across jets; BaseAUC the unshuffled AUC. Empty
	// without a flavour task with b and light classes.
	BaseAUC     float64 `json:"auc,omitempty"`
	Permutation []Rank  `json:"permutation,omitempty"`

	// Written are the files written.
	Written []string `json:"-"`

	jets      []int         // attributed jets (indices into the jets read)
	labels    []int         // label of every jet read
	classes   []string      // labels' class names
	attr      []Attribution // per attributed jet
	preds     [][]float64   // outputs of every jet read
	baseOut   [][]float64   // per attributed jet: mean baseline output
	delta     [][]float64
	baselines Baselines
	sizes     []int
	js        *Jets
}

// FlavourMeans are the mean |attribution| over the attributed jets of one
// flavour: Vars[output][group][variable] and, per constituent group,
// Positions[output][group][position] (summed over the variables).
type FlavourMeans struct {
	Flavour   string        `json:"flavour"`
	Jets      int           `json:"jets"`
	Vars      [][][]float64 `json:"mean_abs_per_variable"`
	Positions [][][]float64 `json:"mean_abs_per_position"`
}

// Rank is one input variable's importance.
type Rank struct {
	Group string  `json:"input"`
	Var   string  `json:"variable"`
	Score float64 `json:"score"`
}

// attribute computes the integrated gradients of the jets read.
func attribute(a *attributor, js *Jets, groups []Group, labels []int, cls model.Task, o Options) (*Report, error) {
	lo, hi := o.MinConst, o.MaxConst
	if len(groups) < 2 { // jet variables only: no constituent window
		lo, hi = 0, 0
	}
	preds, err := a.predict(js)
	if err != nil {
		return nil, err
	}
	sizes := counts(js, groups)
	base := chooseBaselines(preds, a.net, sizes, cls.Name, lo, hi, o.Baselines)
	q, err := GaussLegendre(o.Steps)
	if err != nil {
		return nil, err
	}
	r := &Report{Groups: groups, Steps: o.Steps, NumBaselines: o.Baselines, MinConst: lo, MaxConst: hi, JetsRead: js.N,
		Tolerance: o.Tolerance, labels: labels, classes: cls.Classes, preds: preds, baselines: base, sizes: sizes, js: js}
	for _, out := range a.net.Outputs {
		r.Outputs = append(r.Outputs, out.Task+"/"+out.Name)
	}
	for j := 0; j < js.N; j++ {
		bs := base.BySize[sizes[j]]
		if len(bs) == 0 {
			continue
		}
		at, err := a.integrate(js, j, js, bs, q)
		if err != nil {
			return nil, err
		}
		bo := make([]float64, len(a.net.Outputs))
		d := make([]float64, len(a.net.Outputs))
		over := false
		for k := range bo {
			for _, b := range bs {
				bo[k] += preds[b][k] / float64(len(bs))
			}
			change := preds[j][k] - bo[k]
			d[k] = sum(at[k]) - change
			r.MaxDelta = math.Max(r.MaxDelta, math.Abs(d[k]))
			over = over || !(math.Abs(d[k]) <= o.Tolerance*math.Max(1, math.Abs(change)))
		}
		if over {
			r.Failed++
		}
		r.jets = append(r.jets, j)
		r.attr = append(r.attr, at)
		r.baseOut = append(r.baseOut, bo)
		r.delta = append(r.delta, d)
	}
	if len(r.jets) == 0 {
		return nil, fmt.Errorf("explain: %s: of the %d jets read, %w [%d, %d] (--min-constituents, --max-constituents): read more jets (--num-jets) or widen the window",
			o.File, js.N, errNoJets, lo, hi)
	}
	r.summarise()
	return r, nil
}

// sum adds the attributions of one output and input set.
func sum(per [][]float64) float64 {
	s := 0.0
	for _, v := range per {
		for _, x := range v {
			s += x
		}
	}
	return s
}

// flavourName is the class name of label l, "unknown" outside the classes.
func (r *Report) flavourName(l int) string {
	if l >= 0 && l < len(r.classes) {
		return r.classes[l]
	}
	return "unknown"
}

// summarise computes the per-flavour means and the ranking.
func (r *Report) summarise() {
	names := append([]string{"all"}, r.classes...)
	for _, fl := range names {
		m := FlavourMeans{Flavour: fl}
		for range r.Outputs {
			var vars, pos [][]float64
			for _, g := range r.Groups {
				vars = append(vars, make([]float64, len(g.Vars)))
				pos = append(pos, make([]float64, g.MaxLen))
			}
			m.Vars, m.Positions = append(m.Vars, vars), append(m.Positions, pos)
		}
		for i, j := range r.jets {
			if fl != "all" && r.flavourName(r.labels[j]) != fl {
				continue
			}
			m.Jets++
			r.accumulate(&m, r.attr[i])
		}
		if m.Jets == 0 {
			continue
		}
		scale(m.Vars, 1/float64(m.Jets))
		scale(m.Positions, 1/float64(m.Jets))
		r.Flavours = append(r.Flavours, m)
	}
	r.rank()
}

// accumulate adds one jet's |attributions| to m.
func (r *Report) accumulate(m *FlavourMeans, at Attribution) {
	for k := range at {
		for gi, g := range r.Groups {
			nv := len(g.Vars)
			for v, x := range at[k][gi] {
				m.Vars[k][gi][v%nv] += math.Abs(x)
				if g.MaxLen > 0 {
					m.Positions[k][gi][v/nv] += math.Abs(x)
				}
			}
		}
	}
}

func scale(x [][][]float64, f float64) {
	for _, a := range x {
		for _, b := range a {
			for i := range b {
				b[i] *= f
			}
		}
	}
}

// rank orders the variables by the mean |attribution| of p_b over b and
// light jets (the b-tagging question); without those, of the first output
// over all jets.
func (r *Report) rank() {
	k, jets := 0, "all"
	bIdx, uIdx := classIndex(r.classes, "b", "bjets"), classIndex(r.classes, "u", "light", "ujets")
	if bIdx >= 0 && uIdx >= 0 {
		for i, o := range r.Outputs {
			if flavour.Short(o[lastSlash(o)+1:]) == flavour.Short(r.classes[bIdx]) {
				k, jets = i, r.classes[bIdx]+"+"+r.classes[uIdx]
				break
			}
		}
	}
	r.RankOutput, r.RankJets = r.Outputs[k], jets
	score := map[[2]int]float64{}
	n := 0
	for i, j := range r.jets {
		if jets != "all" && r.labels[j] != bIdx && r.labels[j] != uIdx {
			continue
		}
		n++
		for gi, g := range r.Groups {
			for v, x := range r.attr[i][k][gi] {
				score[[2]int{gi, v % len(g.Vars)}] += math.Abs(x)
			}
		}
	}
	r.Ranking = nil
	for gi, g := range r.Groups {
		for v, name := range g.Vars {
			r.Ranking = append(r.Ranking, Rank{Group: g.Name, Var: name, Score: score[[2]int{gi, v}] / float64(max(n, 1))})
		}
	}
	sortRanks(r.Ranking)
}

func lastSlash(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return i
		}
	}
	return -1
}

// sortRanks orders by decreasing score, then by name.
func sortRanks(rs []Rank) {
	less := func(a, b Rank) bool {
		if a.Score != b.Score {
			return a.Score > b.Score
		}
		return a.Group+"."+a.Var < b.Group+"."+b.Var
	}
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && less(rs[j], rs[j-1]); j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

// classIndex returns the index of the first class with one of the short
// names, or -1.
func classIndex(classes []string, names ...string) int {
	for i, c := range classes {
		for _, n := range names {
			if flavour.Short(c) == flavour.Short(n) {
				return i
			}
		}
	}
	return -1
}

// permutation computes each variable's permutation importance: the drop
// of the b-against-light AUC of D_b when the variable's values are
// shuffled across the jets read (a constituent variable keeps each jet's
// own valid mask; a slot the donor jet lacks gets 0, the padding value).
func permutation(a *attributor, js *Jets, groups []Group, labels []int, cls model.Task, o Options) (permReport, error) {
	b, c, u := classIndex(cls.Classes, "b", "bjets"), classIndex(cls.Classes, "c", "cjets"), classIndex(cls.Classes, "u", "light", "ujets")
	if b < 0 || u < 0 {
		return permReport{}, nil
	}
	var cols []int
	for k, out := range a.net.Outputs {
		if out.Task == cls.Name {
			cols = append(cols, k)
		}
	}
	auc := func(x *Jets) (float64, error) {
		preds, err := a.predict(x)
		if err != nil {
			return 0, err
		}
		var pb, pc, pu []float64
		var sig []bool
		for j, p := range preds {
			if labels[j] != b && labels[j] != u {
				continue
			}
			pb, pu = append(pb, p[cols[b]]), append(pu, p[cols[u]])
			if c >= 0 {
				pc = append(pc, p[cols[c]])
			} else {
				pc = append(pc, 0)
			}
			sig = append(sig, labels[j] == b)
		}
		d, err := metrics.Discriminant(pb, pc, pu, o.FC)
		if err != nil {
			return 0, err
		}
		return metrics.AUC(d, sig, nil)
	}
	base, err := auc(js)
	if err != nil {
		return permReport{}, fmt.Errorf("explain: permutation importance: %w", err)
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x7065726d))
	perm := rng.Perm(js.N)
	var ranks []Rank
	for _, g := range groups {
		for v, name := range g.Vars {
			shuffled := shuffle(js, g, v, perm)
			s, err := auc(shuffled)
			if err != nil {
				return permReport{}, fmt.Errorf("explain: permutation importance of %s.%s: %w", g.Name, name, err)
			}
			ranks = append(ranks, Rank{Group: g.Name, Var: name, Score: base - s})
		}
	}
	sortRanks(ranks)
	return permReport{auc: base, ranks: ranks}, nil
}

// permReport is permutation's result.
type permReport struct {
	auc   float64
	ranks []Rank
}

// shuffle returns js with variable v of group g taken from jet perm[j].
func shuffle(js *Jets, g Group, v int, perm []int) *Jets {
	out := &Jets{N: js.N, Float: map[string][]float32{}, Bool: js.Bool}
	for k, x := range js.Float {
		out.Float[k] = x
	}
	src := js.Float[g.Name]
	dst := append([]float32(nil), src...)
	nv := len(g.Vars)
	if g.MaxLen == 0 {
		for j := range js.N {
			dst[j*nv+v] = src[perm[j]*nv+v]
		}
	} else {
		valid := js.Bool[model.ValidInput(g.Name)]
		for j := range js.N {
			for t := range g.MaxLen {
				x := float32(0)
				if valid[j*g.MaxLen+t] && valid[perm[j]*g.MaxLen+t] {
					x = src[(perm[j]*g.MaxLen+t)*nv+v]
				}
				dst[(j*g.MaxLen+t)*nv+v] = x
			}
		}
	}
	out.Float[g.Name] = dst
	return out
}

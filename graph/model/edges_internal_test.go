package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
)

// saltEdge is Salt's edge feature f of the pair (i, j), from the
// variables of constituents i and j, written out as
// salt/utils/edge_features.py computes it (nan_to_num included).
func saltEdge(f string, vi, vj map[string]float64, self bool) float64 {
	dphi := vj["phi"] - vi["phi"]
	if dphi > math.Pi {
		dphi -= 2 * math.Pi
	}
	deta := vj["eta"] - vi["eta"]
	ptMin := math.Min(vi["pt"], vj["pt"])
	var v float64
	switch f {
	case "dR":
		v = math.Log(math.Sqrt(deta*deta + dphi*dphi))
	case "kt":
		v = math.Log(ptMin * math.Sqrt(deta*deta+dphi*dphi))
	case "z":
		v = math.Log(ptMin / (vi["pt"] + vj["pt"]))
	case "isSelfLoop":
		if self {
			v = 1
		}
	case "subjetIndex":
		if vi["subjetIndex"] == vj["subjetIndex"] && vj["subjetIndex"] >= 0 {
			v = 1
		}
	case "mass":
		p := func(m map[string]float64) (float64, float64, float64) {
			return m["pt"] * math.Cos(m["phi"]), m["pt"] * math.Sin(m["phi"]), m["pt"] * (math.Exp(m["eta"]) - math.Exp(-m["eta"])) / 2
		}
		xi, yi, zi := p(vi)
		xj, yj, zj := p(vj)
		e := vi["energy"] + vj["energy"]
		m2 := e*e - (xi+xj)*(xi+xj) - (yi+yj)*(yi+yj) - (zi+zj)*(zi+zj)
		v = 0.5 * math.Log(math.Max(m2, 1e-8))
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// TestEdgeFeaturesAsSalt compares the edge features the graph computes
// with Salt's formulas on constituents that exercise the edge cases: φ
// differences beyond π either way, self pairs (ln 0), a negative pt (NaN),
// massless pairs and subjet index -1.
func TestEdgeFeaturesAsSalt(t *testing.T) {
	feats := []string{"dR", "kt", "z", "mass", "isSelfLoop", "subjetIndex"}
	s := Spec{Edges: &Edges{Input: "tracks", Features: feats}}
	needs := s.Edges.Needs()
	const b, n = 2, 5
	r := rand.New(rand.NewPCG(2, 3))
	vals := make([]float64, b*n*len(needs))
	vars := make([]map[string]float64, b*n)
	for i := range vars {
		eta, pt := r.NormFloat64(), 1000*math.Exp(r.NormFloat64())
		m := map[string]float64{"eta": eta, "phi": (2*r.Float64() - 1) * math.Pi, "pt": pt, "energy": pt * math.Cosh(eta), "subjetIndex": float64(r.IntN(3) - 1)}
		switch i {
		case 1:
			m["pt"] = -m["pt"] // NaN logarithms
		case 2:
			m["phi"] = 3.1 // with 3: Δφ < −π, and with 4: Δφ > π
		case 3:
			m["phi"] = -3.1
		case 4:
			m["energy"] = m["pt"] * math.Cosh(m["eta"]) * 1.3
		}
		vars[i] = m
		for k, v := range needs {
			vals[i*len(needs)+k] = float64(float32(m[v]))
			m[v] = vals[i*len(needs)+k]
		}
	}
	g := graph.New("edges")
	x := g.Input("x", graph.Float64, graph.Shape{b, n, int64(len(needs))})
	g.Output("e", s.edgeFeatures(g, x))
	out, err := graphtest.Compile(t, g, graph.ModelOptions{}).Run(map[string][]float64{"x": vals})
	if err != nil {
		t.Fatal(err)
	}
	for j := 0; j < b; j++ {
		for i := 0; i < n; i++ {
			for k := 0; k < n; k++ {
				for fi, f := range feats {
					got := out["e"][((j*n+i)*n+k)*len(feats)+fi]
					want := saltEdge(f, vars[j*n+i], vars[j*n+k], i == k)
					// The self pairs' m² cancels to ~1e-9 of E²: ln m² agrees
					// to ~1e-8 there, to ~1e-12 elsewhere.
					if math.Abs(got-want) > 1e-7*math.Max(1, math.Abs(want)) {
						t.Errorf("jet %d pair (%d, %d) %s = %g, Salt's %g", j, i, k, f, got, want)
					}
				}
			}
		}
	}
}

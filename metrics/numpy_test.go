package metrics

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os/exec"
	"testing"
)

// python is Debian's interpreter, which has python3-numpy.
const python = "/usr/bin/python3"

// pumaScript is puma's weighted_percentile and calc_eff (puma/metrics.py),
// with the cumulative sum in float64 and the efficiencies put back in the
// caller's order, and the Mann–Whitney AUC written
// out pair by pair. It reads the inputs as JSON on stdin.
const pumaScript = `
import json, sys
import numpy as np
d = json.load(sys.stdin)
sig, bkg = np.array(d["sig"]), np.array(d["bkg"])
sw, bw = np.array(d["sig_w"]), np.array(d["bkg_w"])
effs = np.array(d["effs"])

def weighted_percentile(data, perc, weights):
    ix = np.argsort(data)
    data, weights = data[ix], weights[ix]
    cdf = np.cumsum(weights, dtype=np.float64) - 0.5 * weights
    cdf -= cdf[0]
    cdf /= cdf[-1]
    return np.interp(perc, cdf, data)

cuts = weighted_percentile(sig, 1.0 - effs, sw)
order = np.argsort(1 - effs)
hist, _ = np.histogram(bkg, (-np.inf, *cuts[order], np.inf), weights=bw)
eff_sorted = hist[::-1].cumsum()[-2::-1] / hist.sum()
# puma writes eff = eff_sorted[order], right only when order is its own
# inverse (for example effs given in order); undo the sort properly.
eff = np.empty_like(eff_sorted)
eff[order] = eff_sorted
gt = (sig[:, None] > bkg[None, :]) + 0.5 * (sig[:, None] == bkg[None, :])
auc = (sw[:, None] * bw[None, :] * gt).sum() / (sw.sum() * bw.sum())
print(json.dumps({"cuts": cuts.tolist(), "bkg_eff": eff.tolist(), "auc": auc}))
`

// TestMatchesPuma compares CutForEfficiency, RejectionsAt and AUC with
// puma's own formulas run by numpy, on weighted data with ties and zero
// weights.
func TestMatchesPuma(t *testing.T) {
	if err := exec.Command(python, "-c", "import numpy").Run(); err != nil {
		t.Skipf("skipping: %s cannot import numpy (apt-get install python3-numpy): %v", python, err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var in struct {
		Sig  []float64 `json:"sig"`
		Bkg  []float64 `json:"bkg"`
		SigW []float64 `json:"sig_w"`
		BkgW []float64 `json:"bkg_w"`
		Effs []float64 `json:"effs"`
	}
	for range 500 {
		// Discrete scores in steps of 0.25 give many ties, also at the cuts.
		in.Sig = append(in.Sig, math.Round(rng.NormFloat64()*8+4)/4)
		in.SigW = append(in.SigW, float64(rng.IntN(4))*0.5) // some weights 0
	}
	for range 700 {
		in.Bkg = append(in.Bkg, math.Round(rng.NormFloat64()*8-4)/4)
		in.BkgW = append(in.BkgW, rng.Float64()*2)
	}
	in.Effs = []float64{0.85, 0.6, 0.77, 0.7, 0.5, 0.999}
	stdin, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "-c", pumaScript)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("numpy: %v\n%s", err, out)
	}
	var want struct {
		Cuts   []float64 `json:"cuts"`
		BkgEff []float64 `json:"bkg_eff"`
		AUC    float64   `json:"auc"`
	}
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("numpy output %q: %v", out, err)
	}
	wps, err := RejectionsAt(in.Sig, in.SigW, in.Bkg, in.BkgW, in.Effs...)
	if err != nil {
		t.Fatal(err)
	}
	for i, wp := range wps {
		if math.Abs(wp.Cut-want.Cuts[i]) > 1e-12 {
			t.Errorf("eff %v: cut %v, puma %v", in.Effs[i], wp.Cut, want.Cuts[i])
		}
		if !approxEqual(wp.Rejection, 1/want.BkgEff[i]) {
			t.Errorf("eff %v: rejection %v, puma %v", in.Effs[i], wp.Rejection, 1/want.BkgEff[i])
		}
	}
	labels := make([]bool, 0, len(in.Sig)+len(in.Bkg))
	for range in.Sig {
		labels = append(labels, true)
	}
	for range in.Bkg {
		labels = append(labels, false)
	}
	auc, err := AUC(append(append([]float64{}, in.Sig...), in.Bkg...), labels, append(append([]float64{}, in.SigW...), in.BkgW...))
	if err != nil || math.Abs(auc-want.AUC) > 1e-12 {
		t.Errorf("AUC = %v (%v), numpy %v", auc, err, want.AUC)
	}
}

package train

import (
	"math"

	"github.com/salt-ort/salt-ort/graph/model"
)

// maskCriterion is one of Salt's mask match criteria (MaskformerMetrics'
// mask_criteria): a matched object is found when its mask has at least
// Recall of its truth object's constituents and at least Purity of its
// own constituents are the truth object's.
type maskCriterion struct {
	name           string
	recall, purity float64
}

// maskCriteria are Salt's default criteria.
var maskCriteria = []maskCriterion{{"perfect", 1, 1}, {"loose", 0.5, 0.5}}

// objectCounts accumulates Salt's MaskFormer metrics over the jets of an
// evaluation, on the matched objects (object perm[m] against truth slot
// m).
type objectCounts struct {
	jets, exactJets int64 // jets; those whose every slot's class is right
	slots, right    int64 // truth slots; those whose class is right
	// notnull: truth slots with an object, predicted objects that are
	// not null, and both.
	tgtObj, predObj, bothObj int64
	// found[c] counts truth objects (with at least one constituent) found
	// under criterion c; fake[c] predicted objects (with at least one
	// constituent) that fail it; tgtWith and predWith count the two.
	found, fake       []int64
	tgtWith, predWith int64
	// Constituent assignments: truth, predicted, and both (edgewise).
	tgtEdges, predEdges, bothEdges int64
}

// addObjectCounts adds the first n jets of an evaluated batch in bind to
// cnt: the predictions before matching (model.ObjectClassProbsOutput,
// model.ObjectMasksOutput), the truth objects and the matching m.perm.
func (m *objectMatcher) addObjectCounts(bind tensors, cnt *objectCounts, n int) error {
	probs, err := bind.Float32(model.ObjectClassProbsOutput)
	if err != nil {
		return err
	}
	logits, err := bind.Float32(model.ObjectMasksOutput)
	if err != nil {
		return err
	}
	class, err := bind.Int64(model.ObjectClassInput)
	if err != nil {
		return err
	}
	tgt, err := bind.Bool(model.ObjectMaskInput)
	if err != nil {
		return err
	}
	valid, err := bind.Bool(model.ValidInput(m.objects.Input))
	if err != nil {
		return err
	}
	if cnt.found == nil {
		cnt.found, cnt.fake = make([]int64, len(maskCriteria)), make([]int64, len(maskCriteria))
	}
	nobj, nc, t := m.objects.Decoder.Objects, m.objects.NumClasses, m.maxLen
	c := nc + 1
	for j := 0; j < n; j++ {
		exact := true
		for s := 0; s < nobj; s++ {
			k := j*nobj + s
			obj := j*nobj + int(m.perm[k])
			pred := argmax(probs[obj*c : (obj+1)*c])
			truth := int(class[k])
			cnt.slots++
			if pred == truth {
				cnt.right++
			} else {
				exact = false
			}
			if truth != nc {
				cnt.tgtObj++
			}
			if pred != nc {
				cnt.predObj++
				if truth != nc {
					cnt.bothObj++
				}
			}
			// The predicted mask: probability above 0.5 on valid
			// constituents, none for an object predicted null (Salt's
			// sanitise_mask).
			var nt, np, nb int64
			for i := 0; i < t; i++ {
				inTgt := tgt[k*t+i]
				inPred := pred != nc && valid[j*t+i] && logits[obj*t+i] > 0
				if inTgt {
					nt++
				}
				if inPred {
					np++
					if inTgt {
						nb++
					}
				}
			}
			cnt.tgtEdges += nt
			cnt.predEdges += np
			cnt.bothEdges += nb
			if nt > 0 {
				cnt.tgtWith++
			}
			if np > 0 {
				cnt.predWith++
			}
			eff, pur := float64(nb)/float64(nt), float64(nb)/float64(np)
			for ci, cr := range maskCriteria {
				pass := eff >= cr.recall && pur >= cr.purity // false for NaN
				if np > 0 && pass && nt > 0 {
					cnt.found[ci]++
				}
				if np > 0 && !pass {
					cnt.fake[ci]++
				}
			}
		}
		cnt.jets++
		if exact {
			cnt.exactJets++
		}
	}
	return nil
}

// argmax is the index of the largest value.
func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// metrics are Salt's MaskFormer metrics of the counts, by Salt's names:
// class_exact_match, class_accuracy_micro, notnull_eff, notnull_pur,
// query_<criterion>_match_eff and _match_fake; and the edgewise
// constituent-to-object assignment efficiency and purity
// (assignment_eff, assignment_pur). A ratio without entries is NaN.
func (cnt *objectCounts) metrics() map[string]float64 {
	ratio := func(a, b int64) float64 {
		if b == 0 {
			return math.NaN()
		}
		return float64(a) / float64(b)
	}
	out := map[string]float64{
		"class_exact_match":    ratio(cnt.exactJets, cnt.jets),
		"class_accuracy_micro": ratio(cnt.right, cnt.slots),
		"notnull_eff":          ratio(cnt.bothObj, cnt.tgtObj),
		"notnull_pur":          ratio(cnt.bothObj, cnt.predObj),
		"assignment_eff":       ratio(cnt.bothEdges, cnt.tgtEdges),
		"assignment_pur":       ratio(cnt.bothEdges, cnt.predEdges),
	}
	for i, cr := range maskCriteria {
		var found, fake int64
		if cnt.found != nil {
			found, fake = cnt.found[i], cnt.fake[i]
		}
		out["query_"+cr.name+"_match_eff"] = ratio(found, cnt.tgtWith)
		out["query_"+cr.name+"_match_fake"] = ratio(fake, cnt.predWith)
	}
	return out
}

// objectMetricNames are the names metrics returns, in the order the
// validation table lists them.
var objectMetricNames = []string{"class_exact_match", "class_accuracy_micro", "notnull_eff", "notnull_pur",
	"query_perfect_match_eff", "query_perfect_match_fake", "query_loose_match_eff", "query_loose_match_fake",
	"assignment_eff", "assignment_pur"}

package metrics

import (
	"fmt"
	"math"
)

// ObjectMetricNames are the names of Salt's MaskFormer metrics that
// [ObjectCounts.Metrics] returns, in the order tables list them.
var ObjectMetricNames = []string{"class_exact_match", "class_accuracy_micro", "notnull_eff", "notnull_pur",
	"query_perfect_match_eff", "query_perfect_match_fake", "query_loose_match_eff", "query_loose_match_fake",
	"assignment_eff", "assignment_pur"}

// MaskCriterion is one of Salt's mask match criteria (the mask_criteria of
// its MaskformerMetrics): a matched object is found when its mask holds at
// least Recall of its truth object's constituents and at least Purity of
// its own constituents are the truth object's.
type MaskCriterion struct {
	Name           string
	Recall, Purity float64
}

// MaskCriteria are Salt's default criteria, "perfect" and "loose".
var MaskCriteria = []MaskCriterion{{"perfect", 1, 1}, {"loose", 0.5, 0.5}}

// ObjectBatch is one batch of a mask decoder's predictions with the truth
// objects and the matching, the arrays row-major:
//   - Probs [jet, object, class]: the class probabilities, the last class
//     no object (Classes of them);
//   - Logits [jet, object, constituent]: the mask logits;
//   - Class [jet, truth slot] and Target [jet, truth slot, constituent]: the
//     truth class (Classes−1 for no object) and mask of each slot;
//   - Valid [jet, constituent]: the real constituents;
//   - Perm [jet, truth slot]: the object matched to each truth slot.
//
// Slots equal Objects (Salt's loss needs a query for every truth slot).
type ObjectBatch struct {
	Jets, Objects, Classes, Constituents int
	Probs, Logits                        []float32
	Class, Perm                          []int64
	Target, Valid                        []bool
}

// check reports a buffer of the wrong length.
func (b *ObjectBatch) check() error {
	j, m, c, t := b.Jets, b.Objects, b.Classes, b.Constituents
	for _, s := range []struct {
		name      string
		got, want int
	}{
		{"class probabilities", len(b.Probs), j * m * c}, {"mask logits", len(b.Logits), j * m * t},
		{"truth classes", len(b.Class), j * m}, {"matching", len(b.Perm), j * m},
		{"truth masks", len(b.Target), j * m * t}, {"valid constituents", len(b.Valid), j * t},
	} {
		if s.got < s.want {
			return fmt.Errorf("metrics: %d %s for %d jets of %d objects, %d classes and %d constituents, want %d",
				s.got, s.name, j, m, c, t, s.want)
		}
	}
	return nil
}

// ObjectCounts accumulate Salt's MaskFormer metrics over the jets of an
// evaluation, on the matched objects (object Perm[m] against truth slot
// m). The zero value is empty.
type ObjectCounts struct {
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

// Add adds the jets of b. A predicted object's mask is its valid
// constituents with mask probability above ½ (logit above 0), none for an
// object whose most probable class is no object (Salt's sanitise_mask).
func (cnt *ObjectCounts) Add(b ObjectBatch) error {
	if err := b.check(); err != nil {
		return err
	}
	if cnt.found == nil {
		cnt.found, cnt.fake = make([]int64, len(MaskCriteria)), make([]int64, len(MaskCriteria))
	}
	nobj, c, t := b.Objects, b.Classes, b.Constituents
	null := c - 1
	for j := 0; j < b.Jets; j++ {
		exact := true
		for s := 0; s < nobj; s++ {
			k := j*nobj + s
			obj := j*nobj + int(b.Perm[k])
			pred := argmax32(b.Probs[obj*c : (obj+1)*c])
			truth := int(b.Class[k])
			cnt.slots++
			if pred == truth {
				cnt.right++
			} else {
				exact = false
			}
			if truth != null {
				cnt.tgtObj++
			}
			if pred != null {
				cnt.predObj++
				if truth != null {
					cnt.bothObj++
				}
			}
			var nt, np, nb int64
			for i := 0; i < t; i++ {
				inTgt := b.Target[k*t+i]
				inPred := pred != null && b.Valid[j*t+i] && b.Logits[obj*t+i] > 0
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
			cnt.addMask(nt, np, nb)
		}
		cnt.jets++
		if exact {
			cnt.exactJets++
		}
	}
	return nil
}

// addMask adds one matched pair of masks: nt truth constituents, np
// predicted, nb both.
func (cnt *ObjectCounts) addMask(nt, np, nb int64) {
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
	for ci, cr := range MaskCriteria {
		pass := eff >= cr.Recall && pur >= cr.Purity // false for NaN
		if np > 0 && pass && nt > 0 {
			cnt.found[ci]++
		}
		if np > 0 && !pass {
			cnt.fake[ci]++
		}
	}
}

// argmax32 is the index of the largest value.
func argmax32(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// Metrics are Salt's MaskFormer metrics of the counts, by the names of
// ObjectMetricNames:
//   - class_exact_match: the share of jets whose every slot has the right
//     class; class_accuracy_micro: the share of slots;
//   - notnull_eff, notnull_pur: objects predicted present among the truth
//     objects, and truth objects among the objects predicted present;
//   - query_<criterion>_match_eff and _match_fake: truth objects found,
//     and predicted objects that fail, under each of MaskCriteria;
//   - assignment_eff, assignment_pur: over (constituent, object) pairs,
//     the share of true pairs predicted and of predicted pairs true.
//
// A ratio without entries is NaN.
func (cnt *ObjectCounts) Metrics() map[string]float64 {
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
	for i, cr := range MaskCriteria {
		var found, fake int64
		if cnt.found != nil {
			found, fake = cnt.found[i], cnt.fake[i]
		}
		out["query_"+cr.Name+"_match_eff"] = ratio(found, cnt.tgtWith)
		out["query_"+cr.Name+"_match_fake"] = ratio(fake, cnt.predWith)
	}
	return out
}

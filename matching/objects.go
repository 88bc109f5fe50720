package matching

import (
	"fmt"
	"math"
)

// MatchObjects matches, jet by jet, a model's object slots to the jet's
// truth objects (hadrons) as Salt's HungarianMatcher does, and writes the
// permutation that Salt applies to the predictions before the loss.
//
// cost holds jets×objects×truth values in the layout of Salt's matching cost
// (jet, then predicted object, then truth object): the cost of calling object
// n of jet b truth object m is cost[(b*objects+n)*truth+m]. numValid[b] is the
// number of valid truth objects of jet b; they are the first numValid[b] truth
// slots, and the costs of the others are ignored (Salt sets them to NaN).
//
// For each jet the numValid[b] valid truth objects get distinct objects of
// minimal total cost; assign[b*truth+m] is the object given to truth slot m.
// Truth slots beyond numValid[b] get the objects left over, in increasing
// order, as Salt fills them, so each jet's row of assign is a permutation of
// objects when truth equals objects. truth must not exceed objects.
func (s *Solver) MatchObjects(cost []float32, jets, objects, truth int, numValid []int, assign []int64) error {
	if jets < 0 || objects < 0 || truth < 0 {
		return fmt.Errorf("matching: negative shape %d jets × %d objects × %d truth objects", jets, objects, truth)
	}
	if truth > objects {
		return fmt.Errorf("matching: %d truth objects per jet but only %d predicted objects; the model needs at least as many objects as the truth has slots", truth, objects)
	}
	if len(cost) != jets*objects*truth {
		return fmt.Errorf("matching: cost has %d entries, %d jets × %d objects × %d truth objects need %d", len(cost), jets, objects, truth, jets*objects*truth)
	}
	if len(numValid) != jets || len(assign) != jets*truth {
		return fmt.Errorf("matching: %d valid counts and %d assignments for %d jets of %d truth objects", len(numValid), len(assign), jets, truth)
	}
	var sub []float64
	rowToCol := make([]int, truth)
	used := make([]bool, objects)
	for b := 0; b < jets; b++ {
		nv := numValid[b]
		if nv < 0 || nv > truth {
			return fmt.Errorf("matching: jet %d has %d valid truth objects, outside 0…%d", b, nv, truth)
		}
		// Rows are the valid truth objects, columns the predicted objects,
		// as in Salt, which transposes its cost before solving.
		sub = grow(sub, nv*objects)
		jet := cost[b*objects*truth : (b+1)*objects*truth]
		for m := 0; m < nv; m++ {
			for n := 0; n < objects; n++ {
				c := float64(jet[n*truth+m])
				if math.IsNaN(c) || math.IsInf(c, -1) {
					return fmt.Errorf("matching: jet %d: the cost of object %d for valid truth object %d is %v; the matching costs must be numbers or +Inf", b, n, m, c)
				}
				sub[m*objects+n] = c
			}
		}
		if err := s.Solve(sub, nv, objects, rowToCol[:nv]); err != nil {
			return fmt.Errorf("jet %d: %w", b, err)
		}
		fillUnmatched(rowToCol, nv, used, assign[b*truth:(b+1)*truth])
	}
	return nil
}

// fillUnmatched writes the objects matched to the first nv truth slots and
// gives the remaining slots the unused objects in increasing order.
func fillUnmatched(rowToCol []int, nv int, used []bool, out []int64) {
	for n := range used {
		used[n] = false
	}
	for m := 0; m < nv; m++ {
		out[m] = int64(rowToCol[m])
		used[rowToCol[m]] = true
	}
	next := 0
	for m := nv; m < len(out); m++ {
		for used[next] {
			next++
		}
		out[m] = int64(next)
		used[next] = true
	}
}

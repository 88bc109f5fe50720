package nn

import "github.com/salt-ort/salt-ort/graph"

// MaskFormerWeights are the weights of Salt's MaskFormer loss or matching
// cost terms (loss_weights, matcher_weights).
type MaskFormerWeights struct {
	ClassCE  float64 // object_class_ce
	MaskCE   float64 // mask_ce
	MaskDice float64 // mask_dice
	// MaskFocal weighs Salt's sigmoid focal loss of the masks (mask_focal),
	// with Salt's fixed alpha −1 (no class balancing) and gamma 2.
	MaskFocal float64
	// Regression weighs the objects' regression (Salt's "regression");
	// its terms are MaskFormerRegressionCost and MaskFormerRegressionLoss.
	Regression float64
}

// maskCostClamp bounds the mask logits the matching cost reads, as Salt's
// get_batch_cost clamps them, so that the lowest finite logits of padded
// constituents give finite costs.
const maskCostClamp = 1e4

// MaskFormerCost is Salt's HungarianMatcher.get_batch_cost on the
// decoder's float32 predictions and the truth objects, class int64 [B, M]
// (numClasses: no object) and masks float32 [B, M, T] in {0, 1}: the cost
// [B, N, M] of matching predicted object n to truth slot m,
//
//	−w_class·p_n(class_m) + w_ce·BCE(mask_n, target_m) + w_dice·dice(mask_n, target_m)
//	+ w_focal·focal(mask_n, target_m).
//
// As in Salt, the class term counts for the first numClasses truth slots
// only (Salt's obj_class_tgt[:, :num_classes]) and for valid ones; the
// mask logits are clamped to ±10⁴; the BCE is averaged over every
// constituent slot, padded ones included; the dice is
// 1 − (2Σσ·t + 1)/(Σσ + Σt + 1); the focal cost (Salt's
// batch_sigmoid_focal_cost) is the BCE of each constituent weighted by
// (1−σ)² where the target is 1 and σ² where it is 0, averaged likewise. Costs of empty truth slots are not
// meaningful (Salt sets them to NaN; the matcher ignores them).
func MaskFormerCost(g *graph.Graph, pred MaskDecoderOutput, class, masks *graph.Tensor, numClasses int, w MaskFormerWeights) *graph.Tensor {
	m := class.Dim(1)
	c := pred.ClassProbs.Dim(-1)
	dt := pred.ClassProbs.DType()
	scalar := func(v float64) *graph.Tensor { return g.Scalar(dt, v) }
	masks = castTo(g, masks, dt)
	// The class term: −p_n(class_m) for the first numClasses slots; the no
	// object column of the one-hot is zeroed, so empty slots cost nothing.
	keep := make([]float64, m*c)
	for k := int64(0); k < m && k < int64(numClasses); k++ {
		for j := int64(0); j < int64(numClasses) && j < c; j++ {
			keep[k*c+j] = 1
		}
	}
	onehot := g.Mul(OneHot(g, class, int(c), dt), g.Const("class_slots", dt, graph.Shape{m, c}, keep))
	cost := g.Mul(g.MatMul(pred.ClassProbs, g.Transpose(onehot, 0, 2, 1)), scalar(-w.ClassCE))
	x := g.Max(g.Min(pred.Masks, scalar(maskCostClamp)), scalar(-maskCostClamp))
	tgtT := g.Transpose(masks, 0, 2, 1) // [B, T, M]
	if w.MaskCE > 0 {
		pos := BCEWithLogitsTerms(g, x, g.ScalarLike(x, 1))
		neg := BCEWithLogitsTerms(g, x, g.ScalarLike(x, 0))
		ce := g.Add(g.MatMul(pos, tgtT), g.MatMul(neg, g.Sub(g.ScalarLike(tgtT, 1), tgtT)))
		cost = g.Add(cost, g.Mul(ce, scalar(w.MaskCE/float64(x.Dim(-1)))))
	}
	if w.MaskDice > 0 {
		sig := g.Sigmoid(x)
		one := scalar(1)
		num := g.Add(g.Mul(g.MatMul(sig, tgtT), scalar(2)), one)
		den := g.Add(g.Add(g.ReduceSum(sig, []int{-1}, true), g.Transpose(g.ReduceSum(masks, []int{-1}, true), 0, 2, 1)), one)
		cost = g.Add(cost, g.Mul(g.Sub(one, g.Div(num, den)), scalar(w.MaskDice)))
	}
	if w.MaskFocal > 0 {
		sig := g.Sigmoid(x)
		miss := g.Sub(g.ScalarLike(sig, 1), sig)
		pos := g.Mul(g.Mul(miss, miss), BCEWithLogitsTerms(g, x, g.ScalarLike(x, 1)))
		neg := g.Mul(g.Mul(sig, sig), BCEWithLogitsTerms(g, x, g.ScalarLike(x, 0)))
		focal := g.Add(g.MatMul(pos, tgtT), g.MatMul(neg, g.Sub(g.ScalarLike(tgtT, 1), tgtT)))
		cost = g.Add(cost, g.Mul(focal, scalar(w.MaskFocal/float64(x.Dim(-1)))))
	}
	return cost
}

// focalTerms are Salt's sigmoid_focal_loss elements with alpha −1 and
// gamma 2: BCE(x, t)·(1 − p_t)², with p_t = σ(x)·t + (1 − σ(x))·(1 − t).
func focalTerms(g *graph.Graph, x, t *graph.Tensor) *graph.Tensor {
	sig := g.Sigmoid(x)
	one := g.ScalarLike(sig, 1)
	pt := g.Add(g.Mul(sig, t), g.Mul(g.Sub(one, sig), g.Sub(one, t)))
	miss := g.Sub(one, pt)
	return g.Mul(BCEWithLogitsTerms(g, x, t), g.Mul(miss, miss))
}

// MaskFormerLossConfig configures MaskFormerLoss.
type MaskFormerLossConfig struct {
	// NumClasses is the number of object classes; class NumClasses is no
	// object.
	NumClasses int
	// NullClassWeight weighs the no-object class in the class
	// cross-entropy (the others weigh 1).
	NullClassWeight float64
	// Weights are Salt's loss_weights.
	Weights MaskFormerWeights
}

// MaskFormerLosses are the weighted terms of MaskFormerLoss; a mask term
// whose weight is 0 is nil, as Salt leaves it out.
type MaskFormerLosses struct {
	ClassCE, MaskCE, MaskDice, MaskFocal *graph.Tensor
}

// MaskFormerLoss is Salt's MaskFormerLoss (without regression and
// auxiliary losses) on the decoder's float32 predictions permuted by the
// one-hot assignment a [B, M, N] (row m: the object matched to truth slot
// m), against the truth objects class int64 [B, M] and masks float32
// [B, M, T]; present [B] (float) is 1 for the jets that count and 0 for padding.
//   - object_class_ce: the cross-entropy of every slot's class with the
//     class weights, as PyTorch's weighted mean (Σ w·nll / Σ w);
//   - mask_ce: per valid slot (class below NumClasses), the BCE of its
//     mask averaged over the constituent slots; summed over the batch's
//     valid slots and divided by their number;
//   - mask_dice: per valid slot, 1 − (2Σσ·t + 1)/(Σσ + Σt + 1); likewise;
//   - mask_focal: per valid slot, Salt's sigmoid focal loss of its mask,
//     BCE·(1 − p_t)² averaged over the constituent slots; likewise.
//
// Each is multiplied by its weight. A batch without valid slots divides
// the mask terms by 1 (Salt's would be NaN).
func MaskFormerLoss(g *graph.Graph, pred MaskDecoderOutput, class, masks, a, present *graph.Tensor, cfg MaskFormerLossConfig) MaskFormerLosses {
	dt := pred.ClassLogits.DType()
	scalar := func(v float64) *graph.Tensor { return g.Scalar(dt, v) }
	a, masks, present = castTo(g, a, dt), castTo(g, masks, dt), castTo(g, present, dt)
	w := cfg.Weights
	logits := g.MatMul(a, pred.ClassLogits) // [B, M, C]
	matched := g.MatMul(a, pred.Masks)      // [B, M, T]
	classWeights := make([]float64, cfg.NumClasses+1)
	for i := range classWeights {
		classWeights[i] = 1
	}
	classWeights[cfg.NumClasses] = cfg.NullClassWeight
	slots := g.Expand(g.Unsqueeze(present, 1), class.Shape())
	ce := CrossEntropyMean(g, "class_ce", logits, class, slots, classWeights).Value(g)
	out := MaskFormerLosses{ClassCE: g.Mul(ce, scalar(w.ClassCE))}
	valid := g.Mul(g.Cast(g.Less(class, g.Scalar(graph.Int64, float64(cfg.NumClasses))), dt), g.Unsqueeze(present, 1)) // [B, M]
	count := g.Max(g.ReduceSum(valid, []int{0, 1}, false), scalar(1))
	perSlot := func(l *graph.Tensor, weight float64) *graph.Tensor {
		return g.Mul(g.Div(g.ReduceSum(g.Mul(l, valid), []int{0, 1}, false), count), scalar(weight))
	}
	if w.MaskCE > 0 {
		out.MaskCE = perSlot(g.ReduceMean(BCEWithLogitsTerms(g, matched, masks), []int{-1}, false), w.MaskCE)
	}
	if w.MaskDice > 0 {
		sig := g.Sigmoid(matched)
		one := scalar(1)
		num := g.Add(g.Mul(g.ReduceSum(g.Mul(sig, masks), []int{-1}, false), scalar(2)), one)
		den := g.Add(g.Add(g.ReduceSum(sig, []int{-1}, false), g.ReduceSum(masks, []int{-1}, false)), one)
		out.MaskDice = perSlot(g.Sub(one, g.Div(num, den)), w.MaskDice)
	}
	if w.MaskFocal > 0 {
		out.MaskFocal = perSlot(g.ReduceMean(focalTerms(g, matched, masks), []int{-1}, false), w.MaskFocal)
	}
	return out
}

// castTo returns x as type dt (x itself when it is).
func castTo(g *graph.Graph, x *graph.Tensor, dt graph.DType) *graph.Tensor {
	if x.DType() == dt {
		return x
	}
	return g.Cast(x, dt)
}

package deploy

import (
	"context"
	"fmt"
	"math"

	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/loader"
	"github.com/salt-ort/salt-ort/runtime"
	"github.com/salt-ort/salt-ort/train"
)

// GroupVectors are the raw inputs of one constituent group.
type GroupVectors struct {
	Name   string   // the group's dataset, e.g. tracks
	Input  string   // its input in the one-jet interface, e.g. track_features
	MaxLen int      // constituent slots per jet, T
	Vars   []string // per-constituent variables
	// Raw is [Jets, T, len(Vars)]: each jet's valid constituents first,
	// in the order the file has them, then zeros.
	Raw []float32
	// N is the number of valid constituents of each jet.
	N []int
}

// rows returns jet j's valid constituents, row-major [N[j], len(Vars)].
func (g *GroupVectors) rows(j int) []float32 {
	nv := len(g.Vars)
	start := j * g.MaxLen * nv
	return g.Raw[start : start+g.N[j]*nv]
}

// Vectors are validation vectors: raw inputs of some jets and the outputs
// the training-time evaluation graph produced for them.
type Vectors struct {
	Jets    int
	JetVars []string
	JetRaw  []float32 // [Jets, len(JetVars)]
	Groups  []GroupVectors
	// Expected holds the deployment outputs by name: [Jets] for jet-level
	// outputs, [Jets, T] for per-constituent ones (-1 beyond each jet's
	// valid constituents).
	Expected map[string][]float32
	// Probs holds, per constituent-class output, the class probabilities
	// its classes were decided from, [Jets, T, C]; Pairs, per vertex
	// output, the pair probabilities its vertices were grouped from,
	// [Jets, T, T].
	Probs, Pairs map[string][]float32
}

// group returns the vectors of the named constituent group, or nil.
func (v *Vectors) group(name string) *GroupVectors {
	for i := range v.Groups {
		if v.Groups[i].Name == name {
			return &v.Groups[i]
		}
	}
	return nil
}

// newVectors allocates vectors for n jets of the model spec describes.
func newVectors(spec model.Spec, n int) *Vectors {
	// The jet input: the jet variables, then the parameters (raw).
	jetVars := append(append([]string{}, spec.JetVars...), spec.ParameterNames()...)
	v := &Vectors{Jets: n, JetVars: jetVars, JetRaw: make([]float32, n*len(jetVars)),
		Expected: map[string][]float32{}, Probs: map[string][]float32{}, Pairs: map[string][]float32{}}
	for _, grp := range spec.Inputs {
		v.Groups = append(v.Groups, GroupVectors{Name: grp.Name, Input: model.DeployInputName(grp.Name), MaxLen: grp.MaxLen,
			Vars: grp.Vars, Raw: make([]float32, n*grp.MaxLen*len(grp.Vars)), N: make([]int, n)})
	}
	return v
}

// computeVectors reads the first n jets of the validation files raw and
// normalised, moves each jet's valid constituents first (the one-jet
// interface has no padding), runs the evaluation graph on them with
// params (one thread, so the vectors do not depend on the machine's core
// count) on device ("" or "cpu", or "cuda") and derives the deployment
// outputs outs from its predictions.
func computeVectors(ctx context.Context, rt *runtime.Runtime, device string, run *train.RunInfo, spec model.Spec, outs []model.DeployOutput, params []float32, n int) (*Vectors, error) {
	cfg := run.Config
	batch := min(n, 100)
	open := func(norm loader.NormDict) (*loader.Dataset, error) {
		lc := train.LoaderConfig(cfg, cfg.Data.Val, norm, false, n)
		lc.BatchSize = batch
		return loader.Open(lc)
	}
	rawDS, err := open(nil)
	if err != nil {
		return nil, fmt.Errorf("deploy: validation data: %w", err)
	}
	defer rawDS.Close()
	normDS, err := open(run.Norm)
	if err != nil {
		return nil, fmt.Errorf("deploy: validation data: %w", err)
	}
	defer normDS.Close()
	n = rawDS.Len()
	v := newVectors(spec, n)

	ev, err := train.NewEvaluatorOn(rt, cfg, device, spec, batch, 1)
	if err != nil {
		return nil, err
	}
	defer ev.Close()
	if err := ev.SetParams(params); err != nil {
		return nil, err
	}

	preds := map[string][]float32{} // the evaluation graph's, for all n jets
	rawCh, rawErr := rawDS.Batches(ctx, 0, 0)
	normCh, normErr := normDS.Batches(ctx, 0, 0)
	jet := 0
	nj := len(spec.JetVars)
	for rb := range rawCh {
		nb, ok := <-normCh
		if !ok {
			return nil, fmt.Errorf("deploy: validation data: raw and normalised reads disagree")
		}
		k := rb.N
		jetRaw := rb.Inputs[cfg.Data.JetDataset].Data
		np := len(spec.Parameters)
		for j := 0; j < k; j++ {
			// Evaluation feeds every jet the parameters' test values.
			row := v.JetRaw[(jet+j)*(nj+np) : (jet+j+1)*(nj+np)]
			copy(row, jetRaw[j*nj:(j+1)*nj])
			for p, par := range spec.Parameters {
				row[nj+p] = float32(par.Test)
			}
		}
		for gi, grp := range spec.Inputs {
			// The constituents' targets, denominators and sample weights
			// move with them.
			for name, tgt := range nb.Targets {
				if train.TargetGroup(spec, name) == grp.Name {
					packLike(nb.Inputs[grp.Name].Valid, grp.MaxLen, tgt)
				}
			}
			rb.Inputs[grp.Name].PackValid()
			nb.Inputs[grp.Name].PackValid()
			g := &v.Groups[gi]
			per := g.MaxLen * len(g.Vars)
			copy(g.Raw[jet*per:], rb.Inputs[grp.Name].Data[:k*per])
			valid := rb.Inputs[grp.Name].Valid
			for j := 0; j < k; j++ {
				for i := 0; i < g.MaxLen && valid[j*g.MaxLen+i]; i++ {
					g.N[jet+j]++
				}
			}
		}
		p, err := ev.Predict(nb)
		rb.Release()
		nb.Release()
		if err != nil {
			return nil, fmt.Errorf("deploy: evaluation graph: %w", err)
		}
		for name, out := range p {
			if preds[name] == nil {
				preds[name] = make([]float32, 0, n*len(out)/batch)
			}
			preds[name] = append(preds[name], out[:k*len(out)/batch]...)
		}
		jet += k
	}
	for range normCh {
	}
	for _, c := range []<-chan error{rawErr, normErr} {
		if err := <-c; err != nil {
			return nil, fmt.Errorf("deploy: validation data: %w", err)
		}
	}
	if err := deriveOutputs(spec, outs, v, preds); err != nil {
		return nil, err
	}
	return v, nil
}

// deriveOutputs fills v's expected outputs outs from predictions in the
// evaluation graph's terms (model.PredictionOutput and VarianceOutput of
// each task, for v's jets with their valid constituents first), as the
// deployment graph decides them.
func deriveOutputs(spec model.Spec, outs []model.DeployOutput, v *Vectors, preds map[string][]float32) error {
	n := v.Jets
	for _, o := range outs {
		if o.Kind == model.ObjectIndex {
			if err := deriveObjectIndex(spec, o, v, preds); err != nil {
				return err
			}
			continue
		}
		task, ok := taskOf(spec, o.Task)
		if !ok {
			return fmt.Errorf("deploy: output %s: the model has no task %s", o.Name, o.Task)
		}
		pred := preds[model.PredictionOutput(task.Name)]
		if len(pred) == 0 && n > 0 {
			return fmt.Errorf("deploy: output %s: no predictions of task %s", o.Name, task.Name)
		}
		switch o.Kind {
		case model.ClassProbability, model.RegressionValue, model.RegressionStddev:
			per := len(pred) / max(n, 1)
			out := make([]float32, n)
			for j := range out {
				out[j] = pred[j*per+o.Index]
				if o.Kind == model.RegressionStddev {
					out[j] = float32(math.Sqrt(float64(preds[model.VarianceOutput(task.Name)][j*per+o.Index])))
				}
			}
			v.Expected[o.Name] = out
		case model.ConstituentClass:
			g := v.group(o.Group)
			if g == nil {
				return fmt.Errorf("deploy: output %s: no constituent group %s", o.Name, o.Group)
			}
			t, c := g.MaxLen, len(task.Classes)
			out := make([]float32, n*t)
			for j := 0; j < n; j++ {
				for i := 0; i < t; i++ {
					out[j*t+i] = -1
					if i < g.N[j] {
						k := (j*t + i) * c
						out[j*t+i] = float32(classOf(pred[k : k+c]))
					}
				}
			}
			v.Expected[o.Name] = out
			v.Probs[o.Name] = pred
		case model.ConstituentRegressionValue, model.ConstituentRegressionStddev:
			g := v.group(o.Group)
			if g == nil {
				return fmt.Errorf("deploy: output %s: no constituent group %s", o.Name, o.Group)
			}
			t, k := g.MaxLen, len(task.Targets)
			out := make([]float32, n*t)
			for j := 0; j < n; j++ {
				for i := 0; i < g.N[j]; i++ {
					e := (j*t+i)*k + o.Index
					out[j*t+i] = pred[e]
					if o.Kind == model.ConstituentRegressionStddev {
						out[j*t+i] = float32(math.Sqrt(float64(preds[model.VarianceOutput(task.Name)][e])))
					}
				}
			}
			v.Expected[o.Name] = out
		case model.VertexIndex:
			g := v.group(o.Group)
			if g == nil {
				return fmt.Errorf("deploy: output %s: no constituent group %s", o.Name, o.Group)
			}
			t := g.MaxLen
			out := make([]float32, n*t)
			for j := 0; j < n; j++ {
				for i := range out[j*t : (j+1)*t] {
					out[j*t+i] = -1
				}
				for i, idx := range model.GroupVertices(pred[j*t*t:], g.N[j], t) {
					out[j*t+i] = float32(idx)
				}
			}
			v.Expected[o.Name] = out
			v.Pairs[o.Name] = pred
		default:
			return fmt.Errorf("deploy: output %s has unknown kind %q", o.Name, o.Kind)
		}
	}
	return nil
}

// packLike moves each jet's values of the valid slots of valid ([B·T]) to
// the front of vals ([B·T·k]), as loader.Tensor.PackValid moves the
// constituents; the slots after them keep stale values, as padding.
func packLike(valid []bool, t int, vals []float32) {
	if len(valid) == 0 || len(vals)%len(valid) != 0 {
		return
	}
	k := len(vals) / len(valid)
	for j := 0; j < len(valid)/t; j++ {
		n := 0
		for i := 0; i < t; i++ {
			if valid[j*t+i] {
				copy(vals[(j*t+n)*k:(j*t+n+1)*k], vals[(j*t+i)*k:(j*t+i+1)*k])
				n++
			}
		}
	}
}

func taskOf(spec model.Spec, name string) (model.Task, bool) {
	for _, t := range spec.Tasks {
		if t.Name == name {
			return t, true
		}
	}
	return model.Task{}, false
}

// argmax returns the index of the first largest value.
func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// classOf is the class a constituent's probabilities [C] decide: the
// most probable, or for a binary task's one probability p, 1 where p is
// at least ½ (as the deployed model decides on its logit), else 0.
func classOf(v []float32) int {
	if len(v) == 1 {
		if v[0] >= 0.5 {
			return 1
		}
		return 0
	}
	return argmax(v)
}

// nearTie reports whether the two largest values are within tol (for a
// binary task's one probability p, p and 1 − p).
func nearTie(v []float32, tol float64) bool {
	if len(v) == 1 {
		// A binary task's probability p of its class against 1 − p.
		return math.Abs(2*float64(v[0])-1) <= tol
	}
	a, b := math.Inf(-1), math.Inf(-1)
	for _, x := range v {
		switch f := float64(x); {
		case f > a:
			a, b = f, a
		case f > b:
			b = f
		}
	}
	return a-b <= tol
}

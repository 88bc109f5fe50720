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

// Vectors are validation vectors: raw inputs of some jets and the outputs
// the training-time evaluation graph produced for them.
type Vectors struct {
	Jets     int
	MaxLen   int
	JetVars  []string
	SeqVars  []string
	JetRaw   []float32 // [Jets, len(JetVars)]
	SeqRaw   []float32 // [Jets, MaxLen, len(SeqVars)], 0 where invalid
	Valid    []bool    // [Jets, MaxLen]
	NTracks  []int     // valid constituents per jet (they come first)
	Expected map[string][]float32
	// Expected holds, by deployment output name, the jet-level outputs
	// [Jets] and the per-constituent ones [Jets, MaxLen] (-1 where
	// invalid), plus the probabilities classes and vertices were decided
	// from: "<task>/probs" [Jets, MaxLen, C] and "<task>/pair_probs"
	// [Jets, MaxLen, MaxLen].
}

// probsKey and pairKey name the decision inputs kept in Vectors.Expected.
func probsKey(task string) string { return task + "/probs" }
func pairKey(task string) string  { return task + "/pair_probs" }

// computeVectors reads the first n jets of the validation files raw and
// normalised, runs the evaluation graph on them with params (one thread,
// so the vectors do not depend on the machine's core count) and derives
// every deployment output.
func computeVectors(ctx context.Context, rt *runtime.Runtime, run *train.RunInfo, params []float32, n int) (*Vectors, error) {
	spec, cfg := run.Spec, run.Config
	grp := spec.Inputs[0]
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
	t := grp.MaxLen
	nj, nv := len(spec.JetVars), len(grp.Vars)
	v := &Vectors{Jets: n, MaxLen: t, JetVars: spec.JetVars, SeqVars: grp.Vars,
		JetRaw: make([]float32, n*nj), SeqRaw: make([]float32, n*t*nv), Valid: make([]bool, n*t), NTracks: make([]int, n),
		Expected: map[string][]float32{}}

	ev, err := train.NewEvaluator(rt, spec, cfg.Data.JetDataset, batch, 1)
	if err != nil {
		return nil, err
	}
	defer ev.Close()
	if err := ev.SetParams(params); err != nil {
		return nil, err
	}

	for _, task := range spec.Tasks {
		switch task.Kind {
		case model.JetClassification:
			v.Expected[probsKey(task.Name)] = make([]float32, n*len(task.Classes))
		case model.ConstituentClassification:
			v.Expected[probsKey(task.Name)] = make([]float32, n*t*len(task.Classes))
		case model.Vertexing:
			v.Expected[pairKey(task.Name)] = make([]float32, n*t*t)
		case model.JetRegression, model.JetGaussianRegression:
			v.Expected[probsKey(task.Name)] = make([]float32, n*task.Outputs())
		}
	}
	rawCh, rawErr := rawDS.Batches(ctx, 0, 0)
	normCh, normErr := normDS.Batches(ctx, 0, 0)
	jet := 0
	for rb := range rawCh {
		nb, ok := <-normCh
		if !ok {
			return nil, fmt.Errorf("deploy: validation data: raw and normalised reads disagree")
		}
		k := rb.N
		copy(v.JetRaw[jet*nj:], rb.Inputs[cfg.Data.JetDataset].Data[:k*nj])
		copy(v.SeqRaw[jet*t*nv:], rb.Inputs[grp.Name].Data[:k*t*nv])
		copy(v.Valid[jet*t:], rb.Inputs[grp.Name].Valid[:k*t])
		preds, err := ev.Predict(nb)
		rb.Release()
		nb.Release()
		if err != nil {
			return nil, fmt.Errorf("deploy: evaluation graph: %w", err)
		}
		for _, task := range spec.Tasks {
			out := preds[model.PredictionOutput(task.Name)]
			key := probsKey(task.Name)
			if task.Kind == model.Vertexing {
				key = pairKey(task.Name)
			}
			per := len(out) / batch
			copy(v.Expected[key][jet*per:], out[:k*per])
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
	for j := 0; j < n; j++ {
		for i := 0; i < t && v.Valid[j*t+i]; i++ {
			v.NTracks[j]++
		}
		for i := v.NTracks[j]; i < t; i++ {
			if v.Valid[j*t+i] {
				return nil, fmt.Errorf("deploy: validation jet %d: valid constituents after padding; the deployment interface needs them first", j)
			}
		}
	}
	deriveOutputs(spec, v)
	return v, nil
}

// deriveOutputs computes the deployment outputs from the evaluation
// graph's predictions, as the deployment graph decides them.
func deriveOutputs(spec model.Spec, v *Vectors) {
	n, t := v.Jets, v.MaxLen
	first := true
	for _, task := range spec.Tasks {
		switch task.Kind {
		case model.JetClassification:
			if !first {
				continue
			}
			first = false
			c := len(task.Classes)
			probs := v.Expected[probsKey(task.Name)]
			for k, class := range task.Classes {
				out := make([]float32, n)
				for j := range out {
					out[j] = probs[j*c+k]
				}
				v.Expected[spec.ClassOutput(class)] = out
			}
		case model.ConstituentClassification:
			c := len(task.Classes)
			probs := v.Expected[probsKey(task.Name)]
			out := make([]float32, n*t)
			for i := range out {
				out[i] = -1
				if v.Valid[i] {
					out[i] = float32(argmax(probs[i*c : (i+1)*c]))
				}
			}
			v.Expected[spec.ConstituentOutput(task)] = out
			v.Expected[spec.ConstituentOutput(task)+"/probs"] = probs
		case model.Vertexing:
			pairs := v.Expected[pairKey(task.Name)]
			out := make([]float32, n*t)
			for j := 0; j < n; j++ {
				for i := range out[j*t : (j+1)*t] {
					out[j*t+i] = -1
				}
				for i, g := range model.GroupVertices(pairs[j*t*t:], v.NTracks[j], t) {
					out[j*t+i] = float32(g)
				}
			}
			v.Expected[spec.ConstituentOutput(task)] = out
			v.Expected[spec.ConstituentOutput(task)+"/pair_probs"] = pairs
		case model.JetRegression, model.JetGaussianRegression:
			raw := v.Expected[probsKey(task.Name)]
			per := task.Outputs()
			for k, target := range task.Targets {
				out := make([]float32, n)
				for j := range out {
					out[j] = raw[j*per+k]
				}
				v.Expected[spec.RegressionOutput(task, target)] = out
			}
		}
	}
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

// nearTie reports whether the two largest values are within tol.
func nearTie(v []float32, tol float64) bool {
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

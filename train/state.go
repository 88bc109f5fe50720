package train

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/salt-ort/salt-ort/checkpoint"
	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/run"
)

// CheckpointFormat identifies salt-ort's checkpoint layout in the
// metadata of every checkpoint it writes.
const CheckpointFormat = "salt-ort checkpoint 1"

// Metadata keys of a checkpoint.
const (
	metaFormat    = "format"
	metaModel     = "model"
	metaConfig    = "config" // the resolved configuration (TOML)
	metaEpoch     = "epoch"  // epoch to continue in (0-based)
	metaBatch     = "batch"  // next batch of that epoch
	metaStep      = "step"   // optimizer steps done
	metaStale     = "stale_epochs"
	metaWeighting = "loss_weighting"
	metaLossScale = "loss_scale" // JSON lossScaleState, fp16 runs only
)

// lossScaleState is the dynamic loss scaling of an fp16 run: the scaler
// and the steps it skipped, which the optimizer's step count leaves out.
type lossScaleState struct {
	Scale     float64 `json:"scale"`
	GoodSteps int     `json:"good_steps"`
	Skipped   int     `json:"skipped_steps"`
}

// Position is where a run stands: optimizer steps done, and the epoch
// and batch to continue from.
type Position struct {
	Epoch, Batch, Step int
}

// trainingState is what a checkpoint holds.
type trainingState struct {
	pos       Position
	params    []float32            // flat
	slots     map[string][]float32 // flat, per optimizer slot
	weighting []float64
	best      []run.BestEntry
	stale     int
	lossScale *lossScaleState // nil without loss scaling
}

// encodeState writes a training state as a checkpoint file: each
// parameter and each optimizer slot per parameter under its own name, so
// the file reads like any other set of named weights.
func encodeState(st *trainingState, layout []graph.ParamSlot, slotNames []string, model, weighting string, resolved []byte) (*checkpoint.File, error) {
	f := &checkpoint.File{Metadata: map[string]string{
		metaFormat:    CheckpointFormat,
		metaModel:     model,
		metaConfig:    string(resolved),
		metaEpoch:     strconv.Itoa(st.pos.Epoch),
		metaBatch:     strconv.Itoa(st.pos.Batch),
		metaStep:      strconv.Itoa(st.pos.Step),
		metaStale:     strconv.Itoa(st.stale),
		metaWeighting: weighting,
	}}
	best, err := json.Marshal(st.best)
	if err != nil {
		return nil, err
	}
	f.Metadata[run.MetaBest] = string(best)
	if st.lossScale != nil {
		ls, err := json.Marshal(st.lossScale)
		if err != nil {
			return nil, err
		}
		f.Metadata[metaLossScale] = string(ls)
	}
	for _, p := range layout {
		f.SetFloat32(p.Name, p.Shape, st.params[p.Offset:p.Offset+p.Size])
		for _, s := range slotNames {
			f.SetFloat32(run.OptimizerStateName(s, p.Name), p.Shape, st.slots[s][p.Offset:p.Offset+p.Size])
		}
	}
	if len(st.weighting) > 0 {
		f.SetFloat64(run.WeightingState, []int64{int64(len(st.weighting))}, st.weighting)
	}
	return f, nil
}

// expectedTensors describes the tensors a checkpoint of this model must
// hold, for checkpoint.Compare.
func expectedTensors(layout []graph.ParamSlot, slotNames []string) *checkpoint.File {
	f := &checkpoint.File{}
	for _, p := range layout {
		f.Set(p.Name, checkpoint.Tensor{DType: checkpoint.F32, Shape: p.Shape})
		for _, s := range slotNames {
			f.Set(run.OptimizerStateName(s, p.Name), checkpoint.Tensor{DType: checkpoint.F32, Shape: p.Shape})
		}
	}
	return f
}

// decodeState reads a training state from a checkpoint of this model,
// refusing one from another model with the first differing parameter.
func decodeState(path string, f *checkpoint.File, layout []graph.ParamSlot, size int64, slotNames []string, weighting string) (*trainingState, error) {
	if got := f.Metadata[metaFormat]; got != CheckpointFormat {
		return nil, fmt.Errorf("train: %s: not a salt-ort checkpoint (format %q, want %q)", path, got, CheckpointFormat)
	}
	if got := f.Metadata[metaWeighting]; got != weighting {
		return nil, fmt.Errorf("train: %s: checkpoint uses %q loss weighting, the configuration %q", path, got, weighting)
	}
	want := expectedTensors(layout, slotNames)
	if _, ok := f.Tensors[run.WeightingState]; ok {
		want.Set(run.WeightingState, f.Tensors[run.WeightingState])
	}
	if err := checkpoint.Compare(f, want); err != nil {
		return nil, fmt.Errorf("train: %s is from another model configuration: %w", path, err)
	}
	st := &trainingState{params: make([]float32, size), slots: map[string][]float32{}}
	for _, s := range slotNames {
		st.slots[s] = make([]float32, size)
	}
	for _, p := range layout {
		v, _, err := f.Float32(p.Name)
		if err != nil {
			return nil, fmt.Errorf("train: %s: %w", path, err)
		}
		copy(st.params[p.Offset:], v)
		for _, s := range slotNames {
			v, _, err := f.Float32(run.OptimizerStateName(s, p.Name))
			if err != nil {
				return nil, fmt.Errorf("train: %s: %w", path, err)
			}
			copy(st.slots[s][p.Offset:], v)
		}
	}
	if _, ok := f.Tensors[run.WeightingState]; ok {
		v, _, err := f.Float64(run.WeightingState)
		if err != nil {
			return nil, fmt.Errorf("train: %s: %w", path, err)
		}
		st.weighting = v
	}
	ints := map[string]*int{metaEpoch: &st.pos.Epoch, metaBatch: &st.pos.Batch, metaStep: &st.pos.Step, metaStale: &st.stale}
	for k, dst := range ints {
		v, err := strconv.Atoi(f.Metadata[k])
		if err != nil || v < 0 {
			return nil, fmt.Errorf("train: %s: metadata %s = %q is not a count", path, k, f.Metadata[k])
		}
		*dst = v
	}
	if err := json.Unmarshal([]byte(f.Metadata[run.MetaBest]), &st.best); err != nil {
		return nil, fmt.Errorf("train: %s: metadata best: %w", path, err)
	}
	if ls, ok := f.Metadata[metaLossScale]; ok {
		st.lossScale = &lossScaleState{}
		if err := json.Unmarshal([]byte(ls), st.lossScale); err != nil || st.lossScale.Scale <= 0 {
			return nil, fmt.Errorf("train: %s: metadata %s = %q is not a loss-scaling state", path, metaLossScale, ls)
		}
	}
	return st, nil
}

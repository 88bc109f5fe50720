package saltimport

import (
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"

	"github.com/nlpodyssey/gopickle/pytorch"
	"github.com/nlpodyssey/gopickle/types"
)

// Checkpoint is what salt-ort reads from a Lightning checkpoint (.ckpt) that
// Salt writes: the model's state_dict, and the training state where the
// file has it (Lightning's end-of-epoch checkpoints do).
type Checkpoint struct {
	Path string
	// Tensors are the state_dict entries by name, with the "_orig_mod."
	// that torch.compile adds removed (as Salt's on_load_checkpoint does),
	// and Order their names in the file's order (parameters in
	// registration order, which is the optimizer's parameter order).
	Tensors map[string]*Tensor
	Order   []string
	// Epoch is the epoch the checkpoint was written in (0-based) and
	// GlobalStep the optimizer steps done, both -1 where absent.
	Epoch, GlobalStep int
	// Loop is the fit loop's progress (loops.fit_loop), nil where absent;
	// ResumePosition interprets it.
	Loop *FitLoop
	// Optimizer is the first optimizer's state, nil where absent.
	Optimizer *OptimizerState
	// SchedulerStep and SchedulerTotal are the first learning-rate
	// scheduler's last_epoch (steps taken) and total_steps, -1 where
	// absent.
	SchedulerStep, SchedulerTotal int
}

// Tensor is a floating-point tensor of a checkpoint, in row-major order
// (strided storage views are gathered), converted to float32.
type Tensor struct {
	Shape []int
	Data  []float32
	// DType is the storage's element type as torch names it (Float, Half,
	// BFloat16, Double, Long, …); integer and bool tensors are converted
	// too, so that buffers such as register_mask read.
	DType string
}

// OptimizerState is torch.optim.AdamW's state_dict: per parameter index
// the step count and the moments, and the parameter group's settings.
type OptimizerState struct {
	// Params are the parameter indices of the parameter group (of every
	// group, one after the other, where there are several), in the order
	// of the model's parameters (for several groups, the order in which
	// the optimizer grouped them).
	Params []int
	State  map[int]*ParamState
	// Group holds the group's scalar settings (lr, eps, weight_decay,
	// beta1, beta2, …) where they are numbers.
	Group map[string]float64
	// Groups are the parameter groups where there are several (mup's
	// MuAdamW makes one per width multiplier of the matrix-like
	// parameters and a last one of the others): Params then holds their
	// parameters one group after the other, and Group is the last
	// group's. Nil for one group.
	Groups []ParamGroup
}

// ParamGroup is one parameter group of an optimizer: its number of
// parameters and its scalar settings.
type ParamGroup struct {
	Size     int
	Settings map[string]float64
}

// ParamState is AdamW's state of one parameter: its step count and its
// first and second moments; Lion's has the first moment alone (Step -1,
// ExpAvgSq nil).
type ParamState struct {
	Step             float64
	ExpAvg, ExpAvgSq *Tensor
}

// ErrNotCheckpoint reports a file that is not a PyTorch zip checkpoint
// (truncated, or another format); errors from ReadCheckpoint wrap it.
var ErrNotCheckpoint = errors.New("not a readable PyTorch checkpoint")

// ReadCheckpoint reads a Lightning checkpoint with Go alone: the zip
// archive torch.save writes, its data.pkl through gopickle's unpickler,
// and the tensor storages it refers to. Classes the pickle names beyond
// tensors and containers (Salt's modules in hyper_parameters, Lightning's
// loop state, …) are read as opaque objects and ignored.
func ReadCheckpoint(path string) (ck *Checkpoint, err error) {
	defer func() {
		// gopickle panics on some malformed inputs; a damaged file is an
		// error like any other.
		if r := recover(); r != nil {
			ck, err = nil, fmt.Errorf("%s: %w: the unpickler failed on its data.pkl (a damaged or hand-made pickle)", path, ErrNotCheckpoint)
		}
	}()
	obj, err := loadPickle(path)
	if err != nil {
		return nil, err
	}
	top, ok := asMap(obj)
	if !ok {
		return nil, fmt.Errorf("%s: %w: the pickle holds %s, not a Lightning checkpoint's dictionary", path, ErrNotCheckpoint, describe(obj))
	}
	ck = &Checkpoint{Path: path, Tensors: map[string]*Tensor{}, Epoch: -1, GlobalStep: -1, SchedulerStep: -1, SchedulerTotal: -1}
	sd, ok := top["state_dict"]
	if !ok {
		return nil, fmt.Errorf("%s: no state_dict: this is not a Lightning checkpoint (Salt's ckpts/*.ckpt)", path)
	}
	keys, values, ok := asOrdered(sd)
	if !ok {
		return nil, fmt.Errorf("%s: state_dict is %s, not a dictionary", path, describe(sd))
	}
	for i, k := range keys {
		name, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("%s: state_dict has a key that is %s, not a string", path, describe(k))
		}
		name = strings.ReplaceAll(name, "_orig_mod.", "")
		t, err := tensor(values[i])
		if err != nil {
			return nil, fmt.Errorf("%s: state_dict %s: %w", path, name, err)
		}
		if _, dup := ck.Tensors[name]; dup {
			return nil, fmt.Errorf("%s: state_dict holds %s twice", path, name)
		}
		ck.Tensors[name] = t
		ck.Order = append(ck.Order, name)
	}
	if v, ok := asInt(top["epoch"]); ok {
		ck.Epoch = v
	}
	if v, ok := asInt(top["global_step"]); ok {
		ck.GlobalStep = v
	}
	ck.Loop = fitLoop(top["loops"])
	if l, ok := asList(top["optimizer_states"]); ok && len(l) > 0 {
		if ck.Optimizer, err = optimizerState(l[0]); err != nil {
			return nil, fmt.Errorf("%s: optimizer_states[0]: %w", path, err)
		}
	}
	if l, ok := asList(top["lr_schedulers"]); ok && len(l) > 0 {
		if m, ok := asMap(l[0]); ok {
			if v, ok := asInt(m["last_epoch"]); ok {
				ck.SchedulerStep = v
			}
			if v, ok := asInt(m["total_steps"]); ok {
				ck.SchedulerTotal = v
			}
		}
	}
	return ck, nil
}

func optimizerState(v any) (*OptimizerState, error) {
	m, ok := asMap(v)
	if !ok {
		return nil, fmt.Errorf("%s, not a dictionary", describe(v))
	}
	o := &OptimizerState{State: map[int]*ParamState{}, Group: map[string]float64{}}
	groups, _ := asList(m["param_groups"])
	if len(groups) == 0 {
		return nil, fmt.Errorf("no parameter groups")
	}
	for gi, gv := range groups {
		g, ok := asMap(gv)
		if !ok {
			return nil, fmt.Errorf("param_groups[%d] is %s, not a dictionary", gi, describe(gv))
		}
		params, _ := asList(g["params"])
		for _, p := range params {
			i, ok := asInt(p)
			if !ok {
				return nil, fmt.Errorf("param_groups[%d].params holds %v", gi, p)
			}
			o.Params = append(o.Params, i)
		}
		settings := map[string]float64{}
		for k, v := range g {
			if f, ok := asFloat(v); ok {
				settings[k] = f
			}
		}
		if b, ok := asList(g["betas"]); ok && len(b) == 2 {
			settings["beta1"], _ = asFloat(b[0])
			settings["beta2"], _ = asFloat(b[1])
		}
		o.Group = settings
		if len(groups) > 1 {
			o.Groups = append(o.Groups, ParamGroup{Size: len(params), Settings: settings})
		}
	}
	state, ok := asIntMap(m["state"])
	if !ok {
		return nil, fmt.Errorf("state is %s, not a dictionary", describe(m["state"]))
	}
	for i, s := range state {
		sm, ok := asMap(s)
		if !ok {
			return nil, fmt.Errorf("state[%d] is %s, not a dictionary", i, describe(s))
		}
		ps := &ParamState{Step: -1}
		switch st := sm["step"].(type) {
		case nil: // Lion keeps no step count
		case *pytorch.Tensor:
			t, err := tensor(st)
			if err != nil || len(t.Data) != 1 {
				return nil, fmt.Errorf("state[%d].step: not a scalar", i)
			}
			ps.Step = float64(t.Data[0])
		default:
			f, ok := asFloat(st)
			if !ok {
				return nil, fmt.Errorf("state[%d].step is %s, not a number", i, describe(st))
			}
			ps.Step = f
		}
		var err error
		if ps.ExpAvg, err = tensor(sm["exp_avg"]); err != nil {
			return nil, fmt.Errorf("state[%d].exp_avg: %w", i, err)
		}
		if _, ok := sm["exp_avg_sq"]; ok {
			if ps.ExpAvgSq, err = tensor(sm["exp_avg_sq"]); err != nil {
				return nil, fmt.Errorf("state[%d].exp_avg_sq: %w", i, err)
			}
		}
		o.State[i] = ps
	}
	return o, nil
}

// tensor gathers a pickled torch tensor (any stride, any storage type)
// into a row-major float32 Tensor.
func tensor(v any) (*Tensor, error) {
	t, ok := v.(*pytorch.Tensor)
	if !ok {
		return nil, fmt.Errorf("%s, not a tensor", describe(v))
	}
	var get func(i int) float32
	var n int
	var dtype string
	switch s := t.Source.(type) {
	case *pytorch.FloatStorage:
		n, dtype, get = len(s.Data), "Float", func(i int) float32 { return s.Data[i] }
	case *pytorch.HalfStorage:
		n, dtype, get = len(s.Data), "Half", func(i int) float32 { return s.Data[i] }
	case *pytorch.BFloat16Storage:
		n, dtype, get = len(s.Data), "BFloat16", func(i int) float32 { return s.Data[i] }
	case *pytorch.DoubleStorage:
		n, dtype, get = len(s.Data), "Double", func(i int) float32 { return float32(s.Data[i]) }
	case *pytorch.LongStorage:
		n, dtype, get = len(s.Data), "Long", func(i int) float32 { return float32(s.Data[i]) }
	case *pytorch.IntStorage:
		n, dtype, get = len(s.Data), "Int", func(i int) float32 { return float32(s.Data[i]) }
	case *pytorch.BoolStorage:
		n, dtype, get = len(s.Data), "Bool", func(i int) float32 {
			if s.Data[i] {
				return 1
			}
			return 0
		}
	case *pytorch.ByteStorage:
		n, dtype, get = len(s.Data), "Byte", func(i int) float32 { return float32(s.Data[i]) }
	default:
		return nil, errors.New("its storage's element type (torch.ShortStorage or torch.CharStorage) is not one salt-ort reads")
	}
	if len(t.Stride) != len(t.Size) {
		return nil, fmt.Errorf("%d strides for %d dimensions", len(t.Stride), len(t.Size))
	}
	count := 1
	for _, d := range t.Size {
		if d < 0 {
			return nil, fmt.Errorf("negative dimension in shape %v", t.Size)
		}
		count *= d
	}
	out := &Tensor{Shape: append([]int{}, t.Size...), Data: make([]float32, count), DType: dtype}
	idx := make([]int, len(t.Size))
	for k := 0; k < count; k++ {
		off := t.StorageOffset
		for d, i := range idx {
			off += i * t.Stride[d]
		}
		if off < 0 || off >= n {
			return nil, fmt.Errorf("shape %v, strides %v, offset %d reach past its storage of %d elements", t.Size, t.Stride, t.StorageOffset, n)
		}
		out.Data[k] = get(off)
		for d := len(idx) - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < t.Size[d] {
				break
			}
			idx[d] = 0
		}
	}
	return out, nil
}

// asMap reads a pickled dict or OrderedDict with string keys.
func asMap(v any) (map[string]any, bool) {
	keys, values, ok := asOrdered(v)
	if !ok {
		return nil, false
	}
	m := make(map[string]any, len(keys))
	for i, k := range keys {
		if s, ok := k.(string); ok {
			m[s] = values[i]
		}
	}
	return m, true
}

// asIntMap reads a pickled dict with integer keys.
func asIntMap(v any) (map[int]any, bool) {
	keys, values, ok := asOrdered(v)
	if !ok {
		return nil, false
	}
	m := make(map[int]any, len(keys))
	for i, k := range keys {
		if n, ok := asInt(k); ok {
			m[n] = values[i]
		}
	}
	return m, true
}

// asOrdered returns the keys and values of a pickled dict, OrderedDict or
// opaque object with dictionary items, in their order.
func asOrdered(v any) (keys, values []any, ok bool) {
	switch d := v.(type) {
	case *types.Dict:
		for _, e := range *d {
			keys, values = append(keys, e.Key), append(values, e.Value)
		}
		return keys, values, true
	case *types.OrderedDict:
		for e := d.List.Front(); e != nil; e = e.Next() {
			entry := e.Value.(*types.OrderedDictEntry)
			keys, values = append(keys, entry.Key), append(values, entry.Value)
		}
		return keys, values, true
	case *opaque:
		return d.keys, d.values, d.keys != nil || d.values != nil
	}
	return nil, nil, false
}

func asList(v any) ([]any, bool) {
	switch l := v.(type) {
	case *types.List:
		return *l, true
	case *types.Tuple:
		return *l, true
	}
	return nil, false
}

func asInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case bool:
		return 0, false
	case *big.Int:
		if n.IsInt64() {
			return int(n.Int64()), true
		}
	}
	return 0, false
}

func asFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	}
	return 0, false
}

// findClass resolves the classes and functions a Lightning checkpoint's
// pickle names: tensors' and parameters' rebuild functions are real,
// everything else (Salt's and Lightning's classes, torch dtypes and
// devices, numpy scalars, …) becomes an opaque object that accepts any
// construction and state.
func findClass(module, name string) (any, error) {
	switch module + "." + name {
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		return rebuildParameter{}, nil
	}
	return &opaque{class: module + "." + name}, nil
}

// rebuildParameter returns a parameter's data tensor.
type rebuildParameter struct{}

func (rebuildParameter) Call(args ...any) (any, error) {
	if len(args) < 1 {
		return nil, fmt.Errorf("_rebuild_parameter without arguments")
	}
	return args[0], nil
}

// opaque is a Python class or object salt-ort does not interpret. It can be
// called and instantiated (giving another opaque object), and receives
// items, attributes and state, keeping dictionary items so that a
// dict-like class (defaultdict, AttributeDict) still reads as one.
type opaque struct {
	class        string
	keys, values []any
}

func (o *opaque) Call(args ...any) (any, error)  { return &opaque{class: o.class + "()"}, nil }
func (o *opaque) PyNew(args ...any) (any, error) { return &opaque{class: o.class}, nil }
func (o *opaque) PySetState(state any) error     { return nil }
func (o *opaque) PyDictSet(key, value any) error { return nil }
func (o *opaque) PySetAttr(string, any) error    { return nil }
func (o *opaque) Append(any)                     {}
func (o *opaque) Add(any)                        {}
func (o *opaque) Set(key, value any) {
	o.keys, o.values = append(o.keys, key), append(o.values, value)
}

// sortedKeys returns m's keys in order, for messages.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

package deploy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/salt-ort/salt-ort/codegen/onnxpb"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/run"
	"github.com/salt-ort/salt-ort/runtime"
)

// openFor opens the model Validate checks, on the device its options ask
// for.
func openFor(opts ValidateOptions) (*Model, error) {
	provider := opts.Provider
	switch opts.Device {
	case "", "cpu":
	case "cuda":
		if provider == "" {
			dev, err := run.CUDADevice(opts.Runtime, "")
			if err != nil {
				return nil, fmt.Errorf("deploy: --device cuda: %w; or validate on the CPU with --device cpu", err)
			}
			return open(opts.Runtime, opts.Model, opts.Threads, &dev)
		}
	default:
		return nil, fmt.Errorf("deploy: --device %q: give cpu or cuda", opts.Device)
	}
	if provider == "" {
		return Open(opts.Runtime, opts.Model, opts.Threads)
	}
	dev, err := opts.Runtime.DeviceAt(provider, 0)
	if err != nil {
		return nil, err
	}
	return open(opts.Runtime, opts.Model, opts.Threads, &dev)
}

// closeDevice releases the device session and its bindings.
func (m *Model) closeDevice() error {
	var errs []error
	for _, b := range m.bindings {
		errs = append(errs, b.Close())
	}
	m.bindings = nil
	errs = append(errs, m.dev.Close())
	return errors.Join(errs...)
}

// binding returns the device binding for tensors of the shapes specs give,
// made on first use and kept for the calls with the same shapes.
func (m *Model) binding(specs []runtime.TensorSpec) (*runtime.DeviceBinding, error) {
	var key strings.Builder
	for _, s := range specs {
		fmt.Fprintf(&key, "%s%v;", s.Name, s.Shape)
	}
	if b, ok := m.bindings[key.String()]; ok {
		return b, nil
	}
	b, err := runtime.NewDeviceBinding(m.dev, specs, runtime.DeviceBindingOptions{})
	if err != nil {
		return nil, err
	}
	if m.bindings == nil {
		m.bindings = map[string]*runtime.DeviceBinding{}
	}
	m.bindings[key.String()] = b
	return b, nil
}

// fill copies values into the host buffer of input name.
func fill(b *runtime.DeviceBinding, name string, values []float32) error {
	d, err := b.Float32(name)
	if err != nil {
		return err
	}
	if len(d) != len(values) {
		return fmt.Errorf("deploy: input %s holds %d values, the vectors give %d", name, len(d), len(values))
	}
	copy(d, values)
	return nil
}

// output reads output o of a run as float32 (int8 classes exactly).
func output(b *runtime.DeviceBinding, o OutputSpec) ([]float32, error) {
	if o.Type == int32(onnxpb.TensorProto_INT8) {
		d, err := b.Int8(o.Name)
		if err != nil {
			return nil, err
		}
		vals := make([]float32, len(d))
		for i, c := range d {
			vals[i] = float32(c)
		}
		return vals, nil
	}
	d, err := b.Float32(o.Name)
	if err != nil {
		return nil, err
	}
	return append([]float32(nil), d...), nil
}

// runSingleOnDevice is runSingle on the device session: one call per jet
// with its valid constituents.
func (m *Model) runSingleOnDevice(v *Vectors) (map[string][][]float32, error) {
	nj := len(v.JetVars)
	res := map[string][][]float32{}
	for j := 0; j < v.Jets; j++ {
		specs := []runtime.TensorSpec{{Name: model.JetFeaturesInput, Type: runtime.TypeFloat32, Shape: []int64{1, int64(nj)}}}
		size := map[string]int{}
		for gi := range v.Groups {
			g := &v.Groups[gi]
			size[g.Name] = g.N[j]
			specs = append(specs, runtime.TensorSpec{Name: g.Input, Type: runtime.TypeFloat32, Shape: []int64{int64(g.N[j]), int64(len(g.Vars))}})
		}
		for _, o := range m.Outputs {
			s := runtime.TensorSpec{Name: o.Name, Type: runtime.TypeFloat32}
			if group := m.outputGroup(o.Name); group != "" {
				s.Shape = []int64{int64(size[group])}
			}
			if o.Type == int32(onnxpb.TensorProto_INT8) {
				s.Type = runtime.TypeInt8
			}
			specs = append(specs, s)
		}
		if err := m.runJetOnDevice(v, j, specs, res); err != nil {
			return nil, fmt.Errorf("deploy: %s: jet %d (%s): %w", m.Path, j, describeSizes(v, j), err)
		}
	}
	return res, nil
}

// runJetOnDevice runs jet j with tensors of the shapes specs give and
// appends its outputs to res.
func (m *Model) runJetOnDevice(v *Vectors, j int, specs []runtime.TensorSpec, res map[string][][]float32) error {
	b, err := m.binding(specs)
	if err != nil {
		return err
	}
	nj := len(v.JetVars)
	if err := fill(b, model.JetFeaturesInput, v.JetRaw[j*nj:(j+1)*nj]); err != nil {
		return err
	}
	for gi := range v.Groups {
		if err := fill(b, v.Groups[gi].Input, v.Groups[gi].rows(j)); err != nil {
			return err
		}
	}
	if err := b.Run(); err != nil {
		return err
	}
	for _, o := range m.Outputs {
		vals, err := output(b, o)
		if err != nil {
			return err
		}
		res[o.Name] = append(res[o.Name], vals)
	}
	return nil
}

// runBatchedOnDevice is runBatched on the device session.
func (m *Model) runBatchedOnDevice(v *Vectors) (map[string][][]float32, error) {
	nj := len(v.JetVars)
	res := map[string][][]float32{}
	const chunk = 100
	for start := 0; start < v.Jets; start += chunk {
		b := min(chunk, v.Jets-start)
		specs := []runtime.TensorSpec{{Name: model.JetsInput, Type: runtime.TypeFloat32, Shape: []int64{int64(b), int64(nj)}}}
		sub := &Vectors{Jets: b, Expected: map[string][]float32{}, Probs: map[string][]float32{}, Pairs: map[string][]float32{}}
		valid := map[string][]bool{}
		for gi := range v.Groups {
			g := &v.Groups[gi]
			t, nv := g.MaxLen, len(g.Vars)
			specs = append(specs,
				runtime.TensorSpec{Name: g.Name, Type: runtime.TypeFloat32, Shape: []int64{int64(b), int64(t), int64(nv)}},
				runtime.TensorSpec{Name: model.ValidInput(g.Name), Type: runtime.TypeBool, Shape: []int64{int64(b), int64(t)}})
			mask := make([]bool, b*t)
			for j := 0; j < b; j++ {
				for i := 0; i < g.N[start+j]; i++ {
					mask[j*t+i] = true
				}
			}
			valid[model.ValidInput(g.Name)] = mask
			sub.Groups = append(sub.Groups, GroupVectors{Name: g.Name, MaxLen: t, Vars: g.Vars, N: g.N[start : start+b]})
		}
		for i, o := range m.Outputs {
			shape := append([]int64(nil), m.outDims[i]...)
			for k, d := range shape {
				if d < 0 {
					shape[k] = int64(b) // n_jets, the only named dimension
				}
			}
			specs = append(specs, runtime.TensorSpec{Name: o.Name, Type: runtime.TypeFloat32, Shape: shape})
		}
		bind, err := m.binding(specs)
		if err == nil {
			err = fill(bind, model.JetsInput, v.JetRaw[start*nj:(start+b)*nj])
		}
		for gi := range v.Groups {
			g := &v.Groups[gi]
			t, nv := g.MaxLen, len(g.Vars)
			if err == nil {
				err = fill(bind, g.Name, g.Raw[start*t*nv:(start+b)*t*nv])
			}
			if err == nil {
				var d []bool
				if d, err = bind.Bool(model.ValidInput(g.Name)); err == nil {
					copy(d, valid[model.ValidInput(g.Name)])
				}
			}
		}
		if err == nil {
			err = bind.Run()
		}
		preds := map[string][]float32{}
		for _, o := range m.Outputs {
			if err == nil {
				preds[o.Name], err = output(bind, o)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("deploy: %s: jets %d..%d: %w", m.Path, start, start+b, err)
		}
		if err := m.addBatched(res, sub, preds); err != nil {
			return nil, err
		}
	}
	return res, nil
}

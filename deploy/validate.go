package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/salt-ort/salt-ort/codegen/onnxpb"
	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/runtime"
)

// DefaultTolerance is the largest absolute difference Validate accepts on
// float outputs (probabilities), and the distance from a decision boundary
// within which a differing class or vertex is not counted as a failure.
const DefaultTolerance = 1e-5

// ValidateOptions configure Validate.
type ValidateOptions struct {
	Model     string
	Vectors   string  // default: VectorsPath(Model)
	Tolerance float64 // default: DefaultTolerance
	Threads   int     // ONNX Runtime threads (default 1)
	Runtime   *runtime.Runtime
	// Device runs the model on "cpu" ("" too), or on "cuda" through ONNX
	// Runtime's CUDA provider, which must be available here.
	Device string
	// Provider, when not "", places the model on that execution
	// provider's device instead (tests run the device path with
	// runtime.CPUProvider).
	Provider string
}

// OutputReport is the comparison of one output over all jets.
type OutputReport struct {
	Name     string
	Type     string
	Compared int // values (float outputs) or constituents (class and vertex outputs)
	// Mismatches counts values beyond the tolerance, or differing classes
	// or vertices not explained by a near tie.
	Mismatches int
	// NearBoundary counts differing classes or vertices whose decision
	// probabilities are within the tolerance of the boundary.
	NearBoundary int
	MaxAbs       float64
	MaxRel       float64
}

// Pass reports whether the output reproduces the vectors.
func (o OutputReport) Pass() bool { return o.Mismatches == 0 }

// Report is the result of Validate.
type Report struct {
	Model     string
	Interface string
	Jets      int
	Tolerance float64
	Outputs   []OutputReport
	// Results holds the model's outputs per jet (float32; int8 outputs
	// converted exactly), for comparing runs bit for bit.
	Results map[string][][]float32
}

// Pass reports whether every output reproduces the vectors.
func (r *Report) Pass() bool {
	for _, o := range r.Outputs {
		if !o.Pass() {
			return false
		}
	}
	return len(r.Outputs) > 0
}

// Model is an exported model opened for running.
type Model struct {
	Path    string
	Meta    *Metadata
	Spec    model.Spec
	Outputs []OutputSpec
	sess    *runtime.Session
	vlayout vectorLayout
	// dev is the session on an execution provider's device
	// (ValidateOptions.Device), nil on the default CPU session; bindings
	// are its bound tensors per input shape, and outDims the graph
	// outputs' dimensions (-1 where named, such as n_jets).
	dev      *runtime.DeviceSession
	bindings map[string]*runtime.DeviceBinding
	outDims  [][]int64
}

// OutputSpec is an output's name and ONNX element type.
type OutputSpec struct {
	Name string
	Type int32
}

// Open loads an exported model: its metadata and a session.
func Open(rt *runtime.Runtime, path string, threads int) (*Model, error) {
	return open(rt, path, threads, nil)
}

// open is Open with the session on dev, or on the default CPU session
// where dev is nil.
func open(rt *runtime.Runtime, path string, threads int, dev *runtime.Device) (*Model, error) {
	m, data, err := openMeta(path)
	if err != nil {
		return nil, err
	}
	if threads <= 0 {
		threads = 1
	}
	if dev == nil {
		if m.sess, err = rt.NewSession(path, data, runtime.Options{IntraOpThreads: threads}); err != nil {
			return nil, err
		}
	} else if m.dev, err = rt.NewDeviceSession(path, data, *dev, runtime.DeviceOptions{Options: runtime.Options{IntraOpThreads: threads}}); err != nil {
		return nil, err
	}
	return m, nil
}

// openMeta reads an exported model's bytes and metadata, without a
// session.
func openMeta(path string) (*Model, []byte, error) {
	data, err := readModel(path)
	if err != nil {
		return nil, nil, err
	}
	mp, meta, err := ReadMetadata(data)
	if err != nil {
		return nil, nil, fmt.Errorf("deploy: %s: %w", path, err)
	}
	cfg, err := config.Parse(path+"#"+MetadataKey, []byte(meta.Config))
	if err != nil {
		return nil, nil, fmt.Errorf("deploy: %s: the recorded configuration: %w", path, err)
	}
	// The normalisation the model was exported with, not the training
	// machine's norm dict, which need not be here.
	cfg.SetNormDict(meta.normDict())
	spec, err := cfg.Spec(cfg.UniformClassWeights)
	if err != nil {
		return nil, nil, fmt.Errorf("deploy: %s: %w", path, err)
	}
	spec.Name = meta.Model
	vl, err := layoutOf(meta)
	if err != nil {
		return nil, nil, err
	}
	m := &Model{Path: path, Meta: meta, Spec: spec, vlayout: vl}
	for _, o := range mp.GetGraph().GetOutput() {
		m.Outputs = append(m.Outputs, OutputSpec{Name: o.GetName(), Type: o.GetType().GetTensorType().GetElemType()})
		var dims []int64
		for _, d := range o.GetType().GetTensorType().GetShape().GetDim() {
			if p, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); ok {
				dims = append(dims, p.DimValue)
			} else {
				dims = append(dims, -1)
			}
		}
		m.outDims = append(m.outDims, dims)
	}
	return m, data, nil
}

// readModel reads the ONNX file at path, refusing one that is not a
// regular file or is larger than MaxModelSize before reading it.
func readModel(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	defer fh.Close()
	info, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	switch {
	case !info.Mode().IsRegular():
		return nil, fmt.Errorf("deploy: %s: not a regular file; give the .onnx file salt-ort export wrote", path)
	case info.Size() > MaxModelSize:
		return nil, fmt.Errorf("deploy: %s: %d bytes, more than the %d a single ONNX file can hold (protobuf's limit); salt-ort's exports are far smaller: give the .onnx file salt-ort export wrote", path, info.Size(), int64(MaxModelSize))
	}
	// Read to the end rather than the size the file system states: a file
	// whose stated size is 0 (/proc's) still reads, or fails with its own
	// error (EIO), and one that grew is still bounded.
	buf := bytes.NewBuffer(make([]byte, 0, info.Size()+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(fh, MaxModelSize+1)); err != nil {
		return nil, fmt.Errorf("deploy: %s: %w", path, err)
	}
	if buf.Len() > MaxModelSize {
		return nil, fmt.Errorf("deploy: %s: more than the %d bytes a single ONNX file can hold (protobuf's limit); salt-ort's exports are far smaller: give the .onnx file salt-ort export wrote", path, int64(MaxModelSize))
	}
	return buf.Bytes(), nil
}

// ReadMetadata parses serialised model bytes and the salt-ort metadata
// they carry. It walks the bytes first and refuses, before decoding
// them, a model that would take far more memory than its size or nests
// messages too deep (checkModelBounds).
func ReadMetadata(data []byte) (*onnxpb.ModelProto, *Metadata, error) {
	if len(data) == 0 {
		return nil, nil, errors.New("empty file: export the model again (salt-ort export)")
	}
	if err := checkModelBounds(data); err != nil {
		return nil, nil, err
	}
	mp, err := onnxpb.Unmarshal(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: not an ONNX model, or a truncated or damaged one; export it again (salt-ort export)", err)
	}
	var raw string
	for _, kv := range mp.GetMetadataProps() {
		if kv.GetKey() == MetadataKey {
			raw = kv.GetValue()
		}
	}
	if raw == "" {
		return nil, nil, fmt.Errorf("no %s metadata: was the model exported by salt-ort?", MetadataKey)
	}
	meta, err := ParseMetadata(raw)
	if err != nil {
		return nil, nil, err
	}
	if len(meta.Inputs) == 0 || len(meta.ValidationOutputs) == 0 {
		return nil, nil, fmt.Errorf("metadata %s: want the jet input and the validation outputs, got %d inputs and %d outputs", MetadataKey, len(meta.Inputs), len(meta.ValidationOutputs))
	}
	return mp, meta, nil
}

// Close releases the session.
func (m *Model) Close() error {
	if m.dev != nil {
		return m.closeDevice()
	}
	return m.sess.Close()
}

// Run runs the model on validation vectors and returns, per validation
// output, its values per jet (in the one-jet interface's terms).
func (m *Model) Run(v *Vectors) (map[string][][]float32, error) {
	switch {
	case m.dev != nil && m.Meta.Interface == "batched":
		return m.runBatchedOnDevice(v)
	case m.dev != nil:
		return m.runSingleOnDevice(v)
	case m.Meta.Interface == "batched":
		return m.runBatched(v)
	}
	return m.runSingle(v)
}

// runSingle calls the model once per jet with its valid constituents.
func (m *Model) runSingle(v *Vectors) (map[string][][]float32, error) {
	nj := len(v.JetVars)
	res := map[string][][]float32{}
	names := m.sess.InputNames()
	for j := 0; j < v.Jets; j++ {
		ins := map[string]runtime.Value{}
		release := func() {
			for _, x := range ins {
				runtime.Destroy(x)
			}
		}
		jet, err := runtime.NewTensor([]int64{1, int64(nj)}, append([]float32(nil), v.JetRaw[j*nj:(j+1)*nj]...))
		if err != nil {
			return nil, err
		}
		ins[model.JetFeaturesInput] = jet
		size := map[string]int{} // constituents per group, by group name
		for gi := range v.Groups {
			g := &v.Groups[gi]
			n := g.N[j]
			size[g.Name] = n
			// ONNX Runtime wants a data pointer even for no constituents.
			t, err := runtime.NewTensor([]int64{int64(n), int64(len(g.Vars))}, append(make([]float32, 0, n*len(g.Vars)+1), g.rows(j)...))
			if err != nil {
				release()
				return nil, err
			}
			ins[g.Input] = t
		}
		inputs := make([]runtime.Value, len(names))
		for i, name := range names {
			if inputs[i] = ins[name]; inputs[i] == nil {
				release()
				return nil, fmt.Errorf("deploy: %s: the validation vectors have nothing for input %s", m.Path, name)
			}
		}
		outs := make([]runtime.Value, len(m.Outputs))
		for i, o := range m.Outputs {
			group := m.outputGroup(o.Name)
			switch {
			case o.Type == int32(onnxpb.TensorProto_INT8):
				n := size[group]
				outs[i], err = runtime.NewTensor([]int64{int64(n)}, make([]int8, n+1))
			case group != "": // float32 [n]
				n := size[group]
				outs[i], err = runtime.NewTensor([]int64{int64(n)}, make([]float32, n+1))
			default:
				outs[i], err = runtime.NewScalar[float32](0)
			}
			if err != nil {
				runtime.Destroy(outs...)
				release()
				return nil, err
			}
		}
		err = m.sess.Run(inputs, outs)
		if err == nil {
			for i, o := range m.Outputs {
				var vals []float32
				switch x := outs[i].(type) {
				case *runtime.Tensor[int8]:
					for _, c := range x.GetData() {
						vals = append(vals, float32(c))
					}
				case *runtime.Tensor[float32]:
					vals = append(vals, x.GetData()...)
				case *runtime.Scalar[float32]:
					vals = []float32{x.GetData()}
				}
				res[o.Name] = append(res[o.Name], vals)
			}
		}
		runtime.Destroy(outs...)
		release()
		if err != nil {
			return nil, fmt.Errorf("deploy: %s: jet %d (%s): %w", m.Path, j, describeSizes(v, j), err)
		}
	}
	return res, nil
}

// outputGroup returns the constituent group of a per-constituent output.
func (m *Model) outputGroup(name string) string {
	for _, o := range m.Meta.Outputs {
		if o.Name == name {
			return o.Group
		}
	}
	return ""
}

// describeSizes says how many constituents of each group jet j has.
func describeSizes(v *Vectors, j int) string {
	var parts []string
	for _, g := range v.Groups {
		parts = append(parts, fmt.Sprintf("%d %s", g.N[j], g.Name))
	}
	if len(parts) == 0 {
		return "no constituents"
	}
	return strings.Join(parts, ", ")
}

// runBatched calls the batched model on chunks of jets and decides its
// predictions into the one-jet interface's outputs.
func (m *Model) runBatched(v *Vectors) (map[string][][]float32, error) {
	nj := len(v.JetVars)
	res := map[string][][]float32{}
	const chunk = 100
	for start := 0; start < v.Jets; start += chunk {
		b := min(chunk, v.Jets-start)
		ins := map[string]runtime.Value{}
		release := func() {
			for _, x := range ins {
				runtime.Destroy(x)
			}
		}
		jets, err := runtime.NewTensor([]int64{int64(b), int64(nj)}, append([]float32(nil), v.JetRaw[start*nj:(start+b)*nj]...))
		if err != nil {
			return nil, err
		}
		ins[model.JetsInput] = jets
		sub := &Vectors{Jets: b, Expected: map[string][]float32{}, Probs: map[string][]float32{}, Pairs: map[string][]float32{}}
		for gi := range v.Groups {
			g := &v.Groups[gi]
			t, nv := g.MaxLen, len(g.Vars)
			valid := make([]bool, b*t)
			for j := 0; j < b; j++ {
				for i := 0; i < g.N[start+j]; i++ {
					valid[j*t+i] = true
				}
			}
			seq, err := runtime.NewTensor([]int64{int64(b), int64(t), int64(nv)}, append([]float32(nil), g.Raw[start*t*nv:(start+b)*t*nv]...))
			if err != nil {
				release()
				return nil, err
			}
			ins[g.Name] = seq
			vt, err := runtime.NewTensor([]int64{int64(b), int64(t)}, valid)
			if err != nil {
				release()
				return nil, err
			}
			ins[model.ValidInput(g.Name)] = vt
			sub.Groups = append(sub.Groups, GroupVectors{Name: g.Name, MaxLen: t, Vars: g.Vars, N: g.N[start : start+b]})
		}
		inputs := make([]runtime.Value, 0, len(ins))
		for _, name := range m.sess.InputNames() {
			if ins[name] == nil {
				release()
				return nil, fmt.Errorf("deploy: %s: the validation vectors have nothing for input %s", m.Path, name)
			}
			inputs = append(inputs, ins[name])
		}
		outs := make([]runtime.Value, len(m.Outputs))
		err = m.sess.Run(inputs, outs)
		if err != nil {
			runtime.Destroy(outs...)
			release()
			return nil, fmt.Errorf("deploy: %s: jets %d..%d: %w", m.Path, start, start+b, err)
		}
		preds := map[string][]float32{}
		for i, o := range m.Outputs {
			preds[o.Name] = append([]float32(nil), outs[i].(*runtime.Tensor[float32]).GetData()...)
		}
		runtime.Destroy(outs...)
		release()
		if err := m.addBatched(res, sub, preds); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// addBatched decides the batched model's predictions preds for the jets
// of sub into the one-jet interface's outputs and appends them to res.
func (m *Model) addBatched(res map[string][][]float32, sub *Vectors, preds map[string][]float32) error {
	if err := deriveOutputs(m.Spec, m.vlayout.outputs, sub, preds); err != nil {
		return err
	}
	b := sub.Jets
	for _, o := range m.vlayout.outputs {
		vals := sub.Expected[o.Name]
		per := len(vals) / b
		for j := 0; j < b; j++ {
			row := vals[j*per : (j+1)*per]
			if o.PerConstituent() {
				row = row[:sub.group(o.Group).N[j]]
			}
			res[o.Name] = append(res[o.Name], append([]float32(nil), row...))
		}
	}
	return nil
}

// ReadVectors reads the validation vectors of the model.
func (m *Model) ReadVectors(path string) (*Vectors, error) {
	return readVectors(path, m.Meta, m.vlayout)
}

// Validate runs an exported model on its validation vectors and compares
// every output with what the training-time evaluation graph produced.
func Validate(ctx context.Context, opts ValidateOptions) (*Report, error) {
	if opts.Vectors == "" {
		opts.Vectors = VectorsPath(opts.Model)
	}
	if opts.Tolerance == 0 {
		opts.Tolerance = DefaultTolerance
	}
	m, err := openFor(opts)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	v, err := m.ReadVectors(opts.Vectors)
	if err != nil {
		return nil, err
	}
	got, err := m.Run(v)
	if err != nil {
		return nil, err
	}
	r := &Report{Model: opts.Model, Interface: m.Meta.Interface, Jets: v.Jets, Tolerance: opts.Tolerance, Results: got}
	for i, o := range m.vlayout.outputs {
		r.Outputs = append(r.Outputs, compare(o, m.Meta.ValidationOutputs[i].Type, got[o.Name], v, m.vlayout, opts.Tolerance))
	}
	return r, nil
}

// compare checks one output against the vectors.
func compare(o model.DeployOutput, typ string, got [][]float32, v *Vectors, l vectorLayout, tol float64) OutputReport {
	rep := OutputReport{Name: o.Name, Type: typ}
	want := v.Expected[o.Name]
	if len(got) != v.Jets {
		rep.Mismatches = v.Jets
		return rep
	}
	if !o.PerConstituent() {
		for j := 0; j < v.Jets; j++ {
			rep.Compared++
			d := math.Abs(float64(got[j][0]) - float64(want[j]))
			rep.MaxAbs = math.Max(rep.MaxAbs, d)
			rep.MaxRel = math.Max(rep.MaxRel, d/math.Max(math.Abs(float64(want[j])), 1e-12))
			// Probabilities are compared absolutely; regression values,
			// which carry units, relative to their size above 1.
			if d > tol*math.Max(1, scale(o, want[j])) || math.IsNaN(d) {
				rep.Mismatches++
			}
		}
		return rep
	}
	g := v.group(o.Group)
	t := g.MaxLen
	for j := 0; j < v.Jets; j++ {
		gj, n := got[j], g.N[j]
		if len(gj) != n {
			rep.Mismatches += n
			continue
		}
		if !o.Int8() { // regression values of each constituent
			for i := 0; i < n; i++ {
				rep.Compared++
				w := want[j*t+i]
				d := math.Abs(float64(gj[i]) - float64(w))
				rep.MaxAbs = math.Max(rep.MaxAbs, d)
				rep.MaxRel = math.Max(rep.MaxRel, d/math.Max(math.Abs(float64(w)), 1e-12))
				if d > tol*math.Max(1, scale(o, w)) || math.IsNaN(d) {
					rep.Mismatches++
				}
			}
			continue
		}
		if o.Kind == model.VertexIndex {
			rep.Compared += n
			same := true
			for i := 0; i < n; i++ {
				same = same && gj[i] == want[j*t+i]
			}
			if !same {
				if pairNearHalf(v.Pairs[o.Name][j*t*t:], n, t, tol) {
					rep.NearBoundary += n
				} else {
					rep.Mismatches += n
				}
			}
			continue
		}
		c := l.classes[o.Name]
		for i := 0; i < n; i++ {
			rep.Compared++
			if gj[i] == want[j*t+i] {
				continue
			}
			if nearTie(v.Probs[o.Name][(j*t+i)*c:(j*t+i+1)*c], tol) {
				rep.NearBoundary++
			} else {
				rep.Mismatches++
			}
		}
	}
	return rep
}

// scale is the size an output's tolerance is relative to: 1 for
// probabilities, the value itself for regression outputs.
func scale(o model.DeployOutput, want float32) float64 {
	if o.Kind == model.ClassProbability {
		return 1
	}
	return math.Abs(float64(want))
}

// pairNearHalf reports whether a symmetrised pair probability of the n
// valid tracks is within tol of 0.5.
func pairNearHalf(p []float32, n, stride int, tol float64) bool {
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			s := float64((p[i*stride+j] + p[j*stride+i]) * 0.5)
			if math.Abs(s-0.5) <= tol {
				return true
			}
		}
	}
	return false
}

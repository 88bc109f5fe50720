// Package graphtest runs graphs in ONNX Runtime for tests: it compiles a
// graph, feeds and fetches values as float64 whatever the element type, and
// checks reverse-mode gradients against central finite differences.
package graphtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/runtime"
)

// OpenRuntime loads ONNX Runtime for a test, failing it with the fix when
// the library is missing.
func OpenRuntime(t testing.TB) *runtime.Runtime {
	t.Helper()
	path, err := runtime.LibraryPath("")
	if err != nil {
		t.Fatal(err)
	}
	rt, err := runtime.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// Runner is a compiled graph.
type Runner struct {
	sess    *runtime.Session
	inputs  map[string]*graph.Tensor
	outputs map[string]*graph.Tensor
	Model   []byte
}

// Compile marshals g (parameters as inputs unless opts gives values) and
// creates a single-threaded session for it.
func Compile(t testing.TB, g *graph.Graph, opts graph.ModelOptions) *Runner {
	t.Helper()
	model, err := g.Marshal(opts)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := OpenRuntime(t).NewSession(g.Name(), model, runtime.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	r := &Runner{sess: sess, inputs: map[string]*graph.Tensor{}, outputs: map[string]*graph.Tensor{}, Model: model}
	for _, in := range g.Inputs() {
		r.inputs[in.Name()] = in
	}
	for _, p := range g.Params() {
		r.inputs[p.Name()] = p.Tensor
	}
	for _, o := range g.Outputs() {
		r.outputs[o.Name()] = o
	}
	return r
}

// Run feeds the named inputs (every model input must be given) and returns
// every output, converted to float64.
func (r *Runner) Run(feeds map[string][]float64) (map[string][]float64, error) {
	return r.RunShaped(feeds, nil)
}

// RunShaped is Run with explicit shapes for inputs with dynamic
// dimensions. Outputs with dynamic dimensions are allocated by ONNX Runtime.
func (r *Runner) RunShaped(feeds map[string][]float64, shapes map[string][]int64) (map[string][]float64, error) {
	names := r.sess.InputNames()
	ins := make([]runtime.Value, len(names))
	defer func() { runtime.Destroy(ins...) }()
	for i, name := range names {
		t, ok := r.inputs[name]
		v, fed := feeds[name]
		if !ok || !fed {
			return nil, fmt.Errorf("graphtest: no value for input %q", name)
		}
		shape := t.Shape()
		if sh, ok := shapes[name]; ok {
			shape = sh
		}
		val, err := newValue(t.DType(), shape, v)
		if err != nil {
			return nil, fmt.Errorf("graphtest: input %q: %w", name, err)
		}
		ins[i] = val
	}
	outs := make([]runtime.Value, len(r.sess.OutputNames()))
	defer func() { runtime.Destroy(outs...) }()
	for i, name := range r.sess.OutputNames() {
		t := r.outputs[name]
		if !t.Shape().Static() {
			continue // allocated by ONNX Runtime
		}
		// onnxruntime_go cannot wrap rank-0 values ONNX Runtime allocates,
		// so static outputs are allocated here from the graph's own shapes.
		val, err := newValue(t.DType(), t.Shape(), make([]float64, t.Shape().Size()))
		if err != nil {
			return nil, fmt.Errorf("graphtest: output %q: %w", name, err)
		}
		outs[i] = val
	}
	if err := r.sess.Run(ins, outs); err != nil {
		return nil, err
	}
	res := make(map[string][]float64, len(outs))
	for i, name := range r.sess.OutputNames() {
		res[name] = toFloat64(outs[i])
	}
	return res, nil
}

func newValue(d graph.DType, shape graph.Shape, v []float64) (runtime.Value, error) {
	if int64(len(v)) != shape.Size() {
		return nil, fmt.Errorf("%d values for shape %v", len(v), shape)
	}
	dims := []int64(shape)
	if len(dims) == 0 {
		switch d {
		case graph.Float32:
			return runtime.NewScalar(float32(v[0]))
		case graph.Float64:
			return runtime.NewScalar(v[0])
		case graph.Int64:
			return runtime.NewScalar(int64(v[0]))
		}
	}
	switch d {
	case graph.Float32:
		return runtime.NewTensor(dims, convert[float32](v))
	case graph.Float64:
		return runtime.NewTensor(dims, append([]float64(nil), v...))
	case graph.Int64:
		return runtime.NewTensor(dims, convert[int64](v))
	case graph.Int32:
		return runtime.NewTensor(dims, convert[int32](v))
	case graph.Int8:
		return runtime.NewTensor(dims, convert[int8](v))
	case graph.Bool:
		b := make([]bool, len(v))
		for i, x := range v {
			b[i] = x != 0
		}
		return runtime.NewTensor(dims, b)
	}
	return nil, fmt.Errorf("unsupported type %s", d)
}

func convert[T int64 | int32 | int8 | float32](v []float64) []T {
	out := make([]T, len(v))
	for i, x := range v {
		out[i] = T(x)
	}
	return out
}

func toFloat64(v runtime.Value) []float64 {
	switch t := v.(type) {
	case *runtime.Tensor[float32]:
		return widen(t.GetData())
	case *runtime.Tensor[float64]:
		return append([]float64(nil), t.GetData()...)
	case *runtime.Tensor[int64]:
		return widen(t.GetData())
	case *runtime.Tensor[int32]:
		return widen(t.GetData())
	case *runtime.Tensor[int8]:
		return widen(t.GetData())
	case *runtime.Scalar[float32]:
		return []float64{float64(t.GetData())}
	case *runtime.Scalar[float64]:
		return []float64{t.GetData()}
	case *runtime.Scalar[int64]:
		return []float64{float64(t.GetData())}
	case *runtime.Tensor[bool]:
		out := make([]float64, len(t.GetData()))
		for i, b := range t.GetData() {
			if b {
				out[i] = 1
			}
		}
		return out
	}
	panic(fmt.Sprintf("graphtest: unsupported output %T", v))
}

func widen[T int64 | int32 | int8 | float32](v []T) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// Var is a differentiable input of a gradient check.
type Var struct {
	Name  string
	Shape graph.Shape
	// Gen draws one element; nil draws from N(0, 1).
	Gen func(r *rand.Rand) float64
}

// Fixed is a non-differentiable input (labels, masks) with given values.
type Fixed struct {
	Name   string
	DType  graph.DType
	Shape  graph.Shape
	Values []float64
}

// GradCheck compares the gradients Grad appends with central finite
// differences of the same graph run in ONNX Runtime. The loss is
// Σ y·R for a fixed random R, so every element of y's gradient matters.
// Random inputs the graph declares (dropout masks) are drawn once and
// fed unchanged to every run.
type GradCheck struct {
	DType graph.DType // Float64 (tolerance 1e-6) or Float32 (1e-3) by default
	Vars  []Var
	Fixed []Fixed
	// Build returns y from the variables and fixed inputs; parameters it
	// declares are checked too.
	Build func(g *graph.Graph, vars, fixed []*graph.Tensor) *graph.Tensor
	// Tol overrides the relative tolerance.
	Tol float64
	// Step overrides the finite-difference step.
	Step float64
	// MaxProbes limits the elements perturbed per tensor (default 24).
	MaxProbes int
	Seed      uint64
}

// Run performs the check.
func (c GradCheck) Run(t *testing.T) {
	t.Helper()
	dtype := c.DType
	if dtype == 0 {
		dtype = graph.Float64
	}
	tol, step := c.Tol, c.Step
	if tol == 0 {
		tol = map[graph.DType]float64{graph.Float64: 1e-6, graph.Float32: 1e-3}[dtype]
	}
	if step == 0 {
		step = map[graph.DType]float64{graph.Float64: 1e-6, graph.Float32: 1e-2}[dtype]
	}
	floor := map[graph.DType]float64{graph.Float64: 1e-3, graph.Float32: 0.3}[dtype]
	probes := c.MaxProbes
	if probes == 0 {
		probes = 24
	}
	r := rand.New(rand.NewPCG(c.Seed+1, 7))

	g := graph.New("gradcheck")
	vars := make([]*graph.Tensor, len(c.Vars))
	feeds := map[string][]float64{}
	for i, v := range c.Vars {
		vars[i] = g.Input(v.Name, dtype, v.Shape)
		vals := make([]float64, v.Shape.Size())
		for k := range vals {
			if v.Gen != nil {
				vals[k] = v.Gen(r)
			} else {
				vals[k] = r.NormFloat64()
			}
		}
		feeds[v.Name] = vals
	}
	fixed := make([]*graph.Tensor, len(c.Fixed))
	for i, f := range c.Fixed {
		d := f.DType
		if d == 0 {
			d = dtype
		}
		fixed[i] = g.Input(f.Name, d, f.Shape)
		feeds[f.Name] = f.Values
	}
	y := c.Build(g, vars, fixed)
	if g.Err() != nil {
		t.Fatal(g.Err())
	}
	// Random inputs (dropout masks) get one fixed draw for the whole check.
	for _, ri := range g.RandomInputs() {
		vals := make([]float64, ri.Tensor.Shape().Size())
		for k := range vals {
			if ri.Kind == graph.RandomUniform {
				vals[k] = r.Float64()
			} else if r.Float64() >= ri.P {
				vals[k] = 1 / (1 - ri.P)
			}
		}
		feeds[ri.Tensor.Name()] = vals
	}
	weights := make([]float64, y.Shape().Size())
	for k := range weights {
		weights[k] = r.NormFloat64()
	}
	loss := g.ReduceSum(g.Mul(y, g.Const("loss_weights", y.DType(), y.Shape(), weights)), allAxes(y.Rank()), false)
	g.Output("loss", loss)
	wrt := append([]*graph.Tensor{}, vars...)
	for _, p := range g.Params() {
		wrt = append(wrt, p.Tensor)
		vals := p.Init.Sample(r, int(p.Shape().Size()))
		if p.Init.Kind == "zeros" || p.Init.Kind == "ones" || p.Init.Kind == "constant" {
			// Perturb constant initialisations so the check sees a generic point.
			for k := range vals {
				vals[k] += 0.3 * r.NormFloat64()
			}
		}
		feeds[p.Name()] = vals
	}
	grads, err := g.Grad(loss, wrt)
	if err != nil {
		t.Fatal(err)
	}
	for i, gr := range grads {
		g.Output(fmt.Sprintf("grad/%d", i), gr)
	}
	run := Compile(t, g, graph.ModelOptions{})
	base, err := run.Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range wrt {
		analytic := base[fmt.Sprintf("grad/%d", i)]
		vals := feeds[x.Name()]
		idx := r.Perm(len(vals))
		if len(idx) > probes {
			idx = idx[:probes]
		}
		var num, den float64
		for _, k := range idx {
			orig := vals[k]
			vals[k] = orig + step
			plus, err := run.Run(feeds)
			if err != nil {
				t.Fatal(err)
			}
			vals[k] = orig - step
			minus, err := run.Run(feeds)
			if err != nil {
				t.Fatal(err)
			}
			vals[k] = orig
			fd := (plus["loss"][0] - minus["loss"][0]) / (2 * step)
			num += (fd - analytic[k]) * (fd - analytic[k])
			den += fd*fd + analytic[k]*analytic[k]
		}
		// Below the floor the finite difference is rounding noise (a
		// gradient that is exactly zero, e.g. a bias before a softmax), so
		// the error is measured against the floor instead.
		rel := math.Sqrt(num) / math.Max(math.Sqrt(den), floor)
		if rel > tol || math.IsNaN(rel) {
			t.Errorf("gradient of %s: relative error %.3g > %.3g (‖fd‖²+‖ad‖² = %.3g)", x.Name(), rel, tol, den)
		}
	}
}

func allAxes(rank int) []int {
	a := make([]int, rank)
	for i := range a {
		a[i] = i
	}
	return a
}

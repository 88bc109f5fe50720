package explain

import (
	"fmt"
	"math"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/optim"
	"github.com/salt-ort/salt-ort/runtime"
)

// Output is one scalar model output attributed: column Column of the
// [B, K] tensor Tensor, called Name in the reports (a class such as "b" or a
// regression target).
type Output struct {
	Name   string
	Task   string
	Tensor *graph.Tensor
	Column int
}

// Net is a forward graph with a static batch dimension, the float inputs
// to attribute ([B, n] or [B, T, n]) and the outputs to explain. Other
// inputs (valid masks) are fed each jet's own values unchanged.
type Net struct {
	Graph   *graph.Graph
	Inputs  []*graph.Tensor
	Outputs []Output
}

// gradName is the graph output holding the gradient of output k with
// respect to input i.
func gradName(k, i int) string { return fmt.Sprintf("explain/grad/%d/%d", k, i) }

// predName is the graph output holding output k's values [B].
func predName(k int) string { return fmt.Sprintf("explain/pred/%d", k) }

// attributor runs a Net extended with its input gradients in ONNX Runtime.
type attributor struct {
	net   Net
	batch int
	sess  *runtime.Session
	bind  *runtime.Binding
	// sizes are the values per jet of each graph input, by name.
	sizes map[string]int
}

// newAttributor appends to net's graph, for each output, the gradient of
// its column summed over the batch with respect to every attributed input
// (each row of the batch is a jet of its own, so the sum's gradient is the
// per-row gradient), then opens the graph. params gives the values of the
// graph's parameters, flattened in the layout it is given; nil for a graph
// without parameters.
func newAttributor(rt *runtime.Runtime, net Net, threads int, params func([]graph.ParamSlot) ([]float32, error)) (*attributor, error) {
	g := net.Graph
	if len(net.Inputs) == 0 || len(net.Outputs) == 0 {
		return nil, fmt.Errorf("explain: graph %s: nothing to attribute (no inputs or no outputs)", g.Name())
	}
	batch := int(net.Inputs[0].Dim(0))
	for k, o := range net.Outputs {
		sh := o.Tensor.Shape()
		if sh.Rank() != 2 || int(sh[0]) != batch || o.Column < 0 || int64(o.Column) >= sh[1] {
			return nil, fmt.Errorf("explain: output %s: column %d of %s is not a jet-level output", o.Name, o.Column, o.Tensor)
		}
		seed := make([]float64, sh.Size())
		for r := 0; r < batch; r++ {
			seed[r*int(sh[1])+o.Column] = 1
		}
		s := g.Const(fmt.Sprintf("explain/seed/%d", k), o.Tensor.DType(), sh, seed)
		grads, err := g.Gradients([]*graph.Tensor{o.Tensor}, []*graph.Tensor{s}, net.Inputs)
		if err != nil {
			return nil, fmt.Errorf("explain: gradients of %s: %w", o.Name, err)
		}
		for i, gr := range grads {
			g.Output(gradName(k, i), gr)
		}
		col := g.Slice(o.Tensor, []int{1}, []int64{int64(o.Column)}, []int64{int64(o.Column) + 1})
		g.Output(predName(k), g.Reshape(col, int64(batch)))
	}
	var values []float32
	if len(g.Params()) > 0 {
		_, _, layout := g.FlattenParamsAs(optim.ParamsInput, graph.Float32)
		var err error
		if values, err = params(layout); err != nil {
			return nil, err
		}
	}
	if err := g.Err(); err != nil {
		return nil, fmt.Errorf("explain: gradient graph: %w", err)
	}
	model, err := g.Marshal(graph.ModelOptions{})
	if err != nil {
		return nil, fmt.Errorf("explain: gradient graph: %w", err)
	}
	sess, err := rt.NewSession(g.Name()+"_explain", model, runtime.Options{IntraOpThreads: threads})
	if err != nil {
		return nil, err
	}
	var specs []runtime.TensorSpec
	sizes := map[string]int{}
	for _, ts := range [][]*graph.Tensor{g.Inputs(), g.Outputs()} {
		for _, x := range ts {
			specs = append(specs, runtime.TensorSpec{Name: x.Name(), Type: runtime.ElementType(x.DType()), Shape: x.Shape()})
			sizes[x.Name()] = int(x.Shape().Size()) / batch
		}
	}
	bind, err := runtime.NewBinding(sess, specs)
	if err != nil {
		sess.Close()
		return nil, err
	}
	a := &attributor{net: net, batch: batch, sess: sess, bind: bind, sizes: sizes}
	if values != nil {
		if err := bind.Write(optim.ParamsInput, values); err != nil {
			a.Close()
			return nil, fmt.Errorf("explain: parameters: %w", err)
		}
	}
	return a, nil
}

// Close releases the session.
func (a *attributor) Close() error {
	err := a.bind.Close()
	if cerr := a.sess.Close(); err == nil {
		err = cerr
	}
	return err
}

// Jets holds the model inputs of n jets: per graph input name, the
// values of each jet in turn (float inputs) or the bool masks.
type Jets struct {
	N     int
	Float map[string][]float32
	Bool  map[string][]bool
}

// row returns jet j's values of float input name.
func (js *Jets) row(name string, size, j int) []float32 {
	return js.Float[name][j*size : (j+1)*size]
}

// predict returns the outputs [n][K] of every jet of js.
func (a *attributor) predict(js *Jets) ([][]float64, error) {
	out := make([][]float64, js.N)
	for start := 0; start < js.N; start += a.batch {
		n := min(a.batch, js.N-start)
		for name := range js.Float {
			dst, err := a.bind.Float32(name)
			if err != nil {
				return nil, err
			}
			s := a.sizes[name]
			copy(dst, js.Float[name][start*s:(start+n)*s])
		}
		if err := a.fillBools(js, func(r int) int { return start + min(r, n-1) }); err != nil {
			return nil, err
		}
		if err := a.bind.Run(); err != nil {
			return nil, fmt.Errorf("explain: %w", err)
		}
		for k := range a.net.Outputs {
			p, err := a.bind.Float32(predName(k))
			if err != nil {
				return nil, err
			}
			for r := 0; r < n; r++ {
				if k == 0 {
					out[start+r] = make([]float64, len(a.net.Outputs))
				}
				out[start+r][k] = float64(p[r])
			}
		}
	}
	return out, nil
}

// fillBools copies the bool inputs of the jet each batch row takes.
func (a *attributor) fillBools(js *Jets, jetOf func(r int) int) error {
	for name, src := range js.Bool {
		dst, err := a.bind.Bool(name)
		if err != nil {
			return err
		}
		s := a.sizes[name]
		for r := 0; r < a.batch; r++ {
			j := jetOf(r)
			copy(dst[r*s:(r+1)*s], src[j*s:(j+1)*s])
		}
	}
	return nil
}

// Attribution is the integrated gradients of one jet: per output, per
// attributed input, the attribution of each of the input's values.
type Attribution [][][]float64

// integrate computes the integrated gradients of jet j of js against the
// baselines (jets of base), averaged over the baselines, with the
// quadrature rule q.
func (a *attributor) integrate(js *Jets, j int, base *Jets, baselines []int, q Quadrature) (Attribution, error) {
	nOut, nIn := len(a.net.Outputs), len(a.net.Inputs)
	attr := make(Attribution, nOut)
	for k := range attr {
		attr[k] = make([][]float64, nIn)
		for i, in := range a.net.Inputs {
			attr[k][i] = make([]float64, a.sizes[in.Name()])
		}
	}
	type point struct{ b, s int }
	var points []point
	for b := range baselines {
		for s := range q.Alphas {
			points = append(points, point{b, s})
		}
	}
	for start := 0; start < len(points); start += a.batch {
		n := min(a.batch, len(points)-start)
		for _, in := range a.net.Inputs {
			name := in.Name()
			size := a.sizes[name]
			dst, err := a.bind.Float32(name)
			if err != nil {
				return nil, err
			}
			x := js.row(name, size, j)
			for r := 0; r < a.batch; r++ {
				p := points[start+min(r, n-1)]
				x0 := base.row(name, size, baselines[p.b])
				al := float32(q.Alphas[p.s])
				d := dst[r*size : (r+1)*size]
				for v := range d {
					d[v] = x0[v] + al*(x[v]-x0[v])
				}
			}
		}
		if err := a.fillBools(js, func(int) int { return j }); err != nil {
			return nil, err
		}
		if err := a.bind.Run(); err != nil {
			return nil, fmt.Errorf("explain: %w", err)
		}
		for k := range a.net.Outputs {
			for i, in := range a.net.Inputs {
				name := in.Name()
				size := a.sizes[name]
				gr, err := a.bind.Float32(gradName(k, i))
				if err != nil {
					return nil, err
				}
				x := js.row(name, size, j)
				acc := attr[k][i]
				for r := 0; r < n; r++ {
					p := points[start+r]
					x0 := base.row(name, size, baselines[p.b])
					w := q.Weights[p.s] / float64(len(baselines))
					g := gr[r*size : (r+1)*size]
					for v := range acc {
						acc[v] += w * float64(g[v]) * float64(x[v]-x0[v])
					}
				}
			}
		}
	}
	return attr, nil
}

// Quadrature is a rule for ∫₀¹ f(α) dα ≈ Σ Weights[s]·f(Alphas[s]).
type Quadrature struct {
	Alphas, Weights []float64
}

// GaussLegendre returns the n-point Gauss–Legendre rule on [0, 1], the
// rule Captum's integrated gradients (and so Salt's writer) uses by
// default.
func GaussLegendre(n int) (Quadrature, error) {
	if n < 1 {
		return Quadrature{}, fmt.Errorf("explain: %d integration steps: give at least 1", n)
	}
	q := Quadrature{Alphas: make([]float64, n), Weights: make([]float64, n)}
	for i := 0; i < (n+1)/2; i++ {
		// Newton's method on P_n from Chebyshev's estimate of root i.
		x := math.Cos(math.Pi * (float64(i) + 0.75) / (float64(n) + 0.5))
		var dp float64
		for it := 0; it < 100; it++ {
			var pn float64
			pn, dp = legendre(n, x)
			dx := pn / dp
			x -= dx
			if math.Abs(dx) < 1e-15 {
				break
			}
		}
		_, dp = legendre(n, x)
		w := 2 / ((1 - x*x) * dp * dp)
		// Map [-1, 1] to [0, 1].
		q.Alphas[i], q.Weights[i] = (1-x)/2, w/2
		q.Alphas[n-1-i], q.Weights[n-1-i] = (1+x)/2, w/2
	}
	return q, nil
}

// legendre returns P_n(x) and its derivative, from the three-term
// recurrence.
func legendre(n int, x float64) (p, dp float64) {
	p0, p1 := 1.0, x
	for k := 2; k <= n; k++ {
		p0, p1 = p1, ((2*float64(k)-1)*x*p1-(float64(k)-1)*p0)/float64(k)
	}
	if n == 1 {
		return x, 1
	}
	return p1, float64(n) * (x*p1 - p0) / (x*x - 1)
}

package deploy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/salt-ort/salt-ort/codegen/cppgen"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/runtime"

	"github.com/salt-ort/salt-ort/internal/cmake"
)

// LatencyModel is a one-jet model file MeasureLatency times.
type LatencyModel struct {
	Label string // how the results name it
	Path  string
}

// LatencyOptions configure MeasureLatency.
type LatencyOptions struct {
	Runtime *runtime.Runtime
	// Models all have the one-jet interface Interface describes (their
	// inputs and outputs by name and type); they get the same jets.
	Models    []LatencyModel
	Interface cppgen.Interface
	// Constituents are the jet sizes to time: each jet has that many
	// constituents in every constituent input.
	Constituents []int
	// Jets is the number of distinct random jets per size (default 3).
	Jets int
	// Rounds is the most timed rounds per size; a round runs every jet on
	// every model once, the models in turn, the order rotating from jet to
	// jet (default 50).
	Rounds int
	// Budget ends the rounds of a size early once the Go side has spent it
	// (default 3 s); at least MinRounds rounds run (default 3). The C++
	// side runs as many rounds as the Go side did.
	Budget    time.Duration
	MinRounds int
	// Optimization is the Go sessions' graph optimisation level (the C++
	// program always uses ONNX Runtime's default, as validate --cpp).
	Optimization runtime.Optimization
	// Cpp also times the models with the generated C++ latency program
	// (cppgen), built with CMake in WorkDir ("": a temporary directory)
	// against the ONNX Runtime install ORTDir ("": FindORTDir).
	Cpp             bool
	WorkDir, ORTDir string
	// Seed draws the jets' variables, N(0, 1) raw values.
	Seed uint64
	// Log, if set, receives progress lines and CMake's output.
	Log io.Writer
}

// Latency is the per-call latency of one model at one jet size, timed
// from one side.
type Latency struct {
	Model        string
	Side         string // "Go" or "C++"
	Constituents int
	Calls        int
	Median, P90  time.Duration
	Mean         time.Duration
}

// MeasureLatency times Run of each model, one jet per call on one
// intra-op thread as ATLAS software calls it, for each jet size: from Go
// (the time of runtime.Session.Run, inputs and outputs made beforehand)
// and, with Cpp, from the generated C++ latency program (the time of the
// generated Model::Run). The models take turns jet by jet, so that they
// share the machine's state; the results list Go's figures per size and
// model, then C++'s.
func MeasureLatency(ctx context.Context, o LatencyOptions) ([]Latency, error) {
	if len(o.Models) == 0 || len(o.Constituents) == 0 {
		return nil, fmt.Errorf("deploy: latency: no models or no jet sizes")
	}
	if err := o.Interface.Check(); err != nil {
		return nil, fmt.Errorf("deploy: latency: %w", err)
	}
	if o.Jets <= 0 {
		o.Jets = 3
	}
	if o.Rounds <= 0 {
		o.Rounds = 50
	}
	if o.Budget <= 0 {
		o.Budget = 3 * time.Second
	}
	if o.MinRounds <= 0 {
		o.MinRounds = 3
	}
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	sessions := make([]*runtime.Session, len(o.Models))
	defer func() {
		for _, s := range sessions {
			if s != nil {
				s.Close()
			}
		}
	}()
	for i, m := range o.Models {
		data, err := os.ReadFile(m.Path)
		if err != nil {
			return nil, fmt.Errorf("deploy: latency: %w", err)
		}
		if sessions[i], err = o.Runtime.NewSession(m.Path, data, runtime.Options{IntraOpThreads: 1, Optimization: o.Optimization}); err != nil {
			return nil, err
		}
	}
	var res []Latency
	rounds := map[int]int{}
	r := rand.New(rand.NewPCG(o.Seed, 17))
	jetsOf := map[int]*cppgen.Inputs{}
	for _, n := range o.Constituents {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		in := latencyJets(o.Interface, n, o.Jets, r)
		jetsOf[n] = in
		lat, k, err := goLatency(o, sessions, in, n)
		if err != nil {
			return nil, err
		}
		rounds[n] = k
		res = append(res, lat...)
		fmt.Fprintf(log, "latency: Go, %d constituents: %d rounds\n", n, k)
	}
	if !o.Cpp {
		return res, nil
	}
	cpp, err := cppLatency(ctx, o, jetsOf, rounds, log)
	if err != nil {
		return nil, err
	}
	return append(res, cpp...), nil
}

// latencyJets draws jets of n constituents per constituent input.
func latencyJets(iface cppgen.Interface, n, jets int, r *rand.Rand) *cppgen.Inputs {
	in := &cppgen.Inputs{JetVars: len(iface.Inputs[0].Vars)}
	for _, c := range iface.Constituents() {
		in.GroupVars = append(in.GroupVars, len(c.Vars))
	}
	normal := func(k int) []float32 {
		v := make([]float32, k)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	for j := 0; j < jets; j++ {
		jet := cppgen.Jet{Features: normal(in.JetVars)}
		for _, v := range in.GroupVars {
			jet.Groups = append(jet.Groups, cppgen.Constituents{N: n, Features: normal(n * v)})
		}
		in.Jets = append(in.Jets, jet)
	}
	return in
}

// goLatency times every model on the jets of in and returns the figures
// and the number of rounds run.
func goLatency(o LatencyOptions, sessions []*runtime.Session, in *cppgen.Inputs, n int) ([]Latency, int, error) {
	type call struct{ ins, outs []runtime.Value }
	calls := make([][]call, len(sessions)) // per model, per jet
	defer func() {
		for _, cs := range calls {
			for _, c := range cs {
				runtime.Destroy(c.ins...)
				runtime.Destroy(c.outs...)
			}
		}
	}()
	for k, s := range sessions {
		for _, jet := range in.Jets {
			var c call
			byName := map[string]runtime.Value{}
			t, err := runtime.NewTensor([]int64{1, int64(in.JetVars)}, slices.Clone(jet.Features))
			if err != nil {
				return nil, 0, err
			}
			byName[o.Interface.Inputs[0].Name] = t
			for g, ci := range o.Interface.Constituents() {
				// ONNX Runtime wants a data pointer even for no constituents.
				f := append(make([]float32, 0, len(jet.Groups[g].Features)+1), jet.Groups[g].Features...)
				if byName[ci.Name], err = runtime.NewTensor([]int64{int64(n), int64(in.GroupVars[g])}, f); err != nil {
					return nil, 0, err
				}
			}
			for _, name := range s.InputNames() {
				v, ok := byName[name]
				if !ok {
					return nil, 0, fmt.Errorf("deploy: latency: %s: input %s is not in the interface", o.Models[k].Path, name)
				}
				c.ins = append(c.ins, v)
			}
			outputs := map[string]cppgen.Output{}
			for _, out := range o.Interface.Outputs {
				outputs[out.Name] = out
			}
			for _, name := range s.OutputNames() {
				out, ok := outputs[name]
				var v runtime.Value
				switch {
				case !ok:
					err = fmt.Errorf("deploy: latency: %s: output %s is not in the interface", o.Models[k].Path, name)
				case out.Type == cppgen.Int8:
					v, err = runtime.NewTensor([]int64{int64(n)}, make([]int8, n+1))
				default:
					v, err = runtime.NewScalar[float32](0)
				}
				if err != nil {
					return nil, 0, err
				}
				c.outs = append(c.outs, v)
			}
			calls[k] = append(calls[k], c)
		}
	}
	run := func(k, j int) (time.Duration, error) {
		start := time.Now()
		err := sessions[k].Run(calls[k][j].ins, calls[k][j].outs)
		if err != nil {
			err = fmt.Errorf("deploy: latency: %s, %d constituents: %w", o.Models[k].Path, n, err)
		}
		return time.Since(start), err
	}
	for k := range sessions {
		for j := range in.Jets {
			if _, err := run(k, j); err != nil {
				return nil, 0, err
			}
		}
	}
	times := make([][]time.Duration, len(sessions))
	start := time.Now()
	rounds := 0
	for ; rounds < o.Rounds && (rounds < o.MinRounds || time.Since(start) < o.Budget); rounds++ {
		for j := range in.Jets {
			for i := range sessions {
				k := (i + rounds + j) % len(sessions)
				d, err := run(k, j)
				if err != nil {
					return nil, 0, err
				}
				times[k] = append(times[k], d)
			}
		}
	}
	res := make([]Latency, len(sessions))
	for k, ts := range times {
		res[k] = summarise(o.Models[k].Label, "Go", n, ts)
	}
	return res, rounds, nil
}

// summarise makes the median, p90 and mean of ts.
func summarise(label, side string, n int, ts []time.Duration) Latency {
	l := Latency{Model: label, Side: side, Constituents: n, Calls: len(ts)}
	if len(ts) == 0 {
		return l
	}
	s := slices.Clone(ts)
	slices.Sort(s)
	var sum time.Duration
	for _, t := range s {
		sum += t
	}
	l.Median, l.P90, l.Mean = s[len(s)/2], s[min(len(s)-1, len(s)*9/10)], sum/time.Duration(len(s))
	return l
}

// cppLatency builds the generated latency program and runs it on the
// jets of each size, as many rounds as the Go side ran.
func cppLatency(ctx context.Context, o LatencyOptions, jets map[int]*cppgen.Inputs, rounds map[int]int, log io.Writer) ([]Latency, error) {
	if err := cmake.CheckTools(""); err != nil {
		return nil, fmt.Errorf("deploy: the C++ latency program needs cmake and a C++ compiler: %w", err)
	}
	var err error
	if o.ORTDir == "" {
		if o.ORTDir, err = FindORTDir(""); err != nil {
			return nil, err
		}
	}
	if o.WorkDir == "" {
		dir, err := os.MkdirTemp("", "salt-ort-latency-")
		if err != nil {
			return nil, fmt.Errorf("deploy: %w", err)
		}
		defer os.RemoveAll(dir)
		o.WorkDir = dir
	}
	src, build := filepath.Join(o.WorkDir, "src"), filepath.Join(o.WorkDir, "build")
	if _, err := cppgen.Generate(src, o.Interface); err != nil {
		return nil, fmt.Errorf("deploy: latency: %w", err)
	}
	names := o.Interface.Names()
	for _, args := range [][]string{
		{"-S", src, "-B", build, "-DORT_DIR=" + o.ORTDir, "-DCMAKE_BUILD_TYPE=Release"},
		{"--build", build, "-j2", "--target", names.LatencyProgram},
	} {
		if err := cmake.Run(ctx, log, args...); err != nil {
			return nil, fmt.Errorf("deploy: %w", err)
		}
	}
	program := filepath.Join(build, names.LatencyProgram)
	var res []Latency
	for _, n := range o.Constituents {
		path := filepath.Join(o.WorkDir, fmt.Sprintf("jets_%d.bin", n))
		var b bytes.Buffer
		if err := cppgen.WriteInputs(&b, jets[n]); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			return nil, fmt.Errorf("deploy: latency: %w", err)
		}
		args := []string{path, fmt.Sprint(rounds[n])}
		for _, m := range o.Models {
			args = append(args, m.Path)
		}
		out, err := exec.CommandContext(ctx, program, args...).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("deploy: latency: %s: %w\n%s", program, err, cmake.Tail(string(out)))
		}
		got, err := parseLatency(string(out), o.Models, n)
		if err != nil {
			return nil, err
		}
		res = append(res, got...)
		fmt.Fprintf(log, "latency: C++, %d constituents: %d rounds\n", n, rounds[n])
	}
	return res, nil
}

// parseLatency reads the latency program's lines, one per model.
func parseLatency(out string, models []LatencyModel, n int) ([]Latency, error) {
	res := make([]Latency, len(models))
	found := make([]bool, len(models))
	for _, line := range strings.Split(out, "\n") {
		const prefix = "Model::Run latency: model "
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		var k, calls int
		if _, err := fmt.Sscanf(line[len(prefix):], "%d", &k); err != nil || k < 0 || k >= len(models) {
			return nil, fmt.Errorf("deploy: latency: cannot read %q", line)
		}
		var median, p90, mean float64
		rest := line[strings.LastIndex(line, "):")+2:]
		if _, err := fmt.Sscanf(rest, " %d calls, median %g ns, p90 %g ns, mean %g ns", &calls, &median, &p90, &mean); err != nil {
			return nil, fmt.Errorf("deploy: latency: cannot read %q: %w", line, err)
		}
		res[k] = Latency{Model: models[k].Label, Side: "C++", Constituents: n, Calls: calls,
			Median: time.Duration(median), P90: time.Duration(p90), Mean: time.Duration(mean)}
		found[k] = true
	}
	for k, ok := range found {
		if !ok {
			return nil, fmt.Errorf("deploy: latency: the C++ program printed nothing for %s:\n%s", models[k].Path, cmake.Tail(out))
		}
	}
	return res, nil
}

// DeployInterface describes the one-jet interface of spec's deployment
// graph with outputs outs (Spec.DeployOutputs) for the generated C++:
// jet_features, then each group's input, with their variables.
func DeployInterface(spec model.Spec, outs []model.DeployOutput) cppgen.Interface {
	iface := cppgen.Interface{Model: spec.Name, Kind: cppgen.Athena}
	iface.Inputs = append(iface.Inputs, cppgen.Input{Name: model.JetFeaturesInput, Vars: spec.JetVars})
	for _, grp := range spec.Inputs {
		iface.Inputs = append(iface.Inputs, cppgen.Input{Name: model.DeployInputName(grp.Name), Group: grp.Name, Vars: grp.Vars})
	}
	for _, o := range outs {
		out := cppgen.Output{Name: o.Name, Type: cppgen.Float32}
		if o.PerConstituent() {
			out.Type, out.Input = cppgen.Int8, model.DeployInputName(o.Group)
		}
		iface.Outputs = append(iface.Outputs, out)
	}
	return iface
}

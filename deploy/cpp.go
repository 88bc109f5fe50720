package deploy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/salt-ort/salt-ort/codegen/cppgen"
	"github.com/salt-ort/salt-ort/internal/cmake"
	"github.com/salt-ort/salt-ort/runtime"
)

// CppInterface describes the model's interface for C++ generation: its
// name, interface kind, inputs (jet features, then the features of each
// constituent group, with their variables) and outputs in graph order,
// per-constituent ones tied to the input of their group.
func (m *Model) CppInterface() cppgen.Interface {
	iface := cppgen.Interface{Model: m.Meta.Model, Kind: m.Meta.Interface}
	if m.Meta.SaltORTVersion != "" {
		iface.Description = "Exported by salt-ort " + m.Meta.SaltORTVersion + "."
	}
	for _, in := range m.Meta.Inputs {
		ci := cppgen.Input{Name: in.Name, Group: in.Group}
		for _, v := range in.Variables {
			ci.Vars = append(ci.Vars, v.Name)
		}
		iface.Inputs = append(iface.Inputs, ci)
	}
	meta := map[string]Output{}
	for _, o := range m.Meta.Outputs {
		meta[o.Name] = o
	}
	inputOf := map[string]string{} // constituent group → its input
	for _, in := range m.Meta.Inputs[1:] {
		inputOf[in.Group] = in.Name
	}
	for _, o := range m.Outputs {
		md := meta[o.Name]
		out := cppgen.Output{Name: o.Name, Type: cppgen.ElementType(o.Type), Doc: md.Meaning}
		if md.deployOutput().PerConstituent() {
			out.Input = inputOf[md.Group]
		}
		iface.Outputs = append(iface.Outputs, out)
	}
	return iface
}

// CppOptions configure ValidateCpp.
type CppOptions struct {
	// WorkDir receives the generated sources (src/), the CMake build
	// (build/) and the inputs and outputs files. A reused WorkDir rebuilds
	// only what changed. "" uses a temporary directory, removed afterwards.
	WorkDir string
	// ORTDir is the ONNX Runtime install (include/ and lib/) to build
	// against. "" means FindORTDir(""): the install holding the library
	// the Go runtime loads, so that both sides run the same build.
	ORTDir string
	// Log, if set, receives the commands run and CMake's output.
	Log io.Writer
}

// CppMismatch is the first value where the C++ program and Go disagree.
type CppMismatch struct {
	Jet   int
	Index int // value within the jet (constituent, or 0 for a scalar)
	Go    float32
	Cpp   float32
	// Detail explains a mismatch that is not between two values (a
	// different number of values or jets, a missing output); Go and Cpp
	// are then meaningless.
	Detail string
}

// String describes the mismatch with both values and their bits.
func (c CppMismatch) String() string {
	if c.Detail != "" {
		return fmt.Sprintf("jet %d: %s", c.Jet, c.Detail)
	}
	return fmt.Sprintf("jet %d value %d: Go %v (0x%08x), C++ %v (0x%08x)", c.Jet, c.Index, c.Go, math.Float32bits(c.Go), c.Cpp, math.Float32bits(c.Cpp))
}

// CppOutputReport is the comparison of one output over all jets.
type CppOutputReport struct {
	Name       string
	Type       string       // float32, int8
	Jets       int          // jets compared (present in both results)
	Values     int          // values compared
	Mismatches int          // jets whose values differ in any bit, or missing on one side
	First      *CppMismatch // the first mismatch in jet order
}

// Pass reports whether every value of the output is bitwise identical.
func (o CppOutputReport) Pass() bool { return o.Mismatches == 0 && o.First == nil }

// CppReport is the result of ValidateCpp.
type CppReport struct {
	Model   string // the ONNX file
	Program string // the built C++ program
	ORTDir  string // the ONNX Runtime install it was built against
	Jets    int
	Outputs []CppOutputReport
	Build   time.Duration // generating, configuring and building
	Run     time.Duration // running the program on the inputs
	// PerJet is the time the program spent in Model::Run per jet, as it
	// measured it (0 if it did not say).
	PerJet time.Duration
}

// Pass reports whether every output is bitwise identical to Go's.
func (r *CppReport) Pass() bool {
	for _, o := range r.Outputs {
		if !o.Pass() {
			return false
		}
	}
	return len(r.Outputs) > 0
}

// Err returns nil if the report passes, else an error naming each output
// that differs and its first mismatch.
func (r *CppReport) Err() error {
	if r.Pass() {
		return nil
	}
	var parts []string
	for _, o := range r.Outputs {
		if !o.Pass() {
			parts = append(parts, fmt.Sprintf("%s: %d of %d jets differ, first at %v", o.Name, o.Mismatches, r.Jets, o.First))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "no outputs compared")
	}
	return fmt.Errorf("deploy: %s: the C++ outputs are not bitwise identical to Go's: %s", r.Model, strings.Join(parts, "; "))
}

// ValidateCpp generates the C++ interface of m (cppgen) into
// WorkDir/src, builds it with CMake into WorkDir/build against the ONNX
// Runtime install opts.ORTDir, runs the program on the jets of v (each
// with its first v.NTracks[j] constituents, as Model.Run feeds them) and
// compares its outputs bit for bit with goResults, what Model.Run returned
// for v from a session with one intra-op thread (Report.Results of
// Validate with Threads 1). It needs cmake and a C++ compiler (`make
// deps` installs them) and supports the athena interface only.
//
// A returned error means the check could not be done; a report whose
// Pass is false means it was done and the outputs differ.
func ValidateCpp(ctx context.Context, m *Model, v *Vectors, goResults map[string][][]float32, opts CppOptions) (*CppReport, error) {
	if m.Meta.Interface != cppgen.Athena {
		return nil, fmt.Errorf("deploy: %s: validate --cpp supports the one-jet %q interface; this model has the %q one: export it without --batched", m.Path, cppgen.Athena, m.Meta.Interface)
	}
	iface := m.CppInterface()
	if err := iface.Check(); err != nil {
		return nil, fmt.Errorf("deploy: %s: %w", m.Path, err)
	}
	if err := cmake.CheckTools(""); err != nil {
		return nil, fmt.Errorf("deploy: validate --cpp needs cmake and a C++ compiler: %w", err)
	}
	modelPath, err := filepath.Abs(m.Path)
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	if opts.ORTDir == "" {
		if opts.ORTDir, err = FindORTDir(""); err != nil {
			return nil, err
		}
	}
	if opts.ORTDir, err = filepath.Abs(opts.ORTDir); err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	if opts.WorkDir == "" {
		dir, err := os.MkdirTemp("", "salt-ort-cpp-")
		if err != nil {
			return nil, fmt.Errorf("deploy: %w", err)
		}
		defer os.RemoveAll(dir)
		opts.WorkDir = dir
	}
	if opts.WorkDir, err = filepath.Abs(opts.WorkDir); err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	rep := &CppReport{Model: m.Path, ORTDir: opts.ORTDir, Jets: v.Jets}

	start := time.Now()
	src, build := filepath.Join(opts.WorkDir, "src"), filepath.Join(opts.WorkDir, "build")
	if _, err := cppgen.Generate(src, iface); err != nil {
		return nil, fmt.Errorf("deploy: %s: %w", m.Path, err)
	}
	for _, args := range [][]string{
		{"-S", src, "-B", build, "-DORT_DIR=" + opts.ORTDir, "-DCMAKE_BUILD_TYPE=Release"},
		{"--build", build, "-j2", "--target", iface.Names().Program},
	} {
		if err := cmake.Run(ctx, opts.Log, args...); err != nil {
			return nil, fmt.Errorf("deploy: %w", err)
		}
	}
	rep.Program = filepath.Join(build, iface.Names().Program)
	rep.Build = time.Since(start)

	start = time.Now()
	inPath, outPath := filepath.Join(opts.WorkDir, "inputs.bin"), filepath.Join(opts.WorkDir, "outputs.bin")
	if err := writeCppInputs(inPath, v); err != nil {
		return nil, err
	}
	os.Remove(outPath)
	cmd := exec.CommandContext(ctx, rep.Program, modelPath, inPath, outPath)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if opts.Log != nil {
		fmt.Fprintf(opts.Log, "$ %s\n", strings.Join(cmd.Args, " "))
		cmd.Stdout, cmd.Stderr = io.MultiWriter(&stderr, opts.Log), io.MultiWriter(&stderr, opts.Log)
	}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("deploy: running %s on %s: %w\n%s", filepath.Base(rep.Program), m.Path, err, cmake.Tail(stderr.String()))
	}
	f, err := os.Open(outPath)
	if err != nil {
		return nil, fmt.Errorf("deploy: the C++ program's outputs: %w", err)
	}
	got, err := cppgen.ReadOutputs(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("deploy: %s: %w", outPath, err)
	}
	rep.Run = time.Since(start)
	rep.PerJet = perJet(stderr.String())
	if got.Jets != v.Jets {
		return nil, fmt.Errorf("deploy: %s: the C++ program wrote %d jets, want %d", outPath, got.Jets, v.Jets)
	}

	for _, o := range iface.Outputs {
		c := got.Column(o.Name)
		if c == nil {
			return nil, fmt.Errorf("deploy: %s: the C++ program wrote no output %s", outPath, o.Name)
		}
		if c.Type != o.Type {
			return nil, fmt.Errorf("deploy: %s: the C++ program wrote output %s as %v, the model has %v", outPath, o.Name, c.Type, o.Type)
		}
		g, ok := goResults[o.Name]
		rep.Outputs = append(rep.Outputs, compareBits(o.Name, o.Type.String(), g, ok, c.Jets))
	}
	return rep, nil
}

// perJet reads the program's "Model::Run: N jets, X ns per jet" line.
func perJet(out string) time.Duration {
	for _, line := range strings.Split(out, "\n") {
		var n int
		var ns float64
		if _, err := fmt.Sscanf(line, "Model::Run: %d jets, %g ns per jet", &n, &ns); err == nil {
			return time.Duration(ns)
		}
	}
	return 0
}

// ValidateCppPath is ValidateCpp for the model file at path: it opens the
// model with one intra-op thread and reads its validation vectors from
// vectors ("" means VectorsPath(path)). goResults nil runs the Go side on
// them; otherwise they must be that run's results (Report.Results of
// Validate with Threads 1, for the same vectors).
func ValidateCppPath(ctx context.Context, rt *runtime.Runtime, path, vectors string, goResults map[string][][]float32, opts CppOptions) (*CppReport, error) {
	if vectors == "" {
		vectors = VectorsPath(path)
	}
	m, err := Open(rt, path, 1)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	v, err := m.ReadVectors(vectors)
	if err != nil {
		return nil, err
	}
	if goResults == nil {
		if goResults, err = m.Run(v); err != nil {
			return nil, err
		}
	}
	return ValidateCpp(ctx, m, v, goResults, opts)
}

// compareBits compares one output's per-jet values bit for bit; haveGo
// says whether the Go results hold the output at all.
func compareBits(name, typ string, goVals [][]float32, haveGo bool, cppVals [][]float32) CppOutputReport {
	rep := CppOutputReport{Name: name, Type: typ}
	if !haveGo {
		rep.Mismatches = len(cppVals)
		rep.First = &CppMismatch{Detail: "the Go results have no output " + name}
		return rep
	}
	for j, c := range cppVals {
		if j >= len(goVals) {
			rep.Mismatches += len(cppVals) - j
			if rep.First == nil {
				rep.First = &CppMismatch{Jet: j, Detail: fmt.Sprintf("the Go results have %d jets, C++ %d", len(goVals), len(cppVals))}
			}
			break
		}
		g := goVals[j]
		rep.Jets++
		differs := false
		if len(g) != len(c) {
			differs = true
			if rep.First == nil {
				rep.First = &CppMismatch{Jet: j, Detail: fmt.Sprintf("Go has %d values, C++ %d", len(g), len(c))}
			}
		} else {
			for i := range g {
				rep.Values++
				if math.Float32bits(g[i]) != math.Float32bits(c[i]) {
					if !differs && rep.First == nil {
						rep.First = &CppMismatch{Jet: j, Index: i, Go: g[i], Cpp: c[i]}
					}
					differs = true
				}
			}
		}
		if differs {
			rep.Mismatches++
		}
	}
	if len(goVals) > len(cppVals) {
		rep.Mismatches += len(goVals) - len(cppVals)
		if rep.First == nil {
			rep.First = &CppMismatch{Jet: len(cppVals), Detail: fmt.Sprintf("the Go results have %d jets, C++ %d", len(goVals), len(cppVals))}
		}
	}
	return rep
}

// writeCppInputs writes the jets of v, each with its valid constituents,
// as a cppgen inputs file.
func writeCppInputs(path string, v *Vectors) error {
	nj := len(v.JetVars)
	in := &cppgen.Inputs{JetVars: nj, Jets: make([]cppgen.Jet, v.Jets)}
	for _, g := range v.Groups {
		in.GroupVars = append(in.GroupVars, len(g.Vars))
	}
	for j := range in.Jets {
		jet := cppgen.Jet{Features: v.JetRaw[j*nj : (j+1)*nj]}
		for gi := range v.Groups {
			g := &v.Groups[gi]
			jet.Groups = append(jet.Groups, cppgen.Constituents{N: g.N[j], Features: g.rows(j)})
		}
		in.Jets[j] = jet
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	err = cppgen.WriteInputs(f, in)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("deploy: %s: %w", path, cerr)
	}
	if err != nil {
		return fmt.Errorf("deploy: %s: %w", path, err)
	}
	return nil
}

// FindORTDir returns the ONNX Runtime install (a directory with
// include/onnxruntime_cxx_api.h and lib/) that holds the shared library
// at libPath, found by walking up from the library's directory; with
// `make deps` that is third_party/onnxruntime/dist. libPath "" means
// runtime.LibraryPath(""), the library the Go runtime loads by default
// (--ort-lib, $SALT_ORT_LIB, the build-time path, then the repository's
// install above the working directory). Symbolic links in libPath are
// resolved first.
func FindORTDir(libPath string) (string, error) {
	if libPath == "" {
		var err error
		if libPath, err = runtime.LibraryPath(""); err != nil {
			return "", fmt.Errorf("deploy: finding ONNX Runtime for the C++ build: %w", err)
		}
	}
	resolved, err := filepath.EvalSymlinks(libPath)
	if err != nil {
		return "", fmt.Errorf("deploy: ONNX Runtime library: %w", err)
	}
	if resolved, err = filepath.Abs(resolved); err != nil {
		return "", fmt.Errorf("deploy: %w", err)
	}
	for dir := filepath.Dir(resolved); ; {
		if _, err := os.Stat(filepath.Join(dir, "include", "onnxruntime_cxx_api.h")); err == nil {
			if st, err := os.Stat(filepath.Join(dir, "lib")); err == nil && st.IsDir() {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", fmt.Errorf("deploy: no ONNX Runtime C++ headers (include/onnxruntime_cxx_api.h) above %s: run `make deps`, or name the install (include/ and lib/) explicitly", libPath)
}

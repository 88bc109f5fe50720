// Package athenacheck builds and runs salt-ort-athena-check, a C++ program
// that opens an exported ONNX model as ATLAS's flavour-tagging loaders in
// Athena open it, applies the rules both of their paths (FlavorTagInference
// and the older FlavorTagDiscriminants) apply to the model's gnn_config
// metadata, inputs and outputs, and runs the model as they run it, with 0,
// 1, 40 and 200 constituents in every sequence.
//
// The program's source and CMakeLists.txt are in src/ (embedded here);
// each rule cites the Athena source it comes from. Build writes them into
// a work directory and builds them with CMake against an ONNX Runtime
// install; Run runs the program on a model and parses its JSON report:
//
//	program, err := athenacheck.Build(ctx, work, ortDir, nil)
//	report, err := athenacheck.Run(ctx, program, "GN2.onnx")
//	if err := report.Err(); err != nil { ... } // names each failing rule
//
// Building needs cmake, a C++17 compiler and nlohmann-json (3.11), which
// `make deps` installs.
package athenacheck

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/salt-ort/salt-ort/internal/cmake"
)

// ProgramName is the name of the program Build builds.
const ProgramName = "salt-ort-athena-check"

// The program's exit codes.
const (
	exitPass       = 0 // every rule and run passes
	exitFail       = 1 // a rule or a run fails; the report says which
	exitCannotOpen = 2 // the model cannot be opened, or a usage error
)

//go:embed src/athena_check.cc src/CMakeLists.txt
var sources embed.FS

// Sources returns the program's source files by name (athena_check.cc,
// CMakeLists.txt).
func Sources() (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, name := range []string{"athena_check.cc", "CMakeLists.txt"} {
		b, err := sources.ReadFile("src/" + name)
		if err != nil {
			return nil, fmt.Errorf("athenacheck: embedded %s: %w", name, err)
		}
		files[name] = b
	}
	return files, nil
}

// Rule is the outcome of one rule the loaders apply.
type Rule struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Advisory marks a rule that matters only in some loader
	// configurations (e.g. flip taggers); its failure does not fail the
	// report.
	Advisory bool `json:"advisory"`
	// Source names the Athena (or lwtnn) file and function the rule comes
	// from, relative to PhysicsAnalysis/JetTagging/.
	Source string `json:"source"`
	// Detail says what was found, or why the rule fails.
	Detail string `json:"detail"`
}

// RunResult is the outcome of running the model on one jet.
type RunResult struct {
	// Constituents is the number of constituents of every sequence.
	Constituents int `json:"constituents"`
	// Shapes holds the shape of every input the loaders build, by name.
	Shapes map[string][]int64 `json:"shapes"`
	OK     bool               `json:"ok"`
	Detail string             `json:"detail"`
}

// Session describes the ONNX Runtime session options the program uses,
// Athena's.
type Session struct {
	IntraOpThreads         int    `json:"intra_op_threads"`
	GraphOptimizationLevel string `json:"graph_optimization_level"`
	CPUMemArena            bool   `json:"cpu_mem_arena"`
	LogSeverityLevel       int    `json:"log_severity_level"`
}

// Report is what salt-ort-athena-check found.
type Report struct {
	Model   string  `json:"model"`
	Session Session `json:"session"`
	// Version is the onnx_model_version the loaders read ("v0", "v1",
	// "v2" or "unknown").
	Version string `json:"onnx_model_version"`
	// ModelName is the model name Athena derives from the output names
	// ("" if it cannot).
	ModelName string      `json:"model_name"`
	Passed    bool        `json:"pass"`
	Rules     []Rule      `json:"rules"`
	Runs      []RunResult `json:"runs"`
}

// Pass reports whether every rule but the advisory ones and every run
// passes.
func (r *Report) Pass() bool {
	for _, rule := range r.Rules {
		if !rule.OK && !rule.Advisory {
			return false
		}
	}
	for _, run := range r.Runs {
		if !run.OK {
			return false
		}
	}
	return len(r.Rules) > 0 && len(r.Runs) > 0
}

// Rule returns the rule named name, or nil.
func (r *Report) Rule(name string) *Rule {
	for i := range r.Rules {
		if r.Rules[i].Name == name {
			return &r.Rules[i]
		}
	}
	return nil
}

// Failed returns the names of the failing rules (advisory ones excluded).
func (r *Report) Failed() []string {
	var names []string
	for _, rule := range r.Rules {
		if !rule.OK && !rule.Advisory {
			names = append(names, rule.Name)
		}
	}
	return names
}

// Err returns nil if the report passes, else an error naming each failing
// rule and run with its detail.
func (r *Report) Err() error {
	if r.Pass() {
		return nil
	}
	var parts []string
	for _, rule := range r.Rules {
		if !rule.OK && !rule.Advisory {
			parts = append(parts, fmt.Sprintf("rule %s: %s (%s)", rule.Name, rule.Detail, rule.Source))
		}
	}
	for _, run := range r.Runs {
		if !run.OK {
			parts = append(parts, fmt.Sprintf("run with %d constituents: %s", run.Constituents, run.Detail))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "the report has no rules or no runs")
	}
	return fmt.Errorf("athenacheck: %s would not load or run in Athena:\n  %s", r.Model, strings.Join(parts, "\n  "))
}

// Build writes the program's sources into workDir/src (leaving files that
// already hold the right bytes untouched), configures them with CMake into
// workDir/build against the ONNX Runtime install ortDir (include/ and
// lib/), builds them and returns the program's path. A reused workDir
// rebuilds only what changed. log, if not nil, receives the commands and
// CMake's output.
func Build(ctx context.Context, workDir, ortDir string, log io.Writer) (string, error) {
	if err := cmake.CheckTools("nlohmann-json3-dev"); err != nil {
		return "", fmt.Errorf("athenacheck: %w", err)
	}
	var err error
	if workDir, err = filepath.Abs(workDir); err != nil {
		return "", fmt.Errorf("athenacheck: %w", err)
	}
	if ortDir, err = filepath.Abs(ortDir); err != nil {
		return "", fmt.Errorf("athenacheck: %w", err)
	}
	if _, err := os.Stat(filepath.Join(ortDir, "include", "onnxruntime_cxx_api.h")); err != nil {
		return "", fmt.Errorf("athenacheck: no ONNX Runtime C++ headers in %s: run `make deps` or name another install: %w", ortDir, err)
	}
	src, build := filepath.Join(workDir, "src"), filepath.Join(workDir, "build")
	if err := writeSources(src); err != nil {
		return "", err
	}
	for _, args := range [][]string{
		{"-S", src, "-B", build, "-DORT_DIR=" + ortDir, "-DCMAKE_BUILD_TYPE=Release"},
		{"--build", build, "-j2"},
	} {
		if err := cmake.Run(ctx, log, args...); err != nil {
			return "", fmt.Errorf("athenacheck: %w", err)
		}
	}
	program := filepath.Join(build, ProgramName)
	if _, err := os.Stat(program); err != nil {
		return "", fmt.Errorf("athenacheck: the build made no %s: %w", ProgramName, err)
	}
	return program, nil
}

// writeSources writes the embedded sources into dir.
func writeSources(dir string) error {
	files, err := Sources()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("athenacheck: %w", err)
	}
	for name, b := range files {
		path := filepath.Join(dir, name)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
			continue
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return fmt.Errorf("athenacheck: writing %s: %w", name, err)
		}
	}
	return nil
}

// Run runs program (from Build) on the model at modelPath and returns its
// report, whether or not the model passes (see Report.Pass and Err). An
// error means there is no report: the model could not be opened, or the
// program failed.
func Run(ctx context.Context, program, modelPath string) (*Report, error) {
	cmd := exec.CommandContext(ctx, program, modelPath)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			return nil, fmt.Errorf("athenacheck: running %s: %w", program, err)
		}
		code = exit.ExitCode()
	}
	switch code {
	case exitPass, exitFail:
	case exitCannotOpen:
		return nil, fmt.Errorf("athenacheck: %s: %s", modelPath, strings.TrimSpace(stderr.String()))
	default:
		return nil, fmt.Errorf("athenacheck: %s on %s: %w\n%s", filepath.Base(program), modelPath, err, cmake.Tail(stderr.String()))
	}
	var r Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("athenacheck: the report of %s on %s: %w", filepath.Base(program), modelPath, err)
	}
	if (code == exitPass) != r.Pass() || r.Passed != r.Pass() {
		return nil, fmt.Errorf("athenacheck: %s on %s exited with %d, but its report says pass=%v and its rules and runs pass=%v", filepath.Base(program), modelPath, code, r.Passed, r.Pass())
	}
	return &r, nil
}

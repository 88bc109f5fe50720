package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/salt-ort/salt-ort/checkpoint"
	"github.com/salt-ort/salt-ort/codegen/onnxpb"
	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/internal/atomicfile"
	"github.com/salt-ort/salt-ort/internal/onnxcheck"
	"github.com/salt-ort/salt-ort/runtime"
	"github.com/salt-ort/salt-ort/train"
	"google.golang.org/protobuf/proto"
)

// ExportOptions configure Export.
type ExportOptions struct {
	RunDir string
	// Checkpoint is "best" (default), "last" or a path.
	Checkpoint string
	// Out is the ONNX file to write; the validation vectors go to
	// <Out without .onnx>.validation.h5 and the model card to .md and
	// .card.json.
	Out string
	// Batched writes the batched interface (leading batch dimension and
	// valid masks) instead of ATLAS's one-jet interface.
	Batched bool
	// ValidationJets is the number of validation-split jets kept as
	// validation vectors (default 1000).
	ValidationJets int
	// Name replaces the model name that prefixes the outputs ("" keeps
	// the configuration's model.name).
	Name string
	// Tasks are the tasks whose outputs are exported (nil: every task).
	Tasks []string
	// Rename renames outputs by name without the model prefix, as Salt's
	// exporter's --rename does ("pu" → "plight" makes GN2_plight).
	Rename map[string]string
	// TrackSelection names the track selection in the gnn_config metadata
	// (default r22default); it must be one ATLAS's loader knows
	// (AthenaTrackSelections).
	TrackSelection string
	// Tolerance is the validation tolerance the exported model must meet
	// on its own vectors before Export reports success (default
	// DefaultTolerance).
	Tolerance float64
	// Version, Revision and Modified are salt-ort's version, the VCS
	// revision it was built from and whether that build had uncommitted
	// changes, recorded in the metadata.
	Version, Revision string
	Modified          bool
	Runtime           *runtime.Runtime
	// Opset is the ONNX opset the model is stamped with (0: the lowest the
	// graph needs, NeededOpset, so that the oldest runtimes load it).
	Opset int
	// Releases are further ONNX Runtime releases (installed by
	// third_party/onnxruntime/fetch-versions.sh) the validation vectors run
	// in ("default": DefaultReleases of the opset written); the results go
	// into the metadata and the model card. A release that cannot load or
	// reproduce the model is recorded, not an export failure.
	Releases []string
	// Device is where the evaluation graph computes the validation
	// vectors: "" or "cpu" (where ATLAS runs the model, and the same
	// bytes on every machine), or "cuda" (resolved with
	// train.EvalDevice). The exported model is validated on the CPU.
	Device string
	// ObjectName, if set, exports the objects of a model with a mask
	// decoder as Salt's exporter's --object_name does: the int8 output
	// <model>_<ObjectName>Index, each constituent's object, computed in
	// the model (model.ObjectIndices). One-jet interface only.
	ObjectName string
	// CheckerPython is the Python interpreter the reference ONNX checker
	// runs in ("": onnxcheck.Python, Debian's /usr/bin/python3); where it
	// cannot import onnx the checker is skipped and Exported says why.
	CheckerPython string
}

// Exported lists what Export wrote and how it was checked.
type Exported struct {
	Model, Vectors, Card string
	// CardJSON is the model card in JSON, Card's twin.
	CardJSON string
	SHA256   string // of the model file
	Metadata *Metadata
	// Checked says whether the reference ONNX checker (python3-onnx) ran
	// on the model; it is skipped where it is not installed.
	Checked bool
	// CheckerSkipped says why the checker did not run ("" where it ran).
	CheckerSkipped string `json:",omitempty"`
	// Validation is the model's comparison with its own vectors.
	Validation *Report
	// Releases are the runs in ExportOptions.Releases.
	Releases []*ReleaseReport
	// Warnings list what ATLAS's loader will not accept (AthenaWarnings).
	Warnings []string
	// attributions are the run's feature attributions (salt-ort
	// explain), nil where it has none.
	attributions *CardAttributions
}

// ValidationError is returned by Export when the exported model does not
// reproduce its own validation vectors; nothing was written.
type ValidationError struct{ Report *Report }

func (e *ValidationError) Error() string {
	var bad []string
	for _, o := range e.Report.Outputs {
		if !o.Pass() {
			bad = append(bad, fmt.Sprintf("%s (%d of %d values differ, max abs diff %.3g)", o.Name, o.Mismatches, o.Compared, o.MaxAbs))
		}
	}
	return fmt.Sprintf("deploy: the exported model does not reproduce the training-time evaluation graph on its validation vectors: %s; nothing was written", strings.Join(bad, ", "))
}

// CheckerSummary says in words whether the reference ONNX checker passed
// the model or why it was skipped, as export prints it.
func (ex *Exported) CheckerSummary() string {
	if ex.Checked {
		return "the ONNX checker passed"
	}
	return "the ONNX checker was skipped: " + ex.CheckerSkipped
}

// runChecker runs c on the model bytes data of the given opset and records
// in ex that it ran or why it was skipped; the error is the checker's
// rejection.
func runChecker(ex *Exported, c onnxcheck.Checker, data []byte, opset int) error {
	// Debian's python3-onnx (1.12) checks opsets up to graph.Opset.
	if opset > graph.Opset {
		ex.CheckerSkipped = fmt.Sprintf("python3-onnx checks opsets up to %d, and the model is opset %d", graph.Opset, opset)
		return nil
	}
	if c.Unavailable() != nil {
		ex.CheckerSkipped = fmt.Sprintf("%s cannot import onnx (install python3-onnx, or set %s to a Python that has it)", c.Interpreter(), CheckerPythonEnv)
		return nil
	}
	if err := c.Check(data); err != nil {
		return err
	}
	ex.Checked = true
	return nil
}

// CheckerPythonEnv is the environment variable with which `salt-ort export`
// chooses the Python interpreter of the ONNX checker
// (ExportOptions.CheckerPython).
const CheckerPythonEnv = "SALT_ORT_ONNX_PYTHON"

// VectorsPath returns where the validation vectors of model path go.
func VectorsPath(modelPath string) string {
	return strings.TrimSuffix(modelPath, filepath.Ext(modelPath)) + ".validation.h5"
}

// CardPath returns where the model card of model path goes.
func CardPath(modelPath string) string {
	return strings.TrimSuffix(modelPath, filepath.Ext(modelPath)) + ".md"
}

// Export writes the deployment model of a run's checkpoint, its validation
// vectors and its model card, as Salt's exporter does: it runs the ONNX
// checker where python3-onnx is installed and then compares the model's
// outputs on the validation vectors with those of the training-time
// evaluation graph, and only when both pass puts the three files in
// place. On any failure no file is left behind. The same checkpoint always
// gives the same bytes.
func Export(ctx context.Context, opts ExportOptions) (*Exported, error) {
	if opts.ValidationJets == 0 {
		opts.ValidationJets = 1000
	}
	if opts.TrackSelection == "" {
		opts.TrackSelection = "r22default"
	}
	if !slices.Contains(AthenaTrackSelections, opts.TrackSelection) {
		return nil, fmt.Errorf("deploy: track selection %q is not one ATLAS's loader recognises (%s)", opts.TrackSelection, strings.Join(AthenaTrackSelections, ", "))
	}
	if opts.Tolerance == 0 {
		opts.Tolerance = DefaultTolerance
	}
	run, err := train.LoadRun(opts.RunDir)
	if err != nil {
		return nil, err
	}
	if opts.Device != "" {
		// Only an explicit device is resolved: the default is the CPU,
		// whatever the run was trained on.
		if opts.Device, _, err = train.EvalDevice(opts.Runtime, run.Config, opts.Device); err != nil {
			return nil, err
		}
	}
	spec := run.Spec
	if opts.Name != "" {
		spec.Name = opts.Name
	}
	dopts := model.DeployOptions{Tasks: opts.Tasks, Rename: opts.Rename, ObjectName: opts.ObjectName}
	if opts.ObjectName != "" && opts.Batched {
		return nil, fmt.Errorf("deploy: the objects of a mask decoder (object name %q) are exported in the one-jet interface only; export them without the batched interface", opts.ObjectName)
	}
	outs, err := spec.DeployOutputs(dopts)
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	ckptPath, err := train.ResolveCheckpoint(opts.RunDir, opts.Checkpoint)
	if err != nil {
		return nil, err
	}
	ckpt, err := checkpoint.Read(ckptPath)
	if err != nil {
		return nil, err
	}
	_, layout, err := spec.Eval(1)
	if err != nil {
		return nil, err
	}
	params, err := train.ParamsFromCheckpoint(ckptPath, ckpt, layout)
	if err != nil {
		return nil, err
	}
	norm, err := normalisation(spec, run)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(opts.Out), 0o755); err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}

	// The graph, and the one-jet graph whose outputs the validation
	// vectors hold. Dynamic dimensions are named as Salt's exporter names
	// them (n_tracks).
	dep, err := spec.Deploy(norm, dopts)
	if err != nil {
		return nil, err
	}
	dims := map[string]string{}
	for _, grp := range spec.Inputs {
		dims[model.DeployInputName(grp.Name)+":0"] = "n_" + model.AthenaGroupBase(grp.Name)
	}
	for _, o := range outs {
		if o.PerConstituent() {
			dims[o.Name+":0"] = "n_" + model.AthenaGroupBase(o.Group)
		}
	}
	g := dep
	if opts.Batched {
		if g, err = spec.Infer(model.InferOptions{Batch: -1, Norm: &norm}); err != nil {
			return nil, err
		}
		for _, t := range append(g.Inputs(), g.Outputs()...) {
			dims[t.Name()+":0"] = "n_jets"
		}
	}
	values := map[string][]byte{}
	for _, p := range layout {
		values[p.Name] = graph.Float32Bytes(params[p.Offset : p.Offset+p.Size])
	}
	mopts := graph.ModelOptions{ParamValues: values, DimNames: dims, ProducerVersion: opts.Version, DocString: spec.Name}
	opset, err := chooseOpset(g, mopts, opts.Opset)
	if err != nil {
		return nil, fmt.Errorf("deploy: %s: %w", opts.Out, err)
	}

	// The metadata, which the validation vectors' hash completes.
	meta, err := describe(run, spec, &norm, g, outs, opts.Batched, opts.Version, dims)
	if err != nil {
		return nil, err
	}
	single, err := describe(run, spec, &norm, dep, outs, false, opts.Version, dims)
	if err != nil {
		return nil, err
	}
	meta.ValidationOutputs = single.Outputs
	hash := memoHash()
	if meta.Checkpoint, err = hash(ckptPath); err != nil {
		return nil, err
	}
	for _, f := range run.Config.Data.Train {
		h, err := hash(f)
		if err != nil {
			return nil, err
		}
		meta.TrainingData = append(meta.TrainingData, h)
	}
	vl, err := layoutOf(meta)
	if err != nil {
		return nil, err
	}
	vec, err := computeVectors(ctx, opts.Runtime, opts.Device, run, spec, outs, params, opts.ValidationJets)
	if err != nil {
		return nil, err
	}
	meta.ValidationJets = vec.Jets
	meta.Opset = opset

	// Everything is written beside its final place first and moved there
	// once checked.
	vecPath, cardPath, cardJSONPath := VectorsPath(opts.Out), CardPath(opts.Out), CardJSONPath(opts.Out)
	tmpModel, tmpVec, tmpCard, tmpCardJSON := tempPath(opts.Out), tempPath(vecPath), tempPath(cardPath), tempPath(cardJSONPath)
	done := false
	defer func() {
		if !done {
			removeAll(tmpModel, tmpVec, tmpCard, tmpCardJSON)
		}
	}()
	if err := writeVectors(tmpVec, vec, vl); err != nil {
		return nil, err
	}
	if meta.Validation, err = hashFile(tmpVec); err != nil {
		return nil, err
	}
	meta.Validation.Name = filepath.Base(vecPath)
	js, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	g.SetMetadata(MetadataKey, string(js))
	if !opts.Batched {
		rel, err := filepath.Rel(opts.RunDir, ckptPath)
		if err != nil || strings.HasPrefix(rel, "..") {
			rel = filepath.Base(ckptPath)
		}
		athena, err := athenaConfig(meta, outs, opts.Rename, opts.TrackSelection, Provenance{
			Checkpoint: filepath.ToSlash(rel), Config: meta.Config, Version: opts.Version, Revision: opts.Revision, Modified: opts.Modified})
		if err != nil {
			return nil, err
		}
		g.SetMetadata(AthenaConfigKey, athena)
	}
	mp, err := g.Model(mopts)
	if err != nil {
		return nil, err
	}
	if _, err := SetOpset(mp, opset); err != nil {
		return nil, fmt.Errorf("deploy: %s: %w", opts.Out, err)
	}
	data, err := onnxpb.Marshal(mp)
	if err != nil {
		return nil, err
	}
	ex := &Exported{Model: opts.Out, Vectors: vecPath, Card: cardPath, CardJSON: cardJSONPath, Metadata: meta, Warnings: AthenaWarnings(spec)}
	if ex.attributions, err = cardAttributions(opts.RunDir); err != nil {
		return nil, err
	}
	if err := runChecker(ex, onnxcheck.Checker{Python: opts.CheckerPython}, data, opset); err != nil {
		return nil, fmt.Errorf("deploy: %s: the ONNX checker rejects the exported model; nothing was written: %w", opts.Out, err)
	}
	if err := atomicfile.Write(tmpModel, data); err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	rep, err := Validate(ctx, ValidateOptions{Model: tmpModel, Vectors: tmpVec, Tolerance: opts.Tolerance, Runtime: opts.Runtime})
	if err != nil {
		return nil, fmt.Errorf("deploy: validating the exported model: %w", err)
	}
	rep.Model = opts.Out
	ex.Validation = rep
	if !rep.Pass() {
		return nil, &ValidationError{Report: rep}
	}
	if len(opts.Releases) > 0 {
		if data, err = checkReleases(ctx, ex, mp, opts, tmpModel, tmpVec); err != nil {
			return nil, err
		}
	}
	sum := sha256.Sum256(data)
	ex.SHA256 = hex.EncodeToString(sum[:])
	card, err := buildCard(ctx, meta, cardOptions{run: run, spec: spec, ckpt: ckptPath, modelFile: filepath.Base(opts.Out), sha256: ex.SHA256,
		tolerance: opts.Tolerance, warnings: ex.Warnings, attributions: ex.attributions, hash: hash})
	if err != nil {
		return nil, err
	}
	if err := writeCard(card, tmpCard, tmpCardJSON); err != nil {
		return nil, err
	}
	for _, mv := range [][2]string{{tmpVec, vecPath}, {tmpCard, cardPath}, {tmpCardJSON, cardJSONPath}, {tmpModel, opts.Out}} {
		if err := os.Rename(mv[0], mv[1]); err != nil {
			return nil, fmt.Errorf("deploy: %w", err)
		}
	}
	done = true
	return ex, nil
}

// normalisation gathers the float32 mean and std of every input variable
// from the run's norm dictionary, looked up as the loader does (dataset
// name).
func normalisation(spec model.Spec, run *train.RunInfo) (model.Normalisation, error) {
	get := func(ds string, vars []string) (model.Affine, error) {
		var a model.Affine
		for _, v := range vars {
			e, ok := run.Norm[run.Config.Data.DatasetOf(ds)][v]
			if !ok {
				e, ok = run.Norm[ds][v]
			}
			if !ok {
				return a, fmt.Errorf("deploy: %s: the norm dictionary has no %s.%s", run.Dir, ds, v)
			}
			a.Mean = append(a.Mean, float32(e.Mean))
			a.Std = append(a.Std, float32(e.Std))
		}
		return a, nil
	}
	n := model.Normalisation{Inputs: map[string]model.Affine{}}
	var err error
	if n.Jets, err = get(run.Config.Data.JetDataset, spec.JetVars); err != nil {
		return n, err
	}
	for _, in := range spec.Inputs {
		if n.Inputs[in.Name], err = get(in.Name, in.Vars); err != nil {
			return n, err
		}
	}
	return n, nil
}

// describe fills the metadata of the model from the run and the graph:
// the one-jet interface's outputs outs, or a batched graph's predictions.
func describe(run *train.RunInfo, spec model.Spec, norm *model.Normalisation, g *graph.Graph, outs []model.DeployOutput, batched bool, version string, dims map[string]string) (*Metadata, error) {
	m := &Metadata{Format: Format, Model: spec.Name, SaltORTVersion: version, Interface: "athena", Classes: map[string][]string{}}
	if batched {
		m.Interface = "batched"
	}
	resolved, err := run.Config.Encode()
	if err != nil {
		return nil, err
	}
	m.Config = string(resolved)
	vars := func(names []string, a model.Affine) []Variable {
		out := make([]Variable, len(names))
		for i, n := range names {
			out[i] = Variable{Name: n, Mean: float64(a.Mean[i]), Std: float64(a.Std[i])}
		}
		return out
	}
	shape := func(t *graph.Tensor) []string {
		s := make([]string, t.Rank())
		for i, d := range t.Shape() {
			if d < 0 {
				s[i] = dims[fmt.Sprintf("%s:%d", t.Name(), i)]
			} else {
				s[i] = fmt.Sprint(d)
			}
		}
		return s
	}
	byName := map[string]*graph.Tensor{}
	for _, in := range g.Inputs() {
		byName[in.Name()] = in
	}
	jetName := model.JetFeaturesInput
	if batched {
		jetName = model.JetsInput
	}
	jetVars := vars(spec.JetVars, norm.Jets)
	for _, p := range spec.ParameterNames() {
		// Parameters are read raw, after the jet variables.
		jetVars = append(jetVars, Variable{Name: p, Mean: 0, Std: 1})
	}
	m.Inputs = append(m.Inputs, Input{Name: jetName, Group: run.Config.Data.JetDataset, Shape: shape(byName[jetName]), Variables: jetVars})
	for _, grp := range spec.Inputs {
		in := Input{Name: model.DeployInputName(grp.Name), Group: grp.Name, Variables: vars(grp.Vars, norm.Inputs[grp.Name])}
		if batched {
			in.Name, in.Valid = grp.Name, model.ValidInput(grp.Name)
		}
		in.Shape = shape(byName[in.Name])
		m.Inputs = append(m.Inputs, in)
	}
	for _, t := range spec.Tasks {
		switch t.Kind {
		case model.JetClassification, model.ConstituentClassification:
			m.Classes[t.Name] = t.Classes
		}
	}
	kinds := map[string]model.DeployOutput{}
	for _, o := range outs {
		kinds[o.Name] = o
	}
	for _, o := range g.Outputs() {
		out := Output{Name: o.Name(), Type: o.DType().String(), Shape: shape(o)}
		if d, ok := kinds[o.Name()]; ok {
			out.Kind, out.Task, out.Index, out.Label, out.Group = string(d.Kind), d.Task, d.Index, d.Label, d.Group
			out.Meaning = meaning(d)
			if t, _ := taskOf(spec, d.Task); d.Kind == model.ConstituentClass && t.Binary() {
				out.Meaning = fmt.Sprintf("1 where a constituent of the %s is %s (probability at least 0.5), else 0 (task %s)", d.Group, d.Label, d.Task)
			}
		} else {
			out.Kind, out.Meaning = "prediction", batchedMeaning(spec, o.Name())
		}
		m.Outputs = append(m.Outputs, out)
	}
	return m, nil
}

// meaning says in words what a one-jet output holds.
func meaning(o model.DeployOutput) string {
	switch o.Kind {
	case model.ClassProbability:
		return fmt.Sprintf("probability that the jet is %s (task %s)", o.Label, o.Task)
	case model.RegressionValue:
		return fmt.Sprintf("predicted %s (task %s)", o.Label, o.Task)
	case model.RegressionStddev:
		return fmt.Sprintf("predicted standard deviation of %s (task %s)", o.Label, o.Task)
	case model.ConstituentClass:
		return fmt.Sprintf("most probable class of each of the %s (task %s)", o.Group, o.Task)
	case model.ConstituentRegressionValue:
		return fmt.Sprintf("predicted %s of each of the %s (task %s)", o.Label, o.Group, o.Task)
	case model.ConstituentRegressionStddev:
		return fmt.Sprintf("predicted standard deviation of %s of each of the %s (task %s)", o.Label, o.Group, o.Task)
	case model.ObjectIndex:
		return objectMeaning(o)
	case model.VertexIndex:
		return fmt.Sprintf("vertex of each of the %s: the smallest index of those it shares a vertex with, pairs linked at symmetrised probability >= 0.5; -1 where that index exceeds 127 (task %s)", o.Group, o.Task)
	}
	return ""
}

// batchedMeaning says what a batched model's prediction output holds.
func batchedMeaning(spec model.Spec, name string) string {
	for _, t := range spec.Tasks {
		switch name {
		case model.PredictionOutput(t.Name):
			switch t.Kind {
			case model.JetClassification:
				return "class probabilities per jet, in the order of classes[" + t.Name + "]"
			case model.ConstituentClassification:
				return "class probabilities per constituent, in the order of classes[" + t.Name + "]"
			case model.Vertexing:
				return "probability that constituents i and j share a vertex"
			case model.ConstituentRegression, model.ConstituentGaussianRegression:
				return "regression outputs per constituent and target (task " + t.Name + ")"
			}
			return "regression outputs per jet (task " + t.Name + ")"
		case model.VarianceOutput(t.Name):
			if t.Kind.PerConstituent() {
				return "predicted variance per constituent and target (task " + t.Name + ")"
			}
			return "predicted variance per jet and target (task " + t.Name + ")"
		}
	}
	return ""
}

// hashFile returns a file's base name, size and SHA-256.
func hashFile(path string) (File, error) {
	f, err := os.Open(path)
	if err != nil {
		return File{}, fmt.Errorf("deploy: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, fmt.Errorf("deploy: %s: %w", path, err)
	}
	return File{Name: filepath.Base(path), Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// memoHash returns hashFile that hashes each path once per export (the
// training files are named by the metadata and the model card).
func memoHash() func(string) (File, error) {
	seen := map[string]File{}
	return func(path string) (File, error) {
		if f, ok := seen[path]; ok {
			return f, nil
		}
		f, err := hashFile(path)
		if err == nil {
			seen[path] = f
		}
		return f, err
	}
}

// writeCard writes the model card as Markdown and JSON.
func writeCard(c *Card, mdPath, jsonPath string) error {
	js, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("deploy: model card: %w", err)
	}
	if err := atomicfile.Write(jsonPath, append(js, '\n')); err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	if err := atomicfile.Write(mdPath, []byte(c.Markdown())); err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	return nil
}

// chooseOpset returns the opset to write: requested, or the lowest the
// graph needs; an error where the graph needs a newer one.
func chooseOpset(g *graph.Graph, mopts graph.ModelOptions, requested int) (int, error) {
	mp, err := g.Model(mopts)
	if err != nil {
		return 0, err
	}
	return SetOpset(mp, requested)
}

// checkReleases runs the exported model (written at tmpModel, its vectors
// at tmpVec) in each release of opts.Releases, records the results in the
// metadata and writes the model again; it returns the model's final
// bytes.
func checkReleases(ctx context.Context, ex *Exported, mp *onnxpb.ModelProto, opts ExportOptions, tmpModel, tmpVec string) ([]byte, error) {
	meta := ex.Metadata
	releases, err := ExpandReleases(opts.Releases, meta.Opset)
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	for _, v := range releases {
		r, err := ValidateRelease(ctx, ValidateOptions{Model: tmpModel, Vectors: tmpVec, Tolerance: opts.Tolerance}, v, ex.Validation.Results)
		if err != nil {
			return nil, err
		}
		if r.Report != nil {
			r.Report.Model = opts.Out
		}
		ex.Releases = append(ex.Releases, r)
		meta.Runtimes = append(meta.Runtimes, r.Check(opts.Runtime.Version()))
	}
	js, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	for _, kv := range mp.GetMetadataProps() {
		if kv.GetKey() == MetadataKey {
			kv.Value = proto.String(string(js))
		}
	}
	data, err := onnxpb.Marshal(mp)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(tmpModel, data); err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	return data, nil
}

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
	"strings"

	"github.com/salt-ort/salt-ort/checkpoint"
	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/internal/atomicfile"
	"github.com/salt-ort/salt-ort/runtime"
	"github.com/salt-ort/salt-ort/train"
)

// Meanings of outputs, recorded in the metadata.
const vertexMeaning = "vertex of each track: the smallest index of the tracks it shares a vertex with (pairs with symmetrised probability >= 0.5)"

func classOutputMeaning(task string) string {
	return "argmax class of each constituent (task " + task + ")"
}

// ExportOptions configure Export.
type ExportOptions struct {
	RunDir string
	// Checkpoint is "best" (default), "last" or a path.
	Checkpoint string
	// Out is the ONNX file to write; the validation vectors go to
	// <Out without .onnx>.validation.h5 and the model card to .md.
	Out string
	// Batched writes the batched interface (leading batch dimension and
	// valid masks) instead of ATLAS's one-jet interface.
	Batched bool
	// ValidationJets is the number of validation-split jets kept as
	// validation vectors (default 1000).
	ValidationJets int
	// TrackSelection names the track selection in the gnn_config metadata
	// (default r22default).
	TrackSelection string
	Version        string // salt-ort's version, recorded in the metadata
	Runtime        *runtime.Runtime
}

// Exported lists what Export wrote.
type Exported struct {
	Model, Vectors, Card string
	SHA256               string // of the model file
	Metadata             *Metadata
}

// VectorsPath returns where the validation vectors of model path go.
func VectorsPath(modelPath string) string {
	return strings.TrimSuffix(modelPath, filepath.Ext(modelPath)) + ".validation.h5"
}

// Export writes the deployment model of a run's checkpoint, its validation
// vectors and its model card. The same checkpoint always gives the same
// bytes.
func Export(ctx context.Context, opts ExportOptions) (*Exported, error) {
	if opts.ValidationJets == 0 {
		opts.ValidationJets = 1000
	}
	if opts.TrackSelection == "" {
		opts.TrackSelection = "r22default"
	}
	run, err := train.LoadRun(opts.RunDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(opts.Out), 0o755); err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	spec := run.Spec
	if len(spec.Inputs) != 1 {
		return nil, fmt.Errorf("deploy: %s: the model has %d constituent groups; export supports one", opts.RunDir, len(spec.Inputs))
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

	// The graph, and the one-jet graph whose outputs the validation
	// vectors hold.
	dims := map[string]string{}
	dep, err := spec.Deploy(norm)
	if err != nil {
		return nil, err
	}
	dims[model.FeaturesInput(spec.Inputs[0].Name)+":0"] = "n_" + spec.Inputs[0].Name
	for _, t := range spec.Tasks {
		if t.Kind == model.ConstituentClassification || t.Kind == model.Vertexing {
			dims[spec.ConstituentOutput(t)+":0"] = "n_" + spec.Inputs[0].Name
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

	// The metadata, which the validation vectors' hash completes.
	meta, err := describe(run, &norm, g, opts, dims)
	if err != nil {
		return nil, err
	}
	single, err := describe(run, &norm, dep, ExportOptions{}, dims)
	if err != nil {
		return nil, err
	}
	meta.ValidationOutputs = single.Outputs
	if meta.Checkpoint, err = hashFile(ckptPath); err != nil {
		return nil, err
	}
	for _, f := range run.Config.Data.Train {
		h, err := hashFile(f)
		if err != nil {
			return nil, err
		}
		meta.TrainingData = append(meta.TrainingData, h)
	}
	vl, err := layoutOf(meta)
	if err != nil {
		return nil, err
	}
	vec, err := computeVectors(ctx, opts.Runtime, run, params, opts.ValidationJets)
	if err != nil {
		return nil, err
	}
	meta.ValidationJets = vec.Jets
	vecPath := VectorsPath(opts.Out)
	if err := writeVectors(vecPath, vec, vl); err != nil {
		return nil, err
	}
	if meta.Validation, err = hashFile(vecPath); err != nil {
		return nil, err
	}
	js, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	g.SetMetadata(MetadataKey, string(js))
	athena, err := athenaConfig(meta, opts.TrackSelection)
	if err != nil {
		return nil, err
	}
	if !opts.Batched {
		g.SetMetadata(AthenaConfigKey, athena)
	}
	data, err := g.Marshal(graph.ModelOptions{ParamValues: values, DimNames: dims, ProducerVersion: opts.Version, DocString: spec.Name})
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(opts.Out, data); err != nil {
		return nil, err
	}
	card := strings.TrimSuffix(opts.Out, filepath.Ext(opts.Out)) + ".md"
	if err := writeAtomic(card, []byte(modelCard(meta, filepath.Base(opts.Out)))); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	return &Exported{Model: opts.Out, Vectors: vecPath, Card: card, SHA256: hex.EncodeToString(sum[:]), Metadata: meta}, nil
}

// normalisation gathers the float32 mean and std of every input variable
// from the run's norm dictionary, looked up as the loader does (dataset
// name).
func normalisation(spec model.Spec, run *train.RunInfo) (model.Normalisation, error) {
	get := func(ds string, vars []string) (model.Affine, error) {
		var a model.Affine
		for _, v := range vars {
			e, ok := run.Norm[ds][v]
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

// describe fills the metadata of the model from the run and the graph.
func describe(run *train.RunInfo, norm *model.Normalisation, g *graph.Graph, opts ExportOptions, dims map[string]string) (*Metadata, error) {
	spec := run.Spec
	m := &Metadata{Format: Format, Model: spec.Name, SaltORTVersion: opts.Version, Interface: "athena", Classes: map[string][]string{}}
	if opts.Batched {
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
	grp := spec.Inputs[0]
	for _, in := range g.Inputs() {
		switch in.Name() {
		case model.JetFeaturesInput, model.JetsInput:
			m.Inputs = append(m.Inputs, Input{Name: in.Name(), Group: run.Config.Data.JetDataset, Shape: shape(in), Variables: vars(spec.JetVars, norm.Jets)})
		case model.FeaturesInput(grp.Name), grp.Name:
			i := Input{Name: in.Name(), Group: grp.Name, Shape: shape(in), Variables: vars(grp.Vars, norm.Inputs[grp.Name])}
			if opts.Batched {
				i.Valid = model.ValidInput(grp.Name)
			}
			m.Inputs = append(m.Inputs, i)
		}
	}
	meanings := map[string]string{}
	for _, t := range spec.Tasks {
		switch t.Kind {
		case model.JetClassification, model.ConstituentClassification:
			m.Classes[t.Name] = t.Classes
		}
		if opts.Batched {
			meanings[model.PredictionOutput(t.Name)] = batchedMeaning(t)
			continue
		}
		switch t.Kind {
		case model.JetClassification:
			for _, c := range t.Classes {
				meanings[spec.ClassOutput(c)] = fmt.Sprintf("probability that the jet is %s (task %s)", c, t.Name)
			}
		case model.ConstituentClassification:
			meanings[spec.ConstituentOutput(t)] = classOutputMeaning(t.Name)
		case model.Vertexing:
			meanings[spec.ConstituentOutput(t)] = vertexMeaning
		case model.JetRegression, model.JetGaussianRegression:
			for _, target := range t.Targets {
				meanings[spec.RegressionOutput(t, target)] = fmt.Sprintf("predicted %s (task %s)", target, t.Name)
			}
		}
	}
	for _, o := range g.Outputs() {
		m.Outputs = append(m.Outputs, Output{Name: o.Name(), Type: o.DType().String(), Shape: shape(o), Meaning: meanings[o.Name()]})
	}
	return m, nil
}

func batchedMeaning(t model.Task) string {
	switch t.Kind {
	case model.JetClassification:
		return "class probabilities per jet, in the order of classes[" + t.Name + "]"
	case model.ConstituentClassification:
		return "class probabilities per constituent, in the order of classes[" + t.Name + "]"
	case model.Vertexing:
		return "probability that constituents i and j share a vertex"
	}
	return "regression outputs per jet"
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

// writeAtomic writes an exported file atomically.
func writeAtomic(path string, data []byte) error {
	if err := atomicfile.Write(path, data); err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	return nil
}

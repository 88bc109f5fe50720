package deploy

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/nn"
	"github.com/salt-ort/salt-ort/loader"
)

// Format identifies salt-ort's deployment metadata. Version 2 records each
// output's kind, task and constituent group, and any number of constituent
// groups.
const Format = "salt-ort deployment 2"

// Metadata keys of an exported model.
const (
	// MetadataKey holds Metadata as JSON.
	MetadataKey = "salt_ort"
	// AthenaConfigKey holds the gnn_config JSON that ATLAS's flavour-tagging
	// loaders read, in the layout Salt's exporter writes (see athenaConfig).
	AthenaConfigKey = "gnn_config"
)

// Variable is one input variable and the normalisation the model applies
// to it.
type Variable struct {
	Name string  `json:"name"`
	Mean float64 `json:"mean"`
	Std  float64 `json:"std"`
}

// Input describes one model input.
type Input struct {
	Name      string     `json:"name"`
	Group     string     `json:"group"`      // dataset the variables come from
	Shape     []string   `json:"shape"`      // dimensions; names for dynamic ones
	Variables []Variable `json:"variables"`  // in the order of the last axis
	Valid     string     `json:"valid_mask"` // name of the valid-mask input (batched models)
}

// Output describes one model output.
type Output struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"` // float32, int8
	Shape   []string `json:"shape"`
	Meaning string   `json:"meaning"`
	// Kind, Task, Index, Label and Group say what the output is (see
	// model.DeployOutput); batched models' prediction outputs have the
	// kind "prediction".
	Kind  string `json:"kind"`
	Task  string `json:"task"`
	Index int    `json:"index"`
	Label string `json:"label,omitempty"`
	Group string `json:"group,omitempty"`
}

// deployOutput is the model's description of a one-jet output.
func (o Output) deployOutput() model.DeployOutput {
	return model.DeployOutput{Name: o.Name, Kind: model.OutputKind(o.Kind), Task: o.Task, Index: o.Index, Label: o.Label, Group: o.Group}
}

// File names a file and its content hash.
type File struct {
	Name   string `json:"file"`
	Bytes  int64  `json:"bytes,omitempty"`
	SHA256 string `json:"sha256"`
}

// Metadata is what an exported model says about itself.
type Metadata struct {
	Format         string   `json:"format"`
	Model          string   `json:"model"`
	SaltORTVersion string   `json:"salt_ort_version"`
	Interface      string   `json:"interface"` // "athena" (one jet per call) or "batched"
	Inputs         []Input  `json:"inputs"`    // the jet input, then one per constituent group
	Outputs        []Output `json:"outputs"`
	// ValidationOutputs are the outputs the validation vectors hold, in
	// the one-jet interface's terms (the outputs themselves for that
	// interface; what a batched model's predictions are decided into).
	ValidationOutputs []Output            `json:"validation_outputs"`
	Classes           map[string][]string `json:"classes"`
	TrainingData      []File              `json:"training_data"`
	Checkpoint        File                `json:"checkpoint"`
	Validation        File                `json:"validation"`
	ValidationJets    int                 `json:"validation_jets"`
	Config            string              `json:"config"` // the resolved training configuration (TOML)
	// Opset is the ONNX operator set the model is stamped with.
	Opset int `json:"opset,omitempty"`
	// Runtimes are the ONNX Runtime releases export ran the validation
	// vectors in (export --ort), besides the one salt-ort links.
	Runtimes []RuntimeCheck `json:"runtimes,omitempty"`
}

// RuntimeCheck is the result of running the validation vectors in one
// ONNX Runtime release.
type RuntimeCheck struct {
	Version string `json:"version"`
	// Reproduced says whether every output matched the vectors within the
	// tolerance.
	Reproduced bool `json:"reproduced"`
	// MaxAbs is the largest absolute difference from the vectors, over
	// every output.
	MaxAbs float64 `json:"max_abs_diff"`
	// FromReference is the largest absolute difference from the outputs of
	// the ONNX Runtime salt-ort links, release Reference.
	FromReference float64 `json:"max_abs_diff_from_reference"`
	Reference     string  `json:"reference"`
	// Error says why the release could not load or run the model.
	Error string `json:"error,omitempty"`
}

// normDict is the normalisation the metadata records for each input's
// group, as a norm dict.
func (m *Metadata) normDict() loader.NormDict {
	nd := loader.NormDict{}
	for _, in := range m.Inputs {
		vars := nd[in.Group]
		if vars == nil {
			vars = map[string]loader.NormEntry{}
			nd[in.Group] = vars
		}
		for _, v := range in.Variables {
			vars[v.Name] = loader.NormEntry{Mean: v.Mean, Std: v.Std}
		}
	}
	return nd
}

// ParseMetadata decodes the salt_ort metadata of a model.
func ParseMetadata(s string) (*Metadata, error) {
	var m Metadata
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("deploy: metadata %s: %w", MetadataKey, err)
	}
	if m.Format != Format {
		if strings.HasPrefix(m.Format, "salt-ort deployment ") {
			return nil, fmt.Errorf("deploy: metadata %s: format %q is an earlier salt-ort's (this one reads %q): export the model again with this salt-ort", MetadataKey, m.Format, Format)
		}
		return nil, fmt.Errorf("deploy: metadata %s: format %q, want %q", MetadataKey, m.Format, Format)
	}
	return &m, nil
}

// AthenaTrackSelections are the track selections ATLAS's loader recognises
// in a track sequence's name (FlavorTagInference's track selection
// patterns); Salt's exporter offers most of them.
var AthenaTrackSelections = []string{"all", "ip3d", "dipsLoose202102", "loose202102NoIpCuts", "r22default", "r22loose", "dipsTightUpgrade", "dipsLooseUpgrade"}

// AthenaSequenceName is the gnn_config name of a constituent group, as
// Salt's exporter writes it and ATLAS's loader parses it: the loader picks
// the constituent kind from the name (tracks, flows, hits, electrons) and,
// for tracks, the selection and the sort order ("tracks_r22default_sd0sort").
func AthenaSequenceName(group, trackSelection string) string {
	switch {
	case strings.Contains(group, "tracks") || strings.Contains(group, "flows"):
		return model.AthenaGroupBase(group) + "_" + trackSelection + "_sd0sort"
	case strings.Contains(group, "electrons"):
		return group + "_r22default"
	}
	return group + "_var"
}

// athenaKinds are the constituent kinds ATLAS's loader reads, found in a
// sequence name.
var athenaKinds = []string{"tracks", "flows", "hits", "electrons"}

// AthenaWarnings lists what in a model ATLAS's loaders will not accept
// although the export itself is valid: a model without a tracks group
// (Athena's GNN tool reads the track_features input of every jet), a
// model conditioned on parameters (no jet getter gives their values),
// constituent groups of a kind the current loader (FlavorTagInference)
// does not read, and kinds only it reads — the older
// FlavorTagDiscriminants path has no electron loader and builds no hit
// loader.
func AthenaWarnings(spec model.Spec) []string {
	var w []string
	tracks := false
	for _, grp := range spec.Inputs {
		tracks = tracks || strings.Contains(grp.Name, "tracks")
	}
	if !tracks {
		w = append(w, "no tracks group: ATLAS's GNN tool (GNN::decorate) reads the track_features input of every jet, so Athena cannot run this model; ONNX Runtime, validate --cpp and the generated C++ program can")
	}
	if ps := spec.ParameterNames(); len(ps) > 0 {
		w = append(w, fmt.Sprintf("parameters %s: ATLAS's GNN tool fills jet_features through its jet getters (pt, eta, mass, ...) and has none for a parameter's value, so Athena cannot run this model; ONNX Runtime, validate --cpp and the generated C++ program take the parameters as the last columns of jet_features",
			strings.Join(ps, ", ")))
	}
	for _, grp := range spec.Inputs {
		kind := ""
		for _, k := range athenaKinds {
			if kind == "" && strings.Contains(grp.Name, k) {
				kind = k
			}
		}
		switch kind {
		case "":
			w = append(w, fmt.Sprintf("constituent group %s: ATLAS's loaders read only groups whose name contains %s", grp.Name, strings.Join(athenaKinds, ", ")))
		case "electrons", "hits":
			w = append(w, fmt.Sprintf("constituent group %s: only ATLAS's current loader (FlavorTagInference) reads %s; the older FlavorTagDiscriminants path does not", grp.Name, kind))
		}
	}
	// The legacy encoder keeps Salt's masked zero token, so a jet without
	// constituents still has a key (and pools to zeros, as Salt's export);
	// the cross-attention encoder zeroes the weights of absent keys and
	// pools an empty jet to zeros, as Salt's masked softmax does.
	if k := spec.Encoder.Kind; len(spec.Inputs) > 0 && spec.Encoder.Layers > 0 && spec.Encoder.Registers == 0 && k != nn.LegacyKind && k != nn.CrossAttentionKind {
		w = append(w, "model.encoder.registers = 0: on a jet without constituents the attention has no key to weigh and ONNX Runtime fails; keep a register (Salt's GN2 has one), or have ATLAS's loader give such jets defaults (its default_zero_tracks option)")
	}
	return w
}

// Provenance is what gnn_config records of where a model comes from, as
// Salt's exporter records its checkpoint, configuration and code version.
type Provenance struct {
	Checkpoint string // the checkpoint, relative to its run directory
	Config     string // the resolved training configuration (TOML)
	Version    string // salt-ort's version
	Revision   string // the VCS revision salt-ort was built from ("" if unknown)
	Modified   bool   // whether that build had uncommitted changes
}

// athenaConfig writes the gnn_config JSON as Salt's exporter (metadata
// version v1) writes it, which is what both of ATLAS's loaders read:
//   - onnx_model_version "v1": outputs are read from the graph, named
//     <model_name>_<output>; model_name and output_names say so;
//   - inputs: one node "jet_var" with the jet variables (without Salt's
//     _btagJes suffix, as the loader's getters name them), offset 0 and
//     scale 1 since the normalisation is inside the model;
//   - input_sequences: one node per constituent group, named as
//     AthenaSequenceName names it, with its variables;
//   - layers and nodes: empty, present because the older loader parses the
//     metadata with lwtnn's graph parser, which requires them;
//   - combine_outputs and rename_outputs, as Salt records them;
//   - provenance: ckpt_path, config.toml, exporter, exporter_version,
//     exporter_revision and forced_export (uncommitted changes).
//
// It writes no "outputs" key: the current loader would read it as the
// older (v0) output description.
func athenaConfig(m *Metadata, outs []model.DeployOutput, rename map[string]string, trackSelection string, p Provenance) (string, error) {
	type variable struct {
		Name   string  `json:"name"`
		Offset float64 `json:"offset"`
		Scale  float64 `json:"scale"`
	}
	type node struct {
		Name      string     `json:"name"`
		Variables []variable `json:"variables"`
	}
	cfg := struct {
		Version        string            `json:"onnx_model_version"`
		ModelName      string            `json:"model_name"`
		OutputNames    []string          `json:"output_names"`
		Inputs         []node            `json:"inputs"`
		InputSequences []node            `json:"input_sequences"`
		Layers         []struct{}        `json:"layers"`
		Nodes          []struct{}        `json:"nodes"`
		CombineOutputs []struct{}        `json:"combine_outputs"`
		RenameOutputs  map[string]string `json:"rename_outputs"`
		Checkpoint     string            `json:"ckpt_path"`
		Config         string            `json:"config.toml"`
		Exporter       string            `json:"exporter"`
		Version2       string            `json:"exporter_version"`
		Revision       string            `json:"exporter_revision"`
		Forced         bool              `json:"forced_export"`
	}{
		Version: "v1", ModelName: m.Model, OutputNames: []string{}, Inputs: []node{}, InputSequences: []node{},
		Layers: []struct{}{}, Nodes: []struct{}{}, CombineOutputs: []struct{}{}, RenameOutputs: map[string]string{},
		Checkpoint: p.Checkpoint, Config: p.Config, Exporter: "salt-ort", Version2: p.Version, Revision: p.Revision, Forced: p.Modified,
	}
	for k, v := range rename {
		cfg.RenameOutputs[k] = v
	}
	for _, o := range outs {
		cfg.OutputNames = append(cfg.OutputNames, o.Name)
	}
	for i, in := range m.Inputs {
		n := node{Variables: []variable{}}
		for _, v := range in.Variables {
			name := v.Name
			if i == 0 {
				name = strings.TrimSuffix(name, "_btagJes")
			}
			n.Variables = append(n.Variables, variable{Name: name, Offset: 0, Scale: 1})
		}
		if i == 0 {
			n.Name = "jet_var"
			cfg.Inputs = append(cfg.Inputs, n)
			continue
		}
		n.Name = AthenaSequenceName(in.Group, trackSelection)
		cfg.InputSequences = append(cfg.InputSequences, n)
	}
	b, err := json.Marshal(cfg)
	return string(b), err
}

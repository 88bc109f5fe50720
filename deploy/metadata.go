// Package deploy writes the deployment ONNX models physicists hand to C++
// software (ATLAS Athena loads GN2 through ONNX Runtime's C++ API) and to
// reinterpretation: the deployment graph with the trained weights as
// initializers and the normalisation folded in, metadata describing inputs,
// outputs and provenance, a model card, and validation vectors the model
// must reproduce. Validate proves an exported model reproduces the outputs
// the training-time evaluation graph computed.
package deploy

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Format identifies salt-ort's deployment metadata.
const Format = "salt-ort deployment 1"

// Metadata keys of an exported model.
const (
	// MetadataKey holds Metadata as JSON.
	MetadataKey = "salt_ort"
	// AthenaConfigKey holds the gnn_config JSON that ATLAS's
	// FlavorTagDiscriminants reads (variables, their offsets and scales —
	// 0 and 1, since normalisation is inside the model — and sequences).
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
	Inputs         []Input  `json:"inputs"`
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
}

// ParseMetadata decodes the salt_ort metadata of a model.
func ParseMetadata(s string) (*Metadata, error) {
	var m Metadata
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("deploy: metadata %s: %w", MetadataKey, err)
	}
	if m.Format != Format {
		return nil, fmt.Errorf("deploy: metadata %s: format %q, want %q", MetadataKey, m.Format, Format)
	}
	return &m, nil
}

// athenaConfig writes the gnn_config JSON in the layout Salt's exporter
// uses: jet variables without their _btagJes suffix, the track sequence
// named after the track selection, offsets 0 and scales 1 since the
// normalisation is inside the model.
func athenaConfig(m *Metadata, trackSelection string) (string, error) {
	type variable struct {
		Name   string  `json:"name"`
		Offset float64 `json:"offset"`
		Scale  float64 `json:"scale"`
	}
	type group struct {
		Name      string     `json:"name"`
		Variables []variable `json:"variables"`
	}
	cfg := struct {
		Inputs         []group  `json:"inputs"`
		InputSequences []group  `json:"input_sequences"`
		Outputs        []string `json:"outputs"`
		Version        string   `json:"onnx_model_version"`
	}{Version: "v1"}
	for _, in := range m.Inputs {
		var vs []variable
		for _, v := range in.Variables {
			name := v.Name
			if in.Name == "jet_features" {
				name = strings.TrimSuffix(name, "_btagJes")
			}
			vs = append(vs, variable{Name: name, Offset: 0, Scale: 1})
		}
		if in.Name == "jet_features" {
			cfg.Inputs = append(cfg.Inputs, group{Name: "jet_var", Variables: vs})
		} else {
			cfg.InputSequences = append(cfg.InputSequences, group{Name: in.Group + "_" + trackSelection + "_sd0sort", Variables: vs})
		}
	}
	for _, o := range m.Outputs {
		cfg.Outputs = append(cfg.Outputs, o.Name)
	}
	b, err := json.Marshal(cfg)
	return string(b), err
}

// modelCard writes the Markdown description exported beside the model.
func modelCard(m *Metadata, modelFile string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", m.Model)
	fmt.Fprintf(&b, "`%s`, exported by salt-ort %s (%s interface). ", modelFile, m.SaltORTVersion, m.Interface)
	b.WriteString("It reads raw (unnormalised) variables; the normalisation below is inside the model.\n\n")
	b.WriteString("## Inputs\n\n")
	for _, in := range m.Inputs {
		fmt.Fprintf(&b, "### `%s` float32 [%s] (from `%s`)\n\n| # | variable | mean | std |\n|---|---|---|---|\n", in.Name, strings.Join(in.Shape, ", "), in.Group)
		for i, v := range in.Variables {
			fmt.Fprintf(&b, "| %d | `%s` | %.8g | %.8g |\n", i, v.Name, v.Mean, v.Std)
		}
		if in.Valid != "" {
			fmt.Fprintf(&b, "\nValid mask: `%s` (bool, false for padding).\n", in.Valid)
		}
		b.WriteString("\n")
	}
	b.WriteString("## Outputs\n\n| name | type | shape | meaning |\n|---|---|---|---|\n")
	for _, o := range m.Outputs {
		fmt.Fprintf(&b, "| `%s` | %s | [%s] | %s |\n", o.Name, o.Type, strings.Join(o.Shape, ", "), o.Meaning)
	}
	b.WriteString("\n## Provenance\n\n")
	fmt.Fprintf(&b, "- checkpoint `%s`, SHA-256 `%s`\n", m.Checkpoint.Name, m.Checkpoint.SHA256)
	for _, f := range m.TrainingData {
		fmt.Fprintf(&b, "- training data `%s`, %d bytes, SHA-256 `%s`\n", f.Name, f.Bytes, f.SHA256)
	}
	fmt.Fprintf(&b, "- validation vectors `%s` (%d jets of the validation split with the outputs of the training-time evaluation graph), SHA-256 `%s`; check with `salt-ort validate %s`\n",
		m.Validation.Name, m.ValidationJets, m.Validation.SHA256, modelFile)
	b.WriteString("\nThe full training configuration is in the model's `salt_ort` metadata.\n")
	return b.String()
}

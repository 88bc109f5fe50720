package deploy

import (
	"encoding/json"
	"testing"

	"github.com/salt-ort/salt-ort/codegen/onnxpb"
	"github.com/salt-ort/salt-ort/internal/testkit/fuzztest"
	"google.golang.org/protobuf/proto"
)

// FuzzReadMetadata feeds arbitrary model bytes to the metadata reader:
// it must never panic, and metadata it accepts must survive a JSON round
// trip and describe a layout of validation vectors or be refused by it.
func FuzzReadMetadata(f *testing.F) {
	fuzztest.BoundMinimization(f)
	good := Metadata{Format: Format, Model: "GN2", Interface: "athena",
		Inputs: []Input{{Name: "jet_features", Group: "jets", Variables: []Variable{{Name: "pt", Std: 1}}}, {Name: "track_features", Group: "tracks"}},
		ValidationOutputs: []Output{{Name: "GN2_pb", Type: "float32", Kind: "class_probability", Task: "jets_classification"},
			{Name: "GN2_VertexIndex", Type: "int8", Kind: "vertex_index", Task: "track_vertexing", Group: "tracks"}},
		Classes: map[string][]string{"jets_classification": {"b", "u"}}}
	js, _ := json.Marshal(good)
	for _, meta := range []string{string(js), `{"format":"salt-ort deployment 1"}`, `{"format":"salt-ort deployment 2","inputs":[]}`, `{"format":`, `[]`} {
		m := &onnxpb.ModelProto{IrVersion: proto.Int64(8), MetadataProps: []*onnxpb.StringStringEntryProto{{Key: proto.String(MetadataKey), Value: proto.String(meta)}}}
		b, _ := onnxpb.Marshal(m)
		f.Add(b)
	}
	f.Add([]byte("not a model"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzModel {
			return
		}
		_, meta, err := ReadMetadata(data)
		if err != nil {
			return
		}
		again, err := json.Marshal(meta)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseMetadata(string(again)); err != nil {
			t.Fatalf("accepted metadata does not round-trip: %v", err)
		}
		layoutOf(meta) // may refuse, must not panic
	})
}

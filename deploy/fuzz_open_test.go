package deploy

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/salt-ort/salt-ort/codegen/onnxpb"
	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/internal/testkit/fuzztest"
	"google.golang.org/protobuf/proto"
)

// maxFuzzModel bounds the model bytes FuzzOpenModel tries: room for the
// metadata and configuration of a GN2-like model several times over
// (real models are larger only by their initializers, which nothing
// before ONNX Runtime reads), while keeping inputs cheap to run and
// minimise.
const maxFuzzModel = 8 << 10

// fuzzConfig is a small valid configuration of the GN2 tasks, as an
// exported model records it.
const fuzzConfig = `[data]
train = ["t.h5"]
val = ["v.h5"]
norm_dict = "n.yaml"
[data.variables]
jets = ["pt", "eta"]
tracks = ["d0"]
[model]
name = "GN2"
embed_dim = 8
[[model.init_nets]]
input = "tracks"
max_len = 4
[model.encoder]
heads = 2
layers = 1
out_dim = 4
[[model.tasks]]
name = "jets_classification"
kind = "jet_classification"
label = "flavour_label"
class_names = ["b", "u"]
[[model.tasks]]
name = "track_origin"
kind = "track_classification"
input = "tracks"
label = "ftagTruthOriginLabel"
class_names = ["p", "f"]
[[model.tasks]]
name = "track_vertexing"
kind = "vertexing"
input = "tracks"
label = "ftagTruthVertexIndex"
`

// fuzzModel serialises a model carrying meta (JSON) and a graph with the
// named float32 outputs.
func fuzzModel(t testing.TB, meta string, outputs ...string) []byte {
	t.Helper()
	g := &onnxpb.GraphProto{Name: proto.String("g")}
	for _, o := range outputs {
		g.Output = append(g.Output, &onnxpb.ValueInfoProto{Name: proto.String(o), Type: &onnxpb.TypeProto{
			Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(1)}}}})
	}
	m := &onnxpb.ModelProto{IrVersion: proto.Int64(8), Graph: g, MetadataProps: []*onnxpb.StringStringEntryProto{
		{Key: proto.String(MetadataKey), Value: proto.String(meta)}}}
	b, err := onnxpb.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fuzzMetadata is the metadata of a model exported from fuzzConfig.
func fuzzMetadata() Metadata {
	return Metadata{Format: Format, Model: "GN2", Interface: "athena",
		Inputs: []Input{
			{Name: "jet_features", Group: "jets", Shape: []string{"1", "2"}, Variables: []Variable{{Name: "pt", Std: 1}, {Name: "eta", Std: 1}}},
			{Name: "track_features", Group: "tracks", Shape: []string{"n_tracks", "1"}, Variables: []Variable{{Name: "d0", Mean: 0.1, Std: 2}}}},
		ValidationOutputs: []Output{
			{Name: "GN2_pb", Type: "float32", Kind: "class_probability", Task: "jets_classification"},
			{Name: "GN2_pu", Type: "float32", Kind: "class_probability", Task: "jets_classification", Index: 1},
			{Name: "GN2_TrackOrigin", Type: "int8", Kind: "constituent_class", Task: "track_origin", Group: "tracks"},
			{Name: "GN2_VertexIndex", Type: "int8", Kind: "vertex_index", Task: "track_vertexing", Group: "tracks"}},
		Classes: map[string][]string{"jets_classification": {"b", "u"}, "track_origin": {"p", "f"}},
		Config:  fuzzConfig}
}

// FuzzOpenModel feeds arbitrary model bytes through what Open, and so
// `salt-ort validate`, does with a model file before it hands the bytes to
// ONNX Runtime: onnxpb.Unmarshal and the salt_ort metadata (ReadMetadata),
// the training configuration recorded there (config.Parse, Spec), the
// layout of the validation vectors (layoutOf) and the graph's outputs.
// None of it may panic, and a model it accepts must say the same after
// onnxpb.Marshal. Run it with
//
//	go test -run '^$' -fuzz '^FuzzOpenModel$' -fuzztime 1m ./deploy
func FuzzOpenModel(f *testing.F) {
	fuzztest.BoundMinimization(f)
	good := fuzzMetadata()
	js, err := json.Marshal(good)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fuzzModel(f, string(js), "GN2_pb", "GN2_pu", "GN2_TrackOrigin", "GN2_VertexIndex"))
	bad := good
	bad.Config = "[model]\nname = 3\n"
	js, _ = json.Marshal(bad)
	f.Add(fuzzModel(f, string(js)))
	bad = good
	bad.ValidationOutputs = []Output{{Name: "GN2_TrackOrigin", Type: "int8", Kind: "constituent_class", Task: "track_origin", Group: "hits"}}
	js, _ = json.Marshal(bad)
	f.Add(fuzzModel(f, string(js), "GN2_pb"))
	f.Add(fuzzModel(f, `{"format":"salt-ort deployment 2","inputs":[{},{}],"validation_outputs":[{}]}`))
	f.Add([]byte{0x08, 0x08})
	// Hostile shapes (TestOpenRefusesModelBombs): many empty nodes, and
	// graphs nested in attributes past the depth bound.
	f.Add(emptyNodes(2000))
	f.Add(nestedGraphs(30))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzModel {
			return
		}
		mp, meta, err := ReadMetadata(data)
		if err != nil {
			return
		}
		if cfg, err := config.Parse("model.onnx#"+MetadataKey, []byte(meta.Config)); err == nil {
			cfg.Spec(cfg.UniformClassWeights) // may refuse, must not panic
		}
		layoutOf(meta) // may refuse, must not panic
		for _, o := range mp.GetGraph().GetOutput() {
			_ = OutputSpec{Name: o.GetName(), Type: o.GetType().GetTensorType().GetElemType()}
		}
		again, err := onnxpb.Marshal(mp)
		if err != nil {
			t.Fatalf("an accepted model does not serialise again: %v", err)
		}
		_, meta2, err := ReadMetadata(again)
		if err != nil {
			t.Fatalf("an accepted model, serialised again, is refused: %v", err)
		}
		if !reflect.DeepEqual(meta, meta2) {
			t.Fatalf("metadata changed on serialising again:\n%+v\n%+v", meta, meta2)
		}
	})
}

// TestFuzzOpenModelSeed keeps FuzzOpenModel's main seed meaningful: a
// model Open would accept up to the session, within the input bound.
func TestFuzzOpenModelSeed(t *testing.T) {
	js, err := json.Marshal(fuzzMetadata())
	if err != nil {
		t.Fatal(err)
	}
	b := fuzzModel(t, string(js), "GN2_pb")
	if len(b) > maxFuzzModel {
		t.Fatalf("seed of %d bytes, over maxFuzzModel %d", len(b), maxFuzzModel)
	}
	_, meta, err := ReadMetadata(b)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("seed#"+MetadataKey, []byte(meta.Config))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Spec(cfg.UniformClassWeights); err != nil {
		t.Fatal(err)
	}
	if _, err := layoutOf(meta); err != nil {
		t.Fatal(err)
	}
}

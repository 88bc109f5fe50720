package runtime

import (
	"reflect"
	"testing"

	"github.com/salt-ort/salt-ort/codegen/onnxpb"
	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"
)

// TestModelIOMatchesONNXRuntime checks modelIO, which reads a model's
// inputs and outputs from its protobuf, against ONNX Runtime's own answer
// (a session created to ask): initializers listed among the inputs are not
// inputs, dynamic dimensions are -1, element types keep their numbers.
func TestModelIOMatchesONNXRuntime(t *testing.T) {
	openRuntime(t)
	static := denseReLU(2, 3, 4, make([]float32, 12), make([]float32, 4))
	dynamic := proto.Clone(static).(*onnxpb.ModelProto)
	dynamic.Graph.Input[0].Type.GetTensorType().Shape.Dim[0] = &onnxpb.TensorShapeProto_Dimension{
		Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "batch"}}
	dynamic.Graph.Output[0].Type.GetTensorType().Shape.Dim[0] = &onnxpb.TensorShapeProto_Dimension{}
	listed := proto.Clone(static).(*onnxpb.ModelProto)
	listed.Graph.Input = append(listed.Graph.Input, valueInfo("W", 3, 4), valueInfo("b", 4))
	double := proto.Clone(static).(*onnxpb.ModelProto)
	double.Graph.Input = append(double.Graph.Input, valueInfo("unused", 5))
	double.Graph.Input[1].Type.GetTensorType().ElemType = proto.Int32(int32(onnxpb.TensorProto_DOUBLE))
	for _, c := range []struct {
		name  string
		model *onnxpb.ModelProto
	}{
		{"static", static},
		{"dynamic batch", dynamic},
		{"initializers listed as inputs", listed},
		{"a float64 input", double},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := onnxpb.Marshal(c.model)
			if err != nil {
				t.Fatal(err)
			}
			wantIn, wantOut, err := ort.GetInputOutputInfoWithONNXData(b)
			if err != nil {
				t.Fatal(err)
			}
			gotIn, gotOut, err := modelIO(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(gotIn, wantIn) || !reflect.DeepEqual(gotOut, wantOut) {
				t.Errorf("modelIO: inputs %v outputs %v\nONNX Runtime: inputs %v outputs %v", gotIn, gotOut, wantIn, wantOut)
			}
		})
	}
}

package runtime

import (
	"github.com/salt-ort/salt-ort/codegen/onnxpb"
	ort "github.com/yalue/onnxruntime_go"
)

// modelIO lists a serialised model's inputs (those that are not
// initializers) and outputs as ONNX Runtime lists them, read from the
// model's own protobuf. onnxruntime_go's GetInputOutputInfoWithONNXData
// creates a whole session to ask, which costs as much as the session the
// caller then creates (17 s for GN2's training step at batch 1000);
// models with an input or output that is not a tensor are left to it.
func modelIO(model []byte) (ins, outs []ort.InputOutputInfo, err error) {
	m, err := onnxpb.Unmarshal(model)
	if err != nil {
		return ort.GetInputOutputInfoWithONNXData(model)
	}
	g := m.GetGraph()
	initialized := map[string]bool{}
	for _, t := range g.GetInitializer() {
		initialized[t.GetName()] = true
	}
	info := func(v *onnxpb.ValueInfoProto) (ort.InputOutputInfo, bool) {
		t := v.GetType().GetTensorType()
		if t == nil {
			return ort.InputOutputInfo{}, false
		}
		var dims ort.Shape
		for _, d := range t.GetShape().GetDim() {
			if _, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); ok {
				dims = append(dims, d.GetDimValue())
			} else {
				dims = append(dims, -1)
			}
		}
		return ort.InputOutputInfo{Name: v.GetName(), OrtValueType: ort.ONNXTypeTensor, Dimensions: dims,
			DataType: ort.TensorElementDataType(t.GetElemType())}, true
	}
	for _, v := range g.GetInput() {
		if initialized[v.GetName()] {
			continue
		}
		i, ok := info(v)
		if !ok {
			return ort.GetInputOutputInfoWithONNXData(model)
		}
		ins = append(ins, i)
	}
	for _, v := range g.GetOutput() {
		o, ok := info(v)
		if !ok {
			return ort.GetInputOutputInfoWithONNXData(model)
		}
		outs = append(outs, o)
	}
	return ins, outs, nil
}

package deploy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/salt-ort/salt-ort/codegen/onnxpb"
	"github.com/salt-ort/salt-ort/graph"
	"google.golang.org/protobuf/proto"
)

// MinOpset is the oldest opset salt-ort writes: the graph builds its
// operators in the forms of opset 13 (the axes of Squeeze, Unsqueeze and
// ReduceSum and the sizes of Split as inputs, Softmax over one axis).
const MinOpset = 13

// MaxOpset is the newest opset export writes (ONNX 1.18's).
const MaxOpset = 23

// opsetIntroduced lists the operators the deployment graph may use that
// need an opset above MinOpset, with the opset that introduced them.
var opsetIntroduced = map[string]int{
	"LayerNormalization": 17,
}

// attrIntroduced lists operator attributes salt-ort may set that a later
// opset than the operator's introduced (operator/attribute).
var attrIntroduced = map[string]int{
	"Shape/start": 15,
	"Shape/end":   15,
}

// nodeOpset is the opset a node needs in the form salt-ort writes it, and
// what sets it.
func nodeOpset(n *onnxpb.NodeProto) (int, string) {
	need, by := opsetIntroduced[n.GetOpType()], n.GetOpType()
	for _, a := range n.GetAttribute() {
		key := n.GetOpType() + "/" + a.GetName()
		if v := attrIntroduced[key]; v > need {
			need, by = v, n.GetOpType()+"'s attribute "+a.GetName()
		}
	}
	return need, by
}

// reduceAxesAsInput lists the reductions whose axes moved from an
// attribute to an input in opset 18 (ReduceSum moved in opset 13).
var reduceAxesAsInput = []string{"ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"}

// irVersions is the IR version that goes with each opset (ONNX's
// versioning table): a runtime that knows an opset knows its IR version.
var irVersions = map[int]int64{13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10, 22: 10, 23: 11}

// NeededOpset returns the lowest opset that has every operator of the
// model in the form salt-ort writes it, and the operator that sets it.
func NeededOpset(m *onnxpb.ModelProto) (int, string) {
	need, by := MinOpset, ""
	for _, n := range m.GetGraph().GetNode() {
		if v, what := nodeOpset(n); v > need {
			need, by = v, what
		}
	}
	return need, by
}

// Operators lists the distinct operators of the model, sorted.
func Operators(m *onnxpb.ModelProto) []string {
	var ops []string
	for _, n := range m.GetGraph().GetNode() {
		if !slices.Contains(ops, n.GetOpType()) {
			ops = append(ops, n.GetOpType())
		}
	}
	slices.Sort(ops)
	return ops
}

// SetOpset stamps the model with opset (0: NeededOpset) and the IR version
// that goes with it, rewriting the operators whose form changed between
// graph.Opset, in which salt-ort builds graphs, and that opset. It returns
// the opset written.
func SetOpset(m *onnxpb.ModelProto, opset int) (int, error) {
	need, by := NeededOpset(m)
	if opset == 0 {
		opset = need
	}
	switch {
	case opset < need:
		return 0, fmt.Errorf("opset %d: the deployment graph uses %s, which opset %d introduced: export with --opset %d or later (or leave --opset out for the lowest the graph needs)", opset, by, need, need)
	case opset > MaxOpset:
		return 0, fmt.Errorf("opset %d: salt-ort writes opsets %d to %d: export with --opset %d or lower", opset, need, MaxOpset, MaxOpset)
	}
	if opset >= 18 && graph.Opset < 18 {
		reduceAxesToInputs(m)
	}
	m.IrVersion = proto.Int64(irVersions[opset])
	for _, o := range m.GetOpsetImport() {
		if o.GetDomain() == "" {
			o.Version = proto.Int64(int64(opset))
		}
	}
	return opset, nil
}

// reduceAxesToInputs moves the axes attribute of the reductions that
// opset 18 changed into an int64 initializer input.
func reduceAxesToInputs(m *onnxpb.ModelProto) {
	g := m.GetGraph()
	for _, n := range g.GetNode() {
		if !slices.Contains(reduceAxesAsInput, n.GetOpType()) {
			continue
		}
		var keep []*onnxpb.AttributeProto
		var axes []int64
		found := false
		for _, a := range n.GetAttribute() {
			if a.GetName() == "axes" {
				axes, found = a.GetInts(), true
				continue
			}
			keep = append(keep, a)
		}
		if !found {
			continue
		}
		n.Attribute = keep
		name := strings.Join(n.GetOutput(), ",") + "/axes"
		g.Initializer = append(g.Initializer, &onnxpb.TensorProto{
			Name:      proto.String(name),
			DataType:  proto.Int32(int32(onnxpb.TensorProto_INT64)),
			Dims:      []int64{int64(len(axes))},
			Int64Data: axes,
		})
		n.Input = append(n.Input, name)
	}
}

package graph

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/salt-ort/salt-ort/codegen/onnxpb"
	"google.golang.org/protobuf/proto"
)

// ModelOptions control how a graph is written as an ONNX model.
type ModelOptions struct {
	// ParamValues holds little-endian element bytes for parameters that the
	// model stores as initializers (a deployment model). Parameters without
	// a value become graph inputs after the declared inputs, in declaration
	// order (a training graph).
	ParamValues map[string][]byte
	// DimNames names dynamic dimensions of inputs and outputs, keyed by
	// "value:axis" (e.g. "track_features:0" → "n_tracks"). Unnamed dynamic
	// dimensions are called "<value>_dim<axis>".
	DimNames map[string]string
	// ProducerVersion is written as the model's producer_version.
	ProducerVersion string
	// DocString is written as the model's doc_string.
	DocString string
}

// optionalTrailingOutputs lists operators whose trailing outputs are
// optional: they are dropped from the model when nothing uses them.
var optionalTrailingOutputs = map[string]bool{"LayerNormalization": true, "Dropout": true}

// Model writes the graph as an ONNX ModelProto. Nodes that no output
// depends on and constants no node uses are left out; the result is the
// same for the same graph, byte for byte once marshalled.
func (g *Graph) Model(opts ModelOptions) (*onnxpb.ModelProto, error) {
	if g.err != nil {
		return nil, g.err
	}
	if len(g.outputs) == 0 {
		return nil, fmt.Errorf("graph %s: no outputs", g.name)
	}
	live := g.liveNodes()
	consumed := make(map[*Tensor]bool)
	for _, n := range live {
		for _, in := range n.Inputs {
			if in != nil {
				consumed[in] = true
			}
		}
	}
	for _, o := range g.outputs {
		consumed[o] = true
	}

	gp := &onnxpb.GraphProto{Name: proto.String(g.name)}
	for _, n := range live {
		gp.Node = append(gp.Node, nodeProto(n, consumed))
	}
	for _, in := range g.inputs {
		gp.Input = append(gp.Input, valueInfo(in, opts.DimNames))
	}
	for _, p := range g.params {
		t := p.Tensor
		if raw, ok := opts.ParamValues[t.name]; ok {
			if int64(len(raw)) != t.shape.Size()*int64(t.dtype.Size()) {
				return nil, fmt.Errorf("graph %s: parameter %s: value has %d bytes, want %d for %s%v",
					g.name, t.name, len(raw), t.shape.Size()*int64(t.dtype.Size()), t.dtype, t.shape)
			}
			gp.Initializer = append(gp.Initializer, tensorProto(t, raw))
		} else {
			gp.Input = append(gp.Input, valueInfo(t, opts.DimNames))
		}
	}
	for _, c := range g.consts {
		if consumed[c.tensor] {
			gp.Initializer = append(gp.Initializer, tensorProto(c.tensor, c.raw))
		}
	}
	for _, o := range g.outputs {
		gp.Output = append(gp.Output, valueInfo(o, opts.DimNames))
	}
	m := &onnxpb.ModelProto{
		IrVersion:    proto.Int64(IRVersion),
		ProducerName: proto.String("salt-ort"),
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(Opset)}},
		Graph:        gp,
	}
	if opts.ProducerVersion != "" {
		m.ProducerVersion = proto.String(opts.ProducerVersion)
	}
	if opts.DocString != "" {
		m.DocString = proto.String(opts.DocString)
	}
	for _, kv := range g.meta {
		m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: proto.String(kv[0]), Value: proto.String(kv[1])})
	}
	return m, nil
}

// Marshal writes the graph as serialised ONNX bytes (see Model).
func (g *Graph) Marshal(opts ModelOptions) ([]byte, error) {
	m, err := g.Model(opts)
	if err != nil {
		return nil, err
	}
	return onnxpb.Marshal(m)
}

// liveNodes returns, in order, the nodes some graph output depends on.
func (g *Graph) liveNodes() []*Node {
	need := make(map[*Node]bool)
	var stack []*Node
	mark := func(t *Tensor) {
		if t != nil && t.producer != nil && !need[t.producer] {
			need[t.producer] = true
			stack = append(stack, t.producer)
		}
	}
	for _, o := range g.outputs {
		mark(o)
	}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, in := range n.Inputs {
			mark(in)
		}
	}
	var live []*Node
	for _, n := range g.nodes {
		if need[n] {
			live = append(live, n)
		}
	}
	return live
}

func nodeProto(n *Node, consumed map[*Tensor]bool) *onnxpb.NodeProto {
	np := &onnxpb.NodeProto{Name: proto.String(n.Name), OpType: proto.String(n.Op)}
	for _, in := range n.Inputs {
		if in == nil {
			np.Input = append(np.Input, "")
		} else {
			np.Input = append(np.Input, in.name)
		}
	}
	outs := n.Outputs
	if optionalTrailingOutputs[n.Op] {
		for len(outs) > 1 && !consumed[outs[len(outs)-1]] {
			outs = outs[:len(outs)-1]
		}
	}
	for i, o := range outs {
		// The first output is never optional (LayerNormalization's Y
		// is unread where only a recomputed copy's statistics are).
		if i > 0 && !consumed[o] && optionalTrailingOutputs[n.Op] {
			np.Output = append(np.Output, "")
		} else {
			np.Output = append(np.Output, o.name)
		}
	}
	for _, a := range n.Attrs {
		np.Attribute = append(np.Attribute, attrProto(a))
	}
	return np
}

func attrProto(a Attr) *onnxpb.AttributeProto {
	ap := &onnxpb.AttributeProto{Name: proto.String(a.Name)}
	switch a.Kind {
	case AttrInt:
		ap.Type = onnxpb.AttributeProto_INT.Enum()
		ap.I = proto.Int64(a.Int)
	case AttrFloat:
		ap.Type = onnxpb.AttributeProto_FLOAT.Enum()
		ap.F = proto.Float32(a.Float)
	case AttrInts:
		ap.Type = onnxpb.AttributeProto_INTS.Enum()
		ap.Ints = a.Ints
	case AttrFloats:
		ap.Type = onnxpb.AttributeProto_FLOATS.Enum()
		ap.Floats = a.Floats
	case AttrString:
		ap.Type = onnxpb.AttributeProto_STRING.Enum()
		ap.S = []byte(a.String)
	}
	return ap
}

func valueInfo(t *Tensor, dimNames map[string]string) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for i, d := range t.shape {
		dim := &onnxpb.TensorShapeProto_Dimension{}
		if d >= 0 {
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}
		} else {
			name, ok := dimNames[fmt.Sprintf("%s:%d", t.name, i)]
			if !ok {
				name = fmt.Sprintf("%s_dim%d", t.name, i)
			}
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: name}
		}
		shape.Dim = append(shape.Dim, dim)
	}
	return &onnxpb.ValueInfoProto{
		Name: proto.String(t.name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(t.dtype)),
			Shape:    shape,
		}}},
	}
}

func tensorProto(t *Tensor, raw []byte) *onnxpb.TensorProto {
	dims := make([]int64, len(t.shape))
	copy(dims, t.shape)
	return &onnxpb.TensorProto{
		Name:     proto.String(t.name),
		Dims:     dims,
		DataType: proto.Int32(int32(t.dtype)),
		RawData:  raw,
	}
}

// Float32Bytes returns the little-endian bytes of v, the layout of
// ModelOptions.ParamValues for float32 parameters.
func Float32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// Float64Bytes returns the little-endian bytes of v.
func Float64Bytes(v []float64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return b
}

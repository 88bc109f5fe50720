package deploy

import (
	"errors"
	"fmt"

	"github.com/salt-ort/salt-ort/codegen/onnxpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// MaxModelSize is the largest ONNX file validate reads: protobuf's own 2 GiB
// limit on one message, past which ONNX keeps weights in external data
// files (which salt-ort neither writes nor reads).
const MaxModelSize = 2 << 30

// maxModelDepth bounds how deep messages nest (a graph in an attribute of
// a node of a graph …); salt-ort's models nest six deep.
const maxModelDepth = 64

// Decoding costs, in bytes of memory, that checkModelBounds charges: a
// message, a string or bytes value beside its length, a scalar.
const (
	messageCost = 128
	stringCost  = 16
	scalarCost  = 8
)

// modelSlack is the decoded size every model may reach whatever its file
// size, so that small files are never refused.
const modelSlack = 16 << 20

// checkModelBounds walks the serialised ModelProto data without decoding
// it and refuses one whose decoded form would take more than four times
// its size (a protobuf bomb: millions of empty messages in a few bytes
// each) or that nests deeper than maxModelDepth. It names the field that
// holds the most messages or nests too deep, in ONNX's schema names.
func checkModelBounds(data []byte) error {
	w := &boundsWalk{counts: map[protoreflect.FieldDescriptor]int64{}}
	if err := w.message(data, (&onnxpb.ModelProto{}).ProtoReflect().Descriptor(), 0); err != nil {
		return err
	}
	limit := 4*int64(len(data)) + modelSlack
	if w.cost <= limit {
		return nil
	}
	var worst protoreflect.FieldDescriptor
	for fd, n := range w.counts {
		if worst == nil || n > w.counts[worst] || n == w.counts[worst] && fd.FullName() < worst.FullName() {
			worst = fd
		}
	}
	what := "values"
	if worst != nil {
		what = fmt.Sprintf("messages, %d of them in %s", w.counts[worst], worst.FullName())
	}
	return fmt.Errorf("its %d bytes would take about %d bytes of memory to decode (%s): not a model salt-ort exports, and refused before decoding it", len(data), w.cost, what)
}

// boundsWalk accumulates the decoding cost of a message and the messages
// each field holds.
type boundsWalk struct {
	cost   int64
	counts map[protoreflect.FieldDescriptor]int64
}

var errDamaged = errors.New("not an ONNX model, or a truncated or damaged one; export it again (salt-ort export)")

// message walks the fields of one message of type md serialised in b.
func (w *boundsWalk) message(b []byte, md protoreflect.MessageDescriptor, depth int) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errDamaged
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return errDamaged
		}
		v := b[:m]
		b = b[m:]
		fd := md.Fields().ByNumber(num)
		switch {
		case fd == nil || typ != protowire.BytesType:
			w.cost += scalarCost + int64(len(v))
		case fd.Kind() == protoreflect.MessageKind:
			if depth+1 > maxModelDepth {
				return fmt.Errorf("messages nest more than %d deep (at %s): not a model salt-ort exports", maxModelDepth, fd.FullName())
			}
			body, k := protowire.ConsumeBytes(v)
			if k < 0 {
				return errDamaged
			}
			w.cost += messageCost
			w.counts[fd]++
			if err := w.message(body, fd.Message(), depth+1); err != nil {
				return err
			}
		case fd.Kind() == protoreflect.StringKind || fd.Kind() == protoreflect.BytesKind:
			w.cost += stringCost + int64(len(v))
		default:
			w.cost += packedCost(fd.Kind(), v)
		}
	}
	return nil
}

// packedCost is the decoding cost of a packed repeated scalar field of
// kind k serialised in v: fixed-width values decode to their own size,
// varints to eight bytes each.
func packedCost(k protoreflect.Kind, v []byte) int64 {
	switch k {
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind,
		protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return int64(len(v))
	}
	var n int64
	for _, c := range v {
		if c < 0x80 { // the last byte of a varint
			n++
		}
	}
	return scalarCost * n
}

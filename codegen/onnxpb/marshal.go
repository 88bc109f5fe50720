package onnxpb

import (
	"fmt"

	"google.golang.org/protobuf/proto"
)

// Marshal serialises a model deterministically: the same message always
// gives the same bytes, so exported models can be compared by hash.
func Marshal(m *ModelProto) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("onnxpb: marshal model %q: %w", m.GetGraph().GetName(), err)
	}
	return b, nil
}

// Unmarshal parses serialised model bytes.
func Unmarshal(b []byte) (*ModelProto, error) {
	m := new(ModelProto)
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("onnxpb: unmarshal model: %w", err)
	}
	return m, nil
}

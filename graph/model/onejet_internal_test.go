package model

import (
	"reflect"
	"testing"

	"github.com/salt-ort/salt-ort/graph/nn"
)

// TestOneJetFieldsExist checks that every field oneJetFields lists exists
// in its type, so that a renamed field cannot leave the check looking at
// nothing.
func TestOneJetFieldsExist(t *testing.T) {
	for typ, fields := range oneJetFields {
		for _, f := range fields {
			if _, ok := typ.FieldByName(f); !ok {
				t.Errorf("%s has no field %s", typ, f)
			}
		}
	}
}

// TestOneJetRefusesUnknownOptions checks that a field oneJetFields does
// not list sends a model to the reference pass only when it is set, and
// that unknown activations and kinds do too.
func TestOneJetRefusesUnknownOptions(t *testing.T) {
	type later struct {
		Known  int
		Option string
	}
	oneJetFields[reflect.TypeOf(later{})] = []string{"Known"}
	defer delete(oneJetFields, reflect.TypeOf(later{}))
	for _, c := range []struct {
		name string
		v    any
		want bool
	}{
		{"known field set", later{Known: 3}, true},
		{"unknown field unset", later{}, true},
		{"unknown field set", later{Option: "edges"}, false},
	} {
		if got := onlyKnownFields(reflect.ValueOf(c.v)); got != c.want {
			t.Errorf("%s: onlyKnownFields = %v, want %v", c.name, got, c.want)
		}
	}
	for _, c := range []struct {
		name   string
		change func(*Spec)
		want   bool
	}{
		{"GN2", func(*Spec) {}, true},
		{"unknown encoder activation", func(s *Spec) { s.Encoder.Activation = "softsign" }, false},
		{"unknown init activation", func(s *Spec) { s.Inputs[0].Activation = "softsign" }, false},
		{"unknown task activation", func(s *Spec) { s.Tasks[1].Activation = "softsign" }, false},
		{"mish", func(s *Spec) {
			s.Encoder.Activation, s.Inputs[0].Activation, s.Tasks[1].Activation = nn.Mish, nn.Mish, nn.Mish
		}, true},
		{"dropout, L1 and entry means", func(s *Spec) {
			s.Inputs[0].Dropout, s.Tasks[0].Dropout, s.Tasks[1].Mean = 0.1, 0.2, EntryMean
		}, true},
		{"unknown task kind", func(s *Spec) { s.Tasks[0].Kind = "jet_ranking" }, false},
		{"no constituents", func(s *Spec) { s.Inputs = nil }, false},
	} {
		s := GN2()
		c.change(&s)
		if got := s.oneJetSupported(); got != c.want {
			t.Errorf("%s: oneJetSupported = %v, want %v", c.name, got, c.want)
		}
	}
}

package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/loader"
)

// multiTarget is minimal with a jet regression of pt_label_handle, built
// by two of Salt's multi_target conditions, and a track regression of d0
// overwritten where one holds.
const multiTarget = minimal + `
[[model.tasks]]
name = "pt_regression"
kind = "regression"
targets = ["pt_label_handle"]
[[model.tasks]]
name = "d0_regression"
kind = "regression"
input = "tracks"
targets = ["d0"]
[[data.multi_target]]
input = "jets"
sel_label = "HadronConeExclTruthLabelID"
opp = "=="
value = 15
custom_target = "pt_label_handle"
source = "HadronConeExclTruthLabelPt"
[[data.multi_target]]
input = "jets"
sel_label = "HadronConeExclTruthLabelID"
opp = "!="
value = 15
custom_target = "pt_label_handle"
source = "pt"
[[data.multi_target]]
input = "tracks"
sel_label = "ftagTruthOriginLabel"
opp = ">="
value = 3
target = "d0"
source = "d0_truth"
`

// TestMultiTarget checks that [[data.multi_target]] becomes the loader's
// replacements of the targets it names, in order, and which fields
// evaluation needs for them.
func TestMultiTarget(t *testing.T) {
	c, err := Parse("model.toml", []byte(multiTarget))
	if err != nil {
		t.Fatal(err)
	}
	cut := func(field, op string, v float64) loader.Cut {
		return loader.Cut{Field: field, Op: op, Values: []float64{v}}
	}
	for _, w := range []struct {
		input, target string
		want          loader.Label
		fields        []string
	}{
		{"jets", "pt_label_handle", loader.Label{Name: "x", Dataset: "jets", Kind: loader.FloatLabel, KeepNaN: true, Replace: []loader.Replacement{
			{Cut: cut("HadronConeExclTruthLabelID", "==", 15), Source: "HadronConeExclTruthLabelPt"},
			{Cut: cut("HadronConeExclTruthLabelID", "!=", 15), Source: "pt"}}},
			[]string{"HadronConeExclTruthLabelID", "HadronConeExclTruthLabelPt", "HadronConeExclTruthLabelID", "pt"}},
		{"tracks", "d0", loader.Label{Name: "x", Dataset: "tracks", Field: "d0", Kind: loader.FloatLabel, KeepNaN: true, Replace: []loader.Replacement{
			{Cut: cut("ftagTruthOriginLabel", ">=", 3), Source: "d0_truth"}}},
			[]string{"d0", "ftagTruthOriginLabel", "d0_truth"}},
		{"jets", "pt", loader.Label{Name: "x", Dataset: "jets", Field: "pt", Kind: loader.FloatLabel, KeepNaN: true}, []string{"pt"}},
	} {
		if got := c.TargetLabel("x", w.input, w.target); !reflect.DeepEqual(got, w.want) {
			t.Errorf("%s %s: label %+v, want %+v", w.input, w.target, got, w.want)
		}
		if got := c.TargetFields(w.input, w.target); !reflect.DeepEqual(got, w.fields) {
			t.Errorf("%s %s: fields %v, want %v", w.input, w.target, got, w.fields)
		}
	}
}

// TestMultiTargetRefused checks that an incomplete or ineffective
// condition is an error naming its key.
func TestMultiTargetRefused(t *testing.T) {
	replace := func(from, to string) string {
		if !strings.Contains(multiTarget, from) {
			t.Fatalf("no %q", from)
		}
		return strings.Replace(multiTarget, from, to, 1)
	}
	for _, c := range []struct {
		name, text, key, want string
	}{
		{"no input", replace(`input = "jets"`, ""), "data.multi_target.input", "input_name"},
		{"input not read", replace(`input = "jets"`, `input = "muons"`), "data.multi_target.input", "neither the jet dataset"},
		{"unknown operator", replace(`opp = "=="`, `opp = "in"`), "data.multi_target.opp", "==, !=, <, <=, >, >="},
		{"no selection field", replace(`sel_label = "ftagTruthOriginLabel"`, ""), "data.multi_target.sel_label", "field the condition is on"},
		{"no source", replace(`source = "pt"`, ""), "data.multi_target.source", "give the field"},
		{"both forms", replace(`target = "d0"`, "target = \"d0\"\ncustom_target = \"d0\""), "data.multi_target.target", "not both or neither"},
		{"not a regression target", replace(`target = "d0"`, `target = "z0"`), "data.multi_target.target", "regression targets only"},
		{"mixed forms", replace(`opp = "!="
value = 15
custom_target = "pt_label_handle"`, `opp = "!="
value = 15
target = "pt_label_handle"`), "data.multi_target.custom_target", "use one form"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("model.toml", []byte(c.text))
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != c.key || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want key %s and %q", err, c.key, c.want)
			}
		})
	}
}

package deploy

import (
	"reflect"
	"testing"

	"github.com/salt-ort/salt-ort/loader"
)

// TestMetadataNormDict checks that the normalisation an export records
// reads back as the norm dict it came from, per dataset, so that a model's
// configuration can be rebuilt where the training norm dict is not.
func TestMetadataNormDict(t *testing.T) {
	m := &Metadata{Inputs: []Input{
		{Name: "jet_features", Group: "jets", Variables: []Variable{{Name: "pt", Mean: 1e5, Std: 5e4}}},
		{Name: "track_features", Group: "tracks_loose", Variables: []Variable{{Name: "d0", Mean: 0.1, Std: 2}, {Name: "dphi", Mean: 0, Std: 0.5}}},
	}}
	want := loader.NormDict{
		"jets":         {"pt": {Mean: 1e5, Std: 5e4}},
		"tracks_loose": {"d0": {Mean: 0.1, Std: 2}, "dphi": {Mean: 0, Std: 0.5}},
	}
	if got := m.normDict(); !reflect.DeepEqual(got, want) {
		t.Errorf("norm dict %v, want %v", got, want)
	}
}

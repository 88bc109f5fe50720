package run

import (
	"slices"
	"testing"

	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/nn"
	"github.com/salt-ort/salt-ort/loader"
)

// TestFillTruthPlacesValidObjectsFirst checks that the truth objects of a
// batch go into the slots Salt's loss expects: each jet's valid objects
// first, in file order, with their masks and regression targets in the
// same slots, and no object (class NumClasses, empty mask, target 0) in
// the rest.
func TestFillTruthPlacesValidObjectsFirst(t *testing.T) {
	const nobj, nc, maxLen = 3, 2, 4
	m := &ObjectMatcher{
		objects: &model.Objects{
			Decoder:    nn.MaskDecoderConfig{Objects: nobj},
			NumClasses: nc,
			Regression: &model.ObjectRegression{Targets: []string{"pt"}},
		},
		maxLen: maxLen,
	}
	// Two jets of three truth slots: jet 0 has an invalid slot (-1)
	// between two objects; jet 1 has one object, in its last slot.
	b := &loader.Batch{
		N: 2,
		Labels: map[string][]int64{
			objectClassLabel: {1, -1, 0, -1, -1, 1},
			objectIDLabel:    {7, -1, 9, -1, -1, 4},
			objectOfLabel:    {9, 7, -1, 7, 4, -1, 4, -1},
		},
		Targets: map[string][]float32{
			objectRegressionLabel("pt"): {10, 0, 20, 0, 0, 30},
		},
	}
	class := make([]int64, 2*nobj)
	masks := make([]bool, 2*nobj*maxLen)
	if err := m.fillTruth(class, masks, b); err != nil {
		t.Fatal(err)
	}
	if want := []int64{1, 0, nc, 1, nc, nc}; !slices.Equal(class, want) {
		t.Errorf("classes %v, want %v", class, want)
	}
	wantMasks := []bool{
		false, true, false, true, // jet 0, object 7
		true, false, false, false, // jet 0, object 9
		false, false, false, false, // no object
		true, false, true, false, // jet 1, object 4
		false, false, false, false,
		false, false, false, false,
	}
	if !slices.Equal(masks, wantMasks) {
		t.Errorf("masks %v, want %v", masks, wantMasks)
	}
	reg := make([]float32, 2*nobj)
	m.fillRegression(reg, b)
	if want := []float32{10, 20, 0, 30, 0, 0}; !slices.Equal(reg, want) {
		t.Errorf("regression targets %v, want %v", reg, want)
	}
}

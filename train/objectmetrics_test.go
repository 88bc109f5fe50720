package train

import (
	"errors"
	"math"
	"testing"

	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/nn"
	"github.com/salt-ort/salt-ort/loader"
	"github.com/salt-ort/salt-ort/metrics"
)

// mapTensors is a binding of named buffers of every type.
type mapTensors struct {
	floats map[string][]float32
	ints   map[string][]int64
	bools  map[string][]bool
}

func (m mapTensors) Float32(name string) ([]float32, error) { return lookupBuffer(m.floats, name) }
func (m mapTensors) Int64(name string) ([]int64, error)     { return lookupBuffer(m.ints, name) }
func (m mapTensors) Bool(name string) ([]bool, error)       { return lookupBuffer(m.bools, name) }
func (mapTensors) SetScalar(string, float32) error          { return nil }
func (mapTensors) Scalar(string) (float32, error)           { return 0, nil }
func (mapTensors) Write(string, []float32) error            { return nil }
func (mapTensors) Read(string, []float32) error             { return nil }
func (mapTensors) Swap(string, string) error                { return nil }
func (mapTensors) Run() error                               { return nil }
func (mapTensors) Close() error                             { return nil }

func lookupBuffer[E any](m map[string][]E, name string) ([]E, error) {
	if v, ok := m[name]; ok {
		return v, nil
	}
	return nil, errors.New("no buffer " + name)
}

// TestObjectMetrics checks the matched-object metrics on one jet of two
// truth hadrons (b: tracks 0-2; c: tracks 3-4) and three objects over
// five tracks (the last one padding).
func TestObjectMetrics(t *testing.T) {
	objects := &model.Objects{Decoder: nn.MaskDecoderConfig{Objects: 3}, Input: "tracks", NumClasses: 2}
	m := &objectMatcher{objects: objects, maxLen: 6}
	// Truth: slot 0 b (tracks 0,1,2), slot 1 c (tracks 3,4), slot 2 none.
	tgt := []bool{
		true, true, true, false, false, false,
		false, false, false, true, true, false,
		false, false, false, false, false, false,
	}
	const in, out = 3, -3 // mask logits in and out of a mask
	tests := []struct {
		name   string
		perm   []int64
		probs  []float32 // per object: b, c, null
		logits []float32 // per object, 6 tracks
		want   map[string]float64
	}{
		{"perfect", []int64{2, 0, 1},
			[]float32{0.1, 0.8, 0.1, 0.1, 0.1, 0.8, 0.7, 0.2, 0.1},
			[]float32{
				out, out, out, in, in, in, // object 0 → slot 1 (c); track 5 is padding
				out, out, out, out, out, out,
				in, in, in, out, out, out, // object 2 → slot 0 (b)
			},
			map[string]float64{"class_exact_match": 1, "class_accuracy_micro": 1, "notnull_eff": 1, "notnull_pur": 1,
				"query_perfect_match_eff": 1, "query_perfect_match_fake": 0, "query_loose_match_eff": 1, "query_loose_match_fake": 0,
				"assignment_eff": 1, "assignment_pur": 1}},
		{"loose b, c missed, a fake", []int64{0, 1, 2},
			[]float32{0.8, 0.1, 0.1, 0.1, 0.1, 0.8, 0.2, 0.7, 0.1},
			[]float32{
				in, in, out, in, out, out, // b object: 2 of 3 b tracks and a c track
				in, in, in, in, in, in, // predicted null: no mask
				out, out, out, out, in, out, // a c object on the empty slot: fake
			},
			map[string]float64{"class_exact_match": 0, "class_accuracy_micro": 1.0 / 3, "notnull_eff": 0.5, "notnull_pur": 0.5,
				"query_perfect_match_eff": 0, "query_perfect_match_fake": 1, "query_loose_match_eff": 0.5, "query_loose_match_fake": 0.5,
				"assignment_eff": 2.0 / 5, "assignment_pur": 2.0 / 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m.perm = tt.perm
			bind := mapTensors{
				floats: map[string][]float32{model.ObjectClassProbsOutput: tt.probs, model.ObjectMasksOutput: tt.logits},
				ints:   map[string][]int64{model.ObjectClassInput: {0, 1, 2}},
				bools:  map[string][]bool{model.ObjectMaskInput: tgt, model.ValidInput("tracks"): {true, true, true, true, true, false}},
			}
			var cnt metrics.ObjectCounts
			if err := m.addObjectCounts(bind, &cnt, 1); err != nil {
				t.Fatal(err)
			}
			got := cnt.Metrics()
			for _, name := range metrics.ObjectMetricNames {
				if math.Abs(got[name]-tt.want[name]) > 1e-12 {
					t.Errorf("%s = %g, want %g", name, got[name], tt.want[name])
				}
			}
		})
	}
}

// TestObjectFill checks the truth objects fed to the step: the valid
// slots first, the others no object, and the target masks from the ids.
func TestObjectFill(t *testing.T) {
	objects := &model.Objects{Decoder: nn.MaskDecoderConfig{Objects: 3}, Input: "tracks", NumClasses: 2}
	m := &objectMatcher{objects: objects, maxLen: 4}
	b := &loader.Batch{Labels: map[string][]int64{
		// Jet 0: an empty slot before a c hadron (id 7); jet 1: a padding row.
		objectClassLabel: {-1, 1, -1, -1},
		objectIDLabel:    {-1, 7, -1, -1},
		objectOfLabel:    {7, -1, 7, -1, -1, -1, -1, -1},
	}}
	class := make([]int64, 6)
	masks := make([]bool, 24)
	bind := mapTensors{ints: map[string][]int64{model.ObjectClassInput: class}, bools: map[string][]bool{model.ObjectMaskInput: masks}}
	if err := m.fill(bind, b); err != nil {
		t.Fatal(err)
	}
	if want := []int64{1, 2, 2, 2, 2, 2}; !equalSlices(class, want) {
		t.Errorf("classes %v, want %v", class, want)
	}
	want := make([]bool, 24)
	want[0], want[2] = true, true
	if !equalSlices(masks, want) {
		t.Errorf("masks %v, want %v", masks, want)
	}
	// More truth slots than objects is an error naming the keys.
	b.Labels[objectClassLabel] = make([]int64, 8)
	b.Labels[objectIDLabel] = make([]int64, 8)
	if err := m.fill(bind, b); err == nil {
		t.Error("4 truth slots for 3 objects: no error")
	}
}

func equalSlices[E comparable](a, b []E) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

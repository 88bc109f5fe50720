package run

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/loader"
)

// floatTensors is a binding of float32 inputs alone, for the Feeder.
type floatTensors struct{ tensors map[string][]float32 }

func (f floatTensors) Float32(name string) ([]float32, error) {
	if v, ok := f.tensors[name]; ok {
		return v, nil
	}
	return nil, errors.New("no input " + name)
}
func (floatTensors) Int64(string) ([]int64, error)   { return nil, errors.New("no int64 inputs") }
func (floatTensors) Bool(string) ([]bool, error)     { return nil, errors.New("no bool inputs") }
func (floatTensors) SetScalar(string, float32) error { return nil }
func (floatTensors) Scalar(string) (float32, error)  { return 0, nil }
func (floatTensors) Write(string, []float32) error   { return nil }
func (floatTensors) Read(string, []float32) error    { return nil }
func (floatTensors) Swap(string, string) error       { return nil }
func (floatTensors) Run() error                      { return nil }
func (floatTensors) Close() error                    { return nil }

// TestFeederParameters checks how the Feeder gives jets their parameter
// values, as Salt's stages do: in training a signal jet keeps its value
// and a background jet (NaN, or a value not trained on) gets one drawn
// from the training values with their probabilities, the same for the
// same seed, epoch and row; in evaluation every jet gets the test value.
func TestFeederParameters(t *testing.T) {
	spec := model.Spec{Parameters: []model.Parameter{{Name: "m", Train: []float64{5, 10, 20}, Prob: []float64{0.1, 0.1, 0.8}, Test: 10}}}
	const n = 4000
	values := make([]float32, n)
	rows := make([]int, n)
	for j := range values {
		rows[j] = 7 * j
		switch j % 4 {
		case 0:
			values[j] = 5
		case 1:
			values[j] = 20
		case 2:
			values[j] = float32(math.NaN())
		case 3:
			values[j] = 125 // not a training value
		}
	}
	b := &loader.Batch{N: n, Rows: rows, Targets: map[string][]float32{ParameterLabel("m"): values}}
	feed := func(f Feeder) []float32 {
		bind := floatTensors{map[string][]float32{model.ParametersInput: make([]float32, n)}}
		if err := f.fillParameters(bind, b); err != nil {
			t.Fatal(err)
		}
		return bind.tensors[model.ParametersInput]
	}
	fit := Feeder{Spec: spec, Fit: true, Seed: 3}
	first, again := feed(fit), feed(fit)
	fit.Epoch = 1
	next := feed(fit)
	if !slices.Equal(first, again) {
		t.Error("the same seed, epoch and rows drew other values")
	}
	if slices.Equal(first, next) {
		t.Error("another epoch drew the same values")
	}
	count := map[float32]int{}
	for j, v := range first {
		switch j % 4 {
		case 0, 1:
			if v != values[j] {
				t.Fatalf("jet %d: training value %g became %g", j, values[j], v)
			}
		default:
			count[v]++
		}
	}
	if len(count) != 3 || math.Abs(float64(count[20])/float64(n/2)-0.8) > 0.05 || math.Abs(float64(count[5])/float64(n/2)-0.1) > 0.03 {
		t.Errorf("background jets drew %v, want 5, 10 and 20 at 10, 10 and 80 %%", count)
	}
	for j, v := range feed(Feeder{Spec: spec}) {
		if v != 10 {
			t.Fatalf("evaluation: jet %d has %g, want the test value 10", j, v)
		}
	}
}

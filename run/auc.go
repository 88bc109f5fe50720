package run

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/salt-ort/salt-ort/flavour"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/loader"
	"github.com/salt-ort/salt-ort/metrics"
)

// DefaultFC is the charm fraction of the b-tagging discriminant
// D_b = ln(p_b / (f_c·p_c + (1−f_c)·p_u)) used for the validation AUC.
const DefaultFC = 0.2

// AUCScores gathers the b-tagging discriminant of b and light jets of
// the jet classification task with classes named b, c and u (or light),
// batch by batch, for the AUC an Evaluator reports.
type AUCScores struct {
	task       string
	classes    int
	b, c, u    int
	scores     []float64
	signal     []bool
	weights    []float64
	applicable bool
}

// classIndex returns the index of the first class with one of the names,
// comparing short output names (flavour.Short: bjets and b are both pb),
// or -1.
func classIndex(classes []string, names ...string) int {
	for i, c := range classes {
		for _, n := range names {
			if flavour.Short(c) == flavour.Short(n) {
				return i
			}
		}
	}
	return -1
}

// newAUCScores gathers the scores of spec's first jet classification task.
func newAUCScores(spec model.Spec) *AUCScores {
	for _, task := range spec.Tasks {
		if task.Kind != model.JetClassification {
			continue
		}
		a := &AUCScores{task: task.Name, classes: len(task.Classes),
			b: classIndex(task.Classes, "b", "bjets"), c: classIndex(task.Classes, "c", "cjets"), u: classIndex(task.Classes, "u", "light", "ujets")}
		a.applicable = a.b >= 0 && a.u >= 0
		return a
	}
	return &AUCScores{}
}

// add records the real b and light jets of a batch just evaluated.
func (a *AUCScores) add(bind Tensors, b *loader.Batch) error {
	if !a.applicable {
		return nil
	}
	probs, err := bind.Float32(model.PredictionOutput(a.task))
	if err != nil {
		return err
	}
	labels := b.Labels[a.task]
	if labels == nil { // a file without truth labels
		return nil
	}
	for j := 0; j < b.N; j++ {
		l := int(labels[j])
		if l != a.b && l != a.u {
			continue
		}
		p := probs[j*a.classes : (j+1)*a.classes]
		pc := 0.0
		if a.c >= 0 {
			pc = float64(p[a.c])
		}
		d, err := metrics.Discriminant([]float64{float64(p[a.b])}, []float64{pc}, []float64{float64(p[a.u])}, DefaultFC)
		if err != nil {
			return err
		}
		a.scores = append(a.scores, d[0])
		a.signal = append(a.signal, l == a.b)
		a.weights = append(a.weights, float64(b.Weights[j]))
	}
	return nil
}

// Applicable reports whether the model has a jet classification task with
// b and light classes, whose AUC the scores give.
func (a *AUCScores) Applicable() bool { return a.applicable }

// auc returns the AUC of b against light jets, NaN when not applicable.
func (a *AUCScores) auc() float64 {
	if !a.applicable {
		return math.NaN()
	}
	v, err := metrics.AUC(a.scores, a.signal, a.weights)
	if err != nil {
		return math.NaN()
	}
	return v
}

// Encode writes the collected scores, as DecodeAppend reads them.
func (a *AUCScores) Encode(w io.Writer) error {
	if err := binary.Write(w, binary.LittleEndian, int64(len(a.scores))); err != nil {
		return err
	}
	for _, v := range []any{a.scores, a.signal, a.weights} {
		if err := binary.Write(w, binary.LittleEndian, v); err != nil {
			return err
		}
	}
	return nil
}

// DecodeAppend appends the scores another rank encoded.
func (a *AUCScores) DecodeAppend(r io.Reader) error {
	var n int64
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil {
		return err
	}
	if n < 0 || n > 1<<34 {
		return fmt.Errorf("%d scores", n)
	}
	scores, signal, weights := make([]float64, n), make([]bool, n), make([]float64, n)
	for _, v := range []any{scores, signal, weights} {
		if err := binary.Read(r, binary.LittleEndian, v); err != nil {
			return err
		}
	}
	a.scores = append(a.scores, scores...)
	a.signal = append(a.signal, signal...)
	a.weights = append(a.weights, weights...)
	return nil
}

// Reset forgets the collected scores.
func (a *AUCScores) Reset() {
	a.scores, a.signal, a.weights = a.scores[:0], a.signal[:0], a.weights[:0]
}

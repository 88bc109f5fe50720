package matching

import (
	"math"
	"math/rand"
	"strings"
	"testing"
)

func TestMatchObjectsKnown(t *testing.T) {
	// Jet 0: 3 objects × 3 truth slots, two valid truth objects; the third
	// column is Salt's NaN padding and must be ignored. Object 2 suits truth
	// 0 and object 0 suits truth 1, so object 1 fills the padded slot.
	nan := float32(math.NaN())
	cost := []float32{
		// jet 0: rows are objects, columns truth slots
		5, 0, nan,
		4, 4, nan,
		0, 5, nan,
		// jet 1: no valid truth: the identity permutation
		nan, nan, nan,
		nan, nan, nan,
		nan, nan, nan,
	}
	assign := make([]int64, 6)
	var s Solver
	if err := s.MatchObjects(cost, 2, 3, 3, []int{2, 0}, assign); err != nil {
		t.Fatal(err)
	}
	want := []int64{2, 0, 1, 0, 1, 2}
	for k := range want {
		if assign[k] != want[k] {
			t.Fatalf("assign %v, want %v", assign, want)
		}
	}
}

func TestMatchObjectsAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	const jets = 400
	for _, shape := range []struct{ objects, truth int }{{5, 5}, {5, 3}, {4, 1}, {6, 6}} {
		cost := make([]float32, jets*shape.objects*shape.truth)
		for k := range cost {
			cost[k] = float32(rng.Intn(4)) + float32(rng.Intn(2))*0.5
		}
		numValid := make([]int, jets)
		for b := range numValid {
			numValid[b] = rng.Intn(shape.truth + 1)
		}
		assign := make([]int64, jets*shape.truth)
		var s Solver
		if err := s.MatchObjects(cost, jets, shape.objects, shape.truth, numValid, assign); err != nil {
			t.Fatal(err)
		}
		for b := 0; b < jets; b++ {
			checkJet(t, cost, b, shape.objects, shape.truth, numValid[b], assign[b*shape.truth:(b+1)*shape.truth])
		}
	}
}

// checkJet checks one jet's assignment: distinct objects, minimal cost over
// the valid truth slots, and the leftover objects in increasing order.
func checkJet(t *testing.T, cost []float32, b, objects, truth, nv int, got []int64) {
	t.Helper()
	sub := make([]float64, nv*objects)
	for m := 0; m < nv; m++ {
		for n := 0; n < objects; n++ {
			sub[m*objects+n] = float64(cost[(b*objects+n)*truth+m])
		}
	}
	used := make([]bool, objects)
	total := 0.0
	for m, n := range got {
		if n < 0 || int(n) >= objects || used[n] {
			t.Fatalf("jet %d: object %d of slot %d out of range or repeated: %v", b, n, m, got)
		}
		used[n] = true
		if m < nv {
			total += sub[m*objects+int(n)]
		} else if m > nv && got[m] < got[m-1] {
			t.Fatalf("jet %d: leftover objects not in increasing order: %v", b, got)
		}
	}
	if want := bruteForce(sub, nv, objects); total != want {
		t.Fatalf("jet %d (%d valid): assignment %v costs %v, brute force finds %v", b, nv, got, total, want)
	}
}

func TestMatchObjectsErrors(t *testing.T) {
	nan := float32(math.NaN())
	tests := []struct {
		name                 string
		cost                 []float32
		jets, objects, truth int
		numValid             []int
		want                 string
	}{
		{"more truth than objects", make([]float32, 6), 1, 2, 3, []int{1}, "at least as many objects"},
		{"too many valid", make([]float32, 4), 1, 2, 2, []int{3}, "jet 0 has 3 valid"},
		{"nan in a valid slot", []float32{1, 2, nan, 3}, 1, 2, 2, []int{2}, "jet 0: the cost of object 1 for valid truth object 0 is NaN"},
		{"short cost", make([]float32, 3), 1, 2, 2, []int{1}, "cost has 3 entries"},
		{"short valid counts", make([]float32, 8), 2, 2, 2, []int{1}, "1 valid counts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Solver
			err := s.MatchObjects(tt.cost, tt.jets, tt.objects, tt.truth, tt.numValid, make([]int64, tt.jets*tt.truth))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// BenchmarkMatchObjects times the matching of one training batch as the
// MaskFormer configuration of Salt makes it: 1000 jets, 5 object slots, 5
// truth slots. ns/op is the time per batch.
func BenchmarkMatchObjects(b *testing.B) {
	const jets, objects, truth = 1000, 5, 5
	for _, valid := range []struct {
		name string
		n    func(*rand.Rand) int
	}{
		{"valid=0to5", func(rng *rand.Rand) int { return rng.Intn(truth + 1) }},
		{"valid=5", func(*rand.Rand) int { return truth }},
	} {
		b.Run(valid.name, func(b *testing.B) {
			rng := rand.New(rand.NewSource(3))
			cost := make([]float32, jets*objects*truth)
			for k := range cost {
				cost[k] = rng.Float32() * 10
			}
			numValid := make([]int, jets)
			for j := range numValid {
				numValid[j] = valid.n(rng)
			}
			assign := make([]int64, jets*truth)
			var s Solver
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.MatchObjects(cost, jets, objects, truth, numValid, assign); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/batch")
		})
	}
}

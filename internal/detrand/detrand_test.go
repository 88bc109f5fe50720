package detrand

import (
	"math"
	"slices"
	"testing"
)

// TestGolden pins the first values of two streams: the generator's files
// and the loader's batch orders are promised byte-identical across machines
// and Go releases, so any change here is a change of every generated file
// and every shuffled epoch.
func TestGolden(t *testing.T) {
	r := New(7, 1, 2)
	if a, b, n := r.Uint64(), r.Uint64(), r.IntN(1000); a != 0x8a23faa2d3f945a8 || b != 0xc563bc2cd47bbce7 || n != 639 {
		t.Errorf("New(7, 1, 2) gave %#x %#x %d", a, b, n)
	}
	p := make([]int32, 8)
	New(3).Perm(p)
	if want := []int32{4, 2, 0, 3, 6, 7, 5, 1}; !slices.Equal(p, want) {
		t.Errorf("New(3).Perm = %v, want %v", p, want)
	}
}

// TestStreamsIndependent checks that the same seed and keys repeat and
// that changing any one of them gives another stream.
func TestStreamsIndependent(t *testing.T) {
	first := func(r *Stream) [4]uint64 { return [4]uint64{r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64()} }
	base := first(New(5, 1, 2))
	if again := first(New(5, 1, 2)); again != base {
		t.Fatal("the same seed and keys gave different values")
	}
	for _, r := range []*Stream{New(6, 1, 2), New(5, 2, 1), New(5, 1), New(5, 1, 2, 0)} {
		if first(r) == base {
			t.Errorf("another seed or key list repeated the stream")
		}
	}
}

// TestDistributions checks each distribution's range and first two moments
// on 200000 draws, within 5 standard errors.
func TestDistributions(t *testing.T) {
	const n = 200000
	tests := []struct {
		name     string
		draw     func(*Stream) float64
		mean, vr float64
		lo, hi   float64
	}{
		{"Float", func(r *Stream) float64 { return r.Float() }, 0.5, 1.0 / 12, 0, 1},
		{"Uniform", func(r *Stream) float64 { return r.Uniform(-2, 4) }, 1, 3, -2, 4},
		{"IntN", func(r *Stream) float64 { return float64(r.IntN(10)) }, 4.5, 8.25, 0, 9},
		{"Normal", func(r *Stream) float64 { return r.Normal() }, 0, 1, math.Inf(-1), math.Inf(1)},
		{"Exp", func(r *Stream) float64 { return r.Exp() }, 1, 1, 0, math.Inf(1)},
		{"Bernoulli", func(r *Stream) float64 { return float64(b2i(r.Bernoulli(0.3))) }, 0.3, 0.21, 0, 1},
		{"Poisson small", func(r *Stream) float64 { return float64(r.Poisson(3.5)) }, 3.5, 3.5, 0, math.Inf(1)},
		{"Poisson large", func(r *Stream) float64 { return float64(r.Poisson(50)) }, 50, 50, 0, math.Inf(1)},
		{"Binomial", func(r *Stream) float64 { return float64(r.Binomial(12, 0.25)) }, 3, 2.25, 0, 12},
	}
	for _, tc := range tests {
		r := New(11, 42)
		var sum, sum2 float64
		for range n {
			x := tc.draw(r)
			if x < tc.lo || x > tc.hi || math.IsNaN(x) {
				t.Fatalf("%s: %v outside [%v, %v]", tc.name, x, tc.lo, tc.hi)
			}
			sum += x
			sum2 += x * x
		}
		mean := sum / n
		vr := sum2/n - mean*mean
		if se := math.Sqrt(tc.vr / n); math.Abs(mean-tc.mean) > 5*se {
			t.Errorf("%s: mean %.4f, want %.4f ± %.4f", tc.name, mean, tc.mean, se)
		}
		if math.Abs(vr-tc.vr) > 0.02*tc.vr+1e-3 {
			t.Errorf("%s: variance %.4f, want %.4f", tc.name, vr, tc.vr)
		}
	}
}

// TestPerm checks that Perm gives permutations and that every element
// reaches every position about equally often.
func TestPerm(t *testing.T) {
	const size, rounds = 5, 50000
	r := New(9)
	var count [size][size]int
	p := make([]int32, size)
	for range rounds {
		r.Perm(p)
		seen := slices.Clone(p)
		slices.Sort(seen)
		for i, v := range seen {
			if v != int32(i) {
				t.Fatalf("Perm gave %v, not a permutation", p)
			}
		}
		for pos, v := range p {
			count[v][pos]++
		}
	}
	want := float64(rounds) / size
	for v := range size {
		for pos := range size {
			if math.Abs(float64(count[v][pos])-want) > 5*math.Sqrt(want) {
				t.Errorf("element %d at position %d %d times, want about %.0f", v, pos, count[v][pos], want)
			}
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

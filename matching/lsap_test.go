package matching

import (
	"errors"
	"math"
	"math/rand"
	"testing"
)

var inf = math.Inf(1)

// totalCost is the cost of an assignment (-1 marks an unassigned row).
func totalCost(cost []float64, cols int, rowToCol []int) float64 {
	total := 0.0
	for i, j := range rowToCol {
		if j >= 0 {
			total += cost[i*cols+j]
		}
	}
	return total
}

// bruteForce returns the least total cost over every assignment making
// min(rows, cols) pairs, or +Inf when all of them use a +Inf entry.
func bruteForce(cost []float64, rows, cols int) float64 {
	if rows > cols {
		t := make([]float64, len(cost))
		for i := 0; i < rows; i++ {
			for j := 0; j < cols; j++ {
				t[j*rows+i] = cost[i*cols+j]
			}
		}
		return bruteForce(t, cols, rows)
	}
	used := make([]bool, cols)
	best := inf
	var walk func(i int, sum float64)
	walk = func(i int, sum float64) {
		if i == rows {
			best = math.Min(best, sum)
			return
		}
		for j := 0; j < cols; j++ {
			if !used[j] {
				used[j] = true
				walk(i+1, sum+cost[i*cols+j])
				used[j] = false
			}
		}
	}
	walk(0, 0)
	return best
}

// checkAssignment fails unless rowToCol pairs min(rows, cols) distinct rows
// and columns.
func checkAssignment(t *testing.T, rowToCol []int, rows, cols int) {
	t.Helper()
	seen := make([]bool, cols)
	pairs := 0
	for i, j := range rowToCol {
		if j < 0 {
			continue
		}
		if j >= cols || seen[j] {
			t.Fatalf("row %d has column %d, out of range or taken: %v", i, j, rowToCol)
		}
		seen[j] = true
		pairs++
	}
	if want := min(rows, cols); pairs != want {
		t.Fatalf("%d pairs, want %d: %v", pairs, want, rowToCol)
	}
}

func TestSolveKnown(t *testing.T) {
	tests := []struct {
		name       string
		rows, cols int
		cost       []float64
		want       []int
	}{
		{"empty", 0, 0, nil, []int{}},
		{"no columns", 2, 0, nil, []int{-1, -1}},
		{"one", 1, 1, []float64{3}, []int{0}},
		{"greedy is wrong", 2, 2, []float64{1, 2, 2, 100}, []int{1, 0}},
		{"three by three", 3, 3, []float64{4, 1, 3, 2, 0, 5, 3, 2, 2}, []int{1, 0, 2}},
		{"wide", 2, 4, []float64{9, 9, 1, 9, 9, 9, 2, 0}, []int{2, 3}},
		{"tall", 4, 2, []float64{9, 9, 1, 9, 9, 9, 2, 0}, []int{-1, 0, -1, 1}},
		{"inf forces the off-diagonal", 2, 2, []float64{inf, 5, 1, inf}, []int{1, 0}},
		{"negative costs", 2, 2, []float64{-5, 0, 0, -5}, []int{0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Solve(tt.cost, tt.rows, tt.cols)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestSolveErrors(t *testing.T) {
	tests := []struct {
		name       string
		rows, cols int
		cost       []float64
		want       error
	}{
		{"all forbidden", 2, 2, []float64{inf, inf, inf, inf}, ErrInfeasible},
		{"one row forbidden", 2, 3, []float64{1, 2, 3, inf, inf, inf}, ErrInfeasible},
		{"two rows share their only column", 2, 2, []float64{1, inf, 2, inf}, ErrInfeasible},
		{"nan", 2, 2, []float64{1, math.NaN(), 2, 3}, nil},
		{"minus inf", 1, 2, []float64{1, math.Inf(-1)}, nil},
		{"short cost", 2, 2, []float64{1, 2, 3}, nil},
		{"negative shape", -1, 2, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Solve(tt.cost, tt.rows, tt.cols)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}

// randomCost draws a matrix of the given kind: continuous costs, small
// integers (many ties), or costs with +Inf entries.
func randomCost(rng *rand.Rand, rows, cols int, kind string) []float64 {
	c := make([]float64, rows*cols)
	for k := range c {
		switch kind {
		case "continuous":
			c[k] = rng.NormFloat64() * 10
		case "ties":
			c[k] = float64(rng.Intn(3))
		case "inf":
			if rng.Float64() < 0.3 {
				c[k] = inf
			} else {
				c[k] = float64(rng.Intn(5))
			}
		case "constant":
			c[k] = 7
		}
	}
	return c
}

func TestSolveAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var s Solver // shared, to check that reuse across shapes is clean
	for _, kind := range []string{"continuous", "ties", "inf", "constant"} {
		t.Run(kind, func(t *testing.T) {
			for trial := 0; trial < 3000; trial++ {
				rows, cols := rng.Intn(7), rng.Intn(7)
				cost := randomCost(rng, rows, cols, kind)
				want := bruteForce(cost, rows, cols)
				got := make([]int, rows)
				err := s.Solve(cost, rows, cols, got)
				if math.IsInf(want, 1) {
					if !errors.Is(err, ErrInfeasible) {
						t.Fatalf("%d×%d %v: error %v, want infeasible", rows, cols, cost, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%d×%d %v: %v", rows, cols, cost, err)
				}
				checkAssignment(t, got, rows, cols)
				if c := totalCost(cost, cols, got); math.Abs(c-want) > 1e-9*(1+math.Abs(want)) {
					t.Fatalf("%d×%d %v: assignment %v costs %v, brute force finds %v", rows, cols, cost, got, c, want)
				}
			}
		})
	}
}

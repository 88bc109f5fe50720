package matching

import (
	"errors"
	"fmt"
	"math"
)

// ErrInfeasible is returned when every complete assignment of a cost matrix
// uses a pair whose cost is +Inf.
var ErrInfeasible = errors.New("matching: no assignment avoids the +Inf costs")

// Solver solves assignment problems, reusing its working memory from one
// problem to the next. The zero value is ready to use. A Solver must not be
// used by several goroutines at once.
type Solver struct {
	transposed []float64
	colToRow   []int
	u, v       []float64 // dual potentials of rows and columns
	shortest   []float64 // shortest reduced path length to each column
	pred       []int     // row preceding each column on its shortest path
	col4row    []int
	row4col    []int
	remaining  []int // columns not yet reached by the current search
	rowSeen    []bool
	colSeen    []bool
}

// Solve finds the assignment of minimal total cost for the rows×cols matrix
// cost, stored row-major (cost[i*cols+j] is the cost of pairing row i with
// column j). It writes to rowToCol, which must have length rows, the column
// given to each row, or -1 for a row left unassigned; min(rows, cols) pairs
// are made, so only when rows > cols are rows left unassigned.
func (s *Solver) Solve(cost []float64, rows, cols int, rowToCol []int) error {
	if rows < 0 || cols < 0 {
		return fmt.Errorf("matching: negative shape %d×%d", rows, cols)
	}
	if len(cost) != rows*cols {
		return fmt.Errorf("matching: cost has %d entries, a %d×%d matrix needs %d", len(cost), rows, cols, rows*cols)
	}
	if len(rowToCol) != rows {
		return fmt.Errorf("matching: result has %d entries for %d rows", len(rowToCol), rows)
	}
	if err := checkCosts(cost, cols); err != nil {
		return err
	}
	if rows <= cols {
		return s.solveWide(cost, rows, cols, rowToCol)
	}
	// More rows than columns: solve the transpose, in which every column of
	// the original gets a row.
	s.transposed = grow(s.transposed, rows*cols)
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			s.transposed[j*rows+i] = cost[i*cols+j]
		}
	}
	s.colToRow = growInts(s.colToRow, cols)
	if err := s.solveWide(s.transposed, cols, rows, s.colToRow); err != nil {
		return err
	}
	for i := range rowToCol {
		rowToCol[i] = -1
	}
	for j, i := range s.colToRow {
		rowToCol[i] = j
	}
	return nil
}

// Solve finds the assignment of minimal total cost for a row-major rows×cols
// cost matrix and returns the column of each row (-1 for a row left
// unassigned, which happens only when rows > cols). See Solver.Solve.
func Solve(cost []float64, rows, cols int) ([]int, error) {
	if rows < 0 {
		return nil, fmt.Errorf("matching: negative shape %d×%d", rows, cols)
	}
	var s Solver
	rowToCol := make([]int, rows)
	if err := s.Solve(cost, rows, cols, rowToCol); err != nil {
		return nil, err
	}
	return rowToCol, nil
}

// checkCosts refuses the entries no assignment can be ranked with.
func checkCosts(cost []float64, cols int) error {
	for k, c := range cost {
		if math.IsNaN(c) || math.IsInf(c, -1) {
			return fmt.Errorf("matching: cost of row %d, column %d is %v; costs must be numbers or +Inf", k/cols, k%cols, c)
		}
	}
	return nil
}

// solveWide solves a problem with rows <= cols, so that every row is assigned.
func (s *Solver) solveWide(cost []float64, rows, cols int, rowToCol []int) error {
	s.reset(rows, cols)
	for cur := 0; cur < rows; cur++ {
		sink, minVal, err := s.search(cost, cols, cur)
		if err != nil {
			return err
		}
		s.updateDuals(cur, minVal, cols)
		s.augment(cur, sink)
	}
	copy(rowToCol, s.col4row[:rows])
	return nil
}

// reset sizes and clears the working memory for a rows×cols problem.
func (s *Solver) reset(rows, cols int) {
	s.u = zeroed(s.u, rows)
	s.v = zeroed(s.v, cols)
	s.shortest = grow(s.shortest, cols)
	s.pred = growInts(s.pred, cols)
	s.col4row = growInts(s.col4row, rows)
	s.row4col = growInts(s.row4col, cols)
	s.remaining = growInts(s.remaining, cols)
	s.rowSeen = growBools(s.rowSeen, rows)
	s.colSeen = growBools(s.colSeen, cols)
	for i := range s.col4row {
		s.col4row[i] = -1
	}
	for j := range s.row4col {
		s.row4col[j] = -1
	}
}

// search runs Dijkstra's algorithm on the reduced costs from the unassigned
// row cur until it reaches a free column (the sink). It returns the sink and
// the length of the shortest path to it.
func (s *Solver) search(cost []float64, cols, cur int) (sink int, minVal float64, err error) {
	for j := 0; j < cols; j++ {
		s.shortest[j] = math.Inf(1)
		s.pred[j] = -1
		s.colSeen[j] = false
		// Filled from the end so that removing the column found last is a
		// swap with the tail, and ties favour low column indices.
		s.remaining[j] = cols - 1 - j
	}
	for i := range s.rowSeen {
		s.rowSeen[i] = false
	}
	nRemaining := cols
	i := cur
	for {
		s.rowSeen[i] = true
		best, bestAt := math.Inf(1), -1
		for k := 0; k < nRemaining; k++ {
			j := s.remaining[k]
			if r := minVal + cost[i*cols+j] - s.u[i] - s.v[j]; r < s.shortest[j] {
				s.pred[j] = i
				s.shortest[j] = r
			}
			// Among equally short paths prefer a free column: it ends the search.
			if d := s.shortest[j]; d < best || (d == best && bestAt >= 0 && s.row4col[j] < 0 && s.row4col[s.remaining[bestAt]] >= 0) {
				best, bestAt = d, k
			}
		}
		if bestAt < 0 || math.IsInf(best, 1) {
			return -1, 0, ErrInfeasible
		}
		minVal = best
		j := s.remaining[bestAt]
		s.colSeen[j] = true
		nRemaining--
		s.remaining[bestAt] = s.remaining[nRemaining]
		if s.row4col[j] < 0 {
			return j, minVal, nil
		}
		i = s.row4col[j]
	}
}

// updateDuals moves the potentials so that the reduced costs stay
// non-negative and are zero along the new assignment.
func (s *Solver) updateDuals(cur int, minVal float64, cols int) {
	s.u[cur] += minVal
	for i, seen := range s.rowSeen {
		if seen && i != cur {
			s.u[i] += minVal - s.shortest[s.col4row[i]]
		}
	}
	for j := 0; j < cols; j++ {
		if s.colSeen[j] {
			s.v[j] -= minVal - s.shortest[j]
		}
	}
}

// augment flips the assignment along the shortest path from row cur to sink.
func (s *Solver) augment(cur, sink int) {
	j := sink
	for {
		i := s.pred[j]
		s.row4col[j] = i
		s.col4row[i], j = j, s.col4row[i]
		if i == cur {
			return
		}
	}
}

func grow(x []float64, n int) []float64 {
	if cap(x) < n {
		return make([]float64, n)
	}
	return x[:n]
}

func zeroed(x []float64, n int) []float64 {
	x = grow(x, n)
	for i := range x {
		x[i] = 0
	}
	return x
}

func growInts(x []int, n int) []int {
	if cap(x) < n {
		return make([]int, n)
	}
	return x[:n]
}

func growBools(x []bool, n int) []bool {
	if cap(x) < n {
		return make([]bool, n)
	}
	return x[:n]
}

// Package matching solves the linear assignment problem that MaskFormer
// training solves once per jet: which predicted object stands for which truth
// hadron, so that the sum of the pairwise matching costs is smallest.
//
// The solver is the shortest augmenting path method of Jonker and Volgenant
// (R. Jonker, A. Volgenant, "A shortest augmenting path algorithm for dense
// and sparse linear assignment problems", Computing 38 (1987) 325–340), in
// the rectangular form described by D. F. Crouse, "On implementing 2D
// rectangular assignment algorithms", IEEE Trans. Aerospace and Electronic
// Systems 52 (2016) 1679–1696: rows are added one at a time, each by a
// Dijkstra search over reduced costs for the cheapest augmenting path, with
// dual potentials kept so that reduced costs stay non-negative. It is the
// problem that scipy.optimize.linear_sum_assignment solves, which Salt's
// matcher calls.
//
// Costs may be +Inf to forbid a pair; NaN and -Inf are refused. A problem
// whose every complete assignment contains a forbidden pair is infeasible.
package matching

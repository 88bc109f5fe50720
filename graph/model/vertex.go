package model

import "math"

// GroupVertices is the Go reference of the deployment graph's vertex
// grouping: probs holds the n×n pair probabilities of one jet (row-major,
// row stride stride); tracks i and j are linked when
// (p_ij + p_ji)/2 ≥ 0.5 in float32, and each track gets the smallest index
// of the tracks connected to it, or -1 where that index does not fit in
// int8 (> 127), as the deployment graph writes it.
func GroupVertices(probs []float32, n, stride int) []int8 {
	parent := make([]int, n)
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			if (probs[i*stride+j]+probs[j*stride+i])*0.5 >= 0.5 {
				a, b := find(i), find(j)
				if a < b {
					parent[b] = a
				} else if b < a {
					parent[a] = b
				}
			}
		}
	}
	out := make([]int8, n)
	for i := range out {
		out[i] = -1
		if r := find(i); r <= math.MaxInt8 {
			out[i] = int8(r)
		}
	}
	return out
}

package model

import "github.com/salt-ort/salt-ort/graph"

// jetColumns returns the columns of the jet input x [B, len(JetVars)]
// holding vars, in their order: x itself when vars are all of JetVars in
// order, else slices of consecutive columns concatenated.
func (s *Spec) jetColumns(g *graph.Graph, x *graph.Tensor, vars []string) *graph.Tensor {
	idx := make([]int, len(vars))
	same := len(vars) == len(s.JetVars)
	for i, v := range vars {
		idx[i] = s.jetColumn(v)
		same = same && idx[i] == i
	}
	if same {
		return x
	}
	defer g.Scope("jet_columns")()
	var parts []*graph.Tensor
	for i := 0; i < len(idx); {
		j := i + 1
		for j < len(idx) && idx[j] == idx[j-1]+1 {
			j++
		}
		parts = append(parts, g.Slice(x, []int{1}, []int64{int64(idx[i])}, []int64{int64(idx[j-1] + 1)}))
		i = j
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return g.Concat(1, parts...)
}

package graph

import (
	"fmt"
	"sort"
)

// MemoryPlan is a graph-level estimate of the memory one run of a graph
// needs: the nodes run in graph order, each output is allocated when its
// node runs and freed after its last reader, as ONNX Runtime's sequential
// executor plans its arena. It counts tensor bytes only (no allocator
// rounding, no kernel scratch space, no fusions ONNX Runtime may apply),
// so it is a lower bound of the arena's peak and a ranking of what makes
// it.
type MemoryPlan struct {
	// InputBytes are the graph inputs (fed by the caller, alive all run).
	InputBytes int64
	// ConstBytes are the constants and parameters stored in the graph.
	ConstBytes int64
	// PeakBytes is the most node-output bytes alive at once, graph outputs
	// included; PeakNode is the node whose outputs reach it.
	PeakBytes int64
	PeakNode  string
	// PeakTensors are the tensors alive at the peak, largest first.
	PeakTensors []TensorBytes
}

// TensorBytes is one tensor's size.
type TensorBytes struct {
	Name  string
	Shape Shape
	Bytes int64
}

// TotalBytes is the whole estimate: inputs, constants and the peak of
// intermediate tensors.
func (p MemoryPlan) TotalBytes() int64 { return p.InputBytes + p.ConstBytes + p.PeakBytes }

// String summarises the plan with its largest tensors at the peak.
func (p MemoryPlan) String() string {
	s := fmt.Sprintf("peak %.1f MiB at %s (inputs %.1f MiB, constants %.1f MiB)",
		mib(p.PeakBytes), p.PeakNode, mib(p.InputBytes), mib(p.ConstBytes))
	for i, t := range p.PeakTensors {
		if i == 40 {
			break
		}
		s += fmt.Sprintf("\n  %8.1f MiB %s %v", mib(t.Bytes), t.Name, t.Shape)
	}
	return s
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// aliasOps return a view of their first input: ONNX Runtime reuses the
// input's buffer, so their outputs allocate nothing and keep the input
// alive as long as they are.
var aliasOps = map[string]bool{"Reshape": true, "Squeeze": true, "Unsqueeze": true, "Identity": true, "Flatten": true}

// PlanMemory estimates the memory of one run of the graph (see
// MemoryPlan). dynamic is the size given to dynamic dimensions.
func (g *Graph) PlanMemory(dynamic int64) MemoryPlan {
	bytes := func(t *Tensor) int64 {
		n := int64(t.dtype.Size())
		for _, d := range t.shape {
			if d < 0 {
				d = dynamic
			}
			n *= d
		}
		return n
	}
	var p MemoryPlan
	for _, in := range g.inputs {
		p.InputBytes += bytes(in)
	}
	nodes := g.liveNodes()
	// root maps a view to the tensor that owns its buffer.
	root := map[*Tensor]*Tensor{}
	owner := func(t *Tensor) *Tensor {
		for root[t] != nil {
			t = root[t]
		}
		return t
	}
	last := map[*Tensor]int{}
	seenConst := map[*Tensor]bool{}
	for i, n := range nodes {
		if aliasOps[n.Op] && n.Inputs[0].producer != nil {
			root[n.Outputs[0]] = n.Inputs[0]
		}
		for _, in := range n.Inputs {
			if in == nil {
				continue
			}
			if in.producer == nil {
				if in.kind != graphInput && !seenConst[in] {
					seenConst[in] = true
					p.ConstBytes += bytes(in)
				}
				continue
			}
			last[owner(in)] = i
		}
	}
	for _, o := range g.outputs {
		if o.producer != nil {
			last[owner(o)] = len(nodes)
		}
	}
	live := map[*Tensor]bool{}
	var cur int64
	for i, n := range nodes {
		for _, o := range n.Outputs {
			if root[o] == nil {
				live[o] = true
				cur += bytes(o)
			}
		}
		if cur > p.PeakBytes {
			p.PeakBytes, p.PeakNode = cur, n.Name
			p.PeakTensors = p.PeakTensors[:0]
			for t := range live {
				p.PeakTensors = append(p.PeakTensors, TensorBytes{t.name, t.shape, bytes(t)})
			}
		}
		for _, t := range append(append([]*Tensor{}, n.Inputs...), n.Outputs...) {
			if t == nil || t.producer == nil {
				continue
			}
			if t = owner(t); live[t] && last[t] <= i {
				delete(live, t)
				cur -= bytes(t)
			}
		}
	}
	sort.Slice(p.PeakTensors, func(i, j int) bool {
		a, b := p.PeakTensors[i], p.PeakTensors[j]
		if a.Bytes != b.Bytes {
			return a.Bytes > b.Bytes
		}
		return a.Name < b.Name
	})
	return p
}

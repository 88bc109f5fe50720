package model

import "github.com/salt-ort/salt-ort/graph"

// VertexIndexForTest exposes the deployment graph's vertex grouping.
func VertexIndexForTest(g *graph.Graph, p *graph.Tensor) *graph.Tensor { return vertexIndex(g, p) }

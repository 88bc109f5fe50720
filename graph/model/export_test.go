package model

import "github.com/salt-ort/salt-ort/graph"

// VertexIndexForTest exposes the deployment graph's vertex grouping.
func VertexIndexForTest(g *graph.Graph, p *graph.Tensor) *graph.Tensor { return vertexIndex(g, p) }

// SetEncoderChunkElementsForTest sets the bound of the encoder's chunks
// (encoderChunkElements) and returns a function that restores it.
func SetEncoderChunkElementsForTest(n int64) (restore func()) {
	saved := encoderChunkElements
	encoderChunkElements = n
	return func() { encoderChunkElements = saved }
}

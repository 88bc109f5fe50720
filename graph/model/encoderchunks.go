package model

import (
	"strconv"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/nn"
)

// encoderChunkElements (a variable for tests) bounds the elements of the
// widest tensor inside an encoder layer that one chunk of a chunked
// encoder (see runEncoder) computes at once: 640 Ki float32 values
// (2.5 MiB), 20 GN2 jets of 41 tokens at the packed query, key and value
// width 768. Measured for GN2's training step on the 2-core machine here
// (batch 1000, 2 threads, jets/s): whole batch 128, chunks of 100 jets
// 144, 50 jets 154, 32 jets 155, 20 jets 160, 16 jets 159, 10 jets 146;
// with 1 thread (batch 400) 10, 20 and 40 jets gave 95, 99 and 88.
var encoderChunkElements int64 = 640 << 10

// maxEncoderChunks (a variable for tests) bounds the number of chunks:
// every chunk adds its own nodes to the graph (about 740 for one of GN2's
// in a training step) and ONNX Runtime takes about a quarter of a
// millisecond per node to load a graph. GN2's training step at batch
// 1000 (2 threads, jets/s, two runs each): 50 chunks 155 and 152, 32
// chunks 149 and 147, 16 chunks 140 and 136, the whole batch 126 and 129.
var maxEncoderChunks int64 = 50

// encoderChunkJets is the number of jets per chunk of the encoder cfg
// over t constituents of width d for a batch of batch jets: at least 1,
// and enough for the batch to need at most maxEncoderChunks chunks.
func encoderChunkJets(batch, t, d int64, cfg nn.EncoderConfig) int64 {
	tokens := t + int64(cfg.Appended())
	widest := max(3*d, int64(cfg.Heads)*tokens, int64(cfg.DenseRatio)*d)
	for _, h := range cfg.Hidden {
		widest = max(widest, int64(h))
	}
	if cfg.Gated {
		widest = max(widest, 2*int64(cfg.DenseRatio)*d)
	}
	fewest := (batch + maxEncoderChunks - 1) / maxEncoderChunks
	return max(1, encoderChunkElements/max(1, tokens*widest), fewest)
}

// chunkLengths splits a batch of n jets into the fewest chunks of at
// most chunk jets, their lengths as equal as possible (the longer ones
// first): one chunk of n when chunk is 0 or not smaller than n.
func chunkLengths(n, chunk int64) []int64 {
	if chunk <= 0 || chunk >= n {
		return []int64{n}
	}
	k := (n + chunk - 1) / chunk
	lens := make([]int64, k)
	for i := range lens {
		lens[i] = n / k
		if int64(i) < n%k {
			lens[i]++
		}
	}
	return lens
}

// runEncoder runs the encoder (nn.EdgeEncoder) over x [B, T, D] with its
// padding mask valid, edge features edges and featurewise parameters
// params (each nil where absent). With chunked and a static batch larger
// than encoderChunkJets it runs it on chunks of that many jets, one after
// the other, each a graph.Replica with the encoder's parameters, and
// concatenates their outputs: every tensor inside the encoder is then a
// chunk's, small enough for the CPU's caches, and with recomputation
// (recomputeLayers per scope) the backward pass keeps one chunk's layer
// alive at a time. Jets do not meet inside the encoder, so the outputs are
// the whole batch's; the gradients of its parameters sum over the chunks.
// It returns the output, its key bias and the node-name prefixes of the
// encoder's scopes ("encoder/", or one per chunk).
func (s *Spec) runEncoder(g *graph.Graph, x, valid, edges, params *graph.Tensor, cfg nn.EncoderConfig, chunked bool) (enc, bias *graph.Tensor, scopes []string) {
	cfg.BeforeLayer = s.encoderFeaturewise(params)
	batch, chunk := x.Dim(0), int64(0)
	if chunked && x.Dim(1) >= 0 {
		chunk = encoderChunkJets(batch, x.Dim(1), x.Dim(2), cfg)
	}
	if batch < 0 || chunk <= 0 || batch <= chunk {
		enc, bias = nn.EdgeEncoder(g, "encoder", x, valid, edges, cfg)
		return enc, bias, []string{"encoder/"}
	}
	lens := chunkLengths(batch, chunk)
	split := func(t *graph.Tensor) []*graph.Tensor {
		if t == nil {
			return make([]*graph.Tensor, len(lens))
		}
		return g.Split(t, 0, lens...)
	}
	xs, valids, edgess, paramss := split(x), split(valid), split(edges), split(params)
	encs, biases := make([]*graph.Tensor, len(lens)), make([]*graph.Tensor, len(lens))
	start := int64(0)
	for k, n := range lens {
		name := "chunk" + strconv.Itoa(k)
		pop := g.Replica(name, graph.Rows{Start: start, Len: n, Total: batch})
		c := cfg
		c.BeforeLayer = s.encoderFeaturewise(paramss[k])
		encs[k], biases[k] = nn.EdgeEncoder(g, "encoder", xs[k], valids[k], edgess[k], c)
		pop()
		scopes = append(scopes, name+"/encoder/")
		start += n
	}
	enc = g.Concat(0, encs...)
	if biases[0] != nil {
		bias = g.Concat(0, biases...)
	}
	return enc, bias, scopes
}

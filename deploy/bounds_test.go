package deploy

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of the ONNX schema the hostile models below are made of.
const (
	modelGraph     = 7 // ModelProto.graph
	graphNode      = 1 // GraphProto.node
	nodeAttribute  = 5 // NodeProto.attribute
	attributeGraph = 6 // AttributeProto.g
)

// field appends message field num holding body to b.
func field(b []byte, num protowire.Number, body []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, body)
}

// emptyNodes is a model whose graph holds n empty nodes, two bytes each.
func emptyNodes(n int) []byte {
	graph := make([]byte, 0, 2*n)
	for range n {
		graph = field(graph, graphNode, nil)
	}
	return field(nil, modelGraph, graph)
}

// nestedGraphs is a model whose graph's first node has an attribute
// holding a graph whose first node … depth graphs deep.
func nestedGraphs(depth int) []byte {
	var g []byte
	for range depth {
		g = field(nil, graphNode, field(nil, nodeAttribute, field(nil, attributeGraph, g)))
	}
	return field(nil, modelGraph, g)
}

// heapAllocated returns the bytes the heap allocated while f ran.
func heapAllocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestOpenRefusesModelBombs gives validate's reader ONNX files built to
// cost far more than their size: each is refused naming the file and
// the field at fault, having allocated little more than the file.
func TestOpenRefusesModelBombs(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "huge.onnx")
	fh, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := fh.Truncate(MaxModelSize + 1); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	fh.Close()
	for _, tc := range []struct {
		name, path string
		data       []byte // written to path unless nil
		want       string
	}{
		// 2^21 empty nodes in 4 MiB decode to about 300 MiB.
		{"empty nodes", filepath.Join(dir, "nodes.onnx"), emptyNodes(1 << 21),
			"would take about 268435584 bytes of memory to decode (messages, 2097152 of them in onnx.GraphProto.node)"},
		{"nested graphs", filepath.Join(dir, "nested.onnx"), nestedGraphs(40), "messages nest more than 64 deep (at onnx.GraphProto.node)"},
		{"over protobuf's limit", big, nil, "2147483649 bytes, more than the 2147483648 a single ONNX file can hold"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.data != nil {
				if err := os.WriteFile(tc.path, tc.data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var err error
			n := heapAllocated(func() { _, _, err = openMeta(tc.path) })
			if err == nil || !strings.Contains(err.Error(), tc.path+": ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %s with %q", err, tc.path, tc.want)
			}
			if limit := uint64(len(tc.data)) + 1<<20; n > limit {
				t.Errorf("allocated %d bytes reading a %d-byte model", n, len(tc.data))
			}
		})
	}
}

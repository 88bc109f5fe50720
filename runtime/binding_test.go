package runtime

import (
	"testing"

	"github.com/salt-ort/salt-ort/graph"
)

// TestBindingSwap runs p ← 2p + lr three times, swapping the output buffer
// back into the input as a training loop does, and checks that no value is
// copied or lost.
func TestBindingSwap(t *testing.T) {
	g := graph.New("double")
	p := g.Input("p", graph.Float32, graph.Shape{3})
	lr := g.Input("lr", graph.Float32, graph.Shape{})
	g.Output("new/p", g.Add(g.Mul(p, g.Scalar(graph.Float32, 2)), lr))
	g.Output("sum", g.ReduceSum(p, []int{0}, false))
	model, err := g.Marshal(graph.ModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := openRuntime(t).NewSession("double", model, Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	b, err := NewBinding(sess, []TensorSpec{
		{Name: "p", Type: TypeFloat32, Shape: []int64{3}},
		{Name: "lr", Type: TypeFloat32},
		{Name: "new/p", Type: TypeFloat32, Shape: []int64{3}},
		{Name: "sum", Type: TypeFloat32},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	in, _ := b.Float32("p")
	copy(in, []float32{1, 2, 3})
	if err := b.SetScalar("lr", 0.5); err != nil {
		t.Fatal(err)
	}
	want := []float32{1, 2, 3}
	for step := 0; step < 3; step++ {
		if err := b.Run(); err != nil {
			t.Fatal(err)
		}
		var sum float32
		for i := range want {
			sum += want[i]
			want[i] = 2*want[i] + 0.5
		}
		if got, _ := b.Scalar("sum"); got != sum {
			t.Fatalf("step %d: sum = %g, want %g", step, got, sum)
		}
		if err := b.Swap("p", "new/p"); err != nil {
			t.Fatal(err)
		}
		got, _ := b.Float32("p")
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("step %d: p = %v, want %v", step, got, want)
			}
		}
	}
	if err := b.Swap("p", "sum"); err == nil {
		t.Fatal("swapping tensors of different shapes succeeded")
	}
	if _, err := b.Int64("p"); err == nil {
		t.Fatal("reading float32 data as int64 succeeded")
	}
	if _, err := NewBinding(sess, nil); err == nil {
		t.Fatal("binding without specs succeeded")
	}
}

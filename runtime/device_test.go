package runtime

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/salt-ort/salt-ort/graph"
)

// doubleStep builds p ← 2p + lr·x with a scalar sum of p and a host
// output y = x + 1, the shape of a training step: resident state in and
// out, a batch in, scalars and a batch-sized result out.
func doubleStep(t *testing.T) ([]byte, []TensorSpec) {
	t.Helper()
	g := graph.New("double")
	p := g.Input("p", graph.Float32, graph.Shape{3})
	lr := g.Input("lr", graph.Float32, graph.Shape{})
	x := g.Input("x", graph.Float32, graph.Shape{3})
	valid := g.Input("valid", graph.Bool, graph.Shape{3})
	g.Output("new/p", g.Add(g.Mul(p, g.Scalar(graph.Float32, 2)), g.Mul(lr, x)))
	g.Output("sum", g.ReduceSum(p, []int{0}, false))
	g.Output("y", g.Add(x, g.Cast(valid, graph.Float32)))
	model, err := g.Marshal(graph.ModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return model, []TensorSpec{
		{Name: "p", Type: TypeFloat32, Shape: []int64{3}},
		{Name: "lr", Type: TypeFloat32},
		{Name: "x", Type: TypeFloat32, Shape: []int64{3}},
		{Name: "valid", Type: TypeBool, Shape: []int64{3}},
		{Name: "new/p", Type: TypeFloat32, Shape: []int64{3}},
		{Name: "sum", Type: TypeFloat32},
		{Name: "y", Type: TypeFloat32, Shape: []int64{3}},
	}
}

func cpuDevice(t *testing.T, rt *Runtime) Device {
	t.Helper()
	dev, err := rt.Device(CPUProvider)
	if err != nil {
		t.Fatal(err)
	}
	if dev.Kind != "cpu" {
		t.Fatalf("CPU provider device kind %q", dev.Kind)
	}
	return dev
}

// TestDeviceBinding runs the step three times with the state resident on
// the CPU provider's device, in both swapping modes, and checks every value
// against Go arithmetic: the CPU-side logic of the CUDA path (allocation,
// IoBinding, copies up and down, swaps) as CI can test it.
func TestDeviceBinding(t *testing.T) {
	rt := openRuntime(t)
	model, specs := doubleStep(t)
	sess, err := rt.NewDeviceSession("double", model, cpuDevice(t, rt), DeviceOptions{Options: Options{IntraOpThreads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	for _, fixed := range []bool{false, true} {
		b, err := NewDeviceBinding(sess, specs, DeviceBindingOptions{Resident: []string{"p", "new/p"}, Fixed: fixed})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Write("p", []float32{1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Float32("p"); err == nil || !strings.Contains(err.Error(), "resident") {
			t.Fatalf("host view of a resident tensor: err = %v", err)
		}
		if err := b.SetScalar("lr", 0.5); err != nil {
			t.Fatal(err)
		}
		want := []float32{1, 2, 3}
		for step := 0; step < 3; step++ {
			x, _ := b.Float32("x")
			valid, _ := b.Bool("valid")
			for i := range x {
				x[i] = float32(step + i)
				valid[i] = i != step
			}
			if err := b.Run(); err != nil {
				t.Fatal(err)
			}
			var sum float32
			for i := range want {
				sum += want[i]
				want[i] = 2*want[i] + 0.5*float32(step+i)
			}
			if got, _ := b.Scalar("sum"); got != sum {
				t.Fatalf("fixed=%v step %d: sum = %g, want %g", fixed, step, got, sum)
			}
			y, _ := b.Float32("y")
			for i := range y {
				w := float32(step + i)
				if i != step {
					w++
				}
				if y[i] != w {
					t.Fatalf("fixed=%v step %d: y = %v", fixed, step, y)
				}
			}
			if err := b.Swap("p", "new/p"); err != nil {
				t.Fatal(err)
			}
			got := make([]float32, 3)
			if err := b.Read("p", got); err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("fixed=%v step %d: p = %v, want %v", fixed, step, got, want)
				}
			}
		}
		if err := b.Swap("x", "y"); err == nil {
			t.Fatal("swapping host tensors on the device succeeded")
		}
		if err := b.Write("p", []float32{1}); err == nil {
			t.Fatal("writing a wrong-sized value succeeded")
		}
		if _, err := b.Int64("x"); err == nil {
			t.Fatal("reading float32 data as int64 succeeded")
		}
		if _, err := b.MemoryStats(); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	if _, err := NewDeviceBinding(sess, specs, DeviceBindingOptions{Resident: []string{"nope"}}); err == nil {
		t.Fatal("a resident name that is not in the model was accepted")
	}
}

// TestDeviceErrors checks the messages of a missing provider and of a
// provider library that does not exist.
func TestDeviceErrors(t *testing.T) {
	rt := openRuntime(t)
	_, err := rt.Device("NoSuchExecutionProvider")
	if err == nil || !strings.Contains(err.Error(), CPUProvider) || !strings.Contains(err.Error(), "RegisterProvider") {
		t.Fatalf("missing provider: err = %v", err)
	}
	if _, ok := CUDAMemoryInUse(); ok {
		t.Error("CUDAMemoryInUse answered although no CUDA provider is loaded")
	}
	err = rt.RegisterProvider("missing", "/nonexistent/libonnxruntime_providers_cuda.so")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/libonnxruntime_providers_cuda.so") {
		t.Fatalf("missing library: err = %v", err)
	}
}

// TestDevicePointerAndCopyFrom hands one session's resident output to
// another session's resident input on the device, and changes a resident
// tensor in place through its device address, as data-parallel training
// does with the gradient (the CPU provider standing in for the GPU).
func TestDevicePointerAndCopyFrom(t *testing.T) {
	rt := openRuntime(t)
	model, specs := doubleStep(t)
	dev := cpuDevice(t, rt)
	var bs []*DeviceBinding
	for i := 0; i < 2; i++ {
		sess, err := rt.NewDeviceSession("double", model, dev, DeviceOptions{Options: Options{IntraOpThreads: 1}})
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		b, err := NewDeviceBinding(sess, specs, DeviceBindingOptions{Resident: []string{"p", "new/p"}})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		bs = append(bs, b)
	}
	a, b := bs[0], bs[1]
	if err := a.Write("p", []float32{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetScalar("lr", 0); err != nil {
		t.Fatal(err)
	}
	if err := a.Run(); err != nil {
		t.Fatal(err)
	}
	// new/p = 2p on a's device, then into b's p.
	if err := b.CopyFrom("p", a, "new/p"); err != nil {
		t.Fatal(err)
	}
	ptr, n, err := b.DevicePointer("p")
	if err != nil || n != 3 {
		t.Fatalf("DevicePointer: %v, %d values", err, n)
	}
	unsafe.Slice((*float32)(ptr), n)[0] += 10 // in place, as NCCL sums
	got := make([]float32, 3)
	if err := b.Read("p", got); err != nil {
		t.Fatal(err)
	}
	if got[0] != 12 || got[1] != 4 || got[2] != 6 {
		t.Fatalf("b's p = %v, want [12 4 6]", got)
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{b.CopyFrom("x", a, "new/p"), "both must be resident"},
		{b.CopyFrom("p", a, "sum"), "both must be resident"},
		{b.CopyFrom("nope", a, "new/p"), "no such values"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("error %v, want %q", tc.err, tc.want)
		}
	}
	if _, _, err := b.DevicePointer("x"); err == nil || !strings.Contains(err.Error(), "not resident") {
		t.Errorf("DevicePointer of a host-twinned input: %v", err)
	}
}

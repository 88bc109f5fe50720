package deploy

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/runtime"
)

// TestValidateOnDevice validates exported models (one jet per call, and
// batched) on the device code path of validate --device cuda, with the CPU
// provider standing in for the GPU: every output must reproduce the
// vectors, as on the default CPU session. A --device cuda that cannot be
// honoured here is an error naming the flag and the fixes.
func TestValidateOnDevice(t *testing.T) {
	_, run := trainedRun(t)
	for _, batched := range []bool{false, true} {
		name := map[bool]string{false: "athena", true: "batched"}[batched]
		t.Run(name, func(t *testing.T) {
			ex := export(t, run, filepath.Join(t.TempDir(), "model.onnx"), batched)
			onCPU := validate(t, ex.Model, "")
			rep, err := Validate(context.Background(), ValidateOptions{Model: ex.Model, Runtime: graphtest.OpenRuntime(t), Device: "cuda", Provider: runtime.CPUProvider})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Pass() || len(rep.Outputs) != len(onCPU.Outputs) {
				t.Fatalf("validation on the device path failed: %+v", rep.Outputs)
			}
			for i, o := range rep.Outputs {
				if o.Compared != onCPU.Outputs[i].Compared {
					t.Errorf("%s: %d values compared on the device path, %d on the CPU session", o.Name, o.Compared, onCPU.Outputs[i].Compared)
				}
			}
		})
	}
	t.Run("no CUDA here", func(t *testing.T) {
		t.Setenv(runtime.CUDALibraryEnv, filepath.Join(t.TempDir(), runtime.CUDALibraryName))
		ex := export(t, run, filepath.Join(t.TempDir(), "model.onnx"), false)
		_, err := Validate(context.Background(), ValidateOptions{Model: ex.Model, Runtime: graphtest.OpenRuntime(t), Device: "cuda"})
		for _, w := range []string{"--device cuda", "make deps-cuda", "--device cpu"} {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Fatalf("error %v, want one naming %s", err, w)
			}
		}
	})
}

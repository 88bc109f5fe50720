package train

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/internal/testkit/fakenccl"
	"github.com/salt-ort/salt-ort/mpi"
	"github.com/salt-ort/salt-ort/nccl"
	"github.com/salt-ort/salt-ort/run"
	"github.com/salt-ort/salt-ort/runtime"
)

// rankEnv marks the test binary's processes that mpirun starts as the
// ranks of TestDataParallelPaths; it holds a rankJob as JSON.
const rankEnv = "SALT_ORT_TRAIN_RANK"

// rankJob is what each rank trains.
type rankJob struct {
	Config, RunDir string
	Provider       string // "" for the host path
	NCCL           string // the NCCL stand-in, or a missing library
}

// rankMain trains as one rank of an MPI job; rank 0 writes the run.
func rankMain() int {
	var job rankJob
	if err := json.Unmarshal([]byte(os.Getenv(rankEnv)), &job); err != nil {
		fmt.Println("FAIL", err)
		return 1
	}
	w, err := mpi.Init()
	if err != nil {
		fmt.Println("FAIL", err)
		return 1
	}
	defer w.Finalize()
	c, err := config.Load(job.Config)
	if err != nil {
		fmt.Println("FAIL", err)
		return 1
	}
	path, err := runtime.LibraryPath("")
	if err != nil {
		fmt.Println("FAIL", err)
		return 1
	}
	rt, err := runtime.Open(path)
	if err != nil {
		fmt.Println("FAIL", err)
		return 1
	}
	var log bytes.Buffer
	opts := Options{Config: c, RunDir: job.RunDir, Runtime: rt, Group: w, Provider: job.Provider, Log: &log,
		NCCL: nccl.Options{Library: job.NCCL, CUDART: job.NCCL}}
	if _, err := Run(context.Background(), opts); err != nil {
		fmt.Printf("FAIL rank %d: %v\n", w.Rank(), err)
		return 1
	}
	fmt.Print(log.String())
	fmt.Printf("rank %d ok\n", w.Rank())
	return 0
}

// TestDataParallelPaths trains two-rank jobs of the test binary: on the
// host, and on the device code path (the CPU provider standing in for the
// GPU) with the gradients summed on the "device" by an NCCL stand-in, and
// with NCCL missing, which falls back to the host. All write the same
// checkpoint bytes.
func TestDataParallelPaths(t *testing.T) {
	if _, err := exec.LookPath("mpirun"); err != nil {
		t.Fatal("mpirun is not installed: run `make deps` (Debian's openmpi-bin)")
	}
	graphtest.OpenRuntime(t) // fails early, naming what is missing
	data := dataset(t, 600, 200, 100)
	cfg := filepath.Join(t.TempDir(), "tiny.toml")
	if err := os.WriteFile(cfg, []byte(tinyConfig(data, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	lib := fakenccl.Build(t)
	var want []byte
	for _, tc := range []struct {
		name     string
		provider string
		nccl     string
		log      string
	}{
		{"host", "", "", ""},
		{"device with NCCL", runtime.CPUProvider, lib, "summing the gradients on the GPUs with NCCL 22703"},
		{"device without NCCL", runtime.CPUProvider, filepath.Join(t.TempDir(), "libnccl.so.2"), "summing the gradients through host memory over MPI, not NCCL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			job, _ := json.Marshal(rankJob{Config: cfg, RunDir: dir, Provider: tc.provider, NCCL: tc.nccl})
			cmd := exec.Command("mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", "-x", rankEnv+"="+string(job), os.Args[0])
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "rank 0 ok") || !strings.Contains(string(out), "rank 1 ok") {
				t.Fatalf("mpirun: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), tc.log) {
				t.Errorf("the log lacks %q:\n%s", tc.log, out)
			}
			got := readFile(t, filepath.Join(dir, run.LastCheckpoint))
			if want == nil {
				want = got
			} else if !bytes.Equal(got, want) {
				t.Fatalf("%s wrote another checkpoint than the host path", tc.name)
			}
		})
	}
}

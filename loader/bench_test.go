package loader_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/salt-ort/salt-ort/gendata"
	"github.com/salt-ort/salt-ort/loader"
)

// h5pyBenchScript times h5py's structured read of a Salt file the way Salt's
// dataset reads it: read_direct of B rows of jets and tracks into
// structured buffers, then structured_to_unstructured of the input
// variables as float32, the valid mask and the labels as int64. It prints
// the best of three passes, and the raw read alone.
const h5pyBenchScript = `
import json, sys, time
import numpy as np, h5py
from numpy.lib.recfunctions import structured_to_unstructured as s2u
path, B = sys.argv[1], int(sys.argv[2])
jv, tv = sys.argv[3].split(","), sys.argv[4].split(",")
def run(convert):
    with h5py.File(path, "r") as f:
        jets, tracks = f["jets"], f["tracks"]
        n = jets.shape[0] // B * B
        jb = np.empty(B, dtype=jets.dtype)
        tb = np.empty((B, tracks.shape[1]), dtype=tracks.dtype)
        t0 = time.perf_counter()
        for s in range(0, n, B):
            jets.read_direct(jb, np.s_[s:s + B])
            tracks.read_direct(tb, np.s_[s:s + B])
            if convert:
                x = s2u(jb[jv], dtype=np.float32)
                y = s2u(tb[tv], dtype=np.float32)
                valid = tb["valid"].copy()
                fl = jb["flavour_label"].astype(np.int64)
                org = tb["ftagTruthOriginLabel"].astype(np.int64)
                vtx = tb["ftagTruthVertexIndex"].astype(np.int64)
        return n / (time.perf_counter() - t0)
out = {"jets_per_s": max(run(True) for _ in range(3)), "raw_jets_per_s": max(run(False) for _ in range(3)),
       "h5py": h5py.__version__, "numpy": np.__version__}
print(json.dumps(out))
`

type h5pyRates struct {
	JetsPerS    float64 `json:"jets_per_s"`
	RawJetsPerS float64 `json:"raw_jets_per_s"`
	H5py        string  `json:"h5py"`
	Numpy       string  `json:"numpy"`
}

func runH5pyBench(py, path string, batch int) (*h5pyRates, error) {
	cmd := exec.Command(py, "-c", h5pyBenchScript, path, strconv.Itoa(batch),
		strings.Join(loader.GN2JetVariables(), ","), strings.Join(loader.GN2TrackVariables(), ","))
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("h5py benchmark: %w", err)
	}
	var r h5pyRates
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("h5py benchmark output %q: %w", out, err)
	}
	return &r, nil
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// readEpoch streams one epoch and returns the jets read.
func readEpoch(tb testing.TB, ds *loader.Dataset, epoch int) int {
	n := 0
	batches, errc := ds.Batches(context.Background(), epoch, 0)
	for b := range batches {
		n += b.N
		b.Release()
	}
	if err := <-errc; err != nil {
		tb.Fatal(err)
	}
	return n
}

// BenchmarkGN2Read reads GN2 inputs (2 jet + 19 track variables, 40
// tracks, normalised, with flavour/origin/vertex labels) from a generated
// file in the page cache with 1 and 2 loader goroutines, then times h5py's
// structured read of the same file and prints the rates and ratios.
func BenchmarkGN2Read(b *testing.B) {
	const jets, batch = 50000, 1000
	dir := b.TempDir()
	res, err := gendata.Generate(gendata.Config{Seed: 7, Train: jets}, dir)
	if err != nil {
		b.Fatal(err)
	}
	nd, err := loader.ReadNormDict(res.NormDict)
	if err != nil {
		b.Fatal(err)
	}
	// Best epoch (wall and CPU time), as the h5py script takes its best pass:
	// the machine's noise only ever slows a pass down.
	rates, cpuRates := map[int]float64{}, map[int]float64{}
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			ds, err := loader.Open(loader.Config{Files: []string{res.Train}, Groups: loader.GN2Groups(), Labels: loader.GN2Labels(), BatchSize: batch,
				Shuffle: true, Seed: 1, Norm: nd, Workers: workers})
			if err != nil {
				b.Fatal(err)
			}
			defer ds.Close()
			readEpoch(b, ds, 0) // warm the page cache
			b.ResetTimer()
			bestWall, bestCPU := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
			for i := 0; i < b.N; i++ {
				start, cpu0 := time.Now(), cpuTime()
				readEpoch(b, ds, i)
				bestWall = min(bestWall, time.Since(start))
				bestCPU = min(bestCPU, cpuTime()-cpu0)
			}
			rates[workers] = jets / bestWall.Seconds()
			cpuRates[workers] = jets / bestCPU.Seconds()
			b.ReportMetric(rates[workers], "jets/s")
			b.ReportMetric(cpuRates[workers], "jets/cpu-s")
		})
	}
	var h5 *h5pyRates
	b.Run("h5py", func(b *testing.B) {
		py, why := loader.PythonH5py()
		if py == "" {
			fmt.Printf("BenchmarkGN2Read: h5py comparison skipped: %s\n", why)
			b.Skip(why)
		}
		if h5 == nil { // one run of the script: it takes its own best of three
			if h5, err = runH5pyBench(py, res.Train, batch); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(h5.JetsPerS, "jets/s")
	})
	fmt.Printf("BenchmarkGN2Read: %d jets, B=%d, GN2 inputs normalised + 3 labels, page cache, best epoch\n", jets, batch)
	fmt.Printf("  salt-ort loader, 1 goroutine : %10.0f jets/s (%.0f jets per CPU-second)\n", rates[1], cpuRates[1])
	fmt.Printf("  salt-ort loader, 2 goroutines: %10.0f jets/s (%.0f jets per CPU-second)\n", rates[2], cpuRates[2])
	if h5 == nil {
		return
	}
	fmt.Printf("  h5py %s structured read + s2u: %10.0f jets/s (raw read_direct alone: %.0f jets/s)\n", h5.H5py, h5.JetsPerS, h5.RawJetsPerS)
	fmt.Printf("  ratio loader/h5py: 1 goroutine %.2fx, 2 goroutines %.2fx, per CPU-second %.2fx (target ≥ 1.5x per core)\n",
		rates[1]/h5.JetsPerS, rates[2]/h5.JetsPerS, cpuRates[1]/h5.JetsPerS)
}

// BenchmarkBatchSize reads GN2 batches of 100, 1000 and 4000 jets with 2
// loader goroutines: the per-batch cost must stay far below a training
// step's at every size.
func BenchmarkBatchSize(b *testing.B) {
	dir := b.TempDir()
	res, err := gendata.Generate(gendata.Config{Seed: 8, Train: 40000}, dir)
	if err != nil {
		b.Fatal(err)
	}
	nd, err := loader.ReadNormDict(res.NormDict)
	if err != nil {
		b.Fatal(err)
	}
	for _, bs := range []int{100, 1000, 4000} {
		b.Run(fmt.Sprintf("B=%d", bs), func(b *testing.B) {
			ds, err := loader.Open(loader.Config{Files: []string{res.Train}, Groups: loader.GN2Groups(), Labels: loader.GN2Labels(), BatchSize: bs,
				Shuffle: true, Seed: 1, Norm: nd, Workers: 2, Partial: loader.DropPartial})
			if err != nil {
				b.Fatal(err)
			}
			defer ds.Close()
			readEpoch(b, ds, 0)
			b.ResetTimer()
			start := time.Now()
			n := 0
			for i := 0; i < b.N; i++ {
				n += readEpoch(b, ds, i)
			}
			el := time.Since(start)
			b.ReportMetric(float64(n)/el.Seconds(), "jets/s")
			b.ReportMetric(float64(el.Microseconds())/float64(b.N*ds.NumBatches()), "µs/batch")
		})
	}
}

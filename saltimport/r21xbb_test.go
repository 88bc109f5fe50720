package saltimport_test

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/internal/salttwin"
	"github.com/salt-ort/salt-ort/loader"
	"github.com/salt-ort/salt-ort/train"
)

// r21Twin is Baseline_Xbb's model at a small size: the first 5 of the
// twin's 12 track slots (so that jets with fewer tracks are padded and
// those with more truncated), three variables, and a head with dropout
// (its Linear layers at net.1, net.4, net.7 of Salt's Dense).
var r21Twin = salttwin.R21Xbb{MaxLen: 5, Vars: []string{"d0", "z0SinTheta", "dphi"}, Hidden: []int{24, 16}, Dropout: 0.1}

// TestR21XbbImportsAndEvaluates imports a checkpoint of the PyTorch twin
// of Salt's R21Xbb (config.yaml and Lightning checkpoint) and compares
// salt-ort's evaluation of it with PyTorch's on the test file.
func TestR21XbbImportsAndEvaluates(t *testing.T) {
	// float32 rounding of the same sums in another order.
	const tol = 1e-5
	tw := salttwin.BuildR21Xbb(t, t.TempDir(), r21Twin)
	run := importTwin(t, tw)
	cfg, err := config.Load(filepath.Join(run, train.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Model.Pooling; p.Kind != "flatten" || p.Input != "tracks" || p.MaxLen != r21Twin.MaxLen || len(cfg.Model.InitNets) != 0 {
		t.Fatalf("imported pooling %+v with %d init nets, want flatten of tracks, max_len %d, none", p, len(cfg.Model.InitNets), r21Twin.MaxLen)
	}
	want, _, err := tw.Expected.Float32("eval/jets_classification")
	if err != nil {
		t.Fatal(err)
	}
	worst, jets := 0.0, 0
	each := func(b *loader.Batch, preds map[string][]float32) error {
		bs := b.Inputs["tracks"].Shape[0]
		got := preds[model.PredictionOutput("jets_classification")]
		for j := 0; j < b.N; j++ {
			row := b.Index*bs + j
			for k := 0; k < 4; k++ {
				exp := float64(want[row*4+k])
				worst = max(worst, math.Abs(float64(got[j*4+k])-exp)/math.Max(math.Abs(exp), 1e-3))
			}
			jets++
		}
		return nil
	}
	rt := graphtest.OpenRuntime(t)
	if _, err := train.Evaluate(context.Background(), train.EvalOptions{RunDir: run, Files: []string{tw.Data.Test}, Runtime: rt, Threads: 1, Each: each}); err != nil {
		t.Fatal(err)
	}
	if jets != salttwin.TestJets {
		t.Fatalf("evaluated %d jets, want %d", jets, salttwin.TestJets)
	}
	t.Logf("largest difference from PyTorch %.2g relative", worst)
	if worst > tol {
		t.Errorf("salt-ort's R21Xbb probabilities differ from PyTorch's by %.3g relative (want ≤ %g)", worst, tol)
	}
}

// TestR21XbbTrainingStep resumes an imported R21Xbb twin without dropout
// (so that both sides take the same step) for one step and compares every
// parameter with PyTorch's after it.
func TestR21XbbTrainingStep(t *testing.T) {
	r := r21Twin
	r.Dropout = 0
	tw := salttwin.BuildR21Xbb(t, t.TempDir(), r)
	stepMatchesTorch(t, tw, importTwin(t, tw))
}

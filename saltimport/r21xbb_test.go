package saltimport_test

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/internal/testkit/salttwin"
	"github.com/salt-ort/salt-ort/loader"
	"github.com/salt-ort/salt-ort/run"
	"github.com/salt-ort/salt-ort/saltimport"
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
	runDir := importTwin(t, tw)
	cfg, err := config.Load(filepath.Join(runDir, run.ConfigFile))
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
	if _, err := run.Evaluate(context.Background(), run.EvalOptions{RunDir: runDir, Files: []string{tw.Data.Test}, Runtime: rt, Threads: 1, Each: each}); err != nil {
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

// baselineXbb is Salt's legacy/Baseline_Xbb.yaml, its files aside.
const baselineXbb = `
name: Baseline_Xbb
data:
  train_file: train.h5
  val_file: val.h5
  norm_dict: norm.yaml
  variables:
    jets: [pt, eta]
    tracks: [DL1dv01_VR_pb, DL1dv01_VR_pc, DL1dv01_VR_pu]
trainer:
  max_epochs: 50
model:
  lrs_config: {initial: 4e-10, max: 1e-6, end: 4e-10, pct_start: 0.1}
  model:
    class_path: salt.models.R21Xbb
    init_args:
      tasks:
        class_path: torch.nn.ModuleList
        init_args:
          modules:
            - class_path: salt.models.ClassificationTask
              init_args:
                name: jets_classification
                input_name: jets
                label: flavour_label
                class_names: [hbb, hcc, qcd, top]
                loss: torch.nn.CrossEntropyLoss
                dense_config:
                  input_size: 15
                  output_size: 4
                  hidden_layers: [250, 250, 250, 250, 250, 250]
                  activation: ReLU
                  dropout: 0.1
`

// TestR21XbbConfig checks the conversion of Baseline_Xbb.yaml, and that
// what R21Xbb cannot read is refused by its key.
func TestR21XbbConfig(t *testing.T) {
	opts := saltimport.ConvertOptions{MaxLen: map[string]int{"tracks": 5, "flows": 4}, Read: saltimport.ReadOptions{NoBase: true}}
	out, err := saltimport.Convert("Baseline_Xbb.yaml", []byte(baselineXbb), opts)
	if err != nil {
		t.Fatal(err)
	}
	m := out.Config.Model
	if want := (config.Pooling{Kind: "flatten", Input: "tracks", MaxLen: 5}); m.Pooling != want || len(m.InitNets) != 0 || m.Encoder.Layers != 0 || m.EmbedDim != 15 ||
		m.Tasks[0].Dropout != 0.1 || len(m.Tasks[0].Hidden) != 6 {
		t.Errorf("converted model %+v", m)
	}
	for _, c := range []struct {
		name, from, to, key, want string
	}{
		{"head input size", "input_size: 15", "input_size: 12", "dense_config.input_size", "15"},
		{"a second group", "tracks: [DL1dv01_VR_pb", "flows: [pt]\n    tracks: [DL1dv01_VR_pb", "data.variables", "one constituent group"},
		{"global variables", "jets: [pt, eta]", "jets: [pt, eta]\n    global: [pt]", "data.variables.global", "remove the global variables"},
	} {
		t.Run(c.name, func(t *testing.T) {
			text := strings.Replace(baselineXbb, c.from, c.to, 1)
			if text == baselineXbb {
				t.Fatalf("no %q", c.from)
			}
			_, err := saltimport.Convert("Baseline_Xbb.yaml", []byte(text), opts)
			if err == nil || !strings.Contains(err.Error(), c.key+":") || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one naming %s with %q", err, c.key, c.want)
			}
		})
	}
}

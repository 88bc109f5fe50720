package train

import (
	"context"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/gendata"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/run"
)

// TestMaskFormerTrains is MaskFormer's acceptance check: examples/
// maskformer.toml trains on `gen-data --truth-hadrons 5` data, and every
// MaskFormer loss term falls by at least 5 % from the first epoch to the
// last (a fall of the training loss, which is what Salt logs for them), and
// every validation loss (the objects' and the jet flavour task's) falls
// from the untrained model's, while Salt's object metrics rise: the truth
// hadrons found (loose criterion) and the efficiency and purity of the
// tracks' assignment to them.
func TestMaskFormerTrains(t *testing.T) {
	data := datasets.Get(t, gendata.Config{Seed: 7, Train: 1500, Val: 200, Test: 200, TruthHadrons: 5})
	text := strings.ReplaceAll(string(readFile(t, "../examples/maskformer.toml")), "../data/maskformer", data)
	c := loadConfig(t, text)
	c.Training.Epochs = 3
	// Smaller batches: more steps on few jets, enough for the objects to
	// be found.
	c.Data.BatchSize = 50
	dir := filepath.Join(t.TempDir(), "run")
	sum, err := trainTo(t, c, dir, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.ObjectLoss) != c.Training.Epochs {
		t.Fatalf("%d epochs of object losses, want %d", len(sum.ObjectLoss), c.Training.Epochs)
	}
	first, last := sum.ObjectLoss[0], sum.ObjectLoss[len(sum.ObjectLoss)-1]
	for _, term := range []string{"object_class_ce", "mask_ce", "mask_dice", "regression"} {
		if !(last[term] < 0.95*first[term]) {
			t.Errorf("%s: %g in the first epoch, %g in the last: want a fall of 5 %% or more", term, first[term], last[term])
		} else {
			t.Logf("%s: %.4f → %.4f", term, first[term], last[term])
		}
	}
	for _, k := range []string{"val_loss", "val_loss/jets_classification", "val_loss/objects/object_class_ce", "val_loss/objects/mask_ce", "val_loss/objects/mask_dice", "val_loss/objects/regression"} {
		v0, v1 := sum.ValLoss[0][k], sum.ValLoss[len(sum.ValLoss)-1][k]
		if !(v1 < v0) {
			t.Errorf("%s: %g before training, %g after", k, v0, v1)
		} else {
			t.Logf("%s: %.4f → %.4f", k, v0, v1)
		}
	}
	// The objects found and the tracks assigned to them: Salt's metrics.
	for _, k := range []string{"val_objects/query_loose_match_eff", "val_objects/assignment_eff", "val_objects/assignment_pur"} {
		v0, v1 := sum.ValLoss[0][k], sum.ValLoss[len(sum.ValLoss)-1][k]
		if !(v1 > v0) {
			t.Errorf("%s: %g before training, %g after: want a rise", k, v0, v1)
		} else {
			t.Logf("%s: %.4f → %.4f", k, v0, v1)
		}
	}
	// A test file without truth objects evaluates the jets, the truth
	// objects named unlabelled (as eval names them).
	plain := dataset(t, 300, 200, 200)
	res, err := run.Evaluate(context.Background(), run.EvalOptions{RunDir: dir, Runtime: graphtest.OpenRuntime(t), Threads: 2,
		Files: []string{filepath.Join(plain, "test.h5")}, Unlabelled: []string{run.ObjectTruth}})
	if err != nil {
		t.Fatalf("a file without truth objects: %v", err)
	}
	if l := res.Loss["jets_classification"]; res.Jets != 200 || math.IsNaN(l) || l <= 0 {
		t.Errorf("a file without truth objects: %d jets, jet loss %g", res.Jets, l)
	}
}

// TestMaskFormerAuxLossTrains trains examples/maskformer.toml with the
// auxiliary losses per decoder layer (aux_loss = true) on few jets: every
// training loss term, each layer's included, falls by at least 5 % from
// the first epoch to the last, each layer's validation terms fall, and the
// validation table has a column for each.
func TestMaskFormerAuxLossTrains(t *testing.T) {
	data := datasets.Get(t, gendata.Config{Seed: 11, Train: 800, Val: 200, Test: 100, TruthHadrons: 5})
	text := strings.ReplaceAll(string(readFile(t, "../examples/maskformer.toml")), "../data/maskformer", data)
	text = strings.Replace(text, "aux_loss = false", "aux_loss = true", 1)
	c := loadConfig(t, text)
	if !c.Model.MaskDecoder.AuxLoss {
		t.Fatal("examples/maskformer.toml: aux_loss = false not found to turn on")
	}
	c.Training.Epochs = 2
	c.Data.BatchSize = 50
	dir := filepath.Join(t.TempDir(), "run")
	sum, err := trainTo(t, c, dir, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	header, err := os.ReadFile(filepath.Join(dir, run.ValMetrics))
	if err != nil {
		t.Fatal(err)
	}
	columns := strings.Split(strings.SplitN(string(header), "\n", 2)[0], ",")
	first, last := sum.ObjectLoss[0], sum.ObjectLoss[len(sum.ObjectLoss)-1]
	var layerTerms int
	for _, term := range slices.Sorted(maps.Keys(first)) {
		if strings.Contains(term, "_layer") {
			layerTerms++
		}
		if !(last[term] < 0.95*first[term]) {
			t.Errorf("%s: %g in the first epoch, %g in the last: want a fall of 5 %% or more", term, first[term], last[term])
		} else {
			t.Logf("%s: %.4f → %.4f", term, first[term], last[term])
		}
	}
	// Two decoder layers, each with the class, mask BCE and dice terms.
	if layerTerms != 6 {
		t.Errorf("%d per-layer training terms, want 6: %v", layerTerms, first)
	}
	for _, layer := range []string{"_layer0", "_layer1"} {
		for _, term := range []string{"object_class_ce", "mask_ce", "mask_dice"} {
			k := "val_loss/objects/" + term + layer
			if !slices.Contains(columns, k) {
				t.Errorf("val.csv has no column %s: %v", k, columns)
			}
			v0, v1 := sum.ValLoss[0][k], sum.ValLoss[len(sum.ValLoss)-1][k]
			if !(v1 < v0) {
				t.Errorf("%s: %g before training, %g after", k, v0, v1)
			} else {
				t.Logf("%s: %.4f → %.4f", k, v0, v1)
			}
		}
	}
}

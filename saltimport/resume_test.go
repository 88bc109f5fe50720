package saltimport_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/checkpoint"
	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/internal/testkit/salttwin"
	"github.com/salt-ort/salt-ort/internal/testkit/torchref"
	"github.com/salt-ort/salt-ort/run"
	"github.com/salt-ort/salt-ort/saltimport"
	"github.com/salt-ort/salt-ort/train"
)

// relabelScript rewrites the twin's checkpoint with the loop state, epoch,
// global_step and scheduler position Lightning writes at another hook.
const relabelScript = `
import json, sys
sys.path.insert(0, sys.argv[1])
from lightning_state import fit_state
ck = torch.load(sys.argv[2])
c = json.loads(sys.argv[3])
ck.update(fit_state(1, c["epochs"], c["hook"], c["epoch"], 0))
ck["lr_schedulers"][0]["last_epoch"] = ck["global_step"]
torch.save(ck, c["out"])
`

// TestImportResumesWhereLightningWould imports the twin's checkpoint as
// Lightning writes it at step 0, after a training batch and at an epoch's
// end (one batch per epoch), resumes each with train for one step, and
// checks where training went on: the position recorded, whether the
// epoch's validation ran first, and the step the schedule took.
func TestImportResumesWhereLightningWould(t *testing.T) {
	tw := makeTwin(t)
	dir := salttwin.Dir()
	// One batch per epoch: the resumed step ends its epoch, which is
	// validated before train stops.
	cases := []struct {
		name, hook string
		epoch      int
		imported   train.Position // where the import says training continues
		after      train.Position // after one more step
		validated  []string       // the epochs validated meanwhile (val.csv)
	}{
		// The untrained model's validation, then epoch 1.
		{"step 0", "on_train_start", 0, train.Position{}, train.Position{Epoch: 1, Step: 1}, []string{"0", "1"}},
		// Epoch 3's batch is trained: its validation, then epoch 4.
		{"after a batch", "on_train_batch_end", 2, train.Position{Epoch: 2, Batch: 1, Step: 3}, train.Position{Epoch: 4, Step: 4}, []string{"3", "4"}},
		// Epoch 3 is trained and validated: epoch 4.
		{"end of epoch", "on_validation_end", 2, train.Position{Epoch: 3, Step: 3}, train.Position{Epoch: 4, Step: 4}, []string{"4"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ckpt := filepath.Join(t.TempDir(), "relabelled.ckpt")
			args, _ := json.Marshal(map[string]any{"epochs": salttwin.Epochs, "hook": c.hook, "epoch": c.epoch, "out": ckpt})
			torchref.Run(t, relabelScript, dir, tw.Ckpt, string(args))
			runDir := filepath.Join(t.TempDir(), "run")
			res, err := saltimport.Import(saltimport.Options{Config: tw.ConfigYAML, Checkpoint: ckpt, Out: runDir})
			if err != nil {
				t.Fatal(err)
			}
			if res.Position != c.imported {
				t.Fatalf("imported at %+v, want %+v", res.Position, c.imported)
			}
			cfg, err := config.Load(filepath.Join(runDir, run.ConfigFile))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Training.Threads = 1
			_, err = train.Run(context.Background(), train.Options{Config: cfg, RunDir: runDir, Resume: true, Runtime: graphtest.OpenRuntime(t), StopAfter: 1})
			if !errors.Is(err, train.ErrInterrupted) {
				t.Fatalf("one resumed step: %v", err)
			}
			f, err := checkpoint.Read(filepath.Join(runDir, run.LastCheckpoint))
			if err != nil {
				t.Fatal(err)
			}
			var got train.Position
			for k, dst := range map[string]*int{"epoch": &got.Epoch, "batch": &got.Batch, "step": &got.Step} {
				if *dst, err = strconv.Atoi(f.Metadata[k]); err != nil {
					t.Fatalf("metadata %s: %v", k, err)
				}
			}
			if got != c.after {
				t.Errorf("after one resumed step at %+v, want %+v", got, c.after)
			}
			val, err := os.ReadFile(filepath.Join(runDir, run.ValMetrics))
			if err != nil {
				t.Fatal(err)
			}
			var epochs []string
			for _, row := range strings.Split(strings.TrimSpace(string(val)), "\n")[1:] {
				epochs = append(epochs, strings.Split(row, ",")[0])
			}
			if !slices.Equal(epochs, c.validated) {
				t.Errorf("validated epochs %v, want %v:\n%s", epochs, c.validated, val)
			}
		})
	}
}

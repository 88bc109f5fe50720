package saltimport

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/internal/testkit/salttwin"
	"github.com/salt-ort/salt-ort/internal/testkit/torchref"
	"github.com/salt-ort/salt-ort/train"
)

// lightningScript writes, with torch.save, one checkpoint per case of a
// JSON list: a tiny state_dict and the epoch, global_step and loop state
// Lightning 2.x writes at a hook (lightning_state.fit_state), or a legacy
// checkpoint without loop state.
const lightningScript = `
import json, sys
sys.path.insert(0, sys.argv[1])
from lightning_state import fit_state
for c in json.loads(sys.argv[2]):
    if c["hook"] == "legacy":
        ck = {"epoch": c["epoch"], "global_step": c["step"]}
    else:
        ck = fit_state(c["batches"], c["epochs"], c["hook"], c["epoch"], c["batch"])
    ck["state_dict"] = {"w": torch.zeros(2)}
    ck["lr_schedulers"] = [{"last_epoch": ck["global_step"], "total_steps": c["batches"] * c["epochs"]}]
    torch.save(ck, c["path"])
`

// TestResumePosition checks that Lightning checkpoints resume where
// Lightning resumes them: written at step 0, after a batch in the middle of
// an epoch (every_n_train_steps), after an epoch's last batch, at the end
// of an epoch (Salt's checkpoints), at an epoch's start and after the fit;
// and legacy checkpoints without loop state.
func TestResumePosition(t *testing.T) {
	twin := salttwin.Dir()
	type lightningCase struct {
		Name    string `json:"-"`
		Hook    string `json:"hook"`
		Batches int    `json:"batches"`
		Epochs  int    `json:"epochs"`
		Epoch   int    `json:"epoch"`
		Batch   int    `json:"batch"`
		Step    int    `json:"step"`
		Path    string `json:"path"`
	}
	// 5 batches per epoch, 3 epochs.
	cases := []struct {
		c    lightningCase
		want train.Position
		note string // a word the note must hold; "" for no note
	}{
		{lightningCase{Name: "step 0, before the fit's first epoch", Hook: "on_train_start"}, train.Position{}, ""},
		{lightningCase{Name: "step 0, at the first epoch's start", Hook: "on_train_epoch_start"}, train.Position{}, ""},
		{lightningCase{Name: "after the first batch", Hook: "on_train_batch_end"}, train.Position{Epoch: 0, Batch: 1, Step: 1}, ""},
		{lightningCase{Name: "mid-epoch (every_n_train_steps)", Hook: "on_train_batch_end", Epoch: 1, Batch: 2}, train.Position{Epoch: 1, Batch: 3, Step: 8}, ""},
		{lightningCase{Name: "after an epoch's last batch, before its validation", Hook: "on_train_batch_end", Epoch: 1, Batch: 4}, train.Position{Epoch: 1, Batch: 5, Step: 10}, ""},
		{lightningCase{Name: "end of epoch, at validation (Salt's checkpoints)", Hook: "on_validation_end", Epoch: 1}, train.Position{Epoch: 2, Step: 10}, ""},
		{lightningCase{Name: "end of epoch, on_train_epoch_end", Hook: "on_train_epoch_end", Epoch: 1}, train.Position{Epoch: 2, Step: 10}, ""},
		{lightningCase{Name: "at an epoch's start", Hook: "on_train_epoch_start", Epoch: 2}, train.Position{Epoch: 2, Step: 10}, ""},
		{lightningCase{Name: "after the fit", Hook: "after_fit"}, train.Position{Epoch: 3, Step: 15}, ""},
		{lightningCase{Name: "legacy, step 0", Hook: "legacy"}, train.Position{}, ""},
		{lightningCase{Name: "legacy, after epoch 2", Hook: "legacy", Epoch: 1, Step: 10}, train.Position{Epoch: 2, Step: 10}, "loops.fit_loop"},
	}
	dir := t.TempDir()
	var list []lightningCase
	for i := range cases {
		c := &cases[i].c
		c.Batches, c.Epochs = 5, 3
		c.Path = filepath.Join(dir, strings.NewReplacer(" ", "_", ",", "", "'", "", "(", "", ")", "").Replace(c.Name)+".ckpt")
		list = append(list, *c)
	}
	js, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	torchref.Run(t, lightningScript, twin, string(js))
	for _, c := range cases {
		t.Run(c.c.Name, func(t *testing.T) {
			ck, err := ReadCheckpoint(c.c.Path)
			if err != nil {
				t.Fatal(err)
			}
			if (ck.Loop == nil) != (c.c.Hook == "legacy") {
				t.Fatalf("loop state read: %v, want it read from every Lightning 2.x checkpoint", ck.Loop != nil)
			}
			got, note := ResumePosition(ck)
			if got != c.want {
				t.Errorf("resumes at epoch %d, batch %d, step %d; Lightning resumes at epoch %d, batch %d, step %d (loop state %+v)",
					got.Epoch, got.Batch, got.Step, c.want.Epoch, c.want.Batch, c.want.Step, ck.Loop)
			}
			if (note == "") != (c.note == "") || !strings.Contains(note, c.note) {
				t.Errorf("note %q, want one holding %q", note, c.note)
			}
		})
	}
}

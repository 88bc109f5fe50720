package saltimport

import (
	"fmt"

	"github.com/salt-ort/salt-ort/train"
)

// FitLoop is the progress of Lightning's fit loop that a Lightning 2.x
// checkpoint records under loops.fit_loop: where in the epoch loop and
// in the current epoch's batches training stood when the file was written.
type FitLoop struct {
	// Epoch is epoch_progress.current: epochs made ready, started,
	// processed (their batches and validation run) and completed (their
	// end-of-epoch hooks run too).
	Epoch Progress
	// Batch is epoch_loop.batch_progress.current, the batches of the
	// current epoch, and LastBatch its is_last_batch: the epoch's last
	// batch has been fetched.
	Batch     Progress
	LastBatch bool
}

// Progress is one of Lightning's progress counters (its _ProcessedTracker):
// the items made ready, started, processed and completed. An item is
// completed once the hooks after its processing have run, so a checkpoint
// written by such a hook counts it as processed but not yet completed.
type Progress struct {
	Ready, Started, Processed, Completed int
}

// fitLoop reads loops.fit_loop of a checkpoint's top-level dictionary;
// nil where the checkpoint has no such state (Lightning before 1.6, or a
// file with the loops removed) or only part of it.
func fitLoop(loops any) *FitLoop {
	l, ok := asMap(loops)
	if !ok {
		return nil
	}
	fit, ok := asMap(l["fit_loop"])
	if !ok {
		return nil
	}
	epoch, ok := progressOf(fit["epoch_progress"])
	if !ok {
		return nil
	}
	batch, ok := progressOf(fit["epoch_loop.batch_progress"])
	if !ok {
		return nil
	}
	f := &FitLoop{Epoch: epoch, Batch: batch}
	if bp, ok := asMap(fit["epoch_loop.batch_progress"]); ok {
		f.LastBatch, _ = bp["is_last_batch"].(bool)
	}
	return f
}

// progressOf reads the "current" counters of a progress state dictionary
// ({"total": {...}, "current": {...}}).
func progressOf(v any) (Progress, bool) {
	m, ok := asMap(v)
	if !ok {
		return Progress{}, false
	}
	cur, ok := asMap(m["current"])
	if !ok {
		return Progress{}, false
	}
	var p Progress
	for key, dst := range map[string]*int{"ready": &p.Ready, "started": &p.Started, "processed": &p.Processed, "completed": &p.Completed} {
		n, ok := asInt(cur[key])
		if !ok || n < 0 {
			return Progress{}, false
		}
		*dst = n
	}
	return p, true
}

// ResumePosition returns where training continues from a Lightning
// checkpoint, as Lightning resumes a fit from it: the epoch, the batch
// within it and the optimizer steps done (which place the learning-rate
// schedule). The note says what was assumed where the checkpoint lacks
// the loop state to tell ("" where nothing was).
//
// With the fit loop's state (Lightning 1.6 and later):
//   - a checkpoint written before the first epoch started (Trainer.save_checkpoint
//     at step 0, on_train_start) continues with epoch 1, batch 0;
//   - one written after a training batch (ModelCheckpoint's
//     every_n_train_steps or train_time_interval, in on_train_batch_end)
//     continues in the same epoch with the next batch; after the epoch's
//     last batch, with the epoch's validation;
//   - one written at the end of an epoch (on_validation_end, Salt's
//     checkpoints, or on_train_epoch_end) continues with the next epoch,
//     batch 0;
//   - one written at a validation inside an epoch (val_check_interval)
//     continues with the batch after it.
//
// Without it, a checkpoint with no step taken starts at the beginning and
// any other is taken as written at the end of its epoch.
func ResumePosition(ck *Checkpoint) (train.Position, string) {
	step := max(ck.SchedulerStep, ck.GlobalStep, 0)
	if f := ck.Loop; f != nil {
		e := f.Epoch.Completed
		switch {
		case f.Epoch.Processed > e:
			// Written by on_train_epoch_end: epoch e has been trained
			// (and validated, where it validates).
			return train.Position{Epoch: e + 1, Step: step}, ""
		case f.Epoch.Started > e:
			// Inside epoch e: batches processed are trained; the last
			// one completed means the hooks after it (the end-of-epoch
			// validation) have run too.
			if f.LastBatch && f.Batch.Completed == f.Batch.Processed {
				return train.Position{Epoch: e + 1, Step: step}, ""
			}
			return train.Position{Epoch: e, Batch: f.Batch.Processed, Step: step}, ""
		default:
			// Epoch e has not started: before the first epoch, or after
			// the last (a fit that finished).
			return train.Position{Epoch: e, Step: step}, ""
		}
	}
	if step == 0 {
		return train.Position{}, ""
	}
	epoch := max(ck.Epoch, 0)
	note := fmt.Sprintf("loops.fit_loop: absent (a checkpoint of Lightning before 1.6, or one with the loop state removed): the checkpoint is taken as written at the end of epoch %d (epoch %d, global_step %d), so training continues with epoch %d, batch 0", epoch+1, ck.Epoch, ck.GlobalStep, epoch+2)
	return train.Position{Epoch: epoch + 1, Step: step}, note
}

"""The training-loop state Lightning 2.x writes into a checkpoint, for
salt-ort's tests: which counters a checkpoint holds when a given hook
writes it.

Lightning is not installed on the test machines, so fit_state() replays the
order in which Lightning 2.x's _FitLoop and _TrainingEpochLoop advance their
progress counters (lightning/pytorch/loops/fit_loop.py and
training_epoch_loop.py: ready, then the hooks, then started; processed after
the training step, then on_train_batch_end, then completed; validation at
the end of the epoch inside the epoch loop; on_train_epoch_end after the
epoch's processed count and before its completed count) and stops at the
hook asked for. It returns the checkpoint's "epoch", "global_step" and
"loops" entries as Lightning's _Loop.state_dict lays them out (flat keys
with the child loop's name as a prefix).
"""

HOOKS = ("on_train_start", "on_train_epoch_start", "on_train_batch_end",
         "on_validation_end", "on_train_epoch_end", "after_fit")


def tracker(kind):
    keys = {"processed": ("ready", "started", "processed", "completed"),
            "started": ("ready", "started", "completed"),
            "ready": ("ready", "completed")}[kind]
    return {k: 0 for k in keys}


def progress(kind="processed"):
    return {"total": tracker(kind), "current": tracker(kind)}


def inc(p, key):
    p["total"][key] += 1
    p["current"][key] += 1


def fit_state(batches, epochs, hook, epoch=0, batch=0):
    """Replays a fit of `epochs` epochs of `batches` batches (one optimizer
    and scheduler step per batch, validation at each epoch's end) and
    returns the checkpoint entries at `hook` in epoch `epoch` (0-based;
    on_train_batch_end after batch `batch`, 0-based)."""
    assert hook in HOOKS
    ep, bp = progress(), progress()
    bp["is_last_batch"] = False
    sched = progress("ready")
    steps = {"step": progress("ready"), "zero_grad": progress("started")}
    val = progress()
    val["is_last_batch"] = False
    stepped = 0

    def state():
        loops = {
            "fit_loop": {
                "state_dict": {},
                "epoch_progress": ep,
                "epoch_loop.state_dict": {"_batches_that_stepped": stepped},
                "epoch_loop.batch_progress": bp,
                "epoch_loop.scheduler_progress": sched,
                "epoch_loop.automatic_optimization.state_dict": {},
                "epoch_loop.automatic_optimization.optim_progress": {"optimizer": steps},
                "epoch_loop.manual_optimization.state_dict": {},
                "epoch_loop.manual_optimization.optim_step_progress": progress("ready"),
                "epoch_loop.val_loop.state_dict": {},
                "epoch_loop.val_loop.batch_progress": val,
            },
            "validate_loop": {"state_dict": {}, "batch_progress": progress()},
            "test_loop": {"state_dict": {}, "batch_progress": progress()},
            "predict_loop": {"state_dict": {}, "batch_progress": progress()},
        }
        import copy
        return {"epoch": ep["current"]["completed"], "global_step": steps["step"]["total"]["completed"],
                "loops": copy.deepcopy(loops)}

    if hook == "on_train_start":
        return state()
    for e in range(epochs):
        inc(ep, "ready")
        if hook == "on_train_epoch_start" and e == epoch:
            return state()
        inc(ep, "started")
        bp["current"] = tracker("processed")  # _TrainingEpochLoop.reset: reset_on_run
        for b in range(batches):
            bp["is_last_batch"] = b == batches - 1
            for k in ("ready", "started"):
                inc(bp, k)
            for k in ("ready", "started", "completed"):
                inc(steps["zero_grad"], k)
            for k in ("ready", "completed"):
                inc(steps["step"], k)
            inc(bp, "processed")
            for k in ("ready", "completed"):
                inc(sched, k)
            if hook == "on_train_batch_end" and (e, b) == (epoch, batch):
                return state()
            inc(bp, "completed")
            if bp["is_last_batch"]:
                for k in ("ready", "started", "processed", "completed"):
                    inc(val, k)
                if hook == "on_validation_end" and e == epoch:
                    return state()
            stepped += 1
        inc(ep, "processed")
        if hook == "on_train_epoch_end" and e == epoch:
            return state()
        inc(ep, "completed")
    assert hook == "after_fit", "the hook is not reached in this fit"
    return state()

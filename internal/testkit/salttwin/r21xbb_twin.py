"""An independent PyTorch implementation of Salt's R21Xbb, for salt-ort's
tests of model.pooling.kind = "flatten".

Written for salt-ort from a reading of Salt's salt/models/r21xbb.py,
dense.py, task.py, inputnorm.py, modelwrapper.py and of how
salt/data/datasets.py reads a constituent group (its first num_inputs
slots; 0 written into the raw variables of invalid slots, before the
wrapper's input normalisation); no code is taken from Salt. The modules
carry Salt's attribute names, so that state_dict() holds the names a Salt
checkpoint of R21Xbb holds: model.tasks.<i>.net.net.<j> (with dropout,
each Linear at 3k+1 after its Dropout) and the norm buffers.

The data, checkpoint and config.yaml are written as salt_twin.py writes
them (its InputNorm, safetensors writer, config skeleton and Lightning loop
state are used).

Usage (Debian's /usr/bin/python3 with python3-torch, -h5py, -yaml):
  r21xbb_twin.py make SPEC.json   train a few steps, write config.yaml, the
                                  checkpoint, the expected evaluation and
                                  one more step
The spec has salt_twin.py's keys and
  r21_max_len   the tracks flattened per jet (data.num_inputs.tracks)
  r21_vars      the track variables flattened
  r21_hidden    the head's hidden_layers
  r21_dropout   the head's dropout
"""
import json
import os
import sys

import h5py
import numpy as np
import torch
import yaml
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import salt_twin as st  # noqa: E402
from lightning_state import fit_state  # noqa: E402


class ClassificationTask(nn.Module):
    def __init__(self, name, n_in, n_out, hidden, dropout):
        super().__init__()
        self.name, self.input_name = name, "jets"
        self.net = st.Dense(n_in, n_out, hidden, "ReLU", dropout=dropout)
        self.loss = nn.CrossEntropyLoss()


class R21Xbb(nn.Module):
    """Every task head reads the flattened [B, L*D] constituents."""

    def __init__(self, tasks):
        super().__init__()
        self.tasks = tasks

    def forward(self, inputs):
        x = torch.flatten(inputs["tracks"], start_dim=1)
        return {t.name: t.net(x) for t in self.tasks}


class Wrapper(nn.Module):
    """Salt's ModelWrapper: attributes model and norm."""

    def __init__(self, s, norm_dict):
        super().__init__()
        n_in = s["r21_max_len"] * len(s["r21_vars"])
        self.model = R21Xbb(nn.ModuleList([
            ClassificationTask("jets_classification", n_in, 4, s["r21_hidden"], s["r21_dropout"])]))
        self.norm = st.InputNorm(norm_dict, {"jets": s["jet_vars"], "tracks": s["r21_vars"]})

    def forward(self, inputs):
        return self.model(self.norm(inputs))


def read(path, s):
    """Salt's dataset: the first num_inputs track slots, the raw variables
    of invalid slots set to 0 (normalisation comes after, in the model)."""
    with h5py.File(path, "r") as f:
        jets, tracks = f["jets"][:], f["tracks"][:, : s["r21_max_len"]]
    x = np.stack([tracks[v].astype(np.float32) for v in s["r21_vars"]], -1)
    x[~tracks["valid"].astype(bool)] = 0
    inputs = {
        "jets": torch.tensor(np.stack([jets[v].astype(np.float32) for v in s["jet_vars"]], -1)),
        "tracks": torch.tensor(x),
    }
    return inputs, torch.tensor(jets["flavour_label"].astype(np.int64))


def salt_config(s):
    """salt_twin's config.yaml with R21Xbb as the model (Baseline_Xbb.yaml's
    form) and num_inputs limiting the tracks."""
    c = st.salt_config(dict(s, out_dim=0, registers=0, task_hidden=s["r21_hidden"]))
    n_in = s["r21_max_len"] * len(s["r21_vars"])
    variables = {"jets": s["jet_vars"], "tracks": s["r21_vars"]}
    c["model"]["model"] = {"class_path": "salt.models.R21Xbb", "init_args": {"tasks": {
        "class_path": "torch.nn.ModuleList", "init_args": {"modules": [
            {"class_path": "salt.models.ClassificationTask", "init_args": {
                "name": "jets_classification", "input_name": "jets", "label": "flavour_label",
                "class_names": ["bjets", "cjets", "ujets", "taujets"], "label_map": None,
                "sample_weight": None, "use_class_dict": False,
                "loss": {"class_path": "torch.nn.CrossEntropyLoss", "init_args": {
                    "weight": None, "size_average": None, "ignore_index": -100, "reduce": None,
                    "reduction": "mean", "label_smoothing": 0.0}},
                "weight": 1.0, "dense_config": {
                    "input_size": n_in, "output_size": 4, "hidden_layers": s["r21_hidden"],
                    "hidden_dim_scale": 2, "activation": "ReLU", "final_activation": None,
                    "dropout": s["r21_dropout"], "bias": True, "context_size": 0, "mup": False}}}]}}}}
    c["model"]["norm_config"]["variables"] = variables
    c["model"]["name"] = c["name"] = "R21Xbb"
    c["data"]["variables"] = variables
    c["data"]["num_inputs"] = {"tracks": s["r21_max_len"]}
    c["data"]["labels"] = {"jets": ["flavour_label"]}
    return c


def make(s):
    """Train s["steps"] steps (one batch per epoch), write config.yaml and
    the checkpoint Lightning writes at the end of that epoch, then the
    evaluation of the checkpoint on the test file (eval/jets_classification,
    the class probabilities) and every parameter before and after one more
    step (step/before/<name>, step/after/<name>; PyTorch's dropout draws
    where the head has dropout)."""
    torch.manual_seed(s["seed"])
    with open(s["norm_dict"]) as f:
        model = Wrapper(s, yaml.safe_load(f))
    opt = torch.optim.AdamW(model.parameters(), lr=s["lr"][0], weight_decay=1e-5)
    sched = st.scheduler(opt, s, s["epochs"])
    inputs, labels = read(s["train"], s)

    def step():
        opt.zero_grad()
        out = model(inputs)
        sum(t.loss(out[t.name], labels) for t in model.model.tasks).backward()
        opt.step()
        sched.step()

    for _ in range(s["steps"]):
        step()
    ckpt = fit_state(batches=1, epochs=s["epochs"], hook="on_validation_end", epoch=s["steps"] - 1)
    ckpt.update({
        "pytorch-lightning_version": "2.4.0", "state_dict": model.state_dict(),
        "callbacks": {"Checkpoint{'monitor': None}": {"best_model_score": None, "dirpath": "logs/R21Xbb_twin/ckpts"}},
        "optimizer_states": [opt.state_dict()], "lr_schedulers": [sched.state_dict()],
        "hparams_name": "kwargs", "hyper_parameters": {"name": "R21Xbb", "global_object": "jets",
                                                       "lrs_config": {"initial": s["lr"][0]}, "device": torch.device("cpu"),
                                                       "dtype": torch.float32},
    })
    torch.save(ckpt, s["ckpt"])
    with open(s["config_yaml"], "w") as f:
        yaml.dump(salt_config(s), f, Dumper=st.NoAliases, sort_keys=False)
    expected = {}
    model.eval()
    with torch.no_grad():
        tin, _ = read(s["test"], s)
        expected["eval/jets_classification"] = model(tin)["jets_classification"].softmax(-1).numpy()
    model.train()
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    g = opt.param_groups[0]
    expected["step/lr"], expected["step/beta1"] = np.array(g["lr"]), np.array(g["betas"][0])
    step()
    for k, v in model.named_parameters():
        expected["step/before/" + k] = before[k].numpy()
        expected["step/after/" + k] = v.detach().numpy()
    st.write_safetensors(s["expected"], expected)


if __name__ == "__main__":
    torch.set_num_threads(1)
    mode, spec = sys.argv[1], json.loads(open(sys.argv[2]).read())
    {"make": make}[mode](spec)

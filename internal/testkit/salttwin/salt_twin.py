"""An independent PyTorch implementation of Salt's GN2, for salt-ort's tests.

Written for salt-ort from a reading of Salt's modules (salt/models/dense.py,
initnet.py, attention.py, transformer.py, pooling.py, task.py, inputnorm.py,
layernorm.py and salt/modelwrapper.py); no code is taken from Salt. The
modules carry Salt's attribute names, so that state_dict() gives the tensor
names a Salt checkpoint holds, and the training step is Salt's: the sum of
the weighted task losses, AdamW and OneCycleLR with cycle_momentum.

Usage (Debian's /usr/bin/python3 with python3-torch, -h5py, -yaml):
  salt_twin.py make SPEC.json   train a few steps, write config.yaml, a
                                Lightning-style checkpoint and the expected
                                outputs (see make())
  salt_twin.py count SPEC.json  print the number of parameters
  salt_twin.py config SPEC.json print the config.yaml alone
"""
import json
import struct
import sys

import h5py
import numpy as np
import torch
import yaml
from torch import nn

from lightning_state import fit_state


# ---------------------------------------------------------------- modules


class Dense(nn.Module):
    """Salt's Dense: Linear layers in nn.Sequential `net`, each after a
    Dropout when dropout is set, the activation between them and none
    after the last; a context vector is attached in front of the input."""

    def __init__(self, input_size, output_size, hidden_layers, activation, context_size=0, final_activation=None,
                 dropout=0.0):
        super().__init__()
        self.context_size = context_size
        sizes = [input_size + context_size, *hidden_layers, output_size]
        layers = []
        for i in range(len(sizes) - 1):
            if dropout:
                layers.append(nn.Dropout(dropout))
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(getattr(nn, activation)())
        if final_activation:
            layers.append(getattr(nn, final_activation)())
        self.net = nn.Sequential(*layers)

    def forward(self, x, context=None):
        if self.context_size:
            while context.dim() < x.dim():
                context = context.unsqueeze(1)
            x = torch.cat([context.expand(*x.shape[:-1], -1), x], dim=-1)
        return self.net(x)


class Featurewise(nn.Module):
    """Salt's FeaturewiseTransformation: features times scale_net(p) plus
    bias_net(p) for the parameters p, then an affine LayerNorm if norm."""

    def __init__(self, n_params, width, f):
        super().__init__()
        self.scale_net = self.bias_net = self.norm = None
        for key in ("scale", "bias"):
            if f.get(key):
                d = f[key]
                setattr(self, key + "_net", Dense(n_params, width, d["hidden"], "ReLU", final_activation=d.get("final")))
        if f.get("norm"):
            self.norm = nn.LayerNorm(width)

    def forward(self, p, x):
        if self.scale_net is not None:
            x = self.scale_net(p).unsqueeze(1) * x
        if self.bias_net is not None:
            x = x + self.bias_net(p).unsqueeze(1)
        if self.norm is not None:
            x = self.norm(x)
        return x


def featurewise_of(s, layer):
    for f in s.get("featurewise") or []:
        if f["layer"] == layer:
            return f
    return None


class InitNet(nn.Module):
    def __init__(self, input_name, n_vars, n_global, embed, hidden, activation, featurewise=None):
        super().__init__()
        self.input_name = input_name
        self.net = Dense(n_vars + n_global, embed, hidden, activation)
        self.featurewise = featurewise

    def forward(self, inputs, global_object):
        x = inputs[self.input_name]
        g = inputs[global_object].unsqueeze(1).expand(-1, x.shape[1], -1)
        x = torch.cat([g, x], dim=-1)
        if self.featurewise is not None:
            x = self.featurewise(inputs["parameters"], x)
        return self.net(x)


def plain_norm(dim):
    # Salt's LayerNorm: no learnable scale or shift.
    return nn.LayerNorm(dim, elementwise_affine=False)


class Attention(nn.Module):
    """Salt's Attention, or with edge_dim its EdgeAttention: a score bias
    (linear_e) and a gate on the weights (linear_g) per head from each
    edge, and with update_edges the edges remade from the scores before
    masking (linear_e_out)."""

    def __init__(self, embed_dim, num_heads, edge_dim=0, update_edges=False):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.edge_dim, self.update_edges = edge_dim, update_edges
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim))
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        if edge_dim:
            self.linear_e = nn.Linear(edge_dim, num_heads)
            self.linear_g = nn.Linear(edge_dim, num_heads)
            if update_edges:
                self.linear_e_out = nn.Linear(num_heads, edge_dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.in_proj_bias)

    def forward(self, x, pad, edge=None):
        b, n, d = x.shape
        q, k, v = torch.nn.functional.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, -1)
        split = lambda t: t.reshape(b, n, self.num_heads, self.head_dim).transpose(1, 2)
        q, k, v = split(q), split(k), split(v)
        scores = q @ k.transpose(-1, -2) / self.head_dim ** 0.5
        gate = None
        if edge is not None:
            scores = scores + self.linear_e(edge).permute(0, 3, 1, 2)
            gate = torch.sigmoid(self.linear_g(edge)).permute(0, 3, 1, 2)
            if self.update_edges:
                edge = self.linear_e_out(scores.permute(0, 2, 3, 1))
        # padded constituents send nothing; every position receives
        scores = scores.masked_fill(pad[:, None, None, :], float("-inf"))
        w = scores.softmax(-1)
        if gate is not None:
            w = w * gate
        out = (w @ v).transpose(1, 2).reshape(b, n, d)
        if edge is not None:
            return self.out_proj(out), edge
        return self.out_proj(out)


class GLU(nn.Module):
    def __init__(self, embed_dim, hidden_dim, activation):
        super().__init__()
        self.in_proj = nn.Linear(embed_dim, hidden_dim)
        self.out_proj = nn.Linear(hidden_dim, embed_dim)
        self.activation = getattr(nn, activation)()

    def forward(self, x):
        return self.out_proj(self.activation(self.in_proj(x)))


class PreNorm(nn.Module):
    """Salt's NormResidual with norm_type "pre": x + fn(norm(x))."""

    def __init__(self, fn, dim):
        super().__init__()
        self.fn = fn
        self.norm = plain_norm(dim)

    def forward(self, x, *args):
        y = self.fn(self.norm(x), *args)
        if isinstance(y, tuple):  # edge attention: (output, edges)
            return x + y[0], y[1]
        return x + y


class EncoderLayer(nn.Module):
    def __init__(self, embed_dim, num_heads, hidden_dim, activation, edge_dim=0, update_edges=False):
        super().__init__()
        self.update_edges = update_edges
        if edge_dim:
            # Salt makes an edge_prenorm it never applies (no parameters
            # with LayerNorm), and the edge_postnorm of update_edges.
            self.edge_prenorm = plain_norm(edge_dim)
            if update_edges:
                self.edge_postnorm = plain_norm(edge_dim)
        self.attn = PreNorm(Attention(embed_dim, num_heads, edge_dim, update_edges), embed_dim)
        self.dense = PreNorm(GLU(embed_dim, hidden_dim, activation), embed_dim)

    def forward(self, x, pad, edge=None):
        if edge is None:
            return self.dense(self.attn(x, pad))
        x, edge = self.attn(x, pad, edge)
        if self.update_edges:
            edge = edge + self.edge_postnorm(edge)
        return self.dense(x), edge


class Transformer(nn.Module):
    def __init__(self, num_layers, embed_dim, out_dim, num_heads, activation, num_registers, edge_dim=0, update_edges=False):
        super().__init__()
        self.layers = nn.ModuleList(
            [EncoderLayer(embed_dim, num_heads, 2 * embed_dim, activation, edge_dim, update_edges) for _ in range(num_layers)])
        self.out_proj = nn.Linear(embed_dim, out_dim)
        self.out_norm = plain_norm(out_dim)
        self.registers = nn.Parameter(torch.randn(num_registers, embed_dim) * 1e-4)
        self.register_buffer("register_mask", torch.zeros(num_registers, dtype=torch.bool))
        self.featurewise = nn.ModuleList()  # SaltModel fills it, a net per layer

    def forward(self, x, pad, edge=None, params=None):
        b = x.shape[0]
        x = torch.cat([x, self.registers.expand(b, -1, -1)], dim=1)
        pad = torch.cat([pad, self.register_mask.expand(b, -1)], dim=1)
        if edge is not None:
            # zero edges to and from the registers
            r = x.shape[1] - edge.shape[1]
            edge = torch.nn.functional.pad(edge, (0, 0, 0, r, 0, r))
        for i, layer in enumerate(self.layers):
            if len(self.featurewise):
                x = self.featurewise[i](params, x)
            if edge is None:
                x = layer(x, pad)
            else:
                x, edge = layer(x, pad, edge)
        # project to out_dim, then normalise there
        return self.out_norm(self.out_proj(x)), pad


class GlobalAttentionPooling(nn.Module):
    def __init__(self, input_size):
        super().__init__()
        self.gate_nn = nn.Linear(input_size, 1)

    def forward(self, x, pad):
        w = self.gate_nn(x).squeeze(-1).masked_fill(pad, float("-inf")).softmax(-1)
        return (w.unsqueeze(-1) * x).sum(1)


class ClassificationTask(nn.Module):
    def __init__(self, name, input_name, label, weight, n_in, n_out, hidden, activation, context, class_weights):
        super().__init__()
        self.name, self.input_name, self.label, self.weight = name, input_name, label, weight
        self.net = Dense(n_in, n_out, hidden, activation, context)
        w = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        self.loss = nn.CrossEntropyLoss(weight=w, ignore_index=-1)


class VertexingTask(nn.Module):
    def __init__(self, name, input_name, label, weight, n_in, hidden, activation, context):
        super().__init__()
        self.name, self.input_name, self.label, self.weight = name, input_name, label, weight
        self.net = Dense(2 * n_in, 1, hidden, activation, context)
        self.loss = nn.BCEWithLogitsLoss(reduction="none")


class SaltModel(nn.Module):
    def __init__(self, s):
        super().__init__()
        nj, nt, e, o = len(s["jet_vars"]), len(s["track_vars"]), s["embed"], s["out_dim"]
        npar = len(s.get("parameters") or {})
        # Salt makes the global featurewise net first.
        if f := featurewise_of(s, "global"):
            self.featurewise_global = Featurewise(npar, o, f)
        f = featurewise_of(s, "input")
        fin = Featurewise(npar, nj + nt, f) if f else None
        self.init_nets = nn.ModuleList([InitNet("tracks", nt, nj, e, s["init_hidden"], "ReLU", fin)])
        ed = s.get("edges")
        if ed:
            # Salt's InitNet over the edge features, attach_global false.
            net = nn.Module()
            net.net = Dense(len(ed["features"]), ed["dim"], ed["hidden"], "ReLU")
            self.edge_init_nets = nn.ModuleList([net])
        th = s["task_hidden"]
        self.tasks = nn.ModuleList([
            ClassificationTask("jets_classification", "jets", "flavour_label", 1.0, o, 4, th, "ReLU", 0, s["jet_class_weights"]),
            ClassificationTask("track_origin", "tracks", "ftagTruthOriginLabel", 0.5, o, 8, th, "ReLU", o, s["origin_class_weights"]),
            VertexingTask("track_vertexing", "tracks", "ftagTruthVertexIndex", 1.5, o, th, "ReLU", o),
        ])
        self.encoder = Transformer(s["layers"], e, o, s["heads"], "ReLU", s["registers"],
                                   ed["dim"] if ed else 0, ed["update"] if ed else False)
        if f := featurewise_of(s, "encoder"):
            for _ in range(s["layers"]):
                self.encoder.featurewise.append(Featurewise(npar, e, f))
        self.pool_net = GlobalAttentionPooling(o)

    def forward(self, inputs, pad, edge=None):
        x = self.init_nets[0](inputs, "jets")
        if edge is None and "parameters" not in inputs:
            enc, full_pad = self.encoder(x, pad)
        else:
            if edge is not None:
                edge = self.edge_init_nets[0].net(edge)
            enc, full_pad = self.encoder(x, pad, edge, inputs.get("parameters"))
        if hasattr(self, "featurewise_global"):
            enc = self.featurewise_global(inputs["parameters"], enc)
        g = self.pool_net(enc, full_pad)
        t = x.shape[1]
        tracks = enc[:, :t]
        jet, origin, vertex = self.tasks
        out = {"jets": jet.net(g), "origin": origin.net(tracks, g)}
        xi = tracks.unsqueeze(2).expand(-1, -1, t, -1)
        xj = tracks.unsqueeze(1).expand(-1, t, -1, -1)
        out["vertex"] = vertex.net(torch.cat([xi, xj], -1), g.unsqueeze(1)).squeeze(-1)
        return out


class InputNorm(nn.Module):
    def __init__(self, norm_dict, variables):
        super().__init__()
        self.variables = variables
        for k, vs in variables.items():
            self.register_buffer(f"{k}_means", torch.as_tensor([norm_dict[k][v]["mean"] for v in vs], dtype=torch.float32))
            self.register_buffer(f"{k}_stds", torch.as_tensor([norm_dict[k][v]["std"] for v in vs], dtype=torch.float32))

    def forward(self, inputs):
        # the parameters are read raw, as Salt's InputNorm leaves them
        return {k: x if k == "parameters" or k.startswith("_") else (x - getattr(self, f"{k}_means")) / getattr(self, f"{k}_stds")
                for k, x in inputs.items()}


def edge_features(x, idx, features):
    """Salt's calculate_edge_features for dR and isSelfLoop: one column per
    feature, pair (i, j) in row i and column j, non-finite values zeroed."""
    b, n, _ = x.shape
    cols = []
    for f in features:
        if f == "dR":
            phi, eta = x[:, :, idx["phi"]], x[:, :, idx["eta"]]
            dphi = phi.unsqueeze(1) - phi.unsqueeze(2)
            dphi = dphi - (dphi > np.pi).float() * 2 * np.pi
            deta = eta.unsqueeze(1) - eta.unsqueeze(2)
            cols.append(torch.log(torch.sqrt(deta ** 2 + dphi ** 2)))
        elif f == "isSelfLoop":
            cols.append(torch.eye(n).expand(b, -1, -1))
        else:
            raise ValueError(f"the twin computes dR and isSelfLoop, not {f}")
    return torch.nan_to_num(torch.stack(cols, -1), nan=0.0, posinf=0.0, neginf=0.0)


class Wrapper(nn.Module):
    """Salt's ModelWrapper: attributes model and norm."""

    def __init__(self, s, norm_dict):
        super().__init__()
        self.spec = s
        self.model = SaltModel(s)
        groups = {"jets": s["jet_vars"], "tracks": s["track_vars"]}
        if s.get("flow_vars"):
            groups["flows"] = s["flow_vars"]
        self.norm = InputNorm(norm_dict, groups)

    def forward(self, inputs, pad):
        # Salt's EdgeConstructor works on the raw variables, before the
        # normalisation.
        edge = None
        ed = self.spec.get("edges")
        if ed:
            v = self.spec["track_vars"]
            edge = edge_features(inputs["tracks"], {k: v.index(n) for k, n in ed["vars"].items()}, ed["features"])
        return self.model(self.norm(inputs), pad, edge)


# ------------------------------------------------------------------ losses


def losses(model, out, batch):
    jet, origin, vertex = model.model.tasks
    pad = batch["pad"]
    valid = ~pad
    l_jet = jet.loss(out["jets"], batch["flavour_label"])
    ol = batch["ftagTruthOriginLabel"].masked_fill(pad | (batch["ftagTruthOriginLabel"] < 0), -1)
    l_origin = origin.loss(out["origin"].permute(0, 2, 1), ol)
    # vertexing: every ordered pair of distinct valid tracks
    t = pad.shape[1]
    pairs = valid.unsqueeze(2) & valid.unsqueeze(1) & ~torch.eye(t, dtype=torch.bool)
    vi = batch["ftagTruthVertexIndex"]
    same = (vi.unsqueeze(2) == vi.unsqueeze(1)) & (vi >= 0).unsqueeze(2) & (vi >= 0).unsqueeze(1)
    o = batch["ftagTruthOriginLabel"]
    heavy = (o == 3) | (o == 4) | (o == 5)
    fake = o == 1
    flagged = heavy | fake
    both_fake = fake.unsqueeze(2) & fake.unsqueeze(1)
    heavy_pair = (heavy.unsqueeze(2) | heavy.unsqueeze(1)) & flagged.unsqueeze(2) & flagged.unsqueeze(1)
    w = torch.ones_like(out["vertex"])
    w = torch.where(heavy_pair, torch.full_like(w, 2.0), w)
    w = torch.where(both_fake, torch.zeros_like(w), w)
    bce = vertex.loss(out["vertex"][pairs], same[pairs].float())
    l_vertex = (bce * w[pairs]).sum() / same[pairs].float().sum()
    per = {"jets_classification": l_jet, "track_origin": l_origin, "track_vertexing": l_vertex}
    total = sum(task.weight * per[task.name] for task in model.model.tasks)
    return total, per


# -------------------------------------------------------------------- data


def read(path, s, stage="fit"):
    with h5py.File(path, "r") as f:
        jets, tracks = f["jets"][:], f["tracks"][:]
        flows = f["flows"][:] if s.get("flow_vars") else None
    inputs = {
        "jets": torch.tensor(np.stack([jets[v].astype(np.float32) for v in s["jet_vars"]], -1)),
        "tracks": torch.tensor(np.stack([tracks[v].astype(np.float32) for v in s["track_vars"]], -1)),
    }
    if flows is not None:
        # a second constituent group; its padding rides along under a key
        # InputNorm leaves alone, as Salt's leaves "_" keys
        inputs["flows"] = torch.tensor(np.stack([flows[v].astype(np.float32) for v in s["flow_vars"]], -1))
        inputs["_flows_pad"] = ~torch.tensor(flows["valid"].astype(bool))
    if s.get("parameters"):
        # Salt's dataset: in fit, a value outside the training list is drawn
        # from it; in test, every jet gets the test value.
        rng = np.random.default_rng(s["seed"])
        cols = []
        for name, p in s["parameters"].items():
            v = jets[name].astype(np.float32)
            if stage == "fit":
                bad = ~np.isin(v, p["train"])
                v[bad] = rng.choice(p["train"], size=int(bad.sum()))
            else:
                v = np.full_like(v, p["test"])
            cols.append(v)
        inputs["parameters"] = torch.tensor(np.stack(cols, -1))
    valid = torch.tensor(tracks["valid"].astype(bool))
    batch = {
        "pad": ~valid,
        "flavour_label": torch.tensor(jets["flavour_label"].astype(np.int64)),
        "ftagTruthOriginLabel": torch.tensor(tracks["ftagTruthOriginLabel"].astype(np.int64)),
        "ftagTruthVertexIndex": torch.tensor(tracks["ftagTruthVertexIndex"].astype(np.int64)),
    }
    return inputs, batch


def write_safetensors(path, tensors):
    header, blobs, pos = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [pos, pos + len(b)]}
        blobs.append(b)
        pos += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# ----------------------------------------------------------------- config


def edge_constructors(s):
    ed = s.get("edges")
    if not ed:
        return None
    v = s["track_vars"]
    return [{"input_name": "tracks", "edge_features": ed["features"],
             "indices_map": {k: v.index(n) for k, n in ed["vars"].items()}}]


def edge_init_nets(s):
    ed = s.get("edges")
    if not ed:
        return None
    return [{"input_name": "_edge_features_tracks", "attach_global": False, "global_object": "jets",
             "dense_config": {"output_size": ed["dim"], "hidden_layers": ed["hidden"], "activation": "ReLU"}}]


def featurewise_nets(s):
    if not s.get("featurewise"):
        return None
    widths = {"input": len(s["jet_vars"]) + len(s["track_vars"]), "encoder": s["embed"], "global": s["out_dim"]}
    out = []
    for f in s["featurewise"]:
        n = {"layer": f["layer"], "apply_norm": bool(f.get("norm"))}
        for key in ("scale", "bias"):
            if f.get(key):
                n["dense_config_" + key] = {"output_size": widths[f["layer"]], "hidden_layers": f[key]["hidden"],
                                            "activation": "ReLU", "final_activation": f[key].get("final")}
        out.append(n)
    return out


def salt_config(s):
    """The config.yaml Salt's SaveConfigCallback writes (LightningCLI's full
    configuration, nulls included) for the twin."""
    o, th = s["out_dim"], s["task_hidden"]
    dense = lambda n_in, n_out, ctx: {
        "input_size": n_in, "output_size": n_out, "hidden_layers": th, "hidden_dim_scale": 2,
        "activation": "ReLU", "final_activation": None, "dropout": 0.0, "bias": True,
        "context_size": ctx, "mup": False}
    ce = lambda w: {"class_path": "torch.nn.CrossEntropyLoss", "init_args": {
        "weight": w, "size_average": None, "ignore_index": -100, "reduce": None,
        "reduction": "mean", "label_smoothing": 0.0}}
    variables = {"jets": s["jet_vars"], "tracks": s["track_vars"]}
    if s.get("flow_vars"):
        variables["flows"] = s["flow_vars"]
    if s.get("parameters"):
        variables["parameters"] = list(s["parameters"])
    return {
        "seed_everything": 42,
        "trainer": {
            "accelerator": "cpu", "strategy": "auto", "devices": 1, "num_nodes": 1, "precision": "32-true",
            "logger": {"class_path": "lightning.pytorch.loggers.CometLogger", "init_args": {"project": "salt", "online": False}},
            "callbacks": [
                {"class_path": "salt.callbacks.Checkpoint", "init_args": {"monitor_loss": "val/loss", "fname_string": "val_loss"}},
                {"class_path": "salt.callbacks.PredictionWriter", "init_args": {"write_tracks": False}},
                {"class_path": "lightning.pytorch.callbacks.LearningRateMonitor", "init_args": {"logging_interval": None}},
            ],
            "fast_dev_run": False, "max_epochs": s["epochs"], "min_epochs": None, "max_steps": -1, "min_steps": None,
            "max_time": None, "limit_train_batches": None, "limit_val_batches": None, "limit_test_batches": None,
            "limit_predict_batches": None, "overfit_batches": 0.0, "val_check_interval": None,
            "check_val_every_n_epoch": 1, "num_sanity_val_steps": None, "log_every_n_steps": 1,
            "enable_checkpointing": None, "enable_progress_bar": None, "enable_model_summary": None,
            "accumulate_grad_batches": 1, "gradient_clip_val": None, "gradient_clip_algorithm": None,
            "deterministic": None, "benchmark": None, "inference_mode": True, "use_distributed_sampler": True,
            "profiler": None, "detect_anomaly": False, "barebones": False, "plugins": None,
            "sync_batchnorm": False, "reload_dataloaders_every_n_epochs": 0, "default_root_dir": "logs/GN2_twin",
        },
        "model": {
            "model": {"class_path": "salt.models.SaltModel", "init_args": {
                "init_nets": [{"input_name": g, "dense_config": {
                    "output_size": s["embed"], "hidden_layers": s["init_hidden"], "activation": "ReLU"},
                    "variables": variables, "global_object": "jets"} for g in ["tracks", "flows"] if g in variables],
                "tasks": {"class_path": "torch.nn.ModuleList", "init_args": {"modules": [
                    {"class_path": "salt.models.ClassificationTask", "init_args": {
                        "name": "jets_classification", "input_name": "jets", "label": "flavour_label",
                        "class_names": ["bjets", "cjets", "ujets", "taujets"], "label_map": None,
                        "sample_weight": None, "use_class_dict": True, "loss": ce(s["jet_class_weights"]),
                        "weight": 1.0, "dense_config": dense(o, 4, 0)}},
                    {"class_path": "salt.models.ClassificationTask", "init_args": {
                        "name": "track_origin", "input_name": "tracks", "label": "ftagTruthOriginLabel",
                        "class_names": None, "label_map": None, "sample_weight": None, "use_class_dict": True,
                        "loss": ce(s["origin_class_weights"]), "weight": 0.5, "dense_config": dense(o, 8, o)}},
                    {"class_path": "salt.models.VertexingTask", "init_args": {
                        "name": "track_vertexing", "input_name": "tracks", "label": "ftagTruthVertexIndex",
                        "loss": {"class_path": "torch.nn.BCEWithLogitsLoss", "init_args": {
                            "weight": None, "size_average": None, "reduce": None, "reduction": "none", "pos_weight": None}},
                        "weight": 1.5, "dense_config": dense(2 * o, 1, o)}},
                ]}},
                "edge_init_nets": edge_init_nets(s),
                "encoder": {"class_path": "salt.models.Transformer", "init_args": {
                    "num_layers": s["layers"], "embed_dim": s["embed"], "out_dim": o, "norm": "LayerNorm",
                    "attn_type": "flash-varlen", "do_final_norm": True, "num_registers": s["registers"],
                    "drop_registers": False, "edge_embed_dim": s["edges"]["dim"] if s.get("edges") else 0,
                    "update_edges": bool(s.get("edges") and s["edges"]["update"]), "mup": False,
                    "dense_kwargs": {"activation": "ReLU", "gated": False},
                    "attn_kwargs": {"num_heads": s["heads"]}}},
                "mask_decoder": None,
                "pool_net": {"class_path": "salt.models.GlobalAttentionPooling", "init_args": {"input_size": o}},
                "merge_dict": None, "featurewise_nets": featurewise_nets(s),
            }},
            "lrs_config": {"initial": s["lr"][0], "max": s["lr"][1], "end": s["lr"][2], "pct_start": s["pct_start"],
                           "weight_decay": 1e-5, "last_epoch": -1},
            "global_object": "jets",
            "norm_config": {"norm_dict": s["norm_dict"], "variables": variables, "global_object": "jets", "input_map": None},
            "name": "GN2", "mup_config": None, "loss_mode": "wsum", "optimizer": "AdamW", "edge_constructors": edge_constructors(s),
        },
        "data": {
            "variables": variables, "train_file": s["train"], "val_file": s["val"], "test_file": s["test"],
            "batch_size": s["batch"], "num_workers": 2, "num_train": -1, "num_val": -1, "num_test": -1,
            "move_files_temp": None, "class_dict": s["class_dict"], "train_vds_path": None, "val_vds_path": None,
            "test_vds_path": None, "test_suff": None, "pin_memory": True, "persistent_workers": True,
            "prefetch_factor": 2, "multiprocessing_context": None, "config_s3": None, "edge_constructors": edge_constructors(s),
            "norm_dict": s["norm_dict"], "global_object": "jets", "input_map": None, "num_inputs": None,
            "non_finite_to_num": False, "selections": None, "labeller_config": None, "mf_config": None,
            "labels": {"jets": ["flavour_label"], "tracks": ["ftagTruthOriginLabel", "ftagTruthVertexIndex"]},
            "parameters": s.get("parameters"), "ignore_finite_checks": False, "recover_malformed": False, "transforms": None,
            "multi_target": None,
        },
        "name": "GN2", "force": False, "tag": False, "compile": False, "overwrite_config": False,
        "log_suffix": None, "ckpt_path": None,
    }


class NoAliases(yaml.SafeDumper):
    """Writes shared lists in full each time, as Salt's config.yaml has them."""

    def ignore_aliases(self, data):
        return True


# ------------------------------------------------------------------- main


def build(s):
    torch.manual_seed(s["seed"])
    with open(s["norm_dict"]) as f:
        norm_dict = yaml.safe_load(f)
    return Wrapper(s, norm_dict)


def scheduler(opt, s, total):
    return torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=s["lr"][1], total_steps=total, div_factor=s["lr"][1] / s["lr"][0],
        final_div_factor=s["lr"][0] / s["lr"][2], pct_start=s["pct_start"], cycle_momentum=True)


def make(s):
    """Train s["steps"] steps on the training file (one batch per epoch, as
    the Go test configures salt-ort), write config.yaml and the checkpoint
    Lightning would write at the end of that epoch, then the expected
    outputs: the evaluation of that checkpoint on the test file, and the
    parameters after one more training step."""
    model = build(s)
    opt = torch.optim.AdamW(model.parameters(), lr=s["lr"][0], weight_decay=1e-5)
    sched = scheduler(opt, s, s["epochs"])
    inputs, batch = read(s["train"], s)

    def step():
        opt.zero_grad()
        total, _ = losses(model, model(inputs, batch["pad"]), batch)
        total.backward()
        opt.step()
        sched.step()

    for _ in range(s["steps"]):
        step()
    # Salt's Checkpoint callback writes at the end of each epoch's
    # validation; one batch per epoch.
    ckpt = fit_state(batches=1, epochs=s["epochs"], hook="on_validation_end", epoch=s["steps"] - 1)
    assert (ckpt["epoch"], ckpt["global_step"]) == (s["steps"] - 1, s["steps"])
    ckpt.update({
        "pytorch-lightning_version": "2.4.0", "state_dict": model.state_dict(),
        "callbacks": {"Checkpoint{'monitor': None}": {"best_model_score": None, "dirpath": "logs/GN2_twin/ckpts"}},
        "optimizer_states": [opt.state_dict()], "lr_schedulers": [sched.state_dict()],
        "hparams_name": "kwargs", "hyper_parameters": {"name": "GN2", "global_object": "jets",
                                                       "lrs_config": {"initial": s["lr"][0]}, "device": torch.device("cpu"),
                                                       "dtype": torch.float32},
    })
    torch.save(ckpt, s["ckpt"])
    with open(s["config_yaml"], "w") as f:
        yaml.dump(salt_config(s), f, Dumper=NoAliases, sort_keys=False)

    expected = {}
    model.eval()
    with torch.no_grad():
        tin, tb = read(s["test"], s, "test")
        out = model(tin, tb["pad"])
        expected["eval/jets_classification"] = out["jets"].softmax(-1).numpy()
        expected["eval/track_origin"] = out["origin"].softmax(-1).numpy()
        expected["eval/track_vertexing"] = out["vertex"].sigmoid().numpy()
    model.train()
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    g = opt.param_groups[0]
    expected["step/lr"] = np.array(g["lr"])
    expected["step/beta1"] = np.array(g["betas"][0])
    step()
    for k, v in model.named_parameters():
        expected["step/before/" + k] = before[k].numpy()
        expected["step/after/" + k] = v.detach().numpy()
    write_safetensors(s["expected"], expected)


def count(s):
    """Print the parameter count of the twin with the sizes of s (the input
    normalisation has buffers only)."""
    s = dict(s, jet_class_weights=None, origin_class_weights=None)
    print(sum(p.numel() for p in SaltModel(s).parameters()))


def config(s):
    yaml.dump(salt_config(s), sys.stdout, Dumper=NoAliases, sort_keys=False)


if __name__ == "__main__":
    torch.set_num_threads(1)
    mode, spec = sys.argv[1], json.loads(open(sys.argv[2]).read())
    {"make": make, "count": count, "config": config}[mode](spec)

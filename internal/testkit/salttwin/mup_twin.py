"""salt_twin.py's GN2 in Salt's μP parametrisation, for salt-ort's tests of
the μP keys (mup on the init net and the encoder, model.mup_config).

An independent PyTorch implementation, written for salt-ort from a reading
of Salt's Attention (mup: scores scaled by 1/head_dim, μP initialisation),
GLU and Dense (μP initialisation), Transformer (the out_dim projection a
MuReadout, zeroed), ModelWrapper (instantiate_mup; MuAdamW for AdamW) and
utils/muP_utils (base shapes from a base and a delta model), and of the mup
package's documented semantics: MuReadout multiplies its input by
output_mult / width_mult; MuAdamW groups the parameters with two "infinite"
dimensions (those that differ between the base and the delta model) by
their width multiplier (fan-in over its base), dividing the group's lr and
multiplying its weight_decay by it. No code is taken from Salt or mup.

Everything else (data, losses, the OneCycleLR schedule, which then sets
every group's lr alike, the checkpoint, config.yaml) is salt_twin.py's:
this script changes the model and the optimizer, then runs its make mode.

Usage (Debian's /usr/bin/python3 with python3-torch, -h5py, -yaml):
  mup_twin.py make SPEC.json   as salt_twin.py make
The spec has salt_twin.py's keys and
  mup_base, mup_delta   the embedding widths of the base and delta models
  weight_decay          AdamW's weight decay (lrs_config.weight_decay), in
                        place of salt_twin's 1e-5: large enough that
                        MuAdamW's scaling of it shows in one step
"""
import json
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import salt_twin as st  # noqa: E402


class MuAttention(st.Attention):
    """Salt's Attention with mup: scores scaled by 1/head_dim."""

    def forward(self, x, pad):
        b, n, d = x.shape
        q, k, v = torch.nn.functional.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, -1)
        split = lambda t: t.reshape(b, n, self.num_heads, self.head_dim).transpose(1, 2)
        q, k, v = split(q), split(k), split(v)
        scores = (q @ k.transpose(-1, -2)) * (1.0 / self.head_dim)
        scores = scores.masked_fill(pad[:, None, None, :], float("-inf"))
        out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d)
        return self.out_proj(out)


class MuReadout(nn.Linear):
    """mup's MuReadout: Linear(x * output_mult / width_mult)."""

    def forward(self, x):
        return super().forward(x * self.output_mult / self.width_mult)


def mu_init(model, embed):
    """Salt's μP initialisation of the init net's Dense, the attention, the
    feed-forward blocks and the readout."""
    with torch.no_grad():
        for layer in model.init_nets[0].net.net:
            if isinstance(layer, nn.Linear):
                nn.init.normal_(layer.weight, std=1.0 / layer.weight.shape[0] ** 0.5)
                nn.init.zeros_(layer.bias)
        for layer in model.encoder.layers:
            a = layer.attn.fn
            nn.init.normal_(a.in_proj_weight, std=1.0 / a.head_dim ** 0.5)
            a.in_proj_weight[:embed].zero_()
            nn.init.normal_(a.out_proj.weight, std=(1.0 / embed) ** 0.5)
            nn.init.zeros_(a.in_proj_bias)
            nn.init.zeros_(a.out_proj.bias)
            for proj in (layer.dense.fn.in_proj, layer.dense.fn.out_proj):
                nn.init.normal_(proj.weight, std=1.0 / proj.weight.shape[0] ** 0.5)
                nn.init.zeros_(proj.bias)
        model.encoder.out_proj.weight.zero_()
        model.encoder.out_proj.bias.zero_()


def width_mults(s, model):
    """mup's base shapes: the dimensions of each parameter that differ
    between the model at the base and at the delta width are infinite; a
    parameter with two is matrix-like, its width multiplier its fan-in's
    (torch's last dimension) size over its base size."""
    spec = dict(s, jet_class_weights=None, origin_class_weights=None)
    base = dict(st.SaltModel(dict(spec, embed=s["mup_base"])).named_parameters())
    delta = dict(st.SaltModel(dict(spec, embed=s["mup_delta"])).named_parameters())
    mults = {}
    for name, p in model.named_parameters():
        inf = [i for i in range(p.dim()) if base[name].shape[i] != delta[name].shape[i]]
        if len(inf) == 2:
            mults[id(p)] = p.shape[inf[-1]] / base[name].shape[inf[-1]]
    return mults


MULTS, SPEC = {}, {}


def build(s):
    w = st_build(s)
    m = w.model
    for layer in m.encoder.layers:
        layer.attn.fn.__class__ = MuAttention
    m.encoder.out_proj.__class__ = MuReadout
    m.encoder.out_proj.output_mult = 1.0
    m.encoder.out_proj.width_mult = s["embed"] / s["mup_base"]
    mu_init(m, s["embed"])
    MULTS.update(width_mults(s, m))
    return w


def mu_adamw(params, lr, weight_decay):
    """MuAdamW: matrix-like parameters grouped by width multiplier w (in the
    order of each group's first parameter), lr / w and weight_decay * w,
    then the others; the weight decay is the spec's (see the usage)."""
    weight_decay = SPEC["weight_decay"]
    groups, vector = {}, []
    for p in params:
        if id(p) in MULTS:
            groups.setdefault(MULTS[id(p)], []).append(p)
        else:
            vector.append(p)
    param_groups = [{"params": ps, "lr": lr / w, "weight_decay": weight_decay * w} for w, ps in groups.items()]
    param_groups.append({"params": vector})
    return ADAMW(param_groups, lr=lr, weight_decay=weight_decay)


def salt_config(s):
    c = st_salt_config(s)
    m = c["model"]
    args = m["model"]["init_args"]
    args["init_nets"][0]["dense_config"]["mup"] = True
    args["encoder"]["init_args"]["mup"] = True
    m["lrs_config"]["weight_decay"] = s["weight_decay"]
    m["mup_config"] = {"shape_path": "./temp_mup", "embed_dim": {
        "apply_to": ["init_nets", "encoder"], "parameter_name": ["output_size", "embed_dim"],
        "parameter_base": s["mup_base"], "parameter_delta": s["mup_delta"]}}
    return c


st_build, st_salt_config, ADAMW = st.build, st.salt_config, torch.optim.AdamW

if __name__ == "__main__":
    torch.set_num_threads(1)
    mode, spec = sys.argv[1], json.loads(open(sys.argv[2]).read())
    SPEC.update(spec)
    # salt_twin's make() builds its model, its optimizer and its
    # config.yaml through these names.
    st.build, st.salt_config = build, salt_config
    torch.optim.AdamW = mu_adamw
    {"make": st.make}[mode](spec)

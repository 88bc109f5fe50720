"""legacy_twin.py's GN2 with Salt's TransformerCrossAttentionEncoder over
tracks and flows, for salt-ort's tests of model.encoder.kind =
"cross_attention".

The encoder is an independent PyTorch implementation, written for salt-ort
from a reading of Salt's TransformerCrossAttentionEncoder and
TransformerCrossAttentionLayer as they were before Salt's commit c93d54f
(which removed them); no code is taken from Salt. Its modules carry Salt's
attribute names and registration order: model.encoder.type_layers.<group>.
<l>.{mha,dense,norm1,norm2}, model.encoder.cross_layers.tracks_flows.<k>.
{mha,dense,norm1,norm2,norm0}, model.encoder.final_norm, final_linear.
Everything else is salt_twin.py's and legacy_twin.py's; the spec has their
keys and flow_vars (the flows' variables), and ca_every_layer.

Usage (Debian's /usr/bin/python3 with python3-torch, -h5py, -yaml):
  ca_twin.py make SPEC.json   as salt_twin.py make
"""
import json
import os
import sys
from itertools import combinations

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import salt_twin as st  # noqa: E402
import legacy_twin as lt  # noqa: E402

GROUPS = ["tracks", "flows"]


def cross_mha(m, q, kv, qpad, kvpad):
    """legacy_twin's MultiheadAttention with queries from q and keys and
    values from kv; a padded query or key masks the pair."""
    b, n, d = q.shape
    split = lambda t: t.view(b, -1, m.num_heads, m.head_dim).transpose(1, 2)
    Q, K, V = split(m.linear_q(q)), split(m.linear_k(kv)), split(m.linear_v(kv))
    mask = qpad.unsqueeze(-1) | kvpad.unsqueeze(-2)
    out = (m.attention(Q, K, m.scale, mask) @ V).transpose(1, 2).reshape(b, n, d)
    return out if m.linear_out is None else m.linear_out(out)


class CrossAttentionLayer(lt.TransformerEncoderLayer):
    """The additive update dense(norm2(mha(norm1(q), norm0(kv))))."""

    def __init__(self, *args):
        super().__init__(*args)
        self.norm0 = nn.LayerNorm(self.norm1.normalized_shape[0])

    def forward(self, q, kv, qpad, kvpad):
        a = cross_mha(self.mha, self.norm1(q), self.norm0(kv), qpad, kvpad)
        return self.dense(self.norm2(a))


class CrossAttentionEncoder(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.num_layers, self.every = s["layers"], s.get("ca_every_layer", False)
        args = (s["embed"], s["heads"], lt.hidden_layers(s), s.get("legacy_activation", "ReLU"),
                s.get("legacy_dropout", 0.0), s.get("legacy_attn_dropout", 0.0), True)
        self.type_layers = nn.ModuleDict({
            g: nn.ModuleList([lt.TransformerEncoderLayer(*args) for _ in range(self.num_layers)]) for g in GROUPS})
        n = self.num_layers if self.every else (2 if self.num_layers > 1 else 1)
        self.cross_layers = nn.ModuleDict({
            f"{a}_{b}": nn.ModuleList([CrossAttentionLayer(*args) for _ in range(n)]) for a, b in combinations(GROUPS, 2)})
        self.final_norm = nn.LayerNorm(s["embed"])
        self.final_linear = nn.Linear(s["embed"], s["out_dim"])

    def forward(self, xs, pads):
        for i in range(self.num_layers):
            for g in GROUPS:
                xs[g] = self.type_layers[g][i](xs[g], pads[g])
            if not self.every and i not in {0, self.num_layers - 1}:
                continue
            k = i if self.every else i // (self.num_layers - 1)
            prev = dict(xs)
            for a, b in combinations(GROUPS, 2):
                layer = self.cross_layers[f"{a}_{b}"][k]
                xs[a] = xs[a] + layer(prev[a], prev[b], pads[a], pads[b])
                xs[b] = xs[b] + layer(prev[b], prev[a], pads[b], pads[a])
        return {g: self.final_linear(self.final_norm(xs[g])) for g in GROUPS}


def ca_model(s):
    m = st.SaltModel(dict(s, registers=1))
    nj, e = len(s["jet_vars"]), s["embed"]
    m.init_nets = nn.ModuleList([
        st.InitNet(g, len(s["track_vars"] if g == "tracks" else s["flow_vars"]), nj, e, s["init_hidden"], "ReLU")
        for g in GROUPS])
    m.encoder = CrossAttentionEncoder(s)
    m.pool_net = lt.GlobalAttentionPooling(s["out_dim"])
    m.forward = lambda inputs, pad, edge=None: forward(m, inputs, pad)
    return m


def forward(m, inputs, pad):
    xs = {g: net(inputs, "jets") for g, net in zip(GROUPS, m.init_nets)}
    pads = {"tracks": pad, "flows": inputs["_flows_pad"]}
    enc = m.encoder(xs, pads)
    g = m.pool_net(torch.cat([enc[k] for k in GROUPS], 1), torch.cat([pads[k] for k in GROUPS], 1))
    tracks = enc["tracks"]
    t = tracks.shape[1]
    jet, origin, vertex = m.tasks
    out = {"jets": jet.net(g), "origin": origin.net(tracks, g)}
    xi = tracks.unsqueeze(2).expand(-1, -1, t, -1)
    xj = tracks.unsqueeze(1).expand(-1, t, -1, -1)
    out["vertex"] = vertex.net(torch.cat([xi, xj], -1), g.unsqueeze(1)).squeeze(-1)
    return out


def build(s):
    w = st_build(dict(s, registers=1))
    w.model = ca_model(s)
    return w


def salt_config(s):
    c = st_salt_config(dict(s, registers=1))
    attention = {"class_path": "salt.models.ScaledDotProductAttention",
                 "init_args": {"dropout": s.get("legacy_attn_dropout", 0.0)}}
    dense = {"hidden_layers": s.get("legacy_hidden"), "hidden_dim_scale": 2,
             "activation": s.get("legacy_activation", "ReLU"), "final_activation": None,
             "dropout": s.get("legacy_dropout", 0.0), "bias": True}
    c["model"]["model"]["init_args"]["encoder"] = {
        "class_path": "salt.models.TransformerCrossAttentionEncoder", "init_args": {
            "input_names": GROUPS, "embed_dim": s["embed"], "num_layers": s["layers"],
            "mha_config": {"num_heads": s["heads"], "attention": attention, "out_proj": True},
            "sa_dense_config": dense, "ca_dense_config": dict(dense), "context_dim": 0,
            "out_dim": s["out_dim"], "ca_every_layer": s.get("ca_every_layer", False),
            "update_edges": False, "mup": False}}
    return c


st_build, st_salt_config = st.build, st.salt_config

if __name__ == "__main__":
    torch.set_num_threads(1)
    mode, spec = sys.argv[1], json.loads(open(sys.argv[2]).read())
    st.build, st.salt_config = build, salt_config
    {"make": st.make}[mode](spec)

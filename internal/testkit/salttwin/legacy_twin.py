"""salt_twin.py's GN2 with Salt's legacy TransformerEncoder, for salt-ort's
tests of model.encoder.kind = "legacy".

The encoder is an independent PyTorch implementation, written for salt-ort
from a reading of Salt's TransformerEncoder, TransformerEncoderLayer,
MultiheadAttention, ScaledDotProductAttention, Dense, GlobalAttentionPooling
and masked_softmax as they were before Salt's commit c93d54f ("Global Salt
refactoring", which removed them); no code is taken from Salt. The modules
carry Salt's attribute names and registration order, so that state_dict()
holds the names a checkpoint of that Salt holds:
model.encoder.layers.<i>.mha.linear_{q,k,v,out}, .dense.net.<j>,
.norm1, .norm2, model.encoder.final_norm, model.encoder.final_linear.

Everything else (init net, tasks, losses, data, checkpoint, config.yaml) is
salt_twin.py's: this script swaps the encoder, the pooling and the
config.yaml's encoder entry, then runs salt_twin.py's modes.

Usage (Debian's /usr/bin/python3 with python3-torch, -h5py, -yaml):
  legacy_twin.py make SPEC.json   as salt_twin.py make
  legacy_twin.py count SPEC.json  as salt_twin.py count
The spec has salt_twin.py's keys (registers is ignored) and
  legacy_hidden      the dense block's hidden_layers (null: Salt's default,
                     2 x embed)
  legacy_dropout     the dense block's dropout (before each Linear)
  legacy_activation  the dense block's activation
  legacy_attn_dropout  ScaledDotProductAttention's dropout on the scores
  legacy_out_proj    mha_config.out_proj (default true): false leaves out
                     linear_out, registered as a None buffer as Salt does
"""
import json
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import salt_twin as st  # noqa: E402


def masked_softmax(x, mask, dim=-1):
    """Salt's masked_softmax: masked entries are -inf before the softmax
    and 0 after it (so a fully masked row is 0, not NaN)."""
    x = x.masked_fill(mask, float("-inf")).softmax(dim)
    return x.masked_fill(mask, 0)


class ScaledDotProductAttention(nn.Module):
    """Dropout on the scaled scores, then the masked softmax."""

    def __init__(self, dropout):
        super().__init__()
        self.dropout = nn.Dropout(dropout)

    def forward(self, q, k, scale, mask):
        scores = self.dropout(q @ k.transpose(-2, -1) / scale)
        return masked_softmax(scores, mask.unsqueeze(1))


class MultiheadAttention(nn.Module):
    def __init__(self, embed_dim, num_heads, attn_dropout, out_proj):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, embed_dim // num_heads
        self.scale = self.head_dim ** 0.5
        # Salt assigns the attention module before the projections.
        self.attention = ScaledDotProductAttention(attn_dropout)
        self.linear_q = nn.Linear(embed_dim, embed_dim)
        self.linear_k = nn.Linear(embed_dim, embed_dim)
        self.linear_v = nn.Linear(embed_dim, embed_dim)
        if out_proj:
            self.linear_out = nn.Linear(embed_dim, embed_dim)
        else:
            self.register_buffer("linear_out", None)

    def forward(self, x, pad):
        b, n, d = x.shape
        split = lambda t: t.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)
        q, k, v = split(self.linear_q(x)), split(self.linear_k(x)), split(self.linear_v(x))
        # a padded query or key masks the pair (Salt's merge_masks)
        mask = pad.unsqueeze(-1) | pad.unsqueeze(-2)
        out = (self.attention(q, k, self.scale, mask) @ v).transpose(1, 2).reshape(b, n, d)
        return out if self.linear_out is None else self.linear_out(out)


class TransformerEncoderLayer(nn.Module):
    def __init__(self, embed_dim, num_heads, hidden, activation, dropout, attn_dropout, out_proj):
        super().__init__()
        self.mha = MultiheadAttention(embed_dim, num_heads, attn_dropout, out_proj)
        # Salt's Dense as the legacy layer configures it: input and output
        # embed_dim.
        self.dense = st.Dense(embed_dim, embed_dim, hidden, activation, dropout=dropout)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.norm2 = nn.LayerNorm(embed_dim)

    def forward(self, x, pad):
        x = x + self.mha(self.norm1(x), pad)
        return x + self.dense(self.norm2(x))


class TransformerEncoder(nn.Module):
    def __init__(self, num_layers, embed_dim, out_dim, num_heads, hidden, activation, dropout, attn_dropout,
                 out_proj=True):
        super().__init__()
        self.featurewise = nn.ModuleList()
        self.layers = nn.ModuleList([
            TransformerEncoderLayer(embed_dim, num_heads, hidden, activation, dropout, attn_dropout, out_proj)
            for _ in range(num_layers)])
        self.final_norm = nn.LayerNorm(embed_dim)
        self.out_dim = out_dim
        if out_dim:
            self.final_linear = nn.Linear(embed_dim, out_dim)

    def forward(self, x, pad):
        # Salt appends one masked zero token and removes it at the end.
        b, _, d = x.shape
        x = torch.cat([x, x.new_zeros(b, 1, d)], 1)
        full = torch.cat([pad, pad.new_ones(b, 1)], 1)
        for layer in self.layers:
            x = layer(x, full)
        x = self.final_norm(x)
        if self.out_dim:
            x = self.final_linear(x)
        return x[:, :-1], pad


class GlobalAttentionPooling(nn.Module):
    """Salt's pooling with masked_softmax: a jet without valid tracks
    pools to zeros."""

    def __init__(self, input_size):
        super().__init__()
        self.gate_nn = nn.Linear(input_size, 1)

    def forward(self, x, pad):
        w = masked_softmax(self.gate_nn(x), pad.unsqueeze(-1), dim=1)
        return (x * w).sum(1)


def hidden_layers(s):
    return s.get("legacy_hidden") or [2 * s["embed"]]


def legacy_model(s):
    """salt_twin's SaltModel with the legacy encoder and pooling in the
    places of the Transformer's (module order kept: init_nets, tasks,
    encoder, pool_net, as Salt's SaltModel registers them)."""
    m = st.SaltModel(dict(s, registers=1))
    m.encoder = TransformerEncoder(
        s["layers"], s["embed"], s["out_dim"], s["heads"], hidden_layers(s),
        s.get("legacy_activation", "ReLU"), s.get("legacy_dropout", 0.0), s.get("legacy_attn_dropout", 0.0),
        s.get("legacy_out_proj", True))
    m.pool_net = GlobalAttentionPooling(s["out_dim"] or s["embed"])
    return m


def build(s):
    # salt_twin builds its Transformer (one register) first; it is replaced.
    w = st_build(dict(s, registers=1))
    w.model = legacy_model(s)
    return w


def salt_config(s):
    c = st_salt_config(dict(s, registers=1))  # its encoder entry is replaced
    attention = {"class_path": "salt.models.ScaledDotProductAttention",
                 "init_args": {"dropout": s.get("legacy_attn_dropout", 0.0)}}
    dense = {"hidden_layers": s.get("legacy_hidden"), "hidden_dim_scale": 2,
             "activation": s.get("legacy_activation", "ReLU"), "final_activation": None,
             "dropout": s.get("legacy_dropout", 0.0), "bias": True}
    c["model"]["model"]["init_args"]["encoder"] = {
        "class_path": "salt.models.TransformerEncoder", "init_args": {
            "embed_dim": s["embed"], "num_layers": s["layers"],
            "mha_config": {"num_heads": s["heads"], "attention": attention,
                           "out_proj": s.get("legacy_out_proj", True)},
            "dense_config": dense, "context_dim": 0, "out_dim": s["out_dim"],
            "edge_embed_dim": 0, "update_edges": False, "mup": False}}
    return c


def count(s):
    s = dict(s, jet_class_weights=None, origin_class_weights=None)
    print(sum(p.numel() for p in legacy_model(s).parameters()))


st_build, st_salt_config = st.build, st.salt_config

if __name__ == "__main__":
    torch.set_num_threads(1)
    mode, spec = sys.argv[1], json.loads(open(sys.argv[2]).read())
    # salt_twin's make() builds its model and writes its config.yaml
    # through these module functions.
    st.build, st.salt_config = build, salt_config
    {"make": st.make, "count": count}[mode](spec)

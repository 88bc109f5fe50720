"""A Salt-shaped GN2 exported to ONNX the way Salt's exporter exports one, for
salt-ort's deployment benchmark.

Salt's exporter (salt/onnx/to_onnx.py) wraps the trained eager module in a
one-jet interface and calls torch.onnx.export on it. This script does the
same with the modules of salt_twin.py (an independent implementation of
Salt's GN2 with Salt's parameter names), written for salt-ort from a reading
of Salt's ONNXModel, VertexingTask and get_node_assignment_jit; no code is
taken from Salt. What the exported graph computes follows Salt:

- inputs jet_features [1, n_jet_vars] and track_features [n, n_track_vars],
  raw variables normalised inside the graph (Salt's InputNorm);
- a padding mask of zeros (every track valid) through the encoder, whose
  attention masks padded keys as Salt's does;
- per class a float32 scalar <name>_p<class> from the softmax;
- <name>_TrackOrigin int8 [n]: the argmax class, over the logits with a
  zero row appended and dropped again (Salt's trick for ONNX);
- <name>_VertexIndex int8 [n]: the vertexing head on the compressed list of
  ordered pairs i != j (Salt's VertexingTask builds [E, 2d] pair rows and
  [E, d] context rows with boolean indexing and runs its Dense on them), then
  a TorchScript function that symmetrises the pair scores and propagates
  the smallest index along linked pairs in a loop until nothing changes,
  looping over the graphs of the batch inside as Salt's does; the exporter
  turns it into an ONNX Loop.

PyTorch 1.13 (Debian's python3-torch) has no scaled_dot_product_attention,
so the attention is salt_twin's explicit softmax(q·kᵀ/√d_h + mask)·v, the
operators SDPA's ONNX export writes for Salt's "torch-math" backend.

Usage (Debian's /usr/bin/python3):
  salt_onnx.py SPEC.json

SPEC keys: seed, jet_vars, track_vars, embed, init_hidden, layers, heads,
out_dim, registers, task_hidden (as salt_twin.py), name (the output
prefix), opset, pair_rows ("assign": the vertexing pair rows written into a
zero matrix as Salt's VertexingTask writes them; "concat": concatenated
instead, which exports without ScatterND), onnx (the file to write) and
weights (a safetensors file
to write with every parameter under Salt's state_dict names, and the
normalisation as norm.jets_means, norm.jets_stds, norm.tracks_means and
norm.tracks_stds). The means and stds are drawn at random, so that the
normalisation is not an identity.
"""
import json
import sys

import numpy as np
import torch
from torch import Tensor, nn

import salt_twin as twin


@torch.onnx.symbolic_helper.parse_args("v", "is", "v", "v", "f", "none")
def layer_norm_17(g, x, shape, weight, bias, eps, cudnn_enable):
    """aten::layer_norm as LayerNormalization (opset 17) where the norm has
    no affine parameters: PyTorch 1.13 writes an empty scale input, which the
    ONNX checker rejects; later PyTorch writes a scale of ones, as here."""
    if torch.onnx.symbolic_helper._is_none(weight):
        weight = g.op("Constant", value_t=torch.ones(shape, dtype=torch.float32))
    inputs = [x, weight]
    if not torch.onnx.symbolic_helper._is_none(bias):
        inputs.append(bias)
    return g.op("LayerNormalization", *inputs, epsilon_f=eps, axis_i=-len(shape))


@torch.jit.script
def vertex_assignment(edge_logits: Tensor, pad: Tensor) -> Tensor:
    """Vertex index of every valid node of a batch of graphs.

    edge_logits [E, 1] holds the logits of the ordered pairs (i, j), i != j,
    of each graph's valid nodes, graph after graph, row-major; pad [B, S] is
    True on padding. A pair is linked when the sigmoid of its logit averaged
    with its reverse's is at least 0.5; every node gets the smallest index
    of the nodes it is connected to. Returns [N, 1] for the N valid nodes.
    """
    # One padded slot more, as Salt does to keep the export's shapes sane.
    pad = torch.cat([pad, torch.ones((pad.shape[0], 1), dtype=torch.bool)], dim=1)
    sizes = (~pad).sum(dim=-1).long()
    # Symmetrise: in a graph of n nodes, pair (i, j) is edge
    # i*(n-1) + j - (j > i), and its reverse (j, i) is edge
    # j*(n-1) + i - (i > j).
    reverse: list[Tensor] = []
    edge_offset = 0
    for b in range(sizes.shape[0]):
        n = int(sizes[b].item())
        if n > 1:
            nodes = torch.arange(n)
            i = nodes.unsqueeze(1).expand(n, n)
            j = nodes.unsqueeze(0).expand(n, n)
            keep = i != j
            i, j = i[keep], j[keep]
            reverse.append(edge_offset + j * (n - 1) + i - (i > j).long())
            edge_offset += n * (n - 1)
    scores = edge_logits
    if len(reverse) > 0:
        scores = torch.sigmoid((edge_logits + edge_logits[torch.cat(reverse)]) / 2.0)
    labels = torch.cat([torch.arange(int(n)) for n in sizes])
    active = torch.ones_like(sizes, dtype=torch.bool)
    while bool(torch.any(active)):
        edge_offset = 0
        node_offset = 0
        for b in range(sizes.shape[0]):
            n = int(sizes[b].item())
            e = n * (n - 1)
            if n <= 1:
                active[b] = False
            if bool(active[b]):
                # The pairs' endpoints, rebuilt on every pass as Salt's loop
                # rebuilds them.
                nodes = torch.arange(n)
                i = nodes.unsqueeze(1).expand(n, n)
                j = nodes.unsqueeze(0).expand(n, n)
                keep = i != j
                src, dst = i[keep], j[keep]
                old = labels[node_offset : node_offset + n]
                cand = old[dst]
                cand = torch.where(scores[edge_offset : edge_offset + e, 0] >= 0.5, cand, torch.max(old) + 1)
                new = torch.minimum(old[src], cand).reshape(n, n - 1).min(dim=-1)[0]
                active[b] = bool(torch.any(new != old))
                labels[node_offset : node_offset + n] = new
            edge_offset += e
            node_offset += n
    return labels.unsqueeze(-1)


class OneJet(nn.Module):
    """Salt's ONNXModel around the twin: the one-jet interface ATLAS loads."""

    def __init__(self, wrapper, name, pair_rows):
        super().__init__()
        self.wrapper = wrapper
        self.name = name
        self.pair_rows = pair_rows

    def vertex_logits(self, task, x, g):
        # Salt's VertexingTask: pair rows [x_i, x_j] and context rows [g]
        # for every ordered pair i != j of valid tracks, gathered with a
        # boolean adjacency matrix (one padded slot more for ONNX).
        b, n, d = x.shape
        valid = torch.cat([torch.ones(b, n), torch.zeros(b, 1)], dim=1)
        adj = (valid.unsqueeze(-1) * valid.unsqueeze(-2)).bool()
        adj = adj & ~torch.eye(n + 1, n + 1).repeat(b, 1, 1).bool()
        adj = adj[:, :-1, :-1]
        context = g.unsqueeze(1).expand(b, n, g.shape[-1]).unsqueeze(-2).expand(b, n, n, g.shape[-1])[adj]
        xi = x.unsqueeze(-2).expand(b, n, n, d)[adj]
        xj = x.unsqueeze(-3).expand(b, n, n, d)[adj]
        if self.pair_rows == "assign":
            # As Salt writes them: into a zero matrix, half by half (the
            # exporter makes each assignment a ScatterND).
            pairs = torch.zeros((adj.sum(), 2 * d), dtype=x.dtype)
            pairs[:, :d] = xi
            pairs[:, d:] = xj
        else:
            pairs = torch.cat([xi, xj], dim=-1)
        return task.net(pairs, context)

    def forward(self, jet_features, track_features):
        inputs = self.wrapper.norm({"jets": jet_features, "tracks": track_features.unsqueeze(0)})
        m = self.wrapper.model
        pad = torch.zeros((1, track_features.shape[0]), dtype=torch.bool)
        x = m.init_nets[0](inputs, "jets")
        enc, full_pad = m.encoder(x, pad)
        g = m.pool_net(enc, full_pad)
        tracks = enc[:, : x.shape[1]]
        jet, origin, vertex = m.tasks
        probs = jet.net(g).softmax(-1)
        outs = tuple(p.squeeze() for p in torch.split(probs, 1, -1))
        logits = origin.net(tracks, g)
        logits = torch.cat([logits, torch.zeros((1, 1, logits.shape[-1]))], dim=1)
        outs += (torch.argmax(logits, dim=-1)[:, :-1].squeeze(0).char(),)
        edges = self.vertex_logits(vertex, tracks, g)
        outs += (vertex_assignment(edges, pad).reshape(-1).char(),)
        return outs


def export(s):
    torch.manual_seed(s["seed"])
    rng = np.random.default_rng(s["seed"])
    norm = {}
    for group, names in (("jets", s["jet_vars"]), ("tracks", s["track_vars"])):
        norm[group] = {v: {"mean": float(rng.normal()), "std": float(rng.uniform(0.5, 2.0))} for v in names}
    wrapper = twin.Wrapper(dict(s, jet_class_weights=None, origin_class_weights=None), norm)
    wrapper.eval()
    name = s["name"]
    classes = ["pb", "pc", "pu", "ptau"]
    module = OneJet(wrapper, name, s.get("pair_rows", "assign"))
    module.eval()
    n = 40  # Salt's exporter traces with 40 tracks
    example = (torch.rand(1, len(s["jet_vars"])), torch.rand(n, len(s["track_vars"])))
    outputs = [f"{name}_{c}" for c in classes] + [f"{name}_TrackOrigin", f"{name}_VertexIndex"]
    torch.onnx.register_custom_op_symbolic("aten::layer_norm", layer_norm_17, 17)
    with torch.no_grad():
        torch.onnx.export(
            module, example, s["onnx"], opset_version=s["opset"],
            input_names=["jet_features", "track_features"], output_names=outputs,
            dynamic_axes={"track_features": {0: "n_tracks"}, f"{name}_TrackOrigin": {0: "n_tracks"},
                          f"{name}_VertexIndex": {0: "n_tracks"}})
    tensors = {k: v.detach().numpy() for k, v in wrapper.state_dict().items() if v.dtype == torch.float32}
    twin.write_safetensors(s["weights"], tensors)


if __name__ == "__main__":
    torch.set_num_threads(1)
    export(json.loads(open(sys.argv[1]).read()))

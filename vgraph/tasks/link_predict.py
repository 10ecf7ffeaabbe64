"""Score node pairs with a trained link model (``vgraph predict-links``).

The model file (``run<k>/model.pt``, written by ``vgraph linkpred`` with
:func:`vgraph.hub.save_model`) says which graph and features it was trained on; the graph is
loaded again (or given), every node is embedded once in eval mode over all the graph's known
edges, and each pair gets ``sigmoid(decode(z, pair))``. A bad row (empty, a missing or
non-integer id, a node the graph does not have) keeps its place in the output with a status
saying what is wrong, so row ``i`` of the output always answers row ``i`` of the input.
"""
from __future__ import annotations

import csv
from pathlib import Path

import torch

from vgraph.data import registry
from vgraph.data.graph_io import read_pair_rows
from vgraph.data.split import pair_keys
from vgraph.errors import CheckpointError
from vgraph.hub import load as load_model
from vgraph.tasks.linkpred import sparse_features

FIELDS = ["line", "src", "dst", "probability", "known_edge", "status"]


def load_link_model(checkpoint, dataset=None, root=None, features=None):
    """``(model, info, data)``: the model of ``checkpoint`` and the graph it scores on
    (``dataset``: a name or edge-list path; default the one it was trained on)."""
    try:
        model, info = load_model(checkpoint, with_info=True)
    except CheckpointError as exc:
        sibling = Path(checkpoint).with_name("model.pt")
        if "not a model file" in str(exc) and sibling.is_file():
            raise CheckpointError(f"{checkpoint} is a training checkpoint; the model to score "
                                  f"with is {sibling}") from None
        raise
    t = info.transform
    name = dataset or t.get("dataset")
    if name is None:
        raise CheckpointError(f"{checkpoint} does not say which graph it was trained on; pass --dataset or --edges")
    if features is None and t.get("features") not in (None, "the dataset's own") and dataset is None:
        features = t["features"]
    data = registry.load(name, root, **({"features": features} if features else {}))
    if data.num_nodes != t.get("num_nodes", data.num_nodes) or data.x.size(1) != t.get("feature_dim", data.x.size(1)):
        raise CheckpointError(f"{name} has {data.num_nodes} nodes and {data.x.size(1)} features, but "
                              f"{checkpoint} was trained on {t.get('num_nodes')} nodes and "
                              f"{t.get('feature_dim')} features")
    return model, info, data


def _resolve(token, index, num_nodes):
    """``(node, None)`` or ``(None, status)`` for one id of a row."""
    if token is None:
        return None, "missing node id"
    if index is not None:
        return (index[token], None) if token in index else (None, f"unknown node {token!r}")
    try:
        node = int(token)
    except ValueError:
        return None, f"node id {token!r} is not an integer"
    if not 0 <= node < num_nodes:
        return None, f"unknown node {node} (ids are 0..{num_nodes - 1})"
    return node, None


@torch.no_grad()
def score_pairs(model, data, rows) -> list[dict]:
    """One result dict per row of :func:`~vgraph.data.graph_io.read_pair_rows` (see FIELDS)."""
    names = getattr(data, "node_ids", None)
    index = {v: i for i, v in enumerate(names)} if names is not None else None
    results, good, pairs = [], [], []
    for lineno, a, b, raw in rows:
        rec = {"line": lineno, "src": a if a is not None else "", "dst": b if b is not None else "",
               "probability": "", "known_edge": "", "status": "ok"}
        if a is None and b is None:
            rec["status"] = "empty row"
        else:
            u, why_u = _resolve(a, index, data.num_nodes)
            v, why_v = _resolve(b, index, data.num_nodes)
            if why_u or why_v:
                rec["status"] = why_u or why_v
            else:
                good.append(len(results))
                pairs.append((u, v))
        results.append(rec)
    if pairs:
        model.eval()
        z = model.encode(sparse_features(data.x.float()), data.edge_index)
        p = torch.tensor(pairs, dtype=torch.long).t()
        prob = torch.sigmoid(model.decode(z, p))
        edges = torch.unique(pair_keys(data.edge_index, data.num_nodes))
        keys = pair_keys(p, data.num_nodes)
        pos = torch.searchsorted(edges, keys).clamp(max=max(edges.numel() - 1, 0))
        known = (edges[pos] == keys) if edges.numel() else torch.zeros_like(keys, dtype=torch.bool)
        for k, i in enumerate(good):
            results[i]["probability"] = f"{float(prob[k]):.6f}"
            results[i]["known_edge"] = int(known[k])
    return results


def predict_links(checkpoint, pairs_path, out_path, dataset=None, root=None, features=None) -> dict:
    """Score the pairs of ``pairs_path`` into the CSV ``out_path``; returns counts."""
    model, _, data = load_link_model(checkpoint, dataset, root, features)
    names = getattr(data, "node_ids", None)
    rows = read_pair_rows(pairs_path, set(names).__contains__ if names is not None else None)
    results = score_pairs(model, data, rows)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(results)
    bad = sum(r["status"] != "ok" for r in results)
    return {"rows": len(results), "scored": len(results) - bad, "bad": bad, "out": str(out_path)}

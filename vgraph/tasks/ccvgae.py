"""CCVGAE's job: link prediction in a low-edge regime, and the learned concept structure.

Training is :class:`~vgraph.tasks.linkpred.LinkPredTask` (the model's ``loss`` adds the
structure terms); this module adds the split with a fraction of training edges revealed and
the structure report (matrix, acyclicity, DAG flag, picture).
"""
from __future__ import annotations

import torch

from vgraph.data.split import random_link_split
from vgraph.data.tu_link import reveal_edges
from vgraph.nn.causal import is_dag


def low_edge_split(data, fraction: float, val_ratio: float = 0.05, test_ratio: float = 0.10, seed: int = 0):
    """``random_link_split`` that keeps ``fraction`` of the training edges (val/test unchanged)."""
    split = random_link_split(data.edge_index, data.num_nodes, val_ratio, test_ratio, seed)
    return reveal_edges(split, fraction, seed)


def structure_report(model, threshold: float) -> dict:
    """``{"A", "h", "dag"}`` of a CCVGAE: the learned matrix, its acyclicity, whether it is a DAG."""
    a = model.structure().cpu()
    return {"A": a.tolist(), "h": float(model.causal.acyclicity().detach()), "dag": is_dag(a, threshold)}


def plot_structure(adjacency: torch.Tensor, path, threshold: float, title: str = ""):
    """Draw the concept graph: an arrow i -> j for every |A_ij| > threshold, width ~ |A_ij|."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx
    adjacency = torch.as_tensor(adjacency)
    k = adjacency.size(0)
    g = nx.DiGraph()
    g.add_nodes_from(range(k))
    for i in range(k):
        for j in range(k):
            if i != j and abs(float(adjacency[i, j])) > threshold:
                g.add_edge(i, j, weight=float(adjacency[i, j]))
    fig, ax = plt.subplots(figsize=(4, 4))
    pos = nx.circular_layout(g)
    weights = [g[u][v]["weight"] for u, v in g.edges]
    top = max([abs(w) for w in weights], default=1.0)
    nx.draw_networkx_nodes(g, pos, ax=ax, node_color="#9ecae1", node_size=700)
    nx.draw_networkx_labels(g, pos, {i: f"c{i}" for i in range(k)}, ax=ax)
    nx.draw_networkx_edges(g, pos, ax=ax, arrows=True, arrowsize=18, node_size=700,
                           width=[0.5 + 3 * abs(w) / top for w in weights],
                           edge_color=["#d62728" if w < 0 else "#2ca02c" for w in weights],
                           connectionstyle="arc3,rad=0.15")  # curved: i->j and j->i stay apart
    nx.draw_networkx_edge_labels(g, pos, {e: f"{w:.2f}" for e, w in zip(g.edges, weights)}, ax=ax,
                                 font_size=7, connectionstyle="arc3,rad=0.15")
    ax.set_title(title or "learned concept structure A")
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

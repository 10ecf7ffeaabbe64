"""Few-shot link prediction data: low-edge regimes and many-graph link tasks.

* :func:`reveal_edges` keeps a fraction of a :class:`~vgraph.data.LinkSplit`'s training edges
  for message passing *and* supervision (the low-edge regimes of CCVGAE and Meta-Graph);
  validation / test pairs are unchanged, and training negatives still avoid every
  positive of the full graph (hidden training edges included).
* :func:`load_link_graphs` turns a TU dataset (FIRSTMM_DB, ENZYMES, PROTEINS, ...) into one
  :class:`LinkGraph` per graph, read-only from the data root (via :func:`vgraph.data.tu.load_tu`).
* :func:`standardize_features` z-scores the continuous feature columns with statistics of
  the meta-training graphs (ENZYMES' attributes reach 762, PROTEINS' 798).
* :func:`link_task` builds the per-graph split + revealed edges + sparse graph that the
  meta-learning code consumes, and :func:`split_graphs` the meta-train/val/test graph split.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vgraph.data.split import LinkSplit, random_link_split
from vgraph.ops import SparseGraph


def reveal_edges(split: LinkSplit, fraction: float, seed: int = 0) -> LinkSplit:
    """A copy of ``split`` that keeps ``ceil(fraction * |train|)`` random training edges (>= 1).

    The kept edges become both the message-passing graph and the training positives;
    ``positive_keys`` still holds every positive, so no hidden edge is drawn as a negative.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return split
    num_train = split.train_pos.size(1)
    keep = max(1, math.ceil(fraction * num_train))
    gen = torch.Generator().manual_seed(seed)
    idx = torch.sort(torch.randperm(num_train, generator=gen)[:keep])[0]
    train_pos = split.train_pos[:, idx]
    return LinkSplit(num_nodes=split.num_nodes, mp_edge_index=torch.cat([train_pos, train_pos.flip(0)], 1),
                     train_pos=train_pos, val_pos=split.val_pos, val_neg=split.val_neg,
                     test_pos=split.test_pos, test_neg=split.test_neg,
                     positive_keys=split.positive_keys)


@dataclass
class LinkGraph:
    """One graph of a multi-graph dataset: features, undirected edges (both directions)."""
    x: torch.Tensor
    edge_index: torch.Tensor
    index: int

    @property
    def num_nodes(self) -> int:
        return int(self.x.size(0))

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.size(1)) // 2


@dataclass
class LinkEpisode:
    """One few-shot episode: a graph ready for link prediction (split, revealed edges, sparse graph)."""
    x: torch.Tensor
    split: LinkSplit
    graph: SparseGraph
    index: int

    @property
    def num_nodes(self) -> int:
        return self.split.num_nodes


def load_link_graphs(name: str, root=None, min_edges: int = 20, use_node_attr: bool = True) -> list[LinkGraph]:
    """Every graph of TU dataset ``name`` with at least ``min_edges`` undirected edges.

    Features: one-hot node labels plus, with ``use_node_attr``, the continuous node
    attributes (PyG's ``TUDataset(use_node_attr=True)`` layout).
    """
    from vgraph.data.tu import load_tu
    data = load_tu(name, root, use_node_attr=use_node_attr)
    graphs = []
    for g in range(data.num_graphs):
        x, edge_index, _, _ = data.subset([g])
        if edge_index.size(1) // 2 >= min_edges:
            graphs.append(LinkGraph(x.float(), edge_index, g))
    return graphs


def link_task(graph: LinkGraph, fraction: float, seed: int, val_ratio: float = 0.05,
              test_ratio: float = 0.10) -> LinkEpisode:
    """Split ``graph`` 85/5/10 (default), reveal ``fraction`` of its training edges."""
    split = random_link_split(graph.edge_index, graph.num_nodes, val_ratio, test_ratio, seed)
    split = reveal_edges(split, fraction, seed)
    sparse = SparseGraph(split.mp_edge_index, graph.num_nodes)
    sparse.gcn_norm()
    return LinkEpisode(graph.x, split, sparse, graph.index)


def split_graphs(num_graphs: int, val_fraction: float = 0.15, test_fraction: float = 0.25,
                 seed: int = 0) -> tuple[list[int], list[int], list[int]]:
    """Seeded meta-train / meta-val / meta-test lists of graph positions (each non-empty)."""
    if num_graphs < 3:
        raise ValueError("need at least 3 graphs for a meta-train/val/test split")
    perm = torch.randperm(num_graphs, generator=torch.Generator().manual_seed(seed)).tolist()
    n_test = max(1, round(test_fraction * num_graphs))
    n_val = max(1, round(val_fraction * num_graphs))
    return perm[n_test + n_val:], perm[n_test:n_test + n_val], perm[:n_test]


def standardize_features(graphs: list[LinkGraph], fit_on: list[LinkGraph]) -> list[LinkGraph]:
    """``graphs`` with every non-binary feature column z-scored by the mean/std over the nodes
    of ``fit_on`` (the meta-training graphs, so nothing is learned from held-out graphs).

    One-hot label columns (values in {0, 1} on ``fit_on``) are left as they are, as is a
    column with zero variance.
    """
    if not fit_on:
        raise ValueError("standardize_features needs at least one graph to fit on")
    x = torch.cat([g.x for g in fit_on])
    binary = ((x == 0) | (x == 1)).all(0)
    mean, std = x.mean(0), x.std(0)
    scale = ~binary & (std > 0)
    mean = torch.where(scale, mean, torch.zeros_like(mean))
    std = torch.where(scale, std, torch.ones_like(std))
    return [LinkGraph((g.x - mean) / std, g.edge_index, g.index) for g in graphs]

"""PyG in and out: ``from_pyg(data)`` -> :class:`~vgraph.ops.SparseGraph`, ``to_pyg(graph)`` -> ``Data``.

Models take a PyG ``edge_index`` or ``Data`` directly (converted once and cached, see
:mod:`vgraph.ops.convert`); these two are for code that wants the graph object itself.
"""
from __future__ import annotations

import torch
from torch_geometric.data import Data

from vgraph.ops import SparseGraph
from vgraph.ops.convert import as_sparse_graph


def from_pyg(data, num_nodes: int | None = None) -> SparseGraph:
    """A PyG ``Data`` (or a bare ``edge_index``) as a :class:`SparseGraph`; ``data.edge_weight``
    becomes the edge values. Features stay where they are (``data.x``)."""
    return as_sparse_graph(data, num_nodes)


def to_pyg(graph, x: torch.Tensor | None = None, **attrs) -> Data:
    """A ``Data`` with ``edge_index`` (source, destination, in the caller's node numbering),
    ``edge_weight`` when the graph's weights are not all 1, ``x`` and any extra ``attrs``."""
    graph = as_sparse_graph(graph)
    src, dst = graph.indices, graph.row_index  # CSR rows are destinations
    if graph.perm is not None:  # a reordered graph: back to the caller's ids
        src, dst = graph.perm[src], graph.perm[dst]
    out = Data(edge_index=torch.stack([src, dst]).long(), num_nodes=graph.num_nodes, **attrs)
    if not bool((graph.values == 1).all()):
        out.edge_weight = graph.values.clone()
    if x is not None:
        out.x = x
    return out

"""One conversion for every model input: a :class:`SparseGraph`, an ``edge_index`` or a PyG
``Data`` (anything with ``edge_index`` and ``num_nodes``) becomes a :class:`SparseGraph`.

The conversion builds a CSR and, later, its GCN normalisation; both are worth keeping, so a
:class:`GraphCache` remembers the last graph it converted and returns it while the same
tensor (same storage, shape and in-place version) comes in again.
"""
from __future__ import annotations

import torch

from vgraph.errors import DataFormatError
from vgraph.ops.graph import SparseGraph


def _parts(graph, num_nodes):
    """``(edge_index, num_nodes, edge_weight)`` of an edge_index tensor or a Data-like object."""
    if isinstance(graph, torch.Tensor):
        edge_index, weight = graph, None
    elif hasattr(graph, "edge_index"):
        edge_index, weight = graph.edge_index, getattr(graph, "edge_weight", None)
        if num_nodes is None:
            num_nodes = getattr(graph, "num_nodes", None)
    else:
        raise DataFormatError(f"expected a SparseGraph, an edge_index tensor or a PyG Data, "
                              f"got {type(graph).__name__}")
    if not isinstance(edge_index, torch.Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise DataFormatError(f"edge_index must be a [2, E] tensor, got "
                              f"{tuple(getattr(edge_index, 'shape', ())) or type(edge_index).__name__}")
    if num_nodes is None:
        num_nodes = int(edge_index.max()) + 1 if edge_index.numel() else 0
    return edge_index, int(num_nodes), weight


def as_sparse_graph(graph, num_nodes: int | None = None) -> SparseGraph:
    """``graph`` as a :class:`SparseGraph` (returned as is when it already is one).

    ``edge_index`` is ``[2, E]`` (source, destination) as in PyG; ``num_nodes`` defaults to the
    Data's, else to the largest id + 1 (pass it when the last nodes may be isolated).
    """
    if isinstance(graph, SparseGraph):
        return graph
    edge_index, n, weight = _parts(graph, num_nodes)
    return SparseGraph(edge_index.long(), n, edge_weight=weight)


class GraphCache:
    """Converts with :func:`as_sparse_graph` and keeps the last result while the same tensor
    comes in again (it holds a reference, so a new tensor cannot reuse the old one's memory)."""

    def __init__(self):
        self._src = None   # (edge_index, its version, num_nodes, edge_weight)
        self._graph = None

    def __call__(self, graph, num_nodes: int | None = None) -> SparseGraph:
        if isinstance(graph, SparseGraph):
            return graph
        edge_index, n, weight = _parts(graph, num_nodes)
        src = self._src
        if (src is None or src[0] is not edge_index or src[1] != edge_index._version
                or src[2] != n or src[3] is not weight):
            self._graph = as_sparse_graph(graph, n)
            self._src = (edge_index, edge_index._version, n, weight)
        return self._graph

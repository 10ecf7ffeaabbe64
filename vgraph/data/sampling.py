"""Samplers for sharded and mini-batch link prediction: pure functions of their inputs.

Every random choice is a pure function of ``(seed, epoch, batch)`` (:func:`derive_seed`),
so a run resumed from a mid-epoch checkpoint continues bit-identically and ranks never need
to exchange samples. Rank and world size are always given by the caller; the tasks that use
these samplers (:class:`vgraph.tasks.linkpred.ShardedLinkPredTask`,
:class:`~vgraph.tasks.linkpred.MiniBatchLinkPredTask`) live in :mod:`vgraph.tasks`.

PyG's ``LinkNeighborLoader``/``ClusterLoader`` need ``pyg-lib`` or ``torch-sparse`` (not on
PyPI for every torch build); :func:`sample_neighbors` is a pure-torch equivalent on
vgraph's CSR.
"""
from __future__ import annotations

import math

import torch

from vgraph.ops import SparseGraph

_MIX = 0x9E3779B97F4A7C15


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (splitmix64-style), the same on every rank and process."""
    h = 0x243F6A8885A308D3
    for p in parts:
        h = (h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * _MIX & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
        h = (h * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 29
    return h & 0x7FFFFFFFFFFFFFFF


def seeded_generator(*parts: int) -> torch.Generator:
    """A CPU generator seeded with :func:`derive_seed` of ``parts``."""
    return torch.Generator().manual_seed(derive_seed(*parts))


def check_rank(rank: int, world_size: int) -> tuple[int, int]:
    """``(rank, world_size)`` as ints, or a ``ValueError`` if ``rank`` is not in ``[0, world_size)``."""
    if not 0 <= int(rank) < int(world_size):
        raise ValueError(f"rank {rank} is not in [0, {world_size})")
    return int(rank), int(world_size)


def shard_indices(num_items: int, rank: int, world_size: int, order: torch.Tensor | None = None):
    """``DistributedSampler``'s shard: pad ``order`` (default ``arange``) to a multiple of
    ``world_size`` by repeating its start, then take every ``world_size``-th from ``rank``."""
    order = torch.arange(num_items) if order is None else order
    total = math.ceil(num_items / world_size) * world_size
    if total > num_items:
        order = torch.cat([order, order[: total - num_items]])
    return order[rank:total:world_size]


def sample_neighbors(indptr: torch.Tensor, indices: torch.Tensor, nodes: torch.Tensor, k: int,
                     generator: torch.Generator | None = None):
    """Up to ``k`` in-neighbours of each of ``nodes`` from a CSR (``k < 0``: all of them).

    Nodes with at most ``k`` neighbours keep all; others draw ``k`` with replacement
    (duplicates are removed by the caller). Returns ``(src, dst)`` global ids, an edge
    ``src -> dst`` per sample.
    """
    start = indptr[nodes]
    deg = indptr[nodes + 1] - start
    counts = deg if k < 0 else deg.clamp(max=k)
    owner = torch.repeat_interleave(torch.arange(nodes.numel()), counts)
    if owner.numel() == 0:
        empty = torch.empty(0, dtype=torch.long)
        return empty, empty
    first = torch.cumsum(counts, 0) - counts
    offset = torch.arange(owner.numel()) - first[owner]
    if k >= 0:
        d = deg[owner]
        r = torch.rand(owner.numel(), generator=generator, dtype=torch.float64)
        offset = torch.where(d > k, (r * d).long().clamp_(max=d - 1), offset)
    return indices[start[owner] + offset], nodes[owner]


def _unique_nodes(ids: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Sorted distinct ids by marking a length-``num_nodes`` mask (O(N + len) and much faster
    than a sort for the batch sizes used here)."""
    mask = torch.zeros(num_nodes, dtype=torch.bool)
    mask[ids] = True
    return mask.nonzero().view(-1)


def sample_subgraph(graph: SparseGraph, seeds: torch.Tensor, num_neighbors, generator=None,
                    relabel_buffer: torch.Tensor | None = None):
    """The ``len(num_neighbors)``-hop sampled subgraph around ``seeds``.

    Returns ``(nodes, edge_index, seed_local)``: the sorted global ids of the subgraph's
    nodes, its ``[2, E]`` edges in local ids (``src -> dst``, duplicates removed), and
    where each seed sits among the local ids. ``relabel_buffer`` (int64 ``[N]``) may be
    passed to avoid allocating the global-to-local map on every call.
    """
    if graph.perm is not None:
        raise ValueError("sample_subgraph needs a graph built without reorder")
    n = graph.num_nodes
    frontier = _unique_nodes(seeds, n)
    srcs, dsts = [], []
    for k in num_neighbors:
        src, dst = sample_neighbors(graph.indptr, graph.indices, frontier, int(k), generator)
        srcs.append(src)
        dsts.append(dst)
        frontier = _unique_nodes(src, n)
    src, dst = torch.cat(srcs), torch.cat(dsts)
    nodes = _unique_nodes(torch.cat([seeds, src, dst]), n)
    to_local = relabel_buffer if relabel_buffer is not None else torch.empty(n, dtype=torch.long)
    to_local[nodes] = torch.arange(nodes.numel())
    m = nodes.numel()
    keys = torch.unique(to_local[dst] * m + to_local[src])
    edge_index = torch.stack([keys % m, keys // m])
    return nodes, edge_index, to_local[seeds]

"""Link splits with explicit roles, and negative sampling that never returns a positive.

A :class:`LinkSplit` keeps the message-passing graph (``mp_edge_index``: training edges in
both directions, nothing held out) apart from the supervision pairs (``*_pos``, ``*_neg``),
like PyG's ``RandomLinkSplit``. Evaluation negatives are drawn once, from pairs that are
in no split and are no self-loop; training negatives are redrawn each epoch from the same
pool (no positive of any split, no self-loop).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from vgraph.errors import DataFormatError


def pair_keys(pairs: torch.Tensor, num_nodes: int, undirected: bool = True) -> torch.Tensor:
    """Integer keys ``u * N + v`` of ``[2, P]`` pairs (``u <= v`` when ``undirected``)."""
    u, v = pairs[0], pairs[1]
    if undirected:
        u, v = torch.minimum(u, v), torch.maximum(u, v)
    return u * num_nodes + v


def _contains(sorted_keys: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    if sorted_keys.numel() == 0:
        return torch.zeros_like(keys, dtype=torch.bool)
    pos = torch.searchsorted(sorted_keys, keys).clamp(max=sorted_keys.numel() - 1)
    return sorted_keys[pos] == keys


def sample_negatives(num_nodes: int, num_samples: int, exclude_keys: torch.Tensor,
                     generator: torch.Generator | None = None, undirected: bool = True,
                     unique: bool = False) -> torch.Tensor:
    """Uniform random pairs ``[2, num_samples]`` avoiding self-loops and ``exclude_keys``.

    Args:
        exclude_keys: sorted keys (see :func:`pair_keys`) of pairs that must not be drawn.
        unique: also make the returned pairs distinct from each other.
    """
    n = num_nodes
    capacity = n * (n - 1) // (2 if undirected else 1) - exclude_keys.numel()
    if num_samples > max(capacity, 0):
        raise DataFormatError(f"cannot draw {num_samples} negative pairs: only {max(capacity, 0)} "
                              f"non-edges exist among {n} nodes")
    out = torch.empty(2, 0, dtype=torch.long)
    seen = torch.empty(0, dtype=torch.long)
    while out.size(1) < num_samples:
        need = num_samples - out.size(1)
        draw = torch.randint(0, n, (2, int(need * 1.2) + 16), generator=generator)
        draw = draw[:, draw[0] != draw[1]]
        keys = pair_keys(draw, n, undirected)
        ok = ~_contains(exclude_keys, keys)
        draw, keys = draw[:, ok], keys[ok]
        if unique:
            keys, first = _unique_first(keys)
            draw = draw[:, first]
            fresh = ~_contains(seen, keys)
            draw, keys = draw[:, fresh], keys[fresh]
            seen = torch.sort(torch.cat([seen, keys]))[0]
        out = torch.cat([out, draw[:, :need]], 1)
    return out


def _unique_first(keys: torch.Tensor):
    uniq, inverse = torch.unique(keys, return_inverse=True)
    first = torch.full((uniq.numel(),), keys.numel(), dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(keys.numel()), reduce="amin")
    first = torch.sort(first)[0]
    return keys[first], first


@dataclass
class LinkSplit:
    """Roles of a link-prediction split (all pair tensors are ``[2, P]``, undirected ``u < v``)."""
    num_nodes: int
    mp_edge_index: torch.Tensor
    train_pos: torch.Tensor
    val_pos: torch.Tensor
    val_neg: torch.Tensor
    test_pos: torch.Tensor
    test_neg: torch.Tensor
    positive_keys: torch.Tensor = field(repr=False)

    def sample_train_negatives(self, num: int | None = None, generator=None) -> torch.Tensor:
        """Fresh training negatives (default: as many as training positives)."""
        num = self.train_pos.size(1) if num is None else num
        return sample_negatives(self.num_nodes, num, self.positive_keys, generator)

    def summary(self) -> dict:
        return {k: int(getattr(self, k).size(1)) for k in
                ("train_pos", "val_pos", "val_neg", "test_pos", "test_neg")}


def random_link_split(edge_index: torch.Tensor, num_nodes: int, val_ratio: float = 0.05,
                      test_ratio: float = 0.10, seed: int = 0) -> LinkSplit:
    """Seeded split of an undirected graph's edges into train / val / test (default 85/5/10).

    As in Kipf & Welling's ``mask_test_edges``: ``floor(E * test_ratio)`` test and
    ``floor(E * val_ratio)`` validation edges, as many negatives each, all negatives
    distinct and drawn from non-edges. Self-loops and duplicates are dropped first.
    """
    if not 0 <= val_ratio < 1 or not 0 <= test_ratio < 1 or val_ratio + test_ratio >= 1:
        raise ValueError("val_ratio and test_ratio must be in [0, 1) and sum below 1")
    keys = torch.unique(pair_keys(edge_index[:, edge_index[0] != edge_index[1]], num_nodes))
    if keys.numel() == 0:
        raise DataFormatError("cannot split a graph with no edges")
    gen = torch.Generator().manual_seed(seed)
    keys = keys[torch.randperm(keys.numel(), generator=gen)]
    n_test, n_val = int(keys.numel() * test_ratio), int(keys.numel() * val_ratio)
    test_k, val_k, train_k = keys[:n_test], keys[n_test:n_test + n_val], keys[n_test + n_val:]
    if train_k.numel() == 0:
        raise DataFormatError(f"val_ratio {val_ratio} + test_ratio {test_ratio} leave no training "
                              f"edges out of {keys.numel()}")
    to_pairs = lambda k: torch.stack([k // num_nodes, k % num_nodes])  # noqa: E731
    positive_keys = torch.sort(keys)[0]
    negs = sample_negatives(num_nodes, n_val + n_test, positive_keys, gen, unique=True)
    train_pos = to_pairs(torch.sort(train_k)[0])
    mp = torch.cat([train_pos, train_pos.flip(0)], 1)
    return LinkSplit(num_nodes=num_nodes, mp_edge_index=mp, train_pos=train_pos,
                     val_pos=to_pairs(val_k), val_neg=negs[:, n_test:],
                     test_pos=to_pairs(test_k), test_neg=negs[:, :n_test],
                     positive_keys=positive_keys)

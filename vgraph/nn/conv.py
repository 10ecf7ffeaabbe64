"""Graph convolutions on :mod:`vgraph.ops`: GCN (Kipf & Welling, ICLR 2017, arXiv 1609.02907)
and GraphSAGE-mean (Hamilton et al., NeurIPS 2017)."""
from __future__ import annotations

import math

import torch
from torch import nn

from vgraph.ops import SparseGraph, SparseMatrix, spmm


def linear_input(x, weight: torch.Tensor) -> torch.Tensor:
    """``x @ weight`` for dense ``x`` or sparse features given as a :class:`SparseMatrix`."""
    if isinstance(x, SparseMatrix):
        return spmm(x, weight)
    return x @ weight


class GCNConv(nn.Module):
    r"""One GCN layer: :math:`H' = \hat D^{-1/2} (A + I) \hat D^{-1/2} H W + b`.

    The normalised adjacency is taken from ``graph.gcn_norm()`` (cached on the graph), and
    the feature transform runs before propagation so the SpMM sees the narrower width.
    Input features may be a :class:`~vgraph.ops.SparseMatrix` (bag-of-words stays sparse).

    Args:
        in_channels: input width. out_channels: output width.
        bias: add a learned bias. add_self_loops: use :math:`A + I`.

    Shapes:
        ``x [N, in_channels]``, ``graph`` with ``N`` nodes -> ``[N, out_channels]``.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True,
                 add_self_loops: bool = True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.add_self_loops = add_self_loops
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        # Glorot uniform, as in Kipf & Welling's code.
        bound = math.sqrt(6.0 / (self.in_channels + self.out_channels))
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x, graph: SparseGraph) -> torch.Tensor:
        h = linear_input(x, self.weight)
        out = spmm(graph.gcn_norm(self.add_self_loops), h)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}"


class SAGEConv(nn.Module):
    r"""GraphSAGE with mean aggregation (Hamilton et al., NeurIPS 2017, arXiv 1706.02216):
    :math:`h_i' = W_1 \operatorname{mean}_{j \in N(i)} h_j + W_2 h_i + b`.

    The mean comes from ``graph.mean_norm()`` (cached on the graph) through :func:`spmm`.

    Shapes:
        ``x [N, in_channels]`` -> ``[N, out_channels]``.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.lin_neigh = nn.Linear(in_channels, out_channels, bias=True)
        self.lin_root = nn.Linear(in_channels, out_channels, bias=False)
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x: torch.Tensor, graph: SparseGraph) -> torch.Tensor:
        # transform first when it narrows the width, so the SpMM runs on fewer columns
        if self.out_channels < self.in_channels:
            neigh = spmm(graph.mean_norm(), x @ self.lin_neigh.weight.t()) + self.lin_neigh.bias
        else:
            neigh = self.lin_neigh(spmm(graph.mean_norm(), x))
        return neigh + self.lin_root(x)

"""GCN encoders: plain (GAE) and variational (VGAE) with a shared first layer."""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from vgraph.nn.conv import GCNConv
from vgraph.ops import SparseGraph, SparseMatrix, spmm


def _dropout(x, p: float, training: bool):
    if p == 0 or not training or isinstance(x, SparseMatrix):
        return x
    return F.dropout(x, p, training)


class GCNEncoder(nn.Module):
    """Stack of :class:`GCNConv` layers with ReLU between them (none after the last).

    Args:
        in_channels: input width. hidden_channels: width of the hidden layers.
        out_channels: embedding width. num_layers: number of GCN layers (>= 1).
        dropout: dropout on each layer's input.

    Shapes:
        ``x [N, in_channels]`` -> ``[N, out_channels]``.
    """

    def __init__(self, in_channels: int, hidden_channels: int = 32, out_channels: int = 16,
                 num_layers: int = 2, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        dims = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        self.convs = nn.ModuleList(GCNConv(a, b, bias=bias) for a, b in zip(dims[:-1], dims[1:]))
        self.dropout = dropout
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x, graph: SparseGraph) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            x = conv(_dropout(x, self.dropout, self.training), graph)
            if i < len(self.convs) - 1:
                x = F.relu(x)
        return x


class VariationalGCNEncoder(nn.Module):
    """Kipf & Welling's VGAE encoder: a shared GCN layer, then GCN heads for μ and log σ.

    Shapes:
        ``x [N, in_channels]`` -> ``(mu [N, out_channels], logstd [N, out_channels])``.
    """

    def __init__(self, in_channels: int, hidden_channels: int = 32, out_channels: int = 16,
                 dropout: float = 0.0, bias: bool = True):
        super().__init__()
        self.shared = GCNConv(in_channels, hidden_channels, bias=bias)
        self.conv_mu = GCNConv(hidden_channels, out_channels, bias=bias)
        self.conv_logstd = GCNConv(hidden_channels, out_channels, bias=bias)
        self.dropout = dropout
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x, graph: SparseGraph):
        h = F.relu(self.shared(_dropout(x, self.dropout, self.training), graph))
        h = _dropout(h, self.dropout, self.training)
        mu_c, ls_c = self.conv_mu, self.conv_logstd
        if mu_c.add_self_loops != ls_c.add_self_loops:
            return mu_c(h, graph), ls_c(h, graph)
        # both heads propagate over the same normalised adjacency: one SpMM of width 2F
        # instead of two of width F (same numbers: each output column is its own dot product)
        hw = h @ torch.cat([mu_c.weight, ls_c.weight], 1)
        out = spmm(graph.gcn_norm(mu_c.add_self_loops), hw)
        mu, logstd = out[:, :self.out_channels], out[:, self.out_channels:]
        if mu_c.bias is not None:
            mu = mu + mu_c.bias
        if ls_c.bias is not None:
            logstd = logstd + ls_c.bias
        return mu, logstd

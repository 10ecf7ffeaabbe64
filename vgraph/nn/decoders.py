"""Decoders that turn node embeddings into edge logits."""
from __future__ import annotations

import torch
from torch import nn

from vgraph.ops import dropout, pair_product, sddmm


class InnerProductDecoder(nn.Module):
    r"""Inner-product decoder :math:`\hat A_{ij} = z_i^\top z_j` (returns logits).

    ``forward(z, pairs)`` scores a list of pairs through :func:`vgraph.ops.sddmm` (no
    ``[P, F]`` gathers); ``forward_all(z)`` returns the dense ``[N, N]`` logit matrix.
    """

    def forward(self, z: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        return sddmm(z, z, pairs)

    def forward_all(self, z: torch.Tensor) -> torch.Tensor:
        return z @ z.t()


class Dropout(nn.Module):
    """``nn.Dropout`` through :func:`vgraph.ops.dropout` (compiled counter-based mask on CPU)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class HadamardMLP(nn.Module):
    """Pair score from an MLP on ``z_i * z_j`` (OGB's link predictor): symmetric in i, j.

    ``fast_dropout``: draw the hidden layers' dropout with :class:`Dropout` (4-5x less CPU
    on a ``[131072, 256]`` layer, a different random stream from ``nn.Dropout``'s).

    Shapes:
        ``z_a [P, F]``, ``z_b [P, F]`` -> ``[P, out_channels]`` (squeezed when 1).
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int = 1,
                 num_layers: int = 2, dropout: float = 0.0, fast_dropout: bool = False):
        super().__init__()
        dims = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        layers = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(a, b))
            if i < num_layers - 1:
                layers += [nn.ReLU(), Dropout(dropout) if fast_dropout else nn.Dropout(dropout)]
        self.net = nn.Sequential(*layers)

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        out = self.net(z_a * z_b)
        return out.squeeze(-1) if out.size(-1) == 1 else out

    def score_pairs(self, z: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """``forward(z[pairs[0]], z[pairs[1]])`` with the product from :func:`vgraph.ops.pair_product`
        (no ``[P, F]`` gathers on CPU): ``z [N, F]``, ``pairs [2, P]`` -> ``[P, out_channels]``."""
        out = self.net(pair_product(z, pairs))
        return out.squeeze(-1) if out.size(-1) == 1 else out


def common_neighbor_sum(z: torch.Tensor, pairs: torch.Tensor, adjacency: torch.Tensor,
                        chunk: int = 8192) -> torch.Tensor:
    r""":math:`\sum_{k \in N(i) \cap N(j)} z_k` for each pair ``(i, j)``, ``[P, F]``, gradients to ``z``.

    Per chunk of pairs, the AND of the two bool adjacency rows times ``z`` as one dense
    matmul: on ogbl-ddi (4,267 nodes, ~430 common neighbours a training edge) this measured
    faster than building a sparse ``[P, N]`` matrix for :func:`vgraph.ops.spmm` and its
    transpose for the backward. ``chunk`` bounds the ``[chunk, N]`` float temporary.
    """
    out = [(adjacency[pairs[0, s:s + chunk]] & adjacency[pairs[1, s:s + chunk]]).to(z.dtype) @ z
           for s in range(0, pairs.size(1), chunk)]
    return torch.cat(out) if out else z.new_zeros(0, z.size(1))


class CommonNeighborDecoder(nn.Module):
    """NCN-style pair decoder (Wang et al., ICLR 2024, arXiv 2302.00890): an MLP on
    ``W_1 (z_i * z_j) + W_2 sum_{k in CN(i, j)} z_k``, so a pair's score sees the embeddings
    of the drugs both interact with, not only the two endpoints. Symmetric in i, j.

    Shapes:
        ``z [N, F]``, ``pairs [2, P]``, ``adjacency`` bool ``[N, N]`` -> ``[P]``.
    """

    def __init__(self, in_channels: int, hidden_channels: int, num_layers: int = 2,
                 dropout: float = 0.0):
        super().__init__()
        self.lin_pair = nn.Linear(in_channels, hidden_channels)
        self.lin_cn = nn.Linear(in_channels, hidden_channels, bias=False)
        self.head = HadamardMLP(hidden_channels, hidden_channels, 1, max(1, num_layers - 1), dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, z: torch.Tensor, pairs: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        h = self.lin_pair(pair_product(z, pairs)) + self.lin_cn(common_neighbor_sum(z, pairs, adjacency))
        return self.head.net(self.dropout(torch.relu(h))).squeeze(-1)

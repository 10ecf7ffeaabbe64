"""Decoders that turn node embeddings into edge logits."""
from __future__ import annotations

import torch
from torch import nn

from vgraph.ops import sddmm


class InnerProductDecoder(nn.Module):
    r"""Inner-product decoder :math:`\hat A_{ij} = z_i^\top z_j` (returns logits).

    ``forward(z, pairs)`` scores a list of pairs through :func:`vgraph.ops.sddmm` (no
    ``[P, F]`` gathers); ``forward_all(z)`` returns the dense ``[N, N]`` logit matrix.
    """

    def forward(self, z: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        return sddmm(z, z, pairs)

    def forward_all(self, z: torch.Tensor) -> torch.Tensor:
        return z @ z.t()


class HadamardMLP(nn.Module):
    """Pair score from an MLP on ``z_i * z_j`` (OGB's link predictor): symmetric in i, j.

    Shapes:
        ``z_a [P, F]``, ``z_b [P, F]`` -> ``[P, out_channels]`` (squeezed when 1).
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int = 1,
                 num_layers: int = 2, dropout: float = 0.0):
        super().__init__()
        dims = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        layers = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(a, b))
            if i < num_layers - 1:
                layers += [nn.ReLU(), nn.Dropout(dropout)]
        self.net = nn.Sequential(*layers)

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        out = self.net(z_a * z_b)
        return out.squeeze(-1) if out.size(-1) == 1 else out

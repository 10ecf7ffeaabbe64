r"""Reconstruction losses for graph autoencoders.

Kipf & Welling's dense loss weights every positive pair by ``pos_weight`` :math:`p` in a BCE
over all :math:`N^2` pairs. With :math:`s = z_i^\top z_j`, :math:`\ell^+ = p\,\mathrm{sp}(-s)` and
:math:`\ell^- = \mathrm{sp}(s)` (softplus), and :math:`\mathrm{sp}(-s) = \mathrm{sp}(s) - s`, so

.. math::
    \sum_{ij} \ell_{ij} = \sum_{ij} \mathrm{sp}(s_{ij})
        + \sum_{(i,j) \in E^+} \big[(p - 1)\,\mathrm{sp}(s_{ij}) - p\, s_{ij}\big].

The first sum runs over all pairs but needs no target matrix: :class:`AllPairsSoftplus`
computes it and its gradient :math:`2\,\sigma(ZZ^\top) Z` in row blocks, reusing one block
buffer, so the ``[N, N]`` logits, targets and their gradients are never materialised.
The second sum touches only the positive pairs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vgraph.ops import sddmm

BLOCK_ROWS = 512


class AllPairsSoftplus(torch.autograd.Function):
    """``sum_ij softplus(z_i . z_j)`` over all ordered pairs, blockwise, with its gradient.

    When a gradient is needed and the ``[N, N]`` matrix fits in ``KEEP_BYTES`` (a batch of
    small graphs, Cora), the forward keeps ``sigmoid(S)`` so the backward is one GEMM per
    block instead of two; larger graphs recompute each block of ``S`` in the backward. Both
    ways run the same GEMMs on the same operands, so the values and gradients are the same
    bit for bit (``tests/test_nn_losses.py``).
    """

    KEEP_BYTES = 128 * 2**20

    @staticmethod
    def forward(ctx, z: torch.Tensor, block: int = BLOCK_ROWS):
        n = z.size(0)
        keep = ctx.needs_input_grad[0] and n * n * z.element_size() <= AllPairsSoftplus.KEEP_BYTES
        full = z.new_empty(n, n) if keep else None
        buf = None if keep else z.new_empty(min(block, n), n)
        total = z.new_zeros(())
        zt = z.t()
        for start in range(0, n, block):
            stop = min(start + block, n)
            s = full[start:stop] if keep else buf[: stop - start]
            torch.mm(z[start:stop], zt, out=s)
            total += F.softplus(s).sum()
            if keep:
                torch.sigmoid_(s)
        ctx.save_for_backward(z)
        ctx.block, ctx.sig = block, full
        return total

    @staticmethod
    def backward(ctx, grad_out):
        (z,) = ctx.saved_tensors
        n, block, sig = z.size(0), ctx.block, ctx.sig
        ctx.sig = None
        buf = None if sig is not None else z.new_empty(min(block, n), n)
        grad = torch.empty_like(z)
        zt = z.t()
        for start in range(0, n, block):
            stop = min(start + block, n)
            if sig is not None:
                s = sig[start:stop]
            else:
                s = buf[: stop - start]
                torch.mm(z[start:stop], zt, out=s)
                torch.sigmoid_(s)
            torch.mm(s, z, out=grad[start:stop])
        return grad.mul_(2 * grad_out), None


def dense_bce_loss(z: torch.Tensor, pos_pairs: torch.Tensor, pos_weight: float, norm: float) -> torch.Tensor:
    """Kipf's ``norm * mean_ij BCE(z_i . z_j, A_ij; pos_weight)`` without an ``[N, N]`` matrix.

    Args:
        z: ``[N, D]`` embeddings. pos_pairs: ``[2, P]`` ordered positive pairs (each
            undirected edge in both directions, plus the diagonal if self-loops are labels).
    """
    n = z.size(0)
    pos = sddmm(z, z, pos_pairs)
    total = AllPairsSoftplus.apply(z, BLOCK_ROWS) + ((pos_weight - 1) * F.softplus(pos) - pos_weight * pos).sum()
    return norm * total / (n * n)

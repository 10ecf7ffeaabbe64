"""Dropout for wide activations: a compiled, counter-based mask (no mask tensor, no Bernoulli draws).

torch's CPU ``F.dropout`` spends most of its time drawing one Bernoulli variable per element
(575 ms of CPU for a ``[131072, 256]`` activation here, 7x a ReLU of it). :func:`dropout`
draws one 64-bit seed from torch's default generator per call (so ``torch.manual_seed`` and
the Trainer's saved RNG state reproduce it) and keeps element ``i`` when a hash of
``(seed, i)`` clears the threshold; the backward recomputes the same hash. Falls back to
``F.dropout`` where the compiled kernels cannot run. Same distribution as ``F.dropout``,
different random stream.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

MIN_ELEMENTS = 2**16  # below this F.dropout is as fast


class _Dropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, p, seed):
        from vgraph.ops import cpu_kernels
        ctx.p, ctx.seed = p, seed
        return cpu_kernels.dropout(x, seed, p)

    @staticmethod
    def backward(ctx, grad):
        from vgraph.ops import cpu_kernels
        return cpu_kernels.dropout(grad.contiguous(), ctx.seed, ctx.p), None, None


def dropout(x: torch.Tensor, p: float = 0.5, training: bool = True) -> torch.Tensor:
    """Like ``F.dropout(x, p, training)``; the compiled path for large float CPU tensors."""
    if not training or p == 0.0:
        return x
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    from vgraph.ops import backend
    if x.numel() < MIN_ELEMENTS or not backend.use_numba(x.device, x.dtype):
        return F.dropout(x, p, True)
    seed = int(torch.randint(0, 2**62, (1,)).item())
    return _Dropout.apply(x, p, seed)

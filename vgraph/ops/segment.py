"""Segment reductions: sum / mean / max over contiguous segments (CSR offsets or a sorted index).

Used for neighbourhood reductions (segments = a node's in-edges) and for pooling node
features into graph features in a batch (segments = a graph's nodes). Empty segments
reduce to 0. Gradients flow to ``src`` (for max: to the arg-max entry).

On CUDA with Triton (rule in :mod:`vgraph.ops.backend`), sum and mean run the Triton
segment kernel, and on CPU the compiled kernel of :mod:`vgraph.ops.cpu_kernels` (numba;
both with the backward a gather of the output gradient); max always uses
``torch.segment_reduce`` for the forward. The max backward is vgraph's own: the gradient
is split evenly among tied maxima of a segment and column (torch 2.13's
``segment_reduce`` backward gives some tied entries the full gradient each, so duplicate
edges double-counted it).
"""
from __future__ import annotations

import torch


def _check(src: torch.Tensor, indptr: torch.Tensor):
    if indptr.dim() != 1 or indptr.numel() < 1:
        raise ValueError("indptr must be a 1-D tensor of segment offsets")
    if int(indptr[-1]) != src.size(0):
        raise ValueError(f"indptr ends at {int(indptr[-1])} but src has {src.size(0)} rows")


class _SegmentSumMean(torch.autograd.Function):
    @staticmethod
    def forward(ctx, src, indptr, reduce, impl):
        ctx.reduce = reduce
        ctx.save_for_backward(indptr)
        ctx.src_shape = src.shape
        if impl == "numba":
            from vgraph.ops import cpu_kernels
            return cpu_kernels.segment(src, indptr, reduce == "mean")
        from vgraph.ops import triton_kernels
        return triton_kernels.segment_csr(src, indptr, reduce)

    @staticmethod
    def backward(ctx, grad):
        (indptr,) = ctx.saved_tensors
        counts = indptr[1:] - indptr[:-1]
        g = grad
        if ctx.reduce == "mean":
            g = g / counts.clamp(min=1).to(g.dtype).view((-1,) + (1,) * (g.dim() - 1))
        grad_src = torch.repeat_interleave(g, counts, dim=0, output_size=ctx.src_shape[0])
        return grad_src, None, None, None


class _SegmentMax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, src, indptr):
        out = torch.segment_reduce(src, "max", offsets=indptr, axis=0, unsafe=True)
        empty = (indptr[1:] == indptr[:-1]).view((-1,) + (1,) * (src.dim() - 1))
        if bool(empty.any()):
            out = torch.where(empty, torch.zeros((), dtype=out.dtype, device=out.device), out)
        ctx.save_for_backward(src, indptr, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        src, indptr, out = ctx.saved_tensors
        counts = indptr[1:] - indptr[:-1]
        n = src.size(0)
        hit = (src == torch.repeat_interleave(out, counts, dim=0, output_size=n)).to(grad.dtype)
        ties = torch.segment_reduce(hit, "sum", offsets=indptr, axis=0, unsafe=True).clamp(min=1)
        share = torch.repeat_interleave(grad / ties, counts, dim=0, output_size=n)
        return hit * share, None


def segment_csr(src: torch.Tensor, indptr: torch.Tensor, reduce: str = "sum") -> torch.Tensor:
    """Reduce rows ``src[indptr[i]:indptr[i+1]]`` for every segment ``i``.

    Shapes:
        ``src [E, *]``, ``indptr [S+1]`` -> ``[S, *]``.
    """
    _check(src, indptr)
    if reduce not in ("sum", "mean", "max"):
        raise ValueError(f"unknown reduce {reduce!r}; use 'sum', 'mean' or 'max'")
    num_segments = indptr.numel() - 1
    if src.size(0) == 0:
        return src.new_zeros((num_segments,) + tuple(src.shape[1:]))
    if reduce != "max" and src.is_floating_point():
        from vgraph.ops import backend
        width = src[0].numel() if src.dim() > 1 else 1
        if backend.choose(src.device, max(width, backend.TRITON_MIN_F)) == "triton":
            return _SegmentSumMean.apply(src.float(), indptr, reduce, "triton")
        if backend.use_numba(src.device, src.dtype):
            return _SegmentSumMean.apply(src, indptr, reduce, "numba")
    if reduce == "max" and src.requires_grad and torch.is_grad_enabled():
        return _SegmentMax.apply(src, indptr)
    out = torch.segment_reduce(src, reduce, offsets=indptr, axis=0, unsafe=True)
    if reduce != "sum":
        empty = (indptr[1:] == indptr[:-1]).view((-1,) + (1,) * (src.dim() - 1))
        if bool(empty.any()):
            out = torch.where(empty, torch.zeros((), dtype=out.dtype, device=out.device), out)
    return out


def segment_sum_csr(src, indptr):
    """Sum over CSR segments."""
    return segment_csr(src, indptr, "sum")


def segment_mean_csr(src, indptr):
    """Mean over CSR segments (0 for empty)."""
    return segment_csr(src, indptr, "mean")


def segment_max_csr(src, indptr):
    """Max over CSR segments (0 for empty)."""
    return segment_csr(src, indptr, "max")


def concat_ranges(starts: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Concatenation of ``arange(s, s + c)`` for each ``(s, c)``, vectorised: the flat
    positions of chosen CSR segments (a batch of graphs' nodes, a molecule's atoms)."""
    total = int(counts.sum())
    if total == 0:
        return torch.zeros(0, dtype=torch.long)
    offsets = torch.cumsum(counts, 0) - counts
    return torch.arange(total) - torch.repeat_interleave(offsets - starts, counts)


def index_to_indptr(index: torch.Tensor, num_segments: int | None = None) -> torch.Tensor:
    """Offsets of a *sorted* segment index (e.g. PyG's ``batch`` vector)."""
    if index.numel() and bool((index[1:] < index[:-1]).any()):
        raise ValueError("segment index must be sorted (ascending)")
    if num_segments is None:
        num_segments = int(index.max()) + 1 if index.numel() else 0
    counts = torch.bincount(index, minlength=num_segments)
    indptr = torch.zeros(num_segments + 1, dtype=torch.long, device=index.device)
    torch.cumsum(counts, 0, out=indptr[1:])
    return indptr


def segment(src: torch.Tensor, index: torch.Tensor, num_segments: int | None = None,
            reduce: str = "sum") -> torch.Tensor:
    """Reduce rows of ``src`` grouped by a sorted ``index`` (e.g. graph pooling)."""
    return segment_csr(src, index_to_indptr(index, num_segments), reduce)

"""Pair scoring without materialising ``[P, F]`` gathers: sampled dense-dense products.

``sddmm(a, b, pairs)[k] = <a[pairs[0, k]], b[pairs[1, k]]>``. Methods:

* ``"gram"`` (CPU, many pairs over few nodes, e.g. ogbl-ddi): one GEMM ``a @ b.T`` into a
  reused workspace and a ``take`` of the P scores; the backward scatters the score
  gradients into the same workspace and runs two GEMMs. Chosen by ``"auto"`` when
  ``N_a * N_b <= GRAM_PAIR_RATIO * P`` and the ``[N_a, N_b]`` workspace fits in
  ``GRAM_MAX_BYTES``: BLAS does ``N_a N_b F`` flops far faster than the ``2 P F`` random
  gathers (and the ``[P, F]`` allocations) of the plain way.
* ``"sparse"``: ``torch.sparse.sampled_addmm`` over a CSR pattern of the pairs, backward two
  SpMMs with the score gradients as sparse values.
  Chosen by ``"auto"`` on CPU for ``F >= SDDMM_MIN_F`` and ``P * F > GATHER_MAX_PF`` when
  ``"gram"`` does not apply and numba is not usable (or ``VGRAPH_BACKEND`` forces a
  torch path).
* ``"numba"`` (CPU, chosen by ``"auto"`` where ``"sparse"`` would otherwise be): the compiled pair kernel
  of :mod:`vgraph.ops.cpu_kernels`, a gather-dot per pair with no ``[P, F]`` temporaries
  and no sort; the backward scatters ``g_k b[j_k]`` into ``grad_a`` with threads owning
  whole feature columns (no atomics, pairs in order).
* ``"gather"``: gather-multiply-sum (``"auto"`` for ``F < SDDMM_MIN_F``, for small batches
  ``P * F <= GATHER_MAX_PF`` — e.g. Cora's 2 x 4,488 pairs at F = 16: 0.67 ms against 1.54 ms
  forward+backward, the pattern's two sorts dominating — and on CUDA without Triton).

On CUDA with Triton, a fused pair
kernel (:func:`vgraph.ops.triton_kernels.sddmm_pairs`) scores the pairs and the backward
is two Triton SpMMs over the pair pattern. All give the same numbers within float
tolerance (the dispatch rule is in :mod:`vgraph.ops.backend`).
"""
from __future__ import annotations

import torch

from vgraph.ops.graph import _csr_from_rows

SDDMM_MIN_F = 8  # below this width the plain gather is as fast (measured, docs/performance.md)
GATHER_MAX_PF = 2**19  # gather when P * F <= this: building the CSR pattern (two sorts) costs more
GRAM_PAIR_RATIO = 32  # "gram" when N_a * N_b <= GRAM_PAIR_RATIO * P (measured, docs/performance.md)
GRAM_MAX_BYTES = 512 * 2**20  # largest [N_a, N_b] fp32 workspace "gram" may hold

_WORKSPACE: dict = {}  # (shape, device) -> reused fp32 buffer (fresh >32 MB allocations cost ~10 ms)


def _workspace(n_rows: int, n_cols: int, device) -> torch.Tensor:
    key = (n_rows, n_cols, str(device))
    buf = _WORKSPACE.get(key)
    if buf is None:
        _WORKSPACE.clear()  # keep one workspace: graphs of one run share their size
        buf = _WORKSPACE[key] = torch.empty(n_rows, n_cols, dtype=torch.float32, device=device)
    return buf


def clear_workspace():
    """Drop the cached pair-scoring workspace (frees ``N_a * N_b * 4`` bytes)."""
    _WORKSPACE.clear()


class _SDDMMGram(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, pairs):
        ws = _workspace(a.size(0), b.size(0), a.device)
        torch.mm(a, b.t(), out=ws)
        flat = pairs[0] * b.size(0) + pairs[1]
        ctx.save_for_backward(a, b, flat)
        return torch.take(ws, flat)

    @staticmethod
    def backward(ctx, grad):
        a, b, flat = ctx.saved_tensors
        ws = _workspace(a.size(0), b.size(0), a.device)
        ws.zero_()
        ws.view(-1).index_put_((flat,), grad.to(ws.dtype), accumulate=True)
        grad_a = ws @ b if ctx.needs_input_grad[0] else None
        grad_b = ws.t() @ a if ctx.needs_input_grad[1] else None
        return grad_a, grad_b, None


def _pattern(rows: torch.Tensor, cols: torch.Tensor, n_rows: int):
    vals = torch.arange(rows.numel(), device=rows.device, dtype=torch.float32)
    indptr, indices, _, order = _csr_from_rows(rows, cols, vals, n_rows)
    return indptr, indices, order


class _SDDMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, pairs):
        src, dst = pairs[0], pairs[1]
        indptr, indices, order = _pattern(src, dst, a.size(0))
        pattern = torch.sparse_csr_tensor(indptr, indices, torch.zeros(indices.numel(), dtype=a.dtype,
                                                                       device=a.device), (a.size(0), b.size(0)))
        vals = torch.sparse.sampled_addmm(pattern, a, b.t(), beta=0.0).values()
        out = torch.empty_like(vals)
        out[order] = vals
        ctx.save_for_backward(a, b, pairs)
        ctx.csr_src = (indptr, indices, order)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, pairs = ctx.saved_tensors
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            indptr, indices, order = ctx.csr_src
            g = torch.sparse_csr_tensor(indptr, indices, grad[order].contiguous(), (a.size(0), b.size(0)))
            grad_a = torch.sparse.mm(g, b)
        if ctx.needs_input_grad[1]:
            indptr, indices, order = _pattern(pairs[1], pairs[0], b.size(0))
            g = torch.sparse_csr_tensor(indptr, indices, grad[order].contiguous(), (b.size(0), a.size(0)))
            grad_b = torch.sparse.mm(g, a)
        return grad_a, grad_b, None


class _SDDMMNumba(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, pairs):
        from vgraph.ops import cpu_kernels
        ctx.save_for_backward(a, b, pairs)
        return cpu_kernels.sddmm(a, b, pairs[0], pairs[1])

    @staticmethod
    def backward(ctx, grad):
        from vgraph.ops import cpu_kernels
        a, b, pairs = ctx.saved_tensors
        grad = grad.to(a.dtype)
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = cpu_kernels.sddmm_scatter(grad, b, pairs[0], pairs[1], a.size(0))
        if ctx.needs_input_grad[1]:
            grad_b = cpu_kernels.sddmm_scatter(grad, a, pairs[1], pairs[0], b.size(0))
        return grad_a, grad_b, None


class _SDDMMTriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, pairs):
        from vgraph.ops import triton_kernels
        src32, dst32 = pairs[0].to(torch.int32), pairs[1].to(torch.int32)
        ctx.save_for_backward(a, b, pairs)
        return triton_kernels.sddmm_pairs(a, b, src32, dst32)

    @staticmethod
    def backward(ctx, grad):
        from vgraph.ops import triton_kernels
        a, b, pairs = ctx.saved_tensors
        grad = grad.contiguous().to(torch.float32)
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            indptr, indices, order = _pattern(pairs[0], pairs[1], a.size(0))
            grad_a = triton_kernels.csr_spmm(indptr.to(torch.int32), indices.to(torch.int32),
                                             grad[order].contiguous(), b)
        if ctx.needs_input_grad[1]:
            indptr, indices, order = _pattern(pairs[1], pairs[0], b.size(0))
            grad_b = triton_kernels.csr_spmm(indptr.to(torch.int32), indices.to(torch.int32),
                                             grad[order].contiguous(), a)
        return grad_a, grad_b, None


def sddmm(a: torch.Tensor, b: torch.Tensor, pairs: torch.Tensor, method: str = "auto") -> torch.Tensor:
    """Inner products of row pairs: ``out[k] = a[pairs[0,k]] . b[pairs[1,k]]``.

    Args:
        a, b: ``[N_a, F]`` and ``[N_b, F]`` dense features (often the same tensor).
        pairs: ``[2, P]`` integer indices.
        method: ``"auto"``, ``"gram"``, ``"sparse"`` (sampled_addmm), ``"numba"``, ``"gather"``
            or ``"triton"``.

    Shapes:
        -> ``[P]``.
    """
    if pairs.dim() != 2 or pairs.size(0) != 2:
        raise ValueError(f"pairs must be [2, P], got {tuple(pairs.shape)}")
    if a.size(1) != b.size(1):
        raise ValueError(f"feature widths differ: {a.size(1)} vs {b.size(1)}")
    pairs = pairs.to(torch.long)
    if pairs.numel() == 0:
        return a.new_zeros(0) + 0 * (a.sum() + b.sum())
    if method == "auto":
        from vgraph.ops import backend
        if backend.choose(a.device, a.size(1)) == "triton":
            method = "triton"
        elif (a.device.type == "cpu" and a.size(1) >= SDDMM_MIN_F
              and a.dtype == b.dtype == torch.float32
              and a.size(0) * b.size(0) <= GRAM_PAIR_RATIO * pairs.size(1)
              and a.size(0) * b.size(0) * 4 <= GRAM_MAX_BYTES):
            method = "gram"
        elif (a.device.type == "cpu" and a.size(1) >= SDDMM_MIN_F
              and pairs.size(1) * a.size(1) > GATHER_MAX_PF):
            method = "numba" if backend.use_numba(a.device, torch.promote_types(a.dtype, b.dtype)) \
                else "sparse"
        else:
            method = "gather"
    if method == "gather":
        return (a[pairs[0]] * b[pairs[1]]).sum(-1)
    if method == "sparse":
        return _SDDMM.apply(a.contiguous(), b.contiguous(), pairs)
    if method == "numba":
        dtype = torch.promote_types(a.dtype, b.dtype)
        if dtype not in (torch.float32, torch.float64):
            dtype = torch.float32
        return _SDDMMNumba.apply(a.contiguous().to(dtype), b.contiguous().to(dtype), pairs.contiguous())
    if method == "gram":
        return _SDDMMGram.apply(a.contiguous().float(), b.contiguous().float(), pairs)
    if method == "triton":
        return _SDDMMTriton.apply(a.contiguous().float(), b.contiguous().float(), pairs)
    raise ValueError(f"unknown method {method!r}")


class _PairProductNumba(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, pairs):
        from vgraph.ops import cpu_kernels
        ctx.save_for_backward(z, pairs)
        return cpu_kernels.hadamard(z, pairs[0], pairs[1])

    @staticmethod
    def backward(ctx, grad):
        from vgraph.ops import cpu_kernels
        z, pairs = ctx.saved_tensors
        return cpu_kernels.hadamard_backward(grad.contiguous(), z, pairs[0], pairs[1]), None


def pair_product(z: torch.Tensor, pairs: torch.Tensor, method: str = "auto") -> torch.Tensor:
    """Elementwise products of row pairs of one matrix: ``out[k] = z[pairs[0,k]] * z[pairs[1,k]]``.

    The input of a Hadamard-MLP pair decoder. On CPU the compiled kernel writes the ``[P, F]``
    product once and its backward scatters into ``z`` directly (columns split across threads,
    pairs in order: deterministic), instead of two ``[P, F]`` gathers, their product and two
    index-accumulates. ``method``: ``"auto"``, ``"numba"`` or ``"gather"``.

    Shapes:
        ``z [N, F]``, ``pairs [2, P]`` -> ``[P, F]``.
    """
    if pairs.dim() != 2 or pairs.size(0) != 2:
        raise ValueError(f"pairs must be [2, P], got {tuple(pairs.shape)}")
    pairs = pairs.to(torch.long)
    if method == "auto":
        from vgraph.ops import backend
        method = "numba" if (pairs.size(1) * z.size(1) > GATHER_MAX_PF
                             and backend.use_numba(z.device, z.dtype)) else "gather"
    if method == "gather":
        return z[pairs[0]] * z[pairs[1]]
    if method == "numba":
        return _PairProductNumba.apply(z.contiguous(), pairs.contiguous())
    raise ValueError(f"unknown method {method!r}")

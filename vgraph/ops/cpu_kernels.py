"""Compiled CPU kernels (numba) for the sparse primitives.

Imported on first use only (:func:`kernels`), after pointing numba's on-disk compile
cache at ``$VGRAPH_CACHE/numba`` (the package folder may be read-only, and the data root is
never written). numba ships as a wheel, so no compiler is needed on the user's machine;
the first call in a fresh cache compiles for a few seconds, later processes load the cache.

Threads: numba's ``workqueue`` pool sized to ``torch.get_num_threads()`` (see
:func:`_configure` for why not OpenMP). Kernels (all accumulate in fp32 or wider, write
each output row once, no atomics):

* ``spmm``: ``Y = A @ X`` for CSR ``A``. The non-zeros are cut into chunks of about equal
  size (:func:`row_plan`), one per task of a ``prange``; chunk boundaries sit on row starts
  except inside rows longer than a chunk (power-law hubs), whose pieces go to a per-chunk
  carry row that a short serial pass adds in chunk order. Rows that are not split are
  summed non-zero by non-zero in CSR order, as MKL does, so the order of additions — and
  hence the digits — does not depend on the thread count.
* ``sddmm``: ``s[k] = <a[i_k], b[j_k]>`` (parallel over pairs) and its backward
  ``grad_a[i_k] += g_k b[j_k]`` split by feature columns across threads (each thread owns
  whole columns, so the scatter needs no atomics and keeps the pairs' order).
* ``segment``: sums / means of contiguous row segments, parallel over segments.
* ``transpose``: CSR -> CSR of the transpose by a counting sort (O(nnz), stable).
"""
from __future__ import annotations

import os
import threading

import numpy as np
import torch

_LOCK = threading.Lock()
_CALL_LOCK = threading.Lock()  # one kernel at a time (numba's workqueue pool is not re-entrant)
_KERNELS = None
_IMPORT_ERROR: Exception | None = None

CHUNKS_PER_THREAD = 4  # more chunks than threads: balances rows of unequal cost
MIN_CHUNK_NNZ = 2048  # below this per chunk a task costs more to start than it computes


def _configure():
    """Point numba's cache at ``$VGRAPH_CACHE/numba`` and pick its thread pool, unless the
    user chose them (``NUMBA_CACHE_DIR``, ``NUMBA_THREADING_LAYER``).

    The pool is numba's own ``workqueue``, whose idle threads sleep: numba's OpenMP layer
    loads the system libgomp beside torch's, and two OpenMP pools that spin-wait after each
    parallel region fight over the cores every time a model alternates a vgraph SpMM with a
    torch GEMM (on a 2-core machine a spinning pool turned a 0.2 ms SpMM into 260 ms, see
    docs/performance.md). ``workqueue`` must not be entered by two threads at once, so
    every kernel call holds ``_CALL_LOCK``.
    """
    if "NUMBA_CACHE_DIR" not in os.environ:
        from vgraph.paths import cache_dir
        os.environ["NUMBA_CACHE_DIR"] = str(cache_dir("numba"))
    os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
    import numba
    # numba reads these when first imported; if someone imported it earlier its config
    # still says "next to the source" (the package), so set the values it uses
    numba.config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]
    numba.config.THREADING_LAYER = os.environ["NUMBA_THREADING_LAYER"]


def available() -> bool:
    """Whether numba imports (it is a dependency; a broken install falls back to torch)."""
    try:
        kernels()
    except Exception:
        return False
    return True


def kernels():
    """The compiled kernel namespace (imports numba on the first call)."""
    global _KERNELS, _IMPORT_ERROR
    if _KERNELS is not None:
        return _KERNELS
    if _IMPORT_ERROR is not None:
        raise RuntimeError(f"numba is not usable: {_IMPORT_ERROR}") from _IMPORT_ERROR
    with _LOCK:
        if _KERNELS is None:
            try:
                _configure()
                _KERNELS = _build()
            except Exception as exc:  # pragma: no cover - depends on the install
                _IMPORT_ERROR = exc
                raise RuntimeError(f"numba is not usable: {exc}") from exc
    return _KERNELS


def _build():
    import types

    import numba
    from numba import njit, prange

    # IEEE arithmetic (no FMA contraction, no reassociation): a product is rounded, then
    # added, non-zero by non-zero, which is what MKL's CSR routine gives here (bit-equal on
    # Cora), so switching between the two paths does not move results.
    opts = dict(cache=True, nogil=True)

    @njit(**opts)
    def _accumulate(indices, values, x, s, e, dst):
        """dst = sum over k in [s, e) of values[k] * x[indices[k]], in order of k."""
        F = dst.shape[0]
        for f in range(F):
            dst[f] = 0.0
        k = s
        while k + 4 <= e:  # four non-zeros per pass over dst: a quarter of its loads/stores
            j0, j1, j2, j3 = indices[k], indices[k + 1], indices[k + 2], indices[k + 3]
            v0, v1, v2, v3 = values[k], values[k + 1], values[k + 2], values[k + 3]
            x0, x1, x2, x3 = x[j0], x[j1], x[j2], x[j3]
            for f in range(F):
                a = dst[f]
                a += v0 * x0[f]
                a += v1 * x1[f]
                a += v2 * x2[f]
                a += v3 * x3[f]
                dst[f] = a
            k += 4
        while k < e:
            v = values[k]
            xj = x[indices[k]]
            for f in range(F):
                dst[f] += v * xj[f]
            k += 1

    @njit(parallel=True, **opts)
    def spmm(indptr, indices, values, x, bounds, out, carry, carry_row):
        n_rows = indptr.shape[0] - 1
        n_chunks = bounds.shape[0] - 1
        for c in prange(n_chunks):
            lo, hi = bounds[c], bounds[c + 1]
            carry_row[c] = -1
            last = c == n_chunks - 1
            r = np.searchsorted(indptr, lo)  # the first row starting at or after lo
            if indptr[r] > lo:  # row r - 1 began in an earlier chunk (a split hub): carry its piece
                _accumulate(indices, values, x, lo, min(indptr[r], hi), carry[c])
                carry_row[c] = r - 1
            while r < n_rows and (indptr[r] < hi or (last and indptr[r] <= hi)):
                _accumulate(indices, values, x, indptr[r], min(indptr[r + 1], hi), out[r])
                r += 1
        for c in range(n_chunks):  # serial, in chunk order: deterministic
            r = carry_row[c]
            if r >= 0:
                out[r] += carry[c]

    @njit(parallel=True, cache=True, nogil=True, fastmath=True)  # a dot product: reassociate, vectorise
    def sddmm(a, b, src, dst, out):
        F = a.shape[1]
        for k in prange(src.shape[0]):
            ai, bj = a[src[k]], b[dst[k]]
            acc = 0.0
            for f in range(F):
                acc += ai[f] * bj[f]
            out[k] = acc

    @njit(parallel=True, **opts)
    def sddmm_scatter(grad, other, idx_out, idx_other, out, col_bounds):
        """out[idx_out[k], :] += grad[k] * other[idx_other[k], :], columns split by thread."""
        for t in prange(col_bounds.shape[0] - 1):
            f0, f1 = col_bounds[t], col_bounds[t + 1]
            for i in range(out.shape[0]):
                for f in range(f0, f1):
                    out[i, f] = 0.0
            for k in range(grad.shape[0]):
                g = grad[k]
                o, p = out[idx_out[k]], other[idx_other[k]]
                for f in range(f0, f1):
                    o[f] += g * p[f]

    @njit(parallel=True, **opts)
    def segment(src, indptr, out, mean):
        F = src.shape[1]
        for s in prange(indptr.shape[0] - 1):
            lo, hi = indptr[s], indptr[s + 1]
            o = out[s]
            for f in range(F):
                o[f] = 0.0
            for k in range(lo, hi):
                row = src[k]
                for f in range(F):
                    o[f] += row[f]
            if mean and hi > lo:
                for f in range(F):
                    o[f] /= hi - lo

    @njit(**opts)
    def transpose(indptr, indices, values, n_cols, t_indptr, t_indices, t_values):
        n_rows = indptr.shape[0] - 1
        t_indptr[:] = 0
        for k in range(indices.shape[0]):
            t_indptr[indices[k] + 1] += 1
        for j in range(n_cols):
            t_indptr[j + 1] += t_indptr[j]
        fill = t_indptr[:-1].copy()
        for r in range(n_rows):
            for k in range(indptr[r], indptr[r + 1]):
                j = indices[k]
                p = fill[j]
                t_indices[p] = r
                t_values[p] = values[k]
                fill[j] = p + 1

    return types.SimpleNamespace(numba=numba, spmm=spmm, sddmm=sddmm, sddmm_scatter=sddmm_scatter,
                                 segment=segment, transpose=transpose)


def _sync_threads(k):
    n = max(1, min(torch.get_num_threads(), k.numba.config.NUMBA_NUM_THREADS))
    if k.numba.get_num_threads() != n:
        k.numba.set_num_threads(n)
    return n


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def row_plan(indptr: np.ndarray, n_chunks: int) -> np.ndarray:
    """Chunk boundaries (positions in the non-zeros) of about ``nnz / n_chunks`` each.

    Each ideal cut is moved back to the start of the row it falls in, unless that row is
    longer than a chunk: then the cut stays inside it, and the row is split (a hub).
    """
    nnz = int(indptr[-1])
    n_chunks = max(1, min(n_chunks, nnz // MIN_CHUNK_NNZ))
    ideal = (np.arange(n_chunks + 1, dtype=np.int64) * nnz) // n_chunks
    row = np.searchsorted(indptr, ideal, side="right") - 1
    row = np.clip(row, 0, indptr.size - 2)
    start, end = indptr[row], indptr[row + 1]
    long_row = (end - start) > max(1, nnz // n_chunks)
    cuts = np.where(long_row, ideal, start)
    cuts[0], cuts[-1] = 0, nnz
    return np.maximum.accumulate(cuts).astype(indptr.dtype)


def _plan(mat, n_threads: int):
    key = n_threads * CHUNKS_PER_THREAD
    plans = mat.__dict__.setdefault("_cpu_plans", {})
    if key not in plans:
        indptr = _np(mat.indptr)
        plans[key] = row_plan(indptr, key)
    return plans[key]


def csr_spmm(mat, x: torch.Tensor) -> torch.Tensor:
    """``A @ x`` for a :class:`~vgraph.ops.SparseMatrix` on CPU tensors (no autograd)."""
    k = kernels()
    n = _sync_threads(k)
    x = x.contiguous()
    out = torch.empty(mat.shape[0], x.size(1), dtype=x.dtype)
    bounds = _plan(mat, n)
    carry = np.empty((bounds.size - 1, x.size(1)), dtype=_np(x).dtype)
    carry_row = np.empty(bounds.size - 1, dtype=np.int64)
    values = mat.values if mat.values.dtype == x.dtype else mat.values.to(x.dtype)
    with _CALL_LOCK:
        k.spmm(_np(mat.indptr), _np(mat.indices), _np(values), _np(x), bounds, _np(out), carry, carry_row)
    return out


def sddmm(a: torch.Tensor, b: torch.Tensor, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    k = kernels()
    _sync_threads(k)
    out = torch.empty(src.numel(), dtype=a.dtype)
    with _CALL_LOCK:
        k.sddmm(_np(a), _np(b), _np(src), _np(dst), _np(out))
    return out


def _col_bounds(F: int, n_threads: int) -> np.ndarray:
    parts = max(1, min(n_threads, F // 8 if F >= 16 else 1))  # >= 8 columns per thread (one vector)
    return (np.arange(parts + 1, dtype=np.int64) * F) // parts


def sddmm_scatter(grad: torch.Tensor, other: torch.Tensor, idx_out: torch.Tensor,
                  idx_other: torch.Tensor, n_out: int) -> torch.Tensor:
    """``out[idx_out[k]] += grad[k] * other[idx_other[k]]`` (the SDDMM backward)."""
    k = kernels()
    n = _sync_threads(k)
    out = torch.empty(n_out, other.size(1), dtype=other.dtype)
    with _CALL_LOCK:
        k.sddmm_scatter(_np(grad.contiguous()), _np(other), _np(idx_out), _np(idx_other), _np(out),
                        _col_bounds(other.size(1), n))
    return out


def segment(src: torch.Tensor, indptr: torch.Tensor, mean: bool) -> torch.Tensor:
    k = kernels()
    _sync_threads(k)
    flat = src.contiguous().view(src.size(0), -1)
    out = torch.empty(indptr.numel() - 1, flat.size(1), dtype=src.dtype)
    with _CALL_LOCK:
        k.segment(_np(flat), _np(indptr), _np(out), bool(mean))
    return out.view((indptr.numel() - 1,) + tuple(src.shape[1:]))


def transpose(indptr: torch.Tensor, indices: torch.Tensor, values: torch.Tensor, n_cols: int):
    """``(indptr, indices, values)`` of the transpose, columns ascending within each row."""
    k = kernels()
    t_indptr = torch.empty(n_cols + 1, dtype=indptr.dtype)
    t_indices = torch.empty_like(indices)
    t_values = torch.empty_like(values)
    with _CALL_LOCK:
        k.transpose(_np(indptr), _np(indices), _np(values), int(n_cols), _np(t_indptr), _np(t_indices),
                    _np(t_values))
    return t_indptr, t_indices, t_values

"""Compiled CPU kernels (numba) for the sparse primitives.

Imported on first use only (:func:`kernels`), after pointing numba's on-disk compile
cache at ``$VGRAPH_CACHE/numba`` (the package folder may be read-only, and the data root is
never written). numba ships as a wheel, so no compiler is needed on the user's machine;
the first call in a fresh cache compiles for a few seconds, later processes load the cache.

Threads: numba's pool (OpenMP with sleeping idle threads, see :func:`_configure`), sized to
``torch.get_num_threads()``; calls below ``PARALLEL_MIN_WORK`` multiply-adds run on the
calling thread and wake no pool. Kernels (all accumulate in fp32 or wider, write
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
_CALL_LOCK = threading.Lock()  # one kernel at a time (numba's workqueue fallback is not re-entrant)
_KERNELS = None
_IMPORT_ERROR: Exception | None = None

CHUNKS_PER_THREAD = 4  # more chunks than threads: balances rows of unequal cost
MIN_CHUNK_NNZ = 2048  # below this per chunk a task costs more to start than it computes


def _configure():
    """Point numba's cache at ``$VGRAPH_CACHE/numba`` and start its thread pool with
    sleeping idle threads, unless the user chose (``NUMBA_CACHE_DIR``,
    ``NUMBA_THREADING_LAYER``, ``OMP_WAIT_POLICY``).

    numba's OpenMP layer loads the system libgomp beside torch's own copy. Two OpenMP pools
    whose threads spin after each parallel region fight over the cores every time a model
    alternates a vgraph SpMM with a torch GEMM (on a 2-core machine a spinning pool turned a
    0.2 ms SpMM into 260 ms, docs/performance.md), so numba's copy is started with
    ``OMP_WAIT_POLICY=PASSIVE`` (read once, when that library loads; torch's copy, loaded
    earlier, keeps its setting). numba's ``workqueue`` layer, the fallback, sleeps too but
    costs ~65 us of CPU per launch here and must not be entered by two threads at once,
    hence ``_CALL_LOCK`` around every call.
    """
    if "NUMBA_CACHE_DIR" not in os.environ:
        from vgraph.paths import cache_dir
        os.environ["NUMBA_CACHE_DIR"] = str(cache_dir("numba"))
    import numba
    # numba reads these when first imported; if someone imported it earlier its config
    # still says "next to the source" (the package), so set the values it uses
    numba.config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]
    if "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]


_POOL_STARTED = False


def _start_pool():
    """Start numba's thread pool (with sleeping idle threads, see :func:`_configure`) the
    first time a call runs on more than one thread. A process that only ever runs on one
    thread (``--threads 1``) never starts it: its idle threads would still cost CPU time."""
    global _POOL_STARTED
    if _POOL_STARTED:
        return
    policy = os.environ.get("OMP_WAIT_POLICY")
    os.environ["OMP_WAIT_POLICY"] = policy or "PASSIVE"
    try:
        from numba.np.ufunc import parallel
        parallel._launch_threads()
    finally:
        if policy is None:
            del os.environ["OMP_WAIT_POLICY"]
    _POOL_STARTED = True


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
    from vgraph.ops import _numba_kernels
    return _numba_kernels


def _sync_threads(k):
    n = max(1, min(torch.get_num_threads(), k.numba.config.NUMBA_NUM_THREADS))
    if n > 1:
        _start_pool()
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


PARALLEL_MIN_WORK = 2**18  # multiply-adds below which one thread beats waking the pool


def _threads_for(k, work: int) -> int:
    """Threads for a call of ``work`` multiply-adds: 1 (no pool launch) for small calls."""
    return _sync_threads(k) if work >= PARALLEL_MIN_WORK else 1


def csr_spmm(mat, x: torch.Tensor) -> torch.Tensor:
    """``A @ x`` for a :class:`~vgraph.ops.SparseMatrix` on CPU tensors (no autograd)."""
    k = kernels()
    x = x.contiguous()
    n = _threads_for(k, int(mat.indices.numel()) * x.size(1))
    out = torch.empty(mat.shape[0], x.size(1), dtype=x.dtype)
    bounds = _plan(mat, n)
    carry = np.empty((bounds.size - 1, x.size(1)), dtype=_np(x).dtype)
    carry_row = np.empty(bounds.size - 1, dtype=np.int64)
    values = mat.values if mat.values.dtype == x.dtype else mat.values.to(x.dtype)
    args = (_np(mat.indptr), _np(mat.indices), _np(values), _np(x), bounds, _np(out), carry, carry_row)
    with _CALL_LOCK:
        if n > 1:
            k.spmm_parallel(*args)
        else:
            k.spmm_chunks(*args, 0, bounds.size - 1)
        k.spmm_carry(args[5], carry, carry_row)
    return out


def _even(total: int, parts: int) -> np.ndarray:
    return (np.arange(parts + 1, dtype=np.int64) * total) // parts


def _over_pairs(k, parallel, serial, args, num_pairs: int, width: int):
    """Run a per-pair kernel on ``num_pairs`` pairs of ``width`` columns, split by pairs."""
    n = _threads_for(k, num_pairs * width)
    with _CALL_LOCK:
        if n > 1:
            parallel(*args, _even(num_pairs, n))
        else:
            serial(*args, 0, num_pairs)


def _over_columns(k, parallel, serial, args, work: int, width: int):
    """Run a scatter kernel split by output columns (>= 8, a vector, per thread): each
    thread owns whole columns, so the scatter needs no atomics and keeps the pairs' order."""
    n = _threads_for(k, work)
    parts = max(1, min(n, width // 8 if width >= 16 else 1))
    with _CALL_LOCK:
        if parts > 1:
            parallel(*args, _even(width, parts))
        else:
            serial(*args, 0, width)


def sddmm(a: torch.Tensor, b: torch.Tensor, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    k = kernels()
    out = torch.empty(src.numel(), dtype=a.dtype)
    _over_pairs(k, k.sddmm_parallel, k.sddmm_range, (_np(a), _np(b), _np(src), _np(dst), _np(out)),
                src.numel(), a.size(1))
    return out


def sddmm_scatter(grad: torch.Tensor, other: torch.Tensor, idx_out: torch.Tensor,
                  idx_other: torch.Tensor, n_out: int) -> torch.Tensor:
    """``out[idx_out[k]] += grad[k] * other[idx_other[k]]`` (the SDDMM backward)."""
    k = kernels()
    F = other.size(1)
    out = torch.empty(n_out, F, dtype=other.dtype)
    args = (_np(grad.contiguous()), _np(other), _np(idx_out), _np(idx_other), _np(out))
    _over_columns(k, k.scatter_parallel, k.scatter_cols, args, grad.numel() * F, F)
    return out


def hadamard(z: torch.Tensor, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """``z[src] * z[dst]`` ``[P, F]`` (parallel over pairs)."""
    k = kernels()
    out = torch.empty(src.numel(), z.size(1), dtype=z.dtype)
    _over_pairs(k, k.hadamard_parallel, k.hadamard_range, (_np(z), _np(src), _np(dst), _np(out)),
                src.numel(), z.size(1))
    return out


def hadamard_backward(grad: torch.Tensor, z: torch.Tensor, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """The gradient of ``z[src] * z[dst]`` with respect to ``z``, columns split across threads."""
    k = kernels()
    out = torch.empty_like(z)
    args = (_np(grad.contiguous()), _np(z), _np(src), _np(dst), _np(out))
    _over_columns(k, k.hadamard_scatter_parallel, k.hadamard_scatter_cols, args, grad.numel(), z.size(1))
    return out


def segment(src: torch.Tensor, indptr: torch.Tensor, mean: bool) -> torch.Tensor:
    k = kernels()
    flat = src.contiguous().view(src.size(0), -1)
    n_seg = indptr.numel() - 1
    n = _threads_for(k, flat.numel())
    out = torch.empty(n_seg, flat.size(1), dtype=src.dtype)
    args = (_np(flat), _np(indptr), _np(out), bool(mean))
    with _CALL_LOCK:
        if n > 1:  # segments split by their rows' count, so long segments do not pile up
            cuts = np.searchsorted(_np(indptr), _even(flat.size(0), n))
            cuts[0], cuts[-1] = 0, n_seg
            k.segment_parallel(*args, np.maximum.accumulate(cuts).astype(np.int64))
        else:
            k.segment_range(*args, 0, n_seg)
    return out.view((n_seg,) + tuple(src.shape[1:]))


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


def dropout(x: torch.Tensor, seed: int, p: float) -> torch.Tensor:
    """``x`` with each element zeroed with probability ``p`` (the rest scaled by ``1 / (1 - p)``),
    the choice a hash of ``(seed, flat index)``: the same on any thread count, and the backward
    recomputes it instead of storing a mask."""
    k = kernels()
    flat = x.contiguous().view(-1)
    out = torch.empty_like(flat)
    threshold = np.uint64(min(int(round(p * 2**24)), 2**24))
    args = (_np(flat), _np(out), np.uint64(seed), threshold, np.float32(1.0 / (1.0 - p)) if x.dtype == torch.float32
            else 1.0 / (1.0 - p))
    _over_pairs(k, k.dropout_parallel, k.dropout_range, args, flat.numel(), 1)
    return out.view(x.shape)


def pack_rows(adjacency: torch.Tensor) -> np.ndarray:
    """A dense bool ``[N, M]`` matrix as ``uint64 [N, ceil(M / 64)]``: bit ``k % 64`` of word
    ``k // 64`` of row ``i`` is entry ``(i, k)``."""
    packed = np.packbits(_np(adjacency.contiguous()), axis=1, bitorder="little")
    pad = (-packed.shape[1]) % 8
    if pad:
        packed = np.pad(packed, ((0, 0), (0, pad)))
    return np.ascontiguousarray(packed).view("<u8")


def common_neighbors(bits: np.ndarray, src: torch.Tensor, dst: torch.Tensor):
    """CSR ``(indptr [P + 1], indices)`` of the common neighbours of each pair ``(src[p], dst[p])``
    of a graph given as packed adjacency rows (:func:`pack_rows`), each row's ids ascending.
    Two passes (count by popcount, fill by bit scan), both parallel over pairs."""
    k = kernels()
    s, d = _np(src.contiguous()), _np(dst.contiguous())
    counts = np.empty(s.size, dtype=np.int64)
    n = _threads_for(k, int(src.numel()) * bits.shape[1] * 8)
    tasks = _even(s.size, n * CHUNKS_PER_THREAD) if n > 1 else None
    with _CALL_LOCK:
        if n > 1:
            k.cn_count_parallel(bits, s, d, counts, tasks)
        else:
            k.cn_count_range(bits, s, d, counts, 0, s.size)
    out_indptr = np.zeros(s.size + 1, dtype=np.int64)
    np.cumsum(counts, out=out_indptr[1:])
    out_indices = np.empty(int(out_indptr[-1]), dtype=np.int64)
    with _CALL_LOCK:
        if n > 1:
            k.cn_fill_parallel(bits, s, d, out_indptr, out_indices, tasks)
        else:
            k.cn_fill_range(bits, s, d, out_indptr, out_indices, 0, s.size)
    return torch.from_numpy(out_indptr), torch.from_numpy(out_indices)


def common_neighbor_weights(bits: np.ndarray, src: torch.Tensor, dst: torch.Tensor,
                            weights: torch.Tensor) -> torch.Tensor:
    """``[P, C]``: per pair, the sum of ``weights [N, C]`` over its common neighbours
    (packed adjacency rows as in :func:`common_neighbors`; parallel over pairs)."""
    k = kernels()
    s, d = _np(src.contiguous()), _np(dst.contiguous())
    w = weights.contiguous()
    out = torch.empty(s.size, w.size(1), dtype=w.dtype)
    _over_pairs(k, k.cn_weighted_parallel, k.cn_weighted_range, (bits, s, d, _np(w), _np(out)),
                s.size, bits.shape[1] * 8)
    return out


def common_neighbor_scatter(bits: np.ndarray, src: torch.Tensor, dst: torch.Tensor, grad: torch.Tensor,
                            num_nodes: int) -> torch.Tensor:
    """The backward of :func:`common_neighbor_weights`: ``out[k] += grad[p]`` for every common
    neighbour ``k`` of pair ``p``, ``[num_nodes, F]``; columns split across threads (no atomics,
    pairs in order, so the digits do not depend on the thread count)."""
    k = kernels()
    g = grad.contiguous()
    out = torch.empty(num_nodes, g.size(1), dtype=g.dtype)
    args = (bits, _np(src.contiguous()), _np(dst.contiguous()), _np(g), _np(out))
    _over_columns(k, k.cn_scatter_parallel, k.cn_scatter_cols, args, src.numel() * bits.shape[1] * 8 * g.size(1),
                  g.size(1))
    return out

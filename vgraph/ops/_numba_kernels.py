"""The numba kernels behind :mod:`vgraph.ops.cpu_kernels` (imported only by its
``kernels()``, after numba's cache folder and threading layer are configured).

Module-level functions, not closures: numba caches a kernel on disk only when it can key it
stably, and a closure calling another closure's dispatcher missed that cache in every new
process (a few seconds of compilation per process, and one more cache file each time).
"""
import numba  # noqa: F401  (cpu_kernels reads numba's config through this module)
import numpy as np
from numba import njit, prange


# IEEE arithmetic (no FMA contraction, no reassociation): a product is rounded, then
# added, non-zero by non-zero, which is what MKL's CSR routine gives here (bit-equal on
# Cora), so switching between the two paths does not move results. 2-D indexing
# throughout, no row views: a view costs an atomic reference count.
opts = dict(cache=True, nogil=True)


@njit(**opts)
def _accumulate(indices, values, x, s, e, dst, r):
    """dst[r] = sum over k in [s, e) of values[k] * x[indices[k]], in order of k."""
    F = dst.shape[1]
    for f in range(F):
        dst[r, f] = 0.0
    k = s
    while k + 4 <= e:  # four non-zeros per pass over dst[r]: a quarter of its loads/stores
        j0, j1, j2, j3 = indices[k], indices[k + 1], indices[k + 2], indices[k + 3]
        v0, v1, v2, v3 = values[k], values[k + 1], values[k + 2], values[k + 3]
        for f in range(F):
            a = dst[r, f]
            a += v0 * x[j0, f]
            a += v1 * x[j1, f]
            a += v2 * x[j2, f]
            a += v3 * x[j3, f]
            dst[r, f] = a
        k += 4
    while k < e:
        v, j = values[k], indices[k]
        for f in range(F):
            dst[r, f] += v * x[j, f]
        k += 1


@njit(**opts)
def spmm_chunks(indptr, indices, values, x, bounds, out, carry, carry_row, c0, c1):
    """Chunks [c0, c1) of the row plan; callable serially or from a parallel loop."""
    n_rows = indptr.shape[0] - 1
    n_chunks = bounds.shape[0] - 1
    for c in range(c0, c1):
        lo, hi = bounds[c], bounds[c + 1]
        carry_row[c] = -1
        last = c == n_chunks - 1
        r = np.searchsorted(indptr, lo)  # the first row starting at or after lo
        if indptr[r] > lo:  # row r - 1 began in an earlier chunk (a split hub): carry its piece
            _accumulate(indices, values, x, lo, min(indptr[r], hi), carry, c)
            carry_row[c] = r - 1
        while r < n_rows and (indptr[r] < hi or (last and indptr[r] <= hi)):
            _accumulate(indices, values, x, indptr[r], min(indptr[r + 1], hi), out, r)
            r += 1


@njit(**opts)
def spmm_carry(out, carry, carry_row):
    """Add the carried pieces of split rows, serially in chunk order (deterministic)."""
    for c in range(carry_row.shape[0]):
        r = carry_row[c]
        if r >= 0:
            for f in range(out.shape[1]):
                out[r, f] += carry[c, f]


@njit(parallel=True, **opts)
def spmm_parallel(indptr, indices, values, x, bounds, out, carry, carry_row):
    for c in prange(bounds.shape[0] - 1):
        spmm_chunks(indptr, indices, values, x, bounds, out, carry, carry_row, c, c + 1)


@njit(cache=True, nogil=True, fastmath=True)  # a dot product: reassociate, vectorise
def sddmm_range(a, b, src, dst, out, k0, k1):
    F = a.shape[1]
    for k in range(k0, k1):
        i, j = src[k], dst[k]
        acc = 0.0
        for f in range(F):
            acc += a[i, f] * b[j, f]
        out[k] = acc


@njit(parallel=True, **opts)
def sddmm_parallel(a, b, src, dst, out, bounds):
    for t in prange(bounds.shape[0] - 1):
        sddmm_range(a, b, src, dst, out, bounds[t], bounds[t + 1])


@njit(**opts)
def scatter_cols(grad, other, idx_out, idx_other, out, f0, f1):
    """out[idx_out[k], f0:f1] = sum of grad[k] * other[idx_other[k], f0:f1], pairs in order."""
    for i in range(out.shape[0]):
        for f in range(f0, f1):
            out[i, f] = 0.0
    for k in range(grad.shape[0]):
        g, i, j = grad[k], idx_out[k], idx_other[k]
        for f in range(f0, f1):
            out[i, f] += g * other[j, f]


@njit(parallel=True, **opts)
def scatter_parallel(grad, other, idx_out, idx_other, out, col_bounds):
    for t in prange(col_bounds.shape[0] - 1):
        scatter_cols(grad, other, idx_out, idx_other, out, col_bounds[t], col_bounds[t + 1])


@njit(**opts)
def segment_range(src, indptr, out, mean, s0, s1):
    F = src.shape[1]
    for s in range(s0, s1):
        lo, hi = indptr[s], indptr[s + 1]
        for f in range(F):
            out[s, f] = 0.0
        for k in range(lo, hi):
            for f in range(F):
                out[s, f] += src[k, f]
        if mean and hi > lo:
            for f in range(F):
                out[s, f] /= hi - lo


@njit(parallel=True, **opts)
def segment_parallel(src, indptr, out, mean, bounds):
    for t in prange(bounds.shape[0] - 1):
        segment_range(src, indptr, out, mean, bounds[t], bounds[t + 1])


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


@njit(**opts)
def hadamard_range(z, src, dst, out, k0, k1):
    """out[k] = z[src[k]] * z[dst[k]] (elementwise) for k in [k0, k1)."""
    for k in range(k0, k1):
        row_a, row_b, row_out = z[src[k]], z[dst[k]], out[k]
        for f in range(row_out.shape[0]):
            row_out[f] = row_a[f] * row_b[f]


@njit(parallel=True, **opts)
def hadamard_parallel(z, src, dst, out, pair_bounds):
    """``hadamard_range`` on each pair range ``[pair_bounds[t], pair_bounds[t + 1])``, a task each."""
    n_tasks = pair_bounds.shape[0] - 1
    for t in prange(n_tasks):
        hadamard_range(z, src, dst, out, pair_bounds[t], pair_bounds[t + 1])


@njit(**opts)
def hadamard_scatter_cols(grad, z, src, dst, out, f0, f1):
    """Columns [f0, f1) of the gradient of z[src] * z[dst] with respect to z (one tensor):
    out[src[k]] += grad[k] * z[dst[k]] and out[dst[k]] += grad[k] * z[src[k]], pairs in order."""
    for i in range(out.shape[0]):
        for f in range(f0, f1):
            out[i, f] = 0.0
    for k in range(grad.shape[0]):
        i, j = src[k], dst[k]
        for f in range(f0, f1):
            g = grad[k, f]
            zi = z[i, f]
            out[i, f] += g * z[j, f]
            out[j, f] += g * zi


@njit(parallel=True, **opts)
def hadamard_scatter_parallel(grad, z, src, dst, out, col_bounds):
    for t in prange(col_bounds.shape[0] - 1):
        hadamard_scatter_cols(grad, z, src, dst, out, col_bounds[t], col_bounds[t + 1])


@njit(**opts)
def _keep(seed, i, threshold):
    """Counter-based draw (splitmix64 of seed + i * golden ratio): whether element i survives."""
    z = seed + np.uint64(i) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)) >= threshold


@njit(**opts)
def dropout_range(x, out, seed, threshold, scale, i0, i1):
    """out[i] = x[i] * scale where element i is kept, else 0, for i in [i0, i1) (flat arrays)."""
    for i in range(i0, i1):
        out[i] = x[i] * scale if _keep(seed, i, threshold) else 0.0


@njit(parallel=True, **opts)
def dropout_parallel(x, out, seed, threshold, scale, bounds):
    for t in prange(bounds.shape[0] - 1):
        dropout_range(x, out, seed, threshold, scale, bounds[t], bounds[t + 1])


_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)
_DEBRUIJN = np.uint64(0x03F79D71B4CB0A89)
# position of the lowest set bit, from the top 6 bits of (that bit * _DEBRUIJN)
_DEBRUIJN_POS = np.array([0, 1, 48, 2, 57, 49, 28, 3, 61, 58, 50, 42, 38, 29, 17, 4, 62, 55, 59, 36, 53, 51,
                          43, 22, 45, 39, 33, 30, 24, 18, 12, 5, 63, 47, 56, 27, 60, 41, 37, 16, 54, 35, 52,
                          21, 44, 32, 23, 11, 46, 26, 40, 15, 34, 20, 31, 10, 25, 14, 19, 9, 13, 8, 7, 6],
                         dtype=np.int64)


@njit(**opts)
def _popcount(x):
    """Set bits of a uint64 (SWAR)."""
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return (x * _H01) >> np.uint64(56)


@njit(**opts)
def cn_count_range(bits, src, dst, counts, k0, k1):
    """counts[p] = popcount(bits[src[p]] & bits[dst[p]]) for p in [k0, k1): the common
    neighbours of a pair, from the graph's adjacency rows packed 64 nodes to a word."""
    for p in range(k0, k1):
        a, b = src[p], dst[p]
        c = np.uint64(0)
        for w in range(bits.shape[1]):
            c += _popcount(bits[a, w] & bits[b, w])
        counts[p] = c


@njit(parallel=True, **opts)
def cn_count_parallel(bits, src, dst, counts, pair_bounds):
    for t in prange(pair_bounds.shape[0] - 1):
        cn_count_range(bits, src, dst, counts, pair_bounds[t], pair_bounds[t + 1])


@njit(**opts)
def _common(bits, a, b, buf):
    """The common neighbours of nodes a and b into buf (ascending ids); returns their count.
    Each set bit of the AND of the two packed rows, lowest first (de Bruijn bit scan)."""
    one = np.uint64(1)
    n = 0
    for word in range(bits.shape[1]):
        x = bits[a, word] & bits[b, word]
        while x:
            low = x & (~x + one)
            buf[n] = 64 * word + _DEBRUIJN_POS[(low * _DEBRUIJN) >> np.uint64(58)]
            n += 1
            x ^= low
    return n


@njit(**opts)
def cn_fill_range(bits, src, dst, out_indptr, out_indices, k0, k1):
    """The common neighbours of pairs [k0, k1) into out_indices at out_indptr (ascending ids)."""
    buf = np.empty(64 * bits.shape[1], dtype=np.int64)
    for p in range(k0, k1):
        n = _common(bits, src[p], dst[p], buf)
        pos = out_indptr[p]
        for t in range(n):
            out_indices[pos + t] = buf[t]


@njit(parallel=True, **opts)
def cn_fill_parallel(bits, src, dst, out_indptr, out_indices, pair_bounds):
    for t in prange(pair_bounds.shape[0] - 1):
        cn_fill_range(bits, src, dst, out_indptr, out_indices, pair_bounds[t], pair_bounds[t + 1])


@njit(**opts)
def cn_weighted_range(bits, src, dst, w, out, k0, k1):
    """out[p] = sum of w[k] over the common neighbours k of pair p, for p in [k0, k1) (no
    index list is kept beyond the pair at hand)."""
    buf = np.empty(64 * bits.shape[1], dtype=np.int64)
    C = w.shape[1]
    for p in range(k0, k1):
        for c in range(C):
            out[p, c] = 0.0
        n = _common(bits, src[p], dst[p], buf)
        for t in range(n):
            k = buf[t]
            for c in range(C):
                out[p, c] += w[k, c]


@njit(parallel=True, **opts)
def cn_weighted_parallel(bits, src, dst, w, out, pair_bounds):
    for t in prange(pair_bounds.shape[0] - 1):
        cn_weighted_range(bits, src, dst, w, out, pair_bounds[t], pair_bounds[t + 1])


@njit(**opts)
def cn_scatter_cols(bits, src, dst, grad, out, f0, f1):
    """Columns [f0, f1) of the gradient of the common-neighbour sums with respect to the summed
    rows: out[k] += grad[p] for every common neighbour k of every pair p, pairs in order."""
    buf = np.empty(64 * bits.shape[1], dtype=np.int64)
    for i in range(out.shape[0]):
        for f in range(f0, f1):
            out[i, f] = 0.0
    for p in range(src.shape[0]):
        n = _common(bits, src[p], dst[p], buf)
        for t in range(n):
            k = buf[t]
            for f in range(f0, f1):
                out[k, f] += grad[p, f]


@njit(parallel=True, **opts)
def cn_scatter_parallel(bits, src, dst, grad, out, col_bounds):
    for t in prange(col_bounds.shape[0] - 1):
        cn_scatter_cols(bits, src, dst, grad, out, col_bounds[t], col_bounds[t + 1])

"""`SparseGraph`: one graph's CSR, transposed CSR and normalisations, built once.

Convention (PyG's ``source_to_target`` flow): an edge ``(src, dst)`` in ``edge_index``
sends a message from ``src`` to ``dst``, so row ``dst`` of the CSR matrix ``A`` holds
column ``src`` and ``spmm(A, X)[i] = sum_j A[i, j] X[j]`` aggregates over in-neighbours.
"""
from __future__ import annotations

from functools import cached_property

import numpy as np
import torch

from vgraph.errors import DataFormatError


def check_edge_index(edge_index, num_nodes: int, what: str = "edge_index") -> torch.Tensor:
    """Validate and return ``edge_index`` as a contiguous ``int64`` ``[2, E]`` tensor.

    Raises :class:`DataFormatError` naming the first offending column on a bad shape,
    dtype, negative or out-of-range id — never an index error from inside torch.
    """
    if not isinstance(edge_index, torch.Tensor):
        edge_index = torch.as_tensor(np.asarray(edge_index))
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise DataFormatError(f"{what} must have shape [2, E], got {tuple(edge_index.shape)}")
    if edge_index.is_floating_point() or edge_index.is_complex() or edge_index.dtype == torch.bool:
        raise DataFormatError(f"{what} must hold integer node ids, got dtype {edge_index.dtype}")
    edge_index = edge_index.to(torch.long).contiguous()
    if num_nodes < 0:
        raise DataFormatError(f"num_nodes must be >= 0, got {num_nodes}")
    if edge_index.numel():
        bad = (edge_index < 0) | (edge_index >= num_nodes)
        if bool(bad.any()):
            col = int(bad.any(0).nonzero()[0])
            pair = edge_index[:, col].tolist()
            raise DataFormatError(
                f"{what} column {col} is {pair}: node ids must lie in [0, {num_nodes - 1}]"
                f" (num_nodes={num_nodes})")
    return edge_index


def _is_sorted(keys: torch.Tensor) -> bool:
    return keys.numel() < 2 or bool((keys[1:] >= keys[:-1]).all())


def _csr_from_rows(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, n_rows: int):
    """CSR sorted by (row, column), duplicates in input order; ``order`` maps CSR -> input.

    Entries that already arrive sorted by (row, column) — the sampled subgraphs of
    :func:`vgraph.data.sampling.sample_subgraph` do — skip the argsort and the gathers: one
    comparison pass decides (the result is the same either way).
    """
    if rows.numel():
        keys = rows * max(int(cols.max()) + 1, 1) + cols
        if _is_sorted(keys):
            order = torch.arange(rows.numel(), device=rows.device)
        else:
            order = torch.argsort(keys, stable=True)
            rows, cols, values = rows[order], cols[order], values[order]
    else:
        order = rows
    counts = torch.bincount(rows, minlength=n_rows)
    indptr = torch.zeros(n_rows + 1, dtype=torch.long, device=rows.device)
    torch.cumsum(counts, 0, out=indptr[1:])
    return indptr, cols.contiguous(), values.contiguous(), order


def _insert_diagonal(indptr, indices, values, row_index, missing: torch.Tensor, n: int):
    """Add a unit entry ``(i, i)`` for each row ``i`` in ``missing`` (which has none) to a CSR
    whose columns ascend within rows, by computing every entry's new position (no sort).

    Gives exactly the CSR that sorting the concatenated entries by (row, column) would.
    """
    add = torch.zeros(n, dtype=torch.long, device=indptr.device)
    add[missing] = 1
    before = torch.cumsum(add, 0) - add  # loops inserted in earlier rows
    new_indptr = indptr.clone()
    new_indptr[1:] += torch.cumsum(add, 0)
    after_loop = (add[row_index] == 1) & (indices > row_index)  # right of the new diagonal entry
    pos = torch.arange(indices.numel(), device=indptr.device) + before[row_index] + after_loop.long()
    left = torch.bincount(row_index[indices < row_index], minlength=n)  # entries left of (i, i)
    loop_pos = indptr[missing] + before[missing] + left[missing]
    total = indices.numel() + missing.numel()
    new_indices = torch.empty(total, dtype=indices.dtype, device=indices.device)
    new_values = torch.empty(total, dtype=values.dtype, device=values.device)
    new_indices[pos], new_values[pos] = indices, values
    new_indices[loop_pos] = missing.to(indices.dtype)
    new_values[loop_pos] = 1.0
    return new_indptr, new_indices, new_values


NUMBA_TRANSPOSE_MIN_NNZ = 2**16  # below this the argsort is as fast as a compiled call


def _transpose(indptr, indices, values, n_rows: int, n_cols: int):
    """CSR of the transpose (rows ascending within each column, duplicates in order)."""
    if indptr.device.type == "cpu" and indices.numel() >= NUMBA_TRANSPOSE_MIN_NNZ:
        from vgraph.ops import cpu_kernels
        if cpu_kernels.available():  # a counting sort: O(nnz), where argsort is O(nnz log nnz)
            return cpu_kernels.transpose(indptr, indices, values, n_cols)
    counts = indptr[1:] - indptr[:-1]
    rows = torch.repeat_interleave(torch.arange(n_rows, device=indptr.device), counts)
    t_indptr, t_indices, t_values, _ = _csr_from_rows(indices, rows, values, n_cols)
    return t_indptr, t_indices, t_values


class SparseGraph:
    """A graph as CSR (rows = destinations) with cached transpose and normalisations.

    Args:
        edge_index: ``[2, E]`` integer tensor of (source, destination) pairs.
        num_nodes: number of nodes ``N``.
        edge_weight: optional ``[E]`` weights (default 1).
        reorder: ``None``, ``"degree"`` or ``"rcm"``: renumber nodes internally for
            locality. Callers never see the permutation: :func:`vgraph.ops.spmm` takes
            and returns node-ordered features.

    Shapes:
        ``indptr [N+1]``, ``indices [E]``, ``values [E]``.
    """

    def __init__(self, edge_index, num_nodes: int, edge_weight=None, reorder: str | None = None,
                 _validated: bool = False):
        if not _validated:
            edge_index = check_edge_index(edge_index, num_nodes)
        self.num_nodes = int(num_nodes)
        self.reorder = reorder
        self.perm = None  # perm[new] = old
        self.inv_perm = None
        if edge_weight is None:
            edge_weight = torch.ones(edge_index.size(1), dtype=torch.float32,
                                     device=edge_index.device)
        else:
            edge_weight = torch.as_tensor(edge_weight, dtype=torch.float32)
            if edge_weight.shape != (edge_index.size(1),):
                raise DataFormatError(
                    f"edge_weight must have shape [{edge_index.size(1)}], got {tuple(edge_weight.shape)}")
        if reorder is not None and num_nodes > 0:
            perm = node_ordering(edge_index, num_nodes, reorder)
            inv = torch.empty_like(perm)
            inv[perm] = torch.arange(num_nodes, device=perm.device)
            self.perm, self.inv_perm = perm, inv
            edge_index = inv[edge_index]
        self.edge_index = edge_index
        src, dst = edge_index[0], edge_index[1]
        self.indptr, self.indices, self.values, _ = _csr_from_rows(dst, src, edge_weight, self.num_nodes)
        self._cache: dict = {}

    # ------------------------------------------------------------------ basics
    @property
    def num_edges(self) -> int:
        return int(self.indices.numel())

    @property
    def device(self) -> torch.device:
        return self.indptr.device

    @cached_property
    def in_degree(self) -> torch.Tensor:
        """Number of stored entries per row (in-degree), ``[N]`` float."""
        return (self.indptr[1:] - self.indptr[:-1]).to(torch.float32)

    @cached_property
    def row_index(self) -> torch.Tensor:
        """COO row index of every stored entry, ``[E]``."""
        counts = self.indptr[1:] - self.indptr[:-1]
        return torch.repeat_interleave(torch.arange(self.num_nodes, device=self.device), counts)

    def to(self, device) -> "SparseGraph":
        """Return a copy on ``device`` (caches are rebuilt lazily there)."""
        g = object.__new__(SparseGraph)
        g.__dict__.update({k: v for k, v in self.__dict__.items() if k not in ("_cache", "in_degree", "row_index")})
        for k in ("edge_index", "indptr", "indices", "values", "perm", "inv_perm"):
            v = getattr(self, k)
            setattr(g, k, None if v is None else v.to(device))
        g._cache = {}
        return g

    # -------------------------------------------------------------- matrices
    def with_values(self, values: torch.Tensor, key: str | None = None) -> "SparseMatrix":
        """A :class:`SparseMatrix` with this pattern and new values (cached under ``key``)."""
        if key is not None and key in self._cache:
            return self._cache[key]
        mat = SparseMatrix(self.indptr, self.indices, values.to(torch.float32), self.num_nodes,
                           self.num_nodes, graph=self)
        if key is not None:
            self._cache[key] = mat
        return mat

    @property
    def adj(self) -> "SparseMatrix":
        """The adjacency with the graph's own edge weights."""
        return self.with_values(self.values, key="adj")

    def gcn_norm(self, add_self_loops: bool = True) -> "SparseMatrix":
        """Kipf & Welling's ``D^-1/2 (A + I) D^-1/2``, fused into the CSR values, cached.

        Existing self-loops are kept and (if ``add_self_loops``) a unit self-loop is added
        only to nodes without one, as PyG's ``gcn_norm`` does.
        """
        key = f"gcn_norm:{add_self_loops}"
        if key in self._cache:
            return self._cache[key]
        if add_self_loops:
            has_loop = torch.zeros(self.num_nodes, dtype=torch.bool, device=self.device)
            loops = self.row_index == self.indices
            has_loop[self.row_index[loops]] = True
            missing = (~has_loop).nonzero().view(-1)
            indptr, indices, values = _insert_diagonal(self.indptr, self.indices, self.values,
                                                       self.row_index, missing, self.num_nodes)
        else:
            indptr, indices, values = self.indptr, self.indices, self.values
            rows = self.row_index
        rows = torch.repeat_interleave(torch.arange(self.num_nodes, device=self.device),
                                       indptr[1:] - indptr[:-1])
        deg = torch.zeros(self.num_nodes, device=self.device).index_add_(0, rows, values)
        dinv = deg.pow(-0.5)
        dinv[torch.isinf(dinv)] = 0
        norm_values = dinv[rows] * values * dinv[indices]
        mat = SparseMatrix(indptr, indices, norm_values, self.num_nodes, self.num_nodes, graph=self)
        self._cache[key] = mat
        return mat

    def mean_norm(self) -> "SparseMatrix":
        """Row-normalised adjacency ``D^-1 A`` (mean over in-neighbours), cached."""
        key = "mean_norm"
        if key not in self._cache:
            deg = self.in_degree.clamp(min=1)
            self._cache[key] = self.with_values(self.values / deg[self.row_index])
        return self._cache[key]

    # ----------------------------------------------------- caller-visible order
    def to_internal(self, x: torch.Tensor) -> torch.Tensor:
        """Node-ordered rows -> internal (reordered) rows; identity without reordering."""
        return x if self.perm is None else x[self.perm]

    def to_external(self, x: torch.Tensor) -> torch.Tensor:
        """Internal rows -> node order; identity without reordering."""
        return x if self.perm is None else x[self.inv_perm]

    def __repr__(self) -> str:
        return f"SparseGraph(num_nodes={self.num_nodes}, num_edges={self.num_edges}, reorder={self.reorder})"


class SparseMatrix:
    """A CSR matrix with its transpose built lazily and kept (for the SpMM backward)."""

    def __init__(self, indptr, indices, values, n_rows: int, n_cols: int, graph: SparseGraph | None = None):
        self.indptr, self.indices, self.values = indptr, indices, values
        self.shape = (int(n_rows), int(n_cols))
        self.graph = graph
        self._csr = None
        self._t = None

    @property
    def csr(self) -> torch.Tensor:
        if self._csr is None:
            self._csr = torch.sparse_csr_tensor(self.indptr, self.indices, self.values, self.shape)
        return self._csr

    @property
    def t(self) -> "SparseMatrix":
        """The transpose as CSR (i.e. this matrix's CSC), built once."""
        if self._t is None:
            n_rows, n_cols = self.shape
            indptr, indices, values = _transpose(self.indptr, self.indices, self.values, n_rows, n_cols)
            self._t = SparseMatrix(indptr, indices, values, n_cols, n_rows, graph=self.graph)
            self._t._t = self
        return self._t

    def to_dense(self) -> torch.Tensor:
        return self.csr.to_dense()

    def __repr__(self) -> str:
        return f"SparseMatrix(shape={self.shape}, nnz={self.indices.numel()})"


def node_ordering(edge_index: torch.Tensor, num_nodes: int, method: str) -> torch.Tensor:
    """A node permutation ``perm[new] = old`` for locality: ``"degree"`` or ``"rcm"``."""
    if method == "degree":
        deg = torch.bincount(edge_index[1], minlength=num_nodes)
        return torch.argsort(deg, descending=True, stable=True)
    if method == "rcm":
        import scipy.sparse as sp
        from scipy.sparse.csgraph import reverse_cuthill_mckee
        ei = edge_index.cpu().numpy()
        mat = sp.csr_matrix((np.ones(ei.shape[1]), (ei[1], ei[0])), shape=(num_nodes, num_nodes))
        perm = reverse_cuthill_mckee(mat, symmetric_mode=False)
        return torch.from_numpy(perm.astype(np.int64)).to(edge_index.device)
    raise ValueError(f"unknown reorder method {method!r}; use None, 'degree' or 'rcm'")

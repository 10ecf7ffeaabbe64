"""Decoders that turn node embeddings into edge logits."""
from __future__ import annotations

import torch
from torch import nn

from vgraph.ops import SparseMatrix, backend, dropout, pair_product, sddmm, spmm


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
    ``input_dropout``: also drop out ``z_i * z_j`` itself before the first linear layer (as
    PLNLP's predictor does); 0 (the default) is OGB's link predictor.

    Shapes:
        ``z_a [P, F]``, ``z_b [P, F]`` -> ``[P, out_channels]`` (squeezed when 1).
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int = 1,
                 num_layers: int = 2, dropout: float = 0.0, fast_dropout: bool = False,
                 input_dropout: float = 0.0):
        super().__init__()
        # kept outside ``net`` (no parameters), so the state dict's keys do not depend on it
        self.input_drop = (Dropout(input_dropout) if fast_dropout else nn.Dropout(input_dropout)) \
            if input_dropout else None
        dims = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        layers = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(a, b))
            if i < num_layers - 1:
                layers += [nn.ReLU(), Dropout(dropout) if fast_dropout else nn.Dropout(dropout)]
        self.net = nn.Sequential(*layers)

    def _score(self, x: torch.Tensor) -> torch.Tensor:
        """The MLP on a pair product ``x [P, F]``."""
        out = self.net(x if self.input_drop is None else self.input_drop(x))
        return out.squeeze(-1) if out.size(-1) == 1 else out

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        return self._score(z_a * z_b)

    def score_pairs(self, z: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """``forward(z[pairs[0]], z[pairs[1]])`` with the product from :func:`vgraph.ops.pair_product`
        (no ``[P, F]`` gathers on CPU): ``z [N, F]``, ``pairs [2, P]`` -> ``[P, out_channels]``."""
        return self._score(pair_product(z, pairs))


def common_neighbor_matrix(pairs: torch.Tensor, adjacency: torch.Tensor, bits=None,
                           chunk: int = 8192) -> SparseMatrix:
    r"""The ``[P, N]`` 0/1 matrix ``C`` with ``C[p, k] = 1`` iff ``k \in N(i_p) \cap N(j_p)``, as CSR.

    On CPU with numba: the AND of the two endpoints' adjacency rows packed 64 nodes to a word,
    counted by popcount and then scanned bit by bit
    (:func:`vgraph.ops.cpu_kernels.common_neighbors`; ``bits`` are ``adjacency``'s packed rows,
    :func:`vgraph.ops.cpu_kernels.pack_rows`, built here when not given). Elsewhere: the AND of
    the two bool rows, ``chunk`` pairs at a time. So ``C @ z`` (:func:`vgraph.ops.spmm`, gradients to ``z``
    through the cached transpose) is the common neighbours' embedding sum at the cost of its
    non-zeros (~430 a training edge on ogbl-ddi) instead of a dense ``[P, N] @ [N, F]``.
    """
    n = adjacency.size(0)
    src, dst = pairs[0].contiguous(), pairs[1].contiguous()
    if adjacency.device.type == "cpu" and backend.use_numba(adjacency.device, torch.float32):
        from vgraph.ops import cpu_kernels
        if bits is None:
            bits = cpu_kernels.pack_rows(adjacency)
        c_indptr, c_indices = cpu_kernels.common_neighbors(bits, src, dst)
    else:
        rows, cols = [], []
        for s in range(0, src.numel(), chunk):
            r, c = (adjacency[src[s:s + chunk]] & adjacency[dst[s:s + chunk]]).nonzero(as_tuple=True)
            rows.append(r + s)
            cols.append(c)
        rows = torch.cat(rows) if rows else torch.zeros(0, dtype=torch.long)
        c_indices = torch.cat(cols) if cols else torch.zeros(0, dtype=torch.long)
        c_indptr = torch.zeros(src.numel() + 1, dtype=torch.long, device=adjacency.device)
        c_indptr[1:] = torch.cumsum(torch.bincount(rows, minlength=src.numel()), 0)
    values = torch.ones(c_indices.numel(), device=adjacency.device)
    return SparseMatrix(c_indptr, c_indices, values, src.numel(), n)


class _CommonNeighborSum(torch.autograd.Function):
    """Compiled common-neighbour sum on CPU: forward and backward both scan the AND of the
    pairs' packed adjacency rows, so no ``[P, N]`` index matrix (~400 MB for 131,072 ogbl-ddi
    pairs) is built or transposed."""

    @staticmethod
    def forward(ctx, z, src, dst, bits):
        from vgraph.ops import cpu_kernels
        ctx.save_for_backward(src, dst)
        ctx.bits, ctx.num_nodes = bits, z.size(0)
        return cpu_kernels.common_neighbor_weights(bits, src, dst, z.detach())

    @staticmethod
    def backward(ctx, grad):
        from vgraph.ops import cpu_kernels
        src, dst = ctx.saved_tensors
        return cpu_kernels.common_neighbor_scatter(ctx.bits, src, dst, grad, ctx.num_nodes), None, None, None


def common_neighbor_sum(z: torch.Tensor, pairs: torch.Tensor, adjacency: torch.Tensor, bits=None,
                        chunk: int = 8192) -> torch.Tensor:
    r""":math:`\sum_{k \in N(i) \cap N(j)} z_k` for each pair ``(i, j)``, ``[P, F]``, gradients to ``z``.

    On CPU with numba (float32/64 ``z``) a compiled scan of the two endpoints' packed adjacency
    rows (``bits``, :func:`vgraph.ops.cpu_kernels.pack_rows`) in both directions; elsewhere
    :func:`common_neighbor_matrix` times ``z`` through :func:`vgraph.ops.spmm`.
    """
    src, dst = pairs[0].contiguous(), pairs[1].contiguous()
    if z.device.type == "cpu" and backend.use_numba(z.device, z.dtype):
        from vgraph.ops import cpu_kernels
        if bits is None:
            bits = cpu_kernels.pack_rows(adjacency)
        return _CommonNeighborSum.apply(z.contiguous(), src, dst, bits)
    cn = common_neighbor_matrix(pairs, adjacency, chunk=chunk)
    cn.values = cn.values.to(z.dtype)
    return spmm(cn, z)


def common_neighbor_weights(pairs: torch.Tensor, adjacency: torch.Tensor, weights: torch.Tensor,
                            bits=None, chunk: int = 8192) -> torch.Tensor:
    """``[P, C]``: for each pair, the sum of the node weights ``weights [N, C]`` over its common
    neighbours (no gradient). On CPU with numba a compiled scan of the AND of the two packed
    adjacency rows (``bits`` as in :func:`common_neighbor_matrix`); elsewhere the AND of the bool
    rows times ``weights``, ``chunk`` pairs at a time."""
    src, dst = pairs[0].contiguous(), pairs[1].contiguous()
    weights = weights.detach().to(torch.float32)
    if adjacency.device.type == "cpu" and backend.use_numba(adjacency.device, torch.float32):
        from vgraph.ops import cpu_kernels
        if bits is None:
            bits = cpu_kernels.pack_rows(adjacency)
        return cpu_kernels.common_neighbor_weights(bits, src, dst, weights)
    out = [(adjacency[src[s:s + chunk]] & adjacency[dst[s:s + chunk]]).to(weights.dtype) @ weights
           for s in range(0, src.numel(), chunk)]
    return torch.cat(out) if out else weights.new_zeros(0, weights.size(1))


def structure_features(pairs: torch.Tensor, adjacency: torch.Tensor, degree: torch.Tensor,
                       bits=None) -> torch.Tensor:
    """Per pair the common-neighbour count, resource allocation (``sum_k 1 / deg k``) and
    Adamic-Adar (``sum_k 1 / log deg k``) scores as ``log(1 + x) / log(1 + x_max)``, ``[P, 3]``
    in ``[0, 1]``: ``x_max`` is each score's bound on this graph (a pair has at most
    ``max deg`` common neighbours, each of degree >= 2, so every weight is finite)."""
    d = degree.to(torch.float32).clamp(min=2.0)
    w = torch.stack([torch.ones_like(d), 1.0 / d, 1.0 / torch.log(d)], 1)
    bound = torch.log1p(d.max() * w.max(0).values)
    return torch.log1p(common_neighbor_weights(pairs, adjacency, w, bits)) / bound


class CommonNeighborDecoder(nn.Module):
    """Common-neighbour-aware pair decoder: an MLP on
    ``W_1 (z_i * z_j) [+ W_2 sum_{k in CN(i, j)} z_k] [+ W_3 s_ij]``, where the second term is
    NCN's (Wang et al., ICLR 2024, arXiv 2302.00890: the embeddings of the nodes both endpoints
    are linked to) and ``s_ij`` are the pair's classic structure scores
    (:func:`structure_features`: common-neighbour count, resource allocation, Adamic-Adar; NCN's
    "GAE+CN" ablation). Symmetric in i, j. ``cn_channels`` (``0 < cn_channels < in_channels``)
    restricts ``W_2`` to rank ``cn_channels`` (``W_2 = W_up W_down``, ``W_down`` applied before the
    sum), which makes the sparse product that many columns wide. ``embeddings=False, structure=False`` is the
    Hadamard MLP decoder.

    Shapes:
        ``z [N, F]``, ``pairs [2, P]``, ``adjacency`` bool ``[N, N]`` -> ``[P]``.
    """

    def __init__(self, in_channels: int, hidden_channels: int, num_layers: int = 2,
                 dropout: float = 0.0, embeddings: bool = True, structure: bool = False,
                 cn_channels: int = 0):
        super().__init__()
        self.lin_pair = nn.Linear(in_channels, hidden_channels)
        # W_2 of rank cn_channels: the embeddings are projected before the sum (it is linear),
        # so the sparse product moves cn_channels columns instead of in_channels
        self.cn_down = nn.Linear(in_channels, cn_channels, bias=False) \
            if embeddings and 0 < cn_channels < in_channels else None
        width = cn_channels if self.cn_down is not None else in_channels
        self.lin_cn = nn.Linear(width, hidden_channels, bias=False) if embeddings else None
        # NCN normalises its common-neighbour branch: without it the sum's norm (its count, ~400
        # for a training edge against ~100 for a random pair) dominates the pair's term
        self.cn_norm = nn.LayerNorm(hidden_channels) if embeddings else None
        self.lin_sf = nn.Linear(3, hidden_channels, bias=False) if structure else None
        if structure:  # zero: training starts from the Hadamard MLP and learns how much to add
            nn.init.zeros_(self.lin_sf.weight)
        self.head = HadamardMLP(hidden_channels, hidden_channels, 1, max(1, num_layers - 1), dropout,
                                fast_dropout=True)
        self.dropout = Dropout(dropout)
        self._graph_key = self._bits = self._degree = None

    def _graph(self, adjacency: torch.Tensor):
        """The adjacency's packed rows (CPU with numba) and degrees, rebuilt only when the
        tensor changes (in place too)."""
        key = (adjacency.data_ptr(), adjacency._version, adjacency.device)
        if key != self._graph_key:
            self._bits = None
            if adjacency.device.type == "cpu" and backend.use_numba(adjacency.device, torch.float32):
                from vgraph.ops import cpu_kernels
                self._bits = cpu_kernels.pack_rows(adjacency)
            self._degree = adjacency.sum(1)
            self._graph_key = key
        return self._bits, self._degree

    def forward(self, z: torch.Tensor, pairs: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        h = self.lin_pair(pair_product(z, pairs))
        if self.lin_cn is not None or self.lin_sf is not None:
            bits, degree = self._graph(adjacency)
            if self.lin_cn is not None:
                zc = z if self.cn_down is None else self.cn_down(z)
                h = h + self.cn_norm(self.lin_cn(common_neighbor_sum(zc, pairs, adjacency, bits)))
            if self.lin_sf is not None:
                h = h + self.lin_sf(structure_features(pairs, adjacency, degree, bits))
        return self.head.net(self.dropout(torch.relu(h))).squeeze(-1)

"""Atom-level molecular encoder on :mod:`vgraph.ops`: message passing over many molecules at
once (one block-diagonal graph), one substructure readout per layer, and a co-attention
between two drugs' substructure sets.

* :class:`MolecularBatch` — ``D`` molecules as one graph: categorical atom features, one
  :class:`~vgraph.ops.SparseGraph` per bond type (both directions) and the atom offsets of
  each molecule (``ptr``, CSR segments for the readouts).
* :class:`BondTypeConv` — a relational convolution over bond types (R-GCN style,
  Schlichtkrull et al. 2018): ``h_i' = W_0 h_i + sum_k sum_{j: (j,i) bond of type k} W_k h_j + b``,
  each sum one :func:`vgraph.ops.spmm`.
* :class:`MolecularEncoder` — atom embeddings (a sum of one embedding per categorical
  feature), ``L`` residual :class:`BondTypeConv` layers (LayerNorm, ReLU, dropout) and after
  every layer a gated readout per molecule (a sigmoid gate per atom, the gated atom values
  summed over the molecule with :func:`vgraph.ops.segment_csr`, then LayerNorm; a sum keeps
  sizes and counts visible, which a softmax-weighted mean hides): ``[D, L, hidden]``, the
  drug's substructures of radius 1..L, as in SSI-DDI (Nyamabo et al., Brief. Bioinform. 2021)
  and DSN-DDI (Li et al., 2023). :func:`segment_softmax` is the softmax alternative.
* :class:`AtomCrossAttention` — the two drugs of a pair read each other atom by atom: every
  atom of the head attends over the tail's atoms (and vice versa, through the same score
  matrix), and each drug's pair-conditioned readout sums ``v_i * message_i`` over its atoms.
  Pairs are grouped by the sizes of their two molecules (size classes ~1.25x apart) and each
  chunk is padded to its largest head and tail, so a 457-atom drug does not pad the batch.
* :class:`SubstructureCoAttention` — for a pair of substructure sets ``H, T [P, L, d]``,
  scaled dot-product co-attention weights ``gamma [P, L, L]`` (softmax over the ``L*L`` cells;
  separate query/key maps, so the pair is ordered) and the attended interaction
  ``sum_ij gamma_ij (H_i * T_j)`` ``[P, d]``.

Every output row of a molecule depends on that molecule alone (no batch statistics), so a
drug encoded alone gives the same numbers as inside a batch.
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

from vgraph.ops import SparseGraph, segment_csr, spmm


class MolecularBatch:
    """``D`` molecules as one block-diagonal graph.

    Args:
        atoms: ``[A, K]`` integer category of each atom for each of ``K`` features.
        num_atoms: ``[D]`` atoms per molecule (molecule ``d``'s atoms follow ``d-1``'s).
        bonds: ``[B, 2]`` atom positions *within* each molecule. num_bonds: ``[D]``.
        bond_types: ``[B]`` in ``0..num_bond_types-1``. num_bond_types: relations.
        features: optional ``[D, F]`` molecule-level features (e.g. fingerprint bits).
    """

    def __init__(self, atoms, num_atoms, bonds, bond_types, num_bonds, num_bond_types: int, features=None):
        self.atoms = torch.as_tensor(atoms).long()
        num_atoms = torch.as_tensor(num_atoms).long()
        num_bonds = torch.as_tensor(num_bonds).long()
        bonds = torch.as_tensor(bonds).long().reshape(-1, 2)
        bond_types = torch.as_tensor(bond_types).long().reshape(-1)
        self.num_molecules = int(num_atoms.numel())
        self.ptr = torch.zeros(self.num_molecules + 1, dtype=torch.long)
        torch.cumsum(num_atoms, 0, out=self.ptr[1:])
        n = int(self.ptr[-1])
        if self.atoms.size(0) != n:
            raise ValueError(f"atoms has {self.atoms.size(0)} rows, num_atoms sums to {n}")
        if bonds.size(0) != int(num_bonds.sum()) or bond_types.numel() != bonds.size(0):
            raise ValueError("bonds, bond_types and num_bonds disagree")
        offset = torch.repeat_interleave(self.ptr[:-1], num_bonds)  # local -> global atom ids
        glob = bonds + offset[:, None]
        if glob.numel() and (bool((bonds < 0).any()) or bool(
                (bonds >= torch.repeat_interleave(num_atoms, num_bonds)[:, None]).any())):
            raise ValueError("a bond names an atom outside its molecule")
        if bond_types.numel() and (int(bond_types.min()) < 0 or int(bond_types.max()) >= num_bond_types):
            raise ValueError(f"bond types must lie in 0..{num_bond_types - 1}")
        self.graphs = []
        for k in range(num_bond_types):
            e = glob[bond_types == k].t()
            self.graphs.append(SparseGraph(torch.cat([e, e.flip(0)], 1), n, _validated=True))
        self.num_atoms_total = n
        self.features = None if features is None else torch.as_tensor(features, dtype=torch.float32)
        if self.features is not None and self.features.size(0) != self.num_molecules:
            raise ValueError(f"features has {self.features.size(0)} rows for {self.num_molecules} molecules")

    def __len__(self) -> int:
        return self.num_molecules


class BondTypeConv(nn.Module):
    """``h' = h W_0 + sum_k A_k h W_k + b`` over bond-type adjacencies ``A_k`` (sum aggregation).

    Shapes: ``x [A, in_channels]`` -> ``[A, out_channels]``.
    """

    def __init__(self, in_channels: int, out_channels: int, num_bond_types: int):
        super().__init__()
        self.num_bond_types, self.out_channels = num_bond_types, out_channels
        self.weight = nn.Parameter(torch.empty(in_channels, (num_bond_types + 1) * out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        bound = math.sqrt(6.0 / (in_channels + out_channels))
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x: torch.Tensor, graphs) -> torch.Tensor:
        parts = (x @ self.weight).split(self.out_channels, dim=1)  # one GEMM for all relations
        out = parts[0] + self.bias
        for k, g in enumerate(graphs):
            if g.num_edges:
                out = out + spmm(g, parts[k + 1].contiguous())
        return out


def segment_softmax(scores: torch.Tensor, ptr: torch.Tensor) -> torch.Tensor:
    """Softmax of ``scores [A, H]`` within each CSR segment of ``ptr`` (a molecule's atoms)."""
    counts = ptr[1:] - ptr[:-1]
    top = segment_csr(scores.detach(), ptr, "max")  # shift-invariant: no gradient needed
    e = torch.exp(scores - torch.repeat_interleave(top, counts, dim=0, output_size=scores.size(0)))
    total = segment_csr(e, ptr, "sum").clamp(min=1e-12)
    return e / torch.repeat_interleave(total, counts, dim=0, output_size=scores.size(0))


class MolecularEncoder(nn.Module):
    """Atom embeddings -> ``layers`` residual bond-type convolutions -> a gated readout per layer.

    Args:
        atom_sizes: categories of each atom feature. hidden: width. layers: convolutions
        (= substructure radii). num_bond_types: relations. dropout: after each layer.

    Shapes: ``forward(batch) -> [D, layers, hidden]`` (molecule-level substructure vectors).
    """

    def __init__(self, atom_sizes, hidden: int = 64, layers: int = 3, num_bond_types: int = 4,
                 dropout: float = 0.0):
        super().__init__()
        atom_sizes = [int(s) for s in atom_sizes]
        self.register_buffer("offsets", torch.tensor([0] + atom_sizes[:-1]).cumsum(0), persistent=False)
        self.embed = nn.Embedding(sum(atom_sizes), hidden)
        self.convs = nn.ModuleList(BondTypeConv(hidden, hidden, num_bond_types) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.gate = nn.ModuleList(nn.Linear(hidden, 1) for _ in range(layers))
        self.value = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers))
        self.out_norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.dropout, self.hidden, self.layers = dropout, hidden, layers

    def forward(self, batch: MolecularBatch, return_atoms: bool = False):
        """``[D, layers, hidden]`` readouts; with ``return_atoms`` also the last layer's atom
        states ``[A, hidden]`` (for :class:`AtomCrossAttention`)."""
        h = self.embed(batch.atoms + self.offsets).sum(1)
        counts = batch.ptr[1:] - batch.ptr[:-1]
        outs = []
        for conv, norm, gate, value, out_norm in zip(self.convs, self.norms, self.gate, self.value, self.out_norms):
            h = h + F.dropout(F.relu(norm(conv(h, batch.graphs))), self.dropout, self.training)
            a = torch.sigmoid(gate(h))  # [A, 1] gate of each atom (a sum readout: sizes and counts stay visible)
            outs.append(out_norm(segment_csr(a * value(h), batch.ptr, "sum")))
        out = torch.stack(outs, 1)  # [D, L, hidden]
        out = out * (counts > 0).to(out.dtype)[:, None, None]  # an empty molecule reads out 0
        return (out, h) if return_atoms else out


class SubstructureCoAttention(nn.Module):
    """Co-attention between a head's and a tail's substructure sets.

    Shapes: ``forward(H [P, L, d], T [P, L, d]) -> (interaction [P, d], gamma [P, L, L])``.
    """

    def __init__(self, dim: int, att_dim: int | None = None):
        super().__init__()
        att_dim = att_dim or dim
        self.query, self.key = nn.Linear(dim, att_dim), nn.Linear(dim, att_dim)
        self.scale = 1.0 / math.sqrt(att_dim)

    def forward(self, heads: torch.Tensor, tails: torch.Tensor):
        p, lh, _ = heads.shape
        scores = torch.bmm(self.query(heads), self.key(tails).transpose(1, 2)) * self.scale  # [P, Lh, Lt]
        gamma = torch.softmax(scores.reshape(p, -1), -1).reshape(scores.shape)
        # sum_ij gamma_ij (h_i * t_j) = sum_i h_i * (sum_j gamma_ij t_j)
        inter = (heads * torch.bmm(gamma, tails)).sum(1)
        return inter, gamma


class AtomCrossAttention(nn.Module):
    """Atom-level cross attention between the two molecules of each pair.

    ``project(h [A, in_dim])`` gives every atom's ``(q, k, v)`` once per encoder pass;
    ``forward(qkv, ptr, heads, tails)`` then gives, for pairs of molecules ``(heads[p],
    tails[p])`` (indices into the CSR segments ``ptr``), the head's readout
    ``LayerNorm(sum_i v_i * sum_j softmax_j(q_i . k_j / sqrt(d)) v_j)`` and the tail's (its atoms
    attend over the head's with the same scores), ``[P, dim]`` each. A pair's output depends on
    its two molecules alone (the padding is masked), so it is the same in any batch.

    Args: in_dim: atom state width. dim: attention width. budget: attention cells per chunk.
    """

    block = 16_384  # pairs per pass: the padded rows of one pass stay a few hundred MB

    def __init__(self, in_dim: int, dim: int = 64, budget: int = 3_000_000):
        super().__init__()
        self.qkv = nn.Linear(in_dim, 3 * dim)
        self.norm = nn.LayerNorm(dim)
        self.dim, self.budget = dim, budget

    def project(self, h: torch.Tensor) -> torch.Tensor:
        return self.qkv(h)

    def forward(self, qkv: torch.Tensor, ptr: torch.Tensor, heads: torch.Tensor, tails: torch.Tensor):
        if heads.numel() > self.block:  # pairs are independent: the same numbers in blocks
            parts = [self(qkv, ptr, h, t) for h, t in zip(heads.split(self.block), tails.split(self.block))]
            return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        counts = ptr[1:] - ptr[:-1]
        nh, nt = counts[heads], counts[tails]
        # group pairs by (head size, tail size), each rounded up to a ~1.25x size class, so that
        # padding a chunk to its largest head and tail wastes little
        top = int(max(int(nh.max()), int(nt.max()))) if heads.numel() else 1
        edges, w = [1], 1
        while w < top:
            w = max(w + 1, int(math.ceil(w * 1.25)))
            edges.append(w)
        edges = torch.tensor(edges)
        key = torch.bucketize(nh, edges) * len(edges) + torch.bucketize(nt, edges)
        order = torch.argsort(key, stable=True)
        _, group_sizes = torch.unique_consecutive(key[order], return_counts=True)
        plan, index = [], []  # the chunks, and every chunk's padded atom rows (one gather for all:
        start = 0             # per-chunk indexing would allocate a full-size gradient per chunk)
        for size in group_sizes.tolist():
            group = order[start:start + size]
            start += size
            wh, wt = max(int(nh[group].max()), 1), max(int(nt[group].max()), 1)
            for sel in group.split(max(1, self.budget // (wh * wt))):
                pos_h, pos_t = torch.arange(wh), torch.arange(wt)
                mask_h, mask_t = pos_h[None] < nh[sel][:, None], pos_t[None] < nt[sel][:, None]
                index += [torch.where(mask_h, ptr[heads[sel]][:, None] + pos_h[None], 0).flatten(),
                          torch.where(mask_t, ptr[tails[sel]][:, None] + pos_t[None], 0).flatten()]
                plan.append((sel, wh, wt, mask_h, mask_t, nh[sel], nt[sel]))
        if not plan:
            empty = qkv.new_zeros(0, self.dim)
            return empty, empty
        rows = qkv[torch.cat(index)].split([i.numel() for i in index])
        out_h, out_t = [], []
        for k, (sel, wh, wt, mask_h, mask_t, sh, st) in enumerate(plan):
            c = sel.numel()
            rh, rt = self._chunk(rows[2 * k].view(c, wh, -1), rows[2 * k + 1].view(c, wt, -1),
                                 mask_h, mask_t, sh, st)
            out_h.append(rh)
            out_t.append(rt)
        order = torch.cat([p[0] for p in plan])
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(order.numel())
        return self.norm(torch.cat(out_h)[inverse]), self.norm(torch.cat(out_t)[inverse])

    def _chunk(self, rows_h, rows_t, mask_h, mask_t, nh, nt):
        """One chunk: ``rows_h [C, Wh, 3d]`` / ``rows_t [C, Wt, 3d]`` padded atom projections
        (masks of the real atoms; ``nh``/``nt`` their counts)."""
        qh, kh, vh = rows_h.split(self.dim, -1)
        qt, kt, vt = rows_t.split(self.dim, -1)
        scores = torch.bmm(qh, kt.transpose(1, 2)) / math.sqrt(self.dim)  # [C, Wh, Wt]
        low = torch.finfo(scores.dtype).min
        to_t = torch.softmax(scores.masked_fill(~mask_t[:, None, :], low), 2)  # head atoms over tail atoms
        to_h = torch.softmax(scores.masked_fill(~mask_h[:, :, None], low), 1)  # tail atoms over head atoms
        msg_h = torch.bmm(to_t, vt) * (nt > 0).to(vt.dtype)[:, None, None]  # an empty partner sends nothing
        msg_t = torch.bmm(to_h.transpose(1, 2), vh) * (nh > 0).to(vh.dtype)[:, None, None]
        rh = (vh * msg_h * mask_h[..., None]).sum(1)
        rt = (vt * msg_t * mask_t[..., None]).sum(1)
        return rh, rt

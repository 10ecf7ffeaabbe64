r"""CatFlow: variational flow matching for molecular graphs (Eijkelboom et al. 2024, arXiv 2406.04843).

Flow matching with the straight path :math:`x_t = t\,x_1 + (1-t)\,x_0`, :math:`x_0 \sim
\mathcal N(0, I)`, :math:`x_1` the one-hot atom and bond types. Variational flow matching
approximates the posterior over endpoints :math:`p_t(x_1 \mid x_t)` with a *factorised
categorical* :math:`q_\theta(x_1 \mid x_t) = \prod_i \mathrm{Cat}(a_i) \prod_{i<j}
\mathrm{Cat}(e_{ij})`, trained by cross-entropy on the endpoint (VFM's objective for
categorical data reduces to it). The marginal velocity follows from the posterior mean:
:math:`v_\theta(x_t, t) = (\mathbb E_{q_\theta}[x_1] - x_t) / (1 - t)`, integrated with
Euler steps from :math:`t = 0` to 1; the sample is the argmax of the last posterior.

The denoiser is a graph network on the complete graph of the molecule's atoms (node and
edge states, edge updates from both endpoints, node updates by summing incoming edge
messages, a global mean-pooled context per graph). Every input to the edge state is
symmetric in ``(i, j)``, so it is held once per unordered pair ``i < j`` (:class:`PairIndex`):
36 rows instead of 81 for a 9-atom molecule, the same function as the dense ``N x N`` form.
The number of atoms is drawn from the training distribution, as in DiGress.

Self-conditioning (``self_cond=True``, Chen et al. 2022's trick applied to the endpoint
posterior): the denoiser also reads its own previous endpoint prediction — during training,
for half of the batches, a gradient-free first pass at the same ``x_t``; when sampling, the
prediction of the previous Euler step (free). From that prediction it gets the features a
chemist would check, which a noisy continuous state cannot show: each atom's expected bond
order sum against the expected valence of its predicted element, closed-walk counts
:math:`(P^k)_{ii}, k = 2..6` of the predicted bond-probability matrix :math:`P` (rings), and
the lowest Laplacian eigenvalues of :math:`P` with the Fiedler vector (connectivity: a
second eigenvalue near 0 means the predicted molecule falls apart into fragments).

``sample_graphs(..., decode="argmax")`` is the plain sampler (validity is what the model learnt);
``decode="valence"`` reads the final categorical posterior greedily under valence limits
(most confident bonds first, skipped if either atom is full) and is reported separately.

Shapes:
    ``atoms [B, N]`` (``-1`` padding), ``adj [B, N, N]`` bond orders 0..3.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


NUM_BOND_CLASSES = 4
SELF_COND_NODE_FEATURES = 3 + 5 + 3 + 1  # valence (3), closed walks 2..6 (5), eigenvalues (3), Fiedler (1)
TIME_SCHEDULES = ("uniform", "polydec", "cosine")


def _bond_order_sum(edges: torch.Tensor, pair) -> torch.Tensor:
    """Per atom, the (expected) bond-order sum ``sum_j sum_k k * edges[i, j, k]`` over the
    atom pairs selected by ``pair [B, N, N]``: ``edges [B, N, N, 4] -> [B, N]``."""
    orders = torch.arange(NUM_BOND_CLASSES, dtype=edges.dtype, device=edges.device)
    return ((edges * orders).sum(-1) * pair).sum(-1)


def _pair_mask(node_mask: torch.Tensor) -> torch.Tensor:
    """``[B, N, N]`` bool: both atoms real and distinct."""
    n = node_mask.size(1)
    return node_mask.unsqueeze(1) & node_mask.unsqueeze(2) & \
        ~torch.eye(n, dtype=torch.bool, device=node_mask.device).unsqueeze(0)


class PairIndex:
    """The unordered atom pairs ``i < j`` of an ``n``-atom graph, row-major (``torch.triu_indices``
    order): ``iu, ju [P]`` with ``P = n (n - 1) / 2``, and ``incidence [n, P]``, 0/1, atom in
    pair, so that a per-atom sum over its pairs is one small matrix product."""

    def __init__(self, n: int, device):
        self.n = n
        self.iu, self.ju = torch.triu_indices(n, n, 1, device=device)
        p = torch.arange(self.iu.numel(), device=device)
        self.flat = self.iu * n + self.ju  # pair -> row-major index into the flattened N x N grid
        self.incidence = torch.zeros(n, p.numel(), device=device)  # [N, P] 0/1: atom in pair
        self.incidence[self.iu, p] = 1.0
        self.incidence[self.ju, p] = 1.0

    def gather(self, dense: torch.Tensor) -> torch.Tensor:
        """``[B, N, N, ...] -> [B, P, ...]`` (upper triangle)."""
        return dense.flatten(1, 2).index_select(1, self.flat)

    def scatter(self, pairs: torch.Tensor) -> torch.Tensor:
        """``[B, P, ...] -> [B, N, N, ...]``, symmetric, zero diagonal."""
        out = pairs.new_zeros(pairs.size(0), self.n, self.n, *pairs.shape[2:])
        out[:, self.iu, self.ju] = pairs
        out[:, self.ju, self.iu] = pairs
        return out

    def node_sum(self, pairs: torch.Tensor) -> torch.Tensor:
        """Per atom, the sum over its pairs: ``[B, P, ...] -> [B, N, ...]``."""
        bsz, rest = pairs.size(0), pairs.shape[2:]
        if pairs.dim() == 2:
            return pairs @ self.incidence.t().to(pairs.dtype)
        inc = self.incidence.to(pairs.dtype)
        return torch.matmul(inc, pairs.reshape(bsz, pairs.size(1), -1)).view(bsz, self.n, *rest)

    def mask(self, node_mask: torch.Tensor) -> torch.Tensor:
        """``[B, N] -> [B, P]`` bool: both atoms of the pair real."""
        return node_mask.index_select(1, self.iu) & node_mask.index_select(1, self.ju)


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of ``t`` in [0, 1]: ``[B] -> [B, dim]``."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=t.device) / half)
    ang = t.unsqueeze(1) * 1000.0 * freqs.unsqueeze(0) / 10
    return torch.cat([ang.sin(), ang.cos()], 1)


class GraphNetLayer(nn.Module):
    """One round of edge update + node update on the complete graph, edges held once per
    unordered pair (the edge state is symmetric: every input to it is)."""

    def __init__(self, hidden: int):
        super().__init__()
        # first edge linear on [h_i + h_j, h_i * h_j, e_ij], with the h_i + h_j part applied per node
        # (W(h_i + h_j) = W h_i + W h_j): a third of the per-pair work saved, same function class
        self.edge_sum = nn.Linear(hidden, hidden)
        self.edge_pair = nn.Linear(2 * hidden, hidden, bias=False)
        self.edge_out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden))
        self.node_mlp = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.node_norm = nn.LayerNorm(hidden)
        self.edge_norm = nn.LayerNorm(hidden)

    def forward(self, h, e, node_mask, pair_mask, pairs: PairIndex):
        """``h [B, N, H]``, ``e [B, P, H]`` (one row per pair ``i < j``), ``pair_mask [B, P]`` float."""
        bsz, n, hid = h.shape
        hs = self.edge_sum(h)
        hi, hj = h.index_select(1, pairs.iu), h.index_select(1, pairs.ju)
        both = hs.index_select(1, pairs.iu) + hs.index_select(1, pairs.ju)
        # edge_pair(cat[h_i * h_j, e]) + both, as two accumulating GEMMs (no concatenated copy)
        w = self.edge_pair.weight
        pre = torch.addmm(both.reshape(-1, hid), (hi * hj).reshape(-1, hid), w[:, :hid].t())
        pre = torch.addmm(pre, e.reshape(-1, hid), w[:, hid:].t()).view(bsz, -1, hid)
        msg = self.edge_out(pre) * pair_mask.unsqueeze(-1)
        e = self.edge_norm(e + msg)
        agg = pairs.node_sum(msg)  # each atom sums the messages of its n - 1 pairs
        counts = node_mask.sum(1, keepdim=True).clamp(min=1).unsqueeze(-1)
        glob = (h * node_mask.unsqueeze(-1)).sum(1, keepdim=True) / counts
        h = self.node_norm(h + self.node_mlp(torch.cat([h, agg, glob.expand(-1, n, -1)], -1)))
        return h * node_mask.unsqueeze(-1), e


class CatFlow(nn.Module):
    """Variational flow matching over atom and bond types (see module docstring).

    Args:
        vocab: a :class:`vgraph.chem.Vocabulary` (or its ``to_dict()``). max_atoms: largest molecule.
        atom_counts: histogram of atoms per training molecule (index = count) to draw sizes.
        hidden / num_layers: denoiser width and depth. edge_weight: weight of the bond CE.
        self_cond: condition on the previous endpoint prediction and its valence, ring and
            connectivity features (module docstring).
        train_time: how training draws ``t``: ``u ~ U(0, 1)`` passed through the
            :meth:`time_grid` map of that name (``polydec``: ``1 - (1 - u)^2``, more weight
            near ``t = 1``, matching a polydec sampler).
    """

    def __init__(self, vocab, max_atoms: int, atom_counts=None, hidden: int = 128, num_layers: int = 4,
                 edge_weight: float = 2.0, self_cond: bool = True, train_time: str = "uniform"):
        super().__init__()
        from vgraph.chem.datasets import as_vocabulary
        self.vocab = vocab = as_vocabulary(vocab)
        self.num_tokens, self.max_atoms, self.hidden = len(vocab), int(max_atoms), hidden
        self.edge_weight = edge_weight
        self.self_cond = bool(self_cond)
        if train_time not in TIME_SCHEDULES:
            raise ValueError(f"train_time must be one of {TIME_SCHEDULES}, got {train_time!r}")
        self.train_time = train_time
        self.config = {"hidden": hidden, "num_layers": num_layers, "max_atoms": int(max_atoms),
                       "edge_weight": edge_weight, "self_cond": self.self_cond, "train_time": train_time}
        counts = torch.zeros(self.max_atoms + 1)
        if atom_counts is not None:
            atom_counts = torch.as_tensor(atom_counts, dtype=torch.float32)[: self.max_atoms + 1]
            counts[: atom_counts.numel()] = atom_counts
        else:
            counts[-1] = 1
        self.register_buffer("atom_counts", counts)
        self.register_buffer("max_valence", torch.tensor(vocab.max_valence, dtype=torch.long))
        cond_node = self.num_tokens + SELF_COND_NODE_FEATURES if self.self_cond else 0
        cond_edge = NUM_BOND_CLASSES if self.self_cond else 0
        self.node_in = nn.Linear(self.num_tokens + 1 + hidden + cond_node, hidden)
        self.edge_in = nn.Linear(NUM_BOND_CLASSES + hidden + cond_edge, hidden)
        self.layers = nn.ModuleList(GraphNetLayer(hidden) for _ in range(num_layers))
        self.node_out = nn.Linear(hidden, self.num_tokens)
        self.edge_out = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, NUM_BOND_CLASSES))
        self._pair_cache = {}

    def pairs(self, n: int, device) -> PairIndex:
        key = (n, str(device))
        if key not in self._pair_cache:
            self._pair_cache[key] = PairIndex(n, device)
        return self._pair_cache[key]

    # ----------------------------------------------------------------- denoiser
    def condition_features(self, px, pe, node_mask, pair_mask=None):
        """Self-conditioning inputs from a previous endpoint prediction (probabilities).

        ``px [B, N, V]``, ``pe [B, N, N, 4]`` -> ``(node [B, N, V + 11], edge [B, N, N, 4])``:
        the probabilities themselves plus, per atom, expected bond-order sum, expected valence
        of the predicted element and their difference (all / 4), closed walks of length 2..6
        in the bond-probability matrix, the three lowest non-padding Laplacian eigenvalues and
        the Fiedler vector entry. (Dense form of :meth:`_condition_pairs`; ``pair_mask`` is
        accepted for backward compatibility and recomputed from ``node_mask``.)
        """
        pairs = self.pairs(px.size(1), px.device)
        node, edge = self._condition_pairs(px, pairs.gather(pe), node_mask, pairs.mask(node_mask).to(px.dtype),
                                           pairs)
        return node, pairs.scatter(edge)

    def _condition_pairs(self, px, pe, node_mask, pmf, pairs: PairIndex):
        """:meth:`condition_features` with ``pe [B, P, 4]`` per pair ``i < j`` and ``pmf [B, P]``
        the float pair mask: ``-> (node [B, N, V + 11], edge [B, P, 4])``."""
        bsz, n, _ = px.shape
        maskf = node_mask.to(px.dtype)
        orders = torch.arange(NUM_BOND_CLASSES, dtype=pe.dtype, device=pe.device)
        bond_sum = pairs.node_sum((pe * orders).sum(-1) * pmf)
        valence = (px * self.max_valence.to(px.dtype)).sum(-1)
        prob = pairs.scatter((1 - pe[..., 0]) * pmf)  # probability that i-j is bonded at all
        walks, power = [], prob
        for _ in range(2, 7):
            power = power @ prob
            walks.append(torch.diagonal(power, dim1=1, dim2=2) / n)
        lap = torch.diag_embed(prob.sum(-1)) - prob
        # padding atoms get an isolated large diagonal so their eigenvalues sort last
        lap = lap + torch.diag_embed((1 - maskf) * 2.0 * n)
        evals, evecs = torch.linalg.eigh(lap.double())
        evals, evecs = evals.to(px.dtype), evecs.to(px.dtype)
        low = evals[:, :3] if n >= 3 else F.pad(evals, (0, 3 - n), value=0.0)
        fiedler = evecs[:, :, 1] if n >= 2 else torch.zeros_like(maskf)
        fiedler = fiedler * torch.sign(fiedler.sum(1, keepdim=True) + 1e-9)  # fix the sign
        node = torch.cat([px, (bond_sum / 4).unsqueeze(-1), (valence / 4).unsqueeze(-1),
                          ((valence - bond_sum) / 4).unsqueeze(-1), torch.stack(walks, -1),
                          (low / 4).unsqueeze(1).expand(-1, n, -1), fiedler.unsqueeze(-1)], -1)
        return node * maskf.unsqueeze(-1), pe * pmf.unsqueeze(-1)

    def forward(self, x_t, e_t, t, node_mask, cond=None):
        """Endpoint logits ``(node [B, N, V], edge [B, N, N, 4])`` given the noisy state
        (dense form of :meth:`denoise`; the diagonal of the edge logits is zero).

        ``cond``: ``(px, pe)``, the previous endpoint prediction (``None``: zeros), used
        when the model was built with ``self_cond``.
        """
        pairs = self.pairs(x_t.size(1), x_t.device)
        if cond is not None:
            cond = (cond[0], pairs.gather(cond[1]))
        node, edge = self.denoise(x_t, pairs.gather(e_t), t, node_mask, cond)
        return node, pairs.scatter(edge)

    def denoise(self, x_t, e_t, t, node_mask, cond=None):
        """Endpoint logits ``(node [B, N, V], edge [B, P, 4])`` with the edge state ``e_t [B, P, 4]``
        and ``cond = (px [B, N, V], pe [B, P, 4])`` held once per atom pair ``i < j``
        (:class:`PairIndex` order)."""
        bsz, n, _ = x_t.shape
        hid = self.hidden
        pairs = self.pairs(n, x_t.device)
        temb = time_embedding(t, hid)
        pmf = pairs.mask(node_mask).to(x_t.dtype)
        # valence cue: each atom's bond-order sum read off the current edge state
        orders = torch.arange(NUM_BOND_CLASSES, dtype=e_t.dtype, device=e_t.device)
        degree = pairs.node_sum((e_t * orders).sum(-1) * pmf).unsqueeze(-1) / 4.0
        node_parts = [x_t, degree, temb.unsqueeze(1).expand(-1, n, -1)]
        edge_parts = [e_t]
        if self.self_cond:
            if cond is None:
                node_parts.append(x_t.new_zeros(bsz, n, self.num_tokens + SELF_COND_NODE_FEATURES))
                edge_parts.append(e_t.new_zeros(bsz, e_t.size(1), NUM_BOND_CLASSES))
            else:
                cn, ce = self._condition_pairs(cond[0], cond[1], node_mask, pmf, pairs)
                node_parts.append(cn)
                edge_parts.append(ce)
        h = self.node_in(torch.cat(node_parts, -1)) * node_mask.unsqueeze(-1)
        # edge_in over [e_t, time, cond]: the time part is the same for every pair of a graph
        w = self.edge_in.weight
        k = NUM_BOND_CLASSES
        w_edge = torch.cat([w[:, :k], w[:, k + hid:]], 1)
        e = F.linear(torch.cat(edge_parts, -1), w_edge) + \
            F.linear(temb, w[:, k:k + hid], self.edge_in.bias).unsqueeze(1)
        for layer in self.layers:
            h, e = layer(h, e, node_mask, pmf, pairs)
        return self.node_out(h), self.edge_out(e)

    @staticmethod
    def _noise_like_edges(bsz, n, device, generator=None):
        """Gaussian noise for the edge state, one draw per pair ``i < j``: ``[B, P, 4]``."""
        return torch.randn(bsz, n * (n - 1) // 2, NUM_BOND_CLASSES, generator=generator).to(device)

    def loss(self, batch: dict, epoch: int = 0) -> dict:
        """Cross-entropy of the endpoint posterior at a random time on the straight path."""
        atoms, adj = batch["atoms"], batch["adj"]
        bsz, n = atoms.shape
        pairs = self.pairs(n, atoms.device)
        node_mask = atoms >= 0
        x1 = F.one_hot(atoms.clamp(min=0), self.num_tokens).float() * node_mask.unsqueeze(-1)
        adj_p = pairs.gather(adj)
        e1 = F.one_hot(adj_p, NUM_BOND_CLASSES).float()
        t = self.distort_time(torch.rand(bsz, device=atoms.device), self.train_time)
        tt = t.view(bsz, 1, 1)
        x_t = tt * x1 + (1 - tt) * torch.randn_like(x1)
        e_t = tt * e1 + (1 - tt) * torch.randn_like(e1)
        x_t = x_t * node_mask.unsqueeze(-1)
        cond = None
        if self.self_cond and torch.rand(()) < 0.5:
            with torch.no_grad():
                first_x, first_e = self.denoise(x_t, e_t, t, node_mask)
                cond = (first_x.softmax(-1), first_e.softmax(-1))
        node_logits, edge_logits = self.denoise(x_t, e_t, t, node_mask, cond)
        node_ce = F.cross_entropy(node_logits[node_mask], atoms[node_mask], reduction="sum") / bsz
        pm = pairs.mask(node_mask)
        edge_ce = F.cross_entropy(edge_logits[pm], adj_p[pm], reduction="sum") / bsz
        return {"loss": node_ce + self.edge_weight * edge_ce, "node_ce": node_ce, "edge_ce": edge_ce}

    # ----------------------------------------------------------------- sampling
    @staticmethod
    def time_grid(steps: int, schedule: str = "uniform") -> torch.Tensor:
        """The ``steps + 1`` times ``0 = t_0 < ... < t_steps = 1`` of the Euler integration.

        ``uniform``: ``k / steps``. ``polydec``: ``1 - (1 - u)^2``, steps shrinking towards
        ``t = 1`` where the bonds are decided (DeFoG's "polydec" time distortion).
        ``cosine``: ``(1 - cos(pi u)) / 2``, fine at both ends.
        """
        return CatFlow.distort_time(torch.arange(steps + 1, dtype=torch.float64) / steps, schedule)

    @staticmethod
    def distort_time(u: torch.Tensor, schedule: str) -> torch.Tensor:
        """The monotone map ``[0, 1] -> [0, 1]`` of :meth:`time_grid` applied to ``u``."""
        if schedule not in TIME_SCHEDULES:
            raise ValueError(f"time schedule must be one of {TIME_SCHEDULES}, got {schedule!r}")
        if schedule == "polydec":
            return 1 - (1 - u) ** 2
        if schedule == "cosine":
            return (1 - torch.cos(math.pi * u)) / 2
        return u

    @torch.no_grad()
    def sample_graphs(self, num_samples: int, steps: int = 50, generator: torch.Generator | None = None,
                      decode: str = "argmax", schedule: str = "uniform", bf16: bool = False):
        """Euler-integrate ``steps`` steps on the :meth:`time_grid` ``schedule``; return
        ``(tokens, bonds)`` graphs. ``bf16``: run the denoiser under bfloat16 autocast on the
        model's device (the posteriors and the integrated state stay float32)."""
        if decode not in ("argmax", "valence"):
            raise ValueError(f"decode must be 'argmax' or 'valence', got {decode!r}")
        grid = self.time_grid(steps, schedule).tolist()
        dev = self.atom_counts.device
        n = self.max_atoms
        pairs = self.pairs(n, dev)
        sizes = torch.multinomial(self.atom_counts.cpu(), num_samples, replacement=True,
                                  generator=generator).to(dev)
        node_mask = torch.arange(n, device=dev).unsqueeze(0) < sizes.unsqueeze(1)
        x = torch.randn(num_samples, n, self.num_tokens, generator=generator).to(dev) * node_mask.unsqueeze(-1)
        e = self._noise_like_edges(num_samples, n, dev, generator)
        cond = None
        for k in range(steps):
            t = torch.full((num_samples,), grid[k], device=dev)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):  # as MolGenTask trains
                node_logits, edge_logits = self.denoise(x, e, t, node_mask, cond)
            px, pe = node_logits.float().softmax(-1), edge_logits.float().softmax(-1)
            rate = (grid[k + 1] - grid[k]) / (1 - grid[k])  # dt / (1 - t): v = (E[x_1] - x_t) / (1 - t)
            x = x + rate * (px - x)
            e = e + rate * (pe - e)
            x = x * node_mask.unsqueeze(-1)
            cond = (px, pe)
        atoms = px.argmax(-1).masked_fill(~node_mask, -1)
        if decode == "argmax":
            adj = pairs.scatter(pe.argmax(-1))
        else:
            adj = self._valence_decode(atoms, pe)
        adj = adj * (node_mask.unsqueeze(1) & node_mask.unsqueeze(2))
        return self._to_graphs(atoms, adj)

    def _valence_decode(self, atoms, pe):
        """Greedy bond assignment from the posterior ``pe [B, P, 4]``: most confident bonds
        first, within valence."""
        bsz, n = atoms.shape
        remaining = torch.where(atoms >= 0, self.max_valence[atoms.clamp(min=0)], torch.zeros_like(atoms))
        adj = torch.zeros(bsz, n, n, dtype=torch.long, device=atoms.device)
        pairs = self.pairs(n, atoms.device)
        iu, ju = pairs.iu, pairs.ju
        order_pred = pe.argmax(-1)
        conf = pe.max(-1).values.masked_fill(order_pred == 0, -1.0)
        visit = torch.argsort(conf, 1, descending=True)
        rows = torch.arange(bsz, device=atoms.device)
        for r in range(iu.numel()):
            pidx = visit[:, r]
            i, j = iu[pidx], ju[pidx]
            k = order_pred[rows, pidx]
            cap = torch.minimum(remaining[rows, i], remaining[rows, j])
            k = torch.minimum(k, cap.clamp(min=0))
            adj[rows, i, j] = k
            adj[rows, j, i] = k
            remaining[rows, i] -= k
            remaining[rows, j] -= k
        return adj

    def _to_graphs(self, atoms, adj):
        out = []
        atoms, adj = atoms.cpu(), adj.cpu()
        for b in range(atoms.size(0)):
            n = int((atoms[b] >= 0).sum())
            toks = [self.vocab.tokens[int(k)] for k in atoms[b, :n]]
            i, j = torch.triu(adj[b, :n, :n], 1).nonzero(as_tuple=True)
            out.append((toks, torch.stack([i, j, adj[b, i, j]], 1).numpy()))
        return out

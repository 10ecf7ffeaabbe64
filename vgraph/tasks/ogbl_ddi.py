"""ogbl-ddi link prediction as a task: mini-batches of training edges with fresh negatives,
and the official evaluator's Hits@K on the official validation/test negatives.

The task knows nothing of loops or files: :class:`vgraph.train.Trainer` iterates
:meth:`training_batches` and calls :meth:`batch_loss` per optimiser step, then
:meth:`evaluate` once per epoch.
"""
from __future__ import annotations

import statistics
import time

import torch

from vgraph.data.ogbl_ddi import NAME, OgblDDI
from vgraph.ops import SparseGraph, SparseMatrix

HITS_K = (10, 20, 30)


# The recipes of `vgraph ddi --dataset ogbl-ddi --preset NAME`, keyed by the flags' names
# (docs/models/ddi.md has a table of them and says where the values come from).
_OGBL = dict(mlp_layers=2, grad_clip=0.0, lr_decay=False, mask_targets=False, residual=0.0, loss="bce", cn_channels=0,
             init="xavier", embedding_dropout=True, drop_edges=0.0, ema=0.0, embedding_dim=0, pair_dropout=0.0)
_OGB_SAGE = {**_OGBL, "epochs": 200, "lr": 0.005, "hidden": 256, "layers": 2, "dropout": 0.5,
             "batch_size": 65536, "eval_every": 5, "num_neg": 1, "conv": "sage", "decoder": "mlp",
             "grad_clip": 1.0, "embedding_dropout": False}
PRESETS = {
    # the default: the OGB GraphSAGE recipe (the best measured here, docs/results.md §4) with
    # the batch's target edges masked out of message passing, and 170 epochs so a run fits an hour
    "vgraph": {**_OGB_SAGE, "epochs": 170, "mask_targets": True},
    "ogb-sage": _OGB_SAGE,
    # the default of sessions 6-8: Refined-GAE's tricks at the OGB width
    "linear-gcn": {**_OGB_SAGE, "epochs": 160, "eval_every": 1, "conv": "gcn-linear", "residual": 0.1,
                   "init": "orthogonal", "mask_targets": True, "lr_decay": True},
    "v1": {**_OGBL, "epochs": 300, "lr": 0.01, "hidden": 128, "layers": 2, "dropout": 0.3, "batch_size": 2 ** 21,
           "eval_every": 5, "num_neg": 1, "conv": "sage", "decoder": "dot"},
}


def ogb_evaluator():
    """The official ``ogb.linkproppred.Evaluator('ogbl-ddi')`` (Hits@K rule of the leaderboard)."""
    from ogb.linkproppred import Evaluator
    return Evaluator(NAME)


class MaskedGraph:
    """The training graph with some undirected edges' weights set to zero, renormalised.

    Stands in for a :class:`SparseGraph` in :class:`~vgraph.nn.GCNConv` / :class:`SAGEConv`
    (``gcn_norm()``, ``mean_norm()``): same CSR pattern, so removing a batch's target edges
    from message passing costs no sort, only a new value vector and degrees. Both
    normalisations are symmetric in pattern, so the transpose the SpMM backward needs is the
    same pattern with its values recomputed, not a transposed CSR.
    """

    def __init__(self, locator: "EdgeLocator", edge_ids: torch.Tensor):
        self.locator, self.edge_ids = locator, edge_ids
        self.graph, self.num_nodes = locator.graph, locator.graph.num_nodes
        self._cache = {}

    def weights(self, name: str) -> torch.Tensor:
        """1 for every entry of pattern ``name`` ("adj" or "gcn"), 0 where a masked edge sits."""
        w = torch.ones(self.locator.rows[name].numel())
        w[self.locator.where[name][self.edge_ids].reshape(-1)] = 0.0
        return w

    def gcn_norm(self, add_self_loops: bool = True) -> SparseMatrix:
        key = f"gcn_norm:{add_self_loops}"
        if key not in self._cache:
            name = "gcn" if add_self_loops else "adj"
            base, rows = self.locator.mats[name], self.locator.rows[name]
            w = self.weights(name)
            deg = torch.zeros(self.num_nodes).index_add_(0, rows, w)
            dinv = deg.pow(-0.5)
            dinv[torch.isinf(dinv)] = 0
            mat = SparseMatrix(base.indptr, base.indices, dinv[rows] * w * dinv[base.indices],
                               self.num_nodes, self.num_nodes, graph=self.graph)
            mat._t = mat  # D^-1/2 A D^-1/2 of a symmetric A is its own transpose
            self._cache[key] = mat
        return self._cache[key]

    def mean_norm(self) -> SparseMatrix:
        if "mean_norm" not in self._cache:
            base, rows, w = self.locator.mats["adj"], self.locator.rows["adj"], self.weights("adj")
            n = self.num_nodes
            deg = torch.zeros(n).index_add_(0, rows, w).clamp(min=1)
            mat = SparseMatrix(base.indptr, base.indices, w / deg[rows], n, n, graph=self.graph)
            # (D^-1 A)^T = A D^-1: same symmetric pattern, each entry divided by its column's degree
            mat._t = SparseMatrix(base.indptr, base.indices, w / deg[base.indices], n, n, graph=self.graph)
            mat._t._t = mat
            self._cache["mean_norm"] = mat
        return self._cache["mean_norm"]


class EdgeLocator:
    """Where each undirected edge of ``edges [2, E]`` sits (both directions) in the CSR value
    arrays of ``graph.adj`` and ``graph.gcn_norm()``, found once, so that masking a batch of
    them is an index assignment (``graph`` must hold both directions of every edge)."""

    def __init__(self, graph: SparseGraph, edges: torch.Tensor):
        self.graph, n = graph, graph.num_nodes
        self.mats = {"adj": graph.adj, "gcn": graph.gcn_norm()}
        self.rows, self.where = {}, {}
        query = torch.stack([edges[0] * n + edges[1], edges[1] * n + edges[0]], 1)  # [E, 2]
        for name, mat in self.mats.items():
            rows = torch.repeat_interleave(torch.arange(n), mat.indptr[1:] - mat.indptr[:-1])
            key = rows * n + mat.indices
            order = None if bool((key[1:] >= key[:-1]).all()) else torch.argsort(key)  # CSR: sorted
            sorted_key = key if order is None else key[order]
            pos = torch.searchsorted(sorted_key, query).clamp(max=key.numel() - 1)
            if not bool((sorted_key[pos] == query).all()):
                raise ValueError("EdgeLocator: an edge is missing from the graph (both directions needed)")
            self.rows[name], self.where[name] = rows, pos if order is None else order[pos]

    def mask(self, edge_ids: torch.Tensor) -> MaskedGraph:
        """The graph without the undirected edges ``edges[:, edge_ids]``."""
        return MaskedGraph(self, edge_ids)


class OgblDDITask:
    """Mini-batch link prediction on ogbl-ddi.

    Args:
        data: the :class:`OgblDDI` split. batch_size: positive edges per step.
        num_neg: negatives per positive, drawn uniformly among node pairs that are not
            training edges (or self-pairs), fresh for every batch.
        seed: seeds the edge order and the negative sampler (part of the task's state).
        mask_targets: remove each batch's positive edges from the graph the encoder propagates
            over in that step (Refined-GAE's ``--maskinput``), so a training edge is never
            predicted from a message sent along itself, as validation and test edges are not.
        drop_edges: also remove this fraction of the training edges, drawn afresh every step,
            from that step's message passing (DropEdge, as a wider target mask); evaluation
            propagates over every training edge.
        eval_batch: pairs scored at once in evaluation.

    Wall time: :meth:`start_clock` (called by :meth:`prepare`) starts the run's clock;
    :meth:`evaluate` adds ``time_s`` (seconds since then, including evaluation; carried
    through ``--resume``) and every optimiser step's duration is kept in ``step_times``.
    """

    def __init__(self, data: OgblDDI, batch_size: int = 65536, num_neg: int = 1, seed: int = 0,
                 mask_targets: bool = False, eval_batch: int = 65536, drop_edges: float = 0.0):
        if not 0.0 <= drop_edges < 1.0:
            raise ValueError(f"drop_edges must be in [0, 1), got {drop_edges}")
        self.data, self.batch_size, self.num_neg, self.seed = data, batch_size, num_neg, seed
        self.mask_targets, self.eval_batch, self.drop_edges = mask_targets, eval_batch, drop_edges
        n = data.num_nodes
        self.graph = SparseGraph(data.message_passing_edge_index, n)
        self.graph.gcn_norm()
        self.graph.mean_norm()
        # dense [N, N] mask of pairs a negative may not be (N = 4267: 18 MB as bool)
        taken = torch.zeros(n, n, dtype=torch.bool)
        e = data.train_edge
        taken[e[:, 0], e[:, 1]] = True
        taken[e[:, 1], e[:, 0]] = True
        taken.fill_diagonal_(True)
        self.taken = taken.view(-1)
        self.train_pos = data.train_edge.t().contiguous()
        self.generator = torch.Generator().manual_seed(seed)
        self.evaluator = ogb_evaluator()
        self.locator = EdgeLocator(self.graph, self.train_pos) if mask_targets or drop_edges else None
        self.step_times: list[float] = []
        self._clock = self._step_start = None
        self._elapsed = 0.0

    def prepare(self, model, seed: int | None = None):
        """Before a run: reseed, give an ``"ncn"`` decoder the training graph, start the clock."""
        if seed is not None:
            self.seed = seed
            self.generator.manual_seed(seed)
        if hasattr(model, "set_adjacency"):
            model.set_adjacency(self.data.message_passing_edge_index)
        self.step_times = []
        self.start_clock()

    def start_clock(self, elapsed: float = 0.0):
        self._elapsed, self._clock = elapsed, time.perf_counter()

    def elapsed(self) -> float:
        return self._elapsed + (time.perf_counter() - self._clock if self._clock is not None else 0.0)

    def median_step_s(self) -> float | None:
        return statistics.median(self.step_times) if self.step_times else None

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "elapsed": self.elapsed()}

    def load_state_dict(self, state: dict):
        self.generator.set_state(state["generator"])
        self.start_clock(float(state.get("elapsed", 0.0)))

    @property
    def batches_per_epoch(self) -> int:
        return -(-self.train_pos.size(1) // self.batch_size)

    # ------------------------------------------------------------- training
    def sample_negatives(self, count: int) -> torch.Tensor:
        """``[2, count]`` uniform random non-edges of the training graph."""
        n = self.data.num_nodes
        out = []
        need = count
        while need > 0:
            flat = torch.randint(0, n * n, (int(need * 1.25) + 16,), generator=self.generator)
            flat = flat[~self.taken[flat]][:need]
            out.append(flat)
            need -= flat.numel()
        flat = torch.cat(out)
        return torch.stack([flat // n, flat % n])

    def training_batches(self, epoch: int, start: int = 0):
        """Index batches of the training edges in an order fixed by (seed, epoch)."""
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        perm = torch.randperm(self.train_pos.size(1), generator=g)
        for batch in list(perm.split(self.batch_size))[start:]:
            yield batch

    def message_graph(self, batch: torch.Tensor):
        """The graph a step on the training edges ``batch`` (indices) propagates over."""
        if not (self.mask_targets or self.drop_edges):
            return self.graph
        removed = [batch] if self.mask_targets else []
        if self.drop_edges:  # with replacement: a repeat only removes an edge once
            e = self.train_pos.size(1)
            removed.append(torch.randint(0, e, (int(round(self.drop_edges * e)),), generator=self.generator))
        return self.locator.mask(torch.cat(removed))

    def batch_loss(self, model, batch: torch.Tensor, epoch: int) -> torch.Tensor:
        self._step_start = time.perf_counter()
        pos = self.train_pos[:, batch]
        z = model.encode(self.message_graph(batch))
        neg = self.sample_negatives(pos.size(1) * self.num_neg)
        return model.loss(z, pos, neg, epoch=epoch)

    def after_step(self, model, epoch: int):
        """Called by the Trainer after each optimiser step: that step's wall time."""
        if self._step_start is not None:
            self.step_times.append(time.perf_counter() - self._step_start)
            self._step_start = None

    def training_loss(self, model, epoch: int) -> torch.Tensor:
        """One full-batch-free step for trainers without mini-batch support: one batch."""
        batch = next(iter(self.training_batches(epoch)))
        return self.batch_loss(model, batch, epoch)

    # ----------------------------------------------------------- evaluation
    @torch.no_grad()
    def embed(self, model) -> torch.Tensor:
        """Eval-mode node embeddings ``[N, F]`` of the training graph (what prediction scores)."""
        model.eval()
        return model.encode(self.graph)

    @torch.no_grad()
    def scores(self, model, pairs_by_name: dict) -> dict:
        """One encoder pass, then the pairs ``[P, 2]`` scored ``eval_batch`` at a time."""
        model.eval()
        z = model.encode(self.graph)
        return {k: torch.sigmoid(torch.cat([model.decode(z, c.t()) for c in v.split(self.eval_batch)]))
                for k, v in pairs_by_name.items()}

    @torch.no_grad()
    def evaluate(self, model, which=("val", "test")) -> dict:
        """``{"val_hits@20", "test_hits@20", ..., "time_s"}`` from the official OGB evaluator."""
        d = self.data
        pairs = {}
        if "val" in which:
            pairs.update(val_pos=d.valid_edge, val_neg=d.valid_edge_neg)
        if "test" in which:
            pairs.update(test_pos=d.test_edge, test_neg=d.test_edge_neg)
        s = self.scores(model, pairs)
        out = {}
        for name in which:
            for k in HITS_K:
                self.evaluator.K = k
                res = self.evaluator.eval({"y_pred_pos": s[f"{name}_pos"], "y_pred_neg": s[f"{name}_neg"]})
                out[f"{name}_hits@{k}"] = float(res[f"hits@{k}"])
        out["time_s"] = self.elapsed()
        return out


def make_optimizer(model, lr: float, weight_decay: float = 0.0, grad_clip: float | None = None,
                   lr_decay: bool = False, epochs: int = 1):
    """Adam, with optional gradient-norm clipping and linear learning-rate decay.

    Clipping runs as the optimiser's step pre-hook, i.e. after the Trainer's backward and
    before every update, on each of ``model.clip_groups()`` separately when the model has
    them (the OGB example clips embeddings, encoder and decoder each to 1.0), else on all
    parameters. The decay scheduler (stepped by the Trainer once per epoch, checkpointed with
    the run) scales the rate by ``1 - epoch / epochs``.

    Returns ``(optimizer, scheduler or None)``.
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    if grad_clip:
        groups = model.clip_groups() if hasattr(model, "clip_groups") else [list(model.parameters())]

        def clip(optimizer, args, kwargs):
            for group in groups:
                torch.nn.utils.clip_grad_norm_(group, grad_clip)
        opt.register_step_pre_hook(clip)
    scheduler = None
    if lr_decay:
        scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: max(0.0, 1.0 - e / max(epochs, 1)))
    return opt, scheduler

"""Link prediction on one graph: loss for a training step, metrics for a split.

The tasks know nothing of loops or files: :class:`vgraph.train.Trainer` calls
``training_loss`` (or ``training_batches`` + ``batch_loss``) and ``evaluate``.

* :class:`LinkPredTask` — full batch, Kipf's dense loss or the sampled 1:1 loss.
* :class:`ShardedLinkPredTask` — full-batch encoder, sampled loss, each rank a shard of the
  supervision edges and of the epoch's negatives. Negatives are drawn once per epoch for the
  whole world from a generator every rank seeds alike, then sharded, so a run on ``W`` ranks
  computes the same gradient as one process (the same pairs when the number of training
  edges divides by ``W``; otherwise padded by repeating the first edges, as
  ``torch.utils.data.DistributedSampler`` does).
* :class:`MiniBatchLinkPredTask` — neighbour-sampled mini-batches (PyG ``LinkNeighborLoader``
  semantics): the model's encoder runs on each batch's sampled subgraph only, so memory is
  bounded by the batch; evaluation embeds the whole graph in eval mode.

The samplers are pure functions in :mod:`vgraph.data.sampling`.
"""
from __future__ import annotations

import math

import torch

from vgraph.data.sampling import check_rank, sample_subgraph, seeded_generator, shard_indices
from vgraph.data.split import LinkSplit, sample_negatives
from vgraph.metrics import link_metrics
from vgraph.ops import SparseGraph, SparseMatrix


# Kipf's dense loss touches all N^2 pairs: 122 s an epoch on a 100 k-node graph against 3 s
# for the sampled one. Below this many nodes (PubMed has 19,717) the dense loss, the paper's,
# costs seconds an epoch and is kept; above it ``loss="auto"`` samples.
DENSE_MAX_NODES = 20_000
# A split role with fewer positives than this gives AUC/AP too noisy to select an epoch on.
MIN_ROLE_POSITIVES = 30


def choose_loss(requested: str, num_nodes: int) -> tuple[str, str]:
    """``(loss, note)``: ``requested`` itself, or for ``"auto"`` dense up to
    :data:`DENSE_MAX_NODES` nodes and sampled above, with a one-line note saying why."""
    if requested != "auto":
        return requested, f"loss {requested} (as requested)"
    if num_nodes <= DENSE_MAX_NODES:
        return "dense", f"loss auto -> dense ({num_nodes} nodes <= {DENSE_MAX_NODES})"
    return "sampled", (f"loss auto -> sampled ({num_nodes} nodes > {DENSE_MAX_NODES}: the dense "
                       f"loss would score all {num_nodes}^2 pairs every epoch)")


def split_warnings(split: LinkSplit, minimum: int = MIN_ROLE_POSITIVES) -> list[str]:
    """A line for each of the validation and test roles with fewer than ``minimum`` positives."""
    out = []
    for role, what in (("val", "the best epoch is picked on"), ("test", "the reported metrics rest on")):
        n = int(getattr(split, f"{role}_pos").size(1))
        if n < minimum:
            out.append(f"warning: the {role} split has only {n} positive edges (< {minimum}); "
                       f"{what} a noisy AUC/AP (raise --{role}-ratio or use a larger graph)")
    return out


def sparse_features(x: torch.Tensor, max_density: float = 0.1):
    """Features as a :class:`SparseMatrix` if at most ``max_density`` of entries are non-zero."""
    if x.dim() != 2 or x.numel() == 0:
        return x
    nnz = int((x != 0).sum())
    if nnz > max_density * x.numel():
        return x
    csr = x.to_sparse_csr()
    return SparseMatrix(csr.crow_indices(), csr.col_indices(), csr.values().float(), x.size(0), x.size(1))


def _matrix_to(mat: SparseMatrix, device) -> SparseMatrix:
    return SparseMatrix(mat.indptr.to(device), mat.indices.to(device), mat.values.to(device), *mat.shape)


def kipf_dense_targets(edge_index: torch.Tensor, num_nodes: int):
    """Kipf's dense targets: ``(positive pairs, pos_weight, norm)``.

    The labels are ``A + I`` (the N self-loops are positives), but ``pos_weight`` and
    ``norm`` count the edges of ``A`` alone, as ``tkipf/gae`` computes them from
    ``adj_train`` before adding the identity: ``pos_weight = (N^2 - |E|) / |E|``,
    ``norm = N^2 / (2 (N^2 - |E|))`` with ``|E|`` the directed edge count.
    """
    n = num_nodes
    loops = torch.arange(n, device=edge_index.device).repeat(2, 1)
    num_pos = float(edge_index.size(1))
    pos_weight = (n * n - num_pos) / num_pos if num_pos else 1.0
    return torch.cat([edge_index, loops], 1), pos_weight, n * n / ((n * n - num_pos) * 2)


class FullGraphLinkEval:
    """Embedding and evaluation shared by full-graph link tasks: needs ``self.x``,
    ``self.graph`` and ``self.pairs`` (a role -> pairs dict or a :class:`LinkSplit`)."""

    @torch.no_grad()
    def embed(self, model) -> torch.Tensor:
        model.eval()
        return model.encode(self.x, self.graph)

    @torch.no_grad()
    def evaluate(self, model, which=("val", "test")) -> dict:
        """``{"val_auc", "val_ap", "val_score", "test_auc", ...}`` with eval-mode embeddings."""
        return evaluate_link_roles(model, self.embed(model), self.pairs, which)


class LinkPredTask(FullGraphLinkEval):
    """GAE/VGAE link prediction with Kipf's dense loss or PyG-style sampled 1:1 loss.

    Args:
        split: the :class:`~vgraph.data.LinkSplit`. x: node features ``[N, F]``.
        loss: ``"dense"`` (all pairs, ``pos_weight``-weighted BCE, the paper) or ``"sampled"``.
        seed: seeds the generator of the training negatives (part of the task's state).
    """

    def __init__(self, split: LinkSplit, x: torch.Tensor, loss: str = "dense", seed: int = 0,
                 reorder: str | None = None, device="cpu"):
        if loss not in ("dense", "sampled"):
            raise ValueError(f"loss must be 'dense' or 'sampled', got {loss!r}")
        self.split, self.loss_kind = split, loss
        self.device = torch.device(device)
        n = split.num_nodes
        self.graph = SparseGraph(split.mp_edge_index, n, reorder=reorder).to(self.device)
        self.graph.gcn_norm()  # build the cached normalisation once
        x = sparse_features(x.float())
        self.x = x.to(self.device) if isinstance(x, torch.Tensor) else _matrix_to(x, self.device)
        self.pairs = {name: getattr(split, name).to(self.device)
                      for name in ("train_pos", "val_pos", "val_neg", "test_pos", "test_neg")}
        self.generator = torch.Generator().manual_seed(seed)
        if loss == "dense":
            pos, self.pos_weight, self.norm = kipf_dense_targets(split.mp_edge_index, n)
            self.dense_pos = pos.to(self.device)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict):
        self.generator.set_state(state["generator"])

    def training_loss(self, model, epoch: int) -> torch.Tensor:
        z = model.encode(self.x, self.graph)
        if self.loss_kind == "dense":
            return model.loss(z, pos_pairs=self.dense_pos, dense=True, pos_weight=self.pos_weight,
                              norm=self.norm, epoch=epoch)
        neg = self.split.sample_train_negatives(generator=self.generator).to(self.device)
        return model.loss(z, pos_pairs=self.pairs["train_pos"], neg_pairs=neg, epoch=epoch)



@torch.no_grad()
def evaluate_link_roles(model, z: torch.Tensor, pairs, which=("val", "test")) -> dict:
    """AUC / AP of ``model.decode`` on each role's positives vs negatives.

    ``pairs`` maps ``"<role>_pos"`` / ``"<role>_neg"`` to ``[2, P]`` tensors (a dict, or a
    :class:`~vgraph.data.LinkSplit`). Adds ``val_score`` = mean of validation AUC and AP,
    the default model-selection score.
    """
    get = pairs.get if isinstance(pairs, dict) else (lambda k: getattr(pairs, k))
    out = {}
    for name in which:
        pos, neg = get(f"{name}_pos"), get(f"{name}_neg")
        m = link_metrics({"pos": torch.sigmoid(model.decode(z, pos)),
                          "neg": torch.sigmoid(model.decode(z, neg))}, ks=())
        out.update({f"{name}_{k}": v for k, v in m.items()})
    if "val" in which:
        out["val_score"] = (out["val_auc"] + out["val_ap"]) / 2
    return out


def _world(rank, world_size):
    """The caller's rank/world size, else the initialised process group's (0 and 1 without)."""
    dist = torch.distributed
    live = dist.is_available() and dist.is_initialized()
    if rank is None:
        rank = dist.get_rank() if live else 0
    if world_size is None:
        world_size = dist.get_world_size() if live else 1
    return check_rank(rank, world_size)


class ShardedLinkPredTask(FullGraphLinkEval):
    """Full-batch link prediction (sampled 1:1 loss) with supervision sharded over ranks.

    Args:
        split: the :class:`~vgraph.data.LinkSplit`. x: node features ``[N, F]``.
        seed: seeds the epoch negatives (the same on every rank).
        rank, world_size: given by the caller; default from an initialised
            ``torch.distributed`` process group (0 and 1 without one).

    With ``world_size=1`` this is :class:`vgraph.tasks.LinkPredTask` with ``loss="sampled"``
    and the same seed, pair for pair.
    """

    def __init__(self, split: LinkSplit, x: torch.Tensor, seed: int = 0, rank: int | None = None,
                 world_size: int | None = None):
        self.split = self.pairs = split
        self.rank, self.world_size = _world(rank, world_size)
        self.graph = SparseGraph(split.mp_edge_index, split.num_nodes)
        self.graph.gcn_norm()
        self.x = sparse_features(x.float())
        self.generator = torch.Generator().manual_seed(seed)
        p = split.train_pos.size(1)
        self.num_global = math.ceil(p / self.world_size) * self.world_size
        self.shard = shard_indices(p, self.rank, self.world_size)
        self.train_pos = split.train_pos[:, self.shard]

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict):
        self.generator.set_state(state["generator"])

    def epoch_negatives(self) -> torch.Tensor:
        """This rank's shard of the epoch's negatives (every rank draws the whole set)."""
        neg = sample_negatives(self.split.num_nodes, self.num_global, self.split.positive_keys,
                               self.generator)
        return neg[:, self.rank::self.world_size]

    def training_loss(self, model, epoch: int) -> torch.Tensor:
        z = model.encode(self.x, self.graph)
        return model.loss(z, pos_pairs=self.train_pos, neg_pairs=self.epoch_negatives(), epoch=epoch)


class MiniBatchLinkPredTask:
    """Neighbour-sampled mini-batch link prediction for graphs too large for full batch.

    Each epoch shuffles the training edges (``seed``, ``epoch``), pads them to whole
    global steps of ``world_size`` batches, and gives rank ``r`` batch ``r`` of each step.
    A batch's negatives (as many as its positives, never a positive of any split) and its
    neighbour samples come from a generator seeded by ``(seed, epoch, batch)``.

    Args:
        split: the :class:`~vgraph.data.LinkSplit`. x: node features ``[N, F]`` (dense).
        num_neighbors: neighbours sampled per node at each hop (``-1``: all), one entry
            per encoder layer, e.g. ``(10, 10)`` for a 2-layer GCN.
        batch_size: positive pairs per batch (per rank).
        seed: the task's seed. rank, world_size: default from the process group.
        eval_device: where full-graph evaluation runs (default: the features' device).
    """

    def __init__(self, split: LinkSplit, x: torch.Tensor, num_neighbors=(10, 10),
                 batch_size: int = 1024, seed: int = 0, rank: int | None = None,
                 world_size: int | None = None, device=None):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.split, self.num_neighbors = split, tuple(int(k) for k in num_neighbors)
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.rank, self.world_size = _world(rank, world_size)
        self.graph = SparseGraph(split.mp_edge_index, split.num_nodes)
        self.x = x.float()
        self.device = torch.device(device) if device is not None else self.x.device
        self._relabel = None
        p = split.train_pos.size(1)
        per_step = self.batch_size * self.world_size
        self.steps_per_epoch = max(1, math.ceil(p / per_step))

    # the sampler is counter-based: nothing to save beyond (epoch, step), which the trainer keeps
    def state_dict(self) -> dict:
        return {"seed": self.seed}

    def load_state_dict(self, state: dict):
        self.seed = int(state["seed"])

    def __len__(self) -> int:
        return self.steps_per_epoch

    def training_batches(self, epoch: int, start: int = 0):
        """Yield this rank's batches of ``epoch`` from global step ``start`` on."""
        p = self.split.train_pos.size(1)
        order = torch.randperm(p, generator=seeded_generator(self.seed, epoch))
        total = self.steps_per_epoch * self.batch_size * self.world_size
        if total > p:
            order = torch.cat([order.repeat(total // p), order[: total % p]])
        for step in range(start, self.steps_per_epoch):
            b = step * self.world_size + self.rank  # global batch number
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield self.make_batch(self.split.train_pos[:, idx], seeded_generator(self.seed, epoch, b))

    def make_batch(self, pos: torch.Tensor, generator: torch.Generator) -> dict:
        """Negatives and the sampled subgraph for the positive pairs ``pos`` (global ids)."""
        neg = sample_negatives(self.split.num_nodes, pos.size(1), self.split.positive_keys, generator)
        pairs = torch.cat([pos, neg], 1)
        if self._relabel is None:
            self._relabel = torch.empty(self.split.num_nodes, dtype=torch.long)
        nodes, edge_index, local = sample_subgraph(self.graph, pairs.reshape(-1), self.num_neighbors,
                                                   generator, self._relabel)
        local = local.view(2, -1)
        return {"nodes": nodes, "edge_index": edge_index, "pos": local[:, :pos.size(1)],
                "neg": local[:, pos.size(1):]}

    def batch_loss(self, model, batch: dict, epoch: int) -> torch.Tensor:
        nodes = batch["nodes"]
        sub = SparseGraph(batch["edge_index"].to(self.device), nodes.numel(), _validated=True)
        x = self.x[nodes.to(self.x.device)].to(self.device)
        z = model.encode(x, sub)
        return model.loss(z, pos_pairs=batch["pos"].to(self.device),
                          neg_pairs=batch["neg"].to(self.device), epoch=epoch)

    @torch.no_grad()
    def embed(self, model) -> torch.Tensor:
        """Full-graph embeddings in eval mode (no autograd graph is kept)."""
        model.eval()
        graph = self.graph if self.device == self.graph.device else self.graph.to(self.device)
        return model.encode(self.x.to(self.device), graph)

    @torch.no_grad()
    def evaluate(self, model, which=("val", "test")) -> dict:
        return evaluate_link_roles(model, self.embed(model), self.split, which)

"""ogbl-ddi link prediction as a task: mini-batches of training edges with fresh negatives,
and the official evaluator's Hits@K on the official validation/test negatives.

The task knows nothing of loops or files: :class:`vgraph.train.Trainer` iterates
:meth:`training_batches` and calls :meth:`batch_loss` per optimiser step, then
:meth:`evaluate` once per epoch.
"""
from __future__ import annotations

import torch

from vgraph.data.ogbl_ddi import NAME, OgblDDI
from vgraph.ops import SparseGraph

HITS_K = (10, 20, 30)


def ogb_evaluator():
    """The official ``ogb.linkproppred.Evaluator('ogbl-ddi')`` (Hits@K rule of the leaderboard)."""
    from ogb.linkproppred import Evaluator
    return Evaluator(NAME)


class OgblDDITask:
    """Mini-batch link prediction on ogbl-ddi.

    Args:
        data: the :class:`OgblDDI` split. batch_size: positive edges per step.
        num_neg: negatives per positive, drawn uniformly among node pairs that are not
            training edges (or self-pairs), fresh for every batch.
        seed: seeds the edge order and the negative sampler (part of the task's state).
    """

    def __init__(self, data: OgblDDI, batch_size: int = 65536, num_neg: int = 1, seed: int = 0):
        self.data, self.batch_size, self.num_neg, self.seed = data, batch_size, num_neg, seed
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

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict):
        self.generator.set_state(state["generator"])

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

    def batch_loss(self, model, batch: torch.Tensor, epoch: int) -> torch.Tensor:
        z = model.encode(self.graph)
        pos = self.train_pos[:, batch]
        neg = self.sample_negatives(pos.size(1) * self.num_neg)
        return model.loss(z, pos, neg, epoch=epoch)

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
        model.eval()
        z = model.encode(self.graph)
        return {k: torch.sigmoid(model.decode(z, v.t())) for k, v in pairs_by_name.items()}

    @torch.no_grad()
    def evaluate(self, model, which=("val", "test")) -> dict:
        """``{"val_hits@20", "test_hits@20", ...}`` from the official OGB evaluator."""
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
        return out

"""DrugBank 86-type DDI as a task: type-aware 1:1 negatives, ACC / AUROC / AUPRC / F1.

:class:`vgraph.train.Trainer` iterates :meth:`DrugBankTask.training_batches` and calls
:meth:`~DrugBankTask.batch_loss` per step, then :meth:`~DrugBankTask.evaluate` per epoch.
"""
from __future__ import annotations

import torch

from vgraph.data.drugbank import DDISplit, corrupt, ddi_graph, known_pairs
from vgraph.metrics.classification import binary_metrics, calibration_report
from vgraph.ops import SparseGraph


class DrugBankTask:
    """Mini-batches of training tuples, each with one fresh type-aware negative.

    Args:
        split: a :class:`DDISplit`. x: drug features ``[N, F]`` (row i = drug i).
        batch_size: positive tuples per step. isolate: fraction of drugs whose DDI-graph
            edges are dropped at each step, so that unseen (isolated) drugs are in-distribution.
        seed: seeds the order and the negatives.
    """

    def __init__(self, split: DDISplit, x: torch.Tensor, batch_size: int = 4096,
                 isolate: float = 0.2, seed: int = 0):
        self.split, self.x, self.batch_size, self.isolate, self.seed = split, x, batch_size, isolate, seed
        n = split.num_drugs
        self.pairs = torch.unique(torch.sort(split.train[:, :2], 1).values, dim=0)
        self.graph = ddi_graph(split.train, n)
        self.known = known_pairs(split.train, n)
        self.generator = torch.Generator().manual_seed(seed)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict):
        self.generator.set_state(state["generator"])

    def training_batches(self, epoch: int, start: int = 0):
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        perm = torch.randperm(self.split.train.size(0), generator=g)
        for batch in list(perm.split(self.batch_size))[start:]:
            yield batch

    def _step_graph(self) -> SparseGraph:
        if self.isolate <= 0:
            return self.graph
        keep = torch.rand(self.split.num_drugs, generator=self.generator) >= self.isolate
        p = self.pairs[keep[self.pairs[:, 0]] & keep[self.pairs[:, 1]]].t()
        return SparseGraph(torch.cat([p, p.flip(0)], 1), self.split.num_drugs, _validated=True)

    def batch_loss(self, model, batch: torch.Tensor, epoch: int) -> torch.Tensor:
        z = model.encode(self.x, self._step_graph())
        pos = self.split.train[batch]
        neg = corrupt(pos, self.split.num_drugs, self.known, self.generator,
                      candidates=self.split.train_drugs)
        return model.loss(z, pos, neg, epoch=epoch)

    def training_loss(self, model, epoch: int) -> torch.Tensor:
        return self.batch_loss(model, next(iter(self.training_batches(epoch))), epoch)

    @torch.no_grad()
    def evaluate(self, model, which=None) -> dict:
        """``{"val_auroc", "test_acc", "s1_f1", ...}`` for every evaluation set of the split."""
        model.eval()
        z = model.encode(self.x, self.graph)
        out = {}
        for name, (pos, neg) in self.split.eval.items():
            if which is not None and name not in which:
                continue
            m = binary_metrics(torch.sigmoid(model.score(z, pos)).numpy(),
                               torch.sigmoid(model.score(z, neg)).numpy())
            out.update({f"{name}_{k}": v for k, v in m.items()})
        return out

    @torch.no_grad()
    def eval_logits(self, model) -> dict:
        """``{name: (positive logits [T], negative logits [T])}`` of every evaluation set."""
        model.eval()
        z = model.encode(self.x, self.graph)
        return {name: (model.score(z, pos).numpy(), model.score(z, neg).numpy())
                for name, (pos, neg) in self.split.eval.items()}

    def calibrate(self, model) -> dict:
        """Temperature scaling fitted on validation; ECE of every evaluation set before and
        after (:func:`vgraph.metrics.classification.calibration_report`). Ranking metrics and
        the 0.5-threshold ones are unchanged by a temperature."""
        return calibration_report(self.eval_logits(model), fit_on="val")

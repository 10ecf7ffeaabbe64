"""Few-shot link prediction across many graphs, as tasks for :class:`vgraph.train.Trainer`.

* :class:`MetaLearningTask` — Meta-Graph / CC-Meta-Graph: a batch is ``meta_batch`` meta-train
  graphs; its loss is the mean query loss after the model's inner loop
  (:meth:`~vgraph.models.metagraph.MetaGraph.meta_loss`), so the Trainer's optimiser step is
  MAML's outer step. ``before_epoch`` advances CC-Meta-Graph's augmented Lagrangian once per
  meta-epoch; ``evaluate`` is the mean meta-validation AUC after adaptation.
* :class:`PooledPretrainTask` — the fine-tuning baseline's pre-training: one step per
  meta-train graph on its revealed edges; ``evaluate`` is the mean meta-validation AUC.
* :class:`RevealedEdgesTask` — one graph, one full-batch step on its revealed edges (the
  from-scratch baseline, and fine-tuning a pre-trained model on a test graph).

Every task draws its graph order and negatives from its own generator (checkpointed).
"""
from __future__ import annotations

import statistics

import torch

from vgraph.data.tu_link import link_task, split_graphs, standardize_features
from vgraph.metrics import link_metrics
from vgraph.models.metagraph import score_pairs
from vgraph.tasks.shuffle import EpochOrder


def pair_metrics(z: torch.Tensor, task, which=("test",)) -> dict:
    """``{"<which>_auc", "<which>_ap"}`` of inner-product scores on a graph's pairs."""
    out = {}
    for name in which:
        pos, neg = getattr(task.split, f"{name}_pos"), getattr(task.split, f"{name}_neg")
        m = link_metrics({"pos": torch.sigmoid(score_pairs(z, pos)),
                          "neg": torch.sigmoid(score_pairs(z, neg))}, ks=())
        out.update({f"{name}_{k}": v for k, v in m.items()})
    return out


def few_shot_tasks(graphs: list, fraction: float, seed: int, max_graphs: int | None = None,
                   standardize: bool = False) -> tuple[list, list, list]:
    """Meta-train / meta-val / meta-test :class:`~vgraph.data.tu_link.LinkEpisode` lists of one run:
    at most ``max_graphs`` graphs (a seeded subset), split 60/15/25, each revealing
    ``fraction`` of its training edges; ``standardize`` z-scores the attributes with the
    meta-train graphs' statistics."""
    chosen = graphs
    if max_graphs and len(graphs) > max_graphs:
        pick = torch.randperm(len(graphs), generator=torch.Generator().manual_seed(seed))[:max_graphs].tolist()
        chosen = [graphs[i] for i in sorted(pick)]
    tr, va, te = split_graphs(len(chosen), seed=seed)
    if standardize:
        chosen = standardize_features(chosen, [chosen[i] for i in tr])
    tasks = [link_task(g, fraction, seed * 100003 + g.index) for g in chosen]
    return [tasks[i] for i in tr], [tasks[i] for i in va], [tasks[i] for i in te]


def adapted_metrics(model, task, which=("test",), generator=None) -> dict:
    """Meta-Graph's few-shot score: adapt to the graph's revealed edges, then AUC / AP."""
    return pair_metrics(model.adapted_embedding(task, generator=generator), task, which)


def _mean_val_auc(scores) -> dict:
    return {"val_auc": statistics.fmean(scores)}


class RevealedEdgesTask:
    """Sampled reconstruction (+ KL, + structure terms) on one graph's revealed edges.

    Args:
        task: a :class:`~vgraph.data.tu_link.LinkEpisode`. generator: draws the negatives.
    """

    def __init__(self, task, generator: torch.Generator):
        self.task, self.generator = task, generator

    def training_loss(self, model, epoch: int) -> torch.Tensor:
        t = self.task
        neg = t.split.sample_train_negatives(generator=self.generator)
        return model.task_loss({}, t, t.split.train_pos, neg, model.film(t), epoch) + model.structure_loss()

    def evaluate(self, model) -> dict:
        """No held-out pairs are looked at while adapting: the last step is the result."""
        return {}

    def score(self, model, which=("test",)) -> dict:
        """AUC / AP of the trained model's eval-mode embeddings on the graph's ``which`` pairs."""
        return pair_metrics(model.embed(self.task), self.task, which)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict):
        self.generator.set_state(state["generator"])


class PooledPretrainTask:
    """One optimiser step per meta-train graph (in a random order), selected on meta-val AUC."""

    def __init__(self, trains: list, vals: list, generator: torch.Generator):
        self.trains, self.vals = trains, vals
        self.order = EpochOrder(generator)

    def training_batches(self, epoch: int, start: int = 0):
        order = self.order.draw(len(self.trains), start).tolist()
        return (self.trains[i] for i in order[start:])

    def batch_loss(self, model, t, epoch: int) -> torch.Tensor:
        neg = t.split.sample_train_negatives(generator=self.order.generator)
        return model.task_loss({}, t, t.split.train_pos, neg, None, epoch)

    def evaluate(self, model) -> dict:
        return _mean_val_auc(pair_metrics(model.embed(t), t, ("val",))["val_auc"] for t in self.vals)

    def state_dict(self) -> dict:
        return self.order.state_dict()

    def load_state_dict(self, state: dict):
        self.order.load_state_dict(state)


class MetaLearningTask:
    """MAML over graphs: batches of ``meta_batch`` meta-train graphs, meta-val AUC to select.

    Args:
        trains, vals: meta-train / meta-val :class:`~vgraph.data.tu_link.LinkEpisode` lists.
        generator: graph order and the inner loops' negatives. eval_seed: seeds a fresh
            generator for each meta-validation graph, so the score of an epoch depends on
            the weights only.
    """

    def __init__(self, trains: list, vals: list, meta_batch: int, generator: torch.Generator, eval_seed: int = 0):
        self.trains, self.vals, self.meta_batch, self.eval_seed = trains, vals, meta_batch, eval_seed
        self.order = EpochOrder(generator)
        self.updated_at = 0  # the epoch whose start last advanced the Lagrangian

    def before_epoch(self, model, epoch: int):
        """One augmented-Lagrangian update per finished meta-epoch (CC-Meta-Graph); a run
        resumed mid-epoch already holds that epoch's update in its weights."""
        if epoch > 0 and model.causal is not None and self.updated_at != epoch:
            model.causal.update_lagrangian()
            self.updated_at = epoch

    def training_batches(self, epoch: int, start: int = 0):
        order = self.order.draw(len(self.trains), start).tolist()
        batches = [[self.trains[i] for i in order[s:s + self.meta_batch]]
                   for s in range(0, len(order), self.meta_batch)]
        return iter(batches[start:])

    def batch_loss(self, model, batch: list, epoch: int) -> torch.Tensor:
        gen = self.order.generator
        return sum(model.meta_loss(t, generator=gen, epoch=epoch) for t in batch) / len(batch)

    def evaluate(self, model) -> dict:
        gen = torch.Generator
        return _mean_val_auc(adapted_metrics(model, t, ("val",), gen().manual_seed(self.eval_seed))["val_auc"]
                             for t in self.vals)

    def state_dict(self) -> dict:
        return {**self.order.state_dict(), "updated_at": self.updated_at}

    def load_state_dict(self, state: dict):
        self.order.load_state_dict(state)
        self.updated_at = int(state["updated_at"])

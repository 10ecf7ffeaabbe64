"""IsoC-VGAE and its GAE/VGAE baselines without labels, then probes on frozen embeddings.

Three protocols (``docs/results.md`` §2), each a task for :class:`vgraph.train.Trainer`:

* :class:`FullGraphEmbeddingTask` — node and link level: one full-batch step per epoch on
  one graph; :func:`node_probes` / :func:`link_probes` read the embeddings afterwards.
* :class:`GraphBatchTask` — graph level: mini-batches of whole graphs in a seeded random
  order; :meth:`GraphBatchTask.embeddings` + :func:`graph_probes`.

The loss of a step is IsoC-VGAE's Inverse-GNN loss, or for GAE/VGAE Kipf's dense loss with
the same targets as :class:`~vgraph.tasks.linkpred.LinkPredTask` (:func:`kipf_dense_targets`).
Model selection is the authors' rule for IsoC-VGAE, the lowest training loss
(``Trainer(monitor="loss", mode="min")``), and none for the baselines (the last epoch).
"""
from __future__ import annotations

import torch

from vgraph.models.isoc_vgae import IsoCVGAE
from vgraph.ops import SparseGraph, SparseMatrix
from vgraph.tasks import probes
from vgraph.tasks.linkpred import kipf_dense_targets
from vgraph.tasks.shuffle import EpochOrder


def embedding_loss(model, x, graph: SparseGraph, edge_index: torch.Tensor, epoch: int) -> torch.Tensor:
    """The unsupervised loss of one step: Inverse-GNN (IsoC-VGAE) or dense GAE/VGAE."""
    if isinstance(model, IsoCVGAE):
        return model.loss(x, graph).loss
    pos, pos_weight, norm = kipf_dense_targets(edge_index, graph.num_nodes)
    z = model.encode(x, graph)
    return model.loss(z, pos_pairs=pos, dense=True, pos_weight=pos_weight, norm=norm, epoch=epoch)


@torch.no_grad()
def embed(model, x, graph: SparseGraph) -> torch.Tensor:
    """Eval-mode node embeddings on the CPU: ``h^L`` (IsoC-VGAE), ``z`` (GAE) or ``mu`` (VGAE)."""
    model.eval()
    z = model.embed(x, graph) if isinstance(model, IsoCVGAE) else model.encode(x, graph)
    return z.cpu()


def _to(x, device):
    if isinstance(x, SparseMatrix):
        return SparseMatrix(x.indptr.to(device), x.indices.to(device), x.values.to(device), *x.shape)
    return x.to(device)


class FullGraphEmbeddingTask:
    """One graph, one full-batch step per epoch (node and link protocols).

    Args:
        x: node features (dense or :class:`~vgraph.ops.SparseMatrix`). edge_index: the
            message-passing edges, which are also the GAE/VGAE reconstruction targets.
        device: where the features and the graph live (the model's device).
    """

    def __init__(self, x, edge_index: torch.Tensor, num_nodes: int, device="cpu"):
        self.x, self.edge_index = _to(x, device), edge_index.to(device)
        self.graph = SparseGraph(edge_index, num_nodes).to(device)

    def training_loss(self, model, epoch: int) -> torch.Tensor:
        return embedding_loss(model, self.x, self.graph, self.edge_index, epoch)

    def evaluate(self, model) -> dict:
        """Nothing to validate without labels: selection is on the training loss."""
        return {}

    def embed(self, model) -> torch.Tensor:
        return embed(model, self.x, self.graph)


class GraphBatchTask:
    """Many small graphs (a :class:`~vgraph.data.tu.TUGraphs`), ``batch_size`` per step.

    The order is drawn from the task's own generator each epoch. It matters beyond training:
    PairNorm centres over the whole batch, so a batch of *consecutive* graphs leaks the label
    into the embeddings of datasets stored sorted by class (PROTEINS, ENZYMES); embeddings are
    therefore also computed over randomly composed batches (:meth:`embeddings`). The epoch's
    loss (``evaluate()["loss"]``) is the mean over graphs, each batch weighted by its size.
    """

    def __init__(self, graphs, batch_size: int = 64, seed: int = 0, device="cpu"):
        self.graphs, self.batch_size, self.seed = graphs, batch_size, seed
        self.device = torch.device(device)
        self.order = EpochOrder(torch.Generator().manual_seed(seed))
        self._total, self._count = 0.0, 0

    def batches(self, order: torch.Tensor, training: bool = True):
        """``(graph ids, x, edge_index, batch vector)`` of consecutive slices of ``order``."""
        for start in range(0, len(self.graphs), self.batch_size):
            idx = order[start:start + self.batch_size]
            if idx.numel() < 2 and training:
                continue  # BatchNorm needs two rows; a singleton batch is skipped in training
            x, ei, batch, _ = self.graphs.subset(idx)
            yield idx, x.to(self.device), ei.to(self.device), batch.to(self.device)

    def training_batches(self, epoch: int, start: int = 0):
        if not start:
            self._total, self._count = 0.0, 0
        for k, item in enumerate(self.batches(self.order.draw(len(self.graphs), start))):
            if k >= start:
                yield item

    def batch_loss(self, model, batch, epoch: int) -> torch.Tensor:
        idx, x, ei, _ = batch
        loss = embedding_loss(model, x, SparseGraph(ei, x.size(0), _validated=True), ei, epoch)
        self._total, self._count = self._total + float(loss.detach()) * idx.numel(), self._count + idx.numel()
        return loss

    def evaluate(self, model) -> dict:
        """The epoch's training loss per graph (the lowest-loss rule's score)."""
        return {"loss": self._total / max(self._count, 1)}

    def state_dict(self) -> dict:
        return {**self.order.state_dict(), "partial": [self._total, self._count]}

    def load_state_dict(self, state: dict):
        self.order.load_state_dict(state)
        self._total, self._count = float(state["partial"][0]), int(state["partial"][1])

    @torch.no_grad()
    def embeddings(self, model, width: int) -> torch.Tensor:
        """Sum-pooled eval-mode embeddings ``[G, width]`` over random batches (see above)."""
        out = torch.zeros(len(self.graphs), width)
        order = torch.randperm(len(self.graphs), generator=torch.Generator().manual_seed(self.seed + 7919))
        for idx, x, ei, batch in self.batches(order, training=False):
            z = embed(model, x, SparseGraph(ei, x.size(0), _validated=True))
            out[idx] = probes.sum_pool(z, batch.cpu(), idx.numel())
        return out


def node_probes(z: torch.Tensor, data, seed: int, **probe_kw) -> dict:
    """LogReg and MLP probes on the public split and the paper's split."""
    out = {}
    splits = {"public": (data.train_mask, data.val_mask, data.test_mask),
              "paper": probes.paper_node_split(data)}
    for name, (tr, va, te) in splits.items():
        lr = probes.node_logreg_probe(z, data.y, tr, va, te, seed=seed)
        mlp = probes.node_mlp_probe(z, data.y, tr, va, te, seed=seed, **probe_kw)
        out.update({f"{name}_logreg_test_acc": lr["test_acc"], f"{name}_logreg_val_acc": lr["val_acc"],
                    f"{name}_mlp_test_acc": mlp["test_acc"], f"{name}_mlp_val_acc": mlp["val_acc"]})
    return out


def link_probes(z: torch.Tensor, split, seed: int, **probe_kw) -> dict:
    """Inner-product and Hadamard-MLP probes on the split's validation and test pairs."""
    ip = probes.link_inner_product_probe(z, split)
    mlp = probes.link_mlp_probe(z, split, seed=seed, **probe_kw)
    out = {f"ip_{k}": v for k, v in ip.items()}
    out.update({f"mlp_{k}": v for k, v in mlp.items() if k != "best_epoch"})
    return out


def graph_probes(g: torch.Tensor, y: torch.Tensor, seed: int, folds: int = 10, cv: bool = True,
                 **probe_kw) -> dict:
    """The MLP probe on the single 50/20/30 split and (``cv``) in stratified k-fold CV."""
    tr, va, te = probes.random_graph_split(len(y), 0.2, 0.3, seed)
    single = probes.graph_mlp_probe(g, y, tr, va, te, seed=seed, **probe_kw)
    out = {"split_test_acc": single["test_acc"], "split_val_acc": single["val_acc"]}
    if cv:
        res = probes.graph_cv_probe(g, y, folds=folds, seed=seed, **probe_kw)
        out.update({"cv_test_acc": res["test_acc"], "cv_fold_std": res["test_acc_fold_std"]})
    return out

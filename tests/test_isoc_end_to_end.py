"""IsoC-VGAE end to end in seconds: training lowers the loss, probes read separable
embeddings, the TU loader matches PyG, `vgraph isoc` writes summary.json, the baselines
train with Kipf's dense loss, and the lowest-loss rule runs under the one Trainer."""
import json
import os
import tempfile
from pathlib import Path

import pytest
import torch

from conftest import dataset_path
from vgraph.data.split import random_link_split
from vgraph.models.isoc_vgae import IsoCVGAE
from vgraph.ops import SparseGraph
from vgraph.tasks import probes



def two_community_graph(n=40, seed=0):
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    u, v = torch.triu_indices(n, n, 1)
    same = y[u] == y[v]
    p = torch.where(same, torch.tensor(0.3), torch.tensor(0.02))
    keep = torch.rand(u.numel(), generator=gen) < p
    ei = torch.stack([u[keep], v[keep]])
    ei = torch.cat([ei, ei.flip(0)], 1)
    x = torch.nn.functional.one_hot(y, 2).float() + 0.5 * torch.randn(n, 2, generator=gen)
    return x, ei, y


def test_tiny_training_lowers_loss_and_embeds():
    torch.manual_seed(0)
    x, ei, y = two_community_graph()
    g = SparseGraph(ei, x.size(0))
    model = IsoCVGAE.build(2, dims=(16, 8), conv="gcn")
    opt = torch.optim.Adam(model.param_groups(1e-2, 1e-2))
    first = None
    for _ in range(30):
        opt.zero_grad()
        out = model.loss(x, g)
        out.loss.backward()
        opt.step()
        first = first if first is not None else out.loss.item()
    assert out.loss.item() < first
    z = model.embed(x, g)
    assert z.shape == (40, 8) and not z.requires_grad and model.training
    assert model.embed(x, g, layers="concat").shape == (40, 24)
    gin = IsoCVGAE.build(2, dims=(8, 8), conv="gin", norm="pairnorm", dropout=0.5)
    assert torch.isfinite(gin.loss(x, g).loss)


def test_probes_on_separable_embeddings():
    torch.manual_seed(0)
    x, ei, y = two_community_graph(60)
    z = torch.nn.functional.one_hot(y, 2).float() * 3 + 0.1 * torch.randn(60, 2)
    idx = torch.randperm(60)
    tr, va, te = idx[:30], idx[30:40], idx[40:]
    assert probes.node_logreg_probe(z, y, tr, va, te)["test_acc"] == 1.0
    assert probes.node_mlp_probe(z, y, tr, va, te, epochs=30, batch_size=16, hidden=16,
                                num_hidden=1, dropout=0.0, patience=None)["test_acc"] >= 0.9
    split = random_link_split(ei, 60, 0.1, 0.1, seed=0)
    zl = torch.nn.functional.one_hot(y, 2).float() * 2 - 1
    ip = probes.link_inner_product_probe(zl, split)
    assert ip["test_auc"] > 0.8
    mlp = probes.link_mlp_probe(zl, split, epochs=5, hidden=8, num_hidden=1)
    assert 0.0 <= mlp["test_auc"] <= 1.0
    batch = torch.arange(60) // 3  # 20 "graphs" of 3 nodes
    gy = y[::3]
    pooled = probes.sum_pool(z, batch, 20)
    assert torch.allclose(pooled[0], z[:3].sum(0))
    cv = probes.graph_cv_probe(pooled, gy, folds=2, epochs=10, batch_size=8, hidden=8, num_hidden=1)
    assert len(cv["fold_accs"]) == 2
    tr, va, te = probes.random_graph_split(20, seed=0)
    assert (tr.numel(), va.numel(), te.numel()) == (10, 4, 6)


def test_tu_loader_matches_pyg():
    raw = dataset_path("TUDataset", "MUTAG", "raw")
    from torch_geometric.datasets import TUDataset
    from vgraph.data.tu import load_tu
    ours = load_tu("mutag", raw.parent.parent.parent)
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(Path(tmp) / "MUTAG")
        os.symlink(raw, Path(tmp) / "MUTAG" / "raw")
        ref = TUDataset(tmp, "MUTAG")
        assert len(ref) == ours.num_graphs == 188
        for i in (0, 17, 187):
            x, ei, batch, y = ours.subset([i])
            assert torch.equal(x, ref[i].x) and torch.equal(ei, ref[i].edge_index)
            assert int(y) == int(ref[i].y)
    x, ei, batch, y = ours.subset([5, 2])
    assert batch.tolist() == sorted(batch.tolist()) and int(ei.max()) < x.size(0)


def test_cli_end_to_end(tmp_path):
    dataset_path("TUDataset", "MUTAG", "raw")
    from vgraph.cli.isoc import main
    out = tmp_path / "run"
    common = ["--task", "graph", "--dataset", "MUTAG", "--runs", "1", "--epochs", "2", "--probe-epochs", "2",
              "--folds", "2", "--dims", "8,8", "--out", str(out), "--no-progress", "--threads", "1"]
    summary = main(common + ["--model", "isoc_vgae"])
    assert {"split_test_acc", "cv_test_acc"} <= set(summary["metrics"])
    assert json.loads((out / "summary.json").read_text())["model"] == "isoc_vgae"
    assert (out / "run0" / "last.pt").is_file()  # the one Trainer checkpoints every run
    summary = main(common + ["--model", "vgae", "--overwrite"])
    assert 0.0 <= summary["metrics"]["split_test_acc"]["mean"] <= 1.0


@pytest.mark.parametrize("flags, message", [
    (["--epochs", "0"], "--epochs: must be >= 1"),
    (["--lr", "-1"], "--lr: must be > 0"),
    (["--dims", "16,0"], "widths must be >= 1"),
    (["--patience", "-2"], "--patience: must be >= -1"),
    (["--enc-dropout", "1.5"], "--enc-dropout: must be < 1"),
    (["--batch-size", "1"], "--batch-size: must be >= 2"),
    (["--runs", "0"], "--runs: must be >= 1"),
    (["--task", "graph", "--dataset", "Cora"], "needs a TU"),
])
def test_bad_flags_are_one_line_exit_2(flags, message, capsys):
    from vgraph.cli.isoc import main
    argv = flags if "--task" in flags else ["--task", "node"] + flags
    with pytest.raises(SystemExit) as exc:
        main(argv + ["--out", "/nonexistent/never-written"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and message in err and len(err.splitlines()) == 1


def test_graph_embedding_batches_are_random_and_cover_every_graph():
    """PairNorm centres over a batch: embeddings computed over consecutive graphs of a
    class-sorted dataset (PROTEINS, ENZYMES) would carry the label. Embedding batches are
    drawn in a seeded random order and cover every graph once (a singleton batch included)."""
    from vgraph.tasks.isoc import GraphBatchTask

    class Stub:
        def __len__(self):
            return 129

        def subset(self, idx):
            return torch.zeros(len(idx), 1), torch.empty(2, 0, dtype=torch.long), torch.arange(len(idx)), None

    task = GraphBatchTask(Stub(), 64, seed=0)
    order = torch.randperm(129, generator=torch.Generator().manual_seed(0))
    batches = [idx for idx, *_ in task.batches(order, training=False)]
    seen = torch.cat(batches)
    assert sorted(seen.tolist()) == list(range(129)) and [b.numel() for b in batches] == [64, 64, 1]
    assert not torch.equal(seen, torch.arange(129))
    train = [idx for idx, *_ in task.training_batches(0)]
    assert [b.numel() for b in train] == [64, 64]  # training skips the singleton (BatchNorm)
    assert not torch.equal(torch.cat(train), torch.cat([idx for idx, *_ in task.training_batches(1)]))


def test_baseline_dense_loss_is_the_link_tasks_loss():
    """The IsoC baselines' GAE/VGAE loss is Kipf's, exactly as LinkPredTask computes it: labels
    A + I, pos_weight and norm from A alone (the defect was counting the N self-loops)."""
    from vgraph.data.split import random_link_split
    from vgraph.models.autoencoder import dense_recon_loss
    from vgraph.models.factory import build_autoencoder
    from vgraph.tasks import LinkPredTask
    from vgraph.tasks.isoc import FullGraphEmbeddingTask, kipf_dense_targets
    x, ei, _ = two_community_graph(30)
    split = random_link_split(ei, 30, 0.1, 0.1, seed=0)
    n, e = 30, split.mp_edge_index.size(1)
    pos, pos_weight, norm = kipf_dense_targets(split.mp_edge_index, n)
    assert pos.size(1) == e + n  # the diagonal is labelled positive ...
    assert pos_weight == (n * n - e) / e and norm == n * n / ((n * n - e) * 2)  # ... but not counted
    for kind in ("gae", "vgae"):
        torch.manual_seed(0)
        model = build_autoencoder(kind, 2, hidden=8, latent=4)
        link = LinkPredTask(split, x, loss="dense")
        ours = FullGraphEmbeddingTask(x, split.mp_edge_index, n)
        model.eval()  # VGAE: z = mu, so both calls see the same embeddings
        a, b = link.training_loss(model, 0), ours.training_loss(model, 0)
        assert torch.equal(a, b)
        z = model.encode(x, ours.graph)
        target = torch.zeros(n, n)
        target[pos[0], pos[1]] = 1.0
        reference = dense_recon_loss(z @ z.t(), target, pos_weight, norm) + model.kl_loss(0)
        assert torch.allclose(b, reference, atol=1e-6)
        old_weight = (n * n - (e + n)) / (e + n)  # what train_isoc.py used to count
        assert not torch.allclose(b, dense_recon_loss(z @ z.t(), target, old_weight, norm) + model.kl_loss(0))


def test_lowest_training_loss_rule_under_the_trainer():
    """IsoC's rule as Trainer(monitor="loss", mode="min"): the weights after the step of the
    lowest-loss epoch are kept, and training stops at the (patience + 1)-th epoch without a
    lower loss (the CLI passes patience + 1); monitor=None keeps the last weights."""
    from vgraph.train import Trainer
    losses = [5.0, 3.0, 4.0, 2.0, 2.5, 2.2, 2.1, 9.0, 1.0]

    class Scripted:
        def training_loss(self, model, epoch):
            return model.w.sum() * 0 + losses[epoch]

        def evaluate(self, model):
            return {}

    def run(**kw):
        model = torch.nn.Module()
        model.w = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        steps = []

        class Counting(Scripted):
            def after_step(self, model, epoch):
                model.w.data.fill_(epoch + 1)  # the weights after epoch e's step are e + 1
                steps.append(epoch)
        result = Trainer(model, Counting(), opt, epochs=len(losses), progress=False, **kw).fit()
        return float(model.w.detach()), result, steps

    w, result, steps = run(monitor="loss", mode="min", patience=2 + 1)
    assert result["best_epoch"] == 3 and w == 4.0 and steps == [0, 1, 2, 3, 4, 5, 6]
    w, result, steps = run(monitor=None)
    assert w == len(losses) and result["best_epoch"] == -1 and len(steps) == len(losses)

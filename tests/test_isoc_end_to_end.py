"""IsoC-VGAE end to end in seconds: training lowers the loss, probes read separable
embeddings, the TU loader matches PyG, and the script writes summary.json."""
import json
import os
import sys
import tempfile
from pathlib import Path

import torch

from conftest import dataset_path
from vgraph.data.split import random_link_split
from vgraph.models.isoc_vgae import IsoCVGAE
from vgraph.ops import SparseGraph
from vgraph.tasks import probes

ROOT = Path(__file__).resolve().parent.parent


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


def test_script_end_to_end(tmp_path):
    dataset_path("TUDataset", "MUTAG", "raw")
    sys.path.insert(0, str(ROOT / "scripts"))
    import train_isoc
    out = tmp_path / "run"
    common = ["--task", "graph", "--dataset", "MUTAG", "--runs", "1", "--epochs", "2",
              "--probe-epochs", "2", "--folds", "2", "--dims", "8,8", "--out", str(out), "--no-progress"]
    summary = train_isoc.main(common + ["--model", "isoc_vgae"])
    assert {"split_test_acc", "cv_test_acc"} <= set(summary["metrics"])
    assert json.loads((out / "summary.json").read_text())["model"] == "isoc_vgae"
    summary = train_isoc.main(common + ["--model", "vgae"])
    assert 0.0 <= summary["metrics"]["split_test_acc"]["mean"] <= 1.0


def test_graph_embedding_batches_are_random_and_cover_every_graph():
    """PairNorm centres over a batch: embeddings computed over consecutive graphs of a
    class-sorted dataset (PROTEINS, ENZYMES) would carry the label. Embedding batches are
    drawn in a seeded random order and cover every graph once (a singleton batch included)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from train_isoc import _graph_batches

    class Stub:
        def __len__(self):
            return 129

        def subset(self, idx):
            return torch.zeros(len(idx), 1), torch.empty(2, 0, dtype=torch.long), torch.arange(len(idx)), None

    gen = torch.Generator().manual_seed(0)
    batches = [idx for idx, *_ in _graph_batches(Stub(), 64, gen, training=False)]
    seen = torch.cat(batches)
    assert sorted(seen.tolist()) == list(range(129)) and [b.numel() for b in batches] == [64, 64, 1]
    assert not torch.equal(seen, torch.arange(129))
    train = [idx for idx, *_ in _graph_batches(Stub(), 64, torch.Generator().manual_seed(0))]
    assert [b.numel() for b in train] == [64, 64]  # training skips the singleton (BatchNorm)

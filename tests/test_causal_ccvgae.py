"""CCVGAE on a tiny graph: shapes, loss, gradients to A, the schedule, the KL knobs."""
from __future__ import annotations

import pytest
import torch

from vgraph.data import random_link_split
from vgraph.data.tu_link import reveal_edges
from vgraph.models.ccvgae import CCVGAE
from vgraph.nn import KLConfig
from vgraph.ops import SparseGraph
from vgraph.tasks import LinkPredTask


def _ring(n=20):
    src = torch.arange(n)
    ring = torch.stack([src, (src + 1) % n])
    chords = torch.stack([src[::2], (src[::2] + 5) % n])
    e = torch.cat([ring, chords], 1)
    return torch.cat([e, e.flip(0)], 1)


def test_encode_loss_and_structure_gradients():
    torch.manual_seed(0)
    n = 20
    x, edge_index = torch.eye(n), _ring(n)
    model = CCVGAE.build(n, hidden=8, num_concepts=3, concept_dim=2, kl=KLConfig(beta=0.5))
    graph = SparseGraph(edge_index, n)
    z = model.encode(x, graph)
    assert z.shape == (n, 6)
    neg = torch.randint(0, n, (2, 30))
    loss = model.loss(z, pos_pairs=edge_index, neg_pairs=neg, epoch=0)
    loss.backward()
    assert torch.isfinite(loss)
    assert model.causal.weight.grad is not None and model.causal.weight.grad.abs().sum() > 0
    assert model.structure().shape == (3, 3)
    model.eval()  # eval: z = causal(mu), deterministic
    assert torch.equal(model.encode(x, graph), model.encode(x, graph))


def test_lagrangian_runs_once_per_due_epoch():
    model = CCVGAE.build(4, hidden=4, num_concepts=2, concept_dim=2, lagrangian_every=5,
                         init_scale=0.5)
    model.train()
    model.structure_loss(epoch=5)
    alpha = float(model.causal.alpha)
    model.structure_loss(epoch=5)  # same epoch again: no second update
    assert float(model.causal.alpha) == alpha
    model.structure_loss(epoch=7)
    assert float(model.causal.alpha) == alpha


def test_trains_with_the_linkpred_task_on_revealed_edges():
    torch.manual_seed(0)
    n = 40
    edge_index = _ring(n)
    split = reveal_edges(random_link_split(edge_index, n, 0.1, 0.2, seed=0), 0.5, seed=0)
    assert split.train_pos.size(1) == -(-random_link_split(edge_index, n, 0.1, 0.2, seed=0).train_pos.size(1) // 2)
    task = LinkPredTask(split, torch.eye(n), loss="sampled", seed=0)
    model = CCVGAE.build(n, hidden=8, num_concepts=2, concept_dim=4)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for epoch in range(10):
        opt.zero_grad()
        loss = task.training_loss(model, epoch)
        loss.backward()
        opt.step()
    metrics = task.evaluate(model)
    assert 0.0 <= metrics["test_auc"] <= 1.0


def test_cli_end_to_end_with_structure_report(tmp_path):
    """`vgraph ccvgae` on Cora 10 %, 2 epochs: summary.json holds each run's A, h(A), DAG
    flag, and --plot-structure draws it."""
    import json
    from conftest import dataset_path
    from vgraph.cli.ccvgae import main
    dataset_path("planetoid", "Cora", "raw")
    out = tmp_path / "run"
    summary = main(["--dataset", "Cora", "--edge-fraction", "0.1", "--epochs", "2", "--runs", "1", "--threads", "1",
                    "--no-progress", "--plot-structure", "--out", str(out)])
    assert 0.0 <= summary["metrics"]["test_auc"]["mean"] <= 1.0
    report = json.loads((out / "summary.json").read_text())["per_run"][0]["extra"]["structure"]
    assert len(report["A"]) == 4 and report["h"] >= 0.0 and isinstance(report["dag"], bool)
    assert (out / "structure_run0.png").is_file()



@pytest.mark.parametrize("flags, message", [
    (["--edge-fraction", "0"], "--edge-fraction: must be > 0"),
    (["--edge-fraction", "1.5"], "--edge-fraction: must be <= 1"),
    (["--epochs", "0"], "--epochs: must be >= 1"),
    (["--hidden", "0"], "--hidden: must be >= 1"),
    (["--dropout", "1.5"], "--dropout: must be < 1"),
    (["--val-ratio", "0.6", "--test-ratio", "0.5"], "must be < 1"),
    (["--test-ratio", "0"], "--test-ratio: must be > 0"),
    (["--beta", "-1"], "--beta: must be >= 0"),
])
def test_bad_flags_are_one_line_exit_2(flags, message, capsys):
    from vgraph.cli.ccvgae import main
    with pytest.raises(SystemExit) as exc:
        main(flags + ["--out", "/nonexistent/never-written"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and message in err and len(err.splitlines()) == 1

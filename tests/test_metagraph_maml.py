"""Meta-Graph / CC-Meta-Graph on toy graphs: a meta-step changes the initialisation and
lowers the query loss; first- vs second-order; FiLM; the few-shot split helpers."""
from __future__ import annotations

import copy

import pytest
import torch

from vgraph.data.split import pair_keys
from vgraph.data.tu_link import LinkGraph, link_task, reveal_edges, split_graphs
from vgraph.models.metagraph import CCMetaGraph, MetaGraph


def _toy_graph(seed: int, n: int = 30) -> LinkGraph:
    gen = torch.Generator().manual_seed(seed)
    # two dense communities joined by a few edges: learnable from 2-d features
    half = n // 2
    pairs = torch.randint(0, half, (2, 4 * n), generator=gen)
    pairs = torch.cat([pairs, pairs + half, torch.tensor([[0, 1], [half, half + 1]])], 1)
    pairs = pairs[:, pairs[0] != pairs[1]]
    keys = torch.unique(pair_keys(pairs, n))
    e = torch.stack([keys // n, keys % n])
    x = torch.cat([torch.ones(half, 1) @ torch.tensor([[1.0, 0.0]]), torch.ones(n - half, 1) @ torch.tensor([[0.0, 1.0]])])
    x = x + 0.1 * torch.randn(n, 2, generator=gen)
    return LinkGraph(x, torch.cat([e, e.flip(0)], 1), seed)


def _query_loss(model, task, seed=0):
    return model.meta_loss(task, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("cls", [MetaGraph, CCMetaGraph])
def test_one_meta_step_changes_init_and_reduces_query_loss(order, cls):
    torch.manual_seed(0)
    task = link_task(_toy_graph(0), fraction=0.5, seed=0, val_ratio=0.2, test_ratio=0.2)
    kwargs = {"num_concepts": 2} if cls is CCMetaGraph else {}
    model = cls(2, hidden=8, latent=4, inner_steps=2, inner_lr=0.1, order=order, **kwargs)
    model.eval()  # z = mu: the query loss is deterministic given the negatives' seed
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    q0 = _query_loss(model, task)
    # adapting leaves the module's own parameters untouched
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    opt.zero_grad()
    q0.backward()
    opt.step()
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert any(n.startswith("encoder.") for n in changed)
    assert any(n.startswith("signature.") for n in changed)
    if cls is CCMetaGraph:
        assert "causal.weight" in changed
    q1 = _query_loss(model, task)
    assert q1.item() < q0.item()


def test_second_order_gradient_differs_from_first_order():
    torch.manual_seed(0)
    task = link_task(_toy_graph(1), fraction=0.5, seed=1, val_ratio=0.2, test_ratio=0.2)
    grads = {}
    for order in (1, 2):
        torch.manual_seed(0)
        model = MetaGraph(2, hidden=8, latent=4, inner_steps=2, inner_lr=0.5, order=order).eval()
        _query_loss(model, task).backward()
        grads[order] = model.encoder.shared.weight.grad.clone()
    assert not torch.allclose(grads[1], grads[2])


def test_signature_conditions_the_encoder():
    torch.manual_seed(0)
    tasks = [link_task(_toy_graph(s), 0.5, s, 0.2, 0.2) for s in (2, 3)]
    model = MetaGraph(2, hidden=8, latent=4).eval()
    film = model.film(tasks[0])
    assert [tuple(g.shape) for g, _ in film] == [(8,), (4,)]
    z_plain = model.embed(tasks[0])
    z_film = model.embed(tasks[0], film=film)
    assert not torch.allclose(z_plain, z_film)


def test_evaluate_and_baseline_training_give_metrics():
    torch.manual_seed(0)
    task = link_task(_toy_graph(4), 0.5, 4, 0.2, 0.2)
    model = MetaGraph(2, hidden=8, latent=4, signature=False)
    from vgraph.tasks.metagraph import adapted_metrics
    m = adapted_metrics(model, task, ("val", "test"), torch.Generator().manual_seed(0))
    assert set(m) == {"val_auc", "val_ap", "test_auc", "test_ap"}
    from vgraph.tasks.metagraph import RevealedEdgesTask
    from vgraph.train import Trainer
    trained = copy.deepcopy(model)
    fit = RevealedEdgesTask(task, torch.Generator().manual_seed(0))
    result = Trainer(trained, fit, torch.optim.Adam(trained.parameters(), lr=0.01), epochs=5, monitor=None,
                     progress=False).fit()
    assert len(result["history"]) == 5 and result["best_epoch"] == -1
    assert not torch.equal(trained.encoder.shared.weight, model.encoder.shared.weight)
    assert set(fit.score(trained, ("val", "test"))) == {"val_auc", "val_ap", "test_auc", "test_ap"}


@pytest.mark.parametrize("cls", [MetaGraph, CCMetaGraph])
def test_meta_learning_task_runs_under_the_trainer_and_resumes_exactly(cls, tmp_path):
    """MAML as a task: the Trainer's step is the outer step (clipped), meta-val AUC selects
    the epoch, CC-Meta-Graph's Lagrangian advances once per meta-epoch, and a run stopped
    after epoch 0 and resumed ends with the same weights as an uninterrupted one."""
    from vgraph.tasks.metagraph import MetaLearningTask
    from vgraph.train import Trainer
    tasks = [link_task(_toy_graph(s), 0.5, s, 0.2, 0.2) for s in range(5)]
    kwargs = {"num_concepts": 2} if cls is CCMetaGraph else {}

    def fit(out, stop_after=None, resume=False):
        torch.manual_seed(0)
        model = cls(2, hidden=8, latent=4, inner_steps=1, inner_lr=0.1, **kwargs)
        task = MetaLearningTask(tasks[:3], tasks[3:], meta_batch=2, generator=torch.Generator().manual_seed(0))
        trainer = Trainer(model, task, torch.optim.Adam(model.parameters(), lr=0.01), epochs=3, monitor="val_auc",
                          grad_clip=1.0, out_dir=out, stop_after=stop_after, resume=resume, progress=False)
        return model, trainer.fit()

    model, result = fit(tmp_path / "straight")
    assert [h["epoch"] for h in result["history"]] == [0, 1, 2]
    assert all(0.0 <= h["val_auc"] <= 1.0 for h in result["history"])
    assert result["best_metrics"]["val_auc"] == max(h["val_auc"] for h in result["history"])
    if cls is CCMetaGraph:
        assert float(model.causal.alpha) != 0.0 or float(model.causal.rho) != 1.0  # two updates ran
    fit(tmp_path / "cut", stop_after=0)
    resumed, again = fit(tmp_path / "cut", resume=True)
    assert [h["val_auc"] for h in again["history"]] == [h["val_auc"] for h in result["history"]]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), resumed.state_dict().values()))


def test_reveal_edges_and_graph_split():
    g = _toy_graph(5)
    full = link_task(g, 1.0, 0)
    part = link_task(g, 0.1, 0)
    assert part.split.train_pos.size(1) == -(-full.split.train_pos.size(1) // 10)
    assert torch.equal(part.split.test_pos, full.split.test_pos)
    # hidden training edges are never drawn as negatives
    neg = part.split.sample_train_negatives(200, generator=torch.Generator().manual_seed(0))
    hidden = pair_keys(full.split.train_pos, g.num_nodes)
    assert not torch.isin(pair_keys(neg, g.num_nodes), hidden).any()
    with pytest.raises(ValueError):
        reveal_edges(full.split, 0.0)
    tr, va, te = split_graphs(41, seed=0)
    assert len(tr) + len(va) + len(te) == 41 and not set(tr) & set(va) | set(te) & set(tr)


def test_standardize_features_fits_on_meta_train_graphs_and_keeps_one_hot_columns():
    from vgraph.data.tu_link import standardize_features
    onehot = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    fit = [LinkGraph(torch.cat([onehot, torch.tensor([[100.0], [300.0], [500.0]])], 1), torch.empty(2, 0, dtype=torch.long), 0)]
    held = LinkGraph(torch.tensor([[0.0, 1.0, 700.0]]), torch.empty(2, 0, dtype=torch.long), 1)
    out = standardize_features(fit + [held], fit_on=fit)
    assert torch.equal(out[0].x[:, :2], onehot)  # one-hot label columns untouched
    assert torch.allclose(out[0].x[:, 2], torch.tensor([-1.0, 0.0, 1.0]))  # mean 300, std 200
    assert out[1].x.tolist() == [[0.0, 1.0, 2.0]]  # held-out graph scaled with meta-train stats
    assert out[1].index == 1 and fit[0].x[0, 2] == 100.0  # inputs not modified


def test_diverged_embeddings_give_a_clear_error():
    from vgraph.errors import TrainingDivergedError
    from vgraph.tasks.metagraph import pair_metrics
    task = link_task(_toy_graph(0), fraction=0.5, seed=0)
    z = torch.full((task.num_nodes, 4), float("nan"))
    with pytest.raises(TrainingDivergedError, match="diverged"):
        pair_metrics(z, task)


def test_script_runs_on_a_few_enzymes_graphs_and_reports_divergence(tmp_path, capsys):
    """`vgraph metagraph` end to end on 8 ENZYMES graphs; with a huge inner rate it stops with
    a one-line error (exit 1) instead of a traceback from sklearn."""
    import json
    from conftest import dataset_path
    from vgraph.cli.metagraph import main
    dataset_path("TUDataset", "ENZYMES", "raw")
    common = ["--dataset", "ENZYMES", "--max-graphs", "8", "--runs", "1", "--meta-epochs", "1",
              "--pretrain-epochs", "1", "--scratch-steps", "2", "--finetune-steps", "1", "--inner-steps", "1",
              "--threads", "1", "--no-progress"]
    summary = main(common + ["--no-node-attr", "--out", str(tmp_path / "ok")])
    for m in ("scratch", "finetune", "metagraph", "ccmetagraph"):
        assert 0.0 <= summary["metrics"][f"{m}_test_auc"]["mean"] <= 1.0
    assert json.loads((tmp_path / "ok" / "summary.json").read_text())["per_run"][0]["extra"]["graphs"] == [5, 1, 2]
    with pytest.raises(SystemExit) as exc:
        main(common + ["--methods", "metagraph", "--inner-lr", "1e6", "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 1 and "run 0 (metagraph)" in err and len(err.splitlines()) == 1
    assert "diverged" in err or "loss became" in err  # the NaN guard or the evaluator, whichever sees it first


@pytest.mark.parametrize("flags, message", [
    (["--edge-fraction", "0"], "--edge-fraction: must be > 0"),
    (["--meta-epochs", "0"], "--meta-epochs: must be >= 1"),
    (["--inner-lr", "-1"], "--inner-lr: must be > 0"),
    (["--runs", "0"], "--runs: must be >= 1"),
    (["--device", "tpu"], "unknown device"),
    (["--latent", "6", "--concepts", "4"], "not divisible"),
])
def test_bad_flags_are_one_line_exit_2(flags, message, capsys):
    from vgraph.cli.metagraph import main
    with pytest.raises(SystemExit) as exc:
        main(flags)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and message in err and len(err.splitlines()) == 1

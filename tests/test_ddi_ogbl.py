"""ogbl-ddi: the loader reads legacy split files without loosening torch.load globally;
the link predictor and task train and evaluate with the official evaluator."""
from __future__ import annotations

import json


import numpy as np
import pytest
import torch

from ddi_fixtures import write_ogbl
from vgraph.data.ogbl_ddi import load_ogbl_ddi, read_split_file
from vgraph.models.ddi import EmbeddingLinkPredictor
from vgraph.tasks.ogbl_ddi import OgblDDITask
from vgraph.errors import DataFormatError, MissingDataError
from vgraph.ops import sddmm


def _numpy_allowed():
    """NumPy globals allowed process-wide for weights_only loads (must stay none)."""
    return [g for g in torch.serialization.get_safe_globals() if "numpy" in repr(g) or "_codecs" in repr(g)]


def test_loader_reads_legacy_split_and_writes_nothing(tmp_path):
    base = write_ogbl(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert _numpy_allowed() == []
    data = load_ogbl_ddi(tmp_path)
    assert data.num_nodes == 40 and data.train_edge.dtype == torch.long
    assert data.train_edge.size(1) == 2 and data.valid_edge_neg.size(0) == 60
    assert data.message_passing_edge_index.size(1) == 2 * data.train_edge.size(0)
    assert data.node_drug_ids[:2] == ["DB00001", "DB00002"]
    # nothing written into the data root (ogb would create processed/), nothing allowed globally
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert _numpy_allowed() == []
    # and torch.load outside the loader still refuses these files
    with pytest.raises(Exception):
        torch.load(base / "split" / "target" / "valid.pt", weights_only=True)


class Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_split_file_with_foreign_globals_is_refused(tmp_path, capsys):
    path = tmp_path / "train.pt"
    torch.save({"edge": np.zeros((2, 2), np.int64), "x": Evil()}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(DataFormatError, match="cannot read ogbl-ddi split file"):
        read_split_file(path)
    assert "code ran" not in capsys.readouterr().out


def test_missing_dataset_names_the_folder(tmp_path):
    with pytest.raises(MissingDataError, match="ogbl_ddi"):
        load_ogbl_ddi(tmp_path)


def test_dot_decoder_is_the_inner_product_of_the_pair():
    torch.manual_seed(0)
    model = EmbeddingLinkPredictor(12, 8, 8, 1, "sage", 0.0, "dot")
    z = torch.randn(12, 8, requires_grad=True)
    pairs = torch.randint(0, 12, (2, 30))
    ref = (z[pairs[0]] * z[pairs[1]]).sum(1)
    out = model.decode(z, pairs)
    assert torch.allclose(out, ref, atol=1e-5)
    g1, = torch.autograd.grad((out * torch.arange(30.)).sum(), z)
    g2, = torch.autograd.grad((ref * torch.arange(30.)).sum(), z)
    assert torch.allclose(g1, g2, atol=1e-4)
    assert torch.allclose(sddmm(z, z, pairs, method="gather"), ref, atol=1e-5)


def test_registry_loads_ogbl_ddi(tmp_path):
    from vgraph.data.registry import load
    write_ogbl(tmp_path)
    assert load("ogbl-ddi", tmp_path).num_nodes == 40


@pytest.mark.parametrize("conv,decoder,variational", [("sage", "dot", False), ("gcn", "mlp", True)])
def test_link_predictor_learns_two_communities(tmp_path, conv, decoder, variational):
    write_ogbl(tmp_path)
    data = load_ogbl_ddi(tmp_path)
    torch.manual_seed(0)
    task = OgblDDITask(data, batch_size=128, num_neg=1, seed=0)
    model = EmbeddingLinkPredictor(data.num_nodes, 16, 16, 2, conv, 0.0, decoder, variational=variational)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for epoch in range(15):
        model.train()
        for batch in task.training_batches(epoch):
            opt.zero_grad()
            loss = task.batch_loss(model, batch, epoch)
            loss.backward()
            opt.step()
    neg = task.sample_negatives(500)
    taken = task.taken.view(data.num_nodes, data.num_nodes)
    assert not taken[neg[0], neg[1]].any()  # negatives are never training edges or self-pairs
    metrics = task.evaluate(model)
    assert set(metrics) == {f"{s}_hits@{k}" for s in ("val", "test") for k in (10, 20, 30)} | {"time_s"}
    metrics.pop("time_s")
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    assert metrics["val_hits@20"] > 0.5


# ------------------------------------------------------------------ issue 17: presets and tricks
def _train(tmp_path, name, *flags):
    from vgraph.cli import ddi as train_ddi
    out = tmp_path / name
    summary = train_ddi.main(["--dataset", "ogbl-ddi", "--epochs", "1", "--hidden", "16", "--batch-size", "87",
                              "--eval-every", "1", "--root", str(tmp_path / "data"), "--out", str(out),
                              "--no-progress", "--no-plot", *flags])
    log = [json.loads(line) for line in (out / "run0" / "log.jsonl").read_text().splitlines()]
    return summary, log


@pytest.mark.parametrize("preset", ["ogb-sage", "vgraph", "linear-gcn"])
def test_preset_trains_two_steps_identically_under_the_same_seed(tmp_path, preset):
    from vgraph.cli.ddi import PRESETS
    write_ogbl(tmp_path / "data")  # 174 training edges: two steps of 87
    a, log_a = _train(tmp_path, "a", "--preset", preset)
    b, log_b = _train(tmp_path, "b", "--preset", preset)
    assert a["per_run"][0]["extra"]["steps"] == 2
    assert log_a[0]["loss"] == log_b[0]["loss"] and a["metrics"] == b["metrics"]
    assert a["preset"] == {"name": preset, "flags": PRESETS[preset]}
    assert a["config"]["preset"] == preset and a["config"]["conv"] == PRESETS[preset]["conv"]
    assert a["config"]["hidden"] == 16  # an explicit flag overrides the preset's 256
    assert {"time_s", "val_hits@20", "test_hits@20"} <= set(log_a[0]) and log_a[0]["time_s"] > 0
    assert a["timing"]["median_step_s"] > 0 and "time_s" not in a["metrics"]


def test_ema_evaluates_an_average_and_leaves_training_unchanged(tmp_path):
    write_ogbl(tmp_path / "data")
    plain, log_plain = _train(tmp_path, "plain")
    ema, log_ema = _train(tmp_path, "ema", "--ema", "0.5")
    assert ema["config"]["ema"] == 0.5 and plain["config"]["ema"] == 0.0
    assert log_ema[0]["loss"] == log_plain[0]["loss"]  # the average is only evaluated
    last = torch.load(tmp_path / "ema" / "run0" / "last.pt", weights_only=False)
    avg = last["ema"]
    assert avg is not None and int(avg["n_averaged"]) == 2  # one update a step
    emb = next(k for k in last["model"] if "embedding" in k)
    assert not torch.equal(avg[f"module.{emb}"], last["model"][emb])


def test_ema_is_refused_outside_ogbl_ddi_and_out_of_range():
    from vgraph.cli.ddi import parse_args
    for argv in (["--dataset", "drugbank", "--ema", "0.9"], ["--ema", "1.0"], ["--ema", "-0.1"]):
        with pytest.raises(SystemExit) as exc:
            parse_args(["--out", "x", *argv])
        assert exc.value.code == 2


def test_default_preset_is_vgraph_and_flags_override_it():
    from vgraph.cli.ddi import PRESETS, parse_args
    args = parse_args(["--out", "x"])
    assert args.preset == "vgraph" and all(getattr(args, k) == v for k, v in PRESETS["vgraph"].items())
    args = parse_args(["--out", "x", "--preset", "ogb-sage", "--mask-targets", "--lr", "0.01"])
    assert args.mask_targets and args.lr == 0.01 and args.conv == "sage" and args.batch_size == 65536
    assert not parse_args(["--out", "x", "--no-mask-targets"]).mask_targets


def _dense(mat):
    return mat.to_dense()


def test_target_masking_removes_the_batch_edges_from_message_passing(tmp_path):
    from vgraph.ops import SparseGraph, spmm
    write_ogbl(tmp_path)
    data = load_ogbl_ddi(tmp_path)
    task = OgblDDITask(data, batch_size=50, seed=0, mask_targets=True)
    batch = next(iter(task.training_batches(0)))
    pos = task.train_pos[:, batch]
    masked = task.message_graph(batch)
    # reference: the graph rebuilt without those edges
    keep = torch.ones(task.train_pos.size(1), dtype=torch.bool)
    keep[batch] = False
    e = task.train_pos[:, keep]
    ref = SparseGraph(torch.cat([e, e.flip(0)], 1), data.num_nodes)
    for mine, theirs in ((masked.gcn_norm(), ref.gcn_norm()), (masked.mean_norm(), ref.mean_norm())):
        d = _dense(mine)
        assert torch.allclose(d, _dense(theirs), atol=1e-6)
        assert (d[pos[0], pos[1]] == 0).all() and (d[pos[1], pos[0]] == 0).all()
        x = torch.randn(data.num_nodes, 3, requires_grad=True)
        w = torch.randn(data.num_nodes, 3)
        g, = torch.autograd.grad((spmm(mine, x) * w).sum(), x)  # the backward's transpose
        assert torch.allclose(g, d.t() @ w, atol=1e-5)
    assert (_dense(task.graph.gcn_norm())[pos[0], pos[1]] > 0).all()  # unmasked graph untouched

    # inside training: every step's encoder sees a graph without that step's positives
    model = EmbeddingLinkPredictor(data.num_nodes, 8, 8, 2, "gcn-linear", 0.0, "mlp", residual=0.1)
    seen = []
    encode = model.encode
    model.encode = lambda graph: (seen.append(graph), encode(graph))[1]
    for batch in task.training_batches(0):
        pos = task.train_pos[:, batch]
        task.batch_loss(model, batch, 0).backward()
        d = _dense(seen[-1].gcn_norm())
        assert (d[pos[0], pos[1]] == 0).all() and (d[pos[1], pos[0]] == 0).all()
    assert len(seen) == task.batches_per_epoch


def test_drop_edges_masks_the_targets_and_a_fresh_fraction_of_the_rest(tmp_path):
    write_ogbl(tmp_path)
    data = load_ogbl_ddi(tmp_path)
    e = data.train_edge.size(0)
    with pytest.raises(ValueError, match="drop_edges"):
        OgblDDITask(data, batch_size=50, drop_edges=1.0)
    graphs = []
    for _ in range(2):  # the same seed draws the same edges
        task = OgblDDITask(data, batch_size=50, seed=0, mask_targets=True, drop_edges=0.5)
        batch = next(iter(task.training_batches(0)))
        graphs.append([_dense(task.message_graph(batch).gcn_norm()) for _ in range(2)])
    (a, b), (c, d) = graphs
    assert torch.equal(a, c) and torch.equal(b, d) and not torch.equal(a, b)  # fresh every step
    pos = task.train_pos[:, batch]
    full = _dense(task.graph.gcn_norm())
    for g in (a, b):
        assert (g[pos[0], pos[1]] == 0).all() and (g[pos[1], pos[0]] == 0).all()
        u, v = task.train_pos
        gone = int((g[u, v] == 0).sum())
        # the batch, plus round(0.5 E) draws with replacement: about 1 - e^-0.5 of the edges
        assert 50 < gone <= 50 + round(0.5 * e) and gone > 0.3 * e
        assert torch.equal(g.diagonal() > 0, full.diagonal() > 0)  # self-loops stay
    only_drop = OgblDDITask(data, batch_size=50, seed=0, drop_edges=0.2)  # without target masking
    assert not torch.equal(_dense(only_drop.message_graph(batch).gcn_norm()), full)


def test_common_neighbour_sum_by_hand():
    from vgraph.nn.decoders import common_neighbor_sum
    model = EmbeddingLinkPredictor(5, 4, 4, 1, "gcn", 0.0, "ncn")
    edges = torch.tensor([[0, 0, 1, 1, 2, 3], [1, 2, 2, 3, 3, 4]])
    model.set_adjacency(edges)
    z = torch.tensor([[1., 0, 0, 0], [0, 2, 0, 0], [0, 0, 3, 0], [0, 0, 0, 4], [5, 5, 5, 5]], requires_grad=True)
    pairs = torch.tensor([[0, 1, 0, 2, 3], [3, 2, 4, 4, 0]])
    # CN(0,3) = {1,2}; CN(1,2) = {0,3}; CN(0,4) = {}; CN(2,4) = {3}; CN(3,0) = {1,2}
    want = torch.stack([z[1] + z[2], z[0] + z[3], torch.zeros(4), z[3], z[1] + z[2]])
    got = common_neighbor_sum(z, pairs, model.adjacency, chunk=2)
    assert torch.equal(got, want)
    g, = torch.autograd.grad(got.sum(), z)
    assert torch.equal(g[:, 0], torch.tensor([1., 2, 2, 2, 0]))  # how often each node is a CN
    out = model.decode(z, pairs)
    assert out.shape == (5,) and torch.allclose(out[0], out[4])  # symmetric in the pair


@pytest.mark.parametrize("kind", ["ranking", "auc"])
def test_pairwise_losses_by_hand(kind):
    torch.manual_seed(0)
    model = EmbeddingLinkPredictor(6, 4, 4, 1, "gcn", 0.0, "dot", loss=kind)
    z = torch.randn(6, 4)
    pos = torch.tensor([[0, 1], [2, 3]])
    neg = torch.tensor([[0, 0, 1, 1], [4, 5, 4, 5]])  # two negatives per positive, in order
    s = lambda p: (z[p[0]] * z[p[1]]).sum(1)
    margin = s(pos).unsqueeze(1) - s(neg).view(2, 2)  # positive 0 against negatives 0, 1; 1 against 2, 3
    want = {"ranking": torch.nn.functional.softplus(-margin).mean(), "auc": ((1 - margin) ** 2).mean()}[kind]
    assert torch.allclose(model.loss(z, pos, neg), want)
    with pytest.raises(ValueError, match="loss must be one of"):
        EmbeddingLinkPredictor(6, 4, 4, 1, "gcn", 0.0, "dot", loss="hinge")


def test_clipping_and_lr_decay():
    from vgraph.tasks.ogbl_ddi import make_optimizer
    model = EmbeddingLinkPredictor(10, 4, 4, 2, "sage", 0.0, "mlp")
    opt, sched = make_optimizer(model, 0.1, grad_clip=1.0, lr_decay=True, epochs=4)
    for p in model.parameters():
        p.grad = torch.full_like(p, 100.0)
    opt.step()
    for group in model.clip_groups():
        assert float(torch.norm(torch.stack([p.grad.norm() for p in group]))) <= 1.0 + 1e-5
    assert sum(len(g) for g in model.clip_groups()) == len(list(model.parameters()))
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    assert lrs == pytest.approx([0.1, 0.075, 0.05, 0.025])


def test_evaluation_is_one_encoder_pass_without_autograd(tmp_path):
    write_ogbl(tmp_path)
    data = load_ogbl_ddi(tmp_path)
    task = OgblDDITask(data, batch_size=64, seed=0)
    task.eval_batch = 16  # several decoder batches per split
    model = EmbeddingLinkPredictor(data.num_nodes, 8, 8, 2, "sage", 0.0, "ncn")
    task.prepare(model)
    calls, grads = [], []
    encode, decode = model.encode, model.decode
    model.encode = lambda g: (calls.append(1), encode(g))[1]
    model.decode = lambda z, p: (grads.append(torch.is_grad_enabled()), decode(z, p))[1]
    metrics = task.evaluate(model)
    assert len(calls) == 1 and len(grads) > 4 and not any(grads)
    assert metrics["time_s"] >= 0


def test_variational_default_trains(tmp_path):
    write_ogbl(tmp_path / "data")
    summary, log = _train(tmp_path, "v", "--variational", "--epochs", "4", "--beta", "0.01")
    losses = [r["loss"] for r in log]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert summary["config"]["variational"] and summary["config"]["mask_targets"]


def test_embedding_dim_widens_only_the_embeddings(tmp_path):
    write_ogbl(tmp_path / "data")
    summary, log = _train(tmp_path, "e", "--embedding-dim", "24", "--hidden", "8", "--epochs", "2")
    assert summary["config"]["embedding_dim"] == 24 and all(np.isfinite([r["loss"] for r in log]))
    state = torch.load(tmp_path / "e" / "run0" / "last.pt", weights_only=False)["model"]
    emb = next(v for k, v in state.items() if "embedding" in k)
    assert emb.shape[1] == 24


def test_pair_dropout_drops_the_hadamard_product_in_training_only():
    from vgraph.nn import HadamardMLP
    torch.manual_seed(0)
    plain = HadamardMLP(8, 8, 1, 2, dropout=0.0, fast_dropout=True)
    dropped = HadamardMLP(8, 8, 1, 2, dropout=0.0, fast_dropout=True, input_dropout=0.5)
    dropped.load_state_dict(plain.state_dict())  # same keys: the input dropout holds no state
    z, pairs = torch.randn(6, 8), torch.tensor([[0, 1, 2, 3], [4, 5, 0, 1]])
    plain.eval(), dropped.eval()
    assert torch.equal(plain.score_pairs(z, pairs), dropped.score_pairs(z, pairs))
    dropped.train()
    first = dropped.net[0]
    seen = []
    hook = first.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach().clone()))
    dropped.score_pairs(z, pairs)
    hook.remove()
    x = z[pairs[0]] * z[pairs[1]]
    kept = seen[0] != 0
    assert 0 < kept.sum() < kept.numel()  # some entries dropped, some kept (and scaled by 2)
    assert torch.allclose(seen[0][kept], 2 * x[kept])


def test_ncn_model_file_carries_the_graph(tmp_path):
    import vgraph
    write_ogbl(tmp_path / "data")
    _train(tmp_path, "n", "--decoder", "ncn", "--loss", "ranking", "--num-neg", "2")
    bundle = vgraph.load(tmp_path / "n" / "model.pt")
    data = load_ogbl_ddi(tmp_path / "data")
    e = data.train_edge
    adj = bundle.model.adjacency
    assert adj[e[:, 0], e[:, 1]].all() and adj[e[:, 1], e[:, 0]].all()
    assert int(adj.sum()) == 2 * e.size(0)  # nothing but the training edges
    pairs = data.test_edge[:5].t()
    assert bundle.model.decode(bundle.z, pairs).shape == (5,)


@pytest.mark.parametrize("argv,message", [
    (["--dataset", "drugbank", "--preset", "ogb-sage"], "--preset applies to --dataset ogbl-ddi only"),
    (["--dataset", "drugbank", "--grad-clip", "1"], "--grad-clip applies to --dataset ogbl-ddi only"),
    (["--dataset", "drugbank", "--mask-targets"], "--mask-targets applies to --dataset ogbl-ddi only"),
    (["--preset", "nope"], "invalid choice: 'nope'"),
    (["--residual", "-1"], "--residual: must be >= 0"),
    (["--drop-edges", "1"], "--drop-edges: must be < 1"),
    (["--dataset", "drugbank", "--drop-edges", "0.2"], "--drop-edges applies to --dataset ogbl-ddi only"),
    (["--loss", "hinge"], "invalid choice: 'hinge'"),
    (["--residual", "0.1", "--embedding-dim", "64"], "--residual needs --embedding-dim equal to --hidden"),
    (["--pair-dropout", "0.3", "--decoder", "dot"], "--pair-dropout applies to --decoder mlp only"),
    (["--pair-dropout", "1.5"], "--pair-dropout: must be"),
])
def test_ogbl_flags_are_checked(argv, message, tmp_path, capsys):
    from vgraph.cli import ddi as train_ddi
    with pytest.raises(SystemExit) as exc:
        train_ddi.main(["--out", str(tmp_path / "run"), *argv])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_resume_continues_the_wall_clock(tmp_path):
    write_ogbl(tmp_path / "data")
    _, first = _train(tmp_path, "r")
    summary, log = _train(tmp_path, "r", "--epochs", "2", "--resume")
    assert [r["epoch"] for r in log] == [0, 1] and log[0] == first[0]
    assert log[1]["time_s"] > log[0]["time_s"]
    task = OgblDDITask(load_ogbl_ddi(tmp_path / "data"), batch_size=64)
    task.start_clock()
    state = task.state_dict()
    task.load_state_dict({**state, "elapsed": 1000.0})  # what a checkpoint written at 1,000 s holds
    assert 1000.0 <= task.evaluate(EmbeddingLinkPredictor(40, 4, 4, 1, "gcn", 0.0, "dot"))["time_s"] < 1100.0


def test_ablation_bench_trains_each_row_and_continues_where_it_stopped(tmp_path, capsys):
    from vgraph.cli import bench_ddi_ablation as bench
    write_ogbl(tmp_path / "data")
    argv = ["--configs", "default", "variational", "--epochs", "1", "--hidden", "16", "--batch-size", "87",
            "--eval-every", "1", "--root", str(tmp_path / "data"), "--out", str(tmp_path / "abl")]
    rows = bench.main(argv)
    assert list(rows) == ["default", "variational"]
    assert all(0.0 <= r["test_hits@20"] <= 1.0 and r["total_s"] > 0 for r in rows.values())
    saved = json.loads((tmp_path / "abl" / "summary.json").read_text())
    assert saved["flags"]["variational"] == ["--variational"] and saved["rows"] == rows
    assert (tmp_path / "abl" / "default" / "run0" / "log.jsonl").is_file()
    assert "| variational | VGAE latent |" in (tmp_path / "abl" / "table.md").read_text()
    again = bench.main(argv)  # both rows finished: read back, not retrained
    assert again == rows and "finished earlier" in capsys.readouterr().out


def _random_graph(n, p, seed):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(n, n, generator=g) < p
    a = a | a.t()
    a.fill_diagonal_(False)
    return a, g


@pytest.mark.parametrize("backend", ["numba", "mkl"])
@pytest.mark.parametrize("n", [5, 64, 130])  # a row of less than, exactly and more than one 64-bit word
def test_common_neighbour_matrix_and_weights_match_the_dense_and(monkeypatch, backend, n):
    from vgraph.nn.decoders import common_neighbor_matrix, common_neighbor_weights
    monkeypatch.setenv("VGRAPH_BACKEND", backend)  # mkl: the torch fallback (bool rows ANDed)
    a, g = _random_graph(n, 0.3, n)
    pairs = torch.randint(0, n, (2, 500), generator=g)
    want = (a[pairs[0]] & a[pairs[1]]).float()
    cn = common_neighbor_matrix(pairs, a, chunk=64)
    assert cn.shape == (500, n) and torch.equal(cn.to_dense(), want)
    for p in range(0, 500, 97):  # ids ascending within each row
        row = cn.indices[cn.indptr[p]:cn.indptr[p + 1]]
        assert torch.equal(row, want[p].nonzero().flatten())
    w = torch.rand(n, 3, generator=g)
    assert torch.allclose(common_neighbor_weights(pairs, a, w, chunk=64), want @ w, atol=1e-5)


def test_structure_features_by_hand():
    from vgraph.nn.decoders import structure_features
    edges = torch.tensor([[0, 0, 1, 1, 2, 3], [1, 2, 2, 3, 3, 4]])
    a = torch.zeros(5, 5, dtype=torch.bool)
    a[edges[0], edges[1]] = True
    a = a | a.t()
    deg = a.sum(1)  # 2, 3, 3, 3, 1
    pairs = torch.tensor([[0, 0, 2], [3, 4, 4]])  # CN {1, 2}, {}, {3}
    got = structure_features(pairs, a, deg)
    d = deg.float().clamp(min=2)
    raw = torch.tensor([[2, 1 / 3 + 1 / 3, 2 / torch.log(torch.tensor(3.))], [0, 0, 0],
                        [1, 1 / 3, 1 / torch.log(torch.tensor(3.))]])
    bound = torch.log1p(torch.stack([d.max(), d.max() / 2, d.max() / torch.log(torch.tensor(2.))]))
    assert torch.allclose(got, torch.log1p(raw) / bound, atol=1e-6)
    assert (got >= 0).all() and (got <= 1).all()


def test_cn_decoders_start_from_the_mlp_and_the_low_rank_sum_is_the_full_sum_projected():
    torch.manual_seed(0)
    a, g = _random_graph(40, 0.3, 1)
    edges = a.nonzero().t()
    pairs = torch.randint(0, 40, (2, 64), generator=g)
    model = EmbeddingLinkPredictor(40, 8, 8, 1, "sage", 0.0, "mlp-cn").eval()
    model.set_adjacency(edges)
    z = torch.randn(40, 8)
    dec = model.ncn
    plain = dec.head.net(torch.relu(dec.lin_pair(z[pairs[0]] * z[pairs[1]]))).squeeze(-1)
    assert torch.allclose(model.decode(z, pairs), plain, atol=1e-6)  # zero-initialised structure term
    low = EmbeddingLinkPredictor(40, 8, 8, 1, "sage", 0.0, "ncn", cn_channels=3).eval()
    low.set_adjacency(edges)
    dec = low.ncn
    cn_sum = (a[pairs[0]] & a[pairs[1]]).float() @ z
    want = dec.head.net(torch.relu(dec.lin_pair(z[pairs[0]] * z[pairs[1]]) + dec.cn_norm(dec.lin_cn(dec.cn_down(cn_sum)))))
    zz = z.clone().requires_grad_(True)
    got = low.decode(zz, pairs)
    assert dec.cn_down.weight.shape == (3, 8) and torch.allclose(got, want.squeeze(-1), atol=1e-5)
    got.sum().backward()
    assert zz.grad is not None and dec.cn_down.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("backend", ["numba", "mkl"])
def test_common_neighbour_sum_values_and_gradients_match_the_dense_and(monkeypatch, backend):
    from vgraph.nn.decoders import common_neighbor_sum
    monkeypatch.setenv("VGRAPH_BACKEND", backend)
    a, g = _random_graph(130, 0.2, 3)
    pairs = torch.randint(0, 130, (2, 300), generator=g)
    z = torch.randn(130, 20, generator=g, dtype=torch.float64, requires_grad=True)
    c = (a[pairs[0]] & a[pairs[1]]).double()
    out = common_neighbor_sum(z, pairs, a)
    assert torch.allclose(out, c @ z)
    w = torch.randn(300, 20, generator=g, dtype=torch.float64)
    grad, = torch.autograd.grad((out * w).sum(), z)
    assert torch.allclose(grad, c.t() @ w)


def test_bench_common_neighbors_synthetic(tmp_path):
    from vgraph.cli.bench_common_neighbors import main
    summary = main(["--synthetic", "--pairs", "256", "--widths", "8", "--rounds", "1", "--out", str(tmp_path)])
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["ratios"] == summary["ratios"] and "cn/F8/dense_over_compiled" in written["ratios"]
    assert written["pairs"] == 512 and written["graph"].startswith("synthetic")
    assert written["mean_common_neighbours"]["training_edge"] > 0

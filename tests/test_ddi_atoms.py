"""Issue 18: the atom-level DrugBank encoder (vgraph.nn.molecular, AtomDDIModel), its cached
atom graphs, `vgraph ddi --encoder atoms` and `vgraph predict-ddi` with no --checkpoint."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ddi_fixtures import SMILES, write_drugbank
from vgraph.chem.drug_graphs import ATOM_FEATURES, AtomGraphs, atom_feature_sizes, drug_atom_graphs, num_bond_types
from vgraph.cli import ddi as train_ddi
from vgraph.cli import predict_ddi
from vgraph.models.ddi import AtomDDIModel, atom_batch
from vgraph.nn.molecular import (AtomCrossAttention, MolecularBatch, MolecularEncoder, SubstructureCoAttention,
                                 segment_softmax)
from vgraph.ops import SparseGraph

REPO = Path(__file__).resolve().parent.parent
MOLS = ["CCO", "c1ccccc1O", "C#N", "[Na+]", "CC(=O)Nc1ccc(O)cc1", "C=CC=O"]


def _model(**kw):
    args = dict(atom_sizes=atom_feature_sizes(), num_bond_types=num_bond_types(), mol_hidden=8, mol_layers=3,
                hidden=16, latent=4, num_types=3, dropout=0.0, mol_dropout=0.0)
    return AtomDDIModel(**{**args, **kw})


def test_atom_graphs_arrays_select_and_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VGRAPH_CACHE", str(tmp_path / "cache"))
    g = drug_atom_graphs(MOLS, progress=True, say=lambda m: print(m, file=sys.stderr))
    err = capsys.readouterr().err
    assert "featurising 6 drugs as atom graphs; cached in" in err and "atom graphs:" in err
    assert list(g.num_atoms) == [3, 7, 2, 1, 11, 4] and g.atoms.shape == (28, len(ATOM_FEATURES))
    assert list(g.num_bonds) == [2, 7, 1, 0, 11, 3]
    assert (g.atoms.max(0) < np.array(atom_feature_sizes())).all()
    assert sorted(g.bond_types[2:9].tolist()) == [0] + [3] * 6  # phenol: six aromatic bonds and C-O
    again = drug_atom_graphs(MOLS, progress=True, say=lambda m: print(m, file=sys.stderr))
    assert "featurising" not in capsys.readouterr().err  # cached
    for k, v in g.arrays().items():
        assert np.array_equal(v, again.arrays()[k]) and np.array_equal(v, AtomGraphs.from_arrays(g.arrays()).arrays()[k])
    one = g.select([4])
    assert list(one.num_atoms) == [11] and np.array_equal(one.bonds, g.bonds[10:21])
    assert not list((tmp_path / "cache" / "ddi").glob("*.tmp*"))
    from vgraph.errors import DataFormatError
    with pytest.raises(DataFormatError, match="#1"):
        drug_atom_graphs(["CCO", "C1CC((("], use_cache=False)


def test_molecular_batch_is_block_diagonal():
    b = atom_batch(drug_atom_graphs(MOLS, use_cache=False))
    assert b.num_molecules == 6 and b.ptr.tolist() == [0, 3, 10, 12, 13, 24, 28]
    assert sum(g.num_edges for g in b.graphs) == 2 * 24  # both directions of every bond
    for g in b.graphs:  # no edge crosses molecules
        src, dst = g.edge_index
        mol = torch.bucketize(src, b.ptr[1:], right=True)
        assert torch.equal(mol, torch.bucketize(dst, b.ptr[1:], right=True))
    with pytest.raises(ValueError, match="outside its molecule"):
        MolecularBatch([[0] * 7, [0] * 7], [1, 1], [[0, 1]], [0], [1, 0], 4)


def test_segment_softmax_sums_to_one_per_molecule():
    ptr = torch.tensor([0, 2, 2, 5])
    s = torch.randn(5, 1, requires_grad=True)
    a = segment_softmax(s, ptr)
    assert torch.allclose(a[:2].sum(), torch.tensor(1.0)) and torch.allclose(a[2:].sum(), torch.tensor(1.0))
    a.pow(2).sum().backward()
    assert torch.isfinite(s.grad).all()


def test_encoder_output_of_a_molecule_does_not_depend_on_the_batch():
    torch.manual_seed(0)
    enc = MolecularEncoder(atom_feature_sizes(), hidden=8, layers=3, num_bond_types=num_bond_types()).eval()
    g = drug_atom_graphs(MOLS, use_cache=False)
    out = enc(atom_batch(g))
    assert out.shape == (6, 3, 8)
    for i in range(6):
        alone = enc(atom_batch(g.select([i])))
        assert torch.allclose(alone[0], out[i], atol=1e-5)
    rev = enc(atom_batch(g.select(list(range(5, -1, -1)))))
    assert torch.allclose(rev.flip(0), out, atol=1e-5)
    # the atom order inside a molecule does not matter either (pooled readouts)
    other = enc(atom_batch(drug_atom_graphs(["OCC"], use_cache=False)))
    assert torch.allclose(other[0], out[0], atol=1e-5)
    # bonds matter: ethanol and its disconnected atoms read out differently
    apart = enc(atom_batch(drug_atom_graphs(["C.C.O"], use_cache=False)))
    assert not torch.allclose(apart[0], out[0], atol=1e-4)


def test_co_attention_weights_and_order():
    torch.manual_seed(0)
    att = SubstructureCoAttention(4)
    h, t = torch.randn(5, 3, 4), torch.randn(5, 3, 4)
    inter, gamma = att(h, t)
    assert inter.shape == (5, 4) and gamma.shape == (5, 3, 3)
    assert torch.allclose(gamma.sum((1, 2)), torch.ones(5))
    expected = (gamma[..., None] * h[:, :, None, :] * t[:, None, :, :]).sum((1, 2))
    assert torch.allclose(inter, expected, atol=1e-6)


def test_atom_model_latents_and_isolated_new_drug():
    torch.manual_seed(0)
    model = _model().eval()
    g = drug_atom_graphs(list(SMILES.values()), use_cache=False)
    e = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])
    graph = SparseGraph(torch.cat([e, e.flip(0)], 1), 8)
    mu, logstd = model.posterior(atom_batch(g), graph)
    assert mu.shape == logstd.shape == (8, 3 * 4)
    # a new drug appended as an isolated node leaves the known drugs as they were
    g9 = drug_atom_graphs(list(SMILES.values()) + ["CCCCO"], use_cache=False)
    mu9, _ = model.posterior(atom_batch(g9), SparseGraph(graph.edge_index, 9))
    assert torch.allclose(mu9[:8], mu, atol=1e-5) and torch.isfinite(mu9[8]).all()
    # ... and equals that drug encoded alone
    alone, _ = model.posterior(atom_batch(g9.select([8])), SparseGraph(torch.zeros(2, 0, dtype=torch.long), 1))
    assert torch.allclose(alone[0], mu9[8], atol=1e-5)
    # partners change a drug's latent (the graph branch is used)
    mu_iso, _ = model.posterior(atom_batch(g), SparseGraph(torch.zeros(2, 0, dtype=torch.long), 8))
    assert not torch.allclose(mu_iso[0], mu[0], atol=1e-4)
    logits = model.decode(mu9, torch.tensor([[8, 0], [0, 8]]))
    assert logits.shape == (2, 3) and not torch.allclose(logits[0], logits[1])  # ordered pairs


def test_fingerprint_bits_ride_with_the_graphs():
    from vgraph.chem.descriptors import MORGAN_BITS, _morgan, parse_smiles
    g = drug_atom_graphs(MOLS, use_cache=False)
    assert g.fingerprints.shape == (6, MORGAN_BITS // 8) and g.fingerprints.dtype == np.uint8
    assert np.array_equal(g.fingerprint_bits()[4], _morgan(parse_smiles(MOLS[4])))
    assert np.array_equal(g.select([4, 1]).fingerprint_bits(), g.fingerprint_bits()[[4, 1]])
    torch.manual_seed(0)
    model = _model(mol_features=MORGAN_BITS).eval()
    b = atom_batch(g, features="fingerprint")
    empty = SparseGraph(torch.zeros(2, 0, dtype=torch.long), 6)
    mu, _ = model.posterior(b, empty)
    b.features = torch.zeros_like(b.features)
    assert not torch.allclose(model.posterior(b, empty)[0], mu)  # the bits are read
    b.features = None
    with pytest.raises(ValueError, match="molecule-level features"):
        model.posterior(b, empty)


def test_atom_model_trains_on_the_task():
    from vgraph.data.drugbank import warm_split
    from vgraph.tasks.drugbank import DrugBankTask
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        write_drugbank(Path(d))
        from vgraph.data.drugbank import load_drugbank
        data = load_drugbank(d)
    torch.manual_seed(0)
    split = warm_split(data, 0)
    task = DrugBankTask(split, atom_batch(drug_atom_graphs(data.smiles, use_cache=False)), batch_size=8, seed=0)
    model = _model()
    from vgraph.data.drugbank import corrupt
    pos = split.train
    neg = corrupt(pos, 8, task.known, torch.Generator().manual_seed(1), candidates=split.train_drugs)

    def fixed_loss():  # the posterior means on the training graph, fixed negatives
        model.eval()
        with torch.no_grad():
            return float(model.loss(model.encode(task.x, task.graph), pos, neg))

    before = fixed_loss()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for epoch in range(30):
        model.train()
        for batch in task.training_batches(epoch):
            opt.zero_grad()
            task.batch_loss(model, batch, epoch).backward()
            opt.step()
    assert fixed_loss() < before
    assert all(p.grad is not None for p in model.mol.parameters() if p.requires_grad)
    m = task.evaluate(model)
    assert all(0 <= v <= 1 for v in m.values())


def _cross_reference(qkv, ptr, h, t, d):
    """One pair, written out: head atoms attend over tail atoms and back, same scores."""
    qh, kh, vh = qkv[ptr[h]:ptr[h + 1]].split(d, -1)
    qt, kt, vt = qkv[ptr[t]:ptr[t + 1]].split(d, -1)
    s = qh @ kt.T / d ** 0.5
    rh = (vh * (torch.softmax(s, 1) @ vt)).sum(0)
    rt = (vt * (torch.softmax(s, 0).T @ vh)).sum(0)
    return rh, rt


def test_atom_cross_attention_matches_a_per_pair_reference_in_any_chunking():
    torch.manual_seed(0)
    d = 4
    cross = AtomCrossAttention(6, d)
    counts = torch.tensor([3, 1, 7, 2, 11, 5])
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    qkv = cross.project(torch.randn(int(ptr[-1]), 6))
    heads, tails = torch.tensor([0, 4, 2, 1, 5, 4, 3]), torch.tensor([4, 0, 2, 5, 1, 4, 0])
    with torch.no_grad():
        ref = [_cross_reference(qkv, ptr, int(h), int(t), d) for h, t in zip(heads, tails)]
        ref_h = cross.norm(torch.stack([r[0] for r in ref]))
        ref_t = cross.norm(torch.stack([r[1] for r in ref]))
        for budget in (1, 50, 10_000):  # one pair a chunk ... all pairs in one chunk
            cross.budget = budget
            rh, rt = cross(qkv, ptr, heads, tails)
            assert torch.allclose(rh, ref_h, atol=1e-5) and torch.allclose(rt, ref_t, atol=1e-5)
        cross.block = 3  # several passes give the same numbers
        bh, bt = cross(qkv, ptr, heads, tails)
        assert torch.allclose(bh, rh, atol=1e-6) and torch.allclose(bt, rt, atol=1e-6)
        one_h, one_t = cross(qkv, ptr, heads[1:2], tails[1:2])  # a pair alone = inside the batch
        assert torch.allclose(one_h, rh[1:2], atol=1e-6) and torch.allclose(one_t, rt[1:2], atol=1e-6)
        assert not torch.allclose(rh[0], rt[1])  # ordered: (a, b) is not (b, a) mirrored


def test_cross_attention_model_trains_and_needs_its_readouts():
    model = _model(cross_attention=8)
    g = drug_atom_graphs(MOLS, use_cache=False)
    batch = atom_batch(g)
    graph = SparseGraph(torch.tensor([[0, 1, 2], [1, 2, 3]]), len(MOLS))
    z = model.encode(batch, graph)
    pos, neg = torch.tensor([[0, 1, 0], [2, 4, 1]]), torch.tensor([[0, 5, 0], [3, 4, 2]])
    model.loss(z, pos, neg).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.cross.parameters())
    with pytest.raises(ValueError, match="cross-attention readouts"):
        model.decode_pairs(z[:1], z[1:2])
    with pytest.raises(ValueError, match="cross-attention readouts"):
        _model().decode_pairs(z[:1, :12], z[1:2, :12], (z[:1, :8], z[:1, :8]))


# ------------------------------------------------------------------ the job and prediction
ATOM_ARGS = ["--dataset", "drugbank", "--encoder", "atoms", "--hidden", "16", "--latent", "4", "--mol-hidden", "8",
             "--mol-layers", "2", "--batch-size", "8", "--no-progress", "--no-plot"]


@pytest.fixture(scope="module")
def atom_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_drugbank(root)
    out = tmp_path_factory.mktemp("run")
    summary = train_ddi.main([*ATOM_ARGS, "--epochs", "2", "--root", str(root), "--out", str(out), "--overwrite"])
    return root, out, summary


def test_job_writes_timings_and_is_reproducible(atom_run, tmp_path):
    root, out, summary = atom_run
    assert summary["encoder"] == "atoms" and summary["config"]["encoder"] == "atoms"
    assert summary["timing"]["median_epoch_s"] > 0 and summary["timing"]["featurise_s"] >= 0
    assert summary["per_run"][0]["extra"]["seconds_per_epoch"] > 0
    again = train_ddi.main([*ATOM_ARGS, "--epochs", "2", "--root", str(root), "--out", str(tmp_path / "again")])
    for k in ("test_auroc", "test_acc", "val_auroc"):
        assert again["metrics"][k] == summary["metrics"][k]  # same seed, same numbers
    import vgraph
    _, info = vgraph.load(out / "model.pt", with_info=True)
    assert info.meta["encoder"] == "atoms" and info.kwargs["model"]["class"] == "AtomDDIModel"


TEN = """drug1,drug2
DB00001,DB00002
 DB00003 , DB00004
db00005,DB00001
DB00001,CCCCCCO
c1ccccc1O,CC(=O)N
DB00001,DB99999
DB00002,C1CC(((
,
DB00001,DB00002
DB00007,c1ccncc1
"""


def _check_ten(df):
    assert len(df) == 10 and list(df.row) == list(range(1, 11))
    status = dict(zip(df.row, df.status))
    for ok in (1, 2, 3, 4, 5):
        assert status[ok] == "ok", status
    assert "unknown DrugBank id DB99999" in status[6]
    assert "invalid SMILES" in status[7]
    assert "empty row" in status[8]
    assert "duplicate of row 1" in status[9]
    assert status[10] == "ok"  # pyridine as SMILES is the known drug DB00006
    good = df[df.status == "ok"]
    assert good.probability.between(0, 1).all() and (good.uncertainty >= 0).all()


def _predict(argv, tmp_path, text, name="pairs.csv"):
    pairs, out = tmp_path / name, tmp_path / f"{name}.out.csv"
    pairs.write_text(text)
    try:
        rc = predict_ddi.main(["--pairs", str(pairs), "--out", str(out), "--no-progress", *argv])
    except SystemExit as exc:
        rc = exc.code
    return rc, (pd.read_csv(out) if out.exists() else None)


def test_predict_with_atom_model(atom_run, tmp_path):
    _, out, _ = atom_run
    rc, df = _predict(["--checkpoint", str(out / "model.pt"), "--samples", "5"], tmp_path, TEN)
    assert rc == 0
    _check_ten(df)
    # a known drug as SMILES or lower-case id is the known drug; a row alone = inside the file
    rc, same = _predict(["--checkpoint", str(out / "model.pt"), "--samples", "5"], tmp_path,
                        "drug1,drug2\nc1ccncc1,DB00007\nDB00001,CCCCCCO\n", name="b.csv")
    row = df[df.row == 4].iloc[0]
    assert same.probability[1] == row.probability and same.uncertainty[1] == row.uncertainty


@pytest.mark.parametrize("features", ["none", "fingerprint"])
def test_other_molecule_features_train_and_predict(atom_run, tmp_path, features):
    import vgraph
    root, _, _ = atom_run
    train_ddi.main([*ATOM_ARGS, "--epochs", "1", "--mol-features", features, "--root", str(root),
                    "--out", str(tmp_path / "r")])
    bundle, info = vgraph.load(tmp_path / "r" / "model.pt", with_info=True)
    assert info.meta["mol_features"] == features and not hasattr(bundle, "mol_desc")
    assert bundle.model.mol_features == (0 if features == "none" else 1024)
    rc, df = _predict(["--checkpoint", str(tmp_path / "r" / "model.pt"), "--samples", "3"], tmp_path, TEN)
    assert rc == 0
    _check_ten(df)


def test_cross_attention_job_trains_and_predicts(atom_run, tmp_path):
    import vgraph
    root, _, _ = atom_run
    train_ddi.main([*ATOM_ARGS, "--epochs", "1", "--cross-attention", "8", "--root", str(root),
                    "--out", str(tmp_path / "r")])
    bundle, info = vgraph.load(tmp_path / "r" / "model.pt", with_info=True)
    assert info.kwargs["model"]["kwargs"]["cross_attention"] == 8 and bundle.model.cross is not None
    rc, df = _predict(["--checkpoint", str(tmp_path / "r" / "model.pt"), "--samples", "3"], tmp_path, TEN)
    assert rc == 0
    _check_ten(df)
    rc, same = _predict(["--checkpoint", str(tmp_path / "r" / "model.pt"), "--samples", "3"], tmp_path,
                        "drug1,drug2\nDB00001,CCCCCCO\nDB00002,DB00001\n", name="b.csv")
    assert same.probability[0] == df[df.row == 4].iloc[0].probability  # a row alone = inside the file


def test_evaluate_mode_reproduces_the_runs_cold_metrics(tmp_path):
    import json
    root = tmp_path / "data"
    root.mkdir()
    write_drugbank(root)
    cold = [*ATOM_ARGS, "--protocol", "cold", "--folds", "0", "--epochs", "2", "--root", str(root)]
    run = train_ddi.main([*cold, "--out", str(tmp_path / "r")])
    again = train_ddi.main([*cold[:-4], "--folds", "0", "--root", str(root), "--evaluate",
                            str(tmp_path / "r" / "model.pt"), "--out", str(tmp_path / "e")])
    for k in ("s1_auroc", "s2_auroc", "s2_acc", "val_auroc"):
        assert again["metrics"][k]["mean"] == pytest.approx(run["metrics"][k]["mean"], abs=1e-6)
    saved = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert saved["job"] == "ddi/drugbank-evaluate" and saved["cold_negatives"] == "files"
    assert not (tmp_path / "e" / "model.pt").exists()


def test_samples_zero_is_the_atom_posterior_mean(atom_run, tmp_path):
    import vgraph
    from vgraph.data.drugbank import ddi_graph
    _, out, _ = atom_run
    rc, df = _predict(["--checkpoint", str(out / "model.pt"), "--samples", "0"], tmp_path,
                      "drug1,drug2\nDB00001,DB00002\n")
    assert rc == 0 and df.uncertainty.isna().all()
    bundle, info = vgraph.load(out / "model.pt", with_info=True)
    g = drug_atom_graphs(list(SMILES.values()), use_cache=False)
    assert info.meta["mol_features"] == "descriptors"  # the default: descriptors + Morgan bits beside the graph
    from vgraph.chem.descriptors import DrugFeaturizer
    feat = DrugFeaturizer.from_state(info.transform["featurizer"])
    x = feat.transform(list(SMILES.values()), use_cache=False)
    assert torch.allclose(x[:, :bundle.mol_desc.size(1)], bundle.mol_desc)
    with torch.no_grad():  # the stored atom graphs are those of the SMILES
        mu, _ = bundle.model.posterior(atom_batch(g, features=x), ddi_graph(bundle.train_pairs.long(), len(SMILES)))
        expected = torch.sigmoid(bundle.model.decode(mu, torch.tensor([[0], [1]])) / info.meta["temperature"])[0]
    assert df.probability[0] == round(float(expected.max()), 6)
    assert int(df.type1[0]) == int(expected.argmax()) + 1


def test_no_checkpoint_uses_the_shipped_model(atom_run, tmp_path, monkeypatch, capsys):
    from vgraph.tasks import ddi_predict
    _, out, _ = atom_run
    monkeypatch.setattr(ddi_predict, "SHIPPED_DRUGBANK", out / "model.pt")
    rc, df = _predict([], tmp_path, TEN)
    assert rc == 0
    _check_ten(df)
    monkeypatch.setattr(ddi_predict, "SHIPPED_DRUGBANK", tmp_path / "none.pt")
    rc, _ = _predict([], tmp_path, TEN, name="c.csv")
    err = capsys.readouterr().err
    assert rc == 1 and "ships no DrugBank model" in err and len(err.strip().splitlines()) == 1


SHIPPED_TEN = """drug1,drug2
DB01115,DB01136
 DB00363 , DB01154
db01115,CC(=O)Nc1ccc(O)cc1
CC(C)Cc1ccc(cc1)C(C)C(=O)O,DB01136
DB01115,DB99999
DB00363,C1CC(((
,
DB01115,DB01136
DB09000,DB00821
CCOC(=O)C,CC(=O)N
"""


@pytest.mark.skipif(not (REPO / "vgraph" / "chem" / "pretrained" / "drugbank_ddi.pt").is_file(),
                    reason="no shipped DrugBank model in this checkout")
def test_shipped_model_predicts_offline_without_data(tmp_path):
    """The shipped file alone: a fresh process, no data root, no cache, no --checkpoint."""
    shipped = REPO / "vgraph" / "chem" / "pretrained" / "drugbank_ddi.pt"
    assert shipped.stat().st_size <= 5 * 2 ** 20
    (tmp_path / "pairs.csv").write_text(SHIPPED_TEN)
    env = {**os.environ, "PYTHONPATH": str(REPO), "VGRAPH_DATA": str(tmp_path / "no-data"),
           "VGRAPH_CACHE": str(tmp_path / "cache")}
    res = subprocess.run([sys.executable, "-m", "vgraph.cli", "predict-ddi", "--pairs", "pairs.csv", "--out",
                          "pred.csv", "--no-progress"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    df = pd.read_csv(tmp_path / "pred.csv")
    status = dict(zip(df.row, df.status))
    assert [status[k] for k in (1, 2, 3, 4, 9, 10)] == ["ok"] * 6
    assert "unknown DrugBank id DB99999" in status[5] and "invalid SMILES" in status[6]
    assert "empty row" in status[7] and "duplicate of row 1" in status[8]
    assert not (tmp_path / "no-data").exists()


def test_calibration_helpers():
    from vgraph.metrics.classification import calibration_report, expected_calibration_error, fit_temperature
    # two bins hit: 0.2 (labels 0, 1 -> mean 0.5) and 0.9 (labels 1, 1): (2/4)*0.3 + (2/4)*0.1
    assert expected_calibration_error([0.2, 0.2, 0.9, 0.9], [0, 1, 1, 1], bins=10) == pytest.approx(0.2)
    rng = np.random.default_rng(0)
    true = rng.normal(0, 2, 20000)  # labels drawn from sigmoid(true); the model says 3 * true
    y = rng.random(true.size) < 1 / (1 + np.exp(-true))
    logits = 3 * true
    t = fit_temperature(logits[y], logits[~y])
    assert t == pytest.approx(3.0, rel=0.1)
    rep = calibration_report({"val": (logits[y], logits[~y]), "test": (logits[y][:50], logits[~y][:50])})
    assert rep["temperature"] == t and rep["val_ece_calibrated"] < rep["val_ece"]


def test_job_reports_calibration_and_ships_a_half_model(atom_run, tmp_path):
    root, out, summary = atom_run
    cal = summary["calibration"]
    assert cal["temperature"] > 0 and {"test_ece", "test_ece_calibrated", "val_ece"} <= set(cal)
    assert summary["per_run"][0]["extra"]["calibration"] == cal
    ship = tmp_path / "pkg" / "drugbank_ddi.pt"
    s2 = train_ddi.main([*ATOM_ARGS, "--epochs", "2", "--root", str(root), "--out", str(tmp_path / "r"),
                         "--ship", str(ship)])
    import json
    import vgraph
    info = json.loads(ship.with_suffix(".json").read_text())
    assert info["bytes"] == ship.stat().st_size and info["weights"] == "float16"
    assert info["metrics_fp32_model"]["test_auroc"] == s2["metrics"]["test_auroc"]["mean"]
    assert s2["shipped"]["sha256"] == info["sha256"]
    assert set(info["metrics_shipped_file"]) >= {"test_auroc", "test_acc", "val_auroc"}
    from vgraph.train.checkpoint import load_checkpoint
    state = load_checkpoint(ship)["model"]
    assert all(v.dtype in (torch.float16, torch.int16, torch.int32, torch.uint8) for v in state.values())
    _, meta = vgraph.load(ship, with_info=True)
    assert meta.meta["temperature"] == s2["calibration"]["temperature"]


@pytest.mark.parametrize("argv,message", [
    (["--dataset", "drugbank", "--encoder", "graphs"], "--encoder: invalid choice"),
    (["--dataset", "drugbank", "--ship", "x.pt"], "--ship applies to --encoder atoms only"),
    (["--dataset", "drugbank", "--mol-layers", "2"], "--mol-layers applies to --encoder atoms only"),
    (["--dataset", "drugbank", "--encoder", "descriptors", "--mol-hidden", "8"], "--mol-hidden applies to --encoder atoms only"),
    (["--dataset", "drugbank", "--cross-attention", "8"], "--cross-attention applies to --encoder atoms only"),
    (["--dataset", "drugbank", "--cold-negatives", "dsn-ddi"], "apply to --protocol cold only"),
    (["--dataset", "drugbank", "--protocol", "cold", "--folds", "0", "1", "--evaluate", "a.pt"],
     "one model file per fold"),
    (["--dataset", "ogbl-ddi", "--evaluate", "a.pt"], "--evaluate applies to --dataset drugbank only"),
    (["--dataset", "drugbank", "--encoder", "atoms", "--mol-layers", "0"], "--mol-layers: must be >= 1"),
    (["--encoder", "atoms"], "--encoder applies to --dataset drugbank only"),
])
def test_bad_encoder_flags_are_one_line_exit_2(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        train_ddi.main(["--out", str(tmp_path / "run"), *argv])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, err

"""vgraph ddi -> model.pt (vgraph.hub) -> vgraph predict-ddi on CSVs with good and bad rows,
and the DDI jobs' flag validation (one line, exit 2)."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from ddi_fixtures import SMILES, write_drugbank, write_ogbl
from vgraph.cli import ddi as train_ddi
from vgraph.cli import predict_ddi


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_drugbank(root)
    out = tmp_path_factory.mktemp("run")
    train_ddi.main(["--dataset", "drugbank", "--protocol", "warm", "--epochs", "2", "--hidden", "16",
                    "--latent", "8", "--batch-size", "8", "--root", str(root), "--out", str(out),
                    "--no-progress", "--no-plot", "--overwrite"])
    return root, out / "model.pt"


@pytest.fixture(scope="module")
def drugbank_ckpt(trained):
    return trained[1]


def _predict(ckpt, tmp_path, text, *extra, name="pairs.csv"):
    pairs = tmp_path / name
    pairs.write_text(text)
    out = tmp_path / f"{name}.out.csv"
    try:
        rc = predict_ddi.main(["--checkpoint", str(ckpt), "--pairs", str(pairs), "--out", str(out),
                               "--no-progress", *extra])
    except SystemExit as exc:
        rc = exc.code
    return rc, (pd.read_csv(out) if out.exists() else None)


PAIRS = """drug1,drug2
DB00001,DB00002
DB00003,DB00004
DB00001,CCCCCCO
c1ccccc1O,DB00005
DB00001,DB99999
DB00002,not_a_smiles((
DB00001,DB00002
,
DB00006,DB00006
CCOC(=O)C,CC(=O)N
"""


def test_predict_mixed_rows(drugbank_ckpt, tmp_path, capsys):
    rc, df = _predict(drugbank_ckpt, tmp_path, PAIRS, "--top-k", "2", "--samples", "5")
    assert rc == 0
    assert len(df) == 10 and list(df.row) == list(range(1, 11))
    status = dict(zip(df.row, df.status))
    for ok in (1, 2, 3, 4, 10):  # known ids, a new drug as SMILES on either side, two new drugs
        assert status[ok] == "ok", status
    assert "unknown DrugBank id DB99999" in status[5]
    assert "invalid SMILES" in status[6]
    assert "duplicate of row 1" in status[7]
    assert "empty" in status[8]
    assert "same drug" in status[9]
    good = df[df.status == "ok"]
    assert good.probability.between(0, 1).all() and (good.uncertainty >= 0).all()
    assert (good.type1_prob >= good.type2_prob).all()
    row1 = good[good.row == 1].iloc[0]
    assert "DB00001" in row1.type1_description and "DB00002" in row1.type1_description
    assert "#Drug" not in row1.type1_description
    text = capsys.readouterr().out
    assert "predicted 5 of 10 rows" in text and "skipped 5" in text and "row 6:" in text


def test_types_are_numbered_like_interaction_information(drugbank_ckpt, tmp_path):
    """Types 1..86 and the description of type k is the file's 'DDI type k'."""
    import vgraph
    _, info = vgraph.load(drugbank_ckpt, with_info=True)
    rc, df = _predict(drugbank_ckpt, tmp_path, "drug1,drug2\nDB00001,DB00002\nDB00003,DB00004\n",
                      "--top-k", "86", "--samples", "0")
    assert rc == 0
    for _, row in df.iterrows():
        types = [int(row[f"type{t}"]) for t in range(1, 87)]
        assert sorted(types) == list(range(1, 87))
        for t in (1, 2, 3):
            k = int(row[f"type{t}"])
            text = info.meta["descriptions"][k - 1]
            assert row[f"type{t}_description"] == text.replace("#Drug1", row.drug1).replace("#Drug2", row.drug2)
    # the fixture gives type 3 ("DDI type 3") a description of its own
    row = df.iloc[0]
    where = [t for t in range(1, 87) if int(row[f"type{t}"]) == 3][0]
    assert row[f"type{where}_description"].startswith("The risk of bleeding")


def test_known_drug_as_smiles_and_lowercase_id_are_the_known_drug(drugbank_ckpt, tmp_path):
    # DB00003 is benzene: another way to write it, and its id in lower case
    text = "drug1,drug2\nDB00003,DB00001\nC1=CC=CC=C1,DB00001\ndb00003,db00001\n"
    rc, df = _predict(drugbank_ckpt, tmp_path, text, "--samples", "7")
    assert rc == 0 and list(df.status) == ["ok"] * 3
    cols = ["probability", "uncertainty", "type1", "type1_prob", "type2_prob"]
    assert df.loc[0, cols].tolist() == df.loc[1, cols].tolist() == df.loc[2, cols].tolist()
    assert df.loc[1, "type1_description"] == df.loc[0, "type1_description"]  # named by its id


def test_samples_zero_is_the_posterior_mean(drugbank_ckpt, tmp_path):
    import vgraph
    from vgraph.data.drugbank import ddi_graph
    from vgraph.chem.descriptors import DrugFeaturizer
    rc, df = _predict(drugbank_ckpt, tmp_path, "drug1,drug2\nDB00001,DB00002\n", "--samples", "0")
    assert rc == 0 and df.status[0] == "ok"
    assert df.uncertainty.isna().all() and df.type1_std.isna().all()
    bundle, info = vgraph.load(drugbank_ckpt, with_info=True)
    feat = DrugFeaturizer.from_state(info.transform["featurizer"])
    x = feat.transform_raw(bundle.raw_desc.numpy(), bundle.raw_fps.numpy().astype("float32"))
    with torch.no_grad():
        mu, _ = bundle.model.posterior(x, ddi_graph(bundle.train_pairs, len(SMILES)))
        temperature = info.meta["temperature"]  # fitted on validation by vgraph ddi
        expected = torch.sigmoid(bundle.model.decode(mu, torch.tensor([[0], [1]])) / temperature)[0]
    assert df.probability[0] == round(float(expected.max()), 6)
    assert int(df.type1[0]) == int(expected.argmax()) + 1
    # and a sampled run differs from it (it does draw samples)
    _, sampled = _predict(drugbank_ckpt, tmp_path, "drug1,drug2\nDB00001,DB00002\n", "--samples", "5",
                          name="s.csv")
    assert sampled.uncertainty[0] > 0


@pytest.mark.parametrize("samples", ["0", "6"])
def test_a_row_does_not_depend_on_the_other_rows(drugbank_ckpt, tmp_path, samples):
    rows = ["DB00001,DB00002", "DB00001,CCCCCCO", "CCOC(=O)C,CC(=O)N"]
    extra = ["DB00003,CCCl", "c1ccccc1O,DB00005", "CCCCCCCCO,DB00004", "OCC(O)CO,CC#N", "DB00007,DB00008"]
    _, big = _predict(drugbank_ckpt, tmp_path, "drug1,drug2\n" + "\n".join(extra[:2] + rows + extra[2:]) + "\n",
                      "--samples", samples, name="big.csv")
    for i, row in enumerate(rows):
        _, alone = _predict(drugbank_ckpt, tmp_path, f"drug1,drug2\n{row}\n", "--samples", samples,
                            name=f"alone{i}.csv")
        a = alone.drop(columns=["row"]).iloc[0]
        b = big[(big.drug1 + "," + big.drug2) == row].drop(columns=["row"]).iloc[0]
        assert a.status == "ok"
        pd.testing.assert_series_equal(a, b, check_names=False)


def test_first_featurisation_shows_a_note_and_a_bar(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VGRAPH_CACHE", str(tmp_path / "cache"))
    write_drugbank(tmp_path / "data")
    summary = train_ddi.main(["--dataset", "drugbank", "--epochs", "1", "--hidden", "8", "--latent", "4",
                              "--batch-size", "64", "--root", str(tmp_path / "data"),
                              "--out", str(tmp_path / "run"), "--no-plot"])
    err = capsys.readouterr().err
    assert "featurising 8 drugs (RDKit descriptors + Morgan bits); cached in" in err
    assert "featurising drugs:" in err and "/8 [" in err  # the tqdm bar
    assert "test_auroc" in summary["metrics"]
    train_ddi.main(["--dataset", "drugbank", "--epochs", "1", "--hidden", "8", "--latent", "4",
                    "--batch-size", "64", "--root", str(tmp_path / "data"), "--out", str(tmp_path / "run2"),
                    "--no-plot", "--no-progress"])
    assert "featurising" not in capsys.readouterr().err  # cached: no note the second time
    monkeypatch.setenv("VGRAPH_CACHE", str(tmp_path / "cache2"))
    train_ddi.main(["--dataset", "drugbank", "--epochs", "1", "--hidden", "8", "--latent", "4",
                    "--batch-size", "64", "--root", str(tmp_path / "data"), "--out", str(tmp_path / "run3"),
                    "--no-plot", "--no-progress"])
    err = capsys.readouterr().err
    assert "featurising 8 drugs" in err and "featurising drugs:" not in err  # the note, no bar


def test_no_predictable_row_exits_nonzero(drugbank_ckpt, tmp_path, capsys):
    rc, _ = _predict(drugbank_ckpt, tmp_path, "drug1,drug2\nDB99999,DB00001\n")
    assert rc == 1 and "no row could be predicted" in capsys.readouterr().err


def test_bad_header_and_bad_checkpoints(drugbank_ckpt, tmp_path, capsys):
    rc, _ = _predict(drugbank_ckpt, tmp_path, "a,b\nDB00001,DB00002\n")
    assert rc == 1 and "lacks column" in capsys.readouterr().err
    good = "drug1,drug2\nDB00001,DB00002\n"
    truncated = tmp_path / "trunc.pt"
    truncated.write_bytes(drugbank_ckpt.read_bytes()[:1000])
    rc, _ = _predict(truncated, tmp_path, good)
    err = capsys.readouterr().err
    assert rc == 1 and "corrupt or truncated" in err and len(err.strip().splitlines()) == 1
    from vgraph.train.checkpoint import config_fingerprint, save_checkpoint
    old = tmp_path / "old.pt"  # the format train_ddi.py wrote before model files described themselves
    save_checkpoint(old, {"kind": "drugbank", "config": {}, "model": {}}, config_fingerprint({"kind": "drugbank"}))
    rc, _ = _predict(old, tmp_path, good)
    err = capsys.readouterr().err
    assert rc == 1 and "not a DDI model file of this vgraph" in err and "retrain" in err
    assert len(err.strip().splitlines()) == 1
    from vgraph.hub import save_model
    from vgraph.models.ddi import EmbeddingLinkPredictor
    other = tmp_path / "other.pt"  # a model file, but not one predict-ddi can use
    kwargs = {"num_nodes": 5, "embedding_dim": 4, "hidden_channels": 4}
    save_model(other, EmbeddingLinkPredictor(**kwargs), builder=EmbeddingLinkPredictor, kwargs=kwargs)
    rc, _ = _predict(other, tmp_path, good)
    assert rc == 1 and "not a DDI model" in capsys.readouterr().err


@pytest.mark.parametrize("job,argv,message", [
    (predict_ddi, ["--top-k", "0"], "--top-k: must be >= 1"),
    (predict_ddi, ["--samples", "-1"], "--samples: must be >= 0"),
    (train_ddi, ["--epochs", "0"], "--epochs: must be >= 1"),
    (train_ddi, ["--lr", "-1"], "--lr: must be > 0"),
    (train_ddi, ["--dropout", "1.5"], "--dropout: must be < 1"),
    (train_ddi, ["--dataset", "drugbank", "--isolate", "1"], "--isolate: must be < 1"),
    (train_ddi, ["--hidden", "0"], "--hidden: must be >= 1"),
    (train_ddi, ["--runs", "0"], "--runs: must be >= 1"),
    (train_ddi, ["--threads", "-1"], "--threads: must be >= 1"),
    (train_ddi, ["--device", "tpu"], "device 'tpu'"),
    (train_ddi, ["--device", "cuda"], "trains on the CPU only"),
    (train_ddi, ["--dataset", "drugbank", "--folds", "3"], "--folds: must be <= 2"),
    (train_ddi, ["--dataset", "drugbank", "--folds", "1"], "--folds applies to --protocol cold only"),
    (train_ddi, ["--dataset", "drugbank", "--protocol", "cold", "--runs", "2"], "one run per --folds entry"),
    (train_ddi, ["--latent", "8"], "--latent applies to --dataset drugbank only"),
    (train_ddi, ["--dataset", "drugbank", "--conv", "gcn"], "--conv applies to --dataset ogbl-ddi only"),
    (train_ddi, ["--layers", "0"], "--layers must be >= 1 for ogbl-ddi"),
    (train_ddi, ["--beta", "0.5"], "the KL flags need --variational"),
])
def test_bad_flags_are_one_line_exit_2(job, argv, message, tmp_path, capsys):
    base = ["--checkpoint", "x.pt", "--pairs", "p.csv", "--out", str(tmp_path / "o.csv")] \
        if job is predict_ddi else ["--out", str(tmp_path / "run")]
    with pytest.raises(SystemExit) as exc:
        job.main(base + argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_cold_protocol_runs_one_run_per_fold(tmp_path):
    write_drugbank(tmp_path / "data")
    summary = train_ddi.main(["--dataset", "drugbank", "--protocol", "cold", "--folds", "0", "--epochs", "1",
                              "--hidden", "8", "--latent", "4", "--batch-size", "64", "--root",
                              str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--no-progress"])
    assert len(summary["metrics"]["s1_auroc"]["runs"]) == 1
    assert summary["per_run"][0]["extra"]["split"]["protocol"] == "cold0"
    assert (tmp_path / "run" / "model.pt").is_file() and (tmp_path / "run" / "summary.json").is_file()


def test_ogbl_checkpoint_round_trip(tmp_path):
    write_ogbl(tmp_path / "data")
    out = tmp_path / "run"
    summary = train_ddi.main(["--dataset", "ogbl-ddi", "--epochs", "3", "--hidden", "16",
                              "--batch-size", "256", "--root", str(tmp_path / "data"),
                              "--out", str(out), "--no-progress", "--no-plot", "--runs", "2"])
    assert len(summary["metrics"]["test_hits@20"]["runs"]) == 2
    rc, df = _predict(out / "model.pt", tmp_path, "drug1,drug2\nDB00001,DB00002\n0,39\ndb00001,db00002\nDB00001,CCO\n")
    assert rc == 0 and list(df.status[:3]) == ["ok", "ok", "ok"] and "SMILES" in df.status[3]
    assert df.probability[0] == df.probability[2]
    _, alone = _predict(out / "model.pt", tmp_path, "drug1,drug2\n0,39\n", name="one.csv")
    assert alone.probability[0] == df.probability[1]


def test_wrappers_and_vgraph_command_keep_the_exit_codes(drugbank_ckpt, tmp_path):
    """scripts/*.py and `vgraph <job>` are the same jobs: same one-line errors and exit codes."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo)}
    pairs = tmp_path / "p.csv"
    pairs.write_text("drug1,drug2\nDB99999,DB00001\n")
    base = ["--checkpoint", str(drugbank_ckpt), "--pairs", str(pairs), "--out", str(tmp_path / "o.csv")]
    for cmd, code, message in (
            ([str(repo / "scripts" / "predict_ddi.py"), *base, "--top-k", "0"], 2, "--top-k: must be >= 1"),
            (["-m", "vgraph.cli", "predict-ddi", *base], 1, "error: no row could be predicted"),
            ([str(repo / "scripts" / "train_ddi.py"), "--epochs", "0"], 2, "--epochs: must be >= 1")):
        res = subprocess.run([sys.executable, *cmd], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert res.returncode == code and message in res.stderr, (cmd, res.stderr)
        assert "Traceback" not in res.stderr

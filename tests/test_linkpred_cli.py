"""`vgraph linkpred` / `vgraph predict-links` as a user meets them: every bad flag is one line
and exit 2, bad files and checkpoints one line and exit 1, resume rules, packaged data offline."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vgraph.cli import linkpred, predict_links

ROOT = Path(__file__).resolve().parent.parent


def two_communities_csv(path, n=40, seed=0, named=False):
    g = torch.Generator().manual_seed(seed)
    pairs = torch.combinations(torch.arange(n)).t()
    same = (pairs[0] < n // 2) == (pairs[1] < n // 2)
    keep = torch.rand(pairs.size(1), generator=g) < torch.where(same, 0.35, 0.02)
    name = (lambda i: f"p{i}") if named else str
    path.write_text("src,dst\n" + "".join(f"{name(u)},{name(v)}\n" for u, v in pairs[:, keep].t().tolist()))
    return path


def run(argv, capsys):
    """main() in-process: (exit code, stdout, stderr without graph_io's "note:" lines)."""
    try:
        linkpred.main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        if not isinstance(exc.code, int) and exc.code is not None:
            print(exc.code, file=sys.stderr)  # what the interpreter would print on exit
    out = capsys.readouterr()
    err = "".join(line for line in out.err.splitlines(True) if not line.startswith("note: "))
    return code, out.out, err


TINY = ["--epochs", "2", "--no-progress", "--no-plot", "--threads", "1", "--val-ratio", "0.1",
        "--test-ratio", "0.2"]


@pytest.mark.parametrize("flags,message", [
    (["--epochs", "0"], "argument --epochs: must be >= 1, got 0"),
    (["--runs", "0"], "argument --runs: must be >= 1, got 0"),
    (["--lr", "-1"], "argument --lr: must be > 0, got -1"),
    (["--val-ratio", "0.99"], "--val-ratio 0.99 + --test-ratio 0.1 must be below 1 to leave training edges"),
    (["--val-ratio", "0.5", "--test-ratio", "0.5"], "--val-ratio 0.5 + --test-ratio 0.5 must be below 1"),
    (["--val-ratio", "1"], "argument --val-ratio: must be < 1, got 1"),
    (["--test-ratio", "0"], "argument --test-ratio: must be > 0, got 0"),
    (["--dropout", "1.5"], "argument --dropout: must be < 1, got 1.5"),
    (["--threads", "-1"], "argument --threads: must be >= 1, got -1"),
    (["--device", "tpu"], "argument --device: unknown device 'tpu' (use cpu, cuda or cuda:N)"),
    (["--hidden", "0"], "argument --hidden: must be >= 1, got 0"),
    (["--latent", "0"], "argument --latent: must be >= 1, got 0"),
    (["--features", "x.csv"], "--features is for an edge-list --dataset; Cora comes with its own features"),
])
def test_bad_flags_are_one_line_exit_2(flags, message, capsys, tmp_path):
    code, out, err = run(["--out", str(tmp_path / "o"), *flags], capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("vgraph linkpred: error: ") and message in err, err
    assert not (tmp_path / "o").exists()


def test_edge_list_run_saves_a_model_that_predict_links_uses(tmp_path, capsys):
    edges = two_communities_csv(tmp_path / "g.csv", named=True)
    out = tmp_path / "o"
    code, stdout, err = run(["--dataset", str(edges), "--out", str(out), "--model", "gae", *TINY], capsys)
    assert code == 0, err
    assert "loss auto -> dense (40 nodes <= 20000)" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["loss"]["chosen"] == "dense" and summary["config"]["loss"] == "dense"
    ids = (out / "node_ids.csv").read_text().splitlines()
    assert ids[0] == "index,node_id" and ids[1] == "0,p0" and len(ids) == 41
    import vgraph
    model, info = vgraph.load(out / "run0" / "model.pt", with_info=True)
    assert type(model).__name__ == "GAE" and info.transform["num_nodes"] == 40
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("a,b\np0,p1\n\np0,nobody\np3\np2,p30\n")
    scores = tmp_path / "scores.csv"
    predict_links.main(["--checkpoint", str(out / "run0" / "model.pt"), "--pairs", str(pairs),
                        "--out", str(scores)])
    assert "scored 2 of 5 pairs (3 rows with a problem: see the status column)" in capsys.readouterr().out
    rows = scores.read_text().splitlines()
    assert rows[0] == "line,src,dst,probability,known_edge,status"
    status = [r.rsplit(",", 1)[1] for r in rows[1:]]
    assert status == ["ok", "empty row", "unknown node 'nobody'", "missing node id", "ok"]
    assert 0 < float(rows[1].split(",")[3]) < 1


def test_predict_links_integer_ids_and_bad_checkpoint(tmp_path, capsys):
    edges = two_communities_csv(tmp_path / "g.csv")
    out = tmp_path / "o"
    assert run(["--dataset", str(edges), "--out", str(out), *TINY], capsys)[0] == 0
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("0,1\n0,x\n0,99\n")
    predict_links.main(["--checkpoint", str(out / "run0" / "model.pt"), "--pairs", str(pairs),
                        "--out", str(tmp_path / "s.csv")])
    status = [r.rsplit(",", 1)[1] for r in (tmp_path / "s.csv").read_text().splitlines()[1:]]
    assert status == ["ok", "node id 'x' is not an integer", "unknown node 99 (ids are 0..39)"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        predict_links.main(["--checkpoint", str(out / "run0" / "last.pt"), "--pairs", str(pairs)])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err == f"error: {out / 'run0' / 'last.pt'} is a training checkpoint; the model to score with is {out / 'run0' / 'model.pt'}\n"


def test_small_splits_warn(tmp_path, capsys):
    edges = two_communities_csv(tmp_path / "g.csv")
    code, out, _ = run(["--dataset", str(edges), "--out", str(tmp_path / "o"), *TINY], capsys)
    assert code == 0
    import re
    assert re.search(r"^warning: the val split has only \d+ positive edges \(< 30\); the best epoch", out, re.M)
    assert re.search(r"^warning: the test split has only \d+ positive edges \(< 30\)", out, re.M)


def test_auto_loss_samples_above_the_threshold():
    from vgraph.tasks.linkpred import DENSE_MAX_NODES, choose_loss
    assert choose_loss("auto", 2708)[0] == "dense" and choose_loss("auto", 3327)[0] == "dense"
    kind, note = choose_loss("auto", DENSE_MAX_NODES + 1)
    assert kind == "sampled" and note.startswith("loss auto -> sampled")
    assert choose_loss("dense", 10 ** 6)[0] == "dense"


def test_resume_rules(tmp_path, capsys):
    edges = two_communities_csv(tmp_path / "g.csv")
    out = tmp_path / "o"
    base = ["--dataset", str(edges), "--out", str(out), *TINY]
    assert run(base, capsys)[0] == 0
    # rerunning into the same --out without --resume is refused
    code, _, err = run(base, capsys)
    assert code == 1 and "already holds a run; pass --resume to continue it, --overwrite" in err
    # a changed flag names the key that differs
    code, _, err = run([*base, "--resume", "--lr", "0.02"], capsys)
    assert code == 1 and err.count("\n") == 1 and "lr" in err and "only --epochs may change" in err
    # raising --epochs extends the finished run
    code, _, err = run([*base, "--resume", "--epochs", "4"], capsys)
    assert code == 0, err
    log = [json.loads(r) for r in (out / "run0" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [0, 1, 2, 3]
    # a corrupt last.pt: one line, no traceback
    (out / "run0" / "last.pt").write_bytes(b"\x80\x02garbage")
    code, _, err = run([*base, "--resume", "--epochs", "6"], capsys)
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: checkpoint")
    assert "corrupt" in err and "Traceback" not in err


def test_corrupt_checkpoint_in_a_real_process(tmp_path):
    edges = two_communities_csv(tmp_path / "g.csv")
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "vgraph.cli", "linkpred", "--dataset", str(edges), "--out", str(out), *TINY]
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0
    (out / "run0" / "last.pt").write_bytes(b"junk")
    res = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if not line.startswith("note:")]
    assert len(lines) == 1 and lines[0].startswith(
        f"error: checkpoint {out / 'run0' / 'last.pt'} is corrupt or truncated and cannot be read")


def test_cora_offline_from_the_packaged_files(tmp_path, capsys, monkeypatch):
    """Quick start on a fresh machine: no VGRAPH_DATA, no network, no datasets/ folder."""
    import vgraph.paths
    monkeypatch.delenv("VGRAPH_DATA", raising=False)
    monkeypatch.setenv("VGRAPH_OFFLINE", "1")
    monkeypatch.setattr(vgraph.paths, "REPO_DATASETS", tmp_path / "no-datasets")
    from vgraph.data import load_planetoid
    from vgraph.data.planetoid import PACKAGED
    data = load_planetoid("Cora")
    assert data.num_nodes == 2708 and data.edge_index.size(1) == 10556 and data.x.size(1) == 1433
    assert (PACKAGED / "LICENSE").read_text().count("Copyright (c) 2016 Zhilin Yang") == 1
    code, out, err = run(["--dataset", "Cora", "--out", str(tmp_path / "o"), "--epochs", "3",
                          "--no-progress", "--no-plot", "--threads", "1"], capsys)
    assert code == 0, err
    assert "Cora VGAE over 1 run: test_auc 0." in out and "test_ap 0." in out


def test_cli_help_lists_the_jobs(capsys):
    from vgraph.cli import main
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for job in ("linkpred", "predict-links", "bench"):
        assert f"\n  {job} " in out
    with pytest.raises(SystemExit) as exc:
        linkpred.main(["--help"])
    assert exc.value.code == 0 and "(default: 200)" in capsys.readouterr().out


def test_bad_inputs_are_one_line_exit_1(tmp_path, capsys):
    edges = two_communities_csv(tmp_path / "g.csv")
    (tmp_path / "dir").mkdir()
    rows = tmp_path / "x.csv"
    rows.write_text("".join("1,0\n" for _ in range(45)))
    cases = [
        (["--dataset", str(tmp_path / "dir")], f"error: edge-list file {tmp_path / 'dir'} is a directory, not a file"),
        (["--dataset", str(tmp_path / "nope.csv")], f"error: edge-list file {tmp_path / 'nope.csv'} does not exist"),
        (["--dataset", "Coraa"], "error: unknown dataset 'Coraa'"),
        (["--dataset", str(edges), "--features", str(rows)],
         f"error: feature file {rows} has 45 rows, but {edges} has 40 nodes (ids 0..39)"),
    ]
    for k, (flags, message) in enumerate(cases):
        code, _, err = run([*flags, "--out", str(tmp_path / f"o{k}"), *TINY], capsys)
        assert code == 1 and err.count("\n") == 1 and err.startswith(message), err


def test_gzipped_edge_list_trains(tmp_path, capsys):
    import gzip
    plain = two_communities_csv(tmp_path / "g.csv")
    gz = tmp_path / "g.csv.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    code, out, err = run(["--dataset", str(gz), "--out", str(tmp_path / "o"), *TINY], capsys)
    assert code == 0 and "g.csv.gz: 40 nodes" in out, err

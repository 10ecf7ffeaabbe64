"""`vgraph bench vs-pyg` runs both sides on the same split (no timing is asserted)."""
import json

import pytest

from vgraph.cli import bench_vs_pyg


def test_both_sides_train_and_report(tmp_path, capsys):
    edges = tmp_path / "g.csv"
    edges.write_text("".join(f"{i},{(i + 1) % 30}\n{i},{(i + 7) % 30}\n" for i in range(30)))
    out = tmp_path / "o"
    bench_vs_pyg.main(["--dataset", str(edges), "--epochs", "2", "--runs", "1", "--models", "gae",
                       "--losses", "sampled", "dense", "--out", str(out), "--threads", "1"])
    summary = json.loads((out / "summary.json").read_text())
    for key in ("gae/sampled", "gae/dense"):
        row = summary["results"][key]
        assert 0 <= row["pyg"]["metrics"]["test_auc"]["mean"] <= 1
        assert 0 <= row["vgraph"]["metrics"]["test_auc"]["mean"] <= 1
        assert row["epoch_time_ratio_vgraph_over_pyg"] > 0
    assert "epoch-time ratio vgraph/PyG" in capsys.readouterr().out


@pytest.mark.parametrize("flags,message", [(["--epochs", "0"], "argument --epochs: must be >= 1, got 0"),
                                           (["--runs", "0"], "argument --runs: must be >= 1, got 0"),
                                           (["--device", "tpu"], "unknown device 'tpu'")])
def test_bad_flags(flags, message, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_vs_pyg.main(flags)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and message in err

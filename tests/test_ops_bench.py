"""The kernel benchmark runs end to end (``--smoke``: tiny sizes, one round) and writes the
ratio keys that the acceptance numbers are read from. No timing is asserted."""
from __future__ import annotations

import json

from conftest import dataset_path


def test_bench_kernels_smoke_writes_the_ratio_keys(tmp_path):
    dataset_path("ogbl_ddi", "raw", "edge.csv.gz")
    dataset_path("planetoid")
    from vgraph.cli.bench_kernels import main
    main(["--smoke", "--threads", "1", "--out", str(tmp_path)])
    summary = json.loads((tmp_path / "summary.json").read_text())
    ratios = summary["ratios"]
    for key in ("spmm/ddi/F256/mkl_over_vgraph", "spmm/powerlaw/F64/mkl_over_vgraph",
                "spmm/cora/F64/mkl_over_vgraph", "spmm/powerlaw/F64/frac_of_triad",
                "spmm/ddi/F256/frac_of_triad", "spmm/ddi/F256/frac_of_gemm"):
        assert ratios[key] > 0, key
    row = summary["spmm"]["ddi"]["256"]
    assert row["picked"] in ("numba", "dense", "mkl", "native")
    assert set(row["fwdbwd"]) >= {"vgraph", "numba", "mkl", "native", "dense"}
    assert max(row["max_abs_diff_vs_mkl"].values()) < 1e-3  # every path computes the same product
    assert any("power-law graph scaled" in n for n in summary["notes"])
    assert "spmm" in (tmp_path / "table.md").read_text().lower()

"""The compiled CPU kernels, the SpMM dispatch table and the presorted CSR fast path."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vgraph.ops import SparseGraph, SparseMatrix, spmm
from vgraph.ops import backend, cpu_kernels
from vgraph.ops import graph as graph_mod

ROOT = Path(__file__).resolve().parent.parent


def hub_graph(n=600, hub_edges=30_000, other=8_000, seed=0):
    """A power-law-like graph: node 0 receives a third of all edges or more."""
    g = torch.Generator().manual_seed(seed)
    hub = torch.stack([torch.randint(0, n, (hub_edges,), generator=g), torch.zeros(hub_edges, dtype=torch.long)])
    rest = torch.randint(1, n, (2, other), generator=g)
    return torch.cat([rest, hub, rest[:, :50]], 1), n


def sequential_reference(mat: SparseMatrix, x: torch.Tensor) -> torch.Tensor:
    """Row by row, non-zero by non-zero, each product rounded to fp32 then added."""
    ip, ind, val, xn = (t.numpy() for t in (mat.indptr, mat.indices, mat.values, x))
    out = np.zeros((mat.shape[0], x.size(1)), dtype=np.float32)
    for r in range(mat.shape[0]):
        for k in range(ip[r], ip[r + 1]):
            out[r] += val[k] * xn[ind[k]]
    return torch.from_numpy(out)


# ---------------------------------------------------------------------- row split
def test_row_plan_balances_and_splits_only_hub_rows():
    indptr = np.array([0, 3, 3, 5, 40, 41, 44, 50], dtype=np.int64)  # row 3 is a hub (35 of 50)
    cpu_kernels.MIN_CHUNK_NNZ, saved = 1, cpu_kernels.MIN_CHUNK_NNZ
    try:
        cuts = cpu_kernels.row_plan(indptr, 5)
    finally:
        cpu_kernels.MIN_CHUNK_NNZ = saved
    assert cuts[0] == 0 and cuts[-1] == 50 and (np.diff(cuts) >= 0).all()
    inner = [c for c in cuts if c not in indptr]
    assert inner and all(5 < c < 40 for c in inner)  # only the hub row is cut inside
    assert max(np.diff(cuts)) <= 15  # ~ 50 / 5 per chunk, the hub spread over several


@pytest.mark.parametrize("threads", [1, 2])
def test_numba_spmm_is_the_sequential_sum_and_splits_hubs(threads, monkeypatch):
    monkeypatch.setattr(cpu_kernels, "MIN_CHUNK_NNZ", 256)  # many chunks, hub split across them
    ei, n = hub_graph()
    a = SparseGraph(ei, n).gcn_norm()
    x = torch.randn(n, 37)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        out = cpu_kernels.csr_spmm(a, x)
        plan = cpu_kernels._plan(a, cpu_kernels._sync_threads(cpu_kernels.kernels()))
    finally:
        torch.set_num_threads(before)
    ref = sequential_reference(a, x)
    hub_split = ((plan > a.indptr[0].item()) & (plan < a.indptr[1].item())).any()
    assert hub_split  # row 0 (the hub) is cut, so it is summed in pieces
    torch.testing.assert_close(out[0], ref[0], atol=1e-4, rtol=1e-4)
    assert torch.equal(out[1:], ref[1:])  # every other row: exactly the sequential sum


def test_numba_spmm_equals_mkl_digit_for_digit_without_hubs():
    """Rounded products added in CSR order; same digits for any thread count."""
    g = torch.Generator().manual_seed(3)
    ei = torch.randint(0, 2000, (2, 40_000), generator=g)
    a = SparseGraph(ei, 2000).gcn_norm()
    x = torch.randn(2000, 24, generator=g)
    ref = sequential_reference(a, x)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        assert torch.equal(cpu_kernels.csr_spmm(a, x), ref)
    torch.set_num_threads(min(2, os.cpu_count() or 1))


def test_numba_spmm_float64_and_empty_trailing_rows():
    indptr = torch.tensor([0, 2, 2, 3, 3, 3])
    mat = SparseMatrix(indptr, torch.tensor([1, 0, 2]), torch.tensor([1.0, 2.0, 3.0]), 5, 3)
    x = torch.randn(3, 4, dtype=torch.float64)
    out = cpu_kernels.csr_spmm(mat, x)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, mat.to_dense().double() @ x)


# ------------------------------------------------------------------- dispatch rule
def _mat(rows, cols, nnz):
    return SparseMatrix(torch.zeros(rows + 1, dtype=torch.long), torch.zeros(nnz, dtype=torch.long),
                        torch.zeros(nnz), rows, cols)


def test_rule_table(monkeypatch):
    monkeypatch.delenv("VGRAPH_BACKEND", raising=False)
    monkeypatch.setattr(backend, "cpu_profile", lambda refresh=False: {"dense_density": 0.1})
    cpu = torch.device("cpu")
    dense_graph = lambda: _mat(1000, 1000, 150_000)  # noqa: E731  (fresh: decisions are memoised)
    sparse_graph = lambda: _mat(1000, 1000, 50_000)  # noqa: E731
    assert backend.spmm_path(dense_graph(), 256, cpu) == "dense"
    assert backend.spmm_path(dense_graph(), 16, cpu) == "numba"  # too narrow for a GEMM
    assert backend.spmm_path(sparse_graph(), 256, cpu) == "numba"
    assert backend.spmm_path(sparse_graph(), 64, cpu, torch.float16) == "mkl"
    monkeypatch.setattr(backend, "cpu_profile", lambda refresh=False: {"dense_density": 0.001})  # a noisy probe
    assert backend.spmm_path(_mat(1000, 1000, 20_000), 256, cpu) == "numba"  # 2 % < DENSE_MIN_DENSITY
    monkeypatch.setattr(backend, "DENSE_MAX_BYTES", 1000 * 1000 * 4 - 1)
    assert backend.spmm_path(dense_graph(), 256, cpu) == "numba"  # would not fit the cap
    monkeypatch.setattr(backend, "_numba_available", lambda: False)
    assert backend.spmm_path(sparse_graph(), backend.NATIVE_MIN_F, cpu) == "native"
    assert backend.spmm_path(sparse_graph(), 64, cpu) == "mkl"
    mat = sparse_graph()
    backend.spmm_path(mat, 64, cpu)
    assert mat._paths == {(64, torch.float32, "cpu", torch.get_num_threads()): "mkl"}


def test_forced_backend(monkeypatch):
    cpu = torch.device("cpu")
    for forced, path in (("torch", "mkl"), ("dense", "dense"), ("native", "native"), ("numba", "numba")):
        monkeypatch.setenv("VGRAPH_BACKEND", forced)
        assert backend.spmm_path(_mat(5, 5, 3), 8, cpu) == path
        assert backend.choose(cpu, 64) == "torch"
    monkeypatch.setenv("VGRAPH_BACKEND", "numba")
    with pytest.raises(RuntimeError, match="numba"):
        backend.spmm_path(_mat(5, 5, 3), 8, torch.device("cuda"))
    monkeypatch.setenv("VGRAPH_BACKEND", "fastest")
    with pytest.raises(ValueError, match="VGRAPH_BACKEND"):
        backend.spmm_path(_mat(5, 5, 3), 8, cpu)


def test_dense_path_shares_one_matrix_with_its_transpose(monkeypatch):
    monkeypatch.setenv("VGRAPH_BACKEND", "dense")
    ei = torch.randint(0, 30, (2, 200))
    a = SparseGraph(ei, 30).gcn_norm()
    x = torch.randn(30, 5, requires_grad=True)
    spmm(a, x).sum().backward()
    assert a.t._dense.data_ptr() == a._dense.data_ptr()  # the backward's A^T is a view


def test_probe_is_cached_under_vgraph_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VGRAPH_CACHE", str(tmp_path))
    monkeypatch.setattr(backend, "_PROFILES", {})
    calls = []
    real = backend.measure_profile
    monkeypatch.setattr(backend, "measure_profile", lambda: calls.append(1) or real())
    prof = backend.cpu_profile()
    assert 0 < prof["dense_density"] <= 1 and prof["gemm_gflops"] > 0 and prof["spmm_gnzf"] > 0
    stored = json.loads((tmp_path / "ops" / "cpu_probe.json").read_text())
    assert prof["key"] in stored and f"threads={torch.get_num_threads()}" in prof["key"]
    monkeypatch.setattr(backend, "_PROFILES", {})  # a new process: reads the file
    assert backend.cpu_profile()["dense_density"] == prof["dense_density"] and len(calls) == 1


def test_numba_imported_lazily_and_caches_under_vgraph_cache(tmp_path):
    code = ("import sys, torch, vgraph.ops as ops\n"
            "assert 'numba' not in sys.modules, 'imported with vgraph.ops'\n"
            "g = ops.SparseGraph(torch.randint(0, 50, (2, 400)), 50)\n"
            "ops.spmm(g.gcn_norm(), torch.randn(50, 8))\n"
            "assert 'numba' in sys.modules\n"
            "import os; print(os.environ['NUMBA_CACHE_DIR'])\n")
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "VGRAPH_BACKEND")}
    env.update(VGRAPH_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == str(tmp_path / "cache" / "numba")
    assert any((tmp_path / "cache" / "numba").rglob("*.nbi"))  # numba's index files
    assert not list((ROOT / "vgraph").rglob("*.nbi"))  # nothing written into the package


# --------------------------------------------------------------- presorted CSR path
def test_presorted_edges_build_the_same_graph_without_argsort(monkeypatch):
    g = torch.Generator().manual_seed(5)
    n = 3000
    ei = torch.randint(0, n, (2, 90_000), generator=g)
    ei = torch.cat([ei, ei[:, :100], torch.arange(0, n, 7).repeat(2, 1)], 1)  # duplicates, some loops
    keys = torch.unique(ei[1] * n + ei[0])  # sorted by (target, source), as sample_subgraph gives
    grouped = torch.stack([keys % n, keys // n])
    dedup = SparseGraph(grouped[:, torch.randperm(keys.numel(), generator=g)], n)  # shuffled: sorts
    dedup_norm = dedup.gcn_norm()
    _ = dedup_norm.t

    def no_sort(*a, **k):
        raise AssertionError("argsort called on presorted edges")
    monkeypatch.setattr(torch, "argsort", no_sort)
    fast = SparseGraph(grouped, n, _validated=True)
    fast_norm = fast.gcn_norm()
    for x, y in ((fast.indptr, dedup.indptr), (fast.indices, dedup.indices), (fast_norm.indptr, dedup_norm.indptr),
                 (fast_norm.indices, dedup_norm.indices), (fast_norm.values, dedup_norm.values),
                 (fast_norm.t.indices, dedup_norm.t.indices), (fast_norm.t.values, dedup_norm.t.values)):
        assert torch.equal(x, y)


def test_insert_diagonal_equals_the_sorted_concatenation():
    g = torch.Generator().manual_seed(2)
    n = 40
    ei = torch.randint(0, n, (2, 300), generator=g)
    gr = SparseGraph(ei, n)
    has = torch.zeros(n, dtype=torch.bool)
    has[gr.row_index[gr.row_index == gr.indices]] = True
    missing = (~has).nonzero().view(-1)
    got = graph_mod._insert_diagonal(gr.indptr, gr.indices, gr.values, gr.row_index, missing, n)
    rows = torch.cat([gr.row_index, missing])
    cols = torch.cat([gr.indices, missing])
    vals = torch.cat([gr.values, torch.ones(missing.numel())])
    want = graph_mod._csr_from_rows(rows, cols, vals, n)[:3]
    for x, y in zip(got, want):
        assert torch.equal(x, y)


def test_compiled_transpose_equals_the_sort(monkeypatch):
    ei, n = hub_graph(n=500, hub_edges=5000, other=70_000)
    a = SparseGraph(ei, n).gcn_norm()
    fast = graph_mod._transpose(a.indptr, a.indices, a.values, n, n)
    monkeypatch.setattr(graph_mod, "NUMBA_TRANSPOSE_MIN_NNZ", 10**12)
    slow = graph_mod._transpose(a.indptr, a.indices, a.values, n, n)
    for x, y in zip(fast, slow):
        assert torch.equal(x, y)


def test_segment_numba_mean_matches_torch(monkeypatch):
    from vgraph.ops import segment_csr
    indptr = torch.tensor([0, 0, 4, 9, 9, 30])
    src = torch.randn(30, 3, 2)
    monkeypatch.setenv("VGRAPH_BACKEND", "numba")
    out = segment_csr(src, indptr, "mean")
    monkeypatch.setenv("VGRAPH_BACKEND", "mkl")
    ref = segment_csr(src, indptr, "mean")
    assert out.shape == (5, 3, 2)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-6)


def test_kernels_run_from_several_python_threads_at_once():
    """Callers from several threads take turns (numba's workqueue fallback needs it)."""
    from concurrent.futures import ThreadPoolExecutor
    ei, n = hub_graph(n=400, hub_edges=4000, other=20_000)
    a = SparseGraph(ei, n).gcn_norm()
    xs = [torch.randn(n, 16, generator=torch.Generator().manual_seed(i)) for i in range(8)]
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda x: cpu_kernels.csr_spmm(a, x), xs))
    for x, out in zip(xs, outs):
        torch.testing.assert_close(out, a.to_dense() @ x, atol=1e-4, rtol=1e-4)
    if "NUMBA_THREADING_LAYER" not in os.environ:
        assert cpu_kernels.kernels().numba.threading_layer() in ("omp", "tbb", "workqueue")


@pytest.mark.parametrize("min_work", [0, 10**12])  # every call on the pool / every call serial
def test_parallel_and_serial_kernels_agree_with_references(monkeypatch, min_work):
    from vgraph.ops import sddmm, segment_csr
    monkeypatch.setattr(cpu_kernels, "PARALLEL_MIN_WORK", min_work)
    monkeypatch.setenv("VGRAPH_BACKEND", "numba")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ei, n = hub_graph(n=300, hub_edges=3000, other=3000)
        a = SparseGraph(ei, n).gcn_norm()
        x = torch.randn(n, 20)
        assert torch.equal(cpu_kernels.csr_spmm(a, x)[1:], sequential_reference(a, x)[1:])
        za, zb = torch.randn(50, 32, requires_grad=True), torch.randn(40, 32, requires_grad=True)
        pairs = torch.stack([torch.randint(0, 50, (500,)), torch.randint(0, 40, (500,))])
        out = sddmm(za, zb, pairs, method="numba")
        g = torch.randn(500)
        out.backward(g)
        ref_a = torch.zeros(50, 32, dtype=torch.float64).index_add_(0, pairs[0], g.double()[:, None] * zb.double()[pairs[1]])
        torch.testing.assert_close(out.double(), (za.double()[pairs[0]] * zb.double()[pairs[1]]).sum(1).detach(),
                                   atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(za.grad.double(), ref_a.detach(), atol=1e-5, rtol=1e-5)
        indptr = torch.tensor([0, 0, 300, 310, 310, 500])  # one long segment, empty ones
        src = torch.randn(500, 6)
        want = torch.stack([src[indptr[i]:indptr[i + 1]].sum(0) for i in range(5)])
        torch.testing.assert_close(segment_csr(src, indptr, "sum"), want, atol=1e-5, rtol=1e-5)
    finally:
        torch.set_num_threads(before)


def test_one_thread_never_starts_numba_pool(tmp_path):
    """--threads 1 means one thread: numba's pool (whose idle threads cost CPU) stays unstarted."""
    import subprocess
    import sys
    code = (
        "import torch; torch.set_num_threads(1)\n"
        "from vgraph.ops import SparseGraph, spmm, cpu_kernels\n"
        "g = SparseGraph(torch.randint(0, 3000, (2, 40000)), 3000)\n"
        "x = torch.randn(3000, 64, requires_grad=True)\n"
        "import os; os.environ['VGRAPH_BACKEND'] = 'numba'\n"
        "spmm(g, x).sum().backward()\n"
        "assert cpu_kernels._KERNELS is not None, 'the numba path did not run'\n"
        "assert not cpu_kernels._POOL_STARTED\n"
        "print('ok')\n")
    env = {**__import__("os").environ, "VGRAPH_CACHE": str(tmp_path), "VGRAPH_BACKEND": "numba"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]


def test_a_second_process_loads_the_kernels_from_the_disk_cache(tmp_path):
    """Kernels compiled once are reused by the next process (no recompilation, no new files)."""
    import subprocess
    import sys
    code = ("import torch\n"
            "from vgraph.ops import SparseGraph, spmm\n"
            "g = SparseGraph(torch.randint(0, 500, (2, 4000)), 500)\n"
            "spmm(g, torch.randn(500, 8, requires_grad=True)).sum().backward()\n")
    env = {k: v for k, v in __import__("os").environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(VGRAPH_CACHE=str(tmp_path), VGRAPH_BACKEND="numba")
    counts = []
    for _ in range(2):
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                             timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        counts.append(sorted(p.name for p in (tmp_path / "numba").rglob("*.nbc")))
    assert counts[0] and counts[1] == counts[0]


@pytest.mark.parametrize("min_work", [0, 10**12])  # pool / serial
def test_pair_product_kernel_equals_the_gather_product_and_its_gradient(monkeypatch, min_work):
    """``pair_product``'s compiled path: the same products bit for bit, the gradient of both
    endpoints (self-pairs and repeated pairs included) equal to the float64 reference, the
    same digits on one thread and two, and the Hadamard decoder's ``score_pairs`` unchanged."""
    from vgraph.nn.decoders import HadamardMLP
    from vgraph.ops import pair_product
    monkeypatch.setattr(cpu_kernels, "PARALLEL_MIN_WORK", min_work)
    g = torch.Generator().manual_seed(5)
    z0 = torch.randn(30, 24, generator=g)
    pairs = torch.randint(0, 30, (2, 400), generator=g)
    pairs[:, :5] = torch.tensor([[3, 3, 7, 7, 7], [3, 3, 1, 1, 7]])  # self-pairs and repeats
    grad = torch.randn(400, 24, generator=g)
    before, grads = torch.get_num_threads(), []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            z = z0.clone().requires_grad_(True)
            out = pair_product(z, pairs, method="numba")
            assert torch.equal(out, z0[pairs[0]] * z0[pairs[1]])
            out.backward(grad)
            grads.append(z.grad)
    finally:
        torch.set_num_threads(before)
    zd = z0.double().requires_grad_(True)
    (zd[pairs[0]] * zd[pairs[1]]).backward(grad.double())
    torch.testing.assert_close(grads[0].double(), zd.grad, atol=1e-5, rtol=1e-5)
    assert torch.equal(grads[0], grads[1])
    torch.autograd.gradcheck(lambda t: pair_product(t, pairs[:, :60], method="numba"),
                             (z0[:, :4].double().requires_grad_(True),))
    torch.manual_seed(0)
    mlp = HadamardMLP(24, 16, 1, 2, 0.0)
    torch.testing.assert_close(mlp.score_pairs(z0, pairs), mlp(z0[pairs[0]], z0[pairs[1]]))
    with pytest.raises(ValueError, match="pairs must be"):
        pair_product(z0, pairs[0])


def test_compiled_dropout_is_seeded_thread_independent_and_its_own_backward():
    from vgraph.nn.decoders import Dropout
    from vgraph.ops import dropout, random as vrandom
    x = torch.randn(300, 256, generator=torch.Generator().manual_seed(0))
    assert x.numel() >= vrandom.MIN_ELEMENTS
    before, outs = torch.get_num_threads(), []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            torch.manual_seed(7)
            outs.append(dropout(x, 0.3))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(outs[0], outs[1])  # the mask is a hash of (seed, index): no thread dependence
    kept = outs[0] != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.01
    torch.testing.assert_close(outs[0][kept], x[kept] / 0.7)
    torch.manual_seed(8)
    assert not torch.equal(dropout(x, 0.3), outs[0])  # a fresh draw per call
    xr = x.clone().requires_grad_(True)
    torch.manual_seed(9)
    y = dropout(xr, 0.5)
    g = torch.randn_like(y)
    y.backward(g)
    torch.testing.assert_close(xr.grad, g * (y != 0) * 2.0)
    assert dropout(x, 0.5, training=False) is x and dropout(x, 0.0) is x
    with pytest.raises(ValueError, match="dropout probability"):
        dropout(x, 1.0)
    layer = Dropout(0.5).eval()
    assert layer(x) is x

"""Timing helpers and the kernel-level cases of ``vgraph bench kernels``.

Every case times all its contenders round-robin in the same rounds (so they see the same
machine load) and reports medians. The STREAM triad and a square GEMM are contenders of
the SpMM rounds themselves, so the fraction of bandwidth (or FLOP rate) compares numbers
measured seconds apart, not minutes.
"""
from __future__ import annotations

import gc
import random
import statistics
import time

import torch

from vgraph.ops import backend, sddmm, spmm

SPMM_PATHS = ("vgraph", "numba", "mkl", "native", "dense")


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def reset_peak(device) -> int:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    return _rss_kb("VmRSS:") * 1024


def peak_bytes(device, base: int) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated() - base)
    return max(0, _rss_kb("VmHWM:") * 1024 - base)


def time_group(fns: dict, device, repeats: int, warmup: int, budget: float) -> dict:
    """Rounds of several functions: per function the median and min seconds, the number of
    rounds and the peak memory growth of its first call. A group whose first round exceeds
    ``budget / repeats`` runs fewer rounds (at least 1 when ``repeats`` is 1, else at least 3).

    Each round runs the functions in a fresh (seeded) random order. A fixed order, rotated
    or not, gives every function the same predecessor in every round, and a predecessor that
    sweeps memory (the triad, a dense GEMM) leaves the next one cold caches. On Cora (F=64,
    2 threads, a training on the other core) an SpMM after itself took 0.12 ms and after the
    GEMM or the triad 0.58 ms at best, for MKL and the compiled kernel alike. In a random
    order every function follows every other equally often."""
    out, first = {}, {}
    for key, fn in fns.items():
        base = reset_peak(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        first[key] = time.perf_counter() - t0
        out[key] = {"peak_mem_mb": round(peak_bytes(device, base) / 2**20, 1)}
    slowest = sum(first.values())
    for _ in range(max(0, warmup - 1)):
        if slowest * warmup > budget:
            break
        for fn in fns.values():
            fn()
    sync(device)
    floor = 1 if repeats == 1 else 3
    n = repeats if slowest * repeats <= budget else max(floor, int(budget / max(slowest, 1e-9)))
    times = {k: [] for k in fns}
    keys = list(fns)
    rng = random.Random(len(keys))
    for _ in range(n):
        rng.shuffle(keys)
        for key in keys:
            t0 = time.perf_counter()
            fns[key]()
            sync(device)
            times[key].append(time.perf_counter() - t0)
    for key, ts in times.items():
        out[key].update(median_s=statistics.median(ts), min_s=min(ts), repeats=n)
    return out


def triad(device, n: int = 32 * 2**20):
    """``(fn, bytes)`` of a STREAM triad ``a = b + 3 c`` over three arrays of ``n`` floats."""
    a, b, c = torch.empty(n, device=device), torch.rand(n, device=device), torch.rand(n, device=device)
    return (lambda: torch.add(b, c, alpha=3.0, out=a)), 3 * n * 4


def gemm(device, n: int = 2048, f: int = 256):
    """``(fn, flops)`` of a square-by-wide fp32 GEMM (the shape of a dense-adjacency SpMM)."""
    a, x = torch.randn(n, n, device=device), torch.randn(n, f, device=device)
    return (lambda: torch.mm(a, x)), 2 * n * n * f


def powerlaw_graph(num_nodes: int, num_edges: int, seed: int = 0):
    """Directed Zipf-like graph (exponent 0.8), coalesced, no self-loops: ``(edge_index, n)``."""
    g = torch.Generator().manual_seed(seed)
    w = torch.arange(1, num_nodes + 1, dtype=torch.float64).pow(-0.8)
    cdf = torch.cumsum(w, 0)
    cdf /= cdf[-1].clone()
    ids = torch.randperm(num_nodes, generator=g)
    draw = lambda: ids[torch.searchsorted(cdf, torch.rand(num_edges, generator=g, dtype=torch.float64))  # noqa: E731
                       .clamp(max=num_nodes - 1)]
    src, dst = draw(), draw()
    keep = src != dst
    keys = torch.unique(dst[keep] * num_nodes + src[keep])
    return torch.stack([keys % num_nodes, keys // num_nodes]), num_nodes


def spmm_case(a_norm, x0: torch.Tensor, *, device, reps: int, warmup: int, budget: float,
              pyg_spmm=None, triad_fn=None, gemm_fn=None) -> dict:
    """Bare ``A @ X`` on every path: forward (with the triad and a GEMM in the same rounds)
    and forward+backward. ``vgraph`` is the dispatch rule's pick (named in ``picked``)."""
    n_rows, F = a_norm.shape[0], x0.size(1)
    picked = backend.spmm_path(a_norm, F, device, x0.dtype)
    paths = {"vgraph": None, "numba": "numba", "mkl": "mkl", "native": "native"}
    if a_norm.shape[0] * a_norm.shape[1] * 4 <= backend.DENSE_MAX_BYTES:
        paths["dense"] = "dense"
    if device.type == "cuda":
        paths.pop("numba")
        paths["triton"] = "triton"

    def run(path, x):
        with backend.force(path or "auto"):
            return spmm(a_norm, x)
    fwd, fb = {}, {}
    xg = x0.clone().requires_grad_()
    for key, path in paths.items():
        def f(path=path):
            with torch.no_grad():
                run(path, x0)

        def g(path=path):
            run(path, xg).backward(gradient=ones)
            xg.grad = None
        fwd[key], fb[key] = f, g
    ones = torch.ones(n_rows, F, device=device)
    if pyg_spmm is not None:
        xp = x0.clone().requires_grad_()
        fwd["pyg"] = lambda: pyg_spmm(x0.detach())

        def pyg_fb():
            pyg_spmm(xp).backward(gradient=ones)
            xp.grad = None
        fb["pyg"] = pyg_fb
    if triad_fn is not None:
        fwd["triad"] = triad_fn[0]
    if gemm_fn is not None:
        fwd["gemm"] = gemm_fn[0]
    ref = run("mkl", x0)
    errs = {k: float((run(p, x0) - ref).abs().max()) for k, p in paths.items()}
    tf = time_group(fwd, device, reps, warmup, budget)
    tb = time_group(fb, device, reps, warmup, budget)
    nnz = int(a_norm.indices.numel())
    traffic = (a_norm.indptr.numel() * a_norm.indptr.element_size()
               + nnz * (a_norm.indices.element_size() + a_norm.values.element_size())
               + (a_norm.shape[1] + n_rows) * F * x0.element_size())
    row = {"picked": picked, "traffic_mb": round(traffic / 2**20, 2), "max_abs_diff_vs_mkl": errs,
           "fwd": {k: v for k, v in tf.items() if k not in ("triad", "gemm")}, "fwdbwd": tb}
    t_vg = tf["vgraph"]["median_s"]
    row["GBps"] = round(traffic / t_vg / 1e9, 3)
    row["GFLOPs"] = round(2 * nnz * F / t_vg / 1e9, 3)  # useful flops of the sparse product
    if "triad" in tf:
        row["triad_GBps"] = round(triad_fn[1] / tf["triad"]["median_s"] / 1e9, 3)
        row["frac_of_triad"] = round(row["GBps"] / row["triad_GBps"], 4)
    if "gemm" in tf:
        row["gemm_GFLOPs"] = round(gemm_fn[1] / tf["gemm"]["median_s"] / 1e9, 2)
        row["frac_of_gemm"] = round(row["GFLOPs"] / row["gemm_GFLOPs"], 4)
    return row


def pairs_case(z0: torch.Tensor, pairs: torch.Tensor, *, device, reps: int, warmup: int,
               budget: float) -> dict:
    """Pair scoring ``<z_i, z_j>``: the automatic rule against each method, fwd and fwd+bwd."""
    methods = {"vgraph": "auto", "gather": "gather", "sampled_addmm": "sparse", "gram": "gram"}
    if device.type == "cpu":
        methods["numba"] = "numba"
    if z0.size(0) ** 2 * 4 > 512 * 2**20:
        methods.pop("gram")
    zg = z0.clone().requires_grad_()
    fwd, fb = {}, {}
    for key, m in methods.items():
        def f(m=m):
            with torch.no_grad():
                sddmm(z0, z0, pairs, method=m)

        def g(m=m):
            sddmm(zg, zg, pairs, method=m).sum().backward()
            zg.grad = None
        fwd[key], fb[key] = f, g
    with torch.no_grad():
        ref = sddmm(z0, z0, pairs, method="gather")
        errs = {k: float((sddmm(z0, z0, pairs, method=m) - ref).abs().max()) for k, m in methods.items()}
    tf = time_group(fwd, device, reps, warmup, budget)
    tb = time_group(fb, device, reps, warmup, budget)
    return {"num_pairs": int(pairs.size(1)), "max_abs_diff_vs_gather": errs,
            **{k: {"fwd": tf[k], "fwdbwd": tb[k]} for k in methods}}


def render_markdown(r: dict) -> str:
    """The tables of docs/performance.md from a ``summary.json``."""
    ms = lambda t: f"{t['median_s'] * 1e3:.2f}"  # noqa: E731
    lines = [f"Device: **{r['device']}**; torch {r['torch']}, PyG {r.get('torch_geometric', '-')}, "
             f"numba {r.get('numba', '-')}; probe {r.get('probe', {})}; total {r.get('total_s', '?')} s.", ""]
    if r.get("notes"):
        lines += [f"Note: {n}" for n in r["notes"]] + [""]
    lines += ["### Bare SpMM `A @ X`, median ms forward / forward+backward (same rounds)", "",
              "| graph | F | vgraph (picks) | numba | MKL | native | dense | PyG | MKL / vgraph (fwd+bwd) |"
              " GB/s | % of triad | % of GEMM rate |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for g, d in r["spmm"].items():
        for F, row in d.items():
            cells = []
            for k in SPMM_PATHS + ("pyg",):
                if k in row["fwd"]:
                    cells.append(f"{ms(row['fwd'][k])} / {ms(row['fwdbwd'][k])}")
                else:
                    cells.append("-")
            cells[0] += f" ({row['picked']})"
            ratio = row["fwdbwd"]["mkl"]["median_s"] / row["fwdbwd"]["vgraph"]["median_s"]
            tri = f"{row['frac_of_triad'] * 100:.0f}%" if "frac_of_triad" in row else "-"
            gem = f"{row['frac_of_gemm'] * 100:.0f}%" if "frac_of_gemm" in row else "-"
            lines.append(f"| {g} | {F} | " + " | ".join(cells) + f" | {ratio:.2f} | {row['GBps']} | {tri} | {gem} |")
    if r.get("gcn_layer"):
        lines += ["", "### One GCN layer, median ms (forward / forward+backward)", "",
                  "| graph | F | vgraph | PyG edge_index | PyG CSR | torch.sparse | vgraph / PyG edge_index (fwd+bwd) |",
                  "|---|---|---|---|---|---|---|"]
        for g, d in r["gcn_layer"].items():
            for F, row in d.items():
                cells = ["-" if row.get(k) is None else f"{ms(row[k]['fwd'])} / {ms(row[k]['fwdbwd'])}"
                         for k in ("vgraph", "pyg_edge_index", "pyg_csr", "torch_sparse")]
                ratio = (f"{row['vgraph']['fwdbwd']['median_s'] / row['pyg_edge_index']['fwdbwd']['median_s']:.3f}"
                         if "pyg_edge_index" in row else "-")
                lines.append(f"| {g} | {F} | " + " | ".join(cells) + f" | {ratio} |")
    if r.get("pairs"):
        lines += ["", "### Pair scoring `<z_i, z_j>`, median ms (forward / forward+backward)", "",
                  "| graph | F | P | vgraph | numba | gram | sampled_addmm | gather |", "|---|---|---|---|---|---|---|---|"]
        for g, d in r["pairs"].items():
            for F, row in d.items():
                cells = ["-" if k not in row else f"{ms(row[k]['fwd'])} / {ms(row[k]['fwdbwd'])}"
                         for k in ("vgraph", "numba", "gram", "sampled_addmm", "gather")]
                lines.append(f"| {g} | {F} | {row['num_pairs']:,} | " + " | ".join(cells) + " |")
    lines += ["", "### Ratios", ""] + [f"- `{k}`: {v}" for k, v in r.get("ratios", {}).items()]
    return "\n".join(lines) + "\n"

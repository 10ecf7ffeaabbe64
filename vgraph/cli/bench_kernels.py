"""``vgraph bench kernels``: vgraph's SpMM paths vs MKL, torch-native, dense, PyG.

    vgraph bench kernels --quick          # Cora F=64, ogbl-ddi F=256, power-law (200k/2M) F=64
    vgraph bench kernels --out runs/bench_kernels      # Cora, CiteSeer, ogbl-ddi, power-law 1M/10M

Per graph and width: bare SpMM ``A @ X`` on every path (``vgraph`` = the dispatch rule's
pick; numba, MKL, torch-native, dense GEMM, PyG's gather-scatter), forward (with the STREAM
triad and a GEMM in the same rounds) and forward+backward; one GCN layer against PyG's
``GCNConv``; pair scoring. ``summary.json`` holds ``ratios`` such as
``spmm/ddi/F256/mkl_over_vgraph`` (forward+backward medians of the same rounds).
"""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

# sleeping OpenMP threads: on a shared machine spinning ones wait for descheduled peers
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from vgraph.runs import job_entry, job_parser, nonneg_int, positive_float, positive_int, write_json  # noqa: E402

GRAPHS = ("cora", "citeseer", "ddi", "powerlaw")


def load_graph(name: str, args):
    """``(edge_index [2, E] directed, num_nodes, note)``."""
    if name in ("cora", "citeseer"):
        from vgraph.data.registry import load
        data = load(name, args.root)
        return data.edge_index, int(data.num_nodes), None
    if name == "ddi":  # the full graph (all splits), both directions: 2,135,822 edges
        import numpy as np
        import pandas as pd
        from vgraph.paths import data_root
        e = pd.read_csv(data_root(args.root) / "ogbl_ddi" / "raw" / "edge.csv.gz", header=None).values.T
        ei = torch.from_numpy(np.ascontiguousarray(e)).long()
        n, note = int(ei.max()) + 1, None
        if args.smoke:  # plumbing only: the same nodes, a slice of the edges
            ei, note = ei[:, :20_000], "--smoke: ogbl-ddi cut to its first 20,000 edges"
        return torch.cat([ei, ei.flip(0)], 1), n, note
    from vgraph.ops.bench import powerlaw_graph
    ei, n = powerlaw_graph(args.synth_nodes, args.synth_edges)
    note = None if (args.synth_nodes, args.synth_edges) == (1_000_000, 10_000_000) else \
        f"power-law graph scaled to {args.synth_nodes:,} nodes / {args.synth_edges:,} edges"
    return ei, n, note


def gcn_case(g, ei, n, F, args, device, budget):
    """One GCN layer, vgraph vs PyG ``GCNConv(cached=True)`` (edge_index and CSR) and plain torch."""
    from torch_geometric.nn import GCNConv as PygGCN
    from torch_geometric.utils import to_torch_csr_tensor
    from vgraph.nn.conv import GCNConv as VgGCN
    from vgraph.ops.bench import time_group
    torch.manual_seed(0)
    x0 = torch.randn(n, F, device=device)
    vg, pyg, pyg_csr = VgGCN(F, F).to(device), PygGCN(F, F, cached=True).to(device), PygGCN(F, F, cached=True).to(device)
    with torch.no_grad():
        pyg.lin.weight.copy_(vg.weight.t())
        pyg_csr.lin.weight.copy_(vg.weight.t())
    csr, adj_t, w = g.gcn_norm().csr, to_torch_csr_tensor(ei.flip(0), size=(n, n)), vg.weight.detach().clone().requires_grad_()
    systems = {"vgraph": lambda x: vg(x, g), "torch_sparse": lambda x: torch.sparse.mm(csr, x @ w),
               "pyg_csr": lambda x: pyg_csr(x, adj_t)}
    if (ei.size(1) + n) * F * 4 / 1e9 <= args.pyg_max_message_gb:
        systems["pyg_edge_index"] = lambda x: pyg(x, ei)
    xg = x0.clone().requires_grad_()
    fwd = {k: (lambda f=f: f(x0).detach()) for k, f in systems.items()}
    fb = {k: (lambda f=f: (f(xg).sum().backward(), setattr(xg, "grad", None))) for k, f in systems.items()}
    with torch.no_grad():
        tf = time_group(fwd, device, args.repeats, args.warmup, budget)
    tb = time_group(fb, device, args.repeats, args.warmup, budget)
    return {k: {"fwd": tf[k], "fwdbwd": tb[k]} for k in systems}


def bench_graph(name, args, device, res):
    from torch_geometric.utils import scatter
    from vgraph.ops import SparseGraph
    from vgraph.ops.bench import gemm, pairs_case, spmm_case, triad
    ei, n, note = load_graph(name, args)
    if note:
        res["notes"].append(note)
    ei = ei.to(device)
    t0 = time.perf_counter()
    g = SparseGraph(ei, n)
    a = g.gcn_norm()
    _ = a.t
    res["graphs"][name] = {"num_nodes": n, "num_edges": int(ei.size(1)), "nnz_gcn": int(a.indices.numel()),
                           "density": round(a.indices.numel() / n / n, 5), "build_s": round(time.perf_counter() - t0, 3)}
    print(f"\n== {name}: {res['graphs'][name]}", flush=True)
    budget = args.case_budget * (3 if ei.size(1) > 5_000_000 else 1)
    src, dst = a.indices, torch.repeat_interleave(torch.arange(n, device=device), a.indptr[1:] - a.indptr[:-1])
    tri, gem = triad(device, args.triad_floats), gemm(device, args.gemm_size, 256)
    for F in (args.widths_large if ei.size(1) > 1_000_000 and args.widths_large else args.widths):
        x0 = torch.randn(n, F, device=device)
        pyg = None
        if src.numel() * F * 4 / 1e9 <= args.pyg_max_message_gb:
            pyg = lambda x: scatter(x[src] * a.values[:, None], dst, 0, dim_size=n, reduce="sum")  # noqa: E731
        row = spmm_case(a, x0, device=device, reps=args.repeats, warmup=args.warmup, budget=budget,
                        pyg_spmm=pyg, triad_fn=tri, gemm_fn=gem)
        res["spmm"].setdefault(name, {})[str(F)] = row
        key = f"spmm/{name}/F{F}"
        for p in ("numba", "native", "dense", "vgraph"):
            if p in row["fwdbwd"]:
                res["ratios"][f"{key}/mkl_over_{p}"] = round(
                    row["fwdbwd"]["mkl"]["median_s"] / row["fwdbwd"][p]["median_s"], 3)
        for k in ("frac_of_triad", "frac_of_gemm"):
            if k in row:
                res["ratios"][f"{key}/{k}"] = row[k]
        print(f"  SpMM F={F:<3} picks {row['picked']:<6} " + "  ".join(
            f"{k} {v['median_s'] * 1e3:.2f}" for k, v in row["fwdbwd"].items()) + " ms fwd+bwd;"
              f" {row['GBps']} GB/s = {row.get('frac_of_triad', 0) * 100:.0f}% of triad", flush=True)
        if args.gcn:
            res["gcn_layer"].setdefault(name, {})[str(F)] = gcn_case(g, ei, n, F, args, device, budget)
        if args.pairs:
            gen = torch.Generator().manual_seed(F)
            num = min(args.max_pairs, 2 * ei.size(1))
            pos = ei[:, torch.randint(0, ei.size(1), (num // 2,), generator=gen).to(device)]
            pairs = torch.cat([pos, torch.randint(0, n, (2, num - pos.size(1)), generator=gen).to(device)], 1)
            res["pairs"].setdefault(name, {})[str(F)] = pairs_case(
                x0, pairs, device=device, reps=args.repeats, warmup=args.warmup, budget=budget)


@job_entry
def main(argv=None, prog="vgraph bench kernels"):
    p = job_parser(prog, __doc__)
    p.add_argument("--quick", action="store_true", help="Cora F=64, ogbl-ddi F=256, power-law 200k/2M F=64; SpMM only")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, one round (tests): the --quick cases end to end")
    p.add_argument("--out", default="runs/bench_kernels")
    p.add_argument("--root", default=None, help="data root (default $VGRAPH_DATA, else datasets/)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--graphs", nargs="+", choices=GRAPHS, default=list(GRAPHS))
    p.add_argument("--widths", nargs="+", type=positive_int, default=[16, 64, 256])
    p.add_argument("--widths-large", nargs="+", type=positive_int, default=None, help="widths for graphs > 1 M edges")
    p.add_argument("--repeats", type=positive_int, default=20)
    p.add_argument("--warmup", type=nonneg_int, default=3)
    p.add_argument("--case-budget", type=positive_float, default=30.0, help="seconds per timed group")
    p.add_argument("--max-pairs", type=positive_int, default=1_000_000)
    p.add_argument("--synth-nodes", type=positive_int, default=1_000_000)
    p.add_argument("--synth-edges", type=positive_int, default=10_000_000)
    p.add_argument("--pyg-max-message-gb", type=positive_float, default=2.5, help="skip PyG's [E, F] messages above this")
    p.add_argument("--triad-floats", type=positive_int, default=32 * 2**20)
    p.add_argument("--gemm-size", type=positive_int, default=2048)
    p.add_argument("--no-gcn", dest="gcn", action="store_false", help="skip the GCN-layer comparison with PyG")
    p.add_argument("--no-pairs", dest="pairs", action="store_false")
    p.add_argument("--render", metavar="SUMMARY_JSON", help="only print the markdown tables of a summary")
    args = p.parse_args(argv)
    from vgraph.ops import backend
    from vgraph.ops.bench import render_markdown
    if args.render:
        print(render_markdown(json.loads(Path(args.render).read_text())))
        return
    quick = {"cora": [64], "ddi": [256], "powerlaw": [64]}
    if args.quick or args.smoke:
        args.graphs, args.gcn, args.pairs, args.warmup = list(quick), False, False, 1
        args.synth_nodes, args.synth_edges = (200_000, 2_000_000) if args.quick else (5_000, 50_000)
        args.repeats = 1 if args.smoke else min(args.repeats, 7)
        args.case_budget, args.pyg_max_message_gb = min(args.case_budget, 10.0), 0.6
        if args.smoke:
            args.triad_floats, args.gemm_size = 2**20, 256
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else
           f"{platform.machine()} ({backend.cpu_name()}), {torch.get_num_threads()} threads",
           "torch": torch.__version__, "python": platform.python_version(), "args": vars(args),
           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "notes": [], "graphs": {}, "spmm": {},
           "gcn_layer": {}, "pairs": {}, "ratios": {}}
    for mod in ("torch_geometric", "numba"):
        try:
            res[mod] = __import__(mod).__version__
        except Exception:
            pass
    if device.type == "cpu":
        res["probe"] = {k: v for k, v in backend.cpu_profile(refresh=True).items() if k != "key"}
    t_start = time.perf_counter()
    for name in args.graphs:
        if args.quick or args.smoke:
            args.widths = args.widths_large = quick[name]
        bench_graph(name, args, device, res)
        res["total_s"] = round(time.perf_counter() - t_start, 1)
        write_json(out / "summary.json", res)
    (out / "table.md").write_text(render_markdown(res))
    print("\nratios (MKL time / path time, fwd+bwd; fractions of the triad / GEMM rate):")
    for k, v in res["ratios"].items():
        print(f"  {k:<48} {v}")
    print(f"wrote {out / 'summary.json'} ({res['total_s']} s)")

"""The common-neighbour sum of the ``ncn`` decoder: compiled bit-scan vs dense AND @ z.

    vgraph bench common-neighbors --out runs/bench_cn          # ogbl-ddi if under the data root
    vgraph bench common-neighbors --synthetic --out runs/bench_cn

For a batch of ogbl-ddi training edges and as many uniform random pairs (the decoder's
training call), times ``sum_{k in N(i) ∩ N(j)} z_k`` forward + backward at each width ``F``:

* ``dense``: the AND of the two bool adjacency rows, chunk by chunk, times ``z`` (the path
  before session 10, and the fallback without numba);
* ``compiled``: :func:`vgraph.nn.decoders.common_neighbor_sum` on CPU (packed rows, popcount
  and bit scan, nothing ``[P, N]`` stored).

Thread CPU time (``time.thread_time``) and wall time, median over ``--rounds`` rounds with the two
paths interleaved in one process, so a shared machine slows both alike. ``--synthetic`` (or no
ogbl-ddi under the data root) uses a random graph with ogbl-ddi's size and density and says so.
Writes ``summary.json`` (``ratios["cn/F{F}/dense_over_compiled"]``, thread time).
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch

from vgraph.runs import job_entry, job_parser, positive_int, setup_runtime, versions, write_json


def build_parser(prog=None):
    p = job_parser(prog, __doc__)
    p.add_argument("--pairs", type=positive_int, default=65536, help="training edges (and as many random pairs)")
    p.add_argument("--widths", type=positive_int, nargs="+", default=[32, 256], help="columns of z")
    p.add_argument("--rounds", type=positive_int, default=3)
    p.add_argument("--synthetic", action="store_true", help="a random graph of ogbl-ddi's size and density")
    p.add_argument("--root", default=None, help="data root (else $VGRAPH_DATA, else datasets/)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch / numba threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/bench_cn", help="output directory")
    return p


def _graph(args, gen):
    from vgraph.errors import MissingDataError
    if not args.synthetic:
        try:
            from vgraph.data import load
            data = load("ogbl-ddi", args.root)
            return data.num_nodes, data.train_edge.t(), "ogbl-ddi training graph"
        except MissingDataError as exc:
            print(f"note: {exc}; using the synthetic graph", flush=True)
    n, m = 4267, 1067911
    e = torch.randint(0, n, (2, int(m * 1.02)), generator=gen)
    e = e[:, e[0] != e[1]][:, :m]
    return n, e, f"synthetic: {n} nodes, {m} uniform random edges (ogbl-ddi's size)"


def _dense(z, pairs, adjacency, chunk=8192):
    out = [(adjacency[pairs[0, s:s + chunk]] & adjacency[pairs[1, s:s + chunk]]).to(z.dtype) @ z
           for s in range(0, pairs.size(1), chunk)]
    return torch.cat(out)


@job_entry
def main(argv=None, prog=None):
    args = build_parser(prog).parse_args(argv)
    out = setup_runtime(args)
    from vgraph.nn.decoders import common_neighbor_sum
    from vgraph.ops import cpu_kernels
    gen = torch.Generator().manual_seed(args.seed)
    n, edges, graph_note = _graph(args, gen)
    adjacency = torch.zeros(n, n, dtype=torch.bool)
    adjacency[edges[0], edges[1]] = True
    adjacency[edges[1], edges[0]] = True
    adjacency.fill_diagonal_(False)
    bits = cpu_kernels.pack_rows(adjacency)
    pos = edges[:, torch.randperm(edges.size(1), generator=gen)[:args.pairs]]
    pairs = torch.cat([pos, torch.randint(0, n, (2, pos.size(1)), generator=gen)], 1)
    cn_mean = {name: round(float((adjacency[p[0, :4096]] & adjacency[p[1, :4096]]).sum(1).float().mean()), 1)
               for name, p in (("training_edge", pos), ("random_pair", pairs[:, pos.size(1):]))}
    paths = {"dense": lambda z: _dense(z, pairs, adjacency),
             "compiled": lambda z: common_neighbor_sum(z, pairs, adjacency, bits)}
    results, ratios = {}, {}
    for f in args.widths:
        z = torch.randn(n, f, generator=gen, requires_grad=True)
        w = torch.randn(pairs.size(1), f, generator=gen)
        ref = None
        times = {name: {"thread": [], "wall": []} for name in paths}
        for r in range(args.rounds + 1):  # round 0 warms up (compiles / loads the kernel cache)
            for name, fn in paths.items():
                z.grad = None
                t0, w0 = time.thread_time(), time.perf_counter()
                y = fn(z)
                (y * w).sum().backward()
                t1, w1 = time.thread_time(), time.perf_counter()
                if r:
                    times[name]["thread"].append(t1 - t0)
                    times[name]["wall"].append(w1 - w0)
                if ref is None:
                    ref = (y.detach(), z.grad.clone())
                elif r == 0:
                    assert torch.allclose(y, ref[0], rtol=1e-4, atol=1e-3), "the two paths disagree"
        med = {name: {k: round(statistics.median(v), 4) for k, v in t.items()} for name, t in times.items()}
        results[f"F{f}"] = med
        ratios[f"cn/F{f}/dense_over_compiled"] = round(med["dense"]["thread"] / med["compiled"]["thread"], 2)
        print(f"F={f}: dense {med['dense']['thread']:.3f} s, compiled {med['compiled']['thread']:.3f} s thread time "
              f"(fwd+bwd, {pairs.size(1)} pairs): {ratios[f'cn/F{f}/dense_over_compiled']}x", flush=True)
    summary = {"graph": graph_note, "pairs": int(pairs.size(1)), "mean_common_neighbours": cn_mean,
               "threads": args.threads, "rounds": args.rounds, "seconds": results, "ratios": ratios,
               "config": vars(args), "versions": versions()}
    write_json(Path(out) / "summary.json", summary)
    return summary

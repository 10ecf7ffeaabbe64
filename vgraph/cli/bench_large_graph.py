"""``vgraph bench large-graph``: full batch vs neighbour-sampled mini-batch, memory and time.

    vgraph bench large-graph --nodes 2000000 --edges 20000000 --out runs/bench_large

Builds a synthetic community graph (each edge stays inside its node's community of
``--community`` nodes with probability ``--p-in``), splits it 85/5/10 with
:func:`vgraph.data.random_link_split`, and saves it once. Then each mode runs in its own
process, so its peak resident memory (``ru_maxrss``) is its own:

* ``full``: :class:`vgraph.tasks.LinkPredTask` with the sampled 1:1 loss, one step per epoch
  over all training edges (the dense Kipf loss is estimated, not run: see ``dense``);
* ``minibatch``: the neighbour-sampled mini-batch task; ``--mb-steps`` steps are timed and
  the epoch time is extrapolated to all ``ceil(E_train / batch)`` steps. A sampled
  subgraph's edges arrive sorted by (target, source), so its CSR, normalisation and
  transpose are built without a sort (``csr_build_s`` times that part alone);
* ``dense``: Kipf's all-pairs loss; one row block of :class:`vgraph.nn.losses.AllPairsSoftplus`
  is timed and scaled to ``N`` rows (its ``[N, N]`` logits would need ``4 N^2`` bytes).

Every mode ends with the same full-graph evaluation (val/test AUC, AP). Writes
``results.json`` and a Markdown table (``table.md``) under ``--out``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from vgraph.runs import job_entry, job_parser, nonneg_int, positive_float, positive_int, unit_interval


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def current_rss_gib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30


def make_graph(num_nodes: int, num_edges: int, community: int, p_in: float, dim: int, seed: int):
    """Undirected community graph with at least ``num_edges`` distinct edges, features [N, dim]."""
    g = torch.Generator().manual_seed(seed)
    keys = torch.empty(0, dtype=torch.long)
    while keys.numel() < num_edges:
        m = int((num_edges - keys.numel()) * 1.08) + 1000
        u = torch.randint(0, num_nodes, (m,), generator=g)
        inside = torch.rand(m, generator=g) < p_in
        base = (u // community) * community
        v = torch.where(inside, (base + torch.randint(0, community, (m,), generator=g)).clamp(max=num_nodes - 1),
                        torch.randint(0, num_nodes, (m,), generator=g))
        keep = u != v
        u, v = u[keep], v[keep]
        new = torch.minimum(u, v) * num_nodes + torch.maximum(u, v)
        del u, v, inside, base, keep
        keys = torch.unique(torch.cat([keys, new]))
        del new
    keys = keys[torch.randperm(keys.numel(), generator=g)[:num_edges]]
    edge_index = torch.stack([keys // num_nodes, keys % num_nodes])
    centers = torch.randn(num_nodes // community + 1, dim, generator=g)
    x = centers[torch.arange(num_nodes) // community] + 1.5 * torch.randn(num_nodes, dim, generator=g)
    return edge_index, x


def prepare(args, path: Path):
    from vgraph.data import random_link_split
    t0 = time.perf_counter()
    edge_index, x = make_graph(args.nodes, args.edges, args.community, args.p_in, args.features, args.seed)
    split = random_link_split(edge_index, args.nodes, 0.05, 0.10, seed=args.seed)
    del edge_index
    torch.save({"split": split.__dict__, "x": x}, path)
    return {"prepare_s": time.perf_counter() - t0, "prepare_peak_rss_gib": peak_rss_gib(),
            "split": split.summary()}


def load(path: Path):
    from vgraph.data.split import LinkSplit
    blob = torch.load(path, weights_only=False)
    return LinkSplit(**blob["split"]), blob["x"]


def evaluate(task, model) -> tuple[dict, float]:
    """Full-graph evaluation; under the memory cap it may not fit even when training did."""
    t0 = time.perf_counter()
    try:
        metrics = task.evaluate(model)
    except (RuntimeError, MemoryError) as exc:
        metrics = {"error": f"evaluation does not fit: {str(exc)[:160]}"}
    return metrics, time.perf_counter() - t0


def limit_memory(gib: float | None):
    """Cap the address space, so a mode that does not fit fails with an allocation error
    instead of pushing the machine into swap or the OOM killer."""
    if gib:
        cap = int(gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def run_full(args, path: Path) -> dict:
    from vgraph.models.factory import build_autoencoder
    from vgraph.tasks import LinkPredTask
    split, x = load(path)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    task = LinkPredTask(split, x, loss="sampled", seed=args.seed)
    setup_s = time.perf_counter() - t0
    setup_rss = current_rss_gib()
    model = build_autoencoder(args.model, x.size(1), args.hidden, args.latent)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    limit_memory(args.mem_limit_gib)
    times = []
    for epoch in range(args.full_epochs):
        t0 = time.perf_counter()
        model.train()
        opt.zero_grad(set_to_none=True)
        loss = task.training_loss(model, epoch)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    train_peak = peak_rss_gib()
    metrics, eval_s = evaluate(task, model)
    return {"mode": "full", "setup_s": setup_s, "setup_rss_gib": setup_rss, "epoch_s": min(times),
            "epoch_times": times, "steps_per_epoch": 1, "train_peak_rss_gib": train_peak,
            "peak_rss_gib": peak_rss_gib(), "eval_s": eval_s, "metrics": metrics,
            "loss": float(loss)}


def _minibatch_task():
    from vgraph.tasks.linkpred import MiniBatchLinkPredTask
    return MiniBatchLinkPredTask


def _csr_build_s(batch) -> float:
    """Seconds to build a batch's graph, GCN normalisation and transposed CSR once."""
    from vgraph.ops import SparseGraph
    t0 = time.perf_counter()
    _ = SparseGraph(batch["edge_index"], int(batch["nodes"].numel()), _validated=True).gcn_norm().t
    return time.perf_counter() - t0


def run_minibatch(args, path: Path) -> dict:
    from vgraph.models.factory import build_autoencoder
    MiniBatchLinkPredTask = _minibatch_task()
    split, x = load(path)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    task = MiniBatchLinkPredTask(split, x, num_neighbors=args.num_neighbors, batch_size=args.batch_size,
                                 seed=args.seed, rank=0, world_size=1)
    setup_s = time.perf_counter() - t0
    setup_rss = current_rss_gib()
    model = build_autoencoder(args.model, x.size(1), args.hidden, args.latent)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    limit_memory(args.mem_limit_gib)
    model.train()
    step_times, sample_times, sizes, builds = [], [], [], []
    batches = task.training_batches(0)
    for _ in range(min(args.mb_steps, len(task))):
        t0 = time.perf_counter()
        batch = next(batches)
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = task.batch_loss(model, batch, 0)
        loss.backward()
        opt.step()
        t2 = time.perf_counter()
        sample_times.append(t1 - t0)
        step_times.append(t2 - t0)
        sizes.append((int(batch["nodes"].numel()), int(batch["edge_index"].size(1))))
        builds.append(_csr_build_s(batch))  # outside the timed step
    train_peak = peak_rss_gib()
    warm = step_times[1:] or step_times
    step_s = sorted(warm)[len(warm) // 2]
    metrics, eval_s = evaluate(task, model)
    return {"mode": "minibatch", "setup_s": setup_s, "setup_rss_gib": setup_rss,
            "steps_timed": len(step_times), "step_s_median": step_s,
            "sample_s_median": sorted(sample_times[1:] or sample_times)[len(warm) // 2],
            "csr_build_s_median": sorted(builds[1:] or builds)[len(warm) // 2],
            "steps_per_epoch": len(task), "epoch_s": step_s * len(task),
            "subgraph_nodes_mean": sum(s[0] for s in sizes) / len(sizes),
            "subgraph_edges_mean": sum(s[1] for s in sizes) / len(sizes),
            "train_peak_rss_gib": train_peak, "peak_rss_gib": peak_rss_gib(), "eval_s": eval_s,
            "metrics": metrics, "loss": float(loss)}


def run_dense(args, path: Path) -> dict:
    """Time one row block of the all-pairs softplus on random [N, latent] embeddings."""  # noqa: D401
    n = args.nodes
    z = torch.randn(n, args.latent)
    rows = args.dense_rows
    t0 = time.perf_counter()
    # what each block of vgraph.nn.losses.AllPairsSoftplus does: rows x N logits, softplus, sum
    buf = torch.empty(rows, n)
    torch.mm(z[:rows], z.t(), out=buf)
    torch.nn.functional.softplus(buf).sum()
    block_s = time.perf_counter() - t0
    per_epoch = block_s * n / rows * 3  # forward + backward (two products per block)
    return {"mode": "dense", "block_rows": rows, "block_s": block_s, "epoch_s_estimate": per_epoch,
            "logits_bytes": 4 * n * n, "peak_rss_gib": peak_rss_gib()}


def _auc(r: dict) -> str:
    return f"{r['metrics']['val_auc']:.3f}" if "val_auc" in r["metrics"] else "eval does not fit"


def table(res: dict, args) -> str:
    split = res["prepare"]["split"]
    lines = [f"Synthetic community graph: {args.nodes:,} nodes, {args.edges:,} undirected edges "
             f"({split['train_pos']:,} training edges), {args.features} features, "
             f"{args.model.upper()}, latent {args.latent}; address space capped at {args.mem_limit_gib:g} GiB per mode; "
             f"{res['env']['threads']} torch threads, load average {res['env']['loadavg']} at start.",
             "",
             "| mode | peak memory (GiB) | of which data + graph | time / epoch | steps / epoch | val AUC | note |",
             "|---|---|---|---|---|---|---|"]
    for mode in ("full", "minibatch", "full-wide", "minibatch-wide", "dense"):
        r = res.get(mode)
        if r is None:
            continue
        wide = mode.endswith("-wide")
        hidden = args.wide_hidden if wide else args.hidden
        label = f"{mode.replace('-wide', '')} (sampled loss), hidden {hidden}"
        if "error" in r:
            lines.append(f"| {label} | > {args.mem_limit_gib:g} | — | does not fit | — | — | {r['error'][:90]} |")
            continue
        if mode == "dense":
            lines.append(f"| dense (Kipf) full batch | does not fit: [N, N] logits = {r['logits_bytes'] / 2**40:.0f} TiB"
                         f" (blockwise: O(N·block)) | — | ≈ {r['epoch_s_estimate'] / 3600:.0f} h (est.) | 1 | — |"
                         f" one {r['block_rows']}-row block timed ({r['block_s']:.1f} s) and scaled |")
            continue
        ep = r["epoch_s"]
        ep_s = f"{ep:.1f} s" if ep < 600 else f"{ep / 60:.0f} min" if ep < 7200 else f"{ep / 3600:.1f} h"
        note = ("one step over all training edges" if mode.startswith("full") else
                f"batch {r['batch_size']}, fan-out {list(args.num_neighbors)}: "
                f"~{r['subgraph_nodes_mean'] / 1e3:.0f}k nodes / {r['subgraph_edges_mean'] / 1e6:.2f}M edges"
                f" per step (step {r['step_s_median']:.2f} s: sampling {r['sample_s_median']:.2f} s, CSR build"
                f" {r.get('csr_build_s_median', float('nan')):.2f} s); {r['steps_timed']} steps timed, epoch extrapolated")
        lines.append(f"| {label} | {r['peak_rss_gib']:.2f} (train {r['train_peak_rss_gib']:.2f})"
                     f" | {r['setup_rss_gib']:.2f} | {ep_s} | {r['steps_per_epoch']:,} |"
                     f" {_auc(r)} | {note} |")
    return "\n".join(lines) + "\n"


@job_entry
def main(argv=None, prog="vgraph bench large-graph"):
    p = job_parser(prog, __doc__)
    p.add_argument("--nodes", type=positive_int, default=2_000_000)
    p.add_argument("--edges", type=positive_int, default=20_000_000)
    p.add_argument("--community", type=positive_int, default=100)
    p.add_argument("--p-in", type=unit_interval, default=0.8)
    p.add_argument("--features", type=positive_int, default=16)
    p.add_argument("--model", choices=["gae", "vgae"], default="gae")
    p.add_argument("--hidden", type=positive_int, default=32)
    p.add_argument("--latent", type=positive_int, default=16)
    p.add_argument("--lr", type=positive_float, default=0.01)
    p.add_argument("--full-epochs", type=positive_int, default=2)
    p.add_argument("--batch-size", type=positive_int, default=4096)
    p.add_argument("--num-neighbors", type=int, nargs="+", default=[10, 5])
    p.add_argument("--mb-steps", type=positive_int, default=12)
    p.add_argument("--dense-rows", type=positive_int, default=64)
    p.add_argument("--modes", default="full,minibatch,full-wide,minibatch-wide,dense")
    p.add_argument("--wide-hidden", type=positive_int, default=256, help="hidden width of the *-wide modes")
    p.add_argument("--wide-batch-size", type=positive_int, default=1024)
    p.add_argument("--mem-limit-gib", type=float, default=10.0,
                   help="address-space cap of each training process (0: none)")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--threads", type=positive_int, default=None)
    p.add_argument("--out", default="runs/bench_large")
    p.add_argument("--_mode", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_data", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args._mode:  # child process: one mode, result as JSON on the last line
        mode = args._mode
        if mode.endswith("-wide"):
            args.hidden, args.batch_size = args.wide_hidden, args.wide_batch_size
            mode = mode[: -len("-wide")]
        fn = {"full": run_full, "minibatch": run_minibatch, "dense": run_dense}[mode]
        result = fn(args, Path(args._data))
        result.update(mode=args._mode, hidden=args.hidden, batch_size=args.batch_size)
        print(json.dumps(result))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "graph.pt"
    res = {"args": vars(args), "env": {"threads": torch.get_num_threads(), "torch": torch.__version__,
                                       "platform": platform.platform(),
                                       "loadavg": " ".join(open("/proc/loadavg").read().split()[:3])}}
    print(f"building {args.nodes:,} nodes / {args.edges:,} edges ...", flush=True)
    res["prepare"] = prepare(args, data)
    print(json.dumps(res["prepare"]), flush=True)
    import vgraph
    here = str(Path(vgraph.__file__).resolve().parent.parent)  # children import this same vgraph
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])))
    base = [sys.executable, "-m", "vgraph.cli.bench_large_graph"] + list(argv if argv is not None else sys.argv[1:])
    for mode in args.modes.split(","):
        print(f"mode {mode} ...", flush=True)
        proc = subprocess.run(base + ["--_mode", mode, "--_data", str(data)], capture_output=True, text=True,
                              env=env)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["?"])[-1]
            why = ("killed (out of memory)" if proc.returncode in (-9, 137) else
                   f"out of memory under the {args.mem_limit_gib:g} GiB cap" if "alloc" in last.lower()
                   or "MemoryError" in last else last)
            res[mode] = {"error": why, "detail": last[:300], "returncode": proc.returncode}
        else:
            res[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(json.dumps(res[mode]), flush=True)
        (out / "results.json").write_text(json.dumps(res, indent=2))
    data.unlink(missing_ok=True)
    md = table(res, args)
    (out / "table.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()

"""vgraph vs PyTorch Geometric's own GAE/VGAE on the same protocol, splits and seeds.

    vgraph bench vs-pyg --dataset Cora --out runs/bench_vs_pyg

Both sides: 2-layer GCN (hidden 32, latent 16), Adam lr 0.01, the same 85/5/10 split, the
same loss (sampled: PyG's recon_loss with 1:1 negatives; dense: Kipf's all-pairs pos_weight
BCE) and best-validation-AUC model selection. The two models train in lockstep, one epoch
each in turn, so both epoch times are measured under the same machine load. Prints metric
parity and the median epoch-time ratio vgraph / PyG; writes summary.json.
"""
from __future__ import annotations

import statistics
import time

from vgraph.data import random_link_split, registry
from vgraph.runs import (add_common_args, aggregate, format_metric, job_entry, job_parser, positive_int,
                         resolved_config, setup_runtime, versions, write_json)
from vgraph.tasks.pyg_compare import PygSide, VgraphSide
from vgraph.train import seed_everything
from vgraph.train.lockstep import train_in_lockstep


@job_entry
def main(argv=None, prog="vgraph bench vs-pyg"):
    p = job_parser(prog, __doc__)
    p.add_argument("--dataset", default="Cora", help="Cora, CiteSeer, PubMed, or an edge-list file")
    p.add_argument("--models", nargs="+", default=["vgae", "gae"], choices=["gae", "vgae"], help="models")
    p.add_argument("--losses", nargs="+", default=["sampled", "dense"], choices=["sampled", "dense"],
                   help="losses")
    p.add_argument("--epochs", type=positive_int, default=200, help="epochs per side")
    add_common_args(p, "runs/bench_vs_pyg")
    p.set_defaults(runs=3)
    args = p.parse_args(argv)
    out = setup_runtime(args)
    data = registry.load(args.dataset, args.root)
    results, t0 = {}, time.perf_counter()
    for kind in args.models:
        for loss in args.losses:
            per, times = {"pyg": [], "vgraph": []}, {"pyg": [], "vgraph": []}
            for r in range(args.runs):
                seed = args.seed + r
                split = random_link_split(data.edge_index, data.num_nodes, 0.05, 0.10, seed)
                seed_everything(seed)
                sides = {"pyg": PygSide(kind, split, data.x, loss, args.device)}
                seed_everything(seed)
                sides["vgraph"] = VgraphSide(kind, split, data.x, loss, seed, args.device)
                for name, res in train_in_lockstep(sides, args.epochs).items():
                    per[name].append(res["best"])
                    times[name].extend(res["step_times"])
            row = {name: {"metrics": aggregate(per[name]),
                          "median_epoch_ms": 1000 * statistics.median(times[name])} for name in per}
            row["epoch_time_ratio_vgraph_over_pyg"] = (row["vgraph"]["median_epoch_ms"]
                                                       / row["pyg"]["median_epoch_ms"])
            results[f"{kind}/{loss}"] = row
            print(f"{args.dataset} {kind.upper()} loss={loss} ({args.runs} runs x {args.epochs} epochs)")
            for name in ("pyg", "vgraph"):
                m = row[name]["metrics"]
                print(f"  {name:7s} {format_metric('test_auc', m['test_auc'])}  "
                      f"{format_metric('test_ap', m['test_ap'])}  median epoch "
                      f"{row[name]['median_epoch_ms']:.2f} ms")
            print(f"  epoch-time ratio vgraph/PyG = {row['epoch_time_ratio_vgraph_over_pyg']:.3f}")
    write_json(out / "summary.json", {"job": "bench_vs_pyg", "dataset": args.dataset, "results": results,
                                       "config": resolved_config(args),
                                       "timing": {"total_s": time.perf_counter() - t0},
                                       "versions": versions()})
    return results

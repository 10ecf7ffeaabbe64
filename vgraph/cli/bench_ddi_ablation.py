"""vgraph bench ddi-ablation — what each ogbl-ddi trick buys, in Hits@20 and in seconds.

    vgraph bench ddi-ablation --epochs 40 --runs 1 --out runs/ddi_ablation

Trains ``vgraph ddi --dataset ogbl-ddi`` once per configuration below, one after another
(run it on an otherwise idle machine: the seconds are part of the result), each into
``--out/<name>`` with the same seed, epochs and runs, and collects from each summary the
validation-selected test Hits@10/20/30, validation Hits@20, total and median step seconds.
Writes ``summary.json`` (rows keyed by configuration name) and ``table.md``. A configuration
already finished in ``--out/<name>`` is read back, not retrained, so an interrupted ablation
continues where it stopped.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from vgraph.runs import (add_common_args, bounded, job_entry, job_parser, positive_int, resolved_config,
                         setup_runtime, versions, write_json)

# name -> (flags on top of the default preset, what the row removes or adds)
CONFIGS = {
    "default": ([], "--preset vgraph as shipped"),
    "no-masking": (["--no-mask-targets"], "target edges left in message passing (= ogb-sage)"),
    "drop-edges": (["--drop-edges", "0.3"], "30 % of the other edges also out of each step's message passing"),
    "gcn-relu": (["--conv", "gcn"], "GCN with ReLU instead of GraphSAGE"),
    "linear-gcn": (["--preset", "linear-gcn"], "Refined-GAE's tricks at width 256 (the old default)"),
    "ranking-3neg": (["--loss", "ranking", "--num-neg", "3"], "pairwise ranking loss, 3 negatives"),
    "auc-3neg": (["--loss", "auc", "--num-neg", "3"], "PLNLP's square AUC loss, 3 negatives"),
    "lr-decay": (["--lr-decay"], "linear lr decay to 0"),
    "no-clip": (["--grad-clip", "0"], "no gradient clipping"),
    "variational": (["--variational"], "VGAE latent"),
}
KEYS = ("test_hits@10", "test_hits@20", "test_hits@30", "val_hits@20")


def _row(summary: dict) -> dict:
    m = summary["metrics"]
    row = {k: m[k]["mean"] for k in KEYS}
    row["test_hits@20_std"] = m["test_hits@20"]["std"]
    row["total_s"] = summary["timing"]["total_s"]
    row["median_step_s"] = summary["timing"].get("median_step_s")
    return row


def table(rows: dict, epochs: int, runs: int) -> str:
    head = (f"| configuration | change | test Hits@20 (×100, {runs} run{'s' if runs > 1 else ''}, {epochs} epochs) "
            "| val Hits@20 | median step | total |\n|---|---|---|---|---|---|\n")
    lines = [f"| {name} | {CONFIGS[name][1]} | {100 * r['test_hits@20']:.2f} ± {100 * r['test_hits@20_std']:.2f} "
             f"| {100 * r['val_hits@20']:.2f} | {r['median_step_s'] or 0:.2f} s | {r['total_s']:.0f} s |"
             for name, r in rows.items()]
    return head + "\n".join(lines) + "\n"


@job_entry
def main(argv=None, prog="vgraph bench ddi-ablation"):
    p = job_parser(prog, __doc__)
    p.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS), help="rows to run")
    p.add_argument("--epochs", type=positive_int, default=40, help="epochs of every configuration")
    p.add_argument("--hidden", type=positive_int, default=None, help="width (default: the preset's)")
    p.add_argument("--batch-size", type=positive_int, default=None, help="positive edges a step (default: the preset's)")
    p.add_argument("--eval-every", type=bounded(int, lo=1), default=5, help="evaluate every this many epochs")
    add_common_args(p, "runs/ddi_ablation")
    p.set_defaults(runs=1)
    args = p.parse_args(argv)
    out = setup_runtime(args)
    from vgraph.cli import ddi
    common = ["--dataset", "ogbl-ddi", "--epochs", str(args.epochs), "--runs", str(args.runs),
              "--seed", str(args.seed), "--eval-every", str(args.eval_every), "--no-progress", "--no-plot"]
    for flag, value in (("--hidden", args.hidden), ("--batch-size", args.batch_size), ("--root", args.root),
                        ("--threads", args.threads), ("--device", args.device)):
        if value is not None:
            common += [flag, str(value)]
    rows, t0 = {}, time.perf_counter()
    for name in args.configs:
        folder = Path(out) / name
        done = folder / "summary.json"
        if done.is_file():
            print(f"{name}: finished earlier, reading {done}", flush=True)
            summary = json.loads(done.read_text())
        else:
            print(f"{name}: {' '.join(CONFIGS[name][0]) or '(no flags)'}", flush=True)
            summary = ddi.main(common + CONFIGS[name][0] + ["--out", str(folder), "--overwrite"])
        rows[name] = _row(summary)
        print(f"{name}: test Hits@20 {rows[name]['test_hits@20']:.4f}  total {rows[name]['total_s']:.0f} s", flush=True)
    text = table(rows, args.epochs, args.runs)
    (Path(out) / "table.md").write_text(text)
    write_json(Path(out) / "summary.json", {"job": "bench_ddi_ablation", "rows": rows,
                                            "flags": {n: CONFIGS[n][0] for n in args.configs},
                                            "config": resolved_config(args),
                                            "timing": {"total_s": time.perf_counter() - t0}, "versions": versions()})
    print(text, end="")
    return rows

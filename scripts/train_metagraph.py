#!/usr/bin/env python
"""Few-shot link prediction across many graphs: VGAE from scratch, VGAE fine-tuned from a
pooled pre-training, Meta-Graph and CC-Meta-Graph.

    python scripts/train_metagraph.py --dataset FIRSTMM_DB --edge-fraction 0.1 \\
        --methods scratch finetune metagraph ccmetagraph --runs 5 --out runs/meta_firstmm_10

Protocol (one run = one seed): the graphs are split into meta-train / meta-val / meta-test
(60/15/25 %, seeded). Every graph is split 85/5/10 into train / val / test edges and reveals
only ``--edge-fraction`` of its train edges (message passing and supervision). Meta-train
graphs: inner loop on revealed edges, outer (query) loss on their val edges. Meta-val
graphs select the meta-epoch (mean val AUC after adaptation). Each meta-test graph is
adapted on its revealed edges and scored on its test edges; a run reports the mean over
test graphs, and the table the mean ± std over runs. Features: one-hot node labels plus the
continuous node attributes (``--no-node-attr``: labels only; ``--standardize``: attributes
z-scored with the meta-train graphs' statistics).
Writes ``summary.json``; a run that diverges stops with a one-line error.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from vgraph.data.tu_link import link_task, load_link_graphs, split_graphs, standardize_features  # noqa: E402
from vgraph.errors import VGraphError  # noqa: E402
from vgraph.models.metagraph import CCMetaGraph, MetaGraph, pair_metrics, train_on_task  # noqa: E402
from vgraph.nn import KLConfig  # noqa: E402
from vgraph.runs import add_common_args, aggregate, format_metric, setup_runtime, versions, write_json  # noqa: E402
from vgraph.train import seed_everything  # noqa: E402

METHODS = ("scratch", "finetune", "metagraph", "ccmetagraph")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="FIRSTMM_DB", help="a TU dataset: FIRSTMM_DB, ENZYMES, PROTEINS")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--edge-fraction", type=float, default=0.1, help="fraction of train edges revealed")
    p.add_argument("--min-edges", type=int, default=20, help="skip graphs with fewer undirected edges")
    p.add_argument("--no-node-attr", action="store_true",
                   help="features = one-hot node labels only (PyG's TUDataset default); else labels + attributes")
    p.add_argument("--standardize", action="store_true",
                   help="z-score the continuous node attributes with the meta-train graphs' statistics")
    p.add_argument("--max-graphs", type=int, default=None, help="use at most this many graphs (seeded)")
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--latent", type=int, default=16)
    p.add_argument("--concepts", type=int, default=4, help="CC-Meta-Graph: concept blocks")
    p.add_argument("--nonlinearity", choices=["none", "mlp"], default="none")
    p.add_argument("--sparsity", type=float, default=1e-3)
    p.add_argument("--rho", type=float, default=1.0)
    p.add_argument("--init-scale", type=float, default=0.0)
    p.add_argument("--adapt-structure", action="store_true", help="adapt A in the inner loop too")
    p.add_argument("--no-signature", action="store_true", help="Meta-Graph without graph signature")
    p.add_argument("--order", type=int, choices=[1, 2], default=2, help="MAML order")
    p.add_argument("--inner-steps", type=int, default=5)
    p.add_argument("--inner-lr", type=float, default=0.05)
    p.add_argument("--meta-lr", type=float, default=0.005)
    p.add_argument("--meta-epochs", type=int, default=20)
    p.add_argument("--meta-batch", type=int, default=4, help="graphs per outer step")
    p.add_argument("--scratch-steps", type=int, default=200)
    p.add_argument("--pretrain-epochs", type=int, default=50)
    p.add_argument("--finetune-steps", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.01, help="Adam rate of scratch / pretrain / finetune")
    p.add_argument("--beta", type=float, default=1.0)
    add_common_args(p, "runs/metagraph")
    return p.parse_args(argv)


def _mean_metrics(rows: list[dict]) -> dict:
    return {k: statistics.fmean(r[k] for r in rows) for k in rows[0]}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def run_scratch(args, in_channels, kl, tests, seed):
    rows = []
    for t in tests:
        seed_everything(seed)
        model = MetaGraph(in_channels, args.hidden, args.latent, signature=False, kl=kl)
        model = train_on_task(model, t, args.scratch_steps, args.lr, _gen(seed))
        rows.append(pair_metrics(model.embed(t), t, ("test",)))
    return _mean_metrics(rows), {}


def run_finetune(args, in_channels, kl, trains, vals, tests, seed):
    seed_everything(seed)
    model = MetaGraph(in_channels, args.hidden, args.latent, signature=False, kl=kl)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = _gen(seed)
    best, best_state, best_epoch = -1.0, None, -1
    for epoch in range(args.pretrain_epochs):
        model.train()
        for i in torch.randperm(len(trains), generator=gen).tolist():
            t = trains[i]
            opt.zero_grad()
            neg = t.split.sample_train_negatives(generator=gen)
            model.task_loss({}, t, t.split.train_pos, neg, None, epoch).backward()
            opt.step()
        score = statistics.fmean(pair_metrics(model.embed(t), t, ("val",))["val_auc"] for t in vals)
        if score > best:
            best, best_state, best_epoch = score, copy.deepcopy(model.state_dict()), epoch
    model.load_state_dict(best_state)
    rows = [pair_metrics(train_on_task(model, t, args.finetune_steps, args.lr, _gen(seed)).embed(t), t, ("test",))
            for t in tests]
    return _mean_metrics(rows), {"best_epoch": best_epoch, "best_val_auc": best}


def run_meta(args, in_channels, kl, trains, vals, tests, seed, causal: bool):
    seed_everything(seed)
    common = dict(hidden=args.hidden, latent=args.latent, signature=not args.no_signature, kl=kl,
                  inner_lr=args.inner_lr, inner_steps=args.inner_steps, order=args.order,
                  adapt_structure=args.adapt_structure)
    if causal:
        model = CCMetaGraph(in_channels, num_concepts=args.concepts, nonlinearity=args.nonlinearity,
                            sparsity=args.sparsity, rho=args.rho, init_scale=args.init_scale, **common)
    else:
        model = MetaGraph(in_channels, **common)
    opt = torch.optim.Adam(model.parameters(), lr=args.meta_lr)
    gen = _gen(seed)
    best, best_state, best_epoch = -1.0, None, -1
    for epoch in range(args.meta_epochs):
        model.train()
        order = torch.randperm(len(trains), generator=gen).tolist()
        for start in range(0, len(order), args.meta_batch):
            batch = [trains[i] for i in order[start:start + args.meta_batch]]
            opt.zero_grad()
            loss = sum(model.meta_loss(t, generator=gen, epoch=epoch) for t in batch) / len(batch)
            loss.backward()
            loss = loss.detach()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
        if causal:
            model.causal.update_lagrangian()
        score = statistics.fmean(model.evaluate(t, ("val",), generator=_gen(seed))["val_auc"] for t in vals)
        print(f"  epoch {epoch}: meta-loss {loss.item():.4f}  meta-val AUC {score:.4f}", flush=True)
        if score > best:
            best, best_state, best_epoch = score, copy.deepcopy(model.state_dict()), epoch
    model.load_state_dict(best_state)
    rows = [model.evaluate(t, ("test",), generator=_gen(seed)) for t in tests]
    extra = {"best_epoch": best_epoch, "best_val_auc": best}
    if causal:
        extra["A"] = model.structure().tolist()
        extra["h"] = float(model.causal.acyclicity().detach())
    return _mean_metrics(rows), extra


def _summary(args, argv, results, extras, t_start) -> dict:
    config = {k: v for k, v in vars(args).items() if k not in ("no_progress", "out", "threads")}
    return {"job": "metagraph", "dataset": args.dataset, "edge_fraction": args.edge_fraction,
            "runs_done": len(next(iter(results.values()))),
            "metrics": {m: aggregate(rows) for m, rows in results.items() if rows}, "runs": extras,
            "config": config,
            "command": " ".join(["python", "scripts/train_metagraph.py"] + (sys.argv[1:] if argv is None else list(argv))),
            "timing": {"total_s": time.perf_counter() - t_start}, "versions": versions()}


def main(argv=None):
    args = parse_args(argv)
    out = setup_runtime(args)
    try:
        graphs = load_link_graphs(args.dataset, args.root, min_edges=args.min_edges,
                                  use_node_attr=not args.no_node_attr)
    except VGraphError as exc:
        sys.exit(f"error: {exc}")
    in_channels = graphs[0].x.size(1)
    kl = KLConfig(beta=args.beta)
    print(f"{args.dataset}: {len(graphs)} graphs (>= {args.min_edges} edges), {in_channels} features; "
          f"edge_fraction={args.edge_fraction} methods={args.methods} runs={args.runs}")
    results = {m: [] for m in args.methods}
    extras = {m: [] for m in args.methods}
    t_start = time.perf_counter()
    for r in range(args.runs):
        seed = args.seed + r
        chosen = graphs
        if args.max_graphs and len(graphs) > args.max_graphs:
            pick = torch.randperm(len(graphs), generator=_gen(seed))[:args.max_graphs].tolist()
            chosen = [graphs[i] for i in sorted(pick)]
        tr, va, te = split_graphs(len(chosen), seed=seed)
        if args.standardize:
            chosen = standardize_features(chosen, [chosen[i] for i in tr])
        tasks = [link_task(g, args.edge_fraction, seed * 100003 + g.index) for g in chosen]
        trains, vals, tests = [tasks[i] for i in tr], [tasks[i] for i in va], [tasks[i] for i in te]
        print(f"run {r} (seed {seed}): {len(trains)} meta-train / {len(vals)} meta-val / {len(tests)} meta-test graphs")
        for m in args.methods:
            t0 = time.perf_counter()
            try:
                if m == "scratch":
                    metrics, extra = run_scratch(args, in_channels, kl, tests, seed)
                elif m == "finetune":
                    metrics, extra = run_finetune(args, in_channels, kl, trains, vals, tests, seed)
                else:
                    metrics, extra = run_meta(args, in_channels, kl, trains, vals, tests, seed, m == "ccmetagraph")
            except VGraphError as exc:  # earlier runs are already in summary.json
                sys.exit(f"error: run {r} ({m}): {exc}")
            extra["seconds"] = time.perf_counter() - t0
            results[m].append(metrics)
            extras[m].append(extra)
            print(f"run {r} {m}: test_auc {metrics['test_auc']:.4f}  test_ap {metrics['test_ap']:.4f}  "
                  f"({extra['seconds']:.0f}s)", flush=True)
        write_json(out / "summary.json", _summary(args, argv, results, extras, t_start))  # after every run
    summary = _summary(args, argv, results, extras, t_start)
    for m in args.methods:
        agg = summary["metrics"][m]
        print(f"{args.dataset} {m} edge_fraction={args.edge_fraction} over {args.runs} runs: "
              + "  ".join(format_metric(k, agg[k]) for k in ("test_auc", "test_ap")))
    return summary


if __name__ == "__main__":
    main()

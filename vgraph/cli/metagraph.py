"""vgraph metagraph: few-shot link prediction across many graphs: VGAE from scratch, VGAE
fine-tuned from a pooled pre-training, Meta-Graph and CC-Meta-Graph.

    vgraph metagraph --dataset FIRSTMM_DB --edge-fraction 0.1 --methods scratch finetune metagraph ccmetagraph --runs 5

One run = one seed: the graphs are split into meta-train / meta-val / meta-test (60/15/25 %).
Every graph is split 85/5/10 and reveals only --edge-fraction of its train edges. Meta-train
graphs: inner loop on revealed edges, outer (query) loss on their val edges; meta-val graphs
select the meta-epoch; each meta-test graph is adapted on its revealed edges and scored on its
test edges (a run reports the mean over test graphs). Features: one-hot node labels plus the
continuous attributes (--no-node-attr: labels only; --standardize: z-scored with meta-train
statistics). Writes summary.json (metrics <method>_test_auc ...).
"""
from __future__ import annotations

import copy
import statistics

import torch

from vgraph.data.tu_link import load_link_graphs
from vgraph.errors import TrainingDivergedError
from vgraph.models.metagraph import CCMetaGraph, MetaGraph
from vgraph.runs import (add_common_args, add_kl_args, bounded, job_entry, job_parser, kl_from_args,
                         nonneg_float, nonneg_int, positive_float, positive_int, prepare_out,
                         resolved_config, run_seeds)
from vgraph.tasks.metagraph import (MetaLearningTask, PooledPretrainTask, RevealedEdgesTask, adapted_metrics,
                                   few_shot_tasks)
from vgraph.train import Trainer, seed_everything

METHODS = ("scratch", "finetune", "metagraph", "ccmetagraph")


def parse_args(argv=None, prog=None):
    p = job_parser(prog, __doc__)
    p.add_argument("--dataset", default="FIRSTMM_DB", help="a TU dataset: FIRSTMM_DB, ENZYMES, PROTEINS")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--edge-fraction", type=bounded(float, lo=0, hi=1, lo_open=True), default=0.1,
                   help="fraction of train edges revealed, in (0, 1]")
    p.add_argument("--min-edges", type=nonneg_int, default=20, help="skip graphs with fewer undirected edges")
    p.add_argument("--no-node-attr", action="store_true", help="features = one-hot node labels only")
    p.add_argument("--standardize", action="store_true", help="z-score the continuous attributes (meta-train stats)")
    p.add_argument("--max-graphs", type=bounded(int, lo=3), default=None, help="at most this many graphs (seeded)")
    p.add_argument("--hidden", type=positive_int, default=32)
    p.add_argument("--latent", type=positive_int, default=16)
    p.add_argument("--concepts", type=positive_int, default=4, help="CC-Meta-Graph: concept blocks")
    p.add_argument("--nonlinearity", choices=["none", "mlp"], default="none")
    p.add_argument("--sparsity", type=nonneg_float, default=1e-3)
    p.add_argument("--rho", type=positive_float, default=1.0)
    p.add_argument("--init-scale", type=nonneg_float, default=0.0)
    p.add_argument("--adapt-structure", action="store_true", help="adapt A in the inner loop too")
    p.add_argument("--no-signature", action="store_true", help="Meta-Graph without graph signature")
    p.add_argument("--order", type=int, choices=[1, 2], default=2, help="MAML order")
    p.add_argument("--inner-steps", type=positive_int, default=5)
    p.add_argument("--inner-lr", type=positive_float, default=0.05)
    p.add_argument("--meta-lr", type=positive_float, default=0.005)
    p.add_argument("--meta-epochs", type=positive_int, default=20)
    p.add_argument("--meta-batch", type=positive_int, default=4, help="graphs per outer step")
    p.add_argument("--grad-clip", type=positive_float, default=10.0, help="outer-step gradient norm clip")
    p.add_argument("--scratch-steps", type=positive_int, default=200)
    p.add_argument("--pretrain-epochs", type=positive_int, default=50)
    p.add_argument("--finetune-steps", type=positive_int, default=20)
    p.add_argument("--lr", type=positive_float, default=0.01, help="Adam rate of scratch / pretrain / finetune")
    add_kl_args(p)
    add_common_args(p, "runs/metagraph", resume=True)
    args = p.parse_args(argv)
    if args.device != "cpu":
        p.error(f"--device {args.device}: the few-shot graphs are tiny; this job runs on the CPU only")
    if "ccmetagraph" in args.methods and args.latent % args.concepts:
        p.error(f"--latent {args.latent} is not divisible by --concepts {args.concepts}")
    return args


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mean(rows: list[dict]) -> dict:
    return {k: statistics.fmean(r[k] for r in rows) for k in rows[0]}


@job_entry
def main(argv=None, prog="vgraph metagraph"):
    args = parse_args(argv, prog)
    graphs = load_link_graphs(args.dataset, args.root, min_edges=args.min_edges, use_node_attr=not args.no_node_attr)
    prepare_out(args)
    config = resolved_config(args)
    in_channels = graphs[0].x.size(1)
    kl = kl_from_args(args, args.meta_epochs)
    print(f"{args.dataset}: {len(graphs)} graphs (>= {args.min_edges} edges), {in_channels} features; "
          f"edge_fraction={args.edge_fraction} methods={args.methods} runs={args.runs}", flush=True)

    def trainer(model, task, lr, epochs, run_dir=None, run_config=None, **kw):
        return Trainer(model, task, torch.optim.Adam(model.parameters(), lr=lr), epochs=epochs, out_dir=run_dir,
                       config=run_config, resume=args.resume and run_dir is not None,
                       progress=not args.no_progress and run_dir is not None, **kw)

    def adapted(model, t, steps, seed):  # scratch / fine-tune: Adam on a copy, last step kept
        model = copy.deepcopy(model)
        task = RevealedEdgesTask(t, _gen(seed))
        trainer(model, task, args.lr, steps, monitor=None, handle_signals=False).fit()
        return task.score(model)

    def baseline():
        return MetaGraph(in_channels, args.hidden, args.latent, signature=False, kl=kl)

    def run_method(m, seed, run_dir, trains, vals, tests) -> tuple[dict, dict]:
        if m == "scratch":
            rows = []
            for t in tests:
                seed_everything(seed)
                rows.append(adapted(baseline(), t, args.scratch_steps, seed))
            return _mean(rows), {}
        seed_everything(seed)
        if m == "finetune":
            model = baseline()
            res = trainer(model, PooledPretrainTask(trains, vals, _gen(seed)), args.lr, args.pretrain_epochs,
                          run_dir / m, {**config, "method": m, "run_seed": seed}, monitor="val_auc").fit()
            rows = [adapted(model, t, args.finetune_steps, seed) for t in tests]
            return _mean(rows), {"best_epoch": res["best_epoch"], "best_val_auc": res["best_metrics"]["val_auc"]}
        common = dict(hidden=args.hidden, latent=args.latent, signature=not args.no_signature, kl=kl,
                      inner_lr=args.inner_lr, inner_steps=args.inner_steps, order=args.order,
                      adapt_structure=args.adapt_structure)
        model = CCMetaGraph(in_channels, num_concepts=args.concepts, nonlinearity=args.nonlinearity,
                            sparsity=args.sparsity, rho=args.rho, init_scale=args.init_scale, **common) \
            if m == "ccmetagraph" else MetaGraph(in_channels, **common)
        task = MetaLearningTask(trains, vals, args.meta_batch, _gen(seed), eval_seed=seed)
        res = trainer(model, task, args.meta_lr, args.meta_epochs, run_dir / m, {**config, "method": m, "run_seed": seed},
                      monitor="val_auc", grad_clip=args.grad_clip, desc=m).fit()
        rows = [adapted_metrics(model, t, ("test",), _gen(seed)) for t in tests]
        extra = {"best_epoch": res["best_epoch"], "best_val_auc": res["best_metrics"]["val_auc"]}
        if m == "ccmetagraph":
            extra.update(A=model.structure().tolist(), h=float(model.causal.acyclicity().detach()))
        return _mean(rows), extra

    def one_run(r, seed, run_dir):
        parts = few_shot_tasks(graphs, args.edge_fraction, seed, args.max_graphs, args.standardize)
        metrics, extra = {}, {"graphs": [len(p) for p in parts]}
        for m in args.methods:
            try:
                values, extra[m] = run_method(m, seed, run_dir, *parts)
            except TrainingDivergedError as exc:
                raise TrainingDivergedError(f"run {r} ({m}): {exc}") from None
            metrics.update({f"{m}_{k}": v for k, v in values.items()})
        return {"metrics": metrics, "extra": extra}

    headline = [f"{m}_{k}" for m in args.methods for k in ("test_auc", "test_ap")]
    return run_seeds(args, one_run, job="metagraph", config=config, headline=headline, curve=None,
                     title=f"{args.dataset} edge_fraction={args.edge_fraction}",
                     extra={"dataset": args.dataset, "edge_fraction": args.edge_fraction})

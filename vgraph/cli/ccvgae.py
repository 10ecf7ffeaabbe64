"""vgraph ccvgae: CCVGAE (or the VGAE baseline) for link prediction on one graph, optionally
in a low-edge regime that keeps only a fraction of the training edges.

    vgraph ccvgae --dataset Cora --model ccvgae --edge-fraction 0.1 --runs 5 --out runs/ccvgae_cora_10 --plot-structure

The split is 85/5/10 (seeded by the run's seed); with --edge-fraction f only ceil(f * |train|)
training edges are kept, for message passing and supervision alike (validation and test pairs
are unchanged). Prints test AUC / AP as mean ± std over runs at the best-validation epoch;
writes summary.json (with the learned concept structure of every run) and, with
--plot-structure, structure_run<k>.png.
"""
from __future__ import annotations

import torch

from vgraph.data.registry import load
from vgraph.models.ccvgae import CCVGAE
from vgraph.models.factory import build_autoencoder
from vgraph.runs import (add_common_args, add_kl_args, dropout_rate, job_entry, job_parser, kl_from_args,
                         nonneg_float, nonneg_int, open_fraction, positive_float, positive_int, prepare_out,
                         resolved_config, run_seeds, bounded)
from vgraph.tasks import LinkPredTask
from vgraph.tasks.ccvgae import low_edge_split, plot_structure, structure_report
from vgraph.train import Trainer, seed_everything


def parse_args(argv=None, prog=None):
    p = job_parser(prog, __doc__)
    p.add_argument("--dataset", default="Cora", help="Cora, CiteSeer, PubMed, or an edge-list file")
    p.add_argument("--features", default=None, help="node-feature file for an edge-list dataset")
    p.add_argument("--model", choices=["ccvgae", "vgae"], default="ccvgae")
    p.add_argument("--edge-fraction", type=bounded(float, lo=0, hi=1, lo_open=True), default=1.0,
                   help="fraction of training edges kept, in (0, 1]")
    p.add_argument("--loss", choices=["dense", "sampled"], default="dense")
    p.add_argument("--epochs", type=positive_int, default=200)
    p.add_argument("--lr", type=positive_float, default=0.01)
    p.add_argument("--hidden", type=positive_int, default=32)
    p.add_argument("--concepts", type=positive_int, default=4, help="number of concept blocks k")
    p.add_argument("--concept-dim", type=positive_int, default=4, help="width of each block (latent = k * d)")
    p.add_argument("--nonlinearity", choices=["none", "mlp"], default="none")
    p.add_argument("--sparsity", type=nonneg_float, default=1e-3, help="l1 weight on A")
    p.add_argument("--rho", type=positive_float, default=1.0, help="initial augmented-Lagrangian penalty")
    p.add_argument("--lagrangian-every", type=nonneg_int, default=10, help="epochs per multiplier update (0: never)")
    p.add_argument("--init-scale", type=nonneg_float, default=0.0, help="std of A's initial entries")
    p.add_argument("--structure-weight", type=nonneg_float, default=1.0)
    p.add_argument("--freeze-structure", action="store_true",
                   help="ablation: keep A = its initial value (0: no concept structure)")
    p.add_argument("--dropout", type=dropout_rate, default=0.0)
    p.add_argument("--patience", type=positive_int, default=None, help="early stopping on val AUC")
    p.add_argument("--val-ratio", type=open_fraction, default=0.05)
    p.add_argument("--test-ratio", type=open_fraction, default=0.10)
    p.add_argument("--plot-structure", action="store_true", help="draw the learned concept graph")
    p.add_argument("--structure-threshold", type=nonneg_float, default=0.05,
                   help="|A_ij| above this is drawn / reported as an edge")
    add_kl_args(p)
    add_common_args(p, "runs/ccvgae", resume=True)
    args = p.parse_args(argv)
    if args.val_ratio + args.test_ratio >= 1:
        p.error(f"--val-ratio + --test-ratio must be < 1, got {args.val_ratio} + {args.test_ratio}")
    return args


def build(args, in_channels: int):
    kl = kl_from_args(args, args.epochs)
    if args.model == "vgae":
        return build_autoencoder("vgae", in_channels, args.hidden, args.concepts * args.concept_dim, args.dropout, kl)
    model = CCVGAE.build(in_channels, args.hidden, args.concepts, args.concept_dim, args.dropout, kl,
                         nonlinearity=args.nonlinearity, sparsity=args.sparsity, rho=args.rho,
                         init_scale=args.init_scale, lagrangian_every=args.lagrangian_every,
                         structure_weight=args.structure_weight)
    model.causal.weight.requires_grad_(not args.freeze_structure)
    return model


@job_entry
def main(argv=None, prog="vgraph ccvgae"):
    args = parse_args(argv, prog)
    data = load(args.dataset, args.root, **({"features": args.features} if args.features else {}))
    out = prepare_out(args)
    config = resolved_config(args, drop=("resume", "overwrite", "no_progress", "out", "threads", "plot_structure"))
    print(f"{args.dataset}: {data.num_nodes} nodes, {data.edge_index.size(1) // 2} undirected edges; "
          f"model={args.model} edge_fraction={args.edge_fraction} latent={args.concepts * args.concept_dim} "
          f"runs={args.runs}", flush=True)

    def one_run(r, seed, run_dir):
        split = low_edge_split(data, args.edge_fraction, args.val_ratio, args.test_ratio, seed)
        seed_everything(seed)
        task = LinkPredTask(split, data.x, loss=args.loss, seed=seed, device=args.device)
        model = build(args, data.x.size(1)).to(args.device)
        result = Trainer(model, task, torch.optim.Adam(model.parameters(), lr=args.lr), epochs=args.epochs,
                         patience=args.patience, out_dir=run_dir, config={**config, "run_seed": seed},
                         resume=args.resume, progress=not args.no_progress, desc=f"run {r}").fit()
        result["metrics"] = dict(result["best_metrics"])
        result["extra"] = {"split": split.summary()}
        if args.model == "ccvgae":
            report = structure_report(model, args.structure_threshold)
            result["metrics"]["acyclicity"] = report["h"]
            result["extra"]["structure"] = report
            if args.plot_structure:
                plot_structure(report["A"], out / f"structure_run{r}.png", args.structure_threshold,
                               f"{args.dataset} run {r}: learned A")
        return result

    return run_seeds(args, one_run, job="ccvgae", config=config, headline=("test_auc", "test_ap", "val_auc", "val_ap"),
                     title=f"{args.dataset} {args.model.upper()} edge_fraction={args.edge_fraction}")

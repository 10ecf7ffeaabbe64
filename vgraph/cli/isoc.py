"""vgraph isoc: train IsoC-VGAE, GAE or VGAE without labels, then probe the frozen embeddings.

    vgraph isoc --task node  --dataset Cora  --model isoc_vgae --runs 5 --out runs/isoc/cora_node
    vgraph isoc --task link  --dataset Cora  --model vgae      --runs 5 --out runs/isoc/cora_link_vgae
    vgraph isoc --task graph --dataset MUTAG --model isoc_vgae --runs 5 --out runs/isoc/mutag

Protocols (every model goes through the same splits and probes; run r uses seed + r):
node: Planetoid public split and the paper's split, LogReg and MLP probes; link: 85/5/10
split, the encoder sees the training edges only, inner-product and Hadamard-MLP probes;
graph: all graphs, sum-pooled node embeddings, stratified k-fold CV and one 50/20/30 split.
IsoC-VGAE keeps the epoch of lowest training loss (the authors' rule); GAE/VGAE train with
Kipf's dense loss for all their epochs. Writes summary.json to --out.
"""
from __future__ import annotations

import torch

from vgraph.data import random_link_split
from vgraph.data.registry import load
from vgraph.models.factory import build_autoencoder
from vgraph.models.isoc_vgae import IsoCVGAE
from vgraph.runs import (add_common_args, add_kl_args, bounded, dropout_rate, job_entry, job_parser,
                         kl_from_args, nonneg_float, positive_float, positive_int, prepare_out,
                         resolved_config, run_seeds)
from vgraph.tasks import isoc
from vgraph.tasks.linkpred import sparse_features
from vgraph.train import Trainer, seed_everything

# per task: (conv, norm, dropout) as the authors' scripts set them
TASK_DEFAULTS = {"node": ("gcn", "batchnorm", 0.0), "link": ("gcn", "batchnorm", 0.0),
                 "graph": ("gin", "pairnorm", 0.5)}
HEADLINE = {"node": ("public_logreg_test_acc", "public_mlp_test_acc", "paper_logreg_test_acc", "paper_mlp_test_acc"),
            "link": ("ip_test_auc", "ip_test_ap", "mlp_test_auc", "mlp_test_ap"),
            "graph": ("cv_test_acc", "cv_fold_std", "split_test_acc")}


def dims_arg(text: str) -> list[int]:
    """Comma-separated positive layer widths."""
    import argparse
    try:
        dims = [int(d) for d in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected widths like 256,256, got {text!r}") from None
    if not dims or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"widths must be >= 1, got {text!r}")
    return dims


def parse_args(argv=None, prog=None):
    p = job_parser(prog, __doc__)
    p.add_argument("--task", choices=list(TASK_DEFAULTS), required=True)
    p.add_argument("--dataset", default="Cora", help="Cora/CiteSeer (node, link); MUTAG/PROTEINS/ENZYMES (graph)")
    p.add_argument("--model", choices=["isoc_vgae", "gae", "vgae"], default="isoc_vgae")
    p.add_argument("--dims", type=dims_arg, default="512,512", help="encoder widths (GAE/VGAE: hidden,latent)")
    p.add_argument("--conv", choices=["gcn", "gin"], default=None, help="default: gcn (node/link), gin (graph)")
    p.add_argument("--norm", choices=["none", "batchnorm", "pairnorm"], default=None,
                   help="default: batchnorm (node/link), pairnorm (graph)")
    p.add_argument("--activation", choices=["relu", "none"], default="relu",
                   help="IsoC encoder activation; 'none' reproduces the authors' code as run")
    p.add_argument("--enc-dropout", type=dropout_rate, default=None, help="default: 0 (node/link), 0.5 (graph)")
    p.add_argument("--epochs", type=positive_int, default=None, help="default: 30 (isoc), 200 (gae/vgae)")
    p.add_argument("--lr", type=positive_float, default=None, help="default: 1e-3 (isoc), 1e-2 (gae/vgae)")
    p.add_argument("--degree-lr", type=positive_float, default=1e-2, help="lr of the degree MLPs (isoc)")
    p.add_argument("--weight-decay", type=nonneg_float, default=3e-4, help="(isoc; authors: 3e-4)")
    p.add_argument("--patience", type=bounded(int, lo=-1), default=10, help="isoc: stop after this many "
                   "epochs without a lower training loss (the authors' rule); -1: never")
    p.add_argument("--lambda-self", type=nonneg_float, default=1.0)
    p.add_argument("--lambda-nb", type=nonneg_float, default=0.1)
    p.add_argument("--lambda-deg", type=nonneg_float, default=1.0)
    p.add_argument("--batch-size", type=bounded(int, lo=2), default=64, help="graphs per batch (graph task)")
    p.add_argument("--probe-epochs", type=positive_int, default=50)
    p.add_argument("--probe-patience", type=positive_int, default=10)
    p.add_argument("--probe-dropout", type=dropout_rate, default=0.5)
    p.add_argument("--folds", type=bounded(int, lo=2), default=10)
    p.add_argument("--no-cv", action="store_true", help="graph task: skip the k-fold CV")
    add_kl_args(p)
    add_common_args(p, "runs/isoc", resume=True)
    args = p.parse_args(argv)
    conv, norm, drop = TASK_DEFAULTS[args.task]
    args.conv, args.norm = args.conv or conv, args.norm or norm
    args.enc_dropout = drop if args.enc_dropout is None else args.enc_dropout
    iso = args.model == "isoc_vgae"
    args.epochs = args.epochs or (30 if iso else 200)
    args.lr = args.lr or (1e-3 if iso else 1e-2)
    return p, args


def build(args, in_channels: int):
    """The model and its optimiser."""
    if args.model == "isoc_vgae":
        model = IsoCVGAE.build(in_channels, args.dims, conv=args.conv, norm=None if args.norm == "none" else args.norm,
                               dropout=args.enc_dropout, activation=args.activation, lambda_self=args.lambda_self,
                               lambda_nb=args.lambda_nb, lambda_deg=args.lambda_deg)
        return model, torch.optim.Adam(model.param_groups(args.lr, args.degree_lr, args.weight_decay))
    model = build_autoencoder(args.model, in_channels, hidden=args.dims[0], latent=args.dims[-1],
                              kl=kl_from_args(args, args.epochs))
    return model, torch.optim.Adam(model.parameters(), lr=args.lr)


@job_entry
def main(argv=None, prog="vgraph isoc"):
    parser, args = parse_args(argv, prog)
    data = load(args.dataset, args.root)
    if (args.task == "graph") != hasattr(data, "subset"):
        parser.error(f"--task {args.task} needs a {'TU (MUTAG, ENZYMES, PROTEINS)' if args.task == 'graph' else 'single-graph (Cora, CiteSeer)'} "
                     f"dataset, got {args.dataset}")
    prepare_out(args)
    config = resolved_config(args)
    probe_kw = dict(epochs=args.probe_epochs, patience=args.probe_patience, dropout=args.probe_dropout)
    iso = args.model == "isoc_vgae"
    # the authors' rule stops after `patience` epochs without a lower loss, i.e. at the
    # (patience + 1)-th such epoch, which is when the Trainer's patience counter reaches it
    selection = dict(monitor="loss", mode="min", patience=args.patience + 1) \
        if iso and args.patience >= 0 else dict(monitor=None)

    def one_run(r, seed, run_dir):
        seed_everything(seed)
        if args.task == "graph":
            task = isoc.GraphBatchTask(data, args.batch_size, seed, device=args.device)
        else:
            split = random_link_split(data.edge_index, data.num_nodes, 0.05, 0.10, seed) if args.task == "link" else None
            edges = split.mp_edge_index if split is not None else data.edge_index
            task = isoc.FullGraphEmbeddingTask(sparse_features(data.x.float()), edges, data.num_nodes,
                                               device=args.device)
        model, opt = build(args, data.num_features if args.task == "graph" else data.x.size(1))
        model = model.to(args.device)
        result = Trainer(model, task, opt, epochs=args.epochs, out_dir=run_dir, config={**config, "run_seed": seed},
                         resume=args.resume, progress=not args.no_progress, desc=f"run {r}", **selection).fit()
        metrics = {"epochs_run": len(result["history"])}
        if args.task == "node":
            metrics.update(isoc.node_probes(task.embed(model), data, seed, **probe_kw))
        elif args.task == "link":
            metrics.update(isoc.link_probes(task.embed(model), split, seed, **probe_kw))
        else:
            g = task.embeddings(model, args.dims[-1])
            metrics.update(isoc.graph_probes(g, data.y, seed, args.folds, not args.no_cv, **probe_kw))
        return {**result, "metrics": metrics, "best_epoch": result["best_epoch"] if iso else None}

    print(f"{args.task} / {args.dataset} / {args.model}: dims={args.dims} epochs={args.epochs} "
          f"lr={args.lr} runs={args.runs}", flush=True)
    return run_seeds(args, one_run, job=f"isoc_{args.task}", config=config, headline=HEADLINE[args.task],
                     title=f"{args.dataset} {args.model}", curve=None,
                     extra={"task": args.task, "dataset": args.dataset, "model": args.model})

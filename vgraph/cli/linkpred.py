"""Train GAE / VGAE link prediction on a citation graph or your own edge list.

    vgraph linkpred --dataset Cora --model vgae --runs 10 --out runs/cora_vgae

Prints a progress bar per run (loss and validation), then test AUC / AP per run and as
mean ± std over runs; writes summary.json, embeddings.pt, curves.png and per run
run<k>/model.pt (load it with vgraph.load, score pairs with vgraph predict-links).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from vgraph.data import random_link_split, registry
from vgraph.hub import save_model
from vgraph.models.factory import build_autoencoder
from vgraph.runs import (add_common_args, add_kl_args, dropout_rate, job_entry, job_parser, kl_from_args,
                         open_fraction, positive_float, positive_int, prepare_out, resolved_config,
                         run_seeds)
from vgraph.tasks.linkpred import LinkPredTask, ShardedLinkPredTask, choose_loss, split_warnings
from vgraph.train import Trainer, seed_everything
from vgraph.train import distributed as D


def build_parser(prog="vgraph linkpred"):
    p = job_parser(prog, __doc__)
    p.add_argument("--dataset", default="Cora", help="Cora, CiteSeer, PubMed, or an edge-list file")
    p.add_argument("--features", default=None, help="node-feature file for an edge-list dataset")
    p.add_argument("--model", choices=["gae", "vgae"], default="vgae", help="graph autoencoder")
    p.add_argument("--loss", choices=["auto", "dense", "sampled"], default="auto",
                   help="auto: Kipf's dense loss on graphs up to 20,000 nodes, sampled 1:1 above")
    p.add_argument("--epochs", type=positive_int, default=200, help="full-batch training epochs")
    p.add_argument("--lr", type=positive_float, default=0.01, help="Adam learning rate")
    p.add_argument("--hidden", type=positive_int, default=32, help="width of the first GCN layer")
    p.add_argument("--latent", type=positive_int, default=16, help="embedding width")
    p.add_argument("--dropout", type=dropout_rate, default=0.0, help="dropout on GCN inputs, in [0, 1)")
    p.add_argument("--bias", action="store_true",
                   help="give GCN layers a bias (PyG's default; Kipf's code has none)")
    p.add_argument("--patience", type=positive_int, default=None, help="early stopping on --monitor")
    p.add_argument("--monitor", choices=["val_score", "val_auc", "val_ap"], default="val_score",
                   help="validation metric that selects the best epoch (val_score = mean of AUC and AP)")
    p.add_argument("--val-ratio", type=open_fraction, default=0.05, help="share of edges for validation")
    p.add_argument("--test-ratio", type=open_fraction, default=0.10, help="share of edges for test")
    p.add_argument("--split-seed", type=int, default=None, help="default: the run's seed")
    p.add_argument("--reorder", choices=["degree", "rcm"], default=None,
                   help="renumber nodes internally for memory locality (results unchanged)")
    add_kl_args(p)
    add_common_args(p, "runs/linkpred", resume=True, plot=True)
    return p


def parse_args(argv=None, prog="vgraph linkpred"):
    p = build_parser(prog)
    args = p.parse_args(argv)
    if args.val_ratio + args.test_ratio >= 1:
        p.error(f"--val-ratio {args.val_ratio} + --test-ratio {args.test_ratio} must be below 1 "
                f"to leave training edges")
    if args.features is not None and args.dataset.lower() in registry.names():
        p.error(f"--features is for an edge-list --dataset; {args.dataset} comes with its own features")
    return args


@job_entry
def main(argv=None, prog="vgraph linkpred"):
    args = parse_args(argv, prog)
    out = prepare_out(args)
    info = D.init_from_env(device=args.device)  # a world of one without torchrun
    say = print if info.is_rank0 else (lambda *a, **k: None)
    try:
        data = registry.load(args.dataset, args.root, **({"features": args.features} if args.features else {}))
        loss, note = choose_loss(args.loss, data.num_nodes)
        if info.world_size > 1 and loss != "sampled":
            sys.exit("error: distributed training shards the sampled loss; use --loss sampled with torchrun")
        kl = kl_from_args(args)
        config = {**resolved_config(args), "loss": loss}
        node_ids = getattr(data, "node_ids", None)
        if node_ids is not None and info.is_rank0:
            (out / "node_ids.csv").write_text("index,node_id\n" + "".join(
                f"{i},{v}\n" for i, v in enumerate(node_ids)))
        say(f"{args.dataset}: {data.num_nodes} nodes, {data.edge_index.size(1) // 2} undirected edges, "
            f"{data.x.size(1)} features; model={args.model} runs={args.runs}; {note}")
        kwargs = {"name": args.model, "in_channels": data.x.size(1), "hidden": args.hidden,
                  "latent": args.latent, "dropout": args.dropout, "kl": kl.to_dict(), "bias": args.bias}
        named = args.dataset.lower() in registry.names()
        transform = {"dataset": args.dataset if named else str(Path(args.dataset).resolve()),
                     "features": str(Path(args.features).resolve()) if args.features else "the dataset's own",
                     "feature_dim": data.x.size(1), "num_nodes": data.num_nodes,
                     "graph": "undirected, self-loops removed; GCN-normalised with self-loops",
                     "node_ids": "node_ids.csv" if node_ids is not None else "0..N-1"}
        embeddings = {}

        def one_run(r, seed, run_dir):
            split = random_link_split(data.edge_index, data.num_nodes, args.val_ratio, args.test_ratio,
                                      seed if args.split_seed is None else args.split_seed)
            if r == 0 or args.split_seed is None:
                for line in split_warnings(split):
                    say(line)
            seed_everything(seed)
            if info.world_size > 1:
                task = ShardedLinkPredTask(split, data.x, seed=seed)
            else:
                task = LinkPredTask(split, data.x, loss=loss, seed=seed, reorder=args.reorder,
                                    device=args.device)
            model = build_autoencoder(**{**kwargs, "kl": kl}).to(args.device)
            trainer = Trainer(model, task, torch.optim.Adam(model.parameters(), lr=args.lr),
                              epochs=args.epochs, patience=args.patience, monitor=args.monitor,
                              out_dir=run_dir, config={**config, "run_seed": seed}, resume=args.resume,
                              progress=info.is_rank0 and not args.no_progress, desc=f"run {r}")
            result = trainer.fit()
            embeddings[f"run{r}"] = task.embed(model).cpu()
            if info.is_rank0:
                save_model(run_dir / "model.pt", model, builder=build_autoencoder, kwargs=kwargs,
                           transform=transform, meta={"metrics": result["best_metrics"], "seed": seed,
                                                      "best_epoch": result["best_epoch"],
                                                      "command": " ".join(sys.argv)})
            return {"metrics": result["best_metrics"], "best_epoch": result["best_epoch"],
                    "history": result["history"], "epoch_times": result["epoch_times"],
                    "extra": {"split": split.summary()}}

        summary = run_seeds(args, one_run, job="linkpred", config=config, say=say, write=info.is_rank0,
                            headline=("test_auc", "test_ap", "val_auc", "val_ap"),
                            title=f"{args.dataset} {args.model.upper()}",
                            extra={"loss": {"requested": args.loss, "chosen": loss, "note": note},
                                   "world_size": info.world_size})
        if info.is_rank0:
            torch.save(embeddings, out / "embeddings.pt")
        return summary
    finally:
        D.shutdown()

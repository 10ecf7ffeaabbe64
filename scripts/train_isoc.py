#!/usr/bin/env python
"""Train IsoC-VGAE, GAE or VGAE without labels, then probe the frozen embeddings.

    python scripts/train_isoc.py --task node  --dataset Cora   --model isoc_vgae --runs 5 --out runs/isoc/cora_node
    python scripts/train_isoc.py --task link  --dataset Cora   --model vgae      --runs 5 --out runs/isoc/cora_link_vgae
    python scripts/train_isoc.py --task graph --dataset MUTAG  --model isoc_vgae --runs 5 --out runs/isoc/mutag

Protocols (every model goes through the same splits and probes; run r uses seed + r):

* ``node``: Planetoid public split (20 labels per class) and the paper's split (train on all
  nodes outside the 500 validation / 1000 test nodes); logistic-regression and MLP probes.
* ``link``: ``random_link_split`` 85/5/10 (seeded by the run); the encoder sees only the
  training edges; inner-product and Hadamard-MLP probes.
* ``graph``: unsupervised training on all graphs, sum-pooled node embeddings; stratified
  10-fold CV and the paper's single 50/20/30 split, MLP probe.

Writes ``summary.json`` (metrics as mean ± std over runs, per-run values, config, timing,
versions) to ``--out``.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from vgraph.errors import VGraphError  # noqa: E402
from vgraph.models.isoc_vgae import IsoCVGAE  # noqa: E402
from vgraph.nn import KLConfig  # noqa: E402
from vgraph.ops import SparseGraph  # noqa: E402
from vgraph.runs import add_common_args, aggregate, format_metric, setup_runtime, versions, write_json  # noqa: E402
from vgraph.tasks import probes  # noqa: E402
from vgraph.tasks.linkpred import sparse_features  # noqa: E402
from vgraph.train import seed_everything  # noqa: E402

# Defaults per task: (conv, norm, dropout) as the authors' scripts set them.
TASK_DEFAULTS = {"node": ("gcn", "batchnorm", 0.0), "link": ("gcn", "batchnorm", 0.0),
                 "graph": ("gin", "pairnorm", 0.5)}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=["node", "link", "graph"], required=True)
    p.add_argument("--dataset", default="Cora", help="Cora/CiteSeer (node, link); MUTAG/PROTEINS/ENZYMES (graph)")
    p.add_argument("--model", choices=["isoc_vgae", "gae", "vgae"], default="isoc_vgae")
    p.add_argument("--dims", default="512,512", help="encoder layer widths (GAE/VGAE: hidden,latent)")
    # IsoC-VGAE
    p.add_argument("--conv", choices=["gcn", "gin"], default=None, help="default: gcn (node/link), gin (graph)")
    p.add_argument("--norm", choices=["none", "batchnorm", "pairnorm"], default=None,
                   help="default: batchnorm (node/link), pairnorm (graph)")
    p.add_argument("--activation", choices=["relu", "none"], default="relu",
                   help="encoder activation; 'none' reproduces the authors' code as run")
    p.add_argument("--enc-dropout", type=float, default=None)
    p.add_argument("--epochs", type=int, default=None, help="default: 30 (isoc, the authors' maximum), 200 (gae/vgae, Kipf)")
    p.add_argument("--lr", type=float, default=None, help="default: 1e-3 (isoc), 1e-2 (gae/vgae)")
    p.add_argument("--degree-lr", type=float, default=1e-2, help="lr of the degree MLPs (isoc)")
    p.add_argument("--weight-decay", type=float, default=3e-4, help="(isoc; authors: 3e-4)")
    p.add_argument("--patience", type=int, default=10, help="isoc: stop after this many epochs "
                   "without a lower training loss (the authors' rule); -1: never")
    p.add_argument("--lambda-self", type=float, default=1.0)
    p.add_argument("--lambda-nb", type=float, default=0.1)
    p.add_argument("--lambda-deg", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=64, help="graphs per batch (graph task)")
    # probes
    p.add_argument("--probe-epochs", type=int, default=50)
    p.add_argument("--probe-patience", type=int, default=10)
    p.add_argument("--probe-dropout", type=float, default=0.5)
    p.add_argument("--folds", type=int, default=10)
    p.add_argument("--no-cv", action="store_true", help="graph task: skip the k-fold CV")
    p.add_argument("--resume", action="store_true", help="keep finished runs (run<k>.json in --out) "
                   "whose configuration and seed match")
    add_common_args(p, "runs/isoc")
    args = p.parse_args(argv)
    conv, norm, drop = TASK_DEFAULTS[args.task]
    args.conv = args.conv or conv
    args.norm = args.norm or norm
    args.enc_dropout = drop if args.enc_dropout is None else args.enc_dropout
    iso = args.model == "isoc_vgae"
    args.epochs = args.epochs or (30 if iso else 200)
    args.lr = args.lr or (1e-3 if iso else 1e-2)
    args.dims = [int(d) for d in str(args.dims).split(",")]
    return args


# ----------------------------------------------------------------------------- models
def build_model(args, in_channels: int):
    if args.model == "isoc_vgae":
        return IsoCVGAE.build(in_channels, args.dims, conv=args.conv,
                              norm=None if args.norm == "none" else args.norm,
                              dropout=args.enc_dropout, activation=args.activation,
                              lambda_self=args.lambda_self, lambda_nb=args.lambda_nb,
                              lambda_deg=args.lambda_deg)
    from vgraph.models.factory import build_autoencoder
    return build_autoencoder(args.model, in_channels, hidden=args.dims[0], latent=args.dims[-1],
                             kl=KLConfig())


def make_optimizer(args, model):
    if args.model == "isoc_vgae":
        return torch.optim.Adam(model.param_groups(args.lr, args.degree_lr, args.weight_decay))
    return torch.optim.Adam(model.parameters(), lr=args.lr)


def dense_targets(edge_index: torch.Tensor, n: int):
    """Kipf's labels A + I with pos_weight and norm, for the GAE/VGAE dense loss."""
    loops = torch.arange(n).repeat(2, 1)
    pos = torch.cat([edge_index, loops], 1)
    num_pos = float(pos.size(1))
    return pos, (n * n - num_pos) / num_pos, n * n / ((n * n - num_pos) * 2)


def ae_step_loss(model, x, graph, edge_index, n, epoch):
    pos, pw, norm = dense_targets(edge_index, n)
    z = model.encode(x, graph)
    return model.loss(z, pos_pairs=pos, dense=True, pos_weight=pw, norm=norm, epoch=epoch)


def step_loss(args, model, x, graph, edge_index, epoch):
    if args.model == "isoc_vgae":
        out = model.loss(x, graph)
        return out.loss, out.terms()
    loss = ae_step_loss(model, x, graph, edge_index, graph.num_nodes, epoch)
    return loss, {"loss": float(loss.detach())}


class LowestLossKeeper:
    """The authors' rule for IsoC-VGAE: keep the weights of the lowest training loss and stop
    after ``patience`` epochs without a lower one (``patience < 0`` or another model: never)."""

    def __init__(self, args, model):
        self.active = args.model == "isoc_vgae" and args.patience >= 0
        self.patience, self.model = args.patience, model
        self.best, self.state, self.bad = math.inf, None, 0

    def update(self, loss: float) -> bool:
        """Record an epoch's loss; return True when training should stop."""
        if not self.active:
            return False
        if loss < self.best:
            self.best, self.state, self.bad = loss, copy.deepcopy(self.model.state_dict()), 0
            return False
        self.bad += 1
        return self.bad > self.patience

    def restore(self):
        if self.state is not None:
            self.model.load_state_dict(self.state)


def fit_full_graph(args, model, x, graph, edge_index):
    """Full-batch training; IsoC-VGAE keeps the epoch of lowest training loss (authors' rule)."""
    opt = make_optimizer(args, model)
    keeper, history = LowestLossKeeper(args, model), []
    for epoch in range(args.epochs):
        model.train()
        opt.zero_grad(set_to_none=True)
        loss, terms = step_loss(args, model, x, graph, edge_index, epoch)
        if not torch.isfinite(loss):
            raise VGraphError(f"loss became {float(loss)} at epoch {epoch}; try a lower --lr")
        loss.backward()
        opt.step()
        history.append(terms)
        if keeper.update(float(loss.detach())):
            break
    keeper.restore()
    return history


@torch.no_grad()
def node_embeddings(args, model, x, graph):
    model.eval()
    if args.model == "isoc_vgae":
        return model.embed(x, graph)
    return model.encode(x, graph)  # eval mode: mu for VGAE


# ------------------------------------------------------------------------------- tasks
def run_node(args, seed, data):
    n = data.num_nodes
    graph = SparseGraph(data.edge_index, n)
    x = sparse_features(data.x.float())
    model = build_model(args, data.x.size(1))
    hist = fit_full_graph(args, model, x, graph, data.edge_index)
    z = node_embeddings(args, model, x, graph)
    out = {"epochs_run": len(hist)}
    splits = {"public": (data.train_mask, data.val_mask, data.test_mask),
              "paper": probes.paper_node_split(data)}
    for name, (tr, va, te) in splits.items():
        lr = probes.node_logreg_probe(z, data.y, tr, va, te, seed=seed)
        mlp = probes.node_mlp_probe(z, data.y, tr, va, te, seed=seed, epochs=args.probe_epochs,
                                    patience=args.probe_patience, dropout=args.probe_dropout)
        out.update({f"{name}_logreg_test_acc": lr["test_acc"], f"{name}_logreg_val_acc": lr["val_acc"],
                    f"{name}_mlp_test_acc": mlp["test_acc"], f"{name}_mlp_val_acc": mlp["val_acc"]})
    return out


def run_link(args, seed, data):
    from vgraph.data import random_link_split
    n = data.num_nodes
    split = random_link_split(data.edge_index, n, 0.05, 0.10, seed)
    graph = SparseGraph(split.mp_edge_index, n)
    x = sparse_features(data.x.float())
    model = build_model(args, data.x.size(1))
    hist = fit_full_graph(args, model, x, graph, split.mp_edge_index)
    z = node_embeddings(args, model, x, graph)
    ip = probes.link_inner_product_probe(z, split)
    mlp = probes.link_mlp_probe(z, split, seed=seed, epochs=args.probe_epochs,
                                patience=args.probe_patience, dropout=args.probe_dropout)
    out = {"epochs_run": len(hist)}
    out.update({f"ip_{k}": v for k, v in ip.items()})
    out.update({f"mlp_{k}": v for k, v in mlp.items() if k != "best_epoch"})
    return out


def _graph_batches(ds, batch_size, gen, training: bool = True):
    """Batches of graphs in a random order drawn from ``gen``. The order matters beyond
    training: PairNorm centres over the whole batch, so a batch of *consecutive* graphs
    leaks the label into the embeddings of datasets stored sorted by class (PROTEINS,
    ENZYMES); embeddings are therefore also computed over randomly composed batches."""
    order = torch.randperm(len(ds), generator=gen)
    for start in range(0, len(ds), batch_size):
        idx = order[start:start + batch_size]
        if idx.numel() < 2 and training:
            continue  # BatchNorm needs two rows; a singleton batch is skipped in training
        x, ei, batch, _ = ds.subset(idx)
        yield idx, x, ei, batch


def fit_graphs(args, model, ds, seed):
    opt = make_optimizer(args, model)
    gen = torch.Generator().manual_seed(seed)
    keeper, history = LowestLossKeeper(args, model), []
    for epoch in range(args.epochs):
        model.train()
        total, count = 0.0, 0
        for idx, x, ei, _ in _graph_batches(ds, args.batch_size, gen):
            graph = SparseGraph(ei, x.size(0), _validated=True)
            opt.zero_grad(set_to_none=True)
            loss, _ = step_loss(args, model, x, graph, ei, epoch)
            if not torch.isfinite(loss):
                raise VGraphError(f"loss became {float(loss)} at epoch {epoch}; try a lower --lr")
            loss.backward()
            opt.step()
            total, count = total + float(loss.detach()) * idx.numel(), count + idx.numel()
        epoch_loss = total / max(count, 1)
        history.append({"loss": epoch_loss})
        if keeper.update(epoch_loss):
            break
    keeper.restore()
    return history


@torch.no_grad()
def graph_embeddings(args, model, ds, seed: int = 0):
    """Sum-pooled eval-mode embeddings, computed over random batches of ``--batch-size``
    graphs (PairNorm statistics are per batch, as in training; see :func:`_graph_batches`)."""
    out = torch.zeros(len(ds), args.dims[-1])
    gen = torch.Generator().manual_seed(seed + 7919)
    for idx, x, ei, batch in _graph_batches(ds, args.batch_size, gen, training=False):
        graph = SparseGraph(ei, x.size(0), _validated=True)
        z = node_embeddings(args, model, x, graph)
        out[idx] = probes.sum_pool(z, batch, idx.numel())
    return out


def run_graph(args, seed, ds):
    model = build_model(args, ds.num_features)
    hist = fit_graphs(args, model, ds, seed)
    g = graph_embeddings(args, model, ds, seed)
    kw = dict(epochs=args.probe_epochs, patience=args.probe_patience, dropout=args.probe_dropout)
    tr, va, te = probes.random_graph_split(len(ds), 0.2, 0.3, seed)
    single = probes.graph_mlp_probe(g, ds.y, tr, va, te, seed=seed, **kw)
    out = {"epochs_run": len(hist), "split_test_acc": single["test_acc"], "split_val_acc": single["val_acc"]}
    if not args.no_cv:
        cv = probes.graph_cv_probe(g, ds.y, folds=args.folds, seed=seed, **kw)
        out.update({"cv_test_acc": cv["test_acc"], "cv_fold_std": cv["test_acc_fold_std"]})
    return out


def load(args):
    if args.task == "graph":
        from vgraph.data.tu import load_tu
        return load_tu(args.dataset, args.root)
    from vgraph.data import load_planetoid
    return load_planetoid(args.dataset, args.root)


def main(argv=None):
    args = parse_args(argv)
    out = setup_runtime(args)
    try:
        data = load(args)
    except VGraphError as exc:
        sys.exit(f"error: {exc}")
    runner = {"node": run_node, "link": run_link, "graph": run_graph}[args.task]
    config = {k: v for k, v in vars(args).items() if k not in ("no_progress", "out", "threads", "resume")}
    print(f"{args.task} / {args.dataset} / {args.model}: dims={args.dims} epochs={args.epochs} "
          f"lr={args.lr} runs={args.runs}", flush=True)
    per_run, times = [], []
    run_key = {k: v for k, v in config.items() if k not in ("runs", "resume")}
    for r in range(args.runs):
        seed = args.seed + r
        done = out / f"run{r}.json"
        if args.resume and done.is_file():
            prev = json.loads(done.read_text())
            if prev.get("key") == json.loads(json.dumps(run_key, default=str)) and prev.get("seed") == seed:
                per_run.append(prev["metrics"])
                times.append(prev["time_s"])
                print(f"run {r} (seed {seed}): kept from {done}", flush=True)
                continue
        seed_everything(seed)
        t0 = time.perf_counter()
        metrics = runner(args, seed, data)
        times.append(time.perf_counter() - t0)
        per_run.append(metrics)
        write_json(done, {"seed": seed, "key": run_key, "metrics": metrics, "time_s": times[-1]})
        print(f"run {r} (seed {seed}, {times[-1]:.0f}s): "
              + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if "test" in k), flush=True)
    agg = aggregate(per_run)
    print(f"{args.dataset} {args.model} over {args.runs} runs: "
          + "  ".join(format_metric(k, v) for k, v in agg.items() if "test" in k))
    summary = {"job": f"isoc_{args.task}", "task": args.task, "dataset": args.dataset,
               "model": args.model, "metrics": agg, "per_run": per_run, "config": config,
               "command": "python scripts/train_isoc.py " + " ".join(sys.argv[1:] if argv is None else argv),
               "timing": {"run_s": times, "total_s": sum(times)}, "versions": versions()}
    write_json(out / "summary.json", summary)
    return summary


if __name__ == "__main__":
    main()

"""vgraph ddi — drug–drug interactions: ogbl-ddi (Hits@K) or DrugBank 86 types.

    vgraph ddi --dataset ogbl-ddi --runs 3 --out runs/ogbl_ddi
    vgraph ddi --dataset ogbl-ddi --preset ogb-sage --out runs/ogbl_sage
    vgraph ddi --dataset drugbank --protocol warm --out runs/db_warm
    vgraph ddi --dataset drugbank --protocol cold --folds 0 1 2 --out runs/db_cold
    vgraph ddi --dataset drugbank --encoder atoms --out runs/db_warm_atoms

Writes summary.json (mean ± std at the best-validation epoch), model.pt (the best run: what
`vgraph predict-ddi` reads), curves.png and run<k>/ (log.jsonl, best.pt, last.pt). Cold start
runs one run per --folds entry (run r: the r-th fold, seed --seed + r).

ogbl-ddi presets (--preset; flags given explicitly override the preset's values):
  vgraph      the default: the OGB GraphSAGE recipe with each batch's target edges masked
              from its message passing, 170 epochs (docs/models/ddi.md: what was measured)
  ogb-sage    the OGB example's GraphSAGE recipe (examples/linkproppred/ddi/gnn.py --use_sage)
  linear-gcn  Refined-GAE's tricks at width 256: linear 2-step GCN with a 0.1 input residual on
              orthogonal embeddings, target masking, clipping, linear lr decay (the old default)
  v1          the issue-6 configuration (SAGE 128, dot decoder, one full-graph step an epoch)
For ogbl-ddi, log.jsonl has val/test Hits@K and time_s (wall seconds since the run started)
per evaluation, curves.png plots validation Hits@20 against time_s, and summary.json's
timing has median_step_s.

DrugBank encoders (--encoder): descriptors (RDKit descriptors + Morgan bits -> MLP,
ContextDDIModel) or atoms (message passing over each drug's atom graph with bond types, one
substructure readout per layer, substructure co-attention decoder: AtomDDIModel). Either way
a drug's latent comes from its structure and, through the GraphSAGE layers, from its partners
in the training graph; a drug without partners (cold start, a new SMILES) from its structure
alone. summary.json's timing has median_epoch_s (training only) and each run's
seconds_per_epoch.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from vgraph.chem.descriptors import DrugFeaturizer, raw_drug_features
from vgraph.chem.drug_graphs import atom_feature_sizes, drug_atom_graphs, num_bond_types
from vgraph.data.drugbank import COLD_NEGATIVES, cold_split, warm_split
from vgraph.data.registry import load
from vgraph.errors import DataFormatError
from vgraph.models.ddi import AtomDDIModel, ContextDDIModel, EmbeddingLinkPredictor, atom_batch
from vgraph.runs import (add_common_args, add_kl_args, bounded, dropout_rate, job_entry, job_parser,
                         kl_from_args, nonneg_float, nonneg_int, plot_curves, positive_float, positive_int,
                         prepare_out, resolved_config, run_seeds, write_json)
from vgraph.tasks.ddi_predict import save_drugbank_atom_predictor, save_drugbank_predictor, save_ogbl_predictor
from vgraph.tasks.drugbank import DrugBankTask
from vgraph.tasks.ogbl_ddi import PRESETS, OgblDDITask, make_optimizer
from vgraph.train import Trainer, seed_everything

DEFAULTS = {"ogbl-ddi": PRESETS["vgraph"],
            "drugbank": dict(epochs=20, lr=0.002, hidden=128, layers=2, dropout=0.3, batch_size=8192,
                             eval_every=1, protocol="warm", latent=64, isolate=0.2, encoder="descriptors",
                             mol_layers=3, mol_hidden=64, mol_features="descriptors", ship=None,
                             cross_attention=0, cold_negatives="files", evaluate=None)}
ATOMS_ONLY = ("mol_layers", "mol_hidden", "mol_features", "ship", "cross_attention")
ONLY = {"ogbl-ddi": ("preset", "variational", *(k for k in PRESETS["v1"] if k not in DEFAULTS["drugbank"])),
        "drugbank": ("protocol", "folds", "latent", "isolate", "encoder", "cold_negatives", "evaluate",
                     *ATOMS_ONLY)}
HEADLINE = {"ogbl-ddi": ("test_hits@10", "test_hits@20", "test_hits@30", "val_hits@20"),
            "warm": ("test_acc", "test_auroc", "test_auprc", "test_f1", "val_auroc"),
            "cold": ("s1_acc", "s1_auroc", "s1_auprc", "s1_f1", "s2_acc", "s2_auroc", "s2_auprc",
                     "s2_f1", "val_auroc")}


def parse_args(argv=None, prog=None):
    p = job_parser(prog, __doc__)
    p.add_argument("--dataset", choices=["ogbl-ddi", "drugbank"], default="ogbl-ddi", help="benchmark")
    per = dict(default=argparse.SUPPRESS)  # per-dataset defaults, filled in below
    p.add_argument("--protocol", choices=["warm", "cold"], **per,
                   help="drugbank: warm (random 8/1/1, the default) or cold (DSN-DDI folds)")
    p.add_argument("--folds", type=bounded(int, 0, 2), nargs="+", **per, help="drugbank cold: folds (0 1 2)")
    for flag, kind, what in (("epochs", positive_int, "epochs"), ("lr", positive_float, "Adam learning rate"),
                             ("hidden", positive_int, "width of embeddings/encoder layers"),
                             ("layers", nonneg_int, "graph layers (drugbank may use 0)"),
                             ("dropout", dropout_rate, "dropout"),
                             ("batch-size", positive_int, "positive edges/tuples per step"),
                             ("eval-every", positive_int, "evaluate every k epochs")):
        key = flag.replace("-", "_")
        p.add_argument(f"--{flag}", type=kind, **per, help=f"{what} (ogbl-ddi {DEFAULTS['ogbl-ddi'][key]}, "
                                                         f"drugbank {DEFAULTS['drugbank'][key]})")
    p.add_argument("--latent", type=positive_int, **per, help="drugbank: latent width (64)")
    p.add_argument("--isolate", type=dropout_rate, **per,
                   help="drugbank: fraction of drugs whose graph edges are dropped per step (0.2)")
    p.add_argument("--cold-negatives", choices=COLD_NEGATIVES, **per,
                   help="drugbank cold: evaluation negatives, files (the $h/$t column of val/s1/s2, the default) "
                        "or dsn-ddi (drawn once, seeded, the way DSN-DDI's own evaluation draws them: from the "
                        "set's own drugs, head or tail by the per-type bern rule)")
    p.add_argument("--evaluate", nargs="+", metavar="MODEL", default=argparse.SUPPRESS,
                   help="drugbank cold: train nothing; evaluate these model.pt files, one per --folds entry, "
                        "on their folds (e.g. with --cold-negatives dsn-ddi) and write summary.json")
    p.add_argument("--encoder", choices=["descriptors", "atoms"], **per,
                   help="drugbank: structure encoder, descriptors (RDKit descriptors + Morgan bits) or atoms "
                        "(atom-graph message passing + substructure co-attention) (descriptors)")
    p.add_argument("--mol-layers", type=positive_int, **per,
                   help="drugbank --encoder atoms: message-passing layers = substructure readouts (3)")
    p.add_argument("--mol-features", choices=["none", "fingerprint", "descriptors"], **per,
                   help="drugbank --encoder atoms: molecule-level features beside the atom-graph readouts: none, "
                        "Morgan bits, or descriptors (the descriptor encoder's input: RDKit descriptors + Morgan "
                        "bits) (descriptors)")
    p.add_argument("--ship", default=argparse.SUPPRESS,
                   help="drugbank --encoder atoms: also write the best run's model with float16 weights to this "
                        "path (and <path>.json: command, metrics), e.g. vgraph/chem/pretrained/drugbank_ddi.pt")
    p.add_argument("--mol-hidden", type=positive_int, **per,
                   help="drugbank --encoder atoms: width of the atom encoder (64); --latent is then per substructure")
    p.add_argument("--cross-attention", type=nonneg_int, **per,
                   help="drugbank --encoder atoms: width of the atom-level cross attention between the two drugs "
                        "of a pair (0: off, the default; 64 is what docs/results.md measured)")
    g = p.add_argument_group("ogbl-ddi (defaults: the --preset's values)")
    g.add_argument("--preset", choices=sorted(PRESETS), **per, help="ogbl-ddi recipe (vgraph)")
    g.add_argument("--num-neg", type=positive_int, **per, help="negatives per positive")
    g.add_argument("--conv", choices=EmbeddingLinkPredictor.CONVS, **per,
                   help="encoder; gcn-linear: GCN propagation with no non-linearity")
    g.add_argument("--residual", type=nonneg_float, **per, help="weight of the input embeddings added to every layer")
    g.add_argument("--decoder", choices=EmbeddingLinkPredictor.DECODERS, **per,
                   help="inner product, MLP on z_i*z_j, that plus the common neighbours' embedding sum (ncn), or plus the "
                        "pair's common-neighbour count / resource-allocation / Adamic-Adar scores (mlp-cn)")
    g.add_argument("--mlp-layers", type=positive_int, **per, help="layers of the decoder MLP")
    g.add_argument("--pair-dropout", type=dropout_rate, **per,
                   help="--decoder mlp: dropout on z_i*z_j before the decoder's first layer (PLNLP); 0: off")
    g.add_argument("--embedding-dim", type=nonneg_int, **per,
                   help="width of the learnable node embeddings (the first layer maps it to --hidden); "
                        "0: --hidden")
    g.add_argument("--cn-channels", type=nonneg_int, **per,
                   help="--decoder ncn: project the embeddings to this many columns before the common-neighbour "
                        "sum (a rank limit that makes the sum that much cheaper); 0: full width")
    g.add_argument("--loss", choices=EmbeddingLinkPredictor.LOSSES, **per,
                   help="bce; ranking: -log sigmoid(s_pos - s_neg), auc: (1 - (s_pos - s_neg))^2, over each "
                        "positive's --num-neg negatives")
    g.add_argument("--mask-targets", action=argparse.BooleanOptionalAction, **per,
                   help="remove each batch's positive edges from that step's message passing")
    g.add_argument("--drop-edges", type=dropout_rate, **per,
                   help="also remove this fraction of training edges, fresh every step, from message passing")
    g.add_argument("--grad-clip", type=nonneg_float, **per, help="clip gradient norms (per parameter group); 0: off")
    g.add_argument("--lr-decay", action=argparse.BooleanOptionalAction, **per, help="linear lr decay to 0")
    g.add_argument("--init", choices=["xavier", "orthogonal"], **per, help="initialisation of the embeddings")
    g.add_argument("--embedding-dropout", action=argparse.BooleanOptionalAction, **per,
                   help="dropout on the embeddings fed to the first layer")
    g.add_argument("--ema", type=bounded(float, 0, 1, hi_open=True), **per,
                   help="evaluate, select and save an exponential moving average of the weights with this decay "
                        "(updated every step; training itself is unchanged); 0: off")
    g.add_argument("--variational", action="store_true", **per, help="VGAE latent")
    p.add_argument("--weight-decay", type=nonneg_float, default=0.0, help="Adam weight decay")
    p.add_argument("--patience", type=positive_int, default=None, help="early stopping (evaluations)")
    add_kl_args(p, beta=1e-3, norm="node")
    add_common_args(p, "runs/ddi", resume=True, plot=True)
    args = p.parse_args(argv)
    other = "drugbank" if args.dataset == "ogbl-ddi" else "ogbl-ddi"
    for key in ONLY[other]:
        if hasattr(args, key):
            p.error(f"--{key.replace('_', '-')} applies to --dataset {other} only")
    if args.dataset == "ogbl-ddi":
        args.preset = getattr(args, "preset", "vgraph")
    elif getattr(args, "encoder", DEFAULTS["drugbank"]["encoder"]) != "atoms":
        for key in ATOMS_ONLY:
            if hasattr(args, key):
                p.error(f"--{key.replace('_', '-')} applies to --encoder atoms only")
    base = PRESETS[args.preset] if args.dataset == "ogbl-ddi" else DEFAULTS["drugbank"]
    for key, value in {**base, "variational": False, "folds": None}.items():
        if not hasattr(args, key):
            setattr(args, key, value)
    if args.device != "cpu":
        p.error(f"--device {args.device}: vgraph ddi trains on the CPU only")
    if args.dataset == "ogbl-ddi" and args.layers < 1:
        p.error("--layers must be >= 1 for ogbl-ddi")
    if args.dataset == "ogbl-ddi" and args.pair_dropout and args.decoder != "mlp":
        p.error(f"--pair-dropout applies to --decoder mlp only, got --decoder {args.decoder}")
    if args.dataset == "ogbl-ddi" and args.residual and args.embedding_dim not in (0, args.hidden):
        p.error(f"--residual needs --embedding-dim equal to --hidden ({args.hidden}), got {args.embedding_dim}")
    kl_flags = ("beta", "kl_norm", "kl_warmup", "kl_cycles", "kl_capacity", "kl_gamma", "free_bits")
    if args.dataset == "ogbl-ddi" and not args.variational and any(
            getattr(args, k) != p.get_default(k) for k in kl_flags):
        p.error("the KL flags need --variational for ogbl-ddi")
    if args.dataset == "drugbank" and args.protocol == "cold":
        if args.runs != 1:
            p.error("--runs does not apply to --protocol cold: it runs one run per --folds entry")
        args.folds = args.folds or [0, 1, 2]
        args.runs = len(args.folds)
        if args.evaluate is not None and len(args.evaluate) != len(args.folds):
            p.error(f"--evaluate: give one model file per fold ({len(args.folds)} folds, "
                    f"{len(args.evaluate)} files)")
    elif args.folds is not None:
        p.error("--folds applies to --protocol cold only")
    elif args.dataset == "drugbank" and (args.cold_negatives != "files" or args.evaluate is not None):
        p.error("--cold-negatives and --evaluate apply to --protocol cold only")
    return args


def _fit(args, model, task, run_dir, monitor, config, desc, opt=None, scheduler=None, ema=None):
    opt = opt or torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    res = Trainer(model, task, opt, epochs=args.epochs, monitor=monitor, patience=args.patience,
                  eval_every=args.eval_every, out_dir=run_dir, config=config, resume=args.resume,
                  progress=not args.no_progress, desc=desc, scheduler=scheduler, ema_decay=ema or None).fit()
    return {"metrics": res["best_metrics"], "best_epoch": res["best_epoch"] + 1,
            "history": res["history"], "epoch_times": res["epoch_times"]}


def ogbl(args, config):
    best, histories, steps = {}, [], []
    data = load("ogbl-ddi", args.root)
    print(f"ogbl-ddi: {data.summary()}; preset {args.preset}", flush=True)
    task = OgblDDITask(data, args.batch_size, args.num_neg, args.seed, mask_targets=args.mask_targets,
                       drop_edges=args.drop_edges)

    def one_run(r, seed, run_dir):
        seed_everything(seed)
        kwargs = dict(num_nodes=data.num_nodes, embedding_dim=args.embedding_dim or args.hidden,
                      hidden_channels=args.hidden, num_layers=args.layers, conv=args.conv, dropout=args.dropout,
                      decoder=args.decoder, mlp_layers=args.mlp_layers, variational=args.variational,
                      kl=kl_from_args(args).to_dict(), embedding_dropout=args.embedding_dropout,
                      residual=args.residual, init=args.init, loss=args.loss, cn_channels=args.cn_channels,
                      pair_dropout=args.pair_dropout)
        model = EmbeddingLinkPredictor(**kwargs)
        task.prepare(model, seed)
        opt, scheduler = make_optimizer(model, args.lr, args.weight_decay, args.grad_clip, args.lr_decay, args.epochs)
        res = _fit(args, model, task, run_dir, "val_hits@20", {**config, "run_seed": seed}, f"run {r}", opt, scheduler,
                   ema=args.ema)
        time_to_best = res["metrics"].pop("time_s", None)
        histories.append(res["history"])
        steps.extend(task.step_times)
        if not best or res["metrics"]["val_hits@20"] > best["score"]:
            best.update(score=res["metrics"]["val_hits@20"], run=r, model=model, kwargs=kwargs,
                        z=task.embed(model))
        return {**res, "extra": {"time_to_best_s": time_to_best, "median_step_s": task.median_step_s(),
                                 "steps": len(task.step_times)}}

    summary = run_seeds(args, one_run, job="ddi/ogbl-ddi", config=config, headline=HEADLINE["ogbl-ddi"],
                        curve=None, extra={"dataset": data.summary(),
                                           "preset": {"name": args.preset, "flags": PRESETS[args.preset]}})
    if steps:  # this process's steps (a --resume counts only the steps it ran)
        summary["timing"]["median_step_s"] = statistics.median(steps)
    write_json(Path(args.out) / "summary.json", summary)
    if not args.no_plot and any(histories):
        plot_curves(histories, Path(args.out) / "curves.png", y="val_hits@20", x="time_s",
                    ylabel="validation Hits@20")
    save_ogbl_predictor(Path(args.out) / "model.pt", best["model"], best["kwargs"], best["z"], data.node_drug_ids,
                        meta={"run": best["run"], "val_hits@20": best["score"]})
    return summary


def drugbank_evaluate(args, config):
    """``--evaluate``: each fold's model file on its fold's evaluation sets, no training."""
    from vgraph.tasks.ddi_predict import load_predictor
    data = load("drugbank", args.root)

    def one_run(r, seed, run_dir):
        split = cold_split(data, args.folds[r], args.cold_negatives, seed)
        predictor = load_predictor(args.evaluate[r])
        if getattr(predictor, "drug_ids", None) != list(data.drug_ids):
            raise DataFormatError(f"{args.evaluate[r]} is not a DrugBank model of this drug table")
        print(f"run {r}: {split.summary()}; {args.evaluate[r]}", flush=True)
        return {"metrics": predictor.evaluate(split), "extra": {"split": split.summary(),
                                                                 "model": str(args.evaluate[r])}}

    summary = run_seeds(args, one_run, job="ddi/drugbank-evaluate", config=config, headline=HEADLINE["cold"],
                        title=f"drugbank cold, {args.cold_negatives} negatives", curve=None,
                        extra={"protocol": "cold", "cold_negatives": args.cold_negatives})
    return summary


def drugbank(args, config):
    if args.evaluate is not None:
        return drugbank_evaluate(args, config)
    best = {}
    data = load("drugbank", args.root)
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if args.encoder == "atoms":
        t0 = time.perf_counter()
        graphs = drug_atom_graphs(data.smiles, progress=not args.no_progress, say=say)  # once (cached)
        featurise_s = time.perf_counter() - t0
    if args.encoder == "descriptors" or args.mol_features == "descriptors":
        desc, fps = raw_drug_features(data.smiles, progress=not args.no_progress, say=say)  # once (cached)
    print(f"drugbank: {data.num_drugs} drugs, {data.tuples.size(0)} tuples", flush=True)

    def one_run(r, seed, run_dir):
        split = warm_split(data, seed) if args.protocol == "warm" else \
            cold_split(data, args.folds[r], args.cold_negatives, seed)
        print(f"run {r}: {split.summary()}", flush=True)
        feat = None
        if args.encoder == "atoms":
            if args.mol_features == "descriptors":  # scaled on the training drugs, as the descriptor encoder
                feat = DrugFeaturizer().fit_raw(desc[split.train_drugs.numpy()])
                x = atom_batch(graphs, features=feat.transform_raw(desc, fps))
            else:
                x = atom_batch(graphs, features="fingerprint" if args.mol_features == "fingerprint" else None)
            seed_everything(seed)
            kwargs = dict(atom_sizes=atom_feature_sizes(), num_bond_types=num_bond_types(),
                          mol_hidden=args.mol_hidden, mol_layers=args.mol_layers, hidden=args.hidden,
                          latent=args.latent, dropout=args.dropout, graph_layers=args.layers,
                          kl=kl_from_args(args).to_dict(),
                          mol_features=0 if x.features is None else int(x.features.size(1)),
                          cross_attention=args.cross_attention)
            task = DrugBankTask(split, x, args.batch_size, args.isolate, seed)
            model = AtomDDIModel(**kwargs)
        else:
            # descriptor scaling from the training drugs only (cold start: test drugs are unseen)
            feat = DrugFeaturizer().fit_raw(desc[split.train_drugs.numpy()])
            x = feat.transform_raw(desc, fps)
            seed_everything(seed)
            task = DrugBankTask(split, x, args.batch_size, args.isolate, seed)
            kwargs = dict(in_features=x.size(1), hidden=args.hidden, latent=args.latent, dropout=args.dropout,
                          graph_layers=args.layers, kl=kl_from_args(args).to_dict())
            model = ContextDDIModel(**kwargs)
        res = _fit(args, model, task, run_dir, "val_auroc", {**config, "run_seed": seed, "split": split.protocol},
                   f"run {r}")
        calibration = task.calibrate(model)  # temperature on validation; the metrics above are unchanged
        if not best or res["metrics"]["val_auroc"] > best["score"]:
            best.update(score=res["metrics"]["val_auroc"], run=r, model=model, kwargs=kwargs, feat=feat,
                        pairs=task.pairs.clone(), calibration=calibration, split=split,
                        metrics=res["metrics"])
        times = res["epoch_times"]
        return {**res, "extra": {"split": split.summary(), "encoder": args.encoder,
                                 "seconds_per_epoch": statistics.fmean(times) if times else None,
                                 "calibration": calibration}}

    summary = run_seeds(args, one_run, job="ddi/drugbank", config=config, headline=HEADLINE[args.protocol],
                        title=f"drugbank {args.protocol}", curve="val_auroc",
                        extra={"protocol": args.protocol, "encoder": args.encoder})
    summary["calibration"] = best["calibration"]  # of the run model.pt holds
    desc_or_none = desc if args.encoder == "atoms" and args.mol_features == "descriptors" else None
    temperature = best["calibration"]["temperature"]
    if args.encoder == "atoms":
        summary["timing"]["featurise_s"] = featurise_s
        meta = {"run": best["run"], "val_auroc": best["score"], "protocol": args.protocol,
                "command": summary["command"], "temperature": temperature}
        meta["mol_features"] = args.mol_features
        save_drugbank_atom_predictor(Path(args.out) / "model.pt", best["model"], best["kwargs"], data, graphs,
                                     best["pairs"], meta=meta, featurizer=best["feat"], raw_desc=desc_or_none)
        if args.ship:
            summary["shipped"] = ship_drugbank_model(Path(args.ship), best, data, graphs, meta, summary,
                                                     desc_or_none)
    else:
        save_drugbank_predictor(Path(args.out) / "model.pt", best["model"], best["kwargs"], best["feat"], data,
                                desc, fps, best["pairs"], meta={"run": best["run"], "val_auroc": best["score"],
                                                                "temperature": temperature})
    write_json(Path(args.out) / "summary.json", summary)
    return summary


def _as_vgraph_command(command: str) -> str:
    """``__main__.py ddi ...`` (``python -m vgraph.cli ddi ...``) written as ``vgraph ddi ...``."""
    return "vgraph" + command[len("__main__.py"):] if command.startswith("__main__.py ") else command


def ship_drugbank_model(path: Path, best: dict, data, graphs, meta: dict, summary: dict, raw_desc=None) -> dict:
    """Write the best run's atom model with float16 weights to ``path`` (e.g. the package's
    vgraph/chem/pretrained/drugbank_ddi.pt), evaluate that file on the run's split, and write
    ``path.json`` beside it: the training command, the run's metrics, the shipped file's."""
    import hashlib
    from vgraph.tasks.ddi_predict import load_predictor
    path.parent.mkdir(parents=True, exist_ok=True)
    save_drugbank_atom_predictor(path, best["model"], best["kwargs"], data, graphs, best["pairs"],
                                 meta={**meta, "test_metrics_fp32": best["metrics"]}, half=True,
                                 featurizer=best["feat"], raw_desc=raw_desc)
    shipped = load_predictor(path).evaluate(best["split"])
    info = {"file": path.name, "bytes": path.stat().st_size,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "weights": "float16",
            "trained_with": _as_vgraph_command(summary["command"]), "protocol": meta["protocol"],
            "split": best["split"].summary(),
            "best_epoch": summary["per_run"][best["run"]]["best_epoch"],
            "seconds_per_epoch": summary["per_run"][best["run"]]["extra"]["seconds_per_epoch"],
            "metrics_fp32_model": best["metrics"], "metrics_shipped_file": shipped,
            "calibration": best["calibration"], "versions": summary["versions"]}
    write_json(path.with_suffix(".json"), info)
    print(f"shipped {path} ({info['bytes']} bytes, float16): " + "  ".join(
        f"{k} {v:.4f}" for k, v in shipped.items() if k.startswith(("test", "s1", "s2"))), flush=True)
    return info



@job_entry
def main(argv=None, prog="vgraph ddi"):
    args = parse_args(argv, prog)
    prepare_out(args)
    return (ogbl if args.dataset == "ogbl-ddi" else drugbank)(args, resolved_config(args))

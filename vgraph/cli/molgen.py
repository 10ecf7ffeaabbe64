"""Train a molecule generator (MolVAE, CatFlow or SmilesVAE) and score samples from it.

    vgraph molgen --dataset qm9 --model molvae --epochs 1 --out runs/qm9_molvae
    vgraph molgen --dataset qm9 --model catflow --epochs 20 --layers 4 --bf16 --out runs/qm9_catflow
    vgraph molgen --dataset moses --model smilesvae --batch-size 512 --num-samples 30000 --out runs/moses_smilesvae
    vgraph molgen --dataset my_molecules.smi --model molvae --out runs/mine

``--dataset`` is ``qm9``, ``moses``, ``zinc250k`` or a SMILES file (``.smi``/``.txt``: one
SMILES per line; ``.csv``: a ``smiles`` column). Unusable lines are skipped and counted.
Writes ``model.pt`` (``vgraph generate --checkpoint`` or ``vgraph.load`` read it),
``log.jsonl`` (loss per step), ``diagnostics.jsonl`` (per epoch: validation loss, and for
MolVAE the KL per latent dimension and the active units), ``samples.smi`` and
``summary.json`` (skip counts, timings, and the metrics of ``--num-samples`` samples; written
once training ends, then again with the metrics).
"""
from __future__ import annotations

import math
import sys
import time

import torch

from vgraph.chem import atom_count_histogram, load_molecules
from vgraph.runs import (add_common_args, add_kl_args, bounded, job_entry, job_parser, kl_from_args, nonneg_float,
                         nonneg_int, positive_float, positive_int, prepare_out, resolved_config, versions,
                         write_json)
from vgraph.models.catflow import TIME_SCHEDULES
from vgraph.tasks import molgen
from vgraph.train import Trainer, seed_everything


def build_parser(prog=None):
    p = job_parser(prog, __doc__)
    p.add_argument("--dataset", default="qm9", help="qm9, moses, zinc250k, or a SMILES file")
    p.add_argument("--model", choices=tuple(molgen.GENERATORS), default="molvae")
    p.add_argument("--epochs", type=positive_float, default=1.0, help="passes over the training set (fractions allowed)")
    p.add_argument("--max-steps", type=positive_int, default=None, help="cap on optimiser steps")
    p.add_argument("--eval-every", type=positive_int, default=None,
                   help="optimiser steps between validations and resumable checkpoints (default: one pass "
                        "over the training set)")
    p.add_argument("--train-subset", type=positive_int, default=None, help="use only this many training molecules")
    p.add_argument("--max-atoms", type=positive_int, default=None, help="skip larger molecules")
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--hidden", type=positive_int, default=None, help="width (default: 512 for smilesvae, else 128)")
    p.add_argument("--layers", type=positive_int, default=None,
                   help="message-passing / denoiser layers, SmilesVAE's decoder GRU layers (default: 1 for "
                        "smilesvae, else 3)")
    p.add_argument("--latent", type=positive_int, default=None, help="VAE latent size (default: 64 for smilesvae, "
                                                                     "32 for molvae)")
    p.add_argument("--max-length", type=bounded(int, 1, 1000), default=100,
                   help="SmilesVAE: longest SMILES in tokens (longer training lines are skipped and counted; "
                        "a sample that reaches it unfinished is invalid)")
    p.add_argument("--grad-clip", type=positive_float, default=None,
                   help="clip the gradient norm (default: 5 for smilesvae, none otherwise)")
    p.add_argument("--edge-weight", type=nonneg_float, default=2.0, help="CatFlow bond CE weight")
    p.add_argument("--flow-steps", type=positive_int, default=50, help="CatFlow Euler steps when sampling")
    p.add_argument("--time-schedule", choices=list(TIME_SCHEDULES), default="uniform",
                   help="CatFlow: times of the Euler steps when sampling (see `vgraph generate`)")
    p.add_argument("--train-time", choices=list(TIME_SCHEDULES), default="uniform",
                   help="CatFlow: how training draws t (polydec: more weight near t = 1)")
    p.add_argument("--no-self-cond", action="store_true",
                   help="CatFlow without self-conditioning on its previous prediction")
    p.add_argument("--ema", type=bounded(float, 0, 1, hi_open=True), default=None,
                   help="decay of the weight moving average that is validated and saved "
                        "(default: 0.999 for catflow, none for molvae; 0 turns it off)")
    p.add_argument("--lr-schedule", choices=["constant", "cosine"], default=None,
                   help="cosine: linear warm-up then cosine decay to 5%% of --lr over the run "
                        "(default: constant for molvae, cosine otherwise)")
    p.add_argument("--warmup-steps", type=nonneg_int, default=500, help="warm-up of the cosine schedule")
    p.add_argument("--bf16", action="store_true",
                   help="train under bfloat16 autocast (about 1.5x faster on CPUs with AVX512-BF16)")
    p.add_argument("--num-samples", type=nonneg_int, default=1000, help="samples to score after training (0: none)")
    p.add_argument("--no-fcd", action="store_true", help="skip FCD")
    p.add_argument("--half", action="store_true", help="store model.pt weights as float16")
    p.add_argument("--init-from", default=None, metavar="MODEL",
                   help="start from the weights of a generator file (or 'molvae' / 'catflow', the shipped "
                        "QM9 models) built with the same --model, --hidden, --layers and vocabulary; the "
                        "optimiser and the lr schedule start afresh")
    add_kl_args(p, beta=1.0, norm="node")  # MolVAE's KL term, per molecule by default
    add_common_args(p, "runs/molgen", runs=False, resume=True)
    return p


@job_entry
def main(argv=None, prog=None):
    args = build_parser(prog).parse_args(argv)
    out = prepare_out(args)
    if args.num_samples and not args.no_fcd:
        from vgraph.metrics.molecules import require_fcd
        require_fcd()  # fail now, not after the training
    smiles_model = args.model == "smilesvae"
    for key, value in (("hidden", 512 if smiles_model else 128), ("layers", 1 if smiles_model else 3),
                       ("latent", 64 if smiles_model else 32), ("grad_clip", 5.0 if smiles_model else None)):
        if getattr(args, key) is None:
            setattr(args, key, value)
    seed_everything(args.seed)
    t0 = time.perf_counter()
    if smiles_model:
        data = molgen.load_smiles_splits(args.dataset, root=args.root, max_length=args.max_length, seed=args.seed,
                                         progress=not args.no_progress)
    else:
        data = load_molecules(args.dataset, root=args.root, max_atoms=args.max_atoms, seed=args.seed)
    train = data["train"]
    skipped = {s: ds.skipped for s, ds in data.items()}
    print(f"[data] {args.dataset}: " + ", ".join(f"{s} {len(ds)}" for s, ds in data.items())
          + (f"; {len(train.vocab)} tokens; longest {train.max_atoms} tokens" if smiles_model else
             f"; vocabulary {train.vocab.tokens}; max atoms {train.max_atoms}"))
    for s, counts in skipped.items():
        if any(counts.values()):
            print(f"[data] {s}: skipped {counts}")
    # novelty is always against the whole training split, the test metrics against the test split,
    # both as canonical SMILES
    full_train_smiles, test_smiles = _canonical_splits(args, data)
    train = molgen.training_subset(train, args.train_subset, args.seed)
    load_s = time.perf_counter() - t0

    if smiles_model:
        kl = kl_from_args(args, max(1, math.ceil(args.epochs)) if args.kl_cycles else 0)
        model = molgen.build_generator("smilesvae", train.vocab, 0, kl=kl, hidden=args.hidden, latent=args.latent,
                                       num_layers=args.layers, max_length=args.max_length)
    elif args.model == "molvae":
        kl = kl_from_args(args, max(1, math.ceil(args.epochs)) if args.kl_cycles else 0)
        model = molgen.build_generator("molvae", train.vocab, train.max_atoms, kl=kl, hidden=args.hidden,
                                       latent=args.latent, num_layers=args.layers)
    else:
        model = molgen.build_generator("catflow", train.vocab, train.max_atoms,
                                       atom_counts=atom_count_histogram(train), hidden=args.hidden,
                                       num_layers=args.layers, edge_weight=args.edge_weight,
                                       self_cond=not args.no_self_cond, train_time=args.train_time)
    if args.init_from:
        init_info = molgen.init_generator(model, args.init_from)
        print(f"[train] weights from {init_info['path']} ({init_info['meta'].get('command', 'no command recorded')})")
    device = torch.device(args.device)
    model.to(device)
    task = molgen.MolGenTask(train, batch_size=args.batch_size, seed=args.seed, device=device, bf16=args.bf16,
                             log_fn=molgen.EpochLog(out / "diagnostics.jsonl", append=args.resume))
    steps = int(math.ceil(args.epochs * task.steps_per_epoch))
    if args.max_steps:
        steps = min(steps, args.max_steps)
    eval_every = min(args.eval_every or task.steps_per_epoch, steps)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    if args.ema is None:
        args.ema = 0.999 if args.model == "catflow" else 0.0
    if args.lr_schedule is None:
        args.lr_schedule = "constant" if args.model == "molvae" else "cosine"
    scheduler = molgen.cosine_schedule(optimizer, steps, args.warmup_steps) if args.lr_schedule == "cosine" else None
    # what defines the training (a resumed run may change the rest: sampling, scoring, storage)
    config = resolved_config(args, drop=("resume", "overwrite", "no_progress", "out", "threads", "device",
                                         "num_samples", "no_fcd", "flow_steps", "time_schedule", "half"))
    print(f"[train] {args.model}: {sum(p.numel() for p in model.parameters())} parameters, {steps} steps "
          f"of {args.batch_size} ({task.steps_per_epoch} per epoch)", flush=True)
    trainer = Trainer(model, task, optimizer, epochs=steps, monitor="val_loss", mode="min",
                      eval_every=eval_every, out_dir=out, config=config, checkpoint_every=eval_every,
                      resume=args.resume, progress=not args.no_progress, desc=f"{args.model} steps",
                      scheduler=scheduler, ema_decay=args.ema or None, grad_clip=args.grad_clip)
    t1 = time.perf_counter()
    result = trainer.fit()
    train_s = time.perf_counter() - t1
    losses = [h["loss"] for h in result["history"]]
    head, tail = losses[:min(50, len(losses))], losses[-min(50, len(losses)):]
    command = " ".join([prog or "vgraph molgen", *(sys.argv[1:] if argv is None else argv)])
    meta = {"command": command, "steps": steps, "train_seconds": round(train_s, 1),
            "loss_first50": sum(head) / len(head), "loss_last50": sum(tail) / len(tail),
            "best_metrics": result["best_metrics"], "versions": versions()}
    molgen.save_generator(out / "model.pt", model, args.dataset, meta, half=args.half)
    print(f"[train] {train_s:.0f}s; mean loss first 50 steps {meta['loss_first50']:.3f} -> "
          f"last 50 {meta['loss_last50']:.3f}; saved {out / 'model.pt'}", flush=True)
    summary = {"dataset": args.dataset, "model": args.model, "config": config, "skipped": skipped,
               "sizes": {s: len(ds) for s, ds in data.items()}, "load_seconds": round(load_s, 1), **meta}
    write_json(out / "summary.json", summary)  # the training is recorded even if scoring fails
    if args.num_samples:
        t2 = time.perf_counter()
        samples = molgen.sample_smiles(model, args.num_samples, generator=torch.Generator().manual_seed(args.seed),
                                       progress=not args.no_progress,
                                       **molgen.sampler_options(args.model, flow_steps=args.flow_steps,
                                                                 time_schedule=args.time_schedule))
        summary["sample_seconds"] = round(time.perf_counter() - t2, 1)
        (out / "samples.smi").write_text("\n".join(samples) + "\n")
        summary["metrics"], _ = molgen.score_samples(samples, full_train_smiles, test_smiles or None,
                                                     fcd=not args.no_fcd)
        print("[samples] " + molgen.headline(summary["metrics"]))
        write_json(out / "summary.json", summary)
    return summary


def _canonical_splits(args, data) -> tuple[list, list]:
    """Canonical SMILES of the whole training split and of the test split. The graph models'
    datasets hold them already; SmilesVAE's hold the lines as given, so a benchmark's come from
    :func:`vgraph.chem.datasets.reference_smiles` (cached) and a user's file is canonicalised."""
    test = data.get("test")
    if args.model != "smilesvae":
        return data["train"].smiles, (test.smiles if test is not None else [])
    from vgraph.data.molecules import BENCHMARKS
    if args.dataset.lower() in BENCHMARKS:
        from vgraph.chem.datasets import reference_smiles
        ref = reference_smiles(args.dataset.lower(), args.root)
        return ref["train"], ref["test"]
    from vgraph.chem.featurize import canonical_smiles
    canon = lambda lines: [c for c in (canonical_smiles(s) for s in lines) if c]  # noqa: E731
    return canon(data["train"].smiles), canon(test.smiles) if test is not None else []

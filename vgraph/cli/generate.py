"""Sample molecules from a trained generator and score them.

    vgraph generate --num-samples 1000 --out runs/generated
    vgraph generate --checkpoint runs/qm9_catflow/model.pt --num-samples 10000 --flow-steps 50 --out runs/cf
    vgraph generate --checkpoint runs/qm9_catflow/model.pt --time-schedule polydec --threads 2 --out runs/cf2

Without ``--checkpoint`` the small QM9 MolVAE shipped in the package is used
(``vgraph/chem/pretrained/qm9_molvae.pt``; how it was trained: ``docs/models/molgen.md``);
``--checkpoint catflow`` is the QM9 CatFlow shipped beside it (``qm9_catflow.pt``, 45 epochs,
``docs/results.md`` §5).
Writes ``samples.smi`` (one SMILES per line; an empty line is an invalid sample),
``summary.json`` (the MOSES-style metrics), ``grid.png`` (an RDKit grid of the first
``--grid`` valid samples), ``properties.png`` (logP, SA, QED and weight of the samples
against the test set) and ``properties.csv`` (those values per valid sample). Novelty and
the test-set metrics need the checkpoint's dataset under the data root; without it, FCD and
the property distances use the QM9 test-set statistics shipped in the package, and
``summary.json`` says what was left out.
"""
from __future__ import annotations

import sys
import time

import torch

from vgraph.runs import (add_common_args, job_entry, job_parser, nonneg_int, positive_float, positive_int,
                         setup_runtime, versions, write_json)
from vgraph.models.catflow import TIME_SCHEDULES
from vgraph.tasks import molgen


def build_parser(prog=None):
    p = job_parser(prog, __doc__)
    p.add_argument("--checkpoint", default=None, help="model.pt of `vgraph molgen`, or a model shipped in the package: molvae (the default, "
                        "fast) or catflow (QM9 CatFlow, slower, closer to the test set)")
    p.add_argument("--num-samples", type=positive_int, default=1000, help="molecules to draw")
    p.add_argument("--temperature", type=positive_float, default=1.0, help="MolVAE sampling temperature")
    p.add_argument("--flow-steps", type=positive_int, default=50, help="CatFlow Euler steps")
    p.add_argument("--decode", choices=["argmax", "valence"], default="argmax",
                   help="CatFlow: plain argmax of the final posterior, or valence-limited reading of it")
    p.add_argument("--time-schedule", choices=list(TIME_SCHEDULES), default="uniform",
                   help="CatFlow: times of the Euler steps (polydec: finer towards the end, where bonds "
                        "are decided)")
    p.add_argument("--bf16", action="store_true",
                   help="CatFlow: run the denoiser under bfloat16 autocast (about 1.6x faster on CPUs with "
                        "AVX512-BF16, slower on CPUs without; samples differ from float32's)")
    p.add_argument("--batch-size", type=positive_int, default=1000, help="molecules sampled at once")
    p.add_argument("--reference", default="auto",
                   help="dataset for novelty/test metrics: auto (the checkpoint's), qm9, moses, zinc250k, none")
    p.add_argument("--no-fcd", action="store_true", help="skip FCD")
    p.add_argument("--grid", type=nonneg_int, default=24, help="molecules drawn in grid.png (0: no grid)")
    p.add_argument("--write-shipped-stats", action="store_true",
                   help="maintainers: write the --reference test set's FCD/property statistics into the "
                        "package (vgraph/chem/pretrained/refstats) and exit")
    add_common_args(p, "runs/generated", runs=False, plot=True)
    p.set_defaults(threads=1)
    for action in p._actions:  # the common flags' help, as this job reads them
        if action.dest == "threads":
            action.help = "torch CPU threads (sampling is many small ops: one is fastest on a busy CPU)"
        elif action.dest == "no_plot":
            action.help = "do not draw properties.png (nor write properties.csv)"
    return p


@job_entry
def main(argv=None, prog=None):
    args = build_parser(prog).parse_args(argv)
    out = setup_runtime(args)  # a rerun into the same --out replaces its samples: nothing to resume
    t0 = time.perf_counter()
    if args.write_shipped_stats:
        from vgraph.chem.datasets import reference_smiles
        from vgraph.metrics.molecules import write_shipped_stats
        name = "qm9" if args.reference == "auto" else args.reference
        path = write_shipped_stats(reference_smiles(name, args.root)["test"], name=name)
        print(f"wrote {path}")
        return {"shipped_stats": str(path)}
    model, info = molgen.load_generator(args.checkpoint, device=args.device)
    sampler = molgen.sampler_options(info["kind"], args.temperature, args.flow_steps, args.decode,
                                      args.time_schedule, bf16=args.bf16)
    gen = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    t1 = time.perf_counter()
    samples = molgen.sample_smiles(model, args.num_samples, batch_size=args.batch_size, generator=gen,
                                   progress=not args.no_progress, **sampler)
    sample_s = time.perf_counter() - t1
    (out / "samples.smi").write_text("\n".join(samples) + "\n")
    if args.grid:
        molgen.draw_grid(samples, out / "grid.png", args.grid)

    ref_name = info["dataset"] if args.reference == "auto" else args.reference
    refs = molgen.reference_sets(ref_name, args.root)
    if not args.no_fcd and (refs["test"] or refs["reference"] is not None):
        from vgraph.metrics.molecules import require_fcd
        require_fcd()  # one clear line, before the reference statistics are computed
    metrics, reference = molgen.score_samples(samples, refs["train"], refs["test"], reference=refs["reference"],
                                              fcd=not args.no_fcd, notes=refs["notes"])
    written = ["samples.smi", "summary.json"] + (["grid.png"] if args.grid else [])
    if not args.no_plot:
        values = molgen.plot_properties(samples, reference.props if reference is not None else None,
                                        out / "properties.png", label=f"{ref_name} test set")
        molgen.write_properties(out / "properties.csv", samples, values)
        written += ["properties.png", "properties.csv"]
    summary = {"checkpoint": info["path"], "model": info["kind"], "trained_on": info["dataset"],
               "num_samples": args.num_samples, "seed": args.seed, "sampler": sampler,
               "reference": ref_name, "sample_seconds": round(sample_s, 2),
               "total_seconds": round(time.perf_counter() - t0, 2), "metrics": metrics,
               "training": info["meta"].get("command"), "command": " ".join([prog or "vgraph generate", *(sys.argv[1:] if argv is None else argv)]),
               "versions": versions()}
    write_json(out / "summary.json", summary)
    print(f"{args.num_samples} samples from {info['kind']} ({info['path']}) in {sample_s:.1f}s")
    print(molgen.headline(metrics))
    for note in metrics["notes"]:
        print(f"note: {note}")
    print(f"wrote {', '.join(written)} in {out} ({summary['total_seconds']:.1f}s)")
    return summary

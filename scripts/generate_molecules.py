#!/usr/bin/env python
"""Sample molecules from a trained generator and score them.

    python scripts/generate_molecules.py --num-samples 1000 --out runs/generated
    python scripts/generate_molecules.py --checkpoint runs/qm9_catflow/model.pt --num-samples 10000 \\
        --flow-steps 50 --out runs/catflow_samples

Without ``--checkpoint`` the small QM9 MolVAE shipped in the package is used
(``vgraph/chem/pretrained/qm9_molvae.pt``; how it was trained: ``docs/models/molgen.md``).
Writes ``samples.smi`` (one SMILES per line; an empty line is an invalid sample),
``summary.json`` (the MOSES-style metrics of :func:`vgraph.metrics.molecules.evaluate_molecules`)
and ``grid.png`` (an RDKit grid of the first ``--grid`` valid samples). Novelty and the
test-set metrics (FCD, SNN, Frag, Scaf, property distances) need the checkpoint's dataset
under the data root; without it they are left out and ``summary.json`` says why.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from vgraph.chem.datasets import reference_smiles  # noqa: E402
from vgraph.chem.generators import load_generator  # noqa: E402
from vgraph.errors import VGraphError  # noqa: E402
from vgraph.metrics.molecules import evaluate_molecules, write_shipped_stats  # noqa: E402
from vgraph.runs import setup_runtime, versions, write_json  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None, help="model.pt from train_molgen.py (default: shipped QM9 MolVAE)")
    p.add_argument("--num-samples", type=int, default=1000)
    p.add_argument("--out", default="runs/generated")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=1.0, help="MolVAE sampling temperature")
    p.add_argument("--flow-steps", type=int, default=50, help="CatFlow Euler steps")
    p.add_argument("--decode", choices=["argmax", "valence"], default="argmax",
                   help="CatFlow: plain argmax of the final posterior, or valence-limited reading of it")
    p.add_argument("--reference", default="auto",
                   help="dataset for novelty/test metrics: auto (the checkpoint's), qm9, moses, zinc250k, none")
    p.add_argument("--no-fcd", action="store_true", help="skip FCD")
    p.add_argument("--write-shipped-stats", action="store_true",
                   help="maintainers: write the --reference test set's FCD/property statistics into the "
                        "package (vgraph/chem/pretrained/refstats) and exit")
    p.add_argument("--grid", type=int, default=24, help="molecules drawn in grid.png")
    p.add_argument("--root", default=None, help="data root (else $VGRAPH_DATA, else datasets/)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (sampling is many small ops: 1 is fastest on a busy CPU)")
    p.add_argument("--no-progress", action="store_true", help="hide the sampling progress bar")
    return p.parse_args(argv)


def draw_grid(smiles, path, count: int):
    """RDKit grid of the first ``count`` valid SMILES."""
    from rdkit import Chem
    from rdkit.Chem import Draw
    mols, legends = [], []
    for s in smiles:
        mol = Chem.MolFromSmiles(s) if s else None
        if mol is not None:
            mols.append(mol)
            legends.append(s)
        if len(mols) == count:
            break
    img = Draw.MolsToGridImage(mols, molsPerRow=6, subImgSize=(220, 180), legends=legends)
    img.save(str(path))


def main(argv=None):
    args = parse_args(argv)
    out = setup_runtime(args)
    t0 = time.perf_counter()
    if args.write_shipped_stats:
        name = "qm9" if args.reference == "auto" else args.reference
        path = write_shipped_stats(reference_smiles(name, args.root)["test"])
        print(f"wrote {path}")
        return {"shipped_stats": str(path)}
    try:
        model, info = load_generator(args.checkpoint, device=args.device)
    except VGraphError as exc:
        sys.exit(f"error: {exc}")
    gen = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    t1 = time.perf_counter()
    if info["kind"] == "molvae":
        samples = model.sample(args.num_samples, generator=gen, temperature=args.temperature,
                               progress=not args.no_progress)
        sampler = {"temperature": args.temperature}
    else:
        samples = model.sample(args.num_samples, steps=args.flow_steps, generator=gen, decode=args.decode,
                               progress=not args.no_progress)
        sampler = {"flow_steps": args.flow_steps, "decode": args.decode}
    sample_s = time.perf_counter() - t1
    (out / "samples.smi").write_text("\n".join(samples) + "\n")
    draw_grid(samples, out / "grid.png", args.grid)

    ref_name = info["dataset"] if args.reference == "auto" else args.reference
    train = test = None
    notes = []
    if ref_name and ref_name.lower() in ("qm9", "moses", "zinc250k"):
        try:
            ref = reference_smiles(ref_name, args.root)
            train, test = ref["train"], ref["test"]
        except VGraphError as exc:
            notes.append(f"no reference metrics: {exc}")
    elif ref_name and ref_name.lower() != "none":
        notes.append(f"no reference metrics: the checkpoint was trained on {ref_name!r}, not a benchmark; "
                     f"pass --reference qm9|moses|zinc250k")
    metrics = evaluate_molecules(samples, train=train, test=test, train_is_canonical=True, fcd=not args.no_fcd)
    metrics["notes"] = notes + metrics["notes"]
    summary = {"checkpoint": info["path"], "model": info["kind"], "trained_on": info["dataset"],
               "num_samples": args.num_samples, "seed": args.seed, "sampler": sampler,
               "reference": ref_name, "sample_seconds": round(sample_s, 2),
               "total_seconds": round(time.perf_counter() - t0, 2), "metrics": metrics,
               "training": info["meta"].get("command"), "versions": versions()}
    write_json(out / "summary.json", summary)
    keys = ("validity", "validity_connected", "uniqueness", "novelty", "FCD/Test", "SNN/Test", "IntDiv1")
    print(f"{args.num_samples} samples from {info['kind']} ({info['path']}) in {sample_s:.1f}s")
    print(" ".join(f"{k}={metrics.get(k) if not isinstance(metrics.get(k), float) else round(metrics[k], 4)}"
                   for k in keys))
    for note in metrics["notes"]:
        print(f"note: {note}")
    print(f"wrote {out / 'samples.smi'}, {out / 'summary.json'}, {out / 'grid.png'} "
          f"({summary['total_seconds']:.1f}s)")
    return summary


if __name__ == "__main__":
    main()

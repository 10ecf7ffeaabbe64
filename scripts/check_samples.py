"""Recount a generation run's validity and uniqueness from ``samples.smi`` with RDKit alone.

    python scripts/check_samples.py runs/gen_catflow/            # reads samples.smi and summary.json

No vgraph code is used for the counts: each line of ``samples.smi`` is one sample (an empty
line is a sample vgraph could not turn into a molecule), a sample is valid when
``Chem.MolFromSmiles`` parses and sanitises it, uniqueness is distinct canonical SMILES over
valid ones. Prints both numbers side by side and exits 1 if they disagree by more than 1e-9.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def recount(lines: list[str]) -> dict:
    from rdkit import Chem, RDLogger
    RDLogger.DisableLog("rdApp.*")
    canon = []
    for line in lines:
        mol = Chem.MolFromSmiles(line.strip()) if line.strip() else None
        if mol is not None:
            canon.append(Chem.MolToSmiles(mol))
    n = len(lines)
    return {"samples": n, "validity": len(canon) / n if n else 0.0,
            "validity_connected": sum("." not in c for c in canon) / n if n else 0.0,
            "uniqueness": len(set(canon)) / len(canon) if canon else None}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="a `vgraph generate` / `vgraph molgen` output folder")
    args = p.parse_args(argv)
    run = Path(args.run)
    samples = run / "samples.smi"
    if not samples.is_file():
        print(f"error: {samples} does not exist", file=sys.stderr)
        return 2
    lines = samples.read_text().split("\n")
    if lines and lines[-1] == "":
        lines = lines[:-1]  # the file ends with a newline
    ours = recount(lines)
    theirs = {}
    if (run / "summary.json").is_file():
        theirs = json.loads((run / "summary.json").read_text()).get("metrics", {})
    ok = True
    print(f"{'metric':<20} {'RDKit recount':>14} {'summary.json':>14}")
    for key in ("validity", "validity_connected", "uniqueness"):
        mine, stored = ours[key], theirs.get(key)
        same = stored is None or mine is None or abs(mine - stored) <= 1e-9
        ok &= same
        print(f"{key:<20} {mine if mine is not None else float('nan'):>14.4f} "
              f"{stored if stored is not None else float('nan'):>14.4f}{'' if same else '  MISMATCH'}")
    print(f"{ours['samples']} samples in {samples}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

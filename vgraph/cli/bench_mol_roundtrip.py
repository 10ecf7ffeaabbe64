"""SMILES -> graph -> SMILES round trip over whole datasets; reports the exceptions.

    vgraph bench mol-roundtrip --datasets qm9 moses_test --out runs/roundtrip

For every molecule, the canonical (non-isomeric) RDKit SMILES of the input must equal the
canonical SMILES of the molecule rebuilt from its graph, both with the stored hydrogen
counts (the featuriser's exact inverse) and without them (hydrogens filled from default
valences, which is how generated graphs are read). Writes ``roundtrip.json`` with the
counts, the fractions and every failing SMILES.
"""
from __future__ import annotations

from pathlib import Path

from vgraph.chem.datasets import round_trip_report
from vgraph.data.molecules import load_smiles
from vgraph.runs import job_entry, job_parser, positive_int, setup_runtime, versions, write_json

SETS = {"qm9": ("qm9", None), "moses_test": ("moses", "test"), "moses_test_scaffolds": ("moses", "test_scaffolds")}


def build_parser(prog=None):
    p = job_parser(prog, __doc__)
    p.add_argument("--datasets", nargs="+", default=["qm9", "moses_test"], choices=sorted(SETS))
    p.add_argument("--limit", type=positive_int, default=None, help="first N molecules of each set")
    p.add_argument("--root", default=None, help="data root (else $VGRAPH_DATA, else datasets/)")
    p.add_argument("--out", default="runs/roundtrip", help="output directory")
    return p


@job_entry
def main(argv=None, prog=None):
    args = build_parser(prog).parse_args(argv)
    out = setup_runtime(args)
    report = {"versions": versions()}
    for name in args.datasets:
        dataset, split = SETS[name]
        splits = load_smiles(dataset, args.root)
        smiles = [s for part in ([split] if split else list(splits)) for s in splits[part]]
        rep = report[name] = round_trip_report(smiles[:args.limit] if args.limit else smiles)
        print(f"{name}: {rep['molecules']} molecules; round trip with H counts {rep['fraction_with_hs']:.6f} "
              f"({len(rep['failures_with_hs'])} failures), without {rep['fraction_without_hs']:.6f} "
              f"({len(rep['failures_without_hs'])} failures); {len(rep['unparsable_input'])} inputs RDKit "
              f"cannot parse; {rep['seconds']}s", flush=True)
    write_json(Path(out) / "roundtrip.json", report)
    return report

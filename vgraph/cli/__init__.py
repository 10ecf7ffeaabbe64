"""The ``vgraph`` command: one subcommand per job.

    vgraph linkpred --dataset Cora --model vgae --runs 10
    vgraph predict-links --checkpoint runs/linkpred/run0/best.pt --pairs pairs.csv
    vgraph ddi --dataset drugbank --protocol warm
    vgraph predict-ddi --pairs pairs.csv --out predictions.csv
    vgraph molgen --dataset qm9 --model molvae
    vgraph generate --num-samples 1000 --out runs/gen
    vgraph bench kernels --quick

Each job lives in ``vgraph/cli/<job>.py`` as ``main(argv=None, prog=...)``: argparse and calls
into the library, nothing else. ``scripts/*.py`` are thin wrappers around the same functions.
"""
from __future__ import annotations

import importlib
import sys

# subcommand -> (module, one-line description)
JOBS = {
    "linkpred": ("vgraph.cli.linkpred", "train GAE/VGAE link prediction (Cora, CiteSeer, PubMed, an edge list)"),
    "predict-links": ("vgraph.cli.predict_links", "score node pairs with a trained link model"),
    "isoc": ("vgraph.cli.isoc", "IsoC-VGAE and baselines: node, link and graph level"),
    "ccvgae": ("vgraph.cli.ccvgae", "CCVGAE in few-edge regimes"),
    "metagraph": ("vgraph.cli.metagraph", "Meta-Graph / CC-Meta-Graph few-shot link prediction"),
    "ddi": ("vgraph.cli.ddi", "drug-drug interactions: ogbl-ddi or DrugBank 86 types"),
    "predict-ddi": ("vgraph.cli.predict_ddi", "predict interactions for a CSV of drug pairs"),
    "molgen": ("vgraph.cli.molgen", "train a molecule generator (MolVAE, CatFlow) on QM9 / MOSES"),
    "generate": ("vgraph.cli.generate", "sample molecules and score them (validity ... FCD)"),
    "bench": (None, "benchmarks: kernels, large-graph, vs-pyg, mol-roundtrip, ddi-ablation, common-neighbors"),
}
BENCHES = {name: (f"vgraph.cli.bench_{name.replace('-', '_')}", desc) for name, desc in {
    "kernels": "SpMM/SDDMM kernels vs MKL, torch, PyG, dense",
    "large-graph": "full-batch vs mini-batch on a large graph",
    "vs-pyg": "vgraph vs PyTorch Geometric, same protocol",
    "mol-roundtrip": "SMILES -> graph -> SMILES round trip",
    "ddi-ablation": "ogbl-ddi: what each trick buys in Hits@20 and seconds",
    "common-neighbors": "ogbl-ddi common-neighbour sum: compiled bit scan vs dense AND",
}.items()}


def _usage(table: dict, prog: str) -> str:
    width = max(len(k) for k in table)
    rows = "\n".join(f"  {name:<{width}}  {desc}" for name, (_, desc) in table.items())
    return f"usage: {prog} <command> [options]   ({prog} <command> --help for its options)\n\ncommands:\n{rows}\n"


def _dispatch(table: dict, argv: list[str], prog: str):
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(_usage(table, prog))
        return 0
    if argv[0] == "--version":
        from vgraph import __version__
        print(f"vgraph {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in table:
        sys.stderr.write(f"{prog}: error: unknown command {name!r} (choose from {', '.join(table)})\n")
        return 2
    if name == "bench":
        return _dispatch(BENCHES, rest, f"{prog} bench")
    module = importlib.import_module(table[name][0])
    return module.main(rest, prog=f"{prog} {name}")


def main(argv=None) -> int:
    """Entry point of the ``vgraph`` console command."""
    result = _dispatch(JOBS, list(sys.argv[1:] if argv is None else argv), "vgraph")
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())

"""Score node pairs with a link model trained by `vgraph linkpred`.

    vgraph predict-links --checkpoint runs/linkpred/run0/model.pt --pairs pairs.csv --out scores.csv

pairs.csv holds one pair of node ids per line (as the training graph names its nodes). The
output has a row per input row: line, src, dst, probability, known_edge (1 if the pair is
already an edge of the graph) and status ("ok", or what is wrong with that row).
"""
from __future__ import annotations

from vgraph.runs import job_entry, job_parser
from vgraph.tasks.link_predict import predict_links


def build_parser(prog="vgraph predict-links"):
    p = job_parser(prog, __doc__)
    p.add_argument("--checkpoint", required=True, help="a run's model.pt written by vgraph linkpred")
    p.add_argument("--pairs", required=True, help="CSV/TSV of node pairs to score")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--dataset", default=None, help="graph to embed on; None: the one the model was trained on")
    g.add_argument("--edges", default=None, help="an edge-list file to embed on instead")
    p.add_argument("--features", default=None, help="node-feature file for --edges")
    p.add_argument("--root", default=None, help="data root (else $VGRAPH_DATA, else datasets/)")
    p.add_argument("--out", default="scores.csv", help="output CSV")
    return p


@job_entry
def main(argv=None, prog="vgraph predict-links"):
    args = build_parser(prog).parse_args(argv)
    res = predict_links(args.checkpoint, args.pairs, args.out, dataset=args.edges or args.dataset,
                        root=args.root, features=args.features)
    print(f"scored {res['scored']} of {res['rows']} pairs"
          + (f" ({res['bad']} row{'s' if res['bad'] > 1 else ''} with a problem: see the status column)"
             if res["bad"] else "")
          + f" -> {res['out']}")
    return res

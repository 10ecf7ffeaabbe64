"""vgraph predict-ddi — predict interactions for a CSV of drug pairs with a model from `vgraph ddi`.

    vgraph predict-ddi --pairs pairs.csv --out predictions.csv       # the shipped DrugBank model
    vgraph predict-ddi --checkpoint runs/db_warm/model.pt --pairs pairs.csv --out predictions.csv

Without --checkpoint the DrugBank model shipped in the package is used
(vgraph/chem/pretrained/drugbank_ddi.pt: the atom encoder trained on the warm split's training
fold; how, and its test metrics, in drugbank_ddi.json beside it). It needs no dataset files.

Input: a CSV with columns drug1,drug2, each a DrugBank id (any case) or a SMILES string (a known
drug's SMILES is that drug; a drug the model never saw is scored from its structure). Output:
one row per input row with status (ok or skipped: <reason>), the interaction probability, its
posterior uncertainty and, for DrugBank models, the top-k interaction types (numbered 1..86 as
in Interaction_information.csv) with probability and description. Exit 1 when no row could be
predicted or the checkpoint/header is bad; 2 for a bad flag.
"""
from __future__ import annotations

import sys

from vgraph.runs import job_entry, job_parser, nonneg_int, positive_int


def parse_args(argv=None, prog=None):
    p = job_parser(prog, __doc__)
    p.add_argument("--checkpoint", default=None,
                   help="model.pt written by vgraph ddi (default: the shipped DrugBank model)")
    p.add_argument("--pairs", required=True, help="CSV with columns drug1,drug2")
    p.add_argument("--out", required=True, help="output CSV")
    p.add_argument("--top-k", type=positive_int, default=3, help="interaction types per pair (DrugBank)")
    p.add_argument("--samples", type=nonneg_int, default=30,
                   help="posterior samples for the uncertainty (0: the posterior mean, no uncertainty)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return p.parse_args(argv)


@job_entry
def main(argv=None, prog="vgraph predict-ddi"):
    args = parse_args(argv, prog)
    from vgraph.tasks.ddi_predict import load_predictor, read_pairs, shipped_checkpoint, write_predictions
    predictor = load_predictor(args.checkpoint if args.checkpoint is not None else shipped_checkpoint())
    out = predictor.predict_frame(read_pairs(args.pairs), top_k=args.top_k, samples=args.samples,
                                  progress=not args.no_progress)
    write_predictions(out, args.out)
    ok = int((out["status"] == "ok").sum()) if len(out) else 0
    skipped = out[out["status"] != "ok"] if len(out) else out
    print(f"predicted {ok} of {len(out)} rows -> {args.out}; skipped {len(skipped)}")
    for _, r in skipped.iterrows():
        print(f"  row {r['row']}: {r['status']}")
    if ok == 0:
        print("error: no row could be predicted", file=sys.stderr)
        raise SystemExit(1)
    return 0

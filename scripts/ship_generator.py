"""Maintainers: write a trained generator into the package (float16 weights by default).

    python scripts/ship_generator.py runs/qm9_catflow_v6/model.pt vgraph/chem/pretrained/qm9_catflow.pt \
        --metrics runs/gen_cf_v6_u50/summary.json

Reads a ``vgraph molgen`` ``model.pt``, stores it again through ``vgraph.hub.save_model`` with
``half=True`` (weights restored to float32 on load), keeps its training command and adds the
headline metrics of a ``vgraph generate`` run of the source file (``--metrics``) to its meta.
Check the shipped file with ``vgraph generate --checkpoint <name>`` afterwards: float16 storage
moves the samples, so its own numbers are the ones to publish. ``--float32`` keeps the weights
as trained (twice the bytes; the shipped file then samples exactly what the source does).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", help="model.pt written by `vgraph molgen`")
    p.add_argument("dest", help="where to write the copy")
    p.add_argument("--metrics", default=None, help="summary.json of a `vgraph generate` run of the source")
    p.add_argument("--float32", action="store_true",
                   help="keep float32 weights instead of storing float16")
    args = p.parse_args(argv)
    from vgraph.errors import VGraphError
    from vgraph.tasks import molgen
    try:
        model, info = molgen.load_generator(args.source)
        meta = dict(info["meta"])
        if args.metrics:
            run = json.loads(Path(args.metrics).read_text())
            meta["source_metrics"] = {"metrics": run["metrics"], "sampler": run.get("sampler"),
                                      "command": run.get("command")}
        molgen.save_generator(args.dest, model, info["dataset"], meta, half=not args.float32)
    except (VGraphError, OSError, ValueError, KeyError) as exc:
        print(f"ship_generator: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.dest} ({Path(args.dest).stat().st_size:,} bytes) from {args.source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

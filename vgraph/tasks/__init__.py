"""vgraph.tasks — one module per job behind one protocol (:mod:`vgraph.tasks.base`).

Exports resolve lazily, so ``import vgraph.tasks.linkpred`` does not pull in RDKit or OGB.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "Task": "base", "FullBatchTask": "base", "MiniBatchTask": "base",
    "LinkPredTask": "linkpred", "ShardedLinkPredTask": "linkpred", "MiniBatchLinkPredTask": "linkpred",
    "DrugBankTask": "drugbank",
    "OgblDDITask": "ogbl_ddi",
    "MolGenTask": "molgen",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"vgraph.tasks.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'vgraph.tasks' has no attribute {name!r}")

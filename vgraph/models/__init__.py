"""vgraph.models — assembled models with task-named methods.

Exports resolve lazily, so importing one model does not import every other's dependencies.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "GAE": "autoencoder", "VGAE": "autoencoder", "dense_recon_loss": "autoencoder",
    "sampled_recon_loss": "autoencoder",
    "IsoCVGAE": "isoc_vgae", "CCVGAE": "ccvgae", "MetaGraph": "metagraph", "CCMetaGraph": "metagraph",
    "MolVAE": "molvae", "CatFlow": "catflow", "SmilesVAE": "smilesvae",
    "ContextDDIModel": "ddi", "DDIBundle": "ddi", "EmbeddingLinkPredictor": "ddi",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"vgraph.models.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'vgraph.models' has no attribute {name!r}")

"""One dataset registry: ``vgraph.data.load(name, root=None, **options)``.

Every loader follows one data-root rule (:func:`vgraph.paths.data_root`: ``root``, else
``$VGRAPH_DATA``, else the repository's ``datasets/``, else data shipped in the package where
there is some) and writes caches only under ``$VGRAPH_CACHE``. A name that is not registered
but is a path to a file is read as an edge list.
"""
from __future__ import annotations

from pathlib import Path

from vgraph.errors import DataFormatError

# name (lower case) -> (module under vgraph.data, function, canonical name)
_REGISTRY: dict[str, tuple[str, str, str | None]] = {
    "cora": ("planetoid", "load_planetoid", "Cora"),
    "citeseer": ("planetoid", "load_planetoid", "CiteSeer"),
    "pubmed": ("planetoid", "load_planetoid", "PubMed"),
    "mutag": ("tu", "load_tu", "MUTAG"),
    "enzymes": ("tu", "load_tu", "ENZYMES"),
    "proteins": ("tu", "load_tu", "PROTEINS"),
    "firstmm_db": ("tu", "load_tu", "FIRSTMM_DB"),
    "ogbl-ddi": ("ogbl_ddi", "load_ogbl_ddi", None),
    "drugbank": ("drugbank", "load_drugbank", None),
    "qm9": ("molecules", "load_smiles", "qm9"),
    "moses": ("molecules", "load_smiles", "moses"),
    "zinc250k": ("molecules", "load_smiles", "zinc250k"),
}


def names() -> list[str]:
    """The registered dataset names."""
    return sorted(_REGISTRY)


def load(name: str, root=None, **options):
    """Load dataset ``name`` (see :func:`names`) from the data root, or an edge-list file."""
    import importlib
    key = str(name).lower().replace("_", "-") if str(name).lower() != "firstmm_db" else "firstmm_db"
    key = key if key in _REGISTRY else str(name).lower()
    if key not in _REGISTRY:
        path = Path(name)
        if path.exists() or path.suffix:
            from vgraph.data.graph_io import load_edge_list
            return load_edge_list(path, options.get("features"))
        raise DataFormatError(f"unknown dataset {name!r}: choose from {', '.join(names())}, "
                              f"or give the path of an edge-list file")
    module, function, canonical = _REGISTRY[key]
    loader = getattr(importlib.import_module(f"vgraph.data.{module}"), function)
    import inspect
    unknown = [k for k in options if k not in inspect.signature(loader).parameters]
    if unknown:
        what = ("comes with its own features (a feature file is for an edge list)"
                if unknown == ["features"] else f"takes no option {', '.join(unknown)}")
        raise DataFormatError(f"{canonical or name} {what}")
    args = (canonical,) if canonical is not None else ()
    return loader(*args, root, **options)

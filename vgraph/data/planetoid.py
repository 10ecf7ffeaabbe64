"""Planetoid citation graphs (Cora, CiteSeer, PubMed) from their raw ``ind.*`` files."""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch_geometric.data import Data

from vgraph.data.download import find_raw_file
from vgraph.errors import VGraphError
from vgraph.paths import data_root, cache_dir, fingerprint

PLANETOID = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
RAW_NAMES = ["x", "tx", "allx", "y", "ty", "ally", "graph", "test.index"]
URL = "https://github.com/kimiyoung/planetoid/raw/master/data/ind.{prefix}.{name}"
# Cora and CiteSeer ship inside the package (MIT, see planetoid_raw/LICENSE) so that the
# main job runs offline with no data root.
PACKAGED = Path(__file__).resolve().parent / "planetoid_raw"


def packaged_file(proper: str, filename: str) -> Path | None:
    """The copy of raw file ``filename`` shipped with vgraph, if there is one."""
    path = PACKAGED / proper / filename
    return path if path.is_file() else None


def load_planetoid(name: str, root=None, packaged: bool = True) -> Data:
    """Load a Planetoid graph as a PyG ``Data`` (x, y, edge_index, train/val/test masks).

    Each raw file is read from ``<root>/planetoid/<Name>/raw/`` (or ``<root>/<Name>/raw/``),
    else from the copy shipped in the package (Cora, CiteSeer; ``packaged=False`` skips it),
    else from ``$VGRAPH_CACHE`` or a download there when the network allows. The parsed graph
    is cached in ``$VGRAPH_CACHE/planetoid``, keyed by the raw files.
    """
    key = name.lower()
    if key not in PLANETOID:
        raise VGraphError(f"unknown Planetoid dataset {name!r}; choose Cora, CiteSeer or PubMed")
    proper = PLANETOID[key]
    base = data_root(root)
    sub = f"planetoid/{proper}/raw" if (base / "planetoid").is_dir() or not (base / proper).is_dir() \
        else f"{proper}/raw"
    files = []
    for n in RAW_NAMES:
        rel = f"{sub}/ind.{key}.{n}"
        shipped = packaged_file(proper, f"ind.{key}.{n}") if packaged else None
        if not (base / rel).is_file() and shipped is not None:
            files.append(shipped)
        else:
            files.append(find_raw_file(base, rel, URL.format(prefix=key, name=n), proper))
    cache = cache_dir("planetoid") / f"{proper}-{fingerprint(files)}.pt"
    if cache.is_file():
        try:
            return Data(**torch.load(cache, weights_only=True))
        except Exception:
            pass  # a stale or broken cache is rebuilt below
    data = _read(files, key)
    tmp = cache.with_suffix(".tmp")
    torch.save({k: v for k, v in data.to_dict().items()}, tmp)
    os.replace(tmp, cache)
    return data


def _read(files, prefix: str) -> Data:
    import tempfile
    from torch_geometric.io import read_planetoid_data
    folders = {Path(f).parent for f in files}
    if len(folders) == 1:
        return read_planetoid_data(str(folders.pop()), prefix)
    # files split between the data root and the download cache: gather links in a temp dir
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            os.symlink(f, Path(tmp) / Path(f).name)
        return read_planetoid_data(tmp, prefix)

"""ogbl-ddi (OGB link property prediction) read from its on-disk layout, with the official split.

The files are the ones ``ogb.linkproppred`` downloads (``ogbl_ddi/raw/edge.csv.gz``,
``ogbl_ddi/split/target/{train,valid,test}.pt``). ogb 1.3.6 reads the split with a bare
``torch.load``, which torch >= 2.6 refuses (``weights_only=True`` became the default and the
files are legacy pickles of NumPy arrays). We do not call ogb's dataset class at all: the split
files are read here with ``weights_only=True`` inside a *scoped*
``torch.serialization.safe_globals`` context that allows exactly the NumPy reconstruction
globals these files need, so nothing is loosened process-wide and no environment variable is
set. Nothing is written into the data root (ogb would create ``processed/`` there).
"""
from __future__ import annotations

import _codecs
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from vgraph.errors import DataFormatError, MissingDataError
from vgraph.paths import data_root

NAME = "ogbl-ddi"
NUM_NODES = 4267


def _numpy_globals():
    """The globals a legacy pickle of an int64 ``numpy.ndarray`` refers to (NumPy 1.x names)."""
    core = getattr(np, "_core", None) or np.core
    # the shared files were pickled by NumPy 1.x ("numpy.core..."); NumPy 2 writes "numpy._core..."
    allowed = [(core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
               core.multiarray._reconstruct, np.ndarray, np.dtype, _codecs.encode]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        allowed.append(dtypes.Int64DType)
    return allowed


def read_split_file(path) -> dict:
    """Read one OGB split file (``{'edge': int64 [E, 2], 'edge_neg': ...}``) as tensors.

    Loads with ``weights_only=True`` and a scoped allow-list of the NumPy globals; anything
    else in the file (code objects, arbitrary classes) is still refused.
    """
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise MissingDataError(f"ogbl-ddi split file {path} is missing") from None
    except Exception as exc:  # noqa: BLE001 — any unpickling failure is a bad file for the user
        lines = str(exc).splitlines() or [""]
        reason = next((ln for ln in lines if "Unsupported global" in ln), lines[0]).strip()
        raise DataFormatError(f"cannot read ogbl-ddi split file {path}: {type(exc).__name__}: "
                              f"{reason[:240]}") from None
    if not isinstance(obj, dict) or "edge" not in obj:
        raise DataFormatError(f"{path} is not an OGB link split (expected a dict with 'edge')")
    out = {}
    for key, value in obj.items():
        t = torch.as_tensor(np.asarray(value)).to(torch.long)
        if t.dim() != 2 or t.size(1) != 2:
            raise DataFormatError(f"{path}: '{key}' must be [E, 2], got {tuple(t.shape)}")
        out[key] = t
    return out


@dataclass
class OgblDDI:
    """The ogbl-ddi graph and its official split.

    Attributes:
        num_nodes: 4267 drugs. train_edge: ``[E_train, 2]`` undirected training edges (each
            once). valid_edge / valid_edge_neg / test_edge / test_edge_neg: the official
            evaluation pairs. node_drug_ids: DrugBank id of each node (when the mapping is there).
    """
    num_nodes: int
    train_edge: torch.Tensor
    valid_edge: torch.Tensor
    valid_edge_neg: torch.Tensor
    test_edge: torch.Tensor
    test_edge_neg: torch.Tensor
    node_drug_ids: list | None = None

    @property
    def message_passing_edge_index(self) -> torch.Tensor:
        """Training edges in both directions, ``[2, 2 E_train]`` (the graph the encoder sees)."""
        e = self.train_edge.t()
        return torch.cat([e, e.flip(0)], 1)

    def summary(self) -> dict:
        return {"num_nodes": self.num_nodes, "train": int(self.train_edge.size(0)),
                "valid": int(self.valid_edge.size(0)), "valid_neg": int(self.valid_edge_neg.size(0)),
                "test": int(self.test_edge.size(0)), "test_neg": int(self.test_edge_neg.size(0))}


def load_ogbl_ddi(root=None) -> OgblDDI:
    """Load ogbl-ddi from ``<root>/ogbl_ddi`` (root: ``--root`` / ``$VGRAPH_DATA`` / ``datasets/``)."""
    base = data_root(root) / "ogbl_ddi"
    split_dir = base / "split" / "target"
    if not split_dir.is_dir():
        raise MissingDataError(
            f"ogbl-ddi not found: {split_dir} is missing. Put the OGB 'ddi.zip' contents in "
            f"{base} (raw/, split/target/) or pass --root / set VGRAPH_DATA.")
    parts = {name: read_split_file(split_dir / f"{name}.pt") for name in ("train", "valid", "test")}
    num_nodes = NUM_NODES
    nn_file = base / "raw" / "num-node-list.csv.gz"
    if nn_file.is_file():
        num_nodes = int(pd.read_csv(nn_file, header=None).iloc[0, 0])
    for name, p in parts.items():
        for key, t in p.items():
            if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_nodes):
                raise DataFormatError(f"ogbl-ddi {name}.pt '{key}' has node ids outside [0, {num_nodes})")
    for name in ("valid", "test"):
        if "edge_neg" not in parts[name]:
            raise DataFormatError(f"ogbl-ddi {name}.pt lacks 'edge_neg' (the official negatives)")
    drug_ids = None
    mapping = base / "mapping" / "nodeidx2drugid.csv.gz"
    if mapping.is_file():
        m = pd.read_csv(mapping)
        drug_ids = m.iloc[:, 1].astype(str).tolist()
    return OgblDDI(num_nodes, parts["train"]["edge"], parts["valid"]["edge"],
                   parts["valid"]["edge_neg"], parts["test"]["edge"], parts["test"]["edge_neg"],
                   drug_ids)


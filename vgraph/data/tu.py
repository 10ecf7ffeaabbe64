"""TU graph-classification datasets (MUTAG, PROTEINS, ENZYMES, ...) from their raw text files.

Reads ``<root>/TUDataset/<NAME>/raw/<NAME>_*.txt`` (or ``<root>/<NAME>/raw``) directly and
never writes anywhere. Features follow PyG's ``TUDataset`` default: one-hot node labels
(``use_node_attr=True`` appends the continuous node attributes). Graph labels are remapped
to ``0..C-1`` in sorted order (MUTAG's ``-1/1`` become ``0/1``), as PyG does.

The dataset is held as one disjoint union: ``x [N, F]``, ``edge_index [2, E]`` (undirected,
coalesced, both directions), ``batch [N]`` (graph id of each node, sorted), ``y [G]``;
:meth:`TUGraphs.subset` gathers any list of graphs as a relabelled union.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vgraph.errors import DataFormatError, MissingDataError
from vgraph.ops import concat_ranges, index_to_indptr
from vgraph.paths import data_root

TU_NAMES = {"mutag": "MUTAG", "proteins": "PROTEINS", "enzymes": "ENZYMES", "ptc_mr": "PTC_MR",
            "imdb-binary": "IMDB-BINARY", "nci1": "NCI1", "firstmm_db": "FIRSTMM_DB"}


def _read_ints(path: Path, cols: int | None = None) -> np.ndarray:
    try:
        arr = np.loadtxt(path, delimiter="," if cols and cols > 1 else None, dtype=np.int64, ndmin=2)
    except ValueError as exc:
        raise DataFormatError(f"{path}: cannot parse integers ({exc})") from None
    return arr if cols and cols > 1 else arr.reshape(-1)


@dataclass
class TUGraphs:
    """A TU dataset as one disjoint union of graphs (see the module docstring)."""
    name: str
    x: torch.Tensor
    edge_index: torch.Tensor
    batch: torch.Tensor
    y: torch.Tensor

    def __post_init__(self):
        self.node_ptr = index_to_indptr(self.batch, self.num_graphs)
        # edges are sorted by source, hence grouped by graph
        self.edge_ptr = index_to_indptr(self.batch[self.edge_index[0]], self.num_graphs)

    @property
    def num_graphs(self) -> int:
        return int(self.y.numel())

    @property
    def num_nodes(self) -> int:
        return int(self.x.size(0))

    @property
    def num_features(self) -> int:
        return int(self.x.size(1))

    @property
    def num_classes(self) -> int:
        return int(self.y.max()) + 1

    def __len__(self) -> int:
        return self.num_graphs

    def subset(self, index) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Graphs ``index`` (in that order) as ``(x, edge_index, batch, y)`` with nodes renumbered
        ``0..n-1`` and graphs ``0..len(index)-1``."""
        index = torch.as_tensor(index, dtype=torch.long).view(-1)
        n_counts = self.node_ptr[index + 1] - self.node_ptr[index]
        e_counts = self.edge_ptr[index + 1] - self.edge_ptr[index]
        node_ids = concat_ranges(self.node_ptr[index], n_counts)
        edge_ids = concat_ranges(self.edge_ptr[index], e_counts)
        new_start = torch.cumsum(n_counts, 0) - n_counts  # first new id of each chosen graph
        shift = torch.repeat_interleave(new_start - self.node_ptr[index], e_counts)
        edge_index = self.edge_index[:, edge_ids] + shift
        batch = torch.repeat_interleave(torch.arange(index.numel()), n_counts)
        return self.x[node_ids], edge_index, batch, self.y[index]

    def summary(self) -> dict:
        return {"graphs": self.num_graphs, "nodes": self.num_nodes,
                "edges": int(self.edge_index.size(1)) // 2, "features": self.num_features,
                "classes": self.num_classes}


def _raw_dir(name: str, root) -> Path:
    base = data_root(root)
    for cand in (base / "TUDataset" / name / "raw", base / name / "raw"):
        if cand.is_dir():
            return cand
    raise MissingDataError(f"{name}: raw folder not found at {base / 'TUDataset' / name / 'raw'} "
                           f"(point --root / $VGRAPH_DATA at the folder holding TUDataset/)")


def load_tu(name: str, root=None, use_node_attr: bool = False) -> TUGraphs:
    """Load a TU dataset by name (case-insensitive) from the data root; read-only."""
    proper = TU_NAMES.get(name.lower(), name)
    raw = _raw_dir(proper, root)
    f = lambda suffix: raw / f"{proper}_{suffix}.txt"  # noqa: E731
    for need in ("A", "graph_indicator", "graph_labels"):
        if not f(need).is_file():
            raise MissingDataError(f"{proper}: raw file {f(need)} is missing")
    gi = _read_ints(f("graph_indicator")) - 1
    if gi.size == 0 or gi.min() < 0 or np.any(np.diff(gi) < 0):
        raise DataFormatError(f"{f('graph_indicator')}: graph ids must be >= 1 and sorted")
    n = gi.size
    edges = _read_ints(f("A"), cols=2) - 1
    if edges.size and (edges.min() < 0 or edges.max() >= n):
        raise DataFormatError(f"{f('A')}: node ids must lie in [1, {n}]")
    labels_raw = _read_ints(f("graph_labels"))
    _, y = np.unique(labels_raw, return_inverse=True)
    feats = []
    if f("node_labels").is_file():
        nl = _read_ints(f("node_labels"))
        if nl.size != n:
            raise DataFormatError(f"{f('node_labels')}: {nl.size} rows, expected {n}")
        nl = nl - nl.min()
        feats.append(np.eye(int(nl.max()) + 1, dtype=np.float32)[nl])
    if use_node_attr and f("node_attributes").is_file():
        attr = np.loadtxt(f("node_attributes"), delimiter=",", dtype=np.float32, ndmin=2)
        feats.append(attr)
    x = np.concatenate(feats, 1) if feats else np.ones((n, 1), dtype=np.float32)
    ei = torch.from_numpy(edges.T.copy()) if edges.size else torch.zeros(2, 0, dtype=torch.long)
    ei = ei[:, ei[0] != ei[1]]
    keys = torch.unique(torch.cat([ei[0] * n + ei[1], ei[1] * n + ei[0]]))  # sorted by source
    edge_index = torch.stack([keys // n, keys % n])
    batch = torch.from_numpy(gi)
    if bool((batch[edge_index[0]] != batch[edge_index[1]]).any()):
        raise DataFormatError(f"{f('A')}: an edge joins two different graphs")
    return TUGraphs(proper, torch.from_numpy(x), edge_index, batch, torch.from_numpy(y).long())

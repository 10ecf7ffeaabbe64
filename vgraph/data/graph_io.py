"""A user's own graph: an edge-list file (CSV/TSV) with an optional feature file, or NetworkX.

Errors name the file and the (1-based) line, and are :class:`~vgraph.errors.DataFormatError`.
"""
from __future__ import annotations

import gzip
import math
import sys
import zlib
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data

from vgraph.errors import DataFormatError, MissingDataError

# Node ids must keep ``u * N + v`` pair keys inside int64 (see vgraph.data.split.pair_keys).
MAX_NODE_ID = 2**31 - 2
# Without a feature file, nodes get identity features: a dense N x N float32 matrix.
MAX_IDENTITY_BYTES = 2 * 2**30


def _check_file(path: Path, what: str):
    if path.is_dir():
        raise DataFormatError(f"{what} {path} is a directory, not a file")
    if not path.is_file():
        raise MissingDataError(f"{what} {path} does not exist")


def _read_text(path: Path, what: str, errors: str = "strict") -> str:
    """The file's text; ``.gz`` files (or gzip content under any name) are decompressed."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(f"{what} {path} cannot be read ({exc.strerror or exc})") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataFormatError(f"{path}: a damaged gzip file ({exc})") from None
    try:
        return data.decode("utf-8", errors=errors)
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None


def _split_line(line: str):
    line = line.strip()
    if "," in line:
        return [t.strip() for t in line.split(",")]
    return line.split()


def _is_int(tok: str) -> bool:
    try:
        int(tok)
        return True
    except ValueError:
        return False


# first-line fields that name columns rather than nodes
_HEADER_WORDS = {"src", "dst", "source", "target", "from", "to", "u", "v", "node", "node1", "node2",
                 "node_1", "node_2", "id1", "id2", "head", "tail", "source_id", "target_id", "i", "j"}


def _edge_rows(path: Path):
    """``[(lineno, first, second, raw)]`` of the data lines, header and comments left out."""
    rows = []
    for lineno, raw in enumerate(_read_text(path, "edge-list file").splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        fields = _split_line(raw)
        if len(fields) < 2:
            raise DataFormatError(f"{path}, line {lineno}: expected two node ids, got {raw.strip()!r}")
        rows.append((lineno, fields[0], fields[1], raw.strip()))
    if rows and not (_is_int(rows[0][1]) and _is_int(rows[0][2])):
        first_is_header = ({rows[0][1].lower(), rows[0][2].lower()} <= _HEADER_WORDS
                           or (len(rows) > 1 and _is_int(rows[1][1]) and _is_int(rows[1][2])))
        if first_is_header:
            rows = rows[1:]
    return rows


def read_edge_list(path, num_nodes: int | None = None, with_ids: bool = False):
    """Parse an edge list: one ``src,dst`` (or whitespace/tab separated) pair per line.

    Blank lines and lines starting with ``#`` are skipped; a first line of column names is
    a header; a third column, if present, is ignored; ``.gz`` files are read decompressed.
    Node ids are integers ``0..N-1``, or names (when the first edge uses a name): names are
    numbered in order of first appearance. Returns ``(edge_index [2, E], num_nodes)``, and
    with ``with_ids=True`` also the names (``None`` for integer ids).
    """
    path = Path(path)
    _check_file(path, "edge-list file")
    rows = _edge_rows(path)
    if not rows:
        raise DataFormatError(f"{path}: the graph is empty (no edges)")
    names = None
    if not (_is_int(rows[0][1]) and _is_int(rows[0][2])):
        index: dict[str, int] = {}  # first appearance, line by line, source before destination
        src, dst = [], []
        for _, a, b, _ in rows:
            src.append(index.setdefault(a, len(index)))
            dst.append(index.setdefault(b, len(index)))
        names = list(index)
        if num_nodes is not None and len(names) != num_nodes:
            raise DataFormatError(f"{path}: {len(names)} named nodes, expected {num_nodes}")
        edge_index = torch.tensor([src, dst], dtype=torch.long)
        n = len(names)
        return (edge_index, n, names) if with_ids else (edge_index, n)
    src, dst = [], []
    for lineno, a, b, raw in rows:
        if not (_is_int(a) and _is_int(b)):
            raise DataFormatError(f"{path}, line {lineno}: node ids must be integers (as on the first "
                                  f"edge), got {raw!r}")
        ids = (int(a), int(b))
        if ids[0] < 0 or ids[1] < 0:
            raise DataFormatError(f"{path}, line {lineno}: negative node id in {raw!r}")
        if max(ids) > MAX_NODE_ID:
            raise DataFormatError(f"{path}, line {lineno}: node id {max(ids)} is too large "
                                  f"(at most {MAX_NODE_ID}); renumber the nodes from 0")
        if num_nodes is not None and max(ids) >= num_nodes:
            raise DataFormatError(f"{path}, line {lineno}: node id {max(ids)} is out of range "
                                  f"for {num_nodes} nodes")
        src.append(ids[0])
        dst.append(ids[1])
    edge_index = torch.tensor([src, dst], dtype=torch.long)
    if num_nodes is None:
        num_nodes = int(edge_index.max()) + 1
    return (edge_index, num_nodes, None) if with_ids else (edge_index, num_nodes)


def read_features(path) -> torch.Tensor:
    """Node features: ``.npy`` / ``.pt`` arrays, or CSV/TSV text with one row per node."""
    path = Path(path)
    _check_file(path, "feature file")
    if path.suffix in (".npy", ".pt"):
        try:
            arr = np.load(path) if path.suffix == ".npy" else torch.load(path, weights_only=True)
        except Exception as exc:
            raise DataFormatError(f"{path}: cannot read features ({type(exc).__name__}: "
                                  f"{str(exc)[:200]})") from None
        if isinstance(arr, torch.Tensor) and (arr.layout != torch.strided or arr.is_complex()):
            raise DataFormatError(f"{path}: features must be a dense real tensor, got "
                                  f"{arr.layout} {arr.dtype}")
        if not isinstance(arr, (torch.Tensor, np.ndarray)):
            raise DataFormatError(f"{path}: expected a 2-D array of features, got {type(arr).__name__}")
        if isinstance(arr, np.ndarray) and arr.dtype.kind not in "biuf":
            raise DataFormatError(f"{path}: features must be numbers, got dtype {arr.dtype}")
        try:
            x = torch.as_tensor(arr, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise DataFormatError(f"{path}: cannot convert features to float32 ({exc})") from None
        if x.dim() != 2:
            raise DataFormatError(f"{path}: features must be a 2-D array, got shape {tuple(x.shape)}")
        bad = ~torch.isfinite(x)
        if bool(bad.any()):
            row = int(bad.any(1).nonzero()[0])
            raise DataFormatError(f"{path}: row {row} holds NaN or inf")
        return x
    rows, width = [], None
    for lineno, raw in enumerate(_read_text(path, "feature file", errors="replace").splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        fields = _split_line(raw)
        try:
            vals = [float(t) for t in fields]
        except ValueError:
            if not rows:
                continue  # header
            raise DataFormatError(f"{path}, line {lineno}: non-numeric feature value in {raw.strip()[:60]!r}")
        if any(not math.isfinite(v) for v in vals):
            raise DataFormatError(f"{path}, line {lineno}: NaN or inf feature value")
        if width is None:
            width = len(vals)
        elif len(vals) != width:
            raise DataFormatError(f"{path}, line {lineno}: {len(vals)} values, expected {width}")
        rows.append(vals)
    if not rows:
        raise DataFormatError(f"{path}: no feature rows")
    x = torch.tensor(rows, dtype=torch.float32)
    bad = ~torch.isfinite(x)
    if bool(bad.any()):  # finite in float64 but beyond float32's range
        row = int(bad.any(1).nonzero()[0])
        raise DataFormatError(f"{path}: feature row {row} overflows float32 (|value| > 3.4e38)")
    return x


def note(message: str):
    """An informational line on stderr (a warning would also print a library source line)."""
    print(f"note: {message}", file=sys.stderr)


def symmetrize(edge_index: torch.Tensor, num_nodes: int, source: str = "edge list") -> torch.Tensor:
    """Undirected, coalesced, self-loop-free edge index; says so on stderr when it had to add
    reverse edges (a list of each edge once is the usual way to write an undirected graph)."""
    ei = edge_index[:, edge_index[0] != edge_index[1]]
    keys = torch.unique(ei[0] * num_nodes + ei[1])
    rev = torch.unique(ei[1] * num_nodes + ei[0])
    both = torch.unique(torch.cat([keys, rev]))
    missing = both.numel() - keys.numel()  # pairs whose reverse was not listed
    if missing and missing == keys.numel():
        note(f"{source} lists each edge once; read as an undirected graph of {keys.numel()} edges")
    elif missing:
        note(f"{source}: {missing} of {keys.numel()} listed edges have no reverse listed; read as "
             f"an undirected graph (the reverse of every edge added)")
    return torch.stack([both // num_nodes, both % num_nodes])


def load_edge_list(path, features=None, num_nodes: int | None = None) -> Data:
    """Load a user's graph as an undirected PyG ``Data`` (identity features if none).

    With named (non-integer) nodes, ``data.node_ids[i]`` is the name of node ``i``.
    """
    x = read_features(features) if features is not None else None
    if x is not None and num_nodes is not None and x.size(0) != num_nodes:
        raise DataFormatError(f"{features}: {x.size(0)} feature rows, expected {num_nodes}")
    edge_index, n, names = read_edge_list(path, num_nodes, with_ids=True)
    if x is not None:
        rows = x.size(0)
        if names is not None:
            raise DataFormatError(f"{path} names its nodes ({names[0]!r}, ...), so the rows of the feature "
                                  f"file {features} cannot be matched to them; number the nodes "
                                  f"0..N-1 (feature row i = node i)")
        if n > rows:
            raise DataFormatError(f"feature file {features} has {rows} rows, but {path} uses node id "
                                  f"{n - 1}: it needs a row for every node 0..{n - 1} ({n} rows)")
        if rows > n:
            raise DataFormatError(f"feature file {features} has {rows} rows, but {path} has {n} nodes "
                                  f"(ids 0..{n - 1}): one row per node, no more")
    if x is None:
        if 4 * n * n > MAX_IDENTITY_BYTES:
            raise DataFormatError(
                f"{path}: {n} nodes (largest id {int(edge_index.max())}) and no feature file: "
                f"identity features would take {4 * n * n / 2**30:.1f} GiB; pass a feature file "
                f"(--features) or renumber the nodes 0..N-1")
        x = torch.eye(n)
    edge_index = symmetrize(edge_index, n, str(path))
    if edge_index.size(1) == 0:
        raise DataFormatError(f"{path}: the graph has no edges besides self-loops")
    data = Data(x=x, edge_index=edge_index, num_nodes=n)
    if names is not None:
        data.node_ids = names
    return data


def from_networkx_graph(graph, feature_key: str = "x") -> Data:
    """A NetworkX graph as an undirected ``Data``; nodes are renumbered in iteration order."""
    nodes = list(graph.nodes())
    if not nodes:
        raise DataFormatError("the NetworkX graph is empty")
    index = {v: i for i, v in enumerate(nodes)}
    pairs = [(index[u], index[v]) for u, v in graph.edges()]
    if not pairs:
        raise DataFormatError("the NetworkX graph has no edges")
    ei = torch.tensor(pairs, dtype=torch.long).t()
    ei = torch.cat([ei, ei.flip(0)], 1)
    feats = [graph.nodes[v].get(feature_key) for v in nodes]
    if all(f is not None for f in feats):
        x = torch.tensor(np.asarray(feats, dtype=np.float32))
        if not bool(torch.isfinite(x).all()):
            raise DataFormatError(f"NetworkX node attribute {feature_key!r} holds NaN or inf")
    else:
        x = torch.eye(len(nodes))
    return Data(x=x, edge_index=symmetrize(ei, len(nodes), "NetworkX graph"), num_nodes=len(nodes))


def read_pair_rows(path, is_node=None):
    """The rows of a node-pair file (``a,b`` per line, like an edge list), each kept in its
    place so that a bad one can be reported where it stands: ``[(lineno, a, b, raw)]``, where
    ``a`` or ``b`` is ``None`` when missing (an empty row has both ``None``). Comment lines
    are left out, and so is a first line of column names: one where neither field is a node
    (``is_node(token) -> bool``; default: an integer).
    """
    is_node = is_node or _is_int
    path = Path(path)
    _check_file(path, "pair file")
    rows = []
    for lineno, raw in enumerate(_read_text(path, "pair file").splitlines(), 1):
        if raw.lstrip().startswith("#"):
            continue
        fields = [f for f in _split_line(raw)] if raw.strip() else []
        a = fields[0] if len(fields) > 0 and fields[0] != "" else None
        b = fields[1] if len(fields) > 1 and fields[1] != "" else None
        rows.append((lineno, a, b, raw.strip()))
    while rows and rows[-1][1] is None and rows[-1][2] is None:
        rows.pop()  # trailing blank lines are no rows
    if rows and rows[0][1] is not None and rows[0][2] is not None:
        if not is_node(rows[0][1]) and not is_node(rows[0][2]):
            rows = rows[1:]
    return rows

"""vgraph.data — loaders that read raw files from a data root, splits, samplers, PyG in and out."""
from pathlib import Path

from vgraph.data.planetoid import load_planetoid, PLANETOID
from vgraph.data.graph_io import load_edge_list, read_edge_list, read_features, from_networkx_graph, symmetrize
from vgraph.data.split import LinkSplit, random_link_split, sample_negatives, pair_keys
from vgraph.data.registry import load
from vgraph.data.pyg import from_pyg, to_pyg


def load_graph(name: str, root=None, features=None):
    """A Planetoid graph by name (Cora, CiteSeer, PubMed) or a user's edge-list file by path."""
    if name.lower() in PLANETOID:
        return load_planetoid(name, root)
    return load_edge_list(Path(name), features)


__all__ = ["load_planetoid", "load_edge_list", "read_edge_list", "read_features",
           "from_networkx_graph", "symmetrize", "LinkSplit", "random_link_split",
           "sample_negatives", "pair_keys", "load_graph", "load", "from_pyg", "to_pyg"]

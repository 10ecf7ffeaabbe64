"""GAE/VGAE take a SparseGraph, an edge_index or a PyG Data alike; from_pyg/to_pyg round trip."""
import pytest
import torch
from torch_geometric.data import Data

from vgraph.data import from_pyg, to_pyg
from vgraph.errors import DataFormatError
from vgraph.models import GAE, VGAE
from vgraph.models.factory import build_autoencoder
from vgraph.ops import SparseGraph
from vgraph.ops.convert import GraphCache, as_sparse_graph


def ring(n=12):
    i = torch.arange(n)
    ei = torch.stack([i, (i + 1) % n])
    return torch.cat([ei, ei.flip(0)], 1)


@pytest.mark.parametrize("kind", ["gae", "vgae"])
def test_every_graph_form_gives_the_same_embedding(kind):
    torch.manual_seed(0)
    ei, x = ring(), torch.randn(12, 5)
    model = build_autoencoder(kind, 5, hidden=8, latent=4).eval()
    assert isinstance(model, (GAE, VGAE))
    ref = model.encode(x, SparseGraph(ei, 12))
    assert torch.allclose(model.encode(x, ei), ref)
    assert torch.allclose(model(x, ei), ref)
    assert torch.allclose(model(Data(x=x, edge_index=ei)), ref)
    # isolated last nodes: num_nodes comes from x, not from the largest id
    x2 = torch.randn(14, 5)
    assert model(x2, ei).shape == (14, 4)
    with pytest.raises(TypeError, match="needs a graph"):
        model(x)


def test_conversion_is_cached_while_the_same_tensor_comes_in():
    ei = ring()
    cache = GraphCache()
    g = cache(ei, 12)
    assert cache(ei, 12) is g and cache(Data(edge_index=ei, num_nodes=12)) is g
    assert cache(ei.clone(), 12) is not g
    ei2 = ring()
    h = cache(ei2, 12)
    ei2[0, 0] = 3  # changed in place: rebuilt
    assert cache(ei2, 12) is not h
    with pytest.raises(DataFormatError, match=r"\[2, E\]"):
        as_sparse_graph(torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(DataFormatError, match="expected a SparseGraph"):
        as_sparse_graph([[0, 1], [1, 0]])


@pytest.mark.parametrize("reorder", [None, "rcm"])
def test_from_pyg_to_pyg_round_trip(reorder):
    ei = torch.tensor([[0, 1, 2, 3, 1], [1, 2, 3, 0, 3]])
    w = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    g = from_pyg(Data(edge_index=ei, edge_weight=w, num_nodes=5))
    assert isinstance(g, SparseGraph) and g.num_nodes == 5
    if reorder:
        g = SparseGraph(ei, 5, edge_weight=w, reorder=reorder)
    back = to_pyg(g, x=torch.ones(5, 2), y=torch.arange(5))
    got = {(int(a), int(b)): float(v) for a, b, v in zip(*back.edge_index, back.edge_weight)}
    assert got == {(int(a), int(b)): float(v) for a, b, v in zip(*ei, w)}
    assert back.num_nodes == 5 and back.x.shape == (5, 2) and back.y.tolist() == [0, 1, 2, 3, 4]
    assert "edge_weight" not in to_pyg(from_pyg(ei))


def test_isoc_and_ccvgae_take_every_graph_form_too():
    from vgraph.models import CCVGAE, IsoCVGAE, MetaGraph  # noqa: F401  (exported from vgraph.models)
    torch.manual_seed(0)
    ei, x = ring(), torch.randn(12, 5)
    g = SparseGraph(ei, 12)
    isoc = IsoCVGAE.build(5, dims=(8, 8)).eval()
    ref = isoc.encode(x, g)[-1]
    assert torch.allclose(isoc(x, ei), ref) and torch.allclose(isoc(Data(x=x, edge_index=ei)), ref)
    assert torch.allclose(isoc.embed(x, ei), isoc.embed(x, g))
    torch.manual_seed(1)
    from_edges = isoc.loss(x, ei).loss
    torch.manual_seed(1)
    assert torch.allclose(from_edges, isoc.loss(x, g).loss)
    cc = CCVGAE.build(5, hidden=8, num_concepts=2, concept_dim=2).eval()
    assert torch.allclose(cc(x, ei), cc.encode(x, g))

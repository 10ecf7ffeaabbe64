"""vgraph.nn — layers and blocks with parameters, built on :mod:`vgraph.ops`."""
from vgraph.nn.conv import GCNConv, SAGEConv, linear_input
from vgraph.nn.encoders import GCNEncoder, VariationalGCNEncoder
from vgraph.nn.decoders import CommonNeighborDecoder, HadamardMLP, InnerProductDecoder
from vgraph.nn.variational import VariationalLayer, KLConfig

__all__ = ["GCNConv", "SAGEConv", "linear_input", "GCNEncoder", "VariationalGCNEncoder",
           "InnerProductDecoder", "HadamardMLP", "CommonNeighborDecoder", "VariationalLayer", "KLConfig"]

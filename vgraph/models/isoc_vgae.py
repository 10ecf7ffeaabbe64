"""IsoC-VGAE: a layer-wise GNN encoder trained by the Inverse-GNN decoder.

Yang, Kong & Mao, "Isomorphic-Consistent Variational Graph Auto-Encoders for Multi-Level
Graph Representation Learning" (arXiv 2312.05519; IEEE TKDE 2025). See
``docs/models/isoc_vgae.md`` for the method, the defaults and where we depart from the
authors' code.

Usage::

    model = IsoCVGAE.build(in_channels, dims=(512, 512), conv="gcn")
    hs = model.encode(x, graph)            # [h^1, ..., h^L]
    loss = model.loss(x, graph).loss       # the decoder's weighted loss
    z = model.embed(x, graph)              # eval-mode h^L for downstream probes
"""
from __future__ import annotations

import torch
from torch import nn

from vgraph.nn.gin import LayerwiseGNNEncoder, dense_features
from vgraph.nn.inverse_gnn import InverseGNNDecoder, InverseGNNOutput
from vgraph.ops import SparseGraph
from vgraph.ops.convert import GraphCache


class IsoCVGAE(nn.Module):
    """Encoder (:class:`~vgraph.nn.gin.LayerwiseGNNEncoder`) + Inverse-GNN decoder.

    Args:
        encoder: returns the list ``[h^1, ..., h^L]``.
        decoder: an :class:`~vgraph.nn.inverse_gnn.InverseGNNDecoder` whose ``dims`` are
            ``[in_channels] + encoder.dims``.
    """

    def __init__(self, encoder: LayerwiseGNNEncoder, decoder: InverseGNNDecoder):
        super().__init__()
        if decoder.dims != [encoder.in_channels] + list(encoder.dims):
            raise ValueError(f"decoder dims {decoder.dims} do not match the encoder "
                             f"{[encoder.in_channels] + list(encoder.dims)}")
        self.encoder, self.decoder = encoder, decoder
        self._hs = None
        self._graphs = GraphCache()  # an edge_index / PyG Data is converted once, then reused

    def _graph(self, x, graph) -> SparseGraph:
        return self._graphs(graph, x.shape[0] if hasattr(x, "shape") else None)

    def forward(self, x, graph=None) -> torch.Tensor:
        """The last layer's embedding ``h^L`` for ``(x, graph)`` or for a PyG ``Data``."""
        if graph is None:
            if not hasattr(x, "edge_index"):
                raise TypeError("forward(x, graph) needs a graph, or a PyG Data as its only argument")
            x, graph = x.x, x
        return self.encode(x, graph)[-1]

    @classmethod
    def build(cls, in_channels: int, dims=(512, 512), conv: str = "gcn",
              norm: str | None = "batchnorm", dropout: float = 0.0, activation: str = "relu",
              lambda_self: float = 1.0, lambda_nb: float = 0.1, lambda_deg: float = 1.0,
              decoder_hidden: int = 2) -> "IsoCVGAE":
        """The paper's model: ``conv="gcn"`` for node/link tasks, ``"gin"`` for graphs."""
        enc = LayerwiseGNNEncoder(in_channels, dims, conv=conv, norm=norm, dropout=dropout,
                                  activation=activation)
        dec = InverseGNNDecoder([in_channels] + list(dims), lambda_self, lambda_nb, lambda_deg,
                                num_hidden=decoder_hidden)
        return cls(enc, dec)

    @property
    def out_channels(self) -> int:
        return self.encoder.out_channels

    def encode(self, x, graph) -> list[torch.Tensor]:
        """All encoder layers ``[h^1, ..., h^L]`` (kept for :meth:`loss`). ``graph``: a
        :class:`SparseGraph`, a PyG ``edge_index`` or a ``Data``."""
        self._hs = self.encoder(x, self._graph(x, graph))
        return self._hs

    def loss(self, x, graph: SparseGraph, hs=None, noise=None) -> InverseGNNOutput:
        """The Inverse-GNN loss; encodes ``x`` unless ``hs`` (from :meth:`encode`) is given."""
        graph = self._graph(x, graph)
        hs = self.encode(x, graph) if hs is None else hs
        return self.decoder([dense_features(x)] + list(hs), graph, noise=noise)

    @torch.no_grad()
    def embed(self, x, graph: SparseGraph, layers: str = "last") -> torch.Tensor:
        """Frozen node embeddings in eval mode: ``"last"`` (``h^L``) or ``"concat"`` (all layers)."""
        was_training = self.training
        self.eval()
        try:
            hs = self.encoder(x, self._graph(x, graph))
        finally:
            self.train(was_training)
        if layers == "last":
            return hs[-1].detach()
        if layers == "concat":
            return torch.cat(hs, 1).detach()
        raise ValueError(f"layers must be 'last' or 'concat', got {layers!r}")

    def param_groups(self, lr: float, degree_lr: float | None = None, weight_decay: float = 0.0):
        """Optimizer groups; the degree MLPs may get their own rate (the authors use 1e-2)."""
        deg = list(self.decoder.degree_mlps.parameters())
        ids = {id(p) for p in deg}
        base = [p for p in self.parameters() if id(p) not in ids]
        return [{"params": base, "lr": lr, "weight_decay": weight_decay},
                {"params": deg, "lr": degree_lr if degree_lr is not None else lr,
                 "weight_decay": weight_decay}]

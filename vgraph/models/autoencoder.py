"""Graph autoencoders (Kipf & Welling, "Variational Graph Auto-Encoders", arXiv 1611.07308)."""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from vgraph.nn.decoders import InnerProductDecoder
from vgraph.nn.losses import dense_bce_loss
from vgraph.nn.variational import VariationalLayer, KLConfig
from vgraph.ops import SparseGraph
from vgraph.ops.convert import GraphCache

EPS = 1e-15


def dense_recon_loss(logits: torch.Tensor, target: torch.Tensor, pos_weight: float, norm: float):
    """Kipf's loss on an explicit ``[N, N]`` logit and target matrix (reference form; the
    models use :func:`vgraph.nn.losses.dense_bce_loss`, which gives the same value)."""
    return norm * F.binary_cross_entropy_with_logits(
        logits, target, pos_weight=torch.tensor(pos_weight, device=logits.device))


def sampled_recon_loss(pos_logits: torch.Tensor, neg_logits: torch.Tensor) -> torch.Tensor:
    """PyG-style 1:1 loss: mean BCE over positive pairs plus mean BCE over negative pairs."""
    return (F.softplus(-pos_logits).mean() if pos_logits.numel() else pos_logits.sum()) + \
        (F.softplus(neg_logits).mean() if neg_logits.numel() else neg_logits.sum())


def _dense_target(pos_pairs: torch.Tensor, num_nodes: int) -> torch.Tensor:
    target = torch.zeros(num_nodes, num_nodes)
    target[pos_pairs[0], pos_pairs[1]] = 1.0
    return target


class GAE(nn.Module):
    """Graph autoencoder: ``encoder(x, graph) -> z``, decoder scores pairs.

    Methods follow PyG's ``GAE``: :meth:`encode`, :meth:`decode`, :meth:`decode_all`,
    :meth:`loss` (reconstruction, plus KL for :class:`VGAE`). ``graph`` may be a
    :class:`~vgraph.ops.SparseGraph`, a PyG ``edge_index`` or a PyG ``Data``; the last two
    are converted once and cached while the same tensor is passed again.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module | None = None):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder if decoder is not None else InnerProductDecoder()
        self._graphs = GraphCache()

    def _graph(self, x, graph) -> SparseGraph:
        num_nodes = x.shape[0] if hasattr(x, "shape") else None
        return self._graphs(graph, num_nodes)

    def forward(self, x, graph=None) -> torch.Tensor:
        """``z`` for ``(x, graph)`` or for a PyG ``Data`` with ``x`` and ``edge_index``."""
        if graph is None:
            if not hasattr(x, "edge_index"):
                raise TypeError("forward(x, graph) needs a graph, or a PyG Data as its only argument")
            x, graph = x.x, x
        return self.encode(x, graph)

    @property
    def out_channels(self) -> int:
        return self.encoder.out_channels

    def encode(self, x, graph) -> torch.Tensor:
        return self.encoder(x, self._graph(x, graph))

    def decode(self, z: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """Logits of the given ``[2, P]`` pairs."""
        return self.decoder(z, pairs)

    def decode_all(self, z: torch.Tensor) -> torch.Tensor:
        """Dense ``[N, N]`` logits."""
        return self.decoder.forward_all(z)

    def kl_loss(self, epoch: int = 0) -> torch.Tensor:
        return torch.zeros(())

    def loss(self, z, *, pos_pairs=None, neg_pairs=None, dense: bool = False, pos_weight=1.0,
             norm=1.0, epoch: int = 0) -> torch.Tensor:
        """Reconstruction (+ KL) loss.

        ``dense=True``: Kipf's all-pairs BCE where ``pos_pairs`` are all the ordered positive
        pairs (the rest of the ``N^2`` pairs are negatives), weighted by ``pos_weight`` and
        ``norm``. Otherwise the sampled 1:1 loss over ``pos_pairs`` and ``neg_pairs``.
        """
        if dense:
            if not isinstance(self.decoder, InnerProductDecoder):
                rec = dense_recon_loss(self.decode_all(z), _dense_target(pos_pairs, z.size(0)),
                                       pos_weight, norm)
            else:
                rec = dense_bce_loss(z, pos_pairs, pos_weight, norm)
        else:
            rec = sampled_recon_loss(self.decode(z, pos_pairs), self.decode(z, neg_pairs))
        return rec + self.kl_loss(epoch)


class VGAE(GAE):
    """Variational graph autoencoder: the encoder returns ``(mu, logstd)``.

    ``encode`` samples ``z`` in training mode and returns ``mu`` in eval mode; the KL
    term comes from the :class:`~vgraph.nn.VariationalLayer` (β, warm-up, cyclical,
    capacity, free bits, normalisation).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module | None = None,
                 kl: KLConfig | None = None):
        super().__init__(encoder, decoder)
        self.variational = VariationalLayer(kl)
        self._mu = self._logstd = None

    def encode(self, x, graph) -> torch.Tensor:
        mu, logstd = self.encoder(x, self._graph(x, graph))
        self._mu, self._logstd = mu, logstd
        return self.variational(mu, logstd)

    def kl_loss(self, epoch: int = 0) -> torch.Tensor:
        if self._mu is None:
            raise RuntimeError("call encode() before kl_loss()")
        return self.variational.kl_loss(self._mu, self._logstd, epoch)

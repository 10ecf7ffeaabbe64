"""Build the link-prediction models by name (used by jobs, benchmarks and ``vgraph.load``)."""
from __future__ import annotations

from vgraph.models.autoencoder import GAE, VGAE
from vgraph.nn import GCNEncoder, VariationalGCNEncoder, KLConfig


def build_autoencoder(name: str, in_channels: int, hidden: int = 32, latent: int = 16,
                      dropout: float = 0.0, kl: KLConfig | dict | None = None, bias: bool = True):
    """``"gae"`` or ``"vgae"`` with Kipf & Welling's 2-layer GCN (hidden 32, latent 16).

    ``kl`` may be a :class:`KLConfig` or its ``to_dict()``, so that the arguments are plain
    JSON and a model file can name this function as its builder (:func:`vgraph.hub.save_model`).
    """
    if isinstance(kl, dict):
        kl = KLConfig(**kl)
    if name == "gae":
        return GAE(GCNEncoder(in_channels, hidden, latent, num_layers=2, dropout=dropout, bias=bias))
    if name == "vgae":
        return VGAE(VariationalGCNEncoder(in_channels, hidden, latent, dropout=dropout, bias=bias), kl=kl)
    raise ValueError(f"unknown model {name!r}; use 'gae' or 'vgae'")

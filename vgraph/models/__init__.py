"""vgraph.models — assembled models with task-named methods."""
from vgraph.models.autoencoder import GAE, VGAE, dense_recon_loss, sampled_recon_loss
from vgraph.models.molvae import MolVAE
from vgraph.models.catflow import CatFlow

__all__ = ["GAE", "VGAE", "dense_recon_loss", "sampled_recon_loss", "MolVAE", "CatFlow"]

from vgraph.models.ddi import ContextDDIModel, DDIBundle, EmbeddingLinkPredictor  # noqa: E402
__all__ += ["ContextDDIModel", "DDIBundle", "EmbeddingLinkPredictor"]

r"""Meta-Graph and CC-Meta-Graph: few-shot link prediction by meta-learning a VGAE.

Bose, Jain, Molino & Hamilton, "Meta-Graph: Few Shot Link Prediction via Meta Learning"
(arXiv 1912.09867, authors' code ``joeybose/Meta-Graph``); CC-Meta-Graph adds the causal
disentanglement layer of Feng, Zhang & Yang (arXiv 2311.10638). See ``docs/models/ccvgae.md``.

Each graph is a task. MAML learns an initialisation :math:`\theta` of the VGAE encoder:
for a graph :math:`G`, a few gradient steps on its *revealed* edges (the support set)
give :math:`\theta'_G = \theta - \alpha \nabla_\theta \mathcal L_{\text{sup}}(\theta)` (repeated),
and the outer loss is the adapted model's loss on held-out edges of :math:`G` (the query
set). ``order=2`` differentiates through the inner steps; ``order=1`` (first-order MAML)
treats the inner gradients as constants. All of it runs through
:func:`torch.func.functional_call`, so the module's parameters are never overwritten.

Graph-signature conditioning: a one-layer GCN over the revealed graph, mean-pooled, gives
per encoder layer a FiLM scale and shift, applied after the layer's feature transform and
before propagation: :math:`H' = \hat A\,((H W) \odot (1 + \gamma) + \beta) + b`. The
signature is meta-learned (outer loop only), as in the authors' code, where it is evaluated
without gradients inside the inner loop.

CC-Meta-Graph puts a :class:`~vgraph.nn.causal.CausalDisentanglementLayer` after the
variational layer. The concept structure ``A`` is shared across graphs (meta-learned, not
adapted per graph unless ``adapt_structure=True``), and its acyclicity/sparsity terms join
the outer loss.

Shapes:
    a task's ``x [N, F]`` -> ``z [N, latent]``.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F
from torch.func import functional_call

from vgraph.models.autoencoder import sampled_recon_loss
from vgraph.nn.causal import CausalDisentanglementLayer
from vgraph.nn.conv import GCNConv, linear_input
from vgraph.nn.encoders import VariationalGCNEncoder
from vgraph.nn.variational import KLConfig, VariationalLayer
from vgraph.ops import sddmm, spmm


def film_conv(conv: GCNConv, x, graph, film=None) -> torch.Tensor:
    """``conv``'s GCN layer with an optional FiLM ``(scale, shift)`` before propagation."""
    h = linear_input(x, conv.weight)
    if film is not None:
        h = h * film[0] + film[1]
    out = spmm(graph.gcn_norm(conv.add_self_loops), h)
    return out if conv.bias is None else out + conv.bias


class GraphSignature(nn.Module):
    """GCN + mean pooling -> one FiLM ``(1 + tanh γ, tanh β)`` pair per encoder layer.

    Args:
        in_channels: node-feature width. hidden: width of the signature GCN.
        widths: output width of each conditioned encoder layer.
    """

    def __init__(self, in_channels: int, hidden: int, widths):
        super().__init__()
        self.conv = GCNConv(in_channels, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, 2 * w) for w in widths)

    def forward(self, x, graph) -> list[tuple[torch.Tensor, torch.Tensor]]:
        pooled = F.relu(self.conv(x, graph)).mean(0)
        out = []
        for head in self.heads:
            gamma, beta = torch.tanh(head(pooled)).chunk(2)
            out.append((1 + gamma, beta))
        return out


class FiLMVariationalGCNEncoder(VariationalGCNEncoder):
    """Kipf & Welling's VGAE encoder whose layers accept FiLM conditioning.

    ``film`` is ``[(γ1, β1), (γ2, β2)]`` (hidden layer; μ and log σ heads) or ``None``.
    """

    def forward(self, x, graph, film=None):
        f1, f2 = film if film is not None else (None, None)
        h = F.relu(film_conv(self.shared, x, graph, f1))
        return film_conv(self.conv_mu, h, graph, f2), film_conv(self.conv_logstd, h, graph, f2)


def score_pairs(z: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Inner-product logits; the gather path is twice differentiable (second-order MAML)."""
    return sddmm(z, z, pairs, method="gather")


class MetaGraph(nn.Module):
    """A VGAE meta-learned across graphs (MAML), optionally with graph signatures and a
    causal disentanglement layer (:class:`CCMetaGraph`).

    Args:
        in_channels, hidden, latent: encoder widths (Kipf & Welling: 32, 16).
        signature: use graph-signature FiLM conditioning. signature_hidden: its GCN width.
        causal: a :class:`CausalDisentanglementLayer` of width ``latent`` (or ``None``).
        kl: the KL knobs. inner_lr, inner_steps: the inner SGD loop.
        order: 2 (second-order MAML) or 1 (first-order).
        adapt_structure: also adapt the causal layer in the inner loop.
        structure_weight: multiplies the causal structure terms in the outer loss.
    """

    def __init__(self, in_channels: int, hidden: int = 32, latent: int = 16, signature: bool = True,
                 signature_hidden: int = 32, causal: CausalDisentanglementLayer | None = None,
                 kl: KLConfig | None = None, inner_lr: float = 0.05, inner_steps: int = 5,
                 order: int = 2, adapt_structure: bool = False, structure_weight: float = 1.0):
        super().__init__()
        if order not in (1, 2):
            raise ValueError(f"order must be 1 or 2, got {order}")
        if causal is not None and causal.out_channels != latent:
            raise ValueError(f"causal layer width {causal.out_channels} != latent {latent}")
        self.encoder = FiLMVariationalGCNEncoder(in_channels, hidden, latent)
        self.signature = GraphSignature(in_channels, signature_hidden, [hidden, latent]) if signature else None
        self.variational = VariationalLayer(kl)
        self.causal = causal
        self.inner_lr, self.inner_steps, self.order = inner_lr, inner_steps, order
        self.adapt_structure, self.structure_weight = adapt_structure, structure_weight

    @property
    def out_channels(self) -> int:
        return self.encoder.out_channels

    def forward(self, x, graph, film=None):
        """``(z, mu, logstd)``: ``z`` samples in training mode, uses ``mu`` in eval mode."""
        mu, logstd = self.encoder(x, graph, film)
        z = self.variational(mu, logstd)
        if self.causal is not None:
            z = self.causal(z)
        return z, mu, logstd

    def inner_parameters(self) -> dict[str, torch.Tensor]:
        """The parameters the inner loop adapts (the encoder; the causal layer if asked)."""
        prefixes = ("encoder.", "causal.") if self.adapt_structure else ("encoder.",)
        return {n: p for n, p in self.named_parameters() if n.startswith(prefixes)}

    def film(self, task):
        """The graph signature's FiLM parameters for ``task`` (``None`` without signature)."""
        return self.signature(task.x, task.graph) if self.signature is not None else None

    def task_loss(self, params: dict, task, pos: torch.Tensor, neg: torch.Tensor, film=None,
                  epoch: int = 0) -> torch.Tensor:
        """Sampled reconstruction + KL of the model with ``params`` swapped in, on ``task``."""
        z, mu, logstd = functional_call(self, params, (task.x, task.graph, film))
        rec = sampled_recon_loss(score_pairs(z, pos), score_pairs(z, neg))
        return rec + self.variational.kl_loss(mu, logstd, epoch)

    def structure_loss(self) -> torch.Tensor:
        if self.causal is None:
            return torch.zeros(())
        return self.structure_weight * self.causal.penalty()

    def adapt(self, task, steps: int | None = None, lr: float | None = None, generator=None,
              differentiable: bool = True, epoch: int = 0):
        """Inner loop on ``task``'s revealed edges; returns ``(fast params, film)``.

        ``differentiable=False`` (evaluation) keeps no graph for the outer step.
        """
        steps = self.inner_steps if steps is None else steps
        lr = self.inner_lr if lr is None else lr
        film = self.film(task)
        inner_film = None if film is None else [(g.detach(), b.detach()) for g, b in film]
        second = differentiable and self.order == 2
        params = self.inner_parameters()
        if not differentiable:
            params = {n: p.detach().requires_grad_() for n, p in params.items()}
        for _ in range(steps):
            neg = task.split.sample_train_negatives(generator=generator)
            loss = self.task_loss(params, task, task.split.train_pos, neg, inner_film, epoch)
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=second, allow_unused=True)
            params = {n: p if g is None else p - lr * (g if second else g.detach())
                      for (n, p), g in zip(params.items(), grads)}
            if not differentiable:
                params = {n: p.detach().requires_grad_() for n, p in params.items()}
        return params, film

    def meta_loss(self, task, generator=None, epoch: int = 0) -> torch.Tensor:
        """Query loss (the task's validation pairs) after adapting to its revealed edges."""
        params, film = self.adapt(task, generator=generator, epoch=epoch)
        split = task.split
        return self.task_loss(params, task, split.val_pos, split.val_neg, film, epoch) + self.structure_loss()

    @torch.no_grad()
    def embed(self, task, params: dict | None = None, film=None) -> torch.Tensor:
        """Eval-mode ``z`` of ``task`` (``mu`` through the causal layer) with ``params``."""
        was = self.training
        self.eval()
        try:
            z, _, _ = functional_call(self, params or {}, (task.x, task.graph, film))
        finally:
            self.train(was)
        return z

    def adapted_embedding(self, task, steps: int | None = None, generator=None) -> torch.Tensor:
        """Adapt to ``task`` (no outer graph), then the eval-mode ``z`` with the fast weights."""
        was = self.training
        self.train()
        with torch.enable_grad():
            params, film = self.adapt(task, steps=steps, generator=generator, differentiable=False)
        params = {n: p.detach() for n, p in params.items()}
        with torch.no_grad():
            film = None if film is None else [(g.detach(), b.detach()) for g, b in film]
            z = self.embed(task, params, film)
        self.train(was)
        return z


class CCMetaGraph(MetaGraph):
    """Meta-Graph with a causal disentanglement layer of ``num_concepts`` blocks."""

    def __init__(self, in_channels: int, hidden: int = 32, latent: int = 16, num_concepts: int = 4,
                 nonlinearity: str | None = None, sparsity: float = 1e-3, rho: float = 1.0,
                 init_scale: float = 0.0, **kwargs):
        if latent % num_concepts:
            raise ValueError(f"latent {latent} is not divisible by num_concepts {num_concepts}")
        causal = CausalDisentanglementLayer(num_concepts, latent // num_concepts, nonlinearity=nonlinearity,
                                            sparsity=sparsity, rho=rho, init_scale=init_scale)
        super().__init__(in_channels, hidden, latent, causal=causal, **kwargs)

    def structure(self, threshold: float = 0.0) -> torch.Tensor:
        """The learned (shared) concept-structure matrix ``A``."""
        return self.causal.learned_structure(threshold)


"""The DDI models: :class:`EmbeddingLinkPredictor` (ogbl-ddi), :class:`ContextDDIModel` and
:class:`AtomDDIModel` (DrugBank; the latter encodes each drug's atom graph), plus :class:`DDIBundle`, the file ``vgraph ddi`` writes for ``vgraph predict-ddi``.

**EmbeddingLinkPredictor** — a link predictor for a drug graph without node features:
learnable node embeddings -> a GCN, GraphSAGE or linear-GCN encoder on :mod:`vgraph.ops`
(optionally with an input residual) -> optionally a variational layer -> an inner-product
(:func:`vgraph.ops.sddmm`), MLP-on-Hadamard or common-neighbour-aware (NCN-style) decoder.
This is the GAE family the OGB leaderboard's strong entries come from (GCN/SAGE with node
embeddings; Refined-GAE, arXiv 2411.03845).

**ContextDDIModel** — a context-aware variational DDI model in the spirit of CADGL (Wasi et
al., arXiv 2403.17210). Per drug ``i`` with structure features ``x_i`` (RDKit descriptors +
Morgan bits, row ``i`` = drug ``i``):

* molecular-context encoder: ``m_i = MLP(x_i)``;
* graph encoder over the DDI graph (local neighbourhood): two GraphSAGE layers whose input is
  ``m``, so a drug's context is its partners' structures;
* latent information encoder: ``[m_i || g_i]`` — the two branches joined along the *feature*
  axis (CADGL's code concatenates them along the node axis, so each node's latent sees only
  one branch) — to ``(mu_i, log sigma_i)`` and :class:`vgraph.nn.VariationalLayer`;
* relation-aware decoder: an MLP on ``[z_h, z_t, z_h * z_t]`` with one logit per interaction
  type (ordered pair: DrugBank types are directional).

A drug outside the training graph is an isolated node: its graph branch reduces to the root
transform of its own structure, and training drops the neighbourhoods of a random fraction
of drugs at every step (``isolate``) so the model is used to that case (cold start, new
SMILES in ``predict-ddi``).

Constructor arguments are plain values (``kl`` may be a :class:`KLConfig` or its dict), so
:func:`vgraph.hub.save_model` can record them and :func:`vgraph.load` rebuild the model.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from vgraph.nn import CommonNeighborDecoder, GCNConv, HadamardMLP, KLConfig, SAGEConv, VariationalLayer
from vgraph.nn.molecular import AtomCrossAttention, MolecularBatch, MolecularEncoder, SubstructureCoAttention
from vgraph.ops import SparseGraph, sddmm


def _kl(kl) -> KLConfig:
    if kl is None:
        return KLConfig(beta=1e-3, norm="node")
    return kl if isinstance(kl, KLConfig) else KLConfig(**kl)


def _mlp(dims, dropout):
    layers = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers += [nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class _PairDDIModel(nn.Module):
    """What the DrugBank models share: ``encode`` (posterior sample), ``decode`` of ordered
    pairs through ``decode_pairs``, ``score`` of typed tuples and the loss (softplus on
    positives and type-aware negatives, plus the KL term in training)."""

    def with_context(self, m: torch.Tensor, graph: SparseGraph) -> torch.Tensor:
        """``[m || g]``: each drug's own vector beside its DDI-graph context ``g`` (the
        GraphSAGE layers over ``m``, ReLU between them; ``m`` alone without graph layers)."""
        if not len(self.convs):
            return m
        h = m
        for i, conv in enumerate(self.convs):
            h = conv(F.dropout(h, self.dropout, self.training), graph)
            if i < len(self.convs) - 1:
                h = F.relu(h)
        return torch.cat([m, h], dim=-1)

    def posterior(self, x, graph: SparseGraph):
        raise NotImplementedError

    def decode_pairs(self, zh: torch.Tensor, zt: torch.Tensor, cross=None) -> torch.Tensor:
        """All-type logits of head and tail latents; ``cross``: a pair's cross-attention
        readouts (only :class:`AtomDDIModel` with ``cross_attention`` has them)."""
        raise NotImplementedError

    def encode(self, x, graph: SparseGraph) -> torch.Tensor:
        self._mu, self._logstd = self.posterior(x, graph)
        return self.var(self._mu, self._logstd)

    def decode(self, z: torch.Tensor, pairs: torch.Tensor, atoms=None) -> torch.Tensor:
        """All-type logits of ordered pairs ``[2, P]`` -> ``[P, num_types]`` (``atoms``: see
        :meth:`AtomDDIModel.decode`; other models ignore it)."""
        return self.decode_pairs(z[pairs[0]], z[pairs[1]])

    def score(self, z: torch.Tensor, tuples: torch.Tensor, atoms=None) -> torch.Tensor:
        """Logit of each ``(head, tail, type)`` tuple ``[T, 3]`` -> ``[T]``."""
        logits = self.decode(z, tuples[:, :2].t(), atoms)
        return logits.gather(1, tuples[:, 2:3]).squeeze(1)

    def loss(self, z, pos: torch.Tensor, neg: torch.Tensor, epoch: int = 0) -> torch.Tensor:
        s = self.score(z, torch.cat([pos, neg]))
        loss = F.softplus(-s[:pos.size(0)]).mean() + F.softplus(s[pos.size(0):]).mean()
        if self.training:
            loss = loss + self.var.kl_loss(self._mu, self._logstd, epoch)
        return loss


class ContextDDIModel(_PairDDIModel):
    """Structure + DDI-graph encoder, variational latent, 86-way relation-aware decoder.

    Args:
        in_features: drug feature width. hidden: width of both branches. latent: width of z.
        num_types: interaction types. dropout: in the MLPs and on the graph layers' input.
        graph_layers: GraphSAGE layers (0 disables the graph branch). kl: KL settings.

    Shapes:
        ``encode(x [N, F], graph) -> z [N, latent]``;
        ``decode(z, pairs [2, P]) -> logits [P, num_types]``.
    """

    def __init__(self, in_features: int, hidden: int = 128, latent: int = 64, num_types: int = 86,
                 dropout: float = 0.3, graph_layers: int = 2, kl: KLConfig | dict | None = None):
        super().__init__()
        self.mol = _mlp([in_features, 2 * hidden, hidden], dropout)
        self.convs = nn.ModuleList(SAGEConv(hidden, hidden) for _ in range(graph_layers))
        joint = hidden * (2 if graph_layers else 1)
        self.mu = nn.Linear(joint, latent)
        self.logstd = nn.Linear(joint, latent)
        self.var = VariationalLayer(_kl(kl))
        self.decoder = _mlp([3 * latent, 2 * hidden, num_types], dropout)
        self.dropout, self.num_types, self.latent = dropout, num_types, latent
        self._mu = self._logstd = None

    def posterior(self, x: torch.Tensor, graph: SparseGraph):
        """``(μ, log σ)`` of every drug, ``[N, latent]`` each."""
        joint = self.with_context(F.relu(self.mol(x)), graph)  # feature axis: every drug sees both branches
        return self.mu(joint), self.logstd(joint).clamp(-10, 5)

    def decode_pairs(self, zh: torch.Tensor, zt: torch.Tensor, cross=None) -> torch.Tensor:
        """All-type logits from head and tail latents ``[P, latent]`` each -> ``[P, num_types]``."""
        if cross is not None:
            raise ValueError("this model has no cross attention")
        return self.decoder(torch.cat([zh, zt, zh * zt], -1))


class AtomDDIModel(_PairDDIModel):
    """The context DDI model with an atom-level structure encoder and a substructure
    co-attention decoder (issue 18).

    Per drug ``i`` (its atom graph in a :class:`~vgraph.nn.molecular.MolecularBatch`):

    * :class:`~vgraph.nn.molecular.MolecularEncoder`: ``L`` bond-type message-passing layers
      over the atoms, one gated readout per layer: substructures ``s_i [L, mol_hidden]``;
    * the drug vector ``m_i = MLP([s_i flattened || f_i])``, where ``f_i`` are ``mol_features``
      molecule-level features from the same structure (none, its Morgan bits, or the descriptor
      model's input row: scaled RDKit descriptors + Morgan bits), feeds ``graph_layers``
      GraphSAGE layers over the DDI graph: ``g_i`` (a drug without partners, e.g. a new
      SMILES, is an isolated node: ``g_i`` is the root transform of its own ``m_i``);
    * the latent is one vector per substructure:
      ``(mu, log sigma)_il = Linear([s_il || m_i || g_i])`` plus a learned per-layer offset, so
      every substructure carries the drug's own vector and its context; ``z_i [L, latent]``
      (flattened to ``L * latent``) from :class:`vgraph.nn.VariationalLayer`;
    * the decoder: co-attention between the head's and the tail's substructure latents
      (:class:`SubstructureCoAttention`, SSI-DDI / DSN-DDI style), then an MLP on
      ``[mean_l z_hl, mean_l z_tl, sum_ij gamma_ij z_hi * z_tj]`` with one logit per
      interaction type (ordered pairs);
    * with ``cross_attention = d > 0`` the two drugs also read each other atom by atom
      (:class:`~vgraph.nn.molecular.AtomCrossAttention` over the last layer's atom states, in the
      spirit of DSN-DDI's inter-view attention): two pair-conditioned ``d``-vectors join the
      decoder's input. They are deterministic (the latent stays the per-drug Gaussian), and
      ``posterior`` keeps the atom projections they need in ``atom_states()``.

    Constructor arguments are plain values (``vgraph.hub.save_model`` records them).

    Shapes:
        ``encode(batch with N molecules, graph) -> z [N, L * latent]``;
        ``decode(z, pairs [2, P]) -> logits [P, num_types]``.
    """

    def __init__(self, atom_sizes, num_bond_types: int = 4, mol_hidden: int = 64, mol_layers: int = 3,
                 hidden: int = 128, latent: int = 64, num_types: int = 86, dropout: float = 0.3,
                 mol_dropout: float = 0.1, graph_layers: int = 2, kl: KLConfig | dict | None = None,
                 mol_features: int = 0, cross_attention: int = 0):
        super().__init__()
        self.mol = MolecularEncoder(atom_sizes, mol_hidden, mol_layers, num_bond_types, mol_dropout)
        self.cross = AtomCrossAttention(mol_hidden, cross_attention) if cross_attention else None
        self._atoms = None
        self.drug = _mlp([mol_layers * mol_hidden + mol_features, 2 * hidden, hidden], dropout)
        self.mol_features = mol_features
        self.convs = nn.ModuleList(SAGEConv(hidden, hidden) for _ in range(graph_layers))
        joint = mol_hidden + hidden * (2 if graph_layers else 1)
        self.mu = nn.Linear(joint, latent)
        self.logstd = nn.Linear(joint, latent)
        self.layer_mu = nn.Parameter(torch.zeros(mol_layers, latent))
        self.var = VariationalLayer(_kl(kl))
        self.coatt = SubstructureCoAttention(latent)
        self.decoder = _mlp([3 * latent + 2 * cross_attention, 2 * hidden, num_types], dropout)
        self.dropout, self.num_types, self.mol_layers, self.sub_latent = dropout, num_types, mol_layers, latent
        self.latent = mol_layers * latent
        self._mu = self._logstd = None

    def substructures(self, batch: MolecularBatch) -> torch.Tensor:
        """``[N, L, mol_hidden]`` readouts of every molecule of ``batch`` (with cross attention
        on, the batch's atom projections are kept for :meth:`decode`: ``atom_states()``)."""
        if self.cross is None:
            return self.mol(batch)
        out, h = self.mol(batch, return_atoms=True)
        self._atoms = (self.cross.project(h), batch.ptr)
        return out

    def atom_states(self):
        """``(qkv [A, 3d], ptr [N + 1])`` of the molecules of the last ``posterior`` call
        (``None`` without cross attention)."""
        return self._atoms

    def pair_cross(self, pairs: torch.Tensor, atoms=None):
        """The cross-attention readouts ``([P, d], [P, d])`` of ordered pairs ``[2, P]``."""
        qkv, ptr = atoms if atoms is not None else self._atoms
        return self.cross(qkv, ptr, pairs[0], pairs[1])

    def decode(self, z: torch.Tensor, pairs: torch.Tensor, atoms=None) -> torch.Tensor:
        """All-type logits of ordered pairs ``[2, P]``; with cross attention the atom states
        come from ``atoms`` (an ``atom_states()`` value) or else the last ``posterior`` call."""
        cross = None if self.cross is None else self.pair_cross(pairs, atoms)
        return self.decode_pairs(z[pairs[0]], z[pairs[1]], cross)

    def posterior(self, batch: MolecularBatch, graph: SparseGraph):
        """``(mu, log sigma)`` of every drug, ``[N, L * latent]`` each."""
        s = self.substructures(batch)
        flat = s.flatten(1)
        if self.mol_features:
            if batch.features is None or batch.features.size(1) != self.mol_features:
                raise ValueError(f"this model reads {self.mol_features} molecule-level features per molecule")
            flat = torch.cat([flat, batch.features], 1)
        drug = self.with_context(F.relu(self.drug(flat)), graph)  # as in ContextDDIModel
        joint = torch.cat([s, drug[:, None, :].expand(-1, s.size(1), -1)], -1)
        mu = self.mu(joint) + self.layer_mu
        return mu.flatten(1), self.logstd(joint).clamp(-10, 5).flatten(1)

    def decode_pairs(self, zh: torch.Tensor, zt: torch.Tensor, cross=None) -> torch.Tensor:
        """All-type logits from head and tail latents ``[P, L * latent]`` -> ``[P, num_types]``;
        ``cross``: the pairs' :meth:`pair_cross` readouts (``[P or 1, d]`` each; needed, and
        only allowed, with cross attention on)."""
        if (cross is None) != (self.cross is None):
            raise ValueError("cross-attention readouts are needed exactly when the model has cross attention")
        heads = zh.reshape(zh.size(0), self.mol_layers, self.sub_latent)
        tails = zt.reshape(zt.size(0), self.mol_layers, self.sub_latent)
        inter, _ = self.coatt(heads, tails)
        parts = [heads.mean(1), tails.mean(1), inter]
        if cross is not None:
            parts += [c.expand(zh.size(0), -1) for c in cross]
        return self.decoder(torch.cat(parts, -1))


class EmbeddingLinkPredictor(nn.Module):
    """GAE/VGAE with learnable node embeddings for featureless graphs.

    Args:
        num_nodes: nodes in the graph. embedding_dim: width of the learnable input embedding.
        hidden_channels: width of every encoder layer (and the latent). num_layers: encoder
            layers (>= 1). conv: ``"gcn"``, ``"sage"`` (ReLU between layers) or
            ``"gcn-linear"`` (GCN propagation with no non-linearity, as in Refined-GAE).
        dropout: on the input of each layer after the first, and in the decoder MLP.
        embedding_dropout: also drop out the embeddings fed to the first layer (the OGB
            example does not). residual: add ``residual * x0`` (the input embeddings) to every
            layer's output, an APPNP-like anchor that keeps each drug's own embedding in its
            representation (needs ``embedding_dim == hidden_channels``).
        decoder: ``"dot"`` (inner product), ``"mlp"`` (MLP on the Hadamard product) or
            ``"ncn"`` (:class:`~vgraph.nn.CommonNeighborDecoder`: plus the common neighbours'
            embedding sum) or ``"mlp-cn"`` (the MLP plus the pair's common-neighbour count,
            resource-allocation and Adamic-Adar scores); both need :meth:`set_adjacency`.
        mlp_layers: layers of the decoder MLP. init: ``"xavier"`` or ``"orthogonal"`` embeddings.
        loss: ``"bce"`` (positives vs negatives), ``"ranking"`` (``-log sigmoid(s_pos - s_neg)``
            over each positive's negatives: a pairwise logistic loss) or ``"auc"``
            (``(1 - (s_pos - s_neg))^2`` over the same pairs: PLNLP's square AUC surrogate,
            which also pulls margins above 1 back, so no score runs away).
        cn_channels: ``"ncn"``: the rank of the common-neighbour term (0: full width).
        pair_dropout: ``"mlp"``: dropout on ``z_i * z_j`` before the decoder's first layer (PLNLP).
        variational: add μ / log σ heads and a :class:`VariationalLayer` (``kl`` its config).

    Shapes:
        ``encode(graph) -> z [N, hidden_channels]``; ``decode(z, pairs [2, P]) -> logits [P]``.
    """

    CONVS = ("gcn", "sage", "gcn-linear")
    DECODERS = ("dot", "mlp", "ncn", "mlp-cn")
    LOSSES = ("bce", "ranking", "auc")

    def __init__(self, num_nodes: int, embedding_dim: int = 256, hidden_channels: int = 256,
                 num_layers: int = 2, conv: str = "gcn", dropout: float = 0.5,
                 decoder: str = "dot", mlp_layers: int = 2, variational: bool = False,
                 kl: KLConfig | dict | None = None, embedding_dropout: bool = True,
                 residual: float = 0.0, init: str = "xavier", loss: str = "bce", cn_channels: int = 0,
                 pair_dropout: float = 0.0):
        super().__init__()
        if conv not in self.CONVS:
            raise ValueError(f"conv must be one of {self.CONVS}, got {conv!r}")
        if decoder not in self.DECODERS:
            raise ValueError(f"decoder must be one of {self.DECODERS}, got {decoder!r}")
        if loss not in self.LOSSES:
            raise ValueError(f"loss must be one of {self.LOSSES}, got {loss!r}")
        if init not in ("xavier", "orthogonal"):
            raise ValueError(f"init must be 'xavier' or 'orthogonal', got {init!r}")
        if residual and embedding_dim != hidden_channels:
            raise ValueError("residual needs embedding_dim == hidden_channels")
        self.embedding = nn.Embedding(num_nodes, embedding_dim)
        (nn.init.xavier_uniform_ if init == "xavier" else nn.init.orthogonal_)(self.embedding.weight)
        dims = [embedding_dim] + [hidden_channels] * num_layers
        make = SAGEConv if conv == "sage" else (lambda a, b: GCNConv(a, b))
        self.convs = nn.ModuleList(make(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.dropout, self.decoder_kind, self.variational = dropout, decoder, variational
        self.conv_kind, self.embedding_dropout, self.residual, self.loss_kind = conv, embedding_dropout, residual, loss
        if variational:
            self.mu = nn.Linear(hidden_channels, hidden_channels)
            self.logstd = nn.Linear(hidden_channels, hidden_channels)
            self.var = VariationalLayer(_kl(kl))
        if pair_dropout and decoder != "mlp":
            raise ValueError("pair_dropout applies to decoder 'mlp' only")
        self.mlp = HadamardMLP(hidden_channels, hidden_channels, 1, mlp_layers, dropout, fast_dropout=True,
                               input_dropout=pair_dropout) if decoder == "mlp" else None
        self.ncn = CommonNeighborDecoder(hidden_channels, hidden_channels, mlp_layers, dropout,
                                         embeddings=decoder == "ncn", structure=decoder == "mlp-cn",
                                         cn_channels=cn_channels) \
            if decoder in ("ncn", "mlp-cn") else None
        if self.ncn is not None:  # the training graph, saved with the model so prediction needs nothing else
            self.register_buffer("adjacency", torch.zeros(num_nodes, num_nodes, dtype=torch.bool))
        self.out_channels = hidden_channels
        self._mu = self._logstd = None

    def set_adjacency(self, edge_index: torch.Tensor):
        """Store the graph whose common neighbours the ``"ncn"`` decoder sums (both directions)."""
        if self.ncn is None:
            return
        self.adjacency.zero_()
        self.adjacency[edge_index[0], edge_index[1]] = True
        self.adjacency[edge_index[1], edge_index[0]] = True
        self.adjacency.fill_diagonal_(False)

    def clip_groups(self) -> list:
        """Parameter groups clipped separately (as the OGB example does): embeddings, encoder, decoder."""
        emb = [self.embedding.weight]
        dec = [p for m in (self.mlp, self.ncn) if m is not None for p in m.parameters()]
        taken = {id(p) for p in emb + dec}
        enc = [p for p in self.parameters() if id(p) not in taken]
        return [g for g in (emb, enc, dec) if g]

    def encode(self, graph: SparseGraph) -> torch.Tensor:
        """Node embeddings (a posterior sample in training, μ in eval mode for the VGAE)."""
        x0 = x = self.embedding.weight
        for i, conv in enumerate(self.convs):
            if i > 0 or self.embedding_dropout:
                x = F.dropout(x, self.dropout, self.training)
            x = conv(x, graph)
            if self.residual:
                x = x + self.residual * x0
            if i < len(self.convs) - 1 and self.conv_kind != "gcn-linear":
                x = F.relu(x)
        if not self.variational:
            return x
        self._mu, self._logstd = self.mu(x), self.logstd(x)
        return self.var(self._mu, self._logstd)

    def decode(self, z: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """Logits of the pairs ``[2, P]``."""
        if self.ncn is not None:
            return self.ncn(z, pairs, self.adjacency)
        if self.mlp is None:
            return sddmm(z, z, pairs)
        return self.mlp.score_pairs(z, pairs)

    def loss(self, z: torch.Tensor, pos_pairs: torch.Tensor, neg_pairs: torch.Tensor,
             epoch: int = 0) -> torch.Tensor:
        """BCE of positives vs negatives, or the pairwise ranking loss of each positive
        against its ``K`` negatives (``neg_pairs`` holds ``K`` per positive, positive ``p``'s
        at ``p*K .. p*K+K-1``); plus the KL term for the VGAE."""
        logits = self.decode(z, torch.cat([pos_pairs, neg_pairs], 1))
        pos, neg = logits[:pos_pairs.size(1)], logits[pos_pairs.size(1):]
        if self.loss_kind in ("ranking", "auc"):
            margin = pos.unsqueeze(1) - neg.view(pos.size(0), -1)
            loss = F.softplus(-margin).mean() if self.loss_kind == "ranking" else (1 - margin).square().mean()
        else:
            loss = F.softplus(-pos).mean() + F.softplus(neg).mean()
        if self.variational and self.training:
            loss = loss + self.var.kl_loss(self._mu, self._logstd, epoch)
        return loss


def atom_batch(graphs, features=None) -> MolecularBatch:
    """A :class:`vgraph.chem.drug_graphs.AtomGraphs` as the :class:`MolecularBatch` that
    :class:`AtomDDIModel` encodes (all its molecules in one block-diagonal graph); ``features``:
    ``None``, ``"fingerprint"`` (the graphs' Morgan bits) or a ``[D, F]`` tensor."""
    from vgraph.chem.drug_graphs import num_bond_types
    if isinstance(features, str):
        if features != "fingerprint":
            raise ValueError(f"unknown molecule features {features!r}")
        features = torch.from_numpy(graphs.fingerprint_bits())
    return MolecularBatch(graphs.atoms, graphs.num_atoms, graphs.bonds, graphs.bond_types, graphs.num_bonds,
                          num_bond_types(), features=features)


MODELS = {"EmbeddingLinkPredictor": EmbeddingLinkPredictor, "ContextDDIModel": ContextDDIModel,
          "AtomDDIModel": AtomDDIModel}
_DTYPES = {"float32": torch.float32, "float64": torch.float64, "bool": torch.bool, "int64": torch.long,
           "int32": torch.int32, "int16": torch.int16, "uint8": torch.uint8}


class DDIBundle(nn.Module):
    """A trained DDI model plus the tensors prediction needs, so that one file written by
    :func:`vgraph.hub.save_model` is all ``predict-ddi`` reads: for DrugBank the known drugs'
    raw structure features (descriptor model) or atom graphs (atom model) and the training
    graph's pairs, for ogbl-ddi the node embeddings.

    Args:
        model: ``{"class": "ContextDDIModel" | "EmbeddingLinkPredictor", "kwargs": {...}}``.
        tensors: ``{name: [shape, dtype]}`` of the buffers (filled by ``load_state_dict``).
    """

    def __init__(self, model: dict, tensors: dict):
        super().__init__()
        if model.get("class") not in MODELS:
            raise ValueError(f"unknown DDI model class {model.get('class')!r}")
        self.model = MODELS[model["class"]](**model["kwargs"])
        for name, (shape, dtype) in tensors.items():
            self.register_buffer(name, torch.zeros(shape, dtype=_DTYPES[dtype]))

    @staticmethod
    def describe(model_class: str, model_kwargs: dict, tensors: dict) -> dict:
        """The constructor arguments that rebuild a bundle of ``tensors`` (name -> tensor)."""
        names = {v: k for k, v in _DTYPES.items()}
        return {"model": {"class": model_class, "kwargs": model_kwargs},
                "tensors": {k: [list(t.shape), names[t.dtype]] for k, t in tensors.items()}}

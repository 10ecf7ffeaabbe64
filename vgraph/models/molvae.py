r"""MolVAE: a molecular graph VAE whose decoder only builds valence-valid molecules.

* **Encoder** — a relational graph network on :mod:`vgraph.ops`: atom-token embeddings,
  ``num_layers`` rounds of :math:`h_i \leftarrow h_i + \mathrm{MLP}(h_i W_0 + \sum_{b}\sum_{j \in
  N_b(i)} h_j W_b)` (one :func:`vgraph.ops.spmm` per Kekulé bond type *b*), then sum- and
  max-pooling per molecule with :func:`vgraph.ops.segment` into ``mu`` and ``logstd`` of a
  molecule-level latent ``z`` (:class:`vgraph.nn.VariationalLayer`, so β, warm-up, cyclical
  annealing, capacity and free bits all apply).
* **Decoder** — autoregressive in canonical SMILES atom order (each atom after the first is
  bonded to an earlier one). A GRU conditioned on ``z`` emits, at step *t*, the atom token
  (or STOP), then the bond order (none/single/double/triple) between the new atom and every
  earlier atom. Earlier atoms enter through their states, their token and their *remaining
  valence* (the vocabulary's maximum total valence minus the bond orders already attached).
  When sampling, tokens and bond orders that would exceed a remaining valence are masked
  out and every new atom is bonded to the graph, so each sample is a connected molecule
  that RDKit sanitises — validity is by construction, not by correction.

Loss per molecule: :math:`-\log p(\text{atoms}, \text{bonds} \mid z) + w(t)\,\mathrm{KL}`.

Shapes:
    ``atoms [B, N]`` (vocabulary index, ``-1`` padding), ``adj [B, N, N]`` bond orders 0..3,
    ``z [B, latent]``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vgraph.nn.variational import KLConfig, VariationalLayer
from vgraph.ops import SparseGraph, segment, spmm

NUM_BOND_CLASSES = 4  # none, single, double, triple
MAX_VALENCE_FEATURE = 8


def dense_to_sparse(atoms: torch.Tensor, adj: torch.Tensor):
    """Padded batch -> ``(tokens [M], batch [M], edge_index [2, E], edge_order [E])`` over real atoms."""
    mask = atoms >= 0
    flat_id = torch.full_like(atoms, -1)
    flat_id[mask] = torch.arange(int(mask.sum()), device=atoms.device)
    b, i, j = (adj > 0).nonzero(as_tuple=True)
    edge_index = torch.stack([flat_id[b, j], flat_id[b, i]])  # message j -> i
    batch = torch.arange(atoms.size(0), device=atoms.device).unsqueeze(1).expand_as(atoms)[mask]
    return atoms[mask], batch, edge_index, adj[b, i, j]


class RelationalGraphEncoder(nn.Module):
    """Bond-type-aware message passing on :mod:`vgraph.ops`, pooled per molecule."""

    def __init__(self, num_tokens: int, hidden: int = 128, num_layers: int = 3):
        super().__init__()
        self.embed = nn.Embedding(num_tokens, hidden)
        self.self_lin = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(num_layers))
        self.bond_lin = nn.ModuleList(nn.Linear(hidden, 3 * hidden, bias=False) for _ in range(num_layers))
        self.mlp = nn.ModuleList(nn.Sequential(nn.LayerNorm(hidden), nn.SiLU(), nn.Linear(hidden, hidden))
                                 for _ in range(num_layers))
        self.out_channels = 2 * hidden

    def forward(self, atoms: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        tokens, batch, edge_index, order = dense_to_sparse(atoms, adj)
        num_nodes = tokens.numel()
        graphs = [SparseGraph(edge_index[:, order == k], num_nodes, _validated=True) for k in (1, 2, 3)]
        h = self.embed(tokens)
        hidden = h.size(1)
        for lin0, lin_b, mlp in zip(self.self_lin, self.bond_lin, self.mlp):
            hb = lin_b(h)
            msg = lin0(h)
            for k, g in enumerate(graphs):
                if g.num_edges:
                    msg = msg + spmm(g, hb[:, k * hidden:(k + 1) * hidden])
            h = h + mlp(msg)
        num_graphs = atoms.size(0)
        return torch.cat([segment(h, batch, num_graphs, "sum"), segment(h, batch, num_graphs, "max")], 1)


class MolVAE(nn.Module):
    """Molecular graph VAE (see module docstring).

    Args:
        vocab: a :class:`vgraph.chem.Vocabulary` (tokens and their maximum valences), or its
            ``to_dict()`` (how :func:`vgraph.load` rebuilds a saved model).
        max_atoms: largest molecule the decoder builds.
        hidden / latent / num_layers: widths and encoder depth.
        kl: the :class:`~vgraph.nn.KLConfig` (``norm="node"``: KL per molecule) or its ``to_dict()``.
    """

    def __init__(self, vocab, max_atoms: int, hidden: int = 128, latent: int = 32, num_layers: int = 3,
                 kl: KLConfig | None = None):
        super().__init__()
        from vgraph.chem.datasets import as_vocabulary
        self.vocab = vocab = as_vocabulary(vocab)
        if isinstance(kl, dict):
            kl = KLConfig(**kl)
        self.num_tokens, self.max_atoms, self.hidden, self.latent = len(vocab), int(max_atoms), hidden, latent
        self.config = {"hidden": hidden, "latent": latent, "num_layers": num_layers, "max_atoms": int(max_atoms)}
        self.register_buffer("max_valence", torch.tensor(vocab.max_valence, dtype=torch.long))
        self.encoder = RelationalGraphEncoder(self.num_tokens, hidden, num_layers)
        self.pool_norm = nn.LayerNorm(self.encoder.out_channels)
        self.to_mu = nn.Linear(self.encoder.out_channels, latent)
        self.to_logstd = nn.Linear(self.encoder.out_channels, latent)
        self.variational = VariationalLayer(kl or KLConfig(norm="node"))
        # decoder
        self.stop = self.num_tokens
        self.start = nn.Parameter(torch.zeros(hidden))
        self.atom_embed = nn.Embedding(self.num_tokens + 1, hidden)
        self.z_to_h = nn.Linear(latent, hidden)
        self.gru = nn.GRUCell(2 * hidden + latent, hidden)
        self.state_to_msg = nn.Linear(hidden, NUM_BOND_CLASSES * hidden, bias=False)
        self.atom_head = nn.Sequential(nn.Linear(hidden + latent, hidden), nn.SiLU(),
                                       nn.Linear(hidden, self.num_tokens + 1))
        self.valence_embed = nn.Embedding(MAX_VALENCE_FEATURE + 1, hidden)
        self.pair_new = nn.Linear(2 * hidden, hidden)
        self.pair_old = nn.Linear(2 * hidden, hidden)
        self.bond_head = nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                       nn.Linear(hidden, NUM_BOND_CLASSES))

    # ------------------------------------------------------------------ encoder
    def encode_batch(self, atoms, adj):
        """``(mu, logstd)`` of the posterior for a padded batch."""
        pooled = self.pool_norm(self.encoder(atoms, adj))
        return self.to_mu(pooled), self.to_logstd(pooled).clamp(-10, 5)

    # ------------------------------------------------------------- decoder step
    def _step(self, h, z, prev_token_emb, prev_msg):
        return self.gru(torch.cat([prev_token_emb, prev_msg, z], 1), h)

    def _old_repr(self, states, old_tokens, remaining):
        """Representation of earlier atoms for the bond head: ``[B, t, H]``."""
        rem = remaining.clamp(0, MAX_VALENCE_FEATURE)
        return self.pair_old(torch.cat([states, self.atom_embed(old_tokens) + self.valence_embed(rem)], -1))

    def _new_repr(self, h, z_token_emb):
        return self.pair_new(torch.cat([h, z_token_emb], -1))

    def recon_loss(self, z, atoms, adj):
        """Teacher-forced ``-log p(atoms, bonds | z)`` summed per molecule, averaged; plus parts."""
        bsz, n = atoms.shape
        num_atoms = (atoms >= 0).sum(1)
        target_tokens = torch.where(atoms >= 0, atoms, torch.full_like(atoms, self.stop))
        target_tokens = torch.cat([target_tokens, torch.full_like(atoms[:, :1], self.stop)], 1)  # [B, n+1]
        token_in = target_tokens.clamp(max=self.stop)
        h = torch.tanh(self.z_to_h(z))
        prev_emb = self.start.expand(bsz, -1)
        prev_msg = torch.zeros_like(h)
        states, msgs_per_state, atom_logits = [], [], []
        for t in range(n + 1):
            h = self._step(h, z, prev_emb, prev_msg)
            atom_logits.append(self.atom_head(torch.cat([h, z], 1)))
            states.append(h)
            msgs_per_state.append(self.state_to_msg(h).view(bsz, NUM_BOND_CLASSES, -1))
            if t < n:
                # message for the next step: the new atom t and its bonds to earlier atoms
                prev_emb = self.atom_embed(token_in[:, t])
                if t > 0:
                    onehot = F.one_hot(adj[:, t, :t], NUM_BOND_CLASSES).float()  # [B, t, 4]
                    stacked = torch.stack(msgs_per_state[:t], 1)  # states of atoms 0..t-1 [B, t, 4, H]
                    prev_msg = torch.einsum("bik,bikh->bh", onehot[..., 1:], stacked[:, :, 1:])
                else:
                    prev_msg = torch.zeros_like(h)
        atom_logits = torch.stack(atom_logits, 1)  # [B, n+1, V+1]
        valid_step = torch.arange(n + 1, device=atoms.device).unsqueeze(0) <= num_atoms.unsqueeze(1)
        atom_nll = F.cross_entropy(atom_logits.transpose(1, 2), target_tokens, reduction="none")
        atom_nll = (atom_nll * valid_step).sum(1)
        # bonds: pair (t, i<t) for every real atom t
        states = torch.stack(states[:n], 1)  # state after choosing atom t: [B, n, H]
        tok = atoms.clamp(min=0)
        used = torch.cumsum(adj, 2)  # used[b, i, t] = sum_{j<=t} adj[b, i, j]
        used_before = torch.cat([torch.zeros_like(used[:, :, :1]), used[:, :, :-1]], 2)  # sum_{j<t}
        remaining = self.max_valence[tok].unsqueeze(2) - used_before  # [B, i, t]
        new = self._new_repr(states, self.atom_embed(tok))  # [B, n(t), H]
        # old[b, i, t]: atom i as seen when atom t arrives
        old = self._old_repr(states.unsqueeze(2).expand(-1, -1, n, -1), tok.unsqueeze(2).expand(-1, -1, n),
                             remaining)
        logits = self.bond_head(new.unsqueeze(1) + old)  # [B, i, t, 4]
        real = atoms >= 0
        pair_mask = torch.triu(torch.ones(n, n, dtype=torch.bool, device=atoms.device), 1).unsqueeze(0) \
            & real.unsqueeze(2) & real.unsqueeze(1)  # i < t, both real
        bond_nll = F.cross_entropy(logits.permute(0, 3, 1, 2), adj, reduction="none")
        bond_nll = (bond_nll * pair_mask).sum((1, 2))
        return (atom_nll + bond_nll).mean(), atom_nll.mean(), bond_nll.mean()

    def loss(self, batch: dict, epoch: int = 0) -> dict:
        """``{"loss", "recon", "atom_nll", "bond_nll", "kl", "mu"}`` for a padded batch."""
        mu, logstd = self.encode_batch(batch["atoms"], batch["adj"])
        z = self.variational(mu, logstd)
        recon, atom_nll, bond_nll = self.recon_loss(z, batch["atoms"], batch["adj"])
        kl_term = self.variational.kl_loss(mu, logstd, epoch)
        return {"loss": recon + kl_term, "recon": recon, "atom_nll": atom_nll, "bond_nll": bond_nll,
                "kl": self.variational.kl(mu, logstd), "mu": mu, "logstd": logstd}

    # ----------------------------------------------------------------- decoding
    @torch.no_grad()
    def decode(self, z: torch.Tensor, greedy: bool = False, temperature: float = 1.0,
               generator: torch.Generator | None = None):
        """Latents ``[B, latent]`` -> list of ``(tokens, bonds)`` graphs, valence-valid by construction.

        ``bonds`` rows are ``(i, j, order)``; turn a graph into SMILES with
        :func:`vgraph.chem.graph_to_mol` (no hydrogen counts: RDKit fills them).
        """
        bsz, dev = z.size(0), z.device
        n_max = self.max_atoms
        h = torch.tanh(self.z_to_h(z))
        prev_emb = self.start.expand(bsz, -1)
        prev_msg = torch.zeros_like(h)
        tokens = torch.full((bsz, n_max), -1, dtype=torch.long, device=dev)
        adj = torch.zeros((bsz, n_max, n_max), dtype=torch.long, device=dev)
        remaining = torch.zeros((bsz, n_max), dtype=torch.long, device=dev)
        alive = torch.ones(bsz, dtype=torch.bool, device=dev)
        states, msgs = [], []

        def draw(logits, mask):
            logits = logits.masked_fill(~mask, float("-inf"))
            if greedy:
                return logits.argmax(-1)
            probs = torch.softmax(logits / temperature, -1)
            return torch.multinomial(probs, 1, generator=generator).squeeze(-1)

        for t in range(n_max + 1):
            h = self._step(h, z, prev_emb, prev_msg)
            states.append(h)
            msgs.append(self.state_to_msg(h).view(bsz, NUM_BOND_CLASSES, -1))
            logits = self.atom_head(torch.cat([h, z], 1))
            mask = torch.ones_like(logits, dtype=torch.bool)
            if t == n_max:
                mask[:, :self.stop] = False  # full: stop
            elif t == 0:
                mask[:, self.stop] = False  # at least one atom
            else:
                can_bond = (remaining[:, :t] > 0).any(1)  # somewhere to attach
                mask[:, :self.stop] &= (self.max_valence > 0).unsqueeze(0) & can_bond.unsqueeze(1)
            choice = draw(logits, mask)
            alive = alive & (choice != self.stop)
            if t == n_max or not bool(alive.any()):
                break
            tok = torch.where(alive, choice, torch.zeros_like(choice))
            tokens[:, t] = torch.where(alive, choice, torch.full_like(choice, -1))
            remaining[:, t] = torch.where(alive, self.max_valence[tok], torch.zeros_like(tok))
            if t > 0:
                st = torch.stack(states[:t], 1)
                old_tok = tokens[:, :t].clamp(min=0)
                old = self._old_repr(st, old_tok, remaining[:, :t])
                new = self._new_repr(h, self.atom_embed(tok))
                blog = self.bond_head(new.unsqueeze(1) + old)  # [B, t, 4]
                orders = torch.arange(NUM_BOND_CLASSES, device=dev)
                # assign bonds to earlier atoms, most confident first, under both valences
                conf = 1 - torch.softmax(blog, -1)[..., 0]
                visit = torch.argsort(conf, 1, descending=True)
                rows = torch.arange(bsz, device=dev)
                for r in range(t):
                    i = visit[:, r]
                    cap = torch.minimum(remaining[rows, i], remaining[:, t])
                    bmask = orders.unsqueeze(0) <= cap.unsqueeze(1)
                    k = draw(blog[rows, i], bmask)
                    k = torch.where(alive & (tokens[rows, i] >= 0), k, torch.zeros_like(k))
                    adj[rows, t, i] = k
                    adj[rows, i, t] = k
                    remaining[rows, i] -= k
                    remaining[:, t] -= k
                # connectivity: an atom left without a bond gets a single bond to the earlier
                # atom the model finds most likely to bond (valence permitting)
                lonely = alive & (adj[:, t, :t].sum(1) == 0)
                if bool(lonely.any()):
                    score = blog[..., 1:].logsumexp(-1) - blog[..., 0]
                    score = score.masked_fill(remaining[:, :t] <= 0, float("-inf"))
                    i = score.argmax(1)
                    sel = lonely.nonzero().view(-1)
                    adj[sel, t, i[sel]] = 1
                    adj[sel, i[sel], t] = 1
                    remaining[sel, i[sel]] -= 1
                    remaining[sel, t] -= 1
                onehot = F.one_hot(adj[:, t, :t], NUM_BOND_CLASSES).float()
                stacked = torch.stack(msgs[:t], 1)
                prev_msg = torch.einsum("bik,bikh->bh", onehot[..., 1:], stacked[:, :, 1:])
            else:
                prev_msg = torch.zeros_like(h)
            prev_emb = self.atom_embed(tok)
        return self._to_graphs(tokens, adj)

    def _to_graphs(self, tokens, adj):
        out = []
        tokens, adj = tokens.cpu(), adj.cpu()
        for b in range(tokens.size(0)):
            n = int((tokens[b] >= 0).sum())
            toks = [self.vocab.tokens[int(k)] for k in tokens[b, :n]]
            i, j = torch.triu(adj[b, :n, :n], 1).nonzero(as_tuple=True)
            bonds = torch.stack([i, j, adj[b, i, j]], 1).numpy() if i.numel() else \
                torch.zeros((0, 3), dtype=torch.long).numpy()
            out.append((toks, bonds))
        return out

    @torch.no_grad()
    def sample_graphs(self, num_samples: int, generator: torch.Generator | None = None,
                      temperature: float = 1.0):
        """``num_samples`` ``(tokens, bonds)`` graphs decoded from ``z ~ N(0, I)`` (``z`` drawn on
        the CPU so a seed gives the same molecules on any device)."""
        z = torch.randn(num_samples, self.latent, generator=generator, device="cpu").to(self.max_valence.device)
        return self.decode(z, generator=generator, temperature=temperature)

    @torch.no_grad()
    def encode(self, smiles) -> torch.Tensor:
        """Posterior means ``[len(smiles), latent]`` of SMILES strings (a str is one molecule)."""
        from vgraph.chem.datasets import clean_smiles, encode_mols
        if isinstance(smiles, str):
            smiles = [smiles]
        mols, smis, skipped = clean_smiles(smiles)
        ds = encode_mols(mols, smis, self.vocab, skipped)
        if len(ds) != len(smiles):
            raise ValueError(f"{len(smiles) - len(ds)} SMILES cannot be encoded with this model's "
                             f"vocabulary {self.vocab.tokens} / max {self.max_atoms} atoms: {ds.skipped}")
        batch = ds.batch(range(len(ds)))
        was = self.training
        self.eval()
        dev = self.max_valence.device
        mu, _ = self.encode_batch(batch["atoms"].to(dev), batch["adj"].to(dev))
        self.train(was)
        return mu

    @torch.no_grad()
    def decode_smiles(self, z: torch.Tensor, greedy: bool = True) -> list[str]:
        """Latents -> canonical SMILES (greedy decoding by default)."""
        from vgraph.chem.featurize import canonical_smiles, graph_to_mol
        was = self.training
        self.eval()
        out = [canonical_smiles(graph_to_mol(t, b)) or "" for t, b in self.decode(z, greedy=greedy)]
        self.train(was)
        return out

    @torch.no_grad()
    def interpolate(self, smiles_a: str, smiles_b: str, steps: int = 8) -> list[str]:
        """Greedy decodings of ``steps`` points on the line between two molecules' latents."""
        za, zb = self.encode([smiles_a, smiles_b])
        alphas = torch.linspace(0, 1, steps, device=za.device).unsqueeze(1)
        return self.decode_smiles((1 - alphas) * za + alphas * zb)

"""The two sides of ``vgraph bench vs-pyg``: PyG's own GAE/VGAE as a PyG user runs it, and
vgraph's, on the same split, loss and seed (each with ``step()`` and ``evaluate()``).

Both use a 2-layer GCN (hidden 32, latent 16) with bias as PyG's ``GCNConv`` has it, Adam lr
0.01 and either PyG's ``recon_loss`` with 1:1 negatives (``sampled``) or Kipf's all-pairs
``pos_weight`` BCE (``dense``, written the plain way on PyG's side).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vgraph.metrics import auc_ap
from vgraph.models.factory import build_autoencoder
from vgraph.tasks.linkpred import LinkPredTask


def build_pyg(kind: str, in_channels: int):
    from torch_geometric.nn import GAE, VGAE, GCNConv

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = GCNConv(in_channels, 32)
            self.conv_mu = GCNConv(32, 16)
            self.conv_logstd = GCNConv(32, 16) if kind == "vgae" else None

        def forward(self, x, edge_index):
            h = self.conv1(x, edge_index).relu()
            if self.conv_logstd is None:
                return self.conv_mu(h, edge_index)
            return self.conv_mu(h, edge_index), self.conv_logstd(h, edge_index)

    return (VGAE if kind == "vgae" else GAE)(Encoder())


class PygSide:
    """PyG's GAE/VGAE (dense features, edge_index message passing)."""

    def __init__(self, kind, split, x, loss, device="cpu"):
        self.kind, self.split, self.loss = kind, split, loss
        self.x = x.float().to(device)
        self.edge_index = split.mp_edge_index.to(device)
        self.model = build_pyg(kind, x.size(1)).to(device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=0.01)
        self.pairs = {k: getattr(split, k).to(device) for k in ("train_pos", "val_pos", "val_neg",
                                                                 "test_pos", "test_neg")}
        if loss == "dense":
            n = split.num_nodes
            target = torch.zeros(n, n, device=device)
            target[self.edge_index[0], self.edge_index[1]] = 1
            target.fill_diagonal_(1)
            self.target = target
            num_pos = float(target.sum())
            self.pos_weight = torch.tensor((n * n - num_pos) / num_pos, device=device)
            self.norm = n * n / ((n * n - num_pos) * 2)

    def step(self):
        self.model.train()
        self.opt.zero_grad()
        z = self.model.encode(self.x, self.edge_index)
        if self.loss == "dense":
            loss = self.norm * F.binary_cross_entropy_with_logits(z @ z.t(), self.target,
                                                                  pos_weight=self.pos_weight)
        else:
            loss = self.model.recon_loss(z, self.pairs["train_pos"])
        if self.kind == "vgae":
            loss = loss + (1 / self.split.num_nodes) * self.model.kl_loss()
        loss.backward()
        self.opt.step()

    @torch.no_grad()
    def evaluate(self):
        self.model.eval()
        z = self.model.encode(self.x, self.edge_index)
        out = {}
        for name in ("val", "test"):
            m = auc_ap(self.model.decode(z, self.pairs[f"{name}_pos"], sigmoid=True).cpu(),
                       self.model.decode(z, self.pairs[f"{name}_neg"], sigmoid=True).cpu())
            out.update({f"{name}_{k}": v for k, v in m.items()})
        return out


class VgraphSide:
    """vgraph's GAE/VGAE through :class:`~vgraph.tasks.linkpred.LinkPredTask`."""

    def __init__(self, kind, split, x, loss, seed, device="cpu"):
        self.task = LinkPredTask(split, x, loss=loss, seed=seed, device=device)
        self.model = build_autoencoder(kind, x.size(1)).to(device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=0.01)
        self.epoch = 0

    def step(self):
        self.model.train()
        self.opt.zero_grad()
        self.task.training_loss(self.model, self.epoch).backward()
        self.opt.step()
        self.epoch += 1

    def evaluate(self):
        return self.task.evaluate(self.model)

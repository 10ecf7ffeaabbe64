"""Molecule-generation training task for :class:`vgraph.train.Trainer`.

The trainer counts *steps* (one mini-batch each); the task maps a step to its data epoch,
draws the step's mini-batch from a per-epoch permutation (seeded, part of the task state so
``--resume`` continues identically) and, at the end of each data epoch, evaluates on a fixed
held-out subset: the loss and, for a VAE, the posterior-collapse diagnostics (KL per latent
dimension, active units) that are handed to ``log_fn`` every epoch.
"""
from __future__ import annotations

import numpy as np
import torch

from vgraph.nn.variational import VariationalLayer


class MolGenTask:
    """Mini-batch loss and per-epoch evaluation for MolVAE / CatFlow.

    Args:
        train: the training :class:`~vgraph.chem.MolDataset`. eval_set: molecules used for
            the per-epoch evaluation (default: 2,000 training molecules picked by ``seed``).
        batch_size: molecules per step. log_fn: called with the per-epoch record (including
            ``kl_per_dim``) — the script prints it and appends it to ``diagnostics.jsonl``.
        bf16: compute the training losses under bfloat16 autocast (weights, optimiser and the
            per-epoch evaluation stay float32).
    """

    def __init__(self, train, batch_size: int = 128, seed: int = 0, eval_set=None, eval_size: int = 2000,
                 device="cpu", log_fn=None, bf16: bool = False):
        self.train, self.batch_size, self.seed, self.device = train, batch_size, seed, torch.device(device)
        self.bf16 = bool(bf16)
        self.steps_per_epoch = max(1, int(np.ceil(len(train) / batch_size)))
        self.log_fn = log_fn
        rng = np.random.default_rng(seed + 1)
        if eval_set is None:
            eval_set, idx = train, rng.choice(len(train), size=min(eval_size, len(train)), replace=False)
        else:
            idx = np.arange(min(eval_size, len(eval_set)))
        self.eval_batches = [eval_set.batch(idx[i:i + 500], train.max_atoms) for i in range(0, len(idx), 500)]
        self._perm_epoch, self._perm = -1, None
        self.last_step = -1

    def state_dict(self) -> dict:
        return {"last_step": self.last_step}

    def load_state_dict(self, state: dict):
        self.last_step = int(state["last_step"])

    def _batch(self, step: int) -> dict:
        epoch, k = divmod(step, self.steps_per_epoch)
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(len(self.train))
            self._perm_epoch = epoch
        idx = self._perm[k * self.batch_size:(k + 1) * self.batch_size]
        return {key: v.to(self.device) for key, v in self.train.batch(idx).items()}

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch

    def training_loss(self, model, step: int) -> torch.Tensor:
        self.last_step = step
        batch = self._batch(step)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return model.loss(batch, epoch=self.epoch_of(step))["loss"].float()

    @torch.no_grad()
    def evaluate(self, model) -> dict:
        was = model.training
        model.eval()
        sums, count, mus, logstds = {}, 0, [], []
        # CatFlow draws noise and times: the same draws at every evaluation, without
        # disturbing the training RNG stream
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            for batch in self.eval_batches:
                batch = {k: v.to(self.device) for k, v in batch.items()}
                out = model.loss(batch, epoch=self.epoch_of(max(self.last_step, 0)))
                n = batch["atoms"].size(0)
                count += n
                for k, v in out.items():
                    if v.dim() == 0:
                        sums[k] = sums.get(k, 0.0) + float(v) * n
                if "mu" in out:
                    mus.append(out["mu"])
                    logstds.append(out["logstd"])
        model.train(was)
        rec = {f"val_{k}": v / count for k, v in sums.items()}
        diag = {}
        if mus:
            mu, logstd = torch.cat(mus), torch.cat(logstds)
            kl_dim = VariationalLayer.kl_per_dim(mu, logstd).mean(0)
            rec["active_units"] = float(VariationalLayer.active_units(mu))
            diag["kl_per_dim"] = [round(float(v), 4) for v in kl_dim]
        if self.log_fn is not None:
            self.log_fn({"epoch": self.epoch_of(self.last_step), "step": self.last_step, **rec, **diag})
        return rec

"""The protocol every task in :mod:`vgraph.tasks` answers, and the one :class:`~vgraph.train.Trainer` runs.

A task owns the data of one job (splits, samplers, evaluators) and knows nothing of loops,
devices, files or progress bars (TorchDrug's task/engine split). It provides either

* **full batch** — ``training_loss(model, epoch) -> Tensor``: one optimiser step per epoch;
* **mini-batch** — ``training_batches(epoch, start=0) -> Iterable`` and
  ``batch_loss(model, batch, epoch) -> Tensor``: one step per batch (``start`` skips the
  batches a resumed run already did),

and always

* ``evaluate(model) -> dict`` — metrics as fractions in [0, 1] (``val_*`` select the best
  epoch; ``test_*`` are reported once, at the end), computed without autograd;

and optionally

* ``state_dict() -> dict`` / ``load_state_dict(state)`` — the task's own RNG (negative
  sampler, episode sampler), checkpointed with the run so ``--resume`` is bit-identical;
* ``after_step(model, epoch)`` — a hook the Trainer calls after each optimiser step (e.g.
  a meta-learning outer update), and ``before_epoch(model, epoch)``.

Samplers are pure functions in :mod:`vgraph.data` that take rank/world size from the caller;
a task passes them in. Models expose their maths (``encode``, ``decode``, losses); the task
decides which of them make the loss of a batch.
"""
from __future__ import annotations

from typing import Any, Iterable, Protocol, runtime_checkable

import torch


@runtime_checkable
class Task(Protocol):
    """What every task provides (see the module docstring for the optional calls)."""

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        """Metrics of ``model`` on the task's held-out roles, as fractions in [0, 1]."""
        ...


@runtime_checkable
class FullBatchTask(Task, Protocol):
    def training_loss(self, model: torch.nn.Module, epoch: int) -> torch.Tensor:
        """The loss of one full-batch optimiser step."""
        ...


@runtime_checkable
class MiniBatchTask(Task, Protocol):
    def training_batches(self, epoch: int, start: int = 0) -> Iterable[Any]:
        """The epoch's batches, from the ``start``-th on."""
        ...

    def batch_loss(self, model: torch.nn.Module, batch: Any, epoch: int) -> torch.Tensor:
        """The loss of one mini-batch optimiser step."""
        ...

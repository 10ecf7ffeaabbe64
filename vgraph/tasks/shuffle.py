"""A seeded random order per epoch that a task checkpoints with its RNG."""
from __future__ import annotations

import torch


class EpochOrder:
    """``randperm`` from ``generator`` once per epoch. A run resumed mid-epoch (the Trainer
    passes ``start > 0``) reuses the checkpointed order of that epoch instead of drawing a
    new one, so the skipped batches are exactly the ones already trained on."""

    def __init__(self, generator: torch.Generator):
        self.generator, self.order, self._resumed = generator, None, False

    def draw(self, n: int, start: int = 0) -> torch.Tensor:
        if not (start and self._resumed and self.order is not None):
            self.order = torch.randperm(n, generator=self.generator)
        self._resumed = False
        return self.order

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "order": self.order}

    def load_state_dict(self, state: dict):
        self.generator.set_state(state["generator"])
        self.order, self._resumed = state["order"], True

"""Train several models side by side, one epoch each in turn, for fair timing comparisons.

Alternating the order every epoch puts every side under the same machine load, so the ratio
of their epoch times means something even on a busy machine (``vgraph bench vs-pyg``).
"""
from __future__ import annotations

import time


def train_in_lockstep(sides: dict, epochs: int, monitor: str = "val_auc") -> dict:
    """Step each side (``side.step()``, ``side.evaluate() -> dict``) ``epochs`` times in
    alternating order; return ``{name: {"best": metrics at the best monitor value,
    "step_times": [s, ...]}}``."""
    names = list(sides)
    best = {name: (float("-inf"), None) for name in names}
    times = {name: [] for name in names}
    for epoch in range(epochs):
        for name in (names if epoch % 2 == 0 else names[::-1]):
            t = time.perf_counter()
            sides[name].step()
            times[name].append(time.perf_counter() - t)
        for name in names:
            m = sides[name].evaluate()
            if m[monitor] > best[name][0]:
                best[name] = (m[monitor], m)
    return {name: {"best": best[name][1], "step_times": times[name]} for name in names}

"""Data-parallel training: 2-process gloo under torchrun on CPU, against one process.

The file is also the worker script: ``torchrun ... tests/test_train_distributed.py OUT``.
Documented equivalence (docs/distributed.md): :class:`ShardedLinkPredTask` on ``W`` ranks
computes the same gradient as on one rank when the training-edge count divides by ``W``,
so the trained weights and metrics agree up to float summation order.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
EPOCHS = 15


def tiny_graph(num_nodes: int = 80, seed: int = 0):
    """Four planted communities; ~400 edges, features [N, 8]."""
    g = torch.Generator().manual_seed(seed)
    comm = torch.arange(num_nodes) % 4
    src, dst = torch.randint(0, num_nodes, (2, 2000), generator=g)
    keep = (comm[src] == comm[dst]) | (torch.rand(2000, generator=g) < 0.05)
    edge_index = torch.stack([src[keep], dst[keep]])[:, :400]
    return edge_index, torch.randn(num_nodes, 8, generator=g)


def train(out_dir, task_kind: str = "sharded", epochs: int = EPOCHS, model_name: str = "vgae"):
    """Train on the tiny graph in this process (any world size); return (result, model)."""
    from vgraph.data import random_link_split
    from vgraph.tasks.linkpred import MiniBatchLinkPredTask, ShardedLinkPredTask
    from vgraph.models.factory import build_autoencoder
    from vgraph.train import Trainer, seed_everything

    edge_index, x = tiny_graph()
    split = random_link_split(edge_index, x.size(0), 0.1, 0.1, seed=0)
    seed_everything(0)
    if task_kind == "sharded":
        task = ShardedLinkPredTask(split, x, seed=0)
    else:
        task = MiniBatchLinkPredTask(split, x, num_neighbors=(5, 5), batch_size=32, seed=0)
    model = build_autoencoder(model_name, x.size(1), 16, 8)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    trainer = Trainer(model, task, opt, epochs=epochs, out_dir=out_dir, progress=False,
                      config={"task": task_kind})
    return trainer.fit(), model


def _worker(out: str):
    from vgraph.train import distributed as D
    torch.set_num_threads(1)
    info = D.init_from_env()
    for kind in ("sharded", "minibatch"):
        result, model = train(Path(out) / kind, kind)
        flat = torch.cat([p.detach().flatten() for p in model.parameters()])
        record = {"rank": info.rank, "world_size": info.world_size,
                  "best_epoch": result["best_epoch"], "best_metrics": result["best_metrics"],
                  "losses": [h["loss"] for h in result["history"]], "params": flat.tolist()}
        Path(out, f"{kind}-rank{info.rank}.json").write_text(json.dumps(record))
    D.shutdown()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """One ``torchrun --nproc_per_node=2`` (gloo, CPU) training both tasks."""
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           __file__, str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, {kind: [json.loads((out / f"{kind}-rank{r}.json").read_text()) for r in range(2)]
                 for kind in ("sharded", "minibatch")}


def test_two_process_gloo_matches_single_process(two_ranks):
    out, results = two_ranks
    r0, r1 = results["sharded"]
    assert r0["world_size"] == r1["world_size"] == 2
    # ranks agree exactly: same weights, same reduced metrics and losses
    assert r0["params"] == r1["params"]
    assert r0["best_metrics"] == r1["best_metrics"] and r0["losses"] == r1["losses"]
    # rank 0 alone wrote the checkpoints and the log
    run = out / "sharded"
    assert (run / "last.pt").is_file() and (run / "best.pt").is_file()
    assert len((run / "log.jsonl").read_text().splitlines()) == EPOCHS
    # the documented single-process equivalent: the same task in one process
    torch.manual_seed(0)
    single, model = train(None, "sharded")
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert torch.allclose(torch.tensor(r0["params"]), flat, atol=1e-4, rtol=1e-4)
    for k, v in single["best_metrics"].items():
        assert abs(r0["best_metrics"][k] - v) < 1e-3, k
    for a, b in zip(r0["losses"], [h["loss"] for h in single["history"]]):
        assert abs(a - b) < 1e-4


def test_two_process_minibatch_ranks_agree(two_ranks):
    ranks = two_ranks[1]["minibatch"]
    assert ranks[0]["params"] == ranks[1]["params"]
    assert ranks[0]["best_metrics"] == ranks[1]["best_metrics"]
    assert 0.0 <= ranks[0]["best_metrics"]["val_auc"] <= 1.0


def test_helpers_are_noops_without_a_process_group():
    from vgraph.train import distributed as D
    info = D.init_from_env() if "WORLD_SIZE" not in os.environ else None
    if info is not None:
        assert (info.rank, info.world_size, info.is_rank0, info.distributed) == (0, 1, True, False)
    assert D.all_reduce_mean(2.5) == 2.5
    assert D.all_reduce_mean({"a": 1.0}) == {"a": 1.0}
    assert D.wrap_model(torch.nn.Linear(2, 2)) is None
    assert D.is_rank0() and D.get_world_size() == 1


def test_shard_indices_cover_everything_once_when_divisible():
    from vgraph.data.sampling import shard_indices
    parts = [shard_indices(10, r, 2) for r in range(2)]
    assert sorted(torch.cat(parts).tolist()) == list(range(10))
    padded = [shard_indices(7, r, 3) for r in range(3)]
    assert all(p.numel() == 3 for p in padded)
    assert set(torch.cat(padded).tolist()) == set(range(7))


if __name__ == "__main__":
    _worker(sys.argv[1])

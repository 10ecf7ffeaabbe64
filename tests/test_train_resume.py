"""Fault tolerance: SIGKILL + --resume is bit-identical, SIGTERM checkpoints, NaN stops cleanly,
bad checkpoints are refused.

The file is also the worker script: ``python tests/test_train_resume.py OUT KIND [resume]``.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from vgraph.errors import CheckpointError, TrainingDivergedError

ROOT = Path(__file__).resolve().parent.parent
EPOCHS = 12
STEP_SLEEP = 0.15  # seconds per optimiser step in the worker, so a kill lands mid-run


def tiny_graph(num_nodes: int = 60, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    comm = torch.arange(num_nodes) % 3
    src, dst = torch.randint(0, num_nodes, (2, 1500), generator=g)
    keep = (comm[src] == comm[dst]) | (torch.rand(1500, generator=g) < 0.05)
    return torch.stack([src[keep], dst[keep]])[:, :300], torch.randn(num_nodes, 6, generator=g)


class _Slow:
    """Wraps a task; sleeps each step (no effect on the numbers)."""

    def __init__(self, task, sleep):
        self.task, self.sleep = task, sleep
        if hasattr(task, "training_batches"):
            self.training_batches, self.batch_loss = task.training_batches, self._batch_loss

    def _batch_loss(self, model, batch, epoch):
        time.sleep(self.sleep)
        return self.task.batch_loss(model, batch, epoch)

    def training_loss(self, model, epoch):
        time.sleep(self.sleep)
        return self.task.training_loss(model, epoch)

    def evaluate(self, model):
        return self.task.evaluate(model)

    def state_dict(self):
        return self.task.state_dict()

    def load_state_dict(self, state):
        self.task.load_state_dict(state)


def build(kind: str, out_dir, resume=False, sleep=0.0, epochs=EPOCHS, **trainer_kwargs):
    from vgraph.data import random_link_split
    from vgraph.tasks.linkpred import MiniBatchLinkPredTask
    from vgraph.models.factory import build_autoencoder
    from vgraph.tasks import LinkPredTask
    from vgraph.train import Trainer, seed_everything

    edge_index, x = tiny_graph()
    split = random_link_split(edge_index, x.size(0), 0.1, 0.1, seed=0)
    seed_everything(3)
    if kind == "minibatch":
        task = MiniBatchLinkPredTask(split, x, num_neighbors=(4, 4), batch_size=80, seed=3)
    else:
        task = LinkPredTask(split, x, loss="sampled", seed=3)
    model = build_autoencoder("vgae", x.size(1), 16, 8, dropout=0.1)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)
    trainer = Trainer(model, _Slow(task, sleep), opt, epochs=epochs, out_dir=out_dir, resume=resume,
                      progress=False, scheduler=sched, config={"kind": kind}, **trainer_kwargs)
    return trainer, model


def _summary(result, model) -> dict:
    return {"best_epoch": result["best_epoch"], "best_metrics": result["best_metrics"],
            "history": result["history"],
            "params": [p.detach().double().flatten().tolist() for p in model.parameters()]}


def _worker(out: str, kind: str, resume: bool, sleep: float):
    from vgraph.train import TrainingInterrupted
    torch.set_num_threads(1)
    trainer, model = build(kind, Path(out) / "run", resume=resume, sleep=sleep)
    try:
        result = trainer.fit()
    except TrainingInterrupted as exc:
        sys.exit(128 + exc.signum)
    Path(out, "final.json").write_text(json.dumps(_summary(result, model)))


def _spawn(out: Path, kind: str, resume=False, sleep=STEP_SLEEP) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, __file__, str(out), kind, "resume" if resume else "fresh", str(sleep)]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, timeout=300) -> int:
    stdout, stderr = proc.communicate(timeout=timeout)
    if proc.returncode not in (0, 128 + signal.SIGTERM, -signal.SIGKILL):
        raise AssertionError(stderr[-3000:])
    return proc.returncode


def _wait_for_log(out: Path, lines: int, proc, timeout=240):
    log = out / "run" / "log.jsonl"
    t0 = time.time()
    while time.time() - t0 < timeout:
        if log.is_file() and len(log.read_text().splitlines()) >= lines:
            return
        if proc.poll() is not None:
            raise AssertionError(f"worker ended early: {proc.communicate()[1][-3000:]}")
        time.sleep(0.05)
    raise AssertionError("worker made no progress")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted runs of both kinds, started in parallel with the interrupted ones."""
    outs = {k: tmp_path_factory.mktemp(f"ref-{k}") for k in ("sampled", "minibatch")}
    procs = {k: _spawn(o, k, sleep=0.0) for k, o in outs.items()}
    for k, p in procs.items():
        assert _finish(p) == 0
    return {k: (o, json.loads((o / "final.json").read_text())) for k, o in outs.items()}


def test_sigkill_then_resume_is_bit_identical(tmp_path, reference):
    proc = _spawn(tmp_path, "sampled")
    _wait_for_log(tmp_path, 4, proc)
    proc.send_signal(signal.SIGKILL)
    assert _finish(proc) == -signal.SIGKILL
    assert not (tmp_path / "final.json").exists()
    assert _finish(_spawn(tmp_path, "sampled", resume=True)) == 0
    resumed = json.loads((tmp_path / "final.json").read_text())
    ref_dir, ref = reference["sampled"]
    assert resumed == ref  # metrics, loss history and weights, bit for bit
    # the log of the resumed run equals the uninterrupted one (no duplicated epochs)
    assert (tmp_path / "run" / "log.jsonl").read_text() == (ref_dir / "run" / "log.jsonl").read_text()


def test_sigterm_mid_epoch_saves_and_resumes_bit_identical(tmp_path, reference):
    proc = _spawn(tmp_path, "minibatch")
    _wait_for_log(tmp_path, 2, proc)
    time.sleep(STEP_SLEEP * 1.5)  # most likely inside an epoch's batches
    proc.send_signal(signal.SIGTERM)
    assert _finish(proc) == 128 + signal.SIGTERM
    from vgraph.train import load_checkpoint
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] >= 1
    assert _finish(_spawn(tmp_path, "minibatch", resume=True)) == 0
    resumed = json.loads((tmp_path / "final.json").read_text())
    assert resumed == reference["minibatch"][1]


class _NaNAt:
    def __init__(self, task, epoch):
        self.task, self.epoch = task, epoch

    def training_loss(self, model, epoch):
        loss = self.task.training_loss(model, epoch)
        return loss * float("nan") if epoch >= self.epoch else loss

    def evaluate(self, model):
        return self.task.evaluate(model)


def test_nan_loss_stops_with_clear_message_and_keeps_last_good_checkpoint(tmp_path):
    from vgraph.train import load_checkpoint
    trainer, model = build("sampled", tmp_path, epochs=8)
    trainer.task = _NaNAt(trainer.task, 3)
    with pytest.raises(TrainingDivergedError, match="loss became nan at epoch 3.*last good checkpoint"):
        trainer.fit()
    state = load_checkpoint(tmp_path / "last.pt", trainer.fingerprint)
    assert state["epoch"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    # a resumed run continues from epoch 3
    trainer2, _ = build("sampled", tmp_path, resume=True, epochs=8)
    trainer2.restore(tmp_path / "last.pt")
    assert trainer2.start_epoch == 3


def test_bad_checkpoints_are_refused(tmp_path):
    from vgraph.train import save_checkpoint
    trainer, _ = build("sampled", tmp_path, epochs=2)
    trainer.fit()
    last = tmp_path / "last.pt"
    good = last.read_bytes()
    bad = {"truncated": good[: len(good) // 2], "garbage": b"\x00not a checkpoint" * 10, "empty": b"",
           "flipped": good[:200] + bytes(b ^ 0xFF for b in good[200:400]) + good[400:]}
    for name, data in bad.items():
        last.write_bytes(data)
        t, _ = build("sampled", tmp_path, resume=True, epochs=4)
        with pytest.raises(CheckpointError):
            t.fit()
    # foreign: a torch file that is not vgraph's; a vgraph checkpoint of another config
    torch.save({"state_dict": {}}, last)
    with pytest.raises(CheckpointError, match="not a vgraph checkpoint"):
        build("sampled", tmp_path, resume=True)[0].fit()
    last.write_bytes(good)
    with pytest.raises(CheckpointError, match="different model or configuration"):
        build("minibatch", tmp_path, resume=True)[0].fit()
    # best.pt is a vgraph checkpoint of the same config, but not resumable
    (tmp_path / "best.pt").replace(last)
    with pytest.raises(CheckpointError, match="not a resumable one"):
        build("sampled", tmp_path, resume=True)[0].fit()
    # a checkpoint with the right fingerprint but another model's weights
    save_checkpoint(last, {"epoch": 0, "model": {"w": torch.zeros(1)}, "optimizer": {},
                           "scheduler": None, "task": None, "rng": {}, "history": "[]",
                           "best": {}, "best_state": None, "epoch_times": []}, trainer.fingerprint)
    with pytest.raises(CheckpointError, match="does not match"):
        build("sampled", tmp_path, resume=True)[0].fit()


def test_signal_inside_a_minibatch_epoch_resumes_at_that_batch(tmp_path):
    """In-process and deterministic: SIGTERM during batch 1 of epoch 2."""
    from vgraph.train import TrainingInterrupted, load_checkpoint
    torch.set_num_threads(1)
    ref_trainer, ref_model = build("minibatch", None, epochs=4)
    ref = _summary(ref_trainer.fit(), ref_model)
    trainer, _ = build("minibatch", tmp_path, epochs=4)
    inner = trainer.task.task
    calls = []

    def batch_loss(model, batch, epoch):
        calls.append(epoch)
        if epoch == 2 and calls.count(2) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return inner.batch_loss(model, batch, epoch)

    trainer.task.batch_loss = batch_loss
    with pytest.raises(TrainingInterrupted):
        trainer.fit()
    state = load_checkpoint(tmp_path / "last.pt")
    assert (state["epoch"], state["step"]) == (2, 2)
    resumed_trainer, model = build("minibatch", tmp_path, resume=True, epochs=4)
    assert _summary(resumed_trainer.fit(), model) == ref


def test_sigint_in_process_saves_checkpoint(tmp_path):
    from vgraph.train import TrainingInterrupted, load_checkpoint
    trainer, _ = build("sampled", tmp_path, epochs=6)
    inner = trainer.task

    class Interrupting:
        def training_loss(self, model, epoch):
            if epoch == 2:
                os.kill(os.getpid(), signal.SIGINT)
            return inner.training_loss(model, epoch)

        def evaluate(self, model):
            return inner.evaluate(model)

    trainer.task = Interrupting()
    with pytest.raises(TrainingInterrupted) as info:
        trainer.fit()
    assert info.value.signum == signal.SIGINT
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 2


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2], sys.argv[3] == "resume", float(sys.argv[4]))


def test_weight_average_is_validated_checkpointed_and_resumed(tmp_path):
    """EMA: validation and the final weights use the average; stop + resume is bit-identical."""
    torch.set_num_threads(1)
    ref_trainer, ref_model = build("sampled", None, epochs=6, ema_decay=0.8)
    ref = _summary(ref_trainer.fit(), ref_model)
    assert int(ref_trainer.ema.n_averaged) == 6  # one update per optimiser step
    # the weights left in the model are the average's at the best epoch, not the raw ones
    best = ref_trainer.best_state
    assert all(torch.equal(v, ref_model.state_dict()[k]) for k, v in best.items())
    plain_trainer, plain_model = build("sampled", None, epochs=6)
    plain_trainer.fit()
    assert any(not torch.equal(a, b) for a, b in zip(plain_model.parameters(), ref_model.parameters()))
    if ref["best_epoch"] == 5:  # best = last epoch: the model holds the final average
        assert all(torch.equal(a, b) for a, b in zip(ref_trainer.ema.module.parameters(), ref_model.parameters()))
    # what was validated is the average: re-validating it gives the recorded best metrics
    ref_model.load_state_dict(best)
    assert ref_trainer.task.evaluate(ref_model) == pytest.approx(ref["best_metrics"])

    trainer, _ = build("sampled", tmp_path, epochs=6, ema_decay=0.8, stop_after=2)
    trainer.fit()
    assert load_checkpoint_keys(tmp_path / "last.pt") >= {"ema"}
    resumed_trainer, model = build("sampled", tmp_path, resume=True, epochs=6, ema_decay=0.8)
    assert _summary(resumed_trainer.fit(), model) == ref
    # a run with an average cannot resume from a checkpoint written without one
    plain, _ = build("sampled", tmp_path / "plain", epochs=2)
    plain.fit()
    with pytest.raises(CheckpointError, match="no weight average"):
        build("sampled", tmp_path / "plain", resume=True, epochs=4, ema_decay=0.8)[0].fit()
    with pytest.raises(ValueError, match="ema_decay"):
        build("sampled", None, ema_decay=1.5)


def load_checkpoint_keys(path) -> set:
    from vgraph.train import load_checkpoint
    return {k for k, v in load_checkpoint(path).items() if v is not None}


def test_a_flag_added_later_at_its_old_value_does_not_block_resume(tmp_path):
    import pytest
    from vgraph.errors import CheckpointError
    from vgraph.train.checkpoint import config_diff, config_fingerprint, load_checkpoint, save_checkpoint
    old = {"dataset": "drugbank", "lr": 0.002, "epochs": 5}
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"x": 1}, config_fingerprint(old), config=old)
    now = {**old, "epochs": 9, "cross_attention": 0, "cold_negatives": "files"}  # new flags, old behaviour
    assert config_diff(old, now) == []
    assert load_checkpoint(path, config_fingerprint(now), config=now)["x"] == 1
    changed = {**now, "cross_attention": 64}  # a new flag set to something new is a change
    with pytest.raises(CheckpointError, match=r"cross_attention: '<unset>' -> 64"):
        load_checkpoint(path, config_fingerprint(changed), config=changed)
    with pytest.raises(CheckpointError, match="lr"):
        load_checkpoint(path, config_fingerprint({**now, "lr": 0.1}), config={**now, "lr": 0.1})
    with pytest.raises(CheckpointError, match="fingerprint"):  # nothing to compare against
        load_checkpoint(path, config_fingerprint(now))

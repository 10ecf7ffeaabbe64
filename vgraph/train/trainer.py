"""The one trainer: loop, validation-based model selection, early stopping, checkpoints.

The trainer never knows which task it runs. A task provides either

* ``training_loss(model, epoch) -> loss`` (one optimiser step per epoch, full batch), or
* ``training_batches(epoch, start=0) -> iterable`` and ``batch_loss(model, batch, epoch)``
  (one optimiser step per mini-batch; ``start`` skips the first batches when a run
  resumes mid-epoch),

and ``evaluate(model) -> dict``; optionally ``state_dict``/``load_state_dict`` for its own
RNG (e.g. the negative sampler), so that ``--resume`` continues bit-identically, and the
hooks ``before_epoch(model, epoch)`` / ``after_step(model, epoch)`` (Meta-Graph's once-per-
meta-epoch Lagrangian step). Model selection reads ``monitor`` from the epoch's record: a
metric of ``evaluate`` or ``"loss"`` (IsoC-VGAE's lowest-training-loss rule).

Under ``torchrun`` (an initialised process group with more than one rank) the trainer
wraps the model in DDP (:func:`vgraph.train.distributed.wrap_model`), averages the logged
loss and the metrics over ranks, and writes logs and checkpoints on rank 0 only; every
rank's RNG and task state go into the checkpoint, and a resumed run reads it on rank 0
and broadcasts it, so no shared file system is needed.

Fault tolerance: checkpoints are atomic (write, fsync, rename); SIGINT/SIGTERM finish the
current step, save a checkpoint and raise :class:`TrainingInterrupted`; a NaN/inf loss
raises :class:`~vgraph.errors.TrainingDivergedError` before the optimiser step, leaving the
last good checkpoint in place.
"""
from __future__ import annotations

import copy
import io
import json
import math
import random
import signal
import time
from itertools import islice
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from vgraph.errors import CheckpointError, TrainingDivergedError
from vgraph.train import distributed as D
from vgraph.train.checkpoint import (atomic_write_bytes, config_fingerprint, load_checkpoint,
                                     rng_state, save_checkpoint, set_rng_state)

_RESUME_KEYS = ("epoch", "model", "optimizer", "scheduler", "task", "rng", "history", "best",
                "best_state", "epoch_times")


def seed_everything(seed: int):
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _check_optimizer_state(optimizer, saved: dict):
    """``load_state_dict`` accepts param groups with missing hyper-parameters, which then
    fail at the first step; check them up front."""
    groups = saved["param_groups"]
    if len(groups) != len(optimizer.param_groups):
        raise ValueError(f"{len(groups)} parameter groups saved, {len(optimizer.param_groups)} here")
    for mine, theirs in zip(optimizer.param_groups, groups):
        missing = (set(mine) - {"params", "initial_lr"}) - set(theirs)
        if missing:
            raise KeyError(f"optimizer hyper-parameters missing: {sorted(missing)}")


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped training; a checkpoint was saved first (``checkpoint``)."""

    def __init__(self, message: str, signum: int | None = None, checkpoint=None):
        super().__init__(message)
        self.signum, self.checkpoint = signum, checkpoint


class Trainer:
    """Train ``model`` on ``task`` with ``optimizer``.

    Args:
        epochs: maximum number of epochs. monitor / mode: the metric that selects the best
            epoch (``"val_auc"``, ``"max"``): a key of ``evaluate``'s dict or ``"loss"``, the
            epoch's training loss (IsoC-VGAE's lowest-loss rule: ``monitor="loss",
            mode="min"``); ``None`` selects nothing and keeps the last weights. patience: stop
            after this many epochs without improvement (``None``: never). eval_every:
            validate every k epochs. grad_clip: clip the gradients' total norm to this
            before each optimiser step (``None``: no clipping).
        out_dir: where ``last.pt`` (every ``checkpoint_every`` epochs), ``best.pt`` and
            ``log.jsonl`` go; ``None`` keeps everything in memory. In a distributed run only
            rank 0 writes there.
        config: the run's config; its fingerprint is stored in checkpoints, and a checkpoint
            from another config is refused on resume.
        resume: continue from ``out_dir/last.pt`` if present.
        progress: show a tqdm bar (rank 0 only). stop_after: stop (as if interrupted) after
            this epoch — for tests of resume.
        scheduler: stepped once per epoch. ddp_kwargs: extra arguments for
            ``DistributedDataParallel`` (e.g. ``find_unused_parameters=True``).
        handle_signals: catch SIGINT/SIGTERM to checkpoint before exiting (main thread only).
        ema_decay: keep an exponential moving average of the weights
            (:class:`torch.optim.swa_utils.AveragedModel`, updated after every optimiser
            step, checkpointed with the run); validation, model selection and the weights
            left in ``model`` at the end are then the averaged ones.
    """

    def __init__(self, model, task, optimizer, *, epochs: int, monitor: str = "val_auc",
                 mode: str = "max", patience: int | None = None, eval_every: int = 1,
                 out_dir=None, config: dict | None = None, resume: bool = False,
                 checkpoint_every: int = 1, progress: bool = True, desc: str = "train",
                 scheduler=None, stop_after: int | None = None, ddp_kwargs: dict | None = None,
                 handle_signals: bool = True, ema_decay: float | None = None,
                 grad_clip: float | None = None):
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        if grad_clip is not None and not grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0, got {grad_clip}")
        self.model, self.task, self.optimizer, self.scheduler = model, task, optimizer, scheduler
        self.epochs, self.monitor, self.mode = epochs, monitor, mode
        self.patience, self.eval_every = patience, max(1, eval_every)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.config = dict(config) if config is not None else None
        self.fingerprint = config_fingerprint(config)
        self.resume, self.checkpoint_every = resume, max(1, checkpoint_every)
        self.progress, self.desc, self.stop_after = progress, desc, stop_after
        self.handle_signals, self.grad_clip = handle_signals, grad_clip
        self.rank, self.world_size = D.get_rank(), D.get_world_size()
        self.ddp = D.wrap_model(model, **(ddp_kwargs or {})) if self.world_size > 1 else None
        # rank 0 decides whether checkpoints are written; the others still take part in them
        self._checkpointing = bool(D.broadcast_object(self.out_dir is not None))
        self.history: list[dict] = []
        self.best_score = -math.inf if mode == "max" else math.inf
        self.best_epoch = -1
        self.best_metrics: dict = {}
        self.best_state = None
        self.bad_epochs = 0
        self.start_epoch = 0
        self.start_step = 0  # batches already done in start_epoch (mid-epoch resume)
        self.partial_loss = (0.0, 0)  # (sum, count) of those batches' losses
        self.epoch_times: list[float] = []
        self._stop_signal = None
        self.ema = None
        if ema_decay is not None:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
            if not 0.0 < ema_decay < 1.0:
                raise ValueError(f"ema_decay must be in (0, 1), got {ema_decay}")
            self.ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema_decay))

    @property
    def eval_model(self):
        """The weights that are validated and kept: the moving average when there is one."""
        return self.ema.module if self.ema is not None else self.model

    @property
    def writes(self) -> bool:
        """Whether this process writes logs and checkpoints (rank 0 with an ``out_dir``)."""
        return self.out_dir is not None and self.rank == 0

    # ------------------------------------------------------------ checkpoints
    def _gathered(self, obj):
        if self.world_size == 1:
            return [obj]
        out = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def _payload(self, epoch: int, step: int = 0, partial=(0.0, 0)) -> dict:
        task_state = self.task.state_dict() if hasattr(self.task, "state_dict") else None
        rngs = self._gathered(rng_state())
        tasks = self._gathered(task_state)
        return {"epoch": epoch, "step": step, "partial_loss": [float(partial[0]), int(partial[1])],
                "world_size": self.world_size, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler else None,
                "task": task_state, "task_ranks": tasks, "rng": rngs[0], "rng_ranks": rngs,
                "history": json.dumps(self.history),
                "best": {"score": self.best_score, "epoch": self.best_epoch,
                         "metrics": json.dumps(self.best_metrics), "bad_epochs": self.bad_epochs},
                "best_state": self.best_state, "epoch_times": self.epoch_times,
                "ema": self.ema.state_dict() if self.ema is not None else None}

    def save(self, epoch: int, name: str = "last.pt", step: int = 0, partial=(0.0, 0)):
        """Checkpoint everything needed to resume after ``epoch`` (or mid-epoch at ``step``).

        Collective in a distributed run: every rank must call it (rank 0 writes)."""
        if not self._checkpointing:
            return
        payload = self._payload(epoch, step, partial)
        if self.rank == 0:
            save_checkpoint(self.out_dir / name, payload, self.fingerprint, self.config)

    def _load_for_resume(self, path):
        """Rank 0 reads and checks the checkpoint; every rank gets it (no shared FS needed)."""
        state, error = None, None
        if self.rank == 0:
            try:
                state = load_checkpoint(path, self.fingerprint, config=self.config)
                missing = [k for k in _RESUME_KEYS if k not in state]
                if missing:
                    raise CheckpointError(f"{path} is a vgraph checkpoint but not a resumable one "
                                          f"(no {', '.join(missing)}); was it a best.pt?")
            except CheckpointError as exc:
                error = str(exc)
        if self.world_size > 1:
            box = [(state, error)]
            torch.distributed.broadcast_object_list(box, src=0)
            state, error = box[0]
        if error is not None:
            raise CheckpointError(error)
        return state

    def restore(self, path):
        """Restore everything from a checkpoint written by :meth:`save`."""
        state = self._load_for_resume(path)
        try:
            self.model.load_state_dict(state["model"])
            if self.ema is not None:
                if state.get("ema") is None:
                    raise CheckpointError(f"{path} has no weight average (was it written without EMA?)")
                self.ema.load_state_dict(state["ema"])
            _check_optimizer_state(self.optimizer, state["optimizer"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler and state["scheduler"] is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            same_world = state.get("world_size", 1) == self.world_size
            task_state = state["task"]
            if same_world and state.get("task_ranks") is not None:
                task_state = state["task_ranks"][self.rank]
            if task_state is not None and hasattr(self.task, "load_state_dict"):
                self.task.load_state_dict(task_state)
            rng = state["rng_ranks"][self.rank] if same_world and state.get("rng_ranks") else state["rng"]
            set_rng_state(rng)
            self.history = json.loads(state["history"])
            best = state["best"]
            self.best_score, self.best_epoch = best["score"], best["epoch"]
            self.best_metrics, self.bad_epochs = json.loads(best["metrics"]), best["bad_epochs"]
            self.best_state = state["best_state"]
            self.epoch_times = [float(t) for t in state["epoch_times"]]
            epoch, step = int(state["epoch"]), int(state.get("step", 0))
            if step > 0:  # saved mid-epoch: continue that epoch at batch `step`
                self.start_epoch, self.start_step = epoch, step
                s, c = state.get("partial_loss", [0.0, 0])
                self.partial_loss = (float(s), int(c))
            else:
                self.start_epoch, self.start_step = epoch + 1, 0
        except CheckpointError:
            raise
        except Exception as exc:  # a well-formed file whose contents don't fit this run
            raise CheckpointError(f"{path} does not match this model/optimizer/task "
                                  f"({type(exc).__name__}: {str(exc)[:200]})") from None

    def _rewrite_log(self):
        """After a resume, the log holds exactly the restored history (a killed run may
        have logged epochs past its last checkpoint)."""
        text = "".join(json.dumps(r) + "\n" for r in self.history)
        atomic_write_bytes(self.out_dir / "log.jsonl", text.encode())

    # ------------------------------------------------------------------- loop
    def _better(self, score: float) -> bool:
        return score > self.best_score if self.mode == "max" else score < self.best_score

    def _on_signal(self, signum, frame):
        self._stop_signal = signum

    def _after_step(self, epoch: int):
        hook = getattr(self.task, "after_step", None)
        if hook is not None:
            hook(self.model, epoch)

    def _step(self, fn, *args) -> tuple[float, bool]:
        """One optimiser step on ``fn(model, *args)``; returns (loss over ranks, stop flag)."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.ddp(fn, *args) if self.ddp is not None else fn(self.model, *args)
        value = float(loss.detach())
        stop = self._stop_signal is not None
        if self.world_size > 1:
            # one collective per step: NaN anywhere stops everyone, and so does a signal
            t = torch.tensor([value, float(stop)], dtype=torch.float64, device=D._reduce_device())
            torch.distributed.all_reduce(t)
            value, stop = float(t[0]) / self.world_size, bool(t[1] > 0)
        if not math.isfinite(value):
            where = self.out_dir / "last.pt" if self.out_dir is not None else None
            raise TrainingDivergedError(
                f"loss became {value} at epoch {args[-1] if args else '?'}; stopping before the "
                f"optimiser step. The last good checkpoint is kept"
                f"{' at ' + str(where) if where else ''}. Try a lower learning rate or check "
                f"the input features for extreme values.")
        loss.backward()
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        return value, stop

    def _run_epoch(self, epoch: int):
        """Train one epoch; returns (mean loss, stopped mid-epoch at step k or None)."""
        before = getattr(self.task, "before_epoch", None)
        if before is not None:
            before(self.model, epoch)
        if not hasattr(self.task, "training_batches"):
            value, stop = self._step(self.task.training_loss, epoch)
            self._after_step(epoch)
            return value, None, stop
        start = self.start_step if epoch == self.start_epoch else 0
        total, count = self.partial_loss if start else (0.0, 0)
        try:
            batches = self.task.training_batches(epoch, start=start)
        except TypeError:
            batches = islice(self.task.training_batches(epoch), start, None)
        step = start
        for batch in batches:
            value, stop = self._step(self.task.batch_loss, batch, epoch)
            self._after_step(epoch)
            total, count, step = total + value, count + 1, step + 1
            if stop:
                return total / count, (step, (total, count)), True
        return (total / count if count else float("nan")), None, False

    def fit(self) -> dict:
        """Run the loop; load the best epoch's weights into the model; return a summary."""
        last = self.out_dir / "last.pt" if self.out_dir is not None else None
        resumable = last is not None and last.is_file() if self.rank == 0 else False
        if self.world_size > 1:
            resumable = bool(D.broadcast_object(resumable))
        if self.resume and resumable:
            self.restore(last)
            if self.writes:
                self._rewrite_log()
        if self.writes:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        # a fresh (not resumed) run starts its log afresh instead of appending to an old one
        log_mode = "a" if self.start_epoch > 0 or self.start_step > 0 else "w"
        log = open(self.out_dir / "log.jsonl", log_mode) if self.writes else None
        handlers = {}
        if self.handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    handlers[sig] = signal.signal(sig, self._on_signal)
                except ValueError:  # not the main thread
                    pass
        bar = tqdm(range(self.start_epoch, self.epochs), desc=self.desc,
                   disable=not self.progress or self.rank != 0, initial=self.start_epoch,
                   total=self.epochs, leave=False, dynamic_ncols=True)
        stopped = None
        try:
            for epoch in bar:
                t0 = time.perf_counter()
                self.model.train()
                loss, mid_epoch, stop = self._run_epoch(epoch)
                if mid_epoch is not None:  # a signal arrived inside a mini-batch epoch
                    self.save(epoch, step=mid_epoch[0], partial=mid_epoch[1])
                    stopped = self._stop_signal or signal.SIGTERM
                    break
                if self.scheduler is not None:
                    self.scheduler.step()
                self.epoch_times.append(time.perf_counter() - t0)
                record = {"epoch": epoch, "loss": loss}
                if (epoch + 1) % self.eval_every == 0 or epoch + 1 == self.epochs:
                    metrics = D.all_reduce_mean(self.task.evaluate(self.eval_model))
                    record.update(metrics)
                    if self.monitor is not None and self.monitor not in record:
                        raise KeyError(f"monitor {self.monitor!r} is neither 'loss' nor a metric of "
                                       f"{type(self.task).__name__}.evaluate ({', '.join(metrics)})")
                    # monitor=None: no selection, the last weights are the result
                    if self.monitor is not None and self._better(record[self.monitor]):
                        score = record[self.monitor]
                        self.best_score, self.best_epoch, self.best_metrics = score, epoch, metrics
                        self.best_state = copy.deepcopy(self.eval_model.state_dict())
                        self.bad_epochs = 0
                        if self.writes:
                            save_checkpoint(self.out_dir / "best.pt",
                                            {"epoch": epoch, "model": self.best_state,
                                             "metrics": json.dumps(metrics)}, self.fingerprint,
                                            self.config)
                    elif self.monitor is not None:
                        self.bad_epochs += 1
                self.history.append(record)
                # loss and validation only: test metrics are reported once, at the end
                bar.set_postfix({k: f"{v:.4f}" for k, v in record.items()
                                 if k != "epoch" and not k.startswith("test")})
                last_epoch = epoch + 1 == self.epochs
                patience_hit = self.patience is not None and self.bad_epochs >= self.patience
                stop_now = stop or self._stop_signal is not None
                if self.world_size > 1:
                    stop_now = bool(D.all_reduce_max(float(stop_now)))
                after = self.stop_after is not None and epoch >= self.stop_after
                if ((epoch + 1) % self.checkpoint_every == 0 or last_epoch or stop_now or after
                        or patience_hit):
                    self.save(epoch)
                # log after the checkpoint: a resumed run rewrites the log from the history
                if log is not None:
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                if stop_now:
                    stopped = self._stop_signal or signal.SIGTERM
                    break
                if after:
                    stopped = "stop_after"
                    break
                if patience_hit:
                    stopped = "patience"
                    break
        finally:
            bar.close()
            if log is not None:
                log.close()
            for sig, h in handlers.items():
                signal.signal(sig, h)
        if stopped not in (None, "stop_after", "patience"):
            raise TrainingInterrupted(
                f"stopped by signal {int(stopped)}; checkpoint saved"
                f"{' to ' + str(last) if last else ''} (continue with --resume)", int(stopped), last)
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return {"best_epoch": self.best_epoch, "best_metrics": self.best_metrics,
                "history": self.history, "epoch_times": self.epoch_times,
                "stopped_early": stopped is not None}

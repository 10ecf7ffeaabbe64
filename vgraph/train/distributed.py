"""Data-parallel training on ``torch.distributed`` (DDP), launched with ``torchrun``.

A script becomes distributed with a few lines::

    from vgraph.train import distributed as dist_utils
    info = dist_utils.init_from_env()          # no-op (world size 1) without torchrun
    ...                                         # build data, task, model as usual
    trainer = Trainer(model, task, opt, ..., out_dir=out if info.is_rank0 else None)
    result = trainer.fit()                      # the trainer wraps the model in DDP itself
    if info.is_rank0: write_summary(...)
    dist_utils.shutdown()

``gloo`` is used on CPU and ``nccl`` on GPU. Every rank builds the same data and model from
the same seed; DDP broadcasts rank 0's parameters at wrap time and averages gradients
every step, so all ranks hold identical weights. A task that shards its supervision edges
by ``(rank, world_size)`` (see :mod:`vgraph.tasks.linkpred`) gives each rank a different
part of every epoch. See ``docs/distributed.md``.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size``, its ``local_rank`` and device."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def is_rank0(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def is_distributed() -> bool:
    """True when a process group with more than one rank is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_rank0() -> bool:
    """True on rank 0, and in every non-distributed process."""
    return get_rank() == 0


def init_from_env(backend: str | None = None, device: str | None = None,
                  timeout_s: float = 600.0) -> DistInfo:
    """Initialise the process group from ``torchrun``'s environment (``RANK``, ``WORLD_SIZE``...).

    Without those variables (a plain ``python script.py``) nothing is initialised and a
    world of one is returned, so the same script runs both ways. ``backend`` defaults to
    ``nccl`` when ``device`` is CUDA (or CUDA is available and ``device`` is not given)
    and to ``gloo`` otherwise. On CUDA each process uses GPU ``LOCAL_RANK``. Calling it
    again returns the existing group's info.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    want_cuda = (device or "").startswith("cuda") or (device is None and torch.cuda.is_available()
                                                        and world > 1 and backend != "gloo")
    if want_cuda and torch.cuda.is_available():
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device(device if device and not device.startswith("cuda") else "cpu")
    if world <= 1:
        return DistInfo(0, 1, 0, dev, None)
    backend = backend or ("nccl" if dev.type == "cuda" else "gloo")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, dev, dist.get_backend())


def shutdown():
    """Destroy the process group (after a barrier) if one was initialised."""
    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()


def barrier():
    if is_distributed():
        dist.barrier()


def _reduce_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_mean(value):
    """Mean over ranks of a float, a tensor, or a flat ``{name: float}`` dict (same keys on
    every rank; non-numeric entries are passed through). Returns the input unchanged in a
    world of one.

    Values are reduced in float64, so ranks holding the same number get it back exactly.
    """
    if not is_distributed():
        return value
    world = dist.get_world_size()
    if isinstance(value, dict):
        keys = sorted(k for k, v in value.items()
                      if isinstance(v, (int, float)) and not isinstance(v, bool)
                      or isinstance(v, torch.Tensor) and v.numel() == 1)
        t = torch.tensor([float(value[k]) for k in keys], dtype=torch.float64, device=_reduce_device())
        dist.all_reduce(t)
        t = (t / world).tolist()
        return {k: t[i] for i, k in enumerate(keys)} | {k: value[k] for k in value if k not in keys}
    if isinstance(value, torch.Tensor):
        t = value.detach().to(device=_reduce_device(), dtype=torch.float64).clone()
        dist.all_reduce(t)
        return (t / world).to(value.dtype).to(value.device)
    t = torch.tensor([float(value)], dtype=torch.float64, device=_reduce_device())
    dist.all_reduce(t)
    return float(t.item() / world)


def all_reduce_max(value: float) -> float:
    """Maximum over ranks of a float (e.g. a stop flag)."""
    if not is_distributed():
        return value
    t = torch.tensor([float(value)], dtype=torch.float64, device=_reduce_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def broadcast_object(obj, src: int = 0):
    """``obj`` from rank ``src`` on every rank (pickled; for small things like configs)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_tensor(t: torch.Tensor) -> torch.Tensor:
    """Concatenate a 1-D/2-D tensor's rows from every rank (sizes may differ), rank order."""
    if not is_distributed():
        return t
    dev = _reduce_device()
    size = torch.tensor([t.size(0)], device=dev)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    sizes = [int(s) for s in sizes]
    longest = max(sizes)
    pad = torch.zeros((longest,) + tuple(t.shape[1:]), dtype=t.dtype, device=dev)
    pad[: t.size(0)] = t.to(dev)
    parts = [torch.zeros_like(pad) for _ in sizes]
    dist.all_gather(parts, pad)
    return torch.cat([p[:s] for p, s in zip(parts, sizes)]).to(t.device)


class LossModule(nn.Module):
    """Routes a task's loss through ``forward`` so DDP sees the step.

    vgraph models are called through ``encode``/``decode``/``loss``, never ``forward``;
    DDP only synchronises gradients for work done inside its wrapped module's
    ``forward``. ``LossModule(model)(fn, *args)`` returns ``fn(model, *args)``.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, fn, *args, **kwargs):
        return fn(self.model, *args, **kwargs)


def wrap_model(model: nn.Module, device=None, **ddp_kwargs):
    """``DistributedDataParallel(LossModule(model))`` in a distributed run, else ``None``.

    The returned wrapper is called as ``ddp(task.training_loss, epoch)``; the caller keeps
    using ``model`` itself for evaluation and ``state_dict`` (the weights are shared).
    DDP broadcasts rank 0's weights to every rank here.
    """
    if not is_distributed():
        return None
    from torch.nn.parallel import DistributedDataParallel as DDP
    device = torch.device(device) if device is not None else next(
        (p.device for p in model.parameters()), torch.device("cpu"))
    model.to(device)
    kwargs = {}
    if device.type == "cuda":
        kwargs["device_ids"] = [device.index if device.index is not None else torch.cuda.current_device()]
    kwargs.update(ddp_kwargs)
    return DDP(LossModule(model), **kwargs)

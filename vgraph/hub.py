"""Self-describing model files: ``save_model(path, model, builder=..., kwargs=...)`` and
``vgraph.load(path)``.

A model file records how to rebuild the model — a builder (a class or factory function under
``vgraph.models``) and its keyword arguments as plain JSON — plus its weights, the transform
its inputs need (e.g. ``{"features": "row-normalised", "num_nodes": 2708}``), free-form
metadata (metrics, training command) and the vgraph version. It is written atomically with
a checksum (:func:`vgraph.train.checkpoint.save_checkpoint`) and read with
``torch.load(weights_only=True)``, so loading runs no pickled code: the builder is looked up
by name and must live in :mod:`vgraph.models`.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import torch

from vgraph.errors import CheckpointError
from vgraph.train.checkpoint import load_checkpoint, save_checkpoint

KIND = "vgraph-model"
_ALLOWED_PREFIX = "vgraph.models."


def _builder_name(builder) -> str:
    if isinstance(builder, str):
        return builder
    return f"{builder.__module__}:{builder.__qualname__}"


def _resolve(name: str):
    module, _, attr = name.partition(":")
    if not module.startswith(_ALLOWED_PREFIX) or not attr:
        raise CheckpointError(f"model builder {name!r} is not a vgraph.models builder")
    try:
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise CheckpointError(f"model builder {name!r} does not exist in this vgraph ({exc})") from None
    return obj


def _half(v: torch.Tensor) -> torch.Tensor:
    """``v`` as float16 if it is floating point and every finite value stays finite."""
    if not v.is_floating_point():
        return v
    h = v.half()
    return h if bool((torch.isfinite(h) | ~torch.isfinite(v)).all()) else v


def save_model(path, model: torch.nn.Module, *, builder, kwargs: dict, transform: dict | None = None,
               meta: dict | None = None, half: bool = False):
    """Write ``model`` so that :func:`load` rebuilds it with ``builder(**kwargs)``.

    ``kwargs``, ``transform`` and ``meta`` must be JSON-able; ``half`` stores floating-point
    tensors as float16 (shipped models), restored to float32 on load, except a tensor with a
    finite value past float16's range (CatFlow's atom-count histogram), which keeps its dtype.
    """
    from vgraph import __version__
    state = {k: (_half(v) if half else v).detach().cpu().contiguous() for k, v in model.state_dict().items()}
    try:
        payload = {"kind": KIND, "builder": _builder_name(builder),
                   "kwargs": json.dumps(kwargs), "transform": json.dumps(transform or {}),
                   "meta": json.dumps(meta or {}, default=str), "vgraph_version": __version__,
                   "model": state}
    except TypeError as exc:
        raise CheckpointError(f"cannot describe the model for {path}: {exc}") from None
    save_checkpoint(Path(path), payload, fingerprint="model")


class LoadedModel:
    """What :func:`load` returns besides the model: its builder, kwargs, transform and meta."""

    def __init__(self, builder: str, kwargs: dict, transform: dict, meta: dict, version: str):
        self.builder, self.kwargs, self.transform, self.meta, self.version = (
            builder, kwargs, transform, meta, version)

    def __repr__(self):
        return f"LoadedModel(builder={self.builder!r}, kwargs={self.kwargs!r})"


def load(path, *, map_location="cpu", with_info: bool = False):
    """Rebuild the model saved at ``path`` (in eval mode); with ``with_info=True`` return
    ``(model, LoadedModel)``, whose ``transform`` says what its inputs need."""
    state = load_checkpoint(path, map_location=map_location)
    if state.get("kind") != KIND:
        raise CheckpointError(f"{path} is a vgraph checkpoint but not a model file written by "
                              f"vgraph.hub.save_model (a training checkpoint? use its run's best.pt "
                              f"together with the job that wrote it)")
    try:
        kwargs = json.loads(state["kwargs"])
        info = LoadedModel(state["builder"], kwargs, json.loads(state["transform"]),
                           json.loads(state["meta"]), state.get("vgraph_version", "?"))
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path} has a malformed model description ({exc})") from None
    model = _resolve(info.builder)(**kwargs)
    weights = {k: (v.float() if v.dtype == torch.float16 else v) for k, v in state["model"].items()}
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit {info.builder} "
                              f"({str(exc).splitlines()[0][:200]})") from None
    model.eval()
    return (model, info) if with_info else model

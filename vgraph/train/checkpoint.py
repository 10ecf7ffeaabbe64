"""Atomic checkpoints (write, fsync, rename) and loading that refuses bad files clearly."""
from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path

import numpy as np
import torch

from vgraph.errors import CheckpointError

MAGIC = "vgraph-checkpoint"
FORMAT_VERSION = 1
# Appended after torch's zip archive (zip readers, torch.load included, ignore trailing
# bytes): a marker and the SHA-256 of everything before it, so a flipped byte anywhere is
# caught on load rather than as a strange error epochs later. Files without it (written
# by earlier vgraph versions) are still read.
CHECKSUM_MARKER = b"VGRAPH-SHA256"
_TRAILER_LEN = len(CHECKSUM_MARKER) + 32


# Keys a resumed run may change: raising ``epochs`` extends a finished run.
EXTENDABLE_KEYS = frozenset({"epochs"})


# Flags added after a run may have started, with the value that means "as before": a
# checkpoint written without the key resumes when the key has that value now.
ADDED_KEYS = {"cn_channels": 0, "cross_attention": 0, "cold_negatives": "files", "evaluate": None,
              "eval_every": None, "grad_clip": None, "max_length": 100}  # the last three: vgraph molgen


def _defining(config: dict | None) -> dict:
    return {k: v for k, v in (config or {}).items() if k not in EXTENDABLE_KEYS}


def config_fingerprint(config: dict | None) -> str:
    """Stable hash of the parts of a config that define the model and data (not ``epochs``)."""
    blob = json.dumps(_defining(config), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def config_diff(saved: dict, current: dict) -> list[str]:
    """``key: saved -> current`` for every defining key that differs between two configs."""
    saved = json.loads(json.dumps(_defining(saved), default=str))
    current = json.loads(json.dumps(_defining(current), default=str))
    for k, neutral in ADDED_KEYS.items():  # a key added later, at its neutral value, changes nothing
        for one, other in ((saved, current), (current, saved)):
            if k not in one and k in other and other[k] == neutral:
                del other[k]
    return [f"{k}: {saved.get(k, '<unset>')!r} -> {current.get(k, '<unset>')!r}"
            for k in sorted(set(saved) | set(current)) if saved.get(k) != current.get(k)]


def atomic_write_bytes(path, data: bytes):
    """Write ``data`` to ``path`` so a reader sees the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        # a full disk or a kill leaves the previous file intact; don't leave the partial one
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def save_checkpoint(path, payload: dict, fingerprint: str, config: dict | None = None):
    """Atomically save ``payload`` tagged with the magic, format version and fingerprint
    (and the config itself, as JSON, so a refused resume can name the keys that differ)."""
    import io
    buf = io.BytesIO()
    extra = {"config_json": json.dumps(config, sort_keys=True, default=str)} if config is not None else {}
    try:
        torch.save({"magic": MAGIC, "version": FORMAT_VERSION, "fingerprint": fingerprint, **extra,
                    **payload}, buf)
    except Exception as exc:  # serialised in memory first: the file on disk is untouched
        raise CheckpointError(f"cannot serialise the checkpoint for {path} "
                              f"({type(exc).__name__}: {str(exc)[:200]})") from None
    data = buf.getvalue()
    atomic_write_bytes(path, data + CHECKSUM_MARKER + hashlib.sha256(data).digest())


def load_checkpoint(path, fingerprint: str | None = None, map_location="cpu",
                    config: dict | None = None) -> dict:
    """Load a vgraph checkpoint; raise :class:`CheckpointError` if it is missing, corrupt,
    not vgraph's, or (when ``fingerprint`` is given) from a different model/config."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read ({exc.strerror or exc})") from None
    if data[-_TRAILER_LEN:-32] == CHECKSUM_MARKER:
        data, digest = data[:-_TRAILER_LEN], data[-32:]
        if hashlib.sha256(data).digest() != digest:
            raise CheckpointError(f"checkpoint {path} is corrupt (its SHA-256 checksum does not "
                                  f"match its contents)")
    try:
        import io
        state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated and cannot be read "
                              f"({type(exc).__name__})") from None
    # compare by type first: a foreign file may hold tensors where vgraph keeps strings
    if not isinstance(state, dict) or not _is(state.get("magic"), str, MAGIC):
        raise CheckpointError(f"{path} is not a vgraph checkpoint")
    if not _is(state.get("version"), int, FORMAT_VERSION):
        raise CheckpointError(f"{path} has checkpoint format {str(state.get('version'))[:40]}, "
                              f"this vgraph reads {FORMAT_VERSION}")
    if fingerprint is not None and not _is(state.get("fingerprint"), str, fingerprint):
        differ, compared = [], False
        if config is not None and isinstance(state.get("config_json"), str):
            try:
                differ, compared = config_diff(json.loads(state["config_json"]), config), True
            except ValueError:
                pass
        if differ:
            raise CheckpointError(f"{path} was written for a different model or configuration: "
                                  f"{'; '.join(differ)} (only --epochs may change on --resume)")
        if not compared:  # no readable config to compare (an empty diff: only keys added since, at their old value)
            raise CheckpointError(f"{path} was written for a different model or configuration "
                                  f"(fingerprint {str(state.get('fingerprint'))[:40]}, expected {fingerprint})")
    return state


def _is(value, kind, expected) -> bool:
    return type(value) is kind and value == expected


def rng_state() -> dict:
    """Every RNG a training step touches, in a form ``torch.load(weights_only=True)`` reads."""
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
             "python_pos": random.getstate()[2],
             "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                       int(np_state[3]), float(np_state[4]))}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict):
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), state["python_pos"]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])

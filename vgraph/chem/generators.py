"""Build, save and load molecule generators (MolVAE, CatFlow) with their vocabulary and config.

A generator checkpoint is a vgraph checkpoint (:func:`vgraph.train.save_checkpoint`) holding
``kind``, ``config`` (constructor arguments), ``vocab``, ``model`` (state dict), the dataset
name and ``meta`` (the training command and its metrics). :data:`PRETRAINED_QM9` is the
small QM9 MolVAE shipped inside the package (see ``docs/models/molgen.md``).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vgraph.chem.datasets import Vocabulary
from vgraph.errors import CheckpointError
from vgraph.train.checkpoint import config_fingerprint, load_checkpoint, save_checkpoint

PRETRAINED_QM9 = Path(__file__).resolve().parent / "pretrained" / "qm9_molvae.pt"
GENERATORS = ("molvae", "catflow")


def build_generator(kind: str, vocab: Vocabulary, max_atoms: int, atom_counts=None, kl=None, **config):
    """``"molvae"`` or ``"catflow"`` sized for ``vocab`` and ``max_atoms``."""
    if kind == "molvae":
        from vgraph.models.molvae import MolVAE
        return MolVAE(vocab, max_atoms, kl=kl, **config)
    if kind == "catflow":
        from vgraph.models.catflow import CatFlow
        return CatFlow(vocab, max_atoms, atom_counts=atom_counts, **config)
    raise ValueError(f"unknown generator {kind!r}; use one of {GENERATORS}")


def _config(model) -> dict:
    cfg = dict(model.config)
    cfg.pop("max_atoms", None)
    return cfg


def save_generator(path, model, kind: str, dataset: str, meta: dict | None = None, half: bool = False):
    """Write a generator checkpoint (``half=True`` stores float weights as float16)."""
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    payload = {"kind": kind, "config": json.dumps(_config(model)), "max_atoms": model.max_atoms,
               "vocab": json.dumps(model.vocab.to_dict()), "dataset": dataset,
               "kl": json.dumps(model.variational.config.to_dict()) if hasattr(model, "variational") else "",
               "meta": json.dumps(meta or {}, default=str), "model": state}
    save_checkpoint(path, payload, config_fingerprint({"kind": kind}))


def load_generator(path=None, device="cpu"):
    """``(model, info)`` from a generator checkpoint (default: the shipped QM9 MolVAE)."""
    import torch
    from vgraph.nn.variational import KLConfig
    path = Path(path) if path is not None else PRETRAINED_QM9
    state = load_checkpoint(path)
    if state.get("kind") not in GENERATORS:
        raise CheckpointError(f"{path} is a vgraph checkpoint but not a molecule generator")
    vocab = Vocabulary.from_dict(json.loads(state["vocab"]))
    kl = KLConfig(**json.loads(state["kl"])) if state.get("kl") else None
    config = json.loads(state["config"])
    if state["kind"] == "catflow":
        config.setdefault("self_cond", False)  # CatFlow checkpoints written before self-conditioning
    model = build_generator(state["kind"], vocab, state["max_atoms"], kl=kl, **config)
    weights = {k: (v.float() if v.is_floating_point() else v) for k, v in state["model"].items()}
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the stored config ({exc})") from None
    model.to(torch.device(device)).eval()
    info = {"kind": state["kind"], "dataset": state["dataset"], "path": str(path),
            "meta": json.loads(state["meta"])}
    return model, info


def sample_smiles(model, draw_graphs, num_samples: int, batch_size: int, progress: bool = False) -> list[str]:
    """Canonical SMILES of ``num_samples`` graphs drawn in batches by ``draw_graphs(b)``
    (a list of ``(tokens, bonds)``), with ``model`` in eval mode; ``""`` where RDKit rejects
    a graph. ``progress``: a bar over batches."""
    from tqdm.auto import tqdm
    from vgraph.chem.featurize import canonical_smiles, graph_to_mol
    was = model.training
    model.eval()
    out = []
    try:
        for start in tqdm(range(0, num_samples, batch_size), desc="sampling (batches)", disable=not progress):
            for toks, bonds in draw_graphs(min(batch_size, num_samples - start)):
                mol = graph_to_mol(toks, bonds)
                out.append((canonical_smiles(mol) or "") if mol is not None else "")
    finally:
        model.train(was)
    return out


def atom_count_histogram(dataset) -> np.ndarray:
    """Counts of molecules per number of atoms (index = atoms)."""
    return np.bincount(dataset.num_atoms, minlength=dataset.max_atoms + 1)

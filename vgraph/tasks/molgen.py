"""Molecule generation: the training task, the generators' model files, and sampling to SMILES.

* :class:`MolGenTask` — the mini-batch loss and per-epoch evaluation of MolVAE / CatFlow
  that :class:`vgraph.train.Trainer` runs;
* :func:`build_generator`, :func:`save_generator`, :func:`load_generator` — a generator is
  saved with :func:`vgraph.hub.save_model` (builder and JSON constructor arguments, so
  ``vgraph.load(path)`` rebuilds it too); files written by vgraph before the hub format are
  still read;
* :func:`sample_smiles` — the one loop that turns a generator's graphs into canonical SMILES;
* :func:`score_samples` — the MOSES-style metrics against a benchmark's reference sets.

:data:`PRETRAINED_QM9` is the small QM9 MolVAE shipped inside the package
(``docs/models/molgen.md`` says how it was trained).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from vgraph.chem.datasets import Vocabulary, atom_count_histogram
from vgraph.data.molecules import BENCHMARKS
from vgraph.errors import CheckpointError, VGraphError
from vgraph.models.catflow import CatFlow
from vgraph.models.molvae import MolVAE
from vgraph.models.smilesvae import SmilesDataset, SmilesVAE, SmilesVocabulary
from vgraph.nn.variational import KLConfig, VariationalLayer

PRETRAINED_QM9 = Path(__file__).resolve().parent.parent / "chem" / "pretrained" / "qm9_molvae.pt"
# the generators shipped in the package, by the name `vgraph generate --checkpoint NAME` takes
SHIPPED = {"molvae": PRETRAINED_QM9, "catflow": PRETRAINED_QM9.with_name("qm9_catflow.pt")}
GENERATORS = {"molvae": MolVAE, "catflow": CatFlow, "smilesvae": SmilesVAE}


# ------------------------------------------------------------------ the task
class MolGenTask:
    """Mini-batch loss and per-epoch evaluation for MolVAE / CatFlow.

    The trainer counts *steps* (one mini-batch each); the task maps a step to its data epoch,
    draws the step's mini-batch from a per-epoch permutation (seeded, part of the task state so
    ``--resume`` continues identically) and, at the end of each data epoch, evaluates on a
    fixed held-out subset: the loss and, for a VAE, the posterior-collapse diagnostics (KL per
    latent dimension, active units) that are handed to ``log_fn``.

    Args:
        train: the training :class:`~vgraph.chem.MolDataset`. eval_set: molecules used for
            the per-epoch evaluation (default: 2,000 training molecules picked by ``seed``).
        batch_size: molecules per step. log_fn: called with the per-epoch record (including
            ``kl_per_dim``).
        bf16: compute the training losses under bfloat16 autocast (weights, optimiser and the
            per-epoch evaluation stay float32).
    """

    def __init__(self, train, batch_size: int = 128, seed: int = 0, eval_set=None, eval_size: int = 2000,
                 device="cpu", log_fn=None, bf16: bool = False):
        self.train, self.batch_size, self.seed, self.device = train, batch_size, seed, torch.device(device)
        self.bf16 = bool(bf16)
        self.steps_per_epoch = max(1, int(np.ceil(len(train) / batch_size)))
        self.log_fn = log_fn
        rng = np.random.default_rng(seed + 1)
        if eval_set is None:
            eval_set, idx = train, rng.choice(len(train), size=min(eval_size, len(train)), replace=False)
        else:
            idx = np.arange(min(eval_size, len(eval_set)))
        self.eval_batches = [eval_set.batch(idx[i:i + 500], train.max_atoms) for i in range(0, len(idx), 500)]
        self._perm_epoch, self._perm = -1, None
        self.last_step = -1

    def state_dict(self) -> dict:
        return {"last_step": self.last_step}

    def load_state_dict(self, state: dict):
        self.last_step = int(state["last_step"])

    def _batch(self, step: int) -> dict:
        epoch, k = divmod(step, self.steps_per_epoch)
        if epoch != self._perm_epoch:
            rng = np.random.default_rng([self.seed, epoch])
            order = getattr(self.train, "epoch_order", None)  # SMILES: batches of similar lengths
            self._perm = order(rng, self.batch_size) if order is not None else rng.permutation(len(self.train))
            self._perm_epoch = epoch
        idx = self._perm[k * self.batch_size:(k + 1) * self.batch_size]
        return {key: v.to(self.device) for key, v in self.train.batch(idx).items()}

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch

    def training_loss(self, model, step: int) -> torch.Tensor:
        self.last_step = step
        batch = self._batch(step)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return model.loss(batch, epoch=self.epoch_of(step))["loss"].float()

    @torch.no_grad()
    def evaluate(self, model) -> dict:
        was = model.training
        model.eval()
        sums, count, mus, logstds = {}, 0, [], []
        # CatFlow draws noise and times: the same draws at every evaluation, without
        # disturbing the training RNG stream
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            for batch in self.eval_batches:
                batch = {k: v.to(self.device) for k, v in batch.items()}
                out = model.loss(batch, epoch=self.epoch_of(max(self.last_step, 0)))
                n = next(iter(batch.values())).size(0)
                count += n
                for k, v in out.items():
                    if v.dim() == 0:
                        sums[k] = sums.get(k, 0.0) + float(v) * n
                if "mu" in out:
                    mus.append(out["mu"])
                    logstds.append(out["logstd"])
        model.train(was)
        rec = {f"val_{k}": v / count for k, v in sums.items()}
        diag = {}
        if mus:
            mu, logstd = torch.cat(mus), torch.cat(logstds)
            kl_dim = VariationalLayer.kl_per_dim(mu, logstd).mean(0)
            rec["active_units"] = float(VariationalLayer.active_units(mu))
            diag["kl_per_dim"] = [round(float(v), 4) for v in kl_dim]
        if self.log_fn is not None:
            self.log_fn({"epoch": self.epoch_of(self.last_step), "step": self.last_step, **rec, **diag})
        return rec


def load_smiles_splits(name: str, root=None, max_length: int | None = None, test_fraction: float = 0.1,
                       seed: int = 0, progress: bool = False) -> dict:
    """``{split: SmilesDataset}`` of a benchmark (``qm9``, ``moses``, ``zinc250k``) or a user's
    SMILES file (split at random into ``train``/``test`` by ``test_fraction``), tokenised for
    :class:`SmilesVAE` with the training split's vocabulary; skips are counted per split.
    Raises :class:`DataFormatError` if no line of the training split can be used."""
    from vgraph.data.molecules import raw_splits, read_smiles_file
    from vgraph.errors import DataFormatError
    if Path(name).is_file() or name.lower() not in BENCHMARKS:
        lines = read_smiles_file(name)
        perm = np.random.default_rng(seed).permutation(len(lines))
        n_test = int(round(test_fraction * len(lines))) if len(lines) > 1 else 0
        splits = {"train": [lines[i] for i in perm[n_test:]], "test": [lines[i] for i in perm[:n_test]]}
    else:
        splits = raw_splits(name, root)[0]
    out = {"train": SmilesDataset.from_smiles(splits["train"], max_length=max_length, progress=progress,
                                              desc="tokenising train")}
    if not len(out["train"]):
        raise DataFormatError(f"{name}: none of the {len(splits['train'])} training lines is a usable SMILES "
                              f"(skipped: {out['train'].skipped})")
    for split, lines in splits.items():
        if split != "train":
            out[split] = SmilesDataset.from_smiles(lines, vocab=out["train"].vocab, max_length=max_length,
                                                   progress=progress, desc=f"tokenising {split}")
    return out


def training_subset(dataset, size: int | None, seed: int):
    """``size`` molecules of ``dataset`` picked by ``seed`` (kept in dataset order), or all."""
    if not size or size >= len(dataset):
        return dataset
    idx = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:size]
    return dataset.subset(sorted(idx.tolist()))


class EpochLog:
    """The ``log_fn`` of :class:`MolGenTask`: appends each per-epoch record to ``path``
    (``diagnostics.jsonl``; started afresh unless ``append``) and prints it as one line."""

    def __init__(self, path, append: bool = False):
        self.path = Path(path)
        if not (append and self.path.is_file()):
            self.path.write_text("")

    def __call__(self, record: dict):
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        short = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in record.items() if k != "kl_per_dim"}
        line = f"[epoch {record['epoch']}] " + " ".join(f"{k}={v}" for k, v in short.items() if k != "epoch")
        if "kl_per_dim" in record:
            kd = record["kl_per_dim"]
            line += f" kl_per_dim(min/median/max)={min(kd):.3f}/{sorted(kd)[len(kd) // 2]:.3f}/{max(kd):.3f}"
        print(line, flush=True)


def cosine_schedule(optimizer, steps: int, warmup_steps: int = 500):
    """Linear warm-up over ``min(warmup_steps, steps // 10)`` steps, then cosine decay to 5% of
    the learning rate at ``steps`` (CatFlow's default schedule)."""
    warm = max(1, min(warmup_steps, steps // 10))

    def factor(step):  # LambdaLR calls it with the number of steps taken so far
        if step < warm:
            return (step + 1) / warm
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, steps - warm))))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# -------------------------------------------------------------- model files
def build_generator(kind: str, vocab, max_atoms: int, atom_counts=None, kl=None, **config):
    """``"molvae"``, ``"catflow"`` or ``"smilesvae"`` sized for ``vocab`` and ``max_atoms``
    (``atom_counts``: CatFlow's size histogram, e.g. :func:`vgraph.chem.atom_count_histogram` of
    the training set; SmilesVAE takes a :class:`SmilesVocabulary` and ignores ``max_atoms``)."""
    if kind == "smilesvae":
        return SmilesVAE(vocab, kl=kl, **config)
    if kind == "molvae":
        return MolVAE(vocab, max_atoms, kl=kl, **config)
    if kind == "catflow":
        return CatFlow(vocab, max_atoms, atom_counts=atom_counts, **config)
    raise ValueError(f"unknown generator {kind!r}; use one of {tuple(GENERATORS)}")


def generator_kind(model) -> str:
    for kind, cls in GENERATORS.items():
        if isinstance(model, cls):
            return kind
    raise TypeError(f"{type(model).__name__} is not a molecule generator")


def _kwargs(model) -> dict:
    """The JSON constructor arguments that rebuild ``model`` (buffers such as CatFlow's size
    histogram come back with the weights)."""
    kwargs = {"vocab": model.vocab.to_dict(), **model.config}
    if isinstance(model, (MolVAE, SmilesVAE)):
        kwargs["kl"] = model.variational.config.to_dict()
    return kwargs


def save_generator(path, model, dataset: str, meta: dict | None = None, half: bool = False):
    """Write a generator with :func:`vgraph.hub.save_model` (``half=True``: float16 weights)."""
    from vgraph.hub import save_model
    kind = generator_kind(model)
    save_model(path, model, builder=GENERATORS[kind], kwargs=_kwargs(model),
               meta={"kind": kind, "dataset": dataset, **(meta or {})}, half=half)


def load_generator(path=None, device="cpu"):
    """``(model, info)`` from a generator file (default: the shipped QM9 MolVAE; ``"molvae"`` /
    ``"catflow"``: the shipped QM9 models), in eval mode;
    ``info`` holds ``kind``, ``dataset``, ``path`` and ``meta`` (training command, metrics)."""
    from vgraph.hub import load
    path = SHIPPED.get(str(path), Path(path)) if path is not None else PRETRAINED_QM9
    try:
        model, loaded = load(path, with_info=True)
        meta = dict(loaded.meta)
    except CheckpointError as exc:
        # a sound vgraph file that is not a hub model file may be a generator written before
        # the hub format; a missing or corrupt file keeps the hub's message
        legacy = _legacy_generator(path) if "not a model file" in str(exc) else None
        if legacy is None:
            raise
        model, meta = legacy
    if not isinstance(model, tuple(GENERATORS.values())):
        raise CheckpointError(f"{path} holds a {type(model).__name__}, not a molecule generator")
    model.to(torch.device(device)).eval()
    info = {"kind": generator_kind(model), "dataset": meta.pop("dataset", None), "path": str(path),
            "meta": meta}
    info["meta"].pop("kind", None)
    return model, info


# constructor arguments that shape the loss, not the weights: --init-from may change them
_TRAINING_OPTIONS = {"edge_weight", "train_time", "kl"}


def init_generator(model, source) -> dict:
    """Copy the weights of the generator file ``source`` (a path, or ``"molvae"`` /
    ``"catflow"`` for the shipped QM9 models) into ``model``, which must be the same kind,
    configuration and vocabulary; returns the source's ``info`` (see :func:`load_generator`).
    A file that does not fit raises :class:`CheckpointError` naming the difference."""
    src, info = load_generator(source)
    kind = generator_kind(model)
    if info["kind"] != kind:
        raise CheckpointError(f"--init-from {source}: holds a {info['kind']} model, this run trains a {kind}")
    mine, theirs = _kwargs(model), _kwargs(src)
    for key in sorted((set(mine) | set(theirs)) - _TRAINING_OPTIONS):
        if mine.get(key) != theirs.get(key):
            what = "vocabulary" if key == "vocab" else key
            raise CheckpointError(f"--init-from {source}: {what} differs "
                                  f"(this run {mine.get(key)!r}, the file {theirs.get(key)!r})"[:300])
    model.load_state_dict(src.state_dict())
    return info


def _legacy_generator(path):
    """``(model, meta)`` from a generator file written before the hub format (keys ``kind``,
    ``config``, ``vocab``, ``kl``, ``model``), or ``None`` if ``path`` is not one. The hub
    loader has already checked the file's checksum."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 — not readable as a legacy file: the hub's error stands
        return None
    if not isinstance(state, dict) or state.get("kind") not in GENERATORS or "config" not in state:
        return None
    try:
        config = json.loads(state["config"])
        vocab = json.loads(state["vocab"])
        kl = json.loads(state["kl"]) if state.get("kl") else None
        meta = json.loads(state.get("meta") or "{}")
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{path}: malformed generator description ({exc})") from None
    if state["kind"] == "catflow":
        config.setdefault("self_cond", False)  # CatFlow files written before self-conditioning
    model = build_generator(state["kind"], vocab, state["max_atoms"], kl=kl, **config)
    weights = {k: (v.float() if v.is_floating_point() else v) for k, v in state["model"].items()}
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the stored config "
                              f"({str(exc).splitlines()[0][:200]})") from None
    return model, {"dataset": state.get("dataset"), **meta}


# ------------------------------------------------------------------ sampling
@torch.no_grad()
def sample_smiles(model, num_samples: int, *, batch_size: int = 1000, generator: torch.Generator | None = None,
                  progress: bool = False, **sampler) -> list[str]:
    """Canonical SMILES of ``num_samples`` graphs from ``model.sample_graphs(b, generator=...,
    **sampler)`` drawn in batches of ``batch_size`` with the model in eval mode; ``""`` where
    RDKit rejects a graph (CatFlow's fragments are kept as ``a.b``). ``sampler``: MolVAE's
    ``temperature``, CatFlow's ``steps`` and ``decode``. ``progress``: a bar over batches."""
    from tqdm.auto import tqdm
    from vgraph.chem.featurize import canonical_smiles, graph_to_mol
    was = model.training
    model.eval()
    out = []
    try:
        for start in tqdm(range(0, num_samples, batch_size), desc="sampling (batches)", disable=not progress):
            if isinstance(model, SmilesVAE):  # strings: invalid unless RDKit parses them as they are
                for s in model.sample_strings(min(batch_size, num_samples - start), generator=generator,
                                              **sampler):
                    out.append((canonical_smiles(s) or "") if s else "")
                continue
            for toks, bonds in model.sample_graphs(min(batch_size, num_samples - start), generator=generator,
                                                   **sampler):
                mol = graph_to_mol(toks, bonds)
                out.append((canonical_smiles(mol) or "") if mol is not None else "")
    finally:
        model.train(was)
    return out


def sampler_options(kind: str, temperature: float = 1.0, flow_steps: int = 50, decode: str = "argmax",
                    time_schedule: str = "uniform", bf16: bool = False) -> dict:
    """The keyword arguments of ``sample_graphs`` a generator of ``kind`` takes."""
    if kind in ("molvae", "smilesvae"):
        return {"temperature": temperature}
    options = {"steps": flow_steps, "decode": decode, "schedule": time_schedule}
    if bf16:
        options["bf16"] = True
    return options


# ------------------------------------------------------------------- scoring
def reference_sets(name: str | None, root=None) -> dict:
    """What the metrics compare against for benchmark ``name``: ``train`` and ``test``
    canonical SMILES (novelty, test-set metrics) or, when the benchmark's files are absent
    (a fresh offline install), the test-set ``reference`` statistics shipped in the package
    (FCD and property distances only); ``notes`` says what is missing and why."""
    from vgraph.chem.datasets import reference_smiles
    from vgraph.metrics.molecules import ReferenceSet
    out = {"train": None, "test": None, "reference": None, "notes": []}
    if not name or name.lower() == "none":
        return out
    if name.lower() not in BENCHMARKS:
        out["notes"].append(f"no reference metrics: the model was trained on {name!r}, not a benchmark; "
                            f"pass --reference {'|'.join(BENCHMARKS)}")
        return out
    try:
        ref = reference_smiles(name.lower(), root)
        out["train"], out["test"] = ref["train"], ref["test"]
    except VGraphError as exc:
        out["reference"] = ReferenceSet.shipped(name)
        if out["reference"] is None:
            out["notes"].append(f"no reference metrics: {exc}")
        else:
            out["notes"].append(f"novelty, SNN, Frag and Scaf left out ({exc}); FCD and the property "
                                f"distances use the {name} test-set statistics shipped in the package")
    return out


def score_samples(samples, train=None, test=None, *, reference=None, fcd: bool = True, notes=()):
    """``(metrics, reference)``: :func:`vgraph.metrics.molecules.evaluate_molecules` of
    ``samples`` against canonical ``train`` (novelty) and ``test`` SMILES or a precomputed
    ``reference`` (``notes`` put first), and the :class:`~vgraph.metrics.molecules.ReferenceSet`
    used (``None`` without one), whose property arrays :func:`plot_properties` draws."""
    from vgraph.metrics.molecules import ReferenceSet, evaluate_molecules
    if reference is None and test:
        reference = ReferenceSet(test, fcd=fcd)
    metrics = evaluate_molecules(samples, train=train, train_is_canonical=True, fcd=fcd, reference=reference)
    metrics["notes"] = list(notes) + metrics["notes"]
    return metrics, reference


def plot_properties(samples, reference_props, path, label: str = "test set") -> dict:
    """Histograms of logP, SA, QED and molecular weight of the valid ``samples`` against
    ``reference_props`` (``{name: array}``, e.g. a ReferenceSet's; ``None``: samples only)
    into ``path`` (PNG). Returns the sample values drawn, ``{name: array}``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from vgraph.metrics.molecules import PROPERTIES, get_mol, properties
    values = properties([m for m in (get_mol(s) for s in samples) if m is not None])
    fig, axes = plt.subplots(1, len(PROPERTIES), figsize=(4 * len(PROPERTIES), 3.4))
    for ax, name in zip(axes, PROPERTIES):
        ref = None if reference_props is None else np.asarray(reference_props[name], np.float64)
        both = values[name] if ref is None else np.concatenate([values[name], ref])
        bins = np.histogram_bin_edges(both, bins=40) if both.size else 10
        if ref is not None:
            ax.hist(ref, bins=bins, density=True, alpha=0.5, label=f"{label} ({ref.size})")
        ax.hist(values[name], bins=bins, density=True, alpha=0.5, label=f"samples ({values[name].size})")
        ax.set(title=name, xlabel=name, ylabel="density")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return values


def write_properties(path, samples, values: dict):
    """``values`` (from :func:`plot_properties`) as CSV, one row per valid sample in order."""
    import csv
    from vgraph.metrics.molecules import get_mol
    valid = [s for s in samples if get_mol(s) is not None]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["smiles", *values])
        for r, smi in enumerate(valid):
            w.writerow([smi, *(f"{values[k][r]:.6g}" for k in values)])


def draw_grid(smiles, path, count: int):
    """An RDKit grid image of the first ``count`` valid SMILES."""
    from rdkit import Chem
    from rdkit.Chem import Draw
    mols, legends = [], []
    for s in smiles:
        mol = Chem.MolFromSmiles(s) if s else None
        if mol is not None:
            mols.append(mol)
            legends.append(s)
        if len(mols) == count:
            break
    img = Draw.MolsToGridImage(mols, molsPerRow=6, subImgSize=(220, 180), legends=legends)
    img.save(str(path))


HEADLINE = ("validity", "validity_connected", "uniqueness", "novelty", "FCD/Test", "SNN/Test", "IntDiv1")


def headline(metrics: dict) -> str:
    """One line of the metrics a reader looks at first."""
    return " ".join(f"{k}={round(v, 4) if isinstance(v, float) else v}"
                    for k, v in ((k, metrics.get(k)) for k in HEADLINE))


__all__ = ["MolGenTask", "EpochLog", "training_subset", "cosine_schedule", "build_generator", "save_generator", "load_generator",
           "sample_smiles", "sampler_options", "reference_sets", "score_samples", "headline", "draw_grid",
           "plot_properties", "write_properties",
           "atom_count_histogram", "PRETRAINED_QM9", "GENERATORS"]

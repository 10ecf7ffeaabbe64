"""Drug features from structure alone: RDKit 2D descriptors and Morgan fingerprints (DDI models).

A drug given only as SMILES (never seen in training) gets its features from this module
exactly as the training drugs did, which is what makes the DrugBank model inductive.
Descriptors are squashed with a signed ``log1p`` (many are heavy-tailed: molecular weight,
counts, Ipc) and then standardised with statistics stored with the model, so a new drug
is scaled the same way as the training drugs.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch

from vgraph.errors import DataFormatError
from vgraph.paths import cache_dir

MORGAN_RADIUS = 2
MORGAN_BITS = 1024


def parse_smiles(smiles: str):
    """An RDKit molecule, or ``None`` when the string is empty or not valid SMILES."""
    from rdkit import Chem, RDLogger
    RDLogger.DisableLog("rdApp.*")
    if not isinstance(smiles, str) or not smiles.strip():
        return None
    return Chem.MolFromSmiles(smiles.strip())


def canonical(smiles: str) -> str | None:
    """Canonical isomeric SMILES of a parseable string (how a known drug given as SMILES is
    recognised), else ``None``."""
    from rdkit import Chem
    mol = parse_smiles(smiles)
    return None if mol is None else Chem.MolToSmiles(mol)


def descriptor_names() -> list[str]:
    from rdkit.Chem import Descriptors
    return [name for name, _ in Descriptors._descList]


def _descriptors(mol) -> np.ndarray:
    from rdkit.Chem import Descriptors
    out = np.zeros(len(Descriptors._descList), dtype=np.float64)
    for k, (_, fn) in enumerate(Descriptors._descList):
        try:
            out[k] = fn(mol)
        except Exception:  # noqa: BLE001 — a descriptor RDKit cannot compute for this molecule
            out[k] = np.nan
    return out


def _morgan(mol) -> np.ndarray:
    from rdkit.Chem import rdFingerprintGenerator
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=MORGAN_RADIUS, fpSize=MORGAN_BITS)
    return gen.GetFingerprintAsNumPy(mol).astype(np.float32)


def raw_drug_features(smiles_list, use_cache: bool = True, progress: bool = False,
                      say=None) -> tuple[np.ndarray, np.ndarray]:
    """``(descriptors [D, n_desc] float64 with NaN, fingerprints [D, MORGAN_BITS])``.

    Raises :class:`DataFormatError` naming the first SMILES RDKit cannot parse. Results for a
    list are cached under ``$VGRAPH_CACHE/ddi``: the descriptors of DrugBank's 1,706 drugs take
    about two minutes, so a run that computes them says so in one line through ``say`` (e.g.
    ``print``; default: silent) and, with ``progress``, shows a bar.
    """
    smiles_list = list(smiles_list)
    key = hashlib.sha256(("\n".join(smiles_list) + f"|{MORGAN_RADIUS}|{MORGAN_BITS}").encode()).hexdigest()[:16]
    path = cache_dir("ddi") / f"features_{key}.npz" if use_cache else None
    if path is not None and path.is_file():
        z = np.load(path)
        return z["desc"], z["fp"]
    if say is not None:
        where = f"; cached in {path.parent} for later runs" if path is not None else ""
        say(f"featurising {len(smiles_list)} drugs (RDKit descriptors + Morgan bits){where}")
    from tqdm.auto import tqdm
    desc, fps = [], []
    for i, s in enumerate(tqdm(smiles_list, desc="featurising drugs", unit="drug", disable=not progress,
                               leave=False)):
        mol = parse_smiles(s)
        if mol is None:
            raise DataFormatError(f"SMILES #{i} ({str(s)[:60]!r}) cannot be parsed by RDKit")
        desc.append(_descriptors(mol))
        fps.append(_morgan(mol))
    desc = np.stack(desc) if desc else np.zeros((0, len(descriptor_names())))
    fps = np.stack(fps) if fps else np.zeros((0, MORGAN_BITS), np.float32)
    if path is not None:
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, desc=desc, fp=fps)
        tmp.replace(path)
    return desc, fps


class DrugFeaturizer:
    """Turns SMILES into the model's input rows; fitted once on the training drugs.

    ``fit(smiles)`` records the descriptor means/stds (after the signed ``log1p``);
    ``transform(smiles)`` returns ``[D, n_desc + MORGAN_BITS]`` float32. The state is a small
    JSON dict (``state_dict`` / ``from_state``) saved with the model.
    """

    def __init__(self):
        self.mean = self.std = None

    @staticmethod
    def _squash(desc: np.ndarray) -> np.ndarray:
        desc = np.where(np.isfinite(desc), desc, np.nan)
        return np.sign(desc) * np.log1p(np.abs(desc))

    def fit(self, smiles_list) -> "DrugFeaturizer":
        return self.fit_raw(raw_drug_features(smiles_list)[0])

    def fit_raw(self, desc: np.ndarray) -> "DrugFeaturizer":
        """Fit the scaling on raw descriptor rows (e.g. the training drugs' rows)."""
        d = self._squash(desc)
        self.mean = np.nan_to_num(np.nanmean(d, 0))
        std = np.nan_to_num(np.nanstd(d, 0))
        self.std = np.where(std > 1e-6, std, 1.0)
        return self

    def transform_raw(self, desc: np.ndarray, fps: np.ndarray) -> torch.Tensor:
        d = (self._squash(desc) - self.mean) / self.std
        d = np.clip(np.nan_to_num(d, nan=0.0), -6, 6)  # missing -> the mean; cap outliers
        return torch.from_numpy(np.concatenate([d, fps], 1).astype(np.float32))

    def transform(self, smiles_list, use_cache: bool = True) -> torch.Tensor:
        desc, fps = raw_drug_features(smiles_list, use_cache=use_cache)
        return self.transform_raw(desc, fps)

    @property
    def num_features(self) -> int:
        return len(self.mean) + MORGAN_BITS

    def state_dict(self) -> dict:
        """The fitted scaling as plain JSON (stored as a model file's ``transform``)."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist(),
                "morgan_radius": MORGAN_RADIUS, "morgan_bits": MORGAN_BITS}

    @classmethod
    def from_state(cls, state: dict) -> "DrugFeaturizer":
        if state.get("morgan_radius") != MORGAN_RADIUS or state.get("morgan_bits") != MORGAN_BITS:
            raise DataFormatError("the model was trained with other Morgan fingerprint settings")
        f = cls()
        f.mean = np.asarray(state["mean"], dtype=np.float64)
        f.std = np.asarray(state["std"], dtype=np.float64)
        if len(f.mean) != len(descriptor_names()):
            raise DataFormatError(f"the model has {len(f.mean)} RDKit descriptors, this RDKit "
                                  f"computes {len(descriptor_names())}: retrain with this RDKit")
        return f

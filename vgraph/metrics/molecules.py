"""MOSES-style scores for generated molecules: one ``evaluate_molecules(generated, ...) -> dict``.

Definitions follow MOSES (Polykovskiy et al. 2020, ``moses/metrics``), re-implemented here
because the ``molsets`` package breaks on pandas 2:

* ``validity``: fraction of generated strings RDKit parses and sanitises (no correction);
  ``validity_connected``: ... and that are one fragment (graph generators can emit ``a.b``).
* ``unique@k``: fraction of distinct canonical SMILES among the first ``k`` valid ones
  (all valid ones if fewer — ``unique@k_count`` says how many were used);
  ``uniqueness``: distinct / valid over all valid samples.
* ``novelty``: distinct valid canonical SMILES not in ``train`` / distinct valid.
* ``FCD/Test``: Fréchet ChemNet Distance (fcd-torch, whose wheel ships ChemNet) between valid
  samples and ``test``.
* ``SNN/Test``: mean over valid samples of the largest Tanimoto similarity to a ``test``
  molecule (Morgan radius 2, 1024 bits).
* ``Frag/Test``, ``Scaf/Test``: cosine similarity of BRICS-fragment counts / Bemis–Murcko
  scaffold counts (scaffolds with at least 2 rings, as MOSES) of valid samples and ``test``.
* ``IntDiv1``, ``IntDiv2``: ``1 - mean_i (mean_j T_ij^p)^(1/p)`` over all pairs of valid
  samples (self-pairs included), ``p = 1, 2``.
* ``Filters``: fraction of valid samples passing MOSES's filters (MCF SMARTS, PAINS,
  allowed atoms C N S O F Cl Br H, no charge, no ring of 8+ atoms).
* ``logP``, ``SA``, ``QED``, ``weight``: the mean over valid samples and, with ``test``, the
  Wasserstein-1 distance between the sample and test distributions (as MOSES reports).

Fractions are in [0, 1]; a metric that cannot be computed (no reference) is ``None`` (with a
reason under ``notes``). FCD asked for without fcd-torch installed is an error, not a note.
"""
from __future__ import annotations

import hashlib
import os
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np
from rdkit import Chem, DataStructs, RDConfig, RDLogger
from rdkit.Chem import BRICS, Crippen, Descriptors, QED, rdFingerprintGenerator
from rdkit.Chem.Scaffolds import MurckoScaffold

RDLogger.DisableLog("rdApp.*")

# MOSES's medicinal-chemistry filters (molecularsets/moses, moses/metrics/mcf.csv, MIT licence).
MCF_SMARTS = [
    "[#6]=&!@[#6]-[#6]#[#7]", "[#6]=&!@[#6]-[#16](=[#8])=[#8]", "[#6]=&!@[#6&!H0]-&!@[#6](=[#8])-&!@[#7]",
    "[H]C([H])([#6])[F,Cl,Br,I]", "[#6]1-[#8]-[#6]-1", "[#6]-[#7]=[#6]=[#8]", "[#6&!H0]=[#8]",
    "[#6](=&!@[#7&!H0])-&!@[#6,#7,#8,#16]", "[#6]1-[#7]-[#6]-1", "[#6]~&!@[#7]~&!@[#7]~&!@[#6]",
    "[#7]=&!@[#7]", "[H][#6]-1=[#6]([H])-[#6]=[#6](-*)-[#8]-1", "[H][#6]-1=[#6]([H])-[#6]=[#6](-*)-[#16]-1",
    "[#17,#35,#53]-c(:*):[!#1!#6]:*", "[H][#7]([H])-[#6]-1=[#6]-[#6]=[#6]-[#6]=[#6]-1", "[#16]~[#16]",
    "[#7]~&!@[#7]~&!@[#7]", "[#7]-&!@[#6&!H0&!H1]-&!@[#7]", "[#6&!H0](-&!@[#8])-&!@[#8]",
    "[#35].[#35].[#35]", "[#17].[#17].[#17].[#17]", "[#9].[#9].[#9].[#9].[#9].[#9].[#9]",
]
FILTER_ATOMS = {"C", "N", "S", "O", "F", "Cl", "Br", "H"}
_MORGAN = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)


def get_mol(smiles: str):
    """MOSES's ``get_mol``: a sanitised molecule, or ``None`` for empty / unparsable SMILES."""
    if not smiles:
        return None
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return None
    try:
        Chem.SanitizeMol(mol)
    except Exception:  # noqa: BLE001
        return None
    return mol


# ------------------------------------------------------------------ fingerprints
def morgan_fingerprints(mols) -> np.ndarray:
    """``[M, 1024]`` uint8 Morgan (radius 2) bit vectors."""
    out = np.zeros((len(mols), 1024), dtype=np.uint8)
    for r, mol in enumerate(mols):
        out[r] = _MORGAN.GetFingerprintAsNumPy(mol)
    return out


def average_agg_tanimoto(ref: np.ndarray, gen: np.ndarray, agg: str = "max", p: int = 1,
                         batch_size: int = 5000) -> float:
    """For each row of ``gen``: max (or power-mean) Tanimoto similarity to the rows of ``ref``;
    the mean of that over ``gen`` (MOSES ``average_agg_tanimoto``; 0/0 counts as 1)."""
    import torch
    acc = np.zeros(len(gen))
    total = np.zeros(len(gen))
    for j in range(0, len(ref), batch_size):
        x = torch.from_numpy(ref[j:j + batch_size]).float()
        for i in range(0, len(gen), batch_size):
            y = torch.from_numpy(gen[i:i + batch_size]).float().T
            tp = x @ y
            jac = (tp / (x.sum(1, keepdim=True) + y.sum(0, keepdim=True) - tp)).numpy()
            jac[np.isnan(jac)] = 1
            if p != 1:
                jac = jac ** p
            if agg == "max":
                acc[i:i + y.shape[1]] = np.maximum(acc[i:i + y.shape[1]], jac.max(0))
            else:
                acc[i:i + y.shape[1]] += jac.sum(0)
                total[i:i + y.shape[1]] += jac.shape[0]
    if agg == "mean":
        acc /= total
    if p != 1:
        acc = acc ** (1 / p)
    return float(np.mean(acc))


def internal_diversity(fps: np.ndarray, p: int = 1) -> float:
    """MOSES IntDiv_p: ``1 - mean_i (mean_j T_ij^p)^(1/p)``, self-pairs included."""
    return 1.0 - average_agg_tanimoto(fps, fps, agg="mean", p=p)


# ------------------------------------------------------------ fragments, scaffolds
def fragments(mol) -> list[str]:
    """BRICS fragments of a molecule as canonical SMILES (with dummy atoms)."""
    return Chem.MolToSmiles(BRICS.BreakBRICSBonds(mol)).split(".")


def scaffold(mol, min_rings: int = 2) -> str | None:
    """Bemis–Murcko scaffold SMILES, or ``None`` if it has fewer than ``min_rings`` rings."""
    try:
        scaf = MurckoScaffold.GetScaffoldForMol(mol)
    except Exception:  # noqa: BLE001
        return None
    smi = Chem.MolToSmiles(scaf)
    if smi == "" or scaf.GetRingInfo().NumRings() < min_rings:
        return None
    return smi


def cos_similarity(ref_counts: Counter, gen_counts: Counter) -> float | None:
    """Cosine similarity of two count vectors over the union of their keys (``None`` if one is empty)."""
    if not ref_counts or not gen_counts:
        return None
    keys = list(set(ref_counts) | set(gen_counts))
    a = np.array([ref_counts.get(k, 0) for k in keys], dtype=np.float64)
    b = np.array([gen_counts.get(k, 0) for k in keys], dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ------------------------------------------------------------------------ filters
@lru_cache(maxsize=1)
def _filters():
    from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogParams
    params = FilterCatalogParams()
    params.AddCatalog(FilterCatalogParams.FilterCatalogs.PAINS)  # PAINS A+B+C = WEHI's 480 filters
    return [Chem.MolFromSmarts(s) for s in MCF_SMARTS], FilterCatalog(params)


def passes_filters(mol) -> bool:
    """MOSES ``mol_passes_filters``: no 8+ rings, no charge, allowed atoms, no MCF/PAINS match."""
    if mol is None:
        return False
    ring_info = mol.GetRingInfo()
    if ring_info.NumRings() and any(len(r) >= 8 for r in ring_info.AtomRings()):
        return False
    if any(a.GetFormalCharge() != 0 for a in mol.GetAtoms()):
        return False
    if any(a.GetSymbol() not in FILTER_ATOMS for a in mol.GetAtoms()):
        return False
    mcf, pains = _filters()
    h_mol = Chem.AddHs(mol)
    if any(h_mol.HasSubstructMatch(s) for s in mcf) or pains.HasMatch(h_mol):
        return False
    return Chem.MolFromSmiles(Chem.MolToSmiles(mol, isomericSmiles=False)) is not None


# ------------------------------------------------------------------------ properties
@lru_cache(maxsize=1)
def _sascorer():
    """RDKit Contrib's SA scorer (Ertl & Schuffenhauer 2009), or ``None`` if not shipped."""
    import importlib.util
    path = os.path.join(RDConfig.RDContribDir, "SA_Score", "sascorer.py")
    if not os.path.isfile(path):
        return None
    spec = importlib.util.spec_from_file_location("vgraph_sascorer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sa_score(mol) -> float:
    """Synthetic accessibility, 1 (easy) .. 10 (hard)."""
    scorer = _sascorer()
    if scorer is None:
        raise RuntimeError(f"RDKit Contrib SA_Score not found under {RDConfig.RDContribDir}")
    return float(scorer.calculateScore(mol))


PROPERTIES = {"logP": Crippen.MolLogP, "SA": sa_score, "QED": QED.qed, "weight": Descriptors.MolWt}


def properties(mols, names=tuple(PROPERTIES)) -> dict:
    """``{name: np.ndarray}`` of each property over ``mols``."""
    return {n: np.array([PROPERTIES[n](m) for m in mols], dtype=np.float64) for n in names}


# ------------------------------------------------------------------- reference stats
class ReferenceSet:
    """Everything the metrics need from a reference set (test), computed once and cached.

    Cached in ``$VGRAPH_CACHE/molecules/refstats`` keyed by a hash of the SMILES list, so
    repeated evaluations against the same test set (e.g. MOSES's 176k) are cheap.
    """

    def __init__(self, smiles, fcd: bool = True, cache: bool = True, max_fcd: int | None = None):
        smiles = list(smiles)
        key = hashlib.sha256("\n".join(smiles).encode()).hexdigest()[:16]
        path = None
        if cache:
            from vgraph.paths import cache_dir
            path = cache_dir("molecules", "refstats") / f"{key}.npz"
        if path is not None and path.is_file():
            d = np.load(path, allow_pickle=False)
            self.fps = d["fps"]
            self.frags = Counter(dict(zip(d["frag_keys"].tolist(), d["frag_vals"].tolist())))
            self.scafs = Counter(dict(zip(d["scaf_keys"].tolist(), d["scaf_vals"].tolist())))
            self.props = {k: d[f"prop_{k}"] for k in PROPERTIES}
            self.fcd_stats = {"mu": d["fcd_mu"], "sigma": d["fcd_sigma"]} if "fcd_mu" in d else None
            if fcd and self.fcd_stats is None:
                self.fcd_stats = _fcd_precalc(smiles)
                self._save(path)
            return
        mols = [m for m in (get_mol(s) for s in smiles) if m is not None]
        self.fps = morgan_fingerprints(mols)
        self.frags = Counter(f for m in mols for f in fragments(m))
        self.scafs = Counter(s for s in (scaffold(m) for m in mols) if s is not None)
        shipped = _shipped_stats(key)  # the slow parts (ChemNet, SA), precomputed for QM9's test set
        self.props = {k: shipped[f"prop_{k}"] for k in PROPERTIES} if shipped is not None else properties(mols)
        if not fcd:
            self.fcd_stats = None
        elif shipped is not None and "fcd_mu" in shipped:
            self.fcd_stats = {"mu": shipped["fcd_mu"], "sigma": shipped["fcd_sigma"]}
        else:
            self.fcd_stats = _fcd_precalc([Chem.MolToSmiles(m) for m in mols])
        if path is not None:
            self._save(path)

    @classmethod
    def shipped(cls, name: str) -> "ReferenceSet | None":
        """The statistics shipped in the package for benchmark ``name``'s test set (ChemNet
        moments and property arrays), usable without the dataset's files: FCD and the property
        distances, not SNN/Frag/Scaf (``fps`` is ``None``). ``None`` if nothing is shipped."""
        key = _shipped_index().get(name.lower())
        shipped = _shipped_stats(key) if key else None
        if shipped is None:
            return None
        ref = cls.__new__(cls)
        ref.fps = ref.frags = ref.scafs = None
        ref.props = {k: shipped[f"prop_{k}"] for k in PROPERTIES}
        ref.fcd_stats = {"mu": shipped["fcd_mu"], "sigma": shipped["fcd_sigma"]} if "fcd_mu" in shipped else None
        return ref

    def _save(self, path):
        arrays = {"fps": self.fps,
                  "frag_keys": np.array(list(self.frags), dtype=str), "frag_vals": np.array(list(self.frags.values())),
                  "scaf_keys": np.array(list(self.scafs), dtype=str), "scaf_vals": np.array(list(self.scafs.values())),
                  **{f"prop_{k}": v for k, v in self.props.items()}}
        if self.fcd_stats:
            arrays["fcd_mu"], arrays["fcd_sigma"] = self.fcd_stats["mu"], self.fcd_stats["sigma"]
        tmp = path.with_name(path.stem + f".tmp{os.getpid()}.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)


SHIPPED_STATS = Path(__file__).resolve().parent.parent / "chem" / "pretrained" / "refstats"


def _shipped_stats(key: str):
    """Reference statistics shipped in the package for ``key`` (the hash of a reference SMILES
    list): ChemNet mean/covariance for FCD and the property arrays, written by
    ``scripts/generate_molecules.py --write-shipped-stats``. They are what ReferenceSet would
    compute, and only apply when the reference list hashes identically (same RDKit
    canonicalisation); anything else is computed."""
    path = SHIPPED_STATS / f"{key}.npz"
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as d:
        return {k: d[k].astype(np.float64) for k in d.files}


def _shipped_index(directory=None) -> dict:
    """``{benchmark name: key}`` of the shipped statistics (``index.json`` beside them)."""
    import json
    path = Path(directory or SHIPPED_STATS) / "index.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def write_shipped_stats(smiles, directory=None, name: str | None = None) -> Path:
    """Write the statistics :func:`_shipped_stats` reads for this reference list (and, with
    ``name``, record it in ``index.json`` for :meth:`ReferenceSet.shipped`)."""
    smiles = list(smiles)
    key = hashlib.sha256("\n".join(smiles).encode()).hexdigest()[:16]
    mols = [m for m in (get_mol(s) for s in smiles) if m is not None]
    # stored as float32 (1.1 MB instead of 2.2 MB); FCD/Test on QM9 unchanged to four decimals
    arrays = {f"prop_{k}": v.astype(np.float32) for k, v in properties(mols).items()}
    stats = _fcd_precalc([Chem.MolToSmiles(m) for m in mols])
    if stats is None:
        raise RuntimeError("fcd-torch is needed to write the FCD reference statistics")
    arrays["fcd_mu"], arrays["fcd_sigma"] = stats["mu"].astype(np.float32), stats["sigma"].astype(np.float32)
    directory = Path(directory) if directory is not None else SHIPPED_STATS
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{key}.npz"
    np.savez_compressed(path, **arrays)
    if name is not None:
        import json
        index = {**_shipped_index(directory), name.lower(): key}
        (directory / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    return path


@lru_cache(maxsize=1)
def _fcd_model():
    """fcd-torch's ChemNet on CPU, built once on first use (its weights ship in the wheel, so
    this works offline); a clear error if fcd-torch is not installed."""
    try:
        from fcd_torch import FCD
    except ImportError:
        from vgraph.errors import VGraphError
        raise VGraphError("FCD needs fcd-torch, a dependency of vgraph that is not installed here: "
                          "`pip install fcd-torch` (or pass --no-fcd)") from None
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return FCD(device="cpu", n_jobs=1)


FCD_CHUNK = 2048


def _fcd_precalc(smiles, chunk: int = FCD_CHUNK):
    """ChemNet mean and covariance of ``smiles`` (what fcd-torch's ``precalc`` returns).

    Streamed: ChemNet runs on ``chunk`` SMILES at a time and only running sums are kept
    (shifted by the first chunk's mean for accuracy), so memory stays flat for any list
    length; fcd-torch's own ``precalc`` keeps every activation and its data loader grows
    with the list (MOSES's 176k test SMILES reached 15.5 GB).
    """
    smiles = list(smiles)
    if len(smiles) < 2:
        return None
    model = _fcd_model()
    import warnings
    n, shift, total, cross = 0, None, None, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for start in range(0, len(smiles), chunk):
            act = np.asarray(model.get_predictions(smiles[start:start + chunk]), dtype=np.float64)
            if shift is None:
                shift = act.mean(0)
                total, cross = np.zeros_like(shift), np.zeros((shift.size, shift.size))
            act -= shift
            total += act.sum(0)
            cross += act.T @ act
            n += act.shape[0]
    mean = total / n
    sigma = (cross - n * np.outer(mean, mean)) / (n - 1)
    return {"mu": mean + shift, "sigma": sigma}


def evaluate_molecules(generated, train=None, test=None, *, k=(1000, 10000), fcd: bool = True,
                       train_is_canonical: bool = False, reference: ReferenceSet | None = None) -> dict:
    """Score generated SMILES the MOSES way (see the module docstring).

    Args:
        generated: list of SMILES ("" or unparsable entries count as invalid).
        train: training SMILES for novelty (canonicalised unless ``train_is_canonical``).
        test: reference SMILES for FCD/SNN/Frag/Scaf and the property distances
            (or pass a precomputed ``reference``).
        k: the ``unique@k`` cut-offs. fcd: compute FCD (needs the optional fcd-torch).
    """
    from scipy.stats import wasserstein_distance
    generated = list(generated)
    n = len(generated)
    notes = []
    mols = [get_mol(s) for s in generated]
    valid = [m for m in mols if m is not None]
    canon = [Chem.MolToSmiles(m) for m in valid]
    out = {"num_generated": n, "num_valid": len(valid),
           "validity": len(valid) / n if n else 0.0,
           "validity_connected": sum(1 for c in canon if "." not in c) / n if n else 0.0}
    for kk in k:
        head = canon[:kk]
        out[f"unique@{kk}"] = len(set(head)) / len(head) if head else None
        if len(head) < kk:
            notes.append(f"unique@{kk} computed on {len(head)} valid molecules (fewer than {kk})")
    unique = set(canon)
    out["uniqueness"] = len(unique) / len(canon) if canon else None
    out["num_unique"] = len(unique)
    if train is not None:
        train_set = set(train) if train_is_canonical else {c for c in (_canon(s) for s in train) if c}
        out["novelty"] = len(unique - train_set) / len(unique) if unique else None
    else:
        out["novelty"] = None
    if valid:
        fps = morgan_fingerprints(valid)
        out["IntDiv1"] = internal_diversity(fps, 1)
        out["IntDiv2"] = internal_diversity(fps, 2)
        out["Filters"] = float(np.mean([passes_filters(m) for m in valid]))
        props = properties(valid)
        for name, vals in props.items():
            out[f"{name}_mean"] = float(vals.mean())
    ref = reference
    if ref is None and test is not None:
        ref = ReferenceSet(test, fcd=fcd)
    if ref is not None and valid:
        if ref.fps is not None:
            out["SNN/Test"] = average_agg_tanimoto(ref.fps, fps, agg="max")
            out["Frag/Test"] = cos_similarity(ref.frags, Counter(f for m in valid for f in fragments(m)))
            out["Scaf/Test"] = cos_similarity(ref.scafs, Counter(s for s in (scaffold(m) for m in valid) if s))
            if out["Scaf/Test"] is None:
                notes.append("Scaf/Test undefined: no scaffold with >= 2 rings in the samples or the reference")
        else:  # statistics only (shipped): no molecules to compare fingerprints with
            out["SNN/Test"] = out["Frag/Test"] = out["Scaf/Test"] = None
        for name, vals in props.items():
            out[f"{name}_wasserstein"] = float(wasserstein_distance(ref.props[name], vals))
        out["FCD/Test"] = None
        if fcd:
            if len(canon) < 2:
                notes.append("FCD not computed: fewer than 2 valid samples")
            elif ref.fcd_stats is None:
                notes.append("FCD not computed: the reference set was built without ChemNet statistics")
            else:
                out["FCD/Test"] = float(_fcd_model().metric(ref.fcd_stats, _fcd_precalc(canon)))
    out["notes"] = notes
    return out


def _canon(smiles):
    mol = get_mol(smiles)
    return Chem.MolToSmiles(mol) if mol is not None else None


def require_fcd():
    """Build ChemNet now, so a missing fcd-torch is one clear error at the start of a job
    rather than after its training."""
    _fcd_model()

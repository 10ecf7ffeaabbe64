"""Raw SMILES of the molecule benchmarks and of a user's file: ``load_smiles(name, root=None)``.

Files are read from the data root (``--root`` / ``$VGRAPH_DATA`` / repo ``datasets/``) in the
layout of ``../shared/datasets/molecules``::

    molecules/qm9.csv.gz                      column "smiles", 133,885 rows in GDB-9 order
    molecules/valid_idx_qm9.json              13,082 1-based test indices (MoFlow/GDSS split)
    molecules/moses/{train,test,test_scaffolds}.csv.gz   column "SMILES"
    molecules/250k_rndm_zinc_drugs_clean_3.csv            (chemical_vae file; downloaded if absent)
    molecules/valid_idx_zinc250k.json         24,887 0-based test indices

Only strings live here; parsing them into graphs (and the vocabulary) is :mod:`vgraph.chem`'s.
"""
from __future__ import annotations

import json
from pathlib import Path

from vgraph.data.download import find_raw_file
from vgraph.errors import DataFormatError
from vgraph.paths import data_root

ZINC250K_URL = ("https://raw.githubusercontent.com/aspuru-guzik-group/chemical_vae/master/"
                "models/zinc/250k_rndm_zinc_drugs_clean_3.csv")
BENCHMARKS = ("qm9", "moses", "zinc250k")


def _read_column(path: Path, column: str | None = None) -> list[str]:
    """One column of a CSV as stripped strings (missing cells -> ""); malformed files raise
    :class:`DataFormatError` naming the file, never a pandas error."""
    import pandas as pd
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, index_col=False)
    except pd.errors.EmptyDataError:
        raise DataFormatError(f"{path}: the CSV file is empty (expected a 'smiles' column)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise DataFormatError(f"{path}: cannot be read as CSV ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if df.shape[1] == 0:
        raise DataFormatError(f"{path}: the CSV file has no columns")
    if column is not None and column not in df.columns:
        raise DataFormatError(f"{path}: no column {column!r} (columns: {list(df.columns)[:5]})")
    col = column or next((c for c in df.columns if str(c).lower() == "smiles"), df.columns[0])
    return [str(v).strip() for v in df[col].tolist()]


def raw_splits(name: str, root=None) -> tuple[dict, list[Path]]:
    """``({split: [SMILES]}, [raw files])`` for ``qm9``, ``moses`` or ``zinc250k``."""
    root = data_root(root)
    name = name.lower()
    if name == "qm9":
        csv = find_raw_file(root, "molecules/qm9.csv.gz", dataset="QM9")
        idx_file = find_raw_file(root, "molecules/valid_idx_qm9.json", dataset="QM9")
        smiles = _read_column(csv, "smiles")
        test_idx = sorted(int(s) - 1 for s in json.loads(idx_file.read_text())["valid_idxs"])  # 1-based
        test_set = set(test_idx)
        train = [s for i, s in enumerate(smiles) if i not in test_set]
        return {"train": train, "test": [smiles[i] for i in test_idx]}, [csv, idx_file]
    if name == "moses":
        files = {s: find_raw_file(root, f"molecules/moses/{s}.csv.gz", dataset="MOSES")
                 for s in ("train", "test", "test_scaffolds")}
        return {s: _read_column(p, "SMILES") for s, p in files.items()}, list(files.values())
    if name == "zinc250k":
        csv = find_raw_file(root, "molecules/250k_rndm_zinc_drugs_clean_3.csv", url=ZINC250K_URL,
                            dataset="ZINC250k")
        idx_file = find_raw_file(root, "molecules/valid_idx_zinc250k.json", dataset="ZINC250k")
        smiles = _read_column(csv, "smiles")
        test_idx = sorted(json.loads(idx_file.read_text()))  # 0-based
        test_set = set(test_idx)
        train = [s for i, s in enumerate(smiles) if i not in test_set]
        return {"train": train, "test": [smiles[i] for i in test_idx]}, [csv, idx_file]
    raise ValueError(f"unknown molecule dataset {name!r}; use qm9, moses, zinc250k or a SMILES file path")


def read_smiles_file(path) -> list[str]:
    """Lines of a user's SMILES file (``.smi``/``.txt``: first token per line; ``.csv``: the
    ``smiles`` column). Empty lines are kept so that they are counted."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"SMILES file {path} does not exist")
    if path.suffix.lower() in (".csv",) or path.name.lower().endswith(".csv.gz"):
        return _read_column(path)
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path}: not a UTF-8 text file (bad byte at offset {exc.start})") from None
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot be read ({exc.strerror})") from None


def load_smiles(name: str, root=None) -> dict:
    """``{split: [SMILES]}`` of a benchmark (``qm9``, ``moses``, ``zinc250k``) as its files
    hold them (canonical forms for novelty and the test-set metrics:
    :func:`vgraph.chem.datasets.reference_smiles`)."""
    return raw_splits(name, root)[0]

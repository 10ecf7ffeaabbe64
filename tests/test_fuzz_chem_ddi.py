"""Property-based fuzzing of the molecule and DDI input readers (hypothesis).

* :func:`vgraph.chem.datasets.read_smiles_file` and :func:`~vgraph.chem.datasets.load_molecules`
  on a user's SMILES file (``.smi``/``.txt``/``.csv``);
* :func:`vgraph.tasks.ddi_predict.read_pairs`, the user's CSV of drug pairs.

Property: nothing but :class:`~vgraph.errors.VGraphError` escapes, and the input file is
unchanged. Failures that were found and reported to the owners of those modules, and are not
fixed yet, are listed in ``KNOWN``: such a case marks the test xfail (without shrinking)
instead of failing CI; delete the entry once the reader is fixed.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
pytest.importorskip("rdkit")
pytest.importorskip("pandas")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from vgraph.errors import VGraphError  # noqa: E402

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, print_blob=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# (reader, exception type name) -> what was reported
KNOWN: dict[tuple[str, str], str] = {}  # every bug found here so far is fixed

SMILES = st.sampled_from(["CCO", "c1ccccc1", "C1CC1", "O=C=O", "CC(=O)O", "[Na+].[Cl-]", "C[N+](C)(C)C",
                          "c1ccccc", "C(", "XYZ", "", " ", "CCO extra words", "[Fe]", "C" * 40, "N#N",
                          "[2H]C", "C/C=C/C", "smiles", "SMILES", "\x00", "é", "1,2", '"CCO"'])
SMILES_TEXT = st.builds(lambda lines, nl: nl.join(lines), st.lists(SMILES, max_size=8),
                        st.sampled_from(["\n", "\r\n"]))
CSV_CELL = st.sampled_from(["drug1", "drug2", "DB00001", "DB00002", "DB0000X", "CCO", "c1ccccc1", "",
                            '"a,b"', '"', "nan", "NA", "1", "x" * 30, " drug1 ", "DRUG2", "\t", "é"])
CSV_TEXT = st.builds(lambda rows, sep, nl: nl.join(sep.join(r) for r in rows),
                     st.lists(st.lists(CSV_CELL, max_size=4), max_size=6),
                     st.sampled_from([",", ";", "\t"]), st.sampled_from(["\n", "\r\n"]))
RAW_SMILES = st.one_of(SMILES_TEXT.map(str.encode), st.binary(max_size=120),
                       st.builds(lambda h, t: (h + "\n" + t).encode(), st.sampled_from(["smiles", "SMILES,id", "x"]),
                                 SMILES_TEXT))
RAW_CSV = st.one_of(CSV_TEXT.map(str.encode), st.binary(max_size=120),
                    st.builds(lambda t: ("drug1,drug2\n" + t).encode(), CSV_TEXT))


def _call(name: str, fn, path: Path, seen: list):
    """Only VGraphError may escape; known, reported failures are collected in ``seen``
    (not raised, so hypothesis neither shrinks nor stops on them)."""
    before = path.read_bytes()
    try:
        out = fn()
    except VGraphError:
        out = None
    except Exception as exc:
        key = (name, type(exc).__name__)
        if key not in KNOWN:
            raise
        seen.append(f"{KNOWN[key]} (input {path.read_bytes()[:40]!r})")
        out = None
    assert path.read_bytes() == before, f"{name} changed its input file"
    return out


def _xfail_if_known(seen: list):
    if seen:
        pytest.xfail(f"{len(seen)} inputs hit known, reported bugs; first: {seen[0]}")


def test_read_smiles_file_fuzz():
    from vgraph.data.molecules import read_smiles_file
    seen = []

    @FUZZ
    @given(raw=RAW_SMILES, suffix=st.sampled_from([".smi", ".txt", ".csv"]))
    def run(raw, suffix):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / f"mols{suffix}"
            path.write_bytes(raw)
            lines = _call("read_smiles_file", lambda: read_smiles_file(path), path, seen)
        if lines is not None:
            assert isinstance(lines, list) and all(isinstance(s, str) for s in lines)

    run()
    _xfail_if_known(seen)


def test_load_molecules_fuzz():
    from rdkit import RDLogger
    from vgraph.chem.datasets import load_molecules
    RDLogger.DisableLog("rdApp.*")
    seen = []

    @settings(FUZZ, max_examples=25)
    @given(raw=RAW_SMILES, suffix=st.sampled_from([".smi", ".csv"]), max_atoms=st.sampled_from([None, 3, 50]))
    def run(raw, suffix, max_atoms):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / f"mols{suffix}"
            path.write_bytes(raw)
            _call("load_molecules", lambda: load_molecules(str(path), max_atoms=max_atoms, verbose=False),
                  path, seen)

    run()
    _xfail_if_known(seen)


def test_read_pairs_fuzz():
    from vgraph.tasks.ddi_predict import read_pairs
    seen = []

    @FUZZ
    @given(raw=RAW_CSV)
    def run(raw):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "pairs.csv"
            path.write_bytes(raw)
            df = _call("read_pairs", lambda: read_pairs(path), path, seen)
        if df is not None:
            assert list(df.columns) == ["drug1", "drug2"]

    run()
    _xfail_if_known(seen)

"""Molecule datasets: QM9, MOSES, ZINC250k and a user's SMILES file, featurised once and cached.

The raw SMILES come from :mod:`vgraph.data.molecules` (the data-root layout is described
there). A split is encoded to a :class:`MolDataset` (flat arrays: vocabulary indices of atom tokens,
Kekulé bonds, per-molecule offsets) and cached under ``$VGRAPH_CACHE/molecules`` keyed by the
raw files' fingerprint, the split and the vocabulary. Molecules that cannot be used —
empty lines, unparsable SMILES, several fragments (salts, mixtures), atoms outside the
vocabulary, too many atoms — are skipped and *counted* in ``MolDataset.skipped``.
"""
from __future__ import annotations

from array import array
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from rdkit import Chem

from vgraph.chem.featurize import atom_token, canonical_smiles, mol_to_graph
from vgraph.data.molecules import BENCHMARKS, raw_splits, read_smiles_file
from vgraph.errors import DataFormatError
from vgraph.ops import concat_ranges
from vgraph.paths import cache_dir, fingerprint

SKIP_REASONS = ("empty", "unparsable", "multiple_fragments", "out_of_vocabulary", "too_many_atoms")
#: Elements a vocabulary built from data may contain (charges -1..+1).
DEFAULT_ELEMENTS = ("C", "N", "O", "F", "P", "S", "Cl", "Br", "I", "B", "Si", "Se")


class Vocabulary:
    """Atom tokens (element + charge) and the largest total valence seen for each.

    ``max_valence[k]`` bounds the bond orders the decoder may attach to token ``k``: every
    valence up to it was seen in training data, so RDKit accepts it (filling hydrogens).
    """

    def __init__(self, tokens, max_valence):
        self.tokens = list(tokens)
        self.max_valence = [int(v) for v in max_valence]
        self.index = {t: k for k, t in enumerate(self.tokens)}

    def __len__(self):
        return len(self.tokens)

    def to_dict(self) -> dict:
        return {"tokens": self.tokens, "max_valence": self.max_valence}

    @classmethod
    def from_dict(cls, d) -> "Vocabulary":
        return cls(d["tokens"], d["max_valence"])

    @classmethod
    def build(cls, mols, elements=DEFAULT_ELEMENTS, max_charge: int = 1) -> "Vocabulary":
        """From RDKit molecules: tokens sorted by frequency, max valence per token."""
        counts, maxval = Counter(), {}
        for mol in mols:
            for a in mol.GetAtoms():
                if a.GetSymbol() not in elements or abs(a.GetFormalCharge()) > max_charge:
                    continue
                tok = atom_token(a)
                counts[tok] += 1
                maxval[tok] = max(maxval.get(tok, 0), a.GetTotalValence())
        tokens = [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        return cls(tokens, [maxval[t] for t in tokens])

    def __repr__(self):
        return f"Vocabulary({dict(zip(self.tokens, self.max_valence))})"


def as_vocabulary(vocab) -> Vocabulary:
    """``vocab`` itself, or the :class:`Vocabulary` of its ``to_dict()`` (a saved model's)."""
    return Vocabulary.from_dict(vocab) if isinstance(vocab, dict) else vocab


def _ranges(ptr: np.ndarray, index: np.ndarray):
    """``(src, counts)``: the flat positions of the slices ``ptr[k]:ptr[k+1]`` for ``k`` in
    ``index``, concatenated in that order, and each slice's length."""
    counts = np.diff(ptr)[index]
    src = concat_ranges(torch.from_numpy(np.ascontiguousarray(ptr[index], np.int64)),
                        torch.from_numpy(np.ascontiguousarray(counts, np.int64)))
    return src.numpy(), counts


class MolDataset:
    """Encoded molecules as flat arrays plus offsets.

    Shapes:
        ``atoms [sum N_i]`` vocabulary indices, ``atom_ptr [M+1]``,
        ``bonds [sum E_i, 3]`` rows ``(i, j, order)`` local to the molecule, ``bond_ptr [M+1]``.
    """

    def __init__(self, smiles, atoms, atom_ptr, bonds, bond_ptr, vocab: Vocabulary, skipped=None):
        self.smiles = list(smiles)
        self.atoms, self.atom_ptr = np.asarray(atoms, np.int64), np.asarray(atom_ptr, np.int64)
        self.bonds, self.bond_ptr = np.asarray(bonds, np.int64).reshape(-1, 3), np.asarray(bond_ptr, np.int64)
        self.vocab = vocab
        self.skipped = dict(skipped or {r: 0 for r in SKIP_REASONS})

    def __len__(self):
        return len(self.smiles)

    @property
    def num_atoms(self) -> np.ndarray:
        return np.diff(self.atom_ptr)

    @property
    def max_atoms(self) -> int:
        return int(self.num_atoms.max()) if len(self) else 0

    def graph(self, k: int):
        """``(tokens, bonds)`` of molecule ``k``."""
        a0, a1 = self.atom_ptr[k], self.atom_ptr[k + 1]
        b0, b1 = self.bond_ptr[k], self.bond_ptr[k + 1]
        return [self.vocab.tokens[t] for t in self.atoms[a0:a1]], self.bonds[b0:b1]

    def batch(self, index, max_atoms: int | None = None) -> dict:
        """Padded dense tensors for molecules ``index``.

        Returns ``atoms [B, N]`` (vocabulary index, ``-1`` = padding), ``adj [B, N, N]``
        (bond order 0..3, symmetric) and ``num_atoms [B]``, with ``N = max_atoms`` or the
        largest molecule in the batch.
        """
        index = np.asarray(index, np.int64)
        # vectorised gather of each molecule's atom and bond slices
        a_src, n_per = _ranges(self.atom_ptr, index)
        b_src, e_per = _ranges(self.bond_ptr, index)
        n = int(max_atoms or (n_per.max() if len(index) else 1))
        atoms = np.full((len(index), n), -1, np.int64)
        adj = np.zeros((len(index), n, n), np.int64)
        a_rows = np.repeat(np.arange(len(index)), n_per)
        atoms[a_rows, a_src - np.repeat(self.atom_ptr[index], n_per)] = self.atoms[a_src]
        b_rows = np.repeat(np.arange(len(index)), e_per)
        b = self.bonds[b_src]
        adj[b_rows, b[:, 0], b[:, 1]] = b[:, 2]
        adj[b_rows, b[:, 1], b[:, 0]] = b[:, 2]
        return {"atoms": torch.from_numpy(atoms), "adj": torch.from_numpy(adj),
                "num_atoms": torch.from_numpy(n_per.copy())}

    def subset(self, index) -> "MolDataset":
        """The molecules ``index`` as a new dataset (same vocabulary and skip counts)."""
        index = np.asarray(index, np.int64)
        a_src, n_per = _ranges(self.atom_ptr, index)
        b_src, e_per = _ranges(self.bond_ptr, index)
        return MolDataset([self.smiles[k] for k in index], self.atoms[a_src],
                          np.concatenate([[0], np.cumsum(n_per)]), self.bonds[b_src],
                          np.concatenate([[0], np.cumsum(e_per)]), self.vocab, self.skipped)

    def save(self, path):
        torch.save({"smiles": self.smiles, "atoms": torch.from_numpy(self.atoms),
                    "atom_ptr": torch.from_numpy(self.atom_ptr), "bonds": torch.from_numpy(self.bonds),
                    "bond_ptr": torch.from_numpy(self.bond_ptr), "vocab": self.vocab.to_dict(),
                    "skipped": self.skipped}, path)

    @classmethod
    def load(cls, path) -> "MolDataset":
        d = torch.load(path, weights_only=True)
        return cls(d["smiles"], d["atoms"].numpy(), d["atom_ptr"].numpy(), d["bonds"].numpy(),
                   d["bond_ptr"].numpy(), Vocabulary.from_dict(d["vocab"]), d["skipped"])


def _iter_clean(lines, skipped: dict, elements=DEFAULT_ELEMENTS, max_charge: int = 1,
                max_atoms: int | None = None):
    """Yield ``(mol, canonical_smiles)`` for each usable line, counting the others in ``skipped``."""
    for line in lines:
        s = line.strip().split()[0] if line and line.strip() else ""
        if not s:
            skipped["empty"] += 1
            continue
        mol = Chem.MolFromSmiles(s)
        if mol is None or mol.GetNumAtoms() == 0:
            skipped["unparsable"] += 1
            continue
        if len(Chem.GetMolFrags(mol)) > 1:
            skipped["multiple_fragments"] += 1
            continue
        if any(a.GetSymbol() not in elements or abs(a.GetFormalCharge()) > max_charge
               for a in mol.GetAtoms()):
            skipped["out_of_vocabulary"] += 1
            continue
        if max_atoms is not None and mol.GetNumAtoms() > max_atoms:
            skipped["too_many_atoms"] += 1
            continue
        yield mol, canonical_smiles(mol)


def clean_smiles(lines, elements=DEFAULT_ELEMENTS, max_charge: int = 1, max_atoms: int | None = None):
    """Parse SMILES lines; return ``(mols, canonical_smiles, skipped_counts)``.

    Skips (and counts) empty lines, unparsable SMILES, multi-fragment SMILES (salts), atoms
    whose element is not in ``elements`` or whose charge exceeds ``max_charge``, and
    molecules with more than ``max_atoms`` heavy atoms.
    """
    skipped = {r: 0 for r in SKIP_REASONS}
    mols, smiles = [], []
    for mol, smi in _iter_clean(lines, skipped, elements, max_charge, max_atoms):
        mols.append(mol)
        smiles.append(smi)
    return mols, smiles, skipped


class _Featurised:
    """Molecules parsed and featurised in one streaming pass, without keeping RDKit molecules
    (MOSES's 1.58 M training SMILES held as molecules exhaust 24 GB; as these compact arrays
    they take a few hundred MB). Tokens carry provisional ids (order of first sight) until
    :meth:`encode` maps them onto a vocabulary."""

    def __init__(self, lines, elements=DEFAULT_ELEMENTS, max_charge: int = 1, max_atoms: int | None = None):
        self.skipped = {r: 0 for r in SKIP_REASONS}
        table: dict = {}
        smiles, toks, atom_ptr = [], array("i"), array("q", [0])
        bonds, bond_ptr, valence = array("b"), array("q", [0]), array("b")
        for mol, smi in _iter_clean(lines, self.skipped, elements, max_charge, max_atoms):
            g = mol_to_graph(mol)
            val = g.num_hs.copy()  # total valence = bond orders + hydrogens (Kekulé form)
            np.add.at(val, g.bonds[:, 0], g.bonds[:, 2])
            np.add.at(val, g.bonds[:, 1], g.bonds[:, 2])
            toks.extend(table.setdefault(t, len(table)) for t in g.tokens)
            valence.extend(val.tolist())
            atom_ptr.append(len(toks))
            bonds.extend(g.bonds.reshape(-1).tolist())
            bond_ptr.append(len(bonds) // 3)
            smiles.append(smi)
        self.names, self.smiles = list(table), smiles
        self.toks = np.frombuffer(toks, np.int32).astype(np.int64)
        self.valence = np.frombuffer(valence, np.int8).astype(np.int64)
        self.atom_ptr = np.frombuffer(atom_ptr, np.int64).copy()
        self.bond_ptr = np.frombuffer(bond_ptr, np.int64).copy()
        self.bonds = np.frombuffer(bonds, np.int8).astype(np.int64).reshape(-1, 3)

    def __len__(self):
        return len(self.smiles)

    def encode(self, index=None, vocab: Vocabulary | None = None, skipped=None) -> MolDataset:
        """The molecules ``index`` (default all) as a :class:`MolDataset`; the vocabulary is
        built from them when not given (tokens by frequency, largest total valence each).
        Molecules with a token outside ``vocab`` or a valence above its bound are skipped as
        ``out_of_vocabulary``."""
        index = np.arange(len(self)) if index is None else np.asarray(index, np.int64)
        a_src, n_per = _ranges(self.atom_ptr, index)
        b_src, e_per = _ranges(self.bond_ptr, index)
        toks, valence, bonds = self.toks[a_src], self.valence[a_src], self.bonds[b_src]
        atom_ptr = np.concatenate([[0], np.cumsum(n_per)]).astype(np.int64)
        bond_ptr = np.concatenate([[0], np.cumsum(e_per)]).astype(np.int64)
        if vocab is None:
            counts = np.bincount(toks, minlength=len(self.names))
            maxval = np.zeros(len(self.names), np.int64)
            np.maximum.at(maxval, toks, valence)
            order = sorted((k for k in range(len(self.names)) if counts[k]), key=lambda k: (-counts[k], self.names[k]))
            vocab = Vocabulary([self.names[k] for k in order], [int(maxval[k]) for k in order])
        remap = np.array([vocab.index.get(t, -1) for t in self.names] or [0], np.int64)
        bound = np.array(vocab.max_valence or [0], np.int64)
        ids = remap[toks] if len(toks) else toks
        heavy = np.zeros(len(toks), np.int64)  # bond-order sum per atom over heavy-atom bonds
        if len(bonds):
            starts = np.repeat(atom_ptr[:-1], e_per)
            np.add.at(heavy, starts + bonds[:, 0], bonds[:, 2])
            np.add.at(heavy, starts + bonds[:, 1], bonds[:, 2])
        bad_atom = (ids < 0) | (heavy > bound[np.clip(ids, 0, None)])
        bad = np.zeros(len(index), bool)
        bad[np.repeat(np.arange(len(index)), n_per)[bad_atom]] = True
        skipped = dict(skipped if skipped is not None else {r: 0 for r in SKIP_REASONS})
        skipped["out_of_vocabulary"] += int(bad.sum())
        ds = MolDataset([self.smiles[k] for k in index], ids, atom_ptr, bonds, bond_ptr, vocab, skipped)
        return ds.subset(np.flatnonzero(~bad)) if bad.any() else ds


def featurise_lines(lines, vocab: Vocabulary | None = None, max_atoms: int | None = None) -> MolDataset:
    """SMILES lines -> :class:`MolDataset` in one streaming pass: the same result as
    ``clean_smiles`` + ``Vocabulary.build`` (when ``vocab`` is None) + ``encode_mols``,
    without holding every RDKit molecule in memory."""
    feats = _Featurised(lines, max_atoms=max_atoms)
    return feats.encode(vocab=vocab, skipped=feats.skipped)


def encode_mols(mols, smiles, vocab: Vocabulary, skipped=None) -> MolDataset:
    """RDKit molecules -> :class:`MolDataset` (molecules with tokens outside ``vocab`` or a
    valence above the vocabulary's bound are skipped as ``out_of_vocabulary``)."""
    skipped = dict(skipped or {r: 0 for r in SKIP_REASONS})
    atoms, atom_ptr, bonds, bond_ptr, kept = [], [0], [], [0], []
    for mol, smi in zip(mols, smiles):
        g = mol_to_graph(mol)
        idx = [vocab.index.get(t, -1) for t in g.tokens]
        if min(idx) < 0:
            skipped["out_of_vocabulary"] += 1
            continue
        val = np.zeros(len(idx), np.int64)
        np.add.at(val, g.bonds[:, 0], g.bonds[:, 2])
        np.add.at(val, g.bonds[:, 1], g.bonds[:, 2])
        if any(v > vocab.max_valence[k] for v, k in zip(val, idx)):
            skipped["out_of_vocabulary"] += 1
            continue
        atoms.extend(idx)
        atom_ptr.append(len(atoms))
        bonds.append(g.bonds)
        bond_ptr.append(bond_ptr[-1] + len(g.bonds))
        kept.append(smi)
    bonds = np.concatenate(bonds, 0) if bonds else np.zeros((0, 3), np.int64)
    return MolDataset(kept, atoms, atom_ptr, bonds, bond_ptr, vocab, skipped)


def load_molecules(name: str, root=None, max_atoms: int | None = None, vocab: Vocabulary | None = None,
                   test_fraction: float = 0.1, seed: int = 0, verbose: bool = True) -> dict:
    """Encoded splits of a benchmark (``qm9``, ``moses``, ``zinc250k``) or a SMILES file path.

    Returns ``{split: MolDataset}``; the vocabulary is built from the training split (or
    given). A user's file is split at random into ``train``/``test`` by ``test_fraction``.
    Raises :class:`DataFormatError` if no molecule of the training split can be used.
    """
    is_file = Path(name).is_file() or name.lower() not in BENCHMARKS
    if is_file:
        path = Path(name)
        files = [path]
        lines = read_smiles_file(path)
        splits = None
    else:
        splits, files = raw_splits(name, root)
    key = fingerprint(files, name if not is_file else str(path.resolve()), max_atoms,
                      vocab.to_dict() if vocab else None, test_fraction, seed, "v1")
    cache = cache_dir("molecules") / f"{Path(name).name.replace('.', '_')}-{key}"
    if (cache / "done").is_file():
        out = {p.stem: MolDataset.load(p) for p in sorted(cache.glob("*.pt"))}
        if verbose:
            _print_skips(out)
        return out
    if is_file:
        feats = _Featurised(lines, max_atoms=max_atoms)
        if not len(feats):
            raise DataFormatError(f"{path}: none of its {len(lines)} lines is a usable SMILES "
                                  f"(skipped: {feats.skipped})")
        rng = np.random.default_rng(seed)
        perm = rng.permutation(len(feats))
        n_test = int(round(test_fraction * len(feats))) if len(feats) > 1 else 0
        out = {"train": feats.encode(perm[n_test:], vocab, feats.skipped)}
        out["test"] = feats.encode(perm[:n_test], out["train"].vocab)
    else:
        out = {"train": featurise_lines(splits["train"], vocab=vocab, max_atoms=max_atoms)}
        if not len(out["train"]):
            raise DataFormatError(f"{name}: no usable SMILES in the training split")
        vocab = out["train"].vocab
        for s, lines in splits.items():
            if s != "train":
                out[s] = featurise_lines(lines, vocab=vocab, max_atoms=max_atoms)
    cache.mkdir(parents=True, exist_ok=True)
    for s, ds in out.items():
        ds.save(cache / f"{s}.pt")
    (cache / "done").write_text("ok\n")
    if verbose:
        _print_skips(out)
    return out


def _print_skips(out: dict):
    for s, ds in out.items():
        skipped = {k: v for k, v in ds.skipped.items() if v}
        if skipped:
            print(f"[molecules] {s}: kept {len(ds)}, skipped {skipped}")


def atom_count_histogram(dataset: MolDataset) -> np.ndarray:
    """Counts of molecules per number of atoms (index = atoms): CatFlow draws sizes from it."""
    return np.bincount(dataset.num_atoms, minlength=dataset.max_atoms + 1)


def round_trip_report(smiles) -> dict:
    """SMILES -> graph -> SMILES over a list, with and without the stored hydrogen counts:
    the counts, the fractions that come back unchanged and every failure (``bench
    mol-roundtrip``). Inputs RDKit cannot parse are listed apart, not counted as failures."""
    import time
    from vgraph.chem.featurize import round_trip
    t0 = time.perf_counter()
    fails = {"with_hs": [], "without_hs": []}
    unparsable = []
    for s in smiles:
        for mode, use_hs in (("with_hs", True), ("without_hs", False)):
            try:
                ok, expected, got = round_trip(s, use_hs=use_hs)
            except ValueError as exc:  # noqa: PERF203
                ok, expected, got = False, None, str(exc)
            if expected is None:
                if mode == "with_hs":
                    unparsable.append(s)
                continue
            if not ok:
                fails[mode].append({"input": s, "expected": expected, "got": got})
    n = max(1, len(smiles) - len(unparsable))
    return {"molecules": len(smiles), "unparsable_input": unparsable,
            **{f"fraction_{m}": 1 - len(f) / n for m, f in fails.items()},
            **{f"failures_{m}": f for m, f in fails.items()},
            "seconds": round(time.perf_counter() - t0, 1)}


def reference_smiles(name: str, root=None, splits=("train", "test")) -> dict:
    """Canonical SMILES of a benchmark's splits (for novelty and the test-set metrics),
    without building graphs; cached as text under ``$VGRAPH_CACHE/molecules``."""
    raw, files = raw_splits(name, root)
    key = fingerprint(files, name.lower(), "canon-v1")
    out = {}
    for split in splits:
        path = cache_dir("molecules") / f"{name.lower()}-{split}-canonical-{key}.smi"
        if path.is_file():
            out[split] = path.read_text().splitlines()
            continue
        canon = [c for c in (canonical_smiles(s) for s in raw[split]) if c]
        tmp = path.with_suffix(".tmp")
        tmp.write_text("\n".join(canon) + "\n")
        tmp.replace(path)
        out[split] = canon
    return out

"""Drugs as atom graphs for structure-based DDI models: atom and bond categories of many
molecules in flat arrays, computed once per list of SMILES and cached.

Each atom is a row of category indices, one per featuriser of :data:`ATOM_FEATURES` (the
registry of :mod:`vgraph.chem.featurize`: element, formal charge, aromaticity, hydrogens,
degree, hybridisation, ring membership); each bond a pair of atom positions *within its
molecule* and the index of :data:`BOND_FEATURE` (single, double, triple, aromatic). Atoms are
in RDKit's order of the parsed SMILES; models built on these arrays pool over atoms, so the
order does not change their output.

:func:`drug_atom_graphs` featurises a list (DrugBank's 1,706 drugs: a few seconds) and caches
the arrays under ``$VGRAPH_CACHE/ddi``; :meth:`AtomGraphs.select` takes some molecules out
(a new drug on its own), :meth:`AtomGraphs.arrays` / :meth:`AtomGraphs.from_arrays` go to and
from plain arrays (what a model file stores). Each molecule also keeps its Morgan bits (the
hashed atom environments of the same atoms), which the atom model may read beside the graph.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from vgraph.errors import DataFormatError
from vgraph.paths import cache_dir

ATOM_FEATURES = ("element", "formal_charge", "aromatic", "num_hs", "degree", "hybridization", "in_ring")
BOND_FEATURE = "bond_type"
_FIELDS = ("atoms", "num_atoms", "bonds", "bond_types", "num_bonds", "fingerprints")


def atom_feature_sizes() -> list[int]:
    """Number of categories of each featuriser of :data:`ATOM_FEATURES`."""
    from vgraph.chem.featurize import ATOM_FEATURIZERS
    return [ATOM_FEATURIZERS[n][1] for n in ATOM_FEATURES]


def num_bond_types() -> int:
    from vgraph.chem.featurize import BOND_FEATURIZERS
    return BOND_FEATURIZERS[BOND_FEATURE][1]


@dataclass
class AtomGraphs:
    """Molecules ``0..D-1`` as flat arrays.

    Shapes:
        ``atoms [A, len(ATOM_FEATURES)]`` uint8 category indices, ``num_atoms [D]``,
        ``bonds [B, 2]`` atom positions within the molecule, ``bond_types [B]`` uint8,
        ``num_bonds [D]``; molecule ``d``'s atoms and bonds follow molecule ``d-1``'s;
        ``fingerprints [D, MORGAN_BITS / 8]`` uint8: each molecule's Morgan bits (radius
        :data:`~vgraph.chem.descriptors.MORGAN_RADIUS`, the ECFP4 of its atoms), packed.
    """
    atoms: np.ndarray
    num_atoms: np.ndarray
    bonds: np.ndarray
    bond_types: np.ndarray
    num_bonds: np.ndarray
    fingerprints: np.ndarray

    def fingerprint_bits(self) -> np.ndarray:
        """``[D, MORGAN_BITS]`` float32 0/1 (unpacked)."""
        from vgraph.chem.descriptors import MORGAN_BITS
        return np.unpackbits(self.fingerprints, axis=1, count=MORGAN_BITS).astype(np.float32)

    def __len__(self) -> int:
        return int(self.num_atoms.size)

    def arrays(self) -> dict:
        """The five arrays by name, in compact dtypes."""
        return {k: getattr(self, k) for k in _FIELDS}

    @classmethod
    def from_arrays(cls, arrays) -> "AtomGraphs":
        """Inverse of :meth:`arrays` (any integer dtypes; e.g. a model file's buffers)."""
        a = {k: np.asarray(arrays[k]) for k in _FIELDS}
        g = cls(a["atoms"].astype(np.uint8).reshape(-1, len(ATOM_FEATURES)),
                a["num_atoms"].astype(np.int64), a["bonds"].astype(np.int32).reshape(-1, 2),
                a["bond_types"].astype(np.uint8), a["num_bonds"].astype(np.int64),
                a["fingerprints"].astype(np.uint8).reshape(len(a["num_atoms"]), -1))
        if g.num_atoms.sum() != len(g.atoms) or g.num_bonds.sum() != len(g.bonds) or len(g.bond_types) != len(g.bonds):
            raise DataFormatError("atom-graph arrays disagree: counts do not add up to the rows")
        return g

    def select(self, index) -> "AtomGraphs":
        """The molecules at ``index`` (a list of positions), in that order."""
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        a_start = np.concatenate([[0], np.cumsum(self.num_atoms)[:-1]]).astype(np.int64)
        b_start = np.concatenate([[0], np.cumsum(self.num_bonds)[:-1]]).astype(np.int64)
        atoms = [self.atoms[a_start[i]:a_start[i] + self.num_atoms[i]] for i in index]
        bonds = [self.bonds[b_start[i]:b_start[i] + self.num_bonds[i]] for i in index]
        types = [self.bond_types[b_start[i]:b_start[i] + self.num_bonds[i]] for i in index]
        k = len(ATOM_FEATURES)
        return AtomGraphs(np.concatenate(atoms) if atoms else np.zeros((0, k), np.uint8),
                          self.num_atoms[index].copy(),
                          np.concatenate(bonds) if bonds else np.zeros((0, 2), np.int32),
                          np.concatenate(types) if types else np.zeros(0, np.uint8),
                          self.num_bonds[index].copy(), self.fingerprints[index].copy())


def mol_atom_graph(mol) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One RDKit molecule -> ``(atoms [n, K] uint8, bonds [b, 2] int32, bond_types [b] uint8)``."""
    from vgraph.chem.featurize import ATOM_FEATURIZERS, BOND_FEATURIZERS
    fns = [ATOM_FEATURIZERS[n][0] for n in ATOM_FEATURES]
    atoms = np.array([[fn(a) for fn in fns] for a in mol.GetAtoms()], dtype=np.uint8).reshape(-1, len(fns))
    bond_fn = BOND_FEATURIZERS[BOND_FEATURE][0]
    bonds = np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()],
                     dtype=np.int32).reshape(-1, 2)
    types = np.array([bond_fn(b) for b in mol.GetBonds()], dtype=np.uint8)
    return atoms, bonds, types


def drug_atom_graphs(smiles_list, use_cache: bool = True, progress: bool = False, say=None) -> AtomGraphs:
    """Atom graphs of a list of SMILES (row ``d`` = ``smiles_list[d]``).

    Raises :class:`DataFormatError` naming the first SMILES RDKit cannot parse. With
    ``use_cache`` the arrays are kept under ``$VGRAPH_CACHE/ddi`` (keyed by the SMILES and the
    featuriser names); a run that computes them says so through ``say`` and, with
    ``progress``, shows a bar.
    """
    from vgraph.chem.descriptors import MORGAN_BITS, MORGAN_RADIUS, _morgan, parse_smiles
    smiles_list = list(smiles_list)
    spec = "|".join(ATOM_FEATURES) + f"|{BOND_FEATURE}|{atom_feature_sizes()}|{MORGAN_RADIUS}|{MORGAN_BITS}"
    key = hashlib.sha256(("\n".join(smiles_list) + spec).encode()).hexdigest()[:16]
    path = cache_dir("ddi") / f"atoms_{key}.npz" if use_cache else None
    if path is not None and path.is_file():
        with np.load(path) as z:
            return AtomGraphs.from_arrays(z)
    if say is not None:
        where = f"; cached in {path.parent} for later runs" if path is not None else ""
        say(f"featurising {len(smiles_list)} drugs as atom graphs{where}")
    from tqdm.auto import tqdm
    atoms, bonds, types, na, nb, fps = [], [], [], [], [], []
    for i, s in enumerate(tqdm(smiles_list, desc="atom graphs", unit="drug", disable=not progress, leave=False)):
        mol = parse_smiles(s)
        if mol is None:
            raise DataFormatError(f"SMILES #{i} ({str(s)[:60]!r}) cannot be parsed by RDKit")
        a, b, t = mol_atom_graph(mol)
        atoms.append(a), bonds.append(b), types.append(t), na.append(len(a)), nb.append(len(b))
        fps.append(np.packbits(_morgan(mol).astype(np.uint8)))
    k = len(ATOM_FEATURES)
    graphs = AtomGraphs(np.concatenate(atoms) if atoms else np.zeros((0, k), np.uint8),
                        np.array(na, dtype=np.int64),
                        np.concatenate(bonds) if bonds else np.zeros((0, 2), np.int32),
                        np.concatenate(types) if types else np.zeros(0, np.uint8),
                        np.array(nb, dtype=np.int64),
                        np.stack(fps) if fps else np.zeros((0, MORGAN_BITS // 8), np.uint8))
    if path is not None:
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **graphs.arrays())
        tmp.replace(path)
    return graphs

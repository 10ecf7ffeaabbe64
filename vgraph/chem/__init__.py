"""vgraph.chem — molecules: SMILES <-> graph featurisation and molecule datasets."""
from vgraph.chem.featurize import (ATOM_FEATURIZERS, BOND_FEATURIZERS, MolGraph, atom_features, atom_token,
                                   bond_features, canonical_smiles, featurize, graph_to_mol, graph_to_smiles,
                                   mol_to_graph, register_atom_featurizer, register_bond_featurizer,
                                   round_trip, smiles_to_graph)
from vgraph.chem.datasets import (MolDataset, Vocabulary, atom_count_histogram, clean_smiles, encode_mols,
                                  load_molecules)

__all__ = ["ATOM_FEATURIZERS", "BOND_FEATURIZERS", "MolGraph", "atom_features", "atom_token", "bond_features",
           "canonical_smiles", "featurize", "graph_to_mol", "graph_to_smiles", "mol_to_graph",
           "register_atom_featurizer", "register_bond_featurizer", "round_trip", "smiles_to_graph",
           "MolDataset", "Vocabulary", "atom_count_histogram", "clean_smiles", "encode_mols", "load_molecules"]

"""Molecule datasets: bad input is skipped and counted, caching, batching, QM9's split."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import dataset_path
from vgraph.chem import clean_smiles, load_molecules
from vgraph.data.molecules import raw_splits
from vgraph.errors import DataFormatError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

GOOD = ["CCO", "c1ccccc1", "CC(=O)O", "CCN", "C1CC1", "OCCO", "CC#N", "NC(=O)N", "c1ccncc1", "CCOC"]
BAD = ["", "   ", "C1CC", "not_a_smiles", "CC[O-].[Na+]", "CCO.O", "C[Fe]C", "CC[Xe]"]


pytestmark = pytest.mark.usefixtures("one_thread")


def test_clean_smiles_counts_every_reason():
    mols, smiles, skipped = clean_smiles(GOOD + BAD + ["C" * 12], max_atoms=10)
    assert len(mols) == len(GOOD)
    assert skipped == {"empty": 2, "unparsable": 2, "multiple_fragments": 2, "out_of_vocabulary": 2,
                       "too_many_atoms": 1}


def test_user_file_is_cached_and_batched(tmp_path):
    path = tmp_path / "mine.smi"
    path.write_text("\n".join(GOOD * 3 + BAD) + "\n")
    data = load_molecules(str(path), test_fraction=0.2, verbose=False)
    assert len(data["train"]) + len(data["test"]) == 30
    assert data["train"].skipped["unparsable"] == 2 and data["train"].skipped["empty"] == 2
    again = load_molecules(str(path), test_fraction=0.2, verbose=False)  # from $VGRAPH_CACHE
    assert again["train"].smiles == data["train"].smiles
    b = data["train"].batch([0, 1, 2])
    n = b["atoms"].size(1)
    assert b["adj"].shape == (3, n, n) and torch.equal(b["adj"], b["adj"].transpose(1, 2))
    assert ((b["atoms"] >= 0).sum(1) == b["num_atoms"]).all()
    sub = data["train"].subset([2, 0])
    assert sub.smiles == [data["train"].smiles[2], data["train"].smiles[0]]
    m = data["train"].max_atoms
    for key in ("atoms", "adj"):
        assert torch.equal(sub.batch([1], m)[key], data["train"].batch([0], m)[key])


def test_file_with_nothing_usable_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.smi"
    path.write_text("\n".join(BAD) + "\n")
    with pytest.raises(DataFormatError, match="none of its 8 lines"):
        load_molecules(str(path), verbose=False)


def test_train_script_on_a_dirty_file(tmp_path, capsys):
    import train_molgen
    path = tmp_path / "train.smi"
    path.write_text("\n".join(GOOD * 4 + BAD) + "\n")
    summary = train_molgen.main(["--dataset", str(path), "--model", "molvae", "--max-steps", "3",
                                 "--batch-size", "8", "--hidden", "16", "--latent", "4", "--layers", "1",
                                 "--num-samples", "20", "--no-fcd", "--no-progress", "--threads", "1", "--out", str(tmp_path / "run")])
    printed = capsys.readouterr().out
    assert "skipped" in printed and "unparsable" in printed
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["skipped"]["train"]["multiple_fragments"] == 2
    assert summary["metrics"]["validity"] == 1.0
    assert (tmp_path / "run" / "model.pt").is_file() and (tmp_path / "run" / "diagnostics.jsonl").read_text()


def test_generate_script_with_shipped_checkpoint(tmp_path):
    import generate_molecules
    out = tmp_path / "gen"
    summary = generate_molecules.main(["--num-samples", "40", "--reference", "none", "--no-fcd",
                                       "--threads", "1", "--out", str(out)])
    assert {"samples.smi", "summary.json", "grid.png"} <= {p.name for p in out.iterdir()}
    assert len((out / "samples.smi").read_text().splitlines()) == 40
    assert summary["metrics"]["validity"] == 1.0


def test_qm9_standard_split():
    dataset_path("molecules", "qm9.csv.gz")
    splits, _ = raw_splits("qm9")
    assert len(splits["train"]) == 120803 and len(splits["test"]) == 13082
    # 1-based indices: "000001" would be row 0 ("C"); test rows are int(s) - 1
    idx = json.loads(dataset_path("molecules", "valid_idx_qm9.json").read_text())["valid_idxs"]
    import pandas as pd
    all_smiles = pd.read_csv(dataset_path("molecules", "qm9.csv.gz"))["smiles"].tolist()
    assert splits["test"][0] == all_smiles[min(int(s) for s in idx) - 1]


def test_zinc250k_layout_with_its_0_based_indices(tmp_path):
    # a stand-in for chemical_vae's CSV (the real one is not in the shared data): same columns
    mol_dir = tmp_path / "molecules"
    mol_dir.mkdir()
    body = "".join(f'"{s}\n",0.0,0.0,0.0\n' for s in GOOD)  # ZINC's SMILES end in a newline
    (mol_dir / "250k_rndm_zinc_drugs_clean_3.csv").write_text("smiles,logP,qed,SAS\n" + body)
    (mol_dir / "valid_idx_zinc250k.json").write_text(json.dumps([1, 4]))
    splits, _ = raw_splits("zinc250k", root=tmp_path)
    assert splits["test"] == [GOOD[1], GOOD[4]]
    assert len(splits["train"]) == len(GOOD) - 2


def test_streaming_featuriser_equals_molecule_pipeline():
    """load_molecules featurises without keeping RDKit molecules; it must give exactly what
    clean_smiles + Vocabulary.build + encode_mols give, skip counts included."""
    from vgraph.chem import Vocabulary, encode_mols
    from vgraph.chem.datasets import featurise_lines
    lines = GOOD + BAD + ["O=[N+]([O-])c1ccccc1", "C[Si](C)C", "CC(=O)[O-]", "C#N", "c1ccncc1"]
    mols, smis, skipped = clean_smiles(lines)
    for vocab in (None, Vocabulary.build(mols[:2])):
        ref = encode_mols(mols, smis, vocab or Vocabulary.build(mols), skipped)
        got = featurise_lines(lines, vocab=vocab)
        assert got.vocab.to_dict() == ref.vocab.to_dict()
        assert got.smiles == ref.smiles and got.skipped == ref.skipped
        for field in ("atoms", "atom_ptr", "bonds", "bond_ptr"):
            np.testing.assert_array_equal(getattr(got, field), getattr(ref, field))
    assert ref.skipped["out_of_vocabulary"] > 0  # the small vocabulary did reject molecules

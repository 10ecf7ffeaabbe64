"""MOSES-style molecule metrics against values computed by hand (RDKit primitives only)."""
import math

import numpy as np
import pytest
from rdkit import Chem, DataStructs
from rdkit.Chem import Crippen, Descriptors, rdFingerprintGenerator

from vgraph.metrics.molecules import (ReferenceSet, cos_similarity, evaluate_molecules, fragments,
                                      passes_filters, sa_score, scaffold)

MORGAN = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)


pytestmark = pytest.mark.usefixtures("one_thread")


def tanimoto(a, b):
    fa, fb = (MORGAN.GetFingerprint(Chem.MolFromSmiles(s)) for s in (a, b))
    return DataStructs.TanimotoSimilarity(fa, fb)


def test_validity_uniqueness_novelty():
    gen = ["CCO", "C1CC", "", "c1ccccc1", "OCC", "not a smiles"]
    m = evaluate_molecules(gen, train=["OCC"], k=(2, 10), fcd=False)
    assert m["validity"] == pytest.approx(3 / 6)            # CCO, c1ccccc1, OCC(=CCO)
    assert m["unique@2"] == 1.0                              # first two valid: CCO, c1ccccc1
    assert m["unique@10"] == pytest.approx(2 / 3)            # all three valid, two distinct
    assert m["uniqueness"] == pytest.approx(2 / 3)
    assert m["novelty"] == pytest.approx(1 / 2)              # {CCO, benzene} - train {CCO}
    assert any("unique@10" in n for n in m["notes"])


def test_connected_validity():
    m = evaluate_molecules(["CCO", "C.C", "CC"], fcd=False)
    assert m["validity"] == 1.0 and m["validity_connected"] == pytest.approx(2 / 3)


def test_internal_diversity_by_hand():
    a, b = "CCO", "c1ccccc1O"
    t = tanimoto(a, b)
    m = evaluate_molecules([a, b], fcd=False)
    # MOSES: 1 - mean_i (mean_j T_ij^p)^(1/p), self-pairs included
    assert m["IntDiv1"] == pytest.approx(1 - (1 + t) / 2)
    assert m["IntDiv2"] == pytest.approx(1 - math.sqrt((1 + t * t) / 2))
    same = evaluate_molecules([a, a], fcd=False)
    assert same["IntDiv1"] == pytest.approx(0.0) and same["IntDiv2"] == pytest.approx(0.0)


def test_snn_by_hand(tmp_path):
    test = ["CCO", "c1ccccc1O", "CCN"]
    gen = ["CCO", "c1ccccc1N"]
    expected = np.mean([max(tanimoto(g, r) for r in test) for g in gen])
    m = evaluate_molecules(gen, test=test, fcd=False)
    assert m["SNN/Test"] == pytest.approx(expected)
    assert evaluate_molecules(test, test=test, fcd=False)["SNN/Test"] == pytest.approx(1.0)


def test_frag_and_scaf_by_hand():
    assert fragments(Chem.MolFromSmiles("CCO")) == ["CCO"]  # no BRICS bond to break
    m = evaluate_molecules(["CCO", "CCN"], test=["CCO"], fcd=False)
    assert m["Frag/Test"] == pytest.approx(1 / math.sqrt(2))  # counts (1, 1) vs (1, 0)
    assert scaffold(Chem.MolFromSmiles("Cc1ccc2ccccc2c1")) == "c1ccc2ccccc2c1"
    assert scaffold(Chem.MolFromSmiles("Cc1ccccc1")) is None  # one ring: MOSES drops it
    m = evaluate_molecules(["Cc1ccc2ccccc2c1"], test=["c1ccc2ccccc2c1", "c1ccccc1"], fcd=False)
    assert m["Scaf/Test"] == pytest.approx(1.0)
    assert evaluate_molecules(["CCO"], test=["CCO"], fcd=False)["Scaf/Test"] is None
    from collections import Counter
    assert cos_similarity(Counter(a=3, b=4), Counter(a=4, b=3)) == pytest.approx(24 / 25)


def test_filters_by_hand():
    cases = {"CCO": True, "CC=O": False,  # aldehyde: MCF7
             "C[N+](C)(C)C": False,       # charged
             "CCP": False,                # P not allowed
             "C1CCCCCCC1": False,         # 8-membered ring
             "O=C(O)c1ccccc1": True}
    for smi, ok in cases.items():
        assert passes_filters(Chem.MolFromSmiles(smi)) is ok, smi
    m = evaluate_molecules(list(cases), fcd=False)
    assert m["Filters"] == pytest.approx(2 / 6)


def test_properties_by_hand():
    gen = ["CCO", "c1ccccc1"]
    mols = [Chem.MolFromSmiles(s) for s in gen]
    m = evaluate_molecules(gen, test=["CCO"], fcd=False)
    assert m["weight_mean"] == pytest.approx((46.069 + 78.114) / 2, abs=1e-2)
    assert m["logP_mean"] == pytest.approx(np.mean([Crippen.MolLogP(x) for x in mols]))
    assert m["weight_wasserstein"] == pytest.approx(abs(Descriptors.MolWt(mols[1]) - Descriptors.MolWt(mols[0])) / 2)
    assert 1.0 <= sa_score(mols[0]) <= 10.0
    assert m["SA_mean"] == pytest.approx(np.mean([sa_score(x) for x in mols]))
    assert 0 < m["QED_mean"] < 1


def test_reference_set_cache_gives_same_numbers():
    test = ["CCO", "c1ccccc1O", "CCN", "Cc1ccc2ccccc2c1"]
    a = evaluate_molecules(["CCO", "CCC"], test=test, fcd=False)
    ref = ReferenceSet(test, fcd=False)  # now read from the cache
    b = evaluate_molecules(["CCO", "CCC"], reference=ref, fcd=False)
    for key in ("SNN/Test", "Frag/Test", "logP_wasserstein"):
        assert a[key] == pytest.approx(b[key])


def test_fcd_identical_sets_is_zero():
    smiles = ["CCO", "c1ccccc1O", "CCN", "CC(=O)O", "CCCC", "c1ccncc1", "OCCO", "CC#N"]
    m = evaluate_molecules(smiles, test=smiles)
    assert m["FCD/Test"] == pytest.approx(0.0, abs=1e-2)
    far = evaluate_molecules(["CCCCCCCC", "CCCCCCC", "CCCCCC", "CCCCCCCCC"], test=smiles)
    assert far["FCD/Test"] > 1.0


def test_shipped_reference_stats_are_read_and_equal_computed(tmp_path, monkeypatch):
    """Statistics shipped in the package (FCD moments, property arrays) replace the slow
    computation only for the reference list they were written for, and equal what it gives."""
    import vgraph.metrics.molecules as mm
    test = ["CCO", "c1ccccc1O", "CCN", "Cc1ccc2ccccc2c1", "OCCO"]
    fake = {"mu": np.arange(3.0), "sigma": np.eye(3)}
    monkeypatch.setattr(mm, "_fcd_precalc", lambda smiles: {k: v.copy() for k, v in fake.items()})
    monkeypatch.setattr(mm, "SHIPPED_STATS", tmp_path / "refstats")
    monkeypatch.setenv("VGRAPH_CACHE", str(tmp_path / "cache"))
    path = mm.write_shipped_stats(test, name="Toy")
    assert path.parent == tmp_path / "refstats"
    # by name, without the reference list (a fresh install without the dataset's files)
    by_name = ReferenceSet.shipped("toy")
    np.testing.assert_array_equal(by_name.fcd_stats["mu"], fake["mu"])
    assert by_name.fps is None and ReferenceSet.shipped("other") is None
    m = evaluate_molecules(["CCO", "CCN"], reference=by_name, fcd=False)
    assert m["SNN/Test"] is None and m["logP_wasserstein"] >= 0
    computed = ReferenceSet(test, fcd=True, cache=False)
    # from here on, the slow parts would be different if recomputed: they must be read
    monkeypatch.setattr(mm, "_fcd_precalc", lambda smiles: {"mu": np.zeros(3), "sigma": np.zeros((3, 3))})
    monkeypatch.setattr(mm, "properties", lambda mols: {k: np.zeros(len(mols)) for k in mm.PROPERTIES})
    shipped = ReferenceSet(test, fcd=True, cache=False)
    np.testing.assert_array_equal(shipped.fcd_stats["mu"], fake["mu"])
    for k in mm.PROPERTIES:
        np.testing.assert_array_equal(shipped.props[k], computed.props[k])
    assert computed.props["weight"][0] == pytest.approx(Descriptors.MolWt(Chem.MolFromSmiles("CCO")))
    other = ReferenceSet(test[:-1], fcd=True, cache=False)  # another list: nothing shipped for it
    np.testing.assert_array_equal(other.fcd_stats["mu"], np.zeros(3))


def test_fcd_moments_are_streamed_in_chunks_and_equal_the_full_computation(monkeypatch):
    """The ChemNet mean/covariance are accumulated chunk by chunk (flat memory on MOSES's
    176k test SMILES); they must equal numpy's mean and covariance of all activations."""
    import vgraph.metrics.molecules as mm
    rng = np.random.default_rng(0)
    table = {}

    class FakeChemNet:  # one fixed activation row per SMILES, offset to test the shift
        calls = []

        def get_predictions(self, smiles):
            self.calls.append(len(smiles))
            return np.stack([table.setdefault(s, 50.0 + rng.normal(size=6)) for s in smiles])

    fake = FakeChemNet()
    monkeypatch.setattr(mm, "_fcd_model", lambda: fake)
    smiles = [f"C{'C' * i}O" for i in range(11)]
    stats = mm._fcd_precalc(smiles, chunk=4)
    assert fake.calls == [4, 4, 3]
    acts = np.stack([table[s] for s in smiles])
    np.testing.assert_allclose(stats["mu"], acts.mean(0), rtol=0, atol=1e-10)
    np.testing.assert_allclose(stats["sigma"], np.cov(acts.T), rtol=0, atol=1e-10)
    assert mm._fcd_precalc(smiles[:1]) is None

"""DrugBank DDI: folds, type-aware negatives, aligned features, the context model."""
from __future__ import annotations

import pytest
import torch

from ddi_fixtures import SMILES, write_drugbank
from vgraph.chem.descriptors import DrugFeaturizer
from vgraph.data.drugbank import cold_split, corrupt, ddi_graph, known_pairs, load_drugbank, pair_keys, warm_split
from vgraph.metrics.classification import binary_metrics
from vgraph.models.ddi import ContextDDIModel
from vgraph.tasks.drugbank import DrugBankTask
from vgraph.errors import DataFormatError


@pytest.fixture
def data(tmp_path):
    write_drugbank(tmp_path)
    return load_drugbank(tmp_path)


def test_registry_loads_drugbank(tmp_path):
    from vgraph.data.registry import load
    write_drugbank(tmp_path)
    assert load("drugbank", tmp_path).drug_ids == list(SMILES)


def test_load_and_splits(data):
    assert data.drug_ids == list(SMILES) and data.num_drugs == 8
    assert data.descriptions[2].startswith("The risk of bleeding")
    warm = warm_split(data, seed=0)
    total = warm.train.size(0) + sum(v[0].size(0) for v in warm.eval.values())
    assert total == data.tuples.size(0)
    known = known_pairs(data.tuples, data.num_drugs)
    for pos, neg in warm.eval.values():
        assert torch.equal(pos[:, 2], neg[:, 2])  # type-aware: the type is kept
        assert not torch.isin(pair_keys(neg[:, 0], neg[:, 1], 8), known).any()
        changed = (pos[:, :2] != neg[:, :2]).sum(1)
        assert (changed == 1).all()  # exactly the head or the tail replaced
    cold = cold_split(data, 0)
    train_drugs = set(cold.train_drugs.tolist())
    s1 = cold.eval["s1"][0]
    assert not any(int(d) in train_drugs for d in s1[:, :2].flatten())
    neg = cold.eval["s2"][1]  # file negatives: "$h" replaces the head, "$t" the tail
    assert ((neg[:, 0] != cold.eval["s2"][0][:, 0]) | (neg[:, 1] != cold.eval["s2"][0][:, 1])).all()


def test_unknown_drug_in_tuples_is_reported(tmp_path):
    base = write_drugbank(tmp_path)
    import gzip
    with gzip.open(base / "cold_start" / "fold0" / "val.csv.gz", "at") as fh:
        fh.write("DB99999,DB00001,0,DB00002$h,\n")
    with pytest.raises(DataFormatError, match="DB99999"):
        load_drugbank(tmp_path)


def test_feature_rows_align_with_drug_ids(data):
    feat = DrugFeaturizer().fit(data.smiles)
    x = feat.transform(data.smiles)
    for i in (0, 5):
        assert torch.equal(x[i], feat.transform([data.smiles[i]])[0])
    assert not torch.equal(x[0], x[1])
    state = DrugFeaturizer.from_state(feat.state_dict())
    assert torch.allclose(state.transform(["CCO"]), x[:1])


def test_context_model_uses_both_branches_and_scores_isolated_drugs(data):
    torch.manual_seed(0)
    split = warm_split(data, 0)
    feat = DrugFeaturizer().fit(data.smiles)
    x = feat.transform(data.smiles)
    model = ContextDDIModel(x.size(1), hidden=16, latent=8, num_types=3, dropout=0.0).eval()
    g = ddi_graph(split.train, 8)
    mu, _ = model.posterior(x, g)
    # the molecular branch matters for a drug that has graph neighbours ...
    x2 = x.clone()
    x2[0, :] = 0
    mu2, _ = model.posterior(x2, g)
    assert not torch.allclose(mu[0], mu2[0])
    # ... and a new drug (extra isolated node) gets a latent from its structure alone
    x3 = torch.cat([x, feat.transform(["CCCCO"])])
    e = g.edge_index
    from vgraph.ops import SparseGraph
    mu3, _ = model.posterior(x3, SparseGraph(e, 9))
    assert torch.allclose(mu3[:8], mu, atol=1e-5) and torch.isfinite(mu3[8]).all()
    logits = model.decode(mu3, torch.tensor([[8], [0]]))
    assert logits.shape == (1, 3)


def test_task_trains_and_reports_binary_metrics(data):
    torch.manual_seed(0)
    split = warm_split(data, 0)
    x = DrugFeaturizer().fit(data.smiles).transform(data.smiles)
    task = DrugBankTask(split, x, batch_size=8, isolate=0.2, seed=0)
    model = ContextDDIModel(x.size(1), hidden=16, latent=8, num_types=3, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for epoch in range(3):
        model.train()
        for batch in task.training_batches(epoch):
            opt.zero_grad()
            task.batch_loss(model, batch, epoch).backward()
            opt.step()
    m = task.evaluate(model)
    assert {"val_acc", "val_auroc", "val_auprc", "val_f1", "test_auroc"} <= set(m)
    assert all(0 <= v <= 1 for v in m.values())


def test_binary_metrics_hand_checked():
    m = binary_metrics([0.9, 0.8, 0.4], [0.1, 0.6, 0.2])
    assert m["acc"] == pytest.approx(4 / 6)
    assert m["auroc"] == pytest.approx(8 / 9)
    assert m["f1"] == pytest.approx(2 / 3)


def test_corrupt_respects_candidates():
    pos = torch.tensor([[0, 1, 0], [2, 3, 1]])
    g = torch.Generator().manual_seed(0)
    neg = corrupt(pos, 6, known_pairs(pos, 6), g, candidates=torch.tensor([4, 5]))
    assert set(neg[:, :2].flatten().tolist()) & {4, 5}


def test_dsn_ddi_negatives_follow_its_rules():
    from vgraph.data.drugbank import dsn_ddi_negatives
    n = 12
    # type 0: drug 0 is the head of 9 tails (many tails per head: its head is replaced most often);
    # type 1: 9 heads share tail 11 (many heads per tail: the tail is replaced most often)
    everything = torch.tensor([[0, t, 0] for t in range(1, 10)] + [[h, 11, 1] for h in range(1, 10)])
    pos = everything.clone()
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    neg = dsn_ddi_negatives(pos, everything, n, g1)
    assert torch.equal(neg, dsn_ddi_negatives(pos, everything, n, g2))  # seeded
    changed_head, changed_tail = neg[:, 0] != pos[:, 0], neg[:, 1] != pos[:, 1]
    assert (changed_head ^ changed_tail).all() and torch.equal(neg[:, 2], pos[:, 2])
    pool = set(pos[:, :2].flatten().tolist())
    assert set(neg[:, :2].flatten().tolist()) <= pool  # drugs of the set itself
    true = {tuple(r) for r in everything.tolist()}
    assert not any(tuple(r) in true for r in neg.tolist()) and (neg[:, 0] != neg[:, 1]).all()
    # the bern rule over many draws: type 0 mostly replaces heads, type 1 mostly tails
    many = pos.repeat(200, 1)
    neg = dsn_ddi_negatives(many, everything, n, torch.Generator().manual_seed(0))
    head = neg[:, 0] != many[:, 0]
    assert head[many[:, 2] == 0].float().mean() > 0.85 and head[many[:, 2] == 1].float().mean() < 0.15

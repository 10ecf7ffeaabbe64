"""ogbl-ddi: the loader reads legacy split files without loosening torch.load globally;
the link predictor and task train and evaluate with the official evaluator."""
from __future__ import annotations


import numpy as np
import pytest
import torch

from ddi_fixtures import write_ogbl
from vgraph.data.ogbl_ddi import load_ogbl_ddi, read_split_file
from vgraph.models.ddi import EmbeddingLinkPredictor
from vgraph.tasks.ogbl_ddi import OgblDDITask
from vgraph.errors import DataFormatError, MissingDataError
from vgraph.ops import sddmm


def _numpy_allowed():
    """NumPy globals allowed process-wide for weights_only loads (must stay none)."""
    return [g for g in torch.serialization.get_safe_globals() if "numpy" in repr(g) or "_codecs" in repr(g)]


def test_loader_reads_legacy_split_and_writes_nothing(tmp_path):
    base = write_ogbl(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert _numpy_allowed() == []
    data = load_ogbl_ddi(tmp_path)
    assert data.num_nodes == 40 and data.train_edge.dtype == torch.long
    assert data.train_edge.size(1) == 2 and data.valid_edge_neg.size(0) == 60
    assert data.message_passing_edge_index.size(1) == 2 * data.train_edge.size(0)
    assert data.node_drug_ids[:2] == ["DB00001", "DB00002"]
    # nothing written into the data root (ogb would create processed/), nothing allowed globally
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert _numpy_allowed() == []
    # and torch.load outside the loader still refuses these files
    with pytest.raises(Exception):
        torch.load(base / "split" / "target" / "valid.pt", weights_only=True)


class Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_split_file_with_foreign_globals_is_refused(tmp_path, capsys):
    path = tmp_path / "train.pt"
    torch.save({"edge": np.zeros((2, 2), np.int64), "x": Evil()}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(DataFormatError, match="cannot read ogbl-ddi split file"):
        read_split_file(path)
    assert "code ran" not in capsys.readouterr().out


def test_missing_dataset_names_the_folder(tmp_path):
    with pytest.raises(MissingDataError, match="ogbl_ddi"):
        load_ogbl_ddi(tmp_path)


def test_dot_decoder_is_the_inner_product_of_the_pair():
    torch.manual_seed(0)
    model = EmbeddingLinkPredictor(12, 8, 8, 1, "sage", 0.0, "dot")
    z = torch.randn(12, 8, requires_grad=True)
    pairs = torch.randint(0, 12, (2, 30))
    ref = (z[pairs[0]] * z[pairs[1]]).sum(1)
    out = model.decode(z, pairs)
    assert torch.allclose(out, ref, atol=1e-5)
    g1, = torch.autograd.grad((out * torch.arange(30.)).sum(), z)
    g2, = torch.autograd.grad((ref * torch.arange(30.)).sum(), z)
    assert torch.allclose(g1, g2, atol=1e-4)
    assert torch.allclose(sddmm(z, z, pairs, method="gather"), ref, atol=1e-5)


def test_registry_loads_ogbl_ddi(tmp_path):
    from vgraph.data.registry import load
    write_ogbl(tmp_path)
    assert load("ogbl-ddi", tmp_path).num_nodes == 40


@pytest.mark.parametrize("conv,decoder,variational", [("sage", "dot", False), ("gcn", "mlp", True)])
def test_link_predictor_learns_two_communities(tmp_path, conv, decoder, variational):
    write_ogbl(tmp_path)
    data = load_ogbl_ddi(tmp_path)
    torch.manual_seed(0)
    task = OgblDDITask(data, batch_size=128, num_neg=1, seed=0)
    model = EmbeddingLinkPredictor(data.num_nodes, 16, 16, 2, conv, 0.0, decoder, variational=variational)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for epoch in range(15):
        model.train()
        for batch in task.training_batches(epoch):
            opt.zero_grad()
            loss = task.batch_loss(model, batch, epoch)
            loss.backward()
            opt.step()
    neg = task.sample_negatives(500)
    taken = task.taken.view(data.num_nodes, data.num_nodes)
    assert not taken[neg[0], neg[1]].any()  # negatives are never training edges or self-pairs
    metrics = task.evaluate(model)
    assert set(metrics) == {f"{s}_hits@{k}" for s in ("val", "test") for k in (10, 20, 30)}
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    assert metrics["val_hits@20"] > 0.5

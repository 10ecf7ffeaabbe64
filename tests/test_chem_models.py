"""MolVAE and CatFlow: valence-valid decoding, a tiny training run lowers the loss, save/load."""
import numpy as np
import pytest
import torch
from rdkit import Chem

from vgraph.chem import atom_count_histogram, clean_smiles, encode_mols, graph_to_mol, Vocabulary
from vgraph.nn import KLConfig
from vgraph.tasks.molgen import (PRETRAINED_QM9, MolGenTask, build_generator, load_generator, sample_smiles,
                                 save_generator)

SMILES = ["CCO", "CC(=O)O", "c1ccccc1", "CC#N", "C1CC1", "OCC(O)CO", "CC(C)N", "C=CC=O", "NC(=O)N",
          "C[N+](=O)[O-]", "c1ccoc1", "CC(F)(F)F", "OC1CCOC1", "CN1C=CN=C1", "CCOC(=O)C", "C#CCO",
          "[NH3+]CC([O-])=O", "O=C1CCC(=O)N1", "CC1=CC(=O)C=CC1=O", "COC1=NC=CN1"] * 4


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data():
    mols, smis, skipped = clean_smiles(SMILES)
    vocab = Vocabulary.build(mols)
    return encode_mols(mols, smis, vocab, skipped)


def _valences_ok(tokens, bonds, vocab):
    val = np.zeros(len(tokens), int)
    for i, j, k in bonds:
        val[i] += k
        val[j] += k
    return all(v <= vocab.max_valence[vocab.index[t]] for v, t in zip(val, tokens))


@pytest.mark.parametrize("seed", [0, 1])
def test_molvae_decoding_is_always_valid(data, seed):
    torch.manual_seed(seed)
    model = build_generator("molvae", data.vocab, max_atoms=12, hidden=32, latent=8, num_layers=2)
    z = torch.randn(200, 8) * 3  # untrained weights, wide latents: the harshest case
    for tokens, bonds in model.decode(z, generator=torch.Generator().manual_seed(seed)):
        mol = graph_to_mol(tokens, bonds)
        assert mol is not None, (tokens, bonds)
        assert len(Chem.GetMolFrags(mol)) == 1
        assert _valences_ok(tokens, bonds, data.vocab)
    for tokens, bonds in model.decode(z[:50], greedy=True):
        assert graph_to_mol(tokens, bonds) is not None


def _train(model, data, steps=40, lr=3e-3):
    task = MolGenTask(data, batch_size=16, seed=0, eval_size=40)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    torch.manual_seed(0)
    losses = []
    for step in range(steps):
        opt.zero_grad()
        loss = task.training_loss(model, step)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return task, losses


def test_molvae_tiny_training_lowers_loss_and_logs_diagnostics(data):
    torch.manual_seed(0)
    model = build_generator("molvae", data.vocab, data.max_atoms, kl=KLConfig(norm="node", free_bits=0.05),
                            hidden=32, latent=8, num_layers=2)
    records = []
    task, losses = _train(model, data)
    task.log_fn = records.append
    ev = task.evaluate(model)
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    assert {"val_loss", "val_kl", "active_units"} <= set(ev)
    assert len(records[0]["kl_per_dim"]) == 8


def test_catflow_tiny_training_lowers_loss_and_samples(data):
    torch.manual_seed(0)
    model = build_generator("catflow", data.vocab, data.max_atoms, atom_counts=atom_count_histogram(data),
                            hidden=32, num_layers=2)
    task, losses = _train(model, data)
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    gen = torch.Generator().manual_seed(0)
    graphs = model.sample_graphs(30, steps=5, generator=gen)
    assert len(graphs) == 30
    sizes = [len(t) for t, _ in graphs]
    assert min(sizes) >= 1 and max(sizes) <= data.max_atoms
    # the valence-limited reading never exceeds a valence
    for tokens, bonds in model.sample_graphs(30, steps=5, generator=gen, decode="valence"):
        assert _valences_ok(tokens, bonds, data.vocab)
        assert graph_to_mol(tokens, bonds) is not None
    assert len(sample_smiles(model, 5, steps=3)) == 5


def _dense_reference(model, x_t, e_t, t, node_mask, cond):
    """The denoiser written on the dense N x N edge state (how CatFlow computed it before the
    pair form): every (i, j) and (j, i) computed separately, symmetrised at the end."""
    import torch.nn.functional as F
    from vgraph.models.catflow import NUM_BOND_CLASSES, SELF_COND_NODE_FEATURES, time_embedding
    bsz, n, _ = x_t.shape
    pair = (node_mask.unsqueeze(1) & node_mask.unsqueeze(2) & ~torch.eye(n, dtype=torch.bool)).to(x_t.dtype)
    orders = torch.arange(NUM_BOND_CLASSES, dtype=x_t.dtype)
    temb = time_embedding(t, model.hidden)
    degree = (((e_t * orders).sum(-1) * pair).sum(-1) / 4.0).unsqueeze(-1)
    if cond is None:
        cn = x_t.new_zeros(bsz, n, model.num_tokens + SELF_COND_NODE_FEATURES)
        ce = e_t.new_zeros(bsz, n, n, NUM_BOND_CLASSES)
    else:
        cn, ce = model.condition_features(cond[0], cond[1], node_mask)
    extra_n, extra_e = ([cn], [ce]) if model.self_cond else ([], [])
    h = model.node_in(torch.cat([x_t, degree, temb.unsqueeze(1).expand(-1, n, -1), *extra_n], -1))
    h = h * node_mask.unsqueeze(-1)
    e = model.edge_in(torch.cat([e_t, temb.view(bsz, 1, 1, -1).expand(-1, n, n, -1), *extra_e], -1))
    for layer in model.layers:
        hs = layer.edge_sum(h)
        pre = layer.edge_pair(torch.cat([h.unsqueeze(2) * h.unsqueeze(1), e], -1)) + hs.unsqueeze(2) + hs.unsqueeze(1)
        msg = layer.edge_out(pre) * pair.unsqueeze(-1)
        e = layer.edge_norm(e + msg)
        counts = node_mask.sum(1, keepdim=True).clamp(min=1).unsqueeze(-1)
        glob = (h * node_mask.unsqueeze(-1)).sum(1, keepdim=True) / counts
        h = layer.node_norm(h + layer.node_mlp(torch.cat([h, msg.sum(2), glob.expand(-1, n, -1)], -1)))
        h = h * node_mask.unsqueeze(-1)
    e = (e + e.transpose(1, 2)) / 2
    return model.node_out(h), model.edge_out(e)


@pytest.mark.parametrize("self_cond", [False, True])
def test_catflow_pair_form_equals_the_dense_form(data, self_cond):
    torch.manual_seed(0)
    model = build_generator("catflow", data.vocab, 6, hidden=16, num_layers=2, self_cond=self_cond).double()
    bsz, n, v = 4, 6, len(data.vocab)
    mask = torch.arange(n).unsqueeze(0) < torch.tensor([6, 4, 2, 1]).unsqueeze(1)
    x = torch.randn(bsz, n, v, dtype=torch.double) * mask.unsqueeze(-1)
    e = torch.randn(bsz, n, n, 4, dtype=torch.double)
    e = e + e.transpose(1, 2)
    t = torch.rand(bsz, dtype=torch.double)
    pe = torch.rand(bsz, n, n, 4, dtype=torch.double)
    cond = (torch.rand(bsz, n, v, dtype=torch.double).softmax(-1), (pe + pe.transpose(1, 2)).softmax(-1))
    real = (mask.unsqueeze(1) & mask.unsqueeze(2)) & ~torch.eye(n, dtype=torch.bool)
    for c in (None, cond):
        node, edge = model(x, e, t, mask, c)
        ref_node, ref_edge = _dense_reference(model, x, e, t, mask, c)
        assert torch.allclose(node[mask], ref_node[mask], atol=1e-10)
        assert torch.allclose(edge[real], ref_edge[real], atol=1e-10)
        assert torch.equal(edge, edge.transpose(1, 2))


def test_catflow_time_grids(data):
    from vgraph.models.catflow import CatFlow
    for name in ("uniform", "polydec", "cosine"):
        grid = CatFlow.time_grid(10, name)
        assert grid[0] == 0 and grid[-1] == 1 and bool((grid.diff() > 0).all()), name
    steps = CatFlow.time_grid(10, "polydec").diff()
    assert bool((steps.diff() < 0).all())  # finer and finer towards t = 1
    assert torch.allclose(CatFlow.time_grid(4), torch.tensor([0, 0.25, 0.5, 0.75, 1], dtype=torch.float64))
    with pytest.raises(ValueError, match="time schedule"):
        CatFlow.time_grid(10, "linear")
    u = torch.rand(10_000, generator=torch.Generator().manual_seed(0))
    assert float((CatFlow.distort_time(u, "polydec") > 0.9).float().mean()) == pytest.approx(0.1 ** 0.5, abs=0.02)
    with pytest.raises(ValueError, match="train_time"):
        build_generator("catflow", data.vocab, data.max_atoms, hidden=16, num_layers=1, train_time="late")
    model = build_generator("catflow", data.vocab, data.max_atoms, hidden=16, num_layers=1)
    a = model.sample_graphs(8, steps=4, generator=torch.Generator().manual_seed(0), schedule="polydec")
    b = model.sample_graphs(8, steps=4, generator=torch.Generator().manual_seed(0), schedule="polydec")
    assert [x[0] for x in a] == [x[0] for x in b]


def test_encode_decode_interpolate(data):
    torch.manual_seed(0)
    model = build_generator("molvae", data.vocab, data.max_atoms, hidden=32, latent=8, num_layers=2)
    z = model.encode(["CCO", "c1ccccc1"])
    assert z.shape == (2, 8)
    out = model.decode_smiles(z)
    assert len(out) == 2 and all(Chem.MolFromSmiles(s) is not None for s in out)
    path = model.interpolate("CCO", "c1ccccc1", steps=5)
    assert len(path) == 5 and all(Chem.MolFromSmiles(s) is not None for s in path)
    with pytest.raises(ValueError, match="cannot be encoded"):
        model.encode(["CCBr"])  # Br not in this vocabulary
    assert len(sample_smiles(model, 20)) == 20


def test_save_load_round_trip(data, tmp_path):
    for kind in ("molvae", "catflow"):
        torch.manual_seed(0)
        model = build_generator(kind, data.vocab, data.max_atoms, hidden=16, num_layers=1,
                                **({"atom_counts": atom_count_histogram(data)} if kind == "catflow" else {}))
        save_generator(tmp_path / f"{kind}.pt", model, "test", {"command": "x"})
        loaded, info = load_generator(tmp_path / f"{kind}.pt")
        assert info["kind"] == kind and info["meta"]["command"] == "x" and info["dataset"] == "test"
        for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
            assert torch.equal(a, b), k
        # the file describes itself: vgraph.load rebuilds the same model with no flags
        import vgraph
        plain = vgraph.load(tmp_path / f"{kind}.pt")
        assert type(plain) is type(model) and plain.vocab.to_dict() == model.vocab.to_dict()
        for (k, a), (_, b) in zip(model.state_dict().items(), plain.state_dict().items()):
            assert torch.equal(a, b), k


def test_pretrained_checkpoint_is_small_and_samples_valid_molecules():
    assert PRETRAINED_QM9.is_file() and PRETRAINED_QM9.stat().st_size < 2_000_000
    model, info = load_generator()
    assert info["kind"] == "molvae" and info["dataset"] == "qm9"
    smiles = sample_smiles(model, 100, generator=torch.Generator().manual_seed(0))
    assert all(Chem.MolFromSmiles(s) is not None for s in smiles)


def test_catflow_self_condition_features_by_hand(data):
    """Valence, closed-walk and Laplacian features of a known prediction, computed by hand."""
    vocab = data.vocab
    model = build_generator("catflow", vocab, 5, hidden=16, num_layers=1)
    V, c, o, n = len(vocab), vocab.index["C"], vocab.index["O"], vocab.index["N"]
    px = torch.zeros(2, 5, V)
    pe = torch.zeros(2, 5, 5, 4)
    pe[..., 0] = 1.0
    # graph 0: a triangle of carbons (single bonds); graph 1: C=C and O-N, two fragments
    for i, tok in enumerate([c, c, c]):
        px[0, i, tok] = 1
    for i, tok in enumerate([c, c, o, n]):
        px[1, i, tok] = 1

    def bond(b, i, j, k):
        pe[b, i, j] = pe[b, j, i] = torch.nn.functional.one_hot(torch.tensor(k), 4).float()
    bond(0, 0, 1, 1), bond(0, 1, 2, 1), bond(0, 0, 2, 1), bond(1, 0, 1, 2), bond(1, 2, 3, 1)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]], dtype=torch.bool)
    node, edge = model.condition_features(px, pe, mask)
    f = node[..., V:]  # bond sum, valence, free valence, walks 2..6, 3 eigenvalues, Fiedler
    maxval = vocab.max_valence
    assert torch.allclose(f[0, :3, 0], torch.full((3,), 2 / 4))
    assert torch.allclose(f[1, :4, 0], torch.tensor([2, 2, 1, 1]) / 4)
    assert torch.allclose(f[1, :4, 1], torch.tensor([maxval[c], maxval[c], maxval[o], maxval[n]]) / 4.0)
    assert torch.allclose(f[1, :4, 2], (torch.tensor([maxval[c], maxval[c], maxval[o], maxval[n]])
                                        - torch.tensor([2, 2, 1, 1])) / 4.0)
    # closed walks in a triangle: length 2 -> 2, 3 -> 2, 4 -> 6 (divided by the padded size 5)
    assert torch.allclose(f[0, :3, 3:6], torch.tensor([2.0, 2.0, 6.0]).expand(3, 3) / 5)
    assert torch.allclose(f[1, :4, 4], torch.zeros(4))  # no triangle in two bonds
    # Laplacian spectrum: triangle 0, 3, 3; two fragments 0, 0, 2 (bond presence, not order)
    assert torch.allclose(f[0, 0, 8:11], torch.tensor([0.0, 3.0, 3.0]) / 4, atol=1e-5)
    assert torch.allclose(f[1, 0, 8:11], torch.tensor([0.0, 0.0, 2.0]) / 4, atol=1e-5)
    assert node[0, 3:].abs().sum() == 0 and node[1, 4:].abs().sum() == 0  # padding stays zero
    assert edge[0, 3:].abs().sum() == 0 and torch.equal(edge[0, :3, :3], pe[0, :3, :3] * (1 - torch.eye(3)).unsqueeze(-1))


def _write_legacy(path, model, kind, drop=()):
    """A generator file as vgraph wrote it before the hub format (chem.generators.save_generator)."""
    import json
    from vgraph.train.checkpoint import config_fingerprint, save_checkpoint
    config = {k: v for k, v in model.config.items() if k != "max_atoms" and k not in drop}
    payload = {"kind": kind, "config": json.dumps(config), "max_atoms": model.max_atoms,
               "vocab": json.dumps(model.vocab.to_dict()), "dataset": "test",
               "kl": json.dumps(model.variational.config.to_dict()) if hasattr(model, "variational") else "",
               "meta": json.dumps({"command": "old"}),
               "model": {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}}
    save_checkpoint(path, payload, config_fingerprint({"kind": kind}))


def test_generator_files_from_before_the_hub_format_load(data, tmp_path):
    torch.manual_seed(0)
    vae = build_generator("molvae", data.vocab, data.max_atoms, kl=KLConfig(norm="node", free_bits=0.1),
                          hidden=16, latent=4, num_layers=1)
    _write_legacy(tmp_path / "vae.pt", vae, "molvae")
    loaded, info = load_generator(tmp_path / "vae.pt")
    assert info == {"kind": "molvae", "dataset": "test", "path": str(tmp_path / "vae.pt"), "meta": {"command": "old"}}
    assert loaded.variational.config.free_bits == 0.1
    for k, v in vae.state_dict().items():
        want = v.half().float() if v.is_floating_point() else v
        assert torch.equal(loaded.state_dict()[k], want), k
    # a corrupt file keeps the loader's own message, not a legacy attempt
    raw = bytearray((tmp_path / "vae.pt").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (tmp_path / "bad.pt").write_bytes(bytes(raw))
    from vgraph.errors import CheckpointError
    with pytest.raises(CheckpointError, match="corrupt"):
        load_generator(tmp_path / "bad.pt")


def test_catflow_checkpoint_from_before_self_conditioning_loads(data, tmp_path):
    torch.manual_seed(0)
    model = build_generator("catflow", data.vocab, data.max_atoms, atom_counts=atom_count_histogram(data),
                            hidden=16, num_layers=1, self_cond=False)
    _write_legacy(tmp_path / "old.pt", model, "catflow", drop=("self_cond",))  # before the option existed
    loaded, _ = load_generator(tmp_path / "old.pt")
    assert loaded.self_cond is False
    assert len(sample_smiles(loaded, 4, steps=2)) == 4
    # a self-conditioned model samples too (it feeds each step its previous prediction)
    sc = build_generator("catflow", data.vocab, data.max_atoms, atom_counts=atom_count_histogram(data),
                         hidden=16, num_layers=1)
    assert sc.self_cond and len(sample_smiles(sc, 4, steps=3)) == 4

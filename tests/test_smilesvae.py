"""SmilesVAE: tokens, the tokenised dataset, the model's masking and sampling, and the jobs
(`vgraph molgen --model smilesvae`, `vgraph generate` on its file) on tiny SMILES lists."""
import json

import numpy as np
import pytest
import torch

from vgraph.cli import main as vgraph_main
from vgraph.models.smilesvae import BOS, EOS, PAD, SmilesDataset, SmilesVAE, SmilesVocabulary, tokenize

pytestmark = pytest.mark.usefixtures("one_thread")

GOOD = ["CCO", "c1ccccc1", "CC(=O)O", "CCN", "C1CC1", "OCCO", "CC#N", "NC(=O)N", "c1cc[nH]c1", "ClCCBr",
        "C[C@@H](O)C(=O)O", "CC(C)O", "C1CC2CCC1C2", "O=C1CCCC%10CC1.C%10"]


def _run(argv, capsys):
    """``vgraph <argv>`` in-process: (exit code, stdout, stderr)."""
    try:
        code = vgraph_main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_tokens_join_back_and_keep_brackets_halogens_and_two_digit_rings():
    for s in GOOD:
        assert "".join(tokenize(s)) == s
    assert tokenize("c1cc[nH]c1") == ["c", "1", "c", "c", "[nH]", "c", "1"]
    assert tokenize("ClCCBr") == ["Cl", "C", "C", "Br"]
    assert tokenize("C[C@@H](O)C%12") == ["C", "[C@@H]", "(", "O", ")", "C", "%12"]


def test_vocabulary_round_trip_and_unknown_tokens():
    vocab = SmilesVocabulary.build(tokenize(s) for s in GOOD)
    assert tuple(vocab.tokens[:3]) == ("<pad>", "<bos>", "<eos>") and vocab.index["C"] > EOS
    assert SmilesVocabulary.from_dict(vocab.to_dict()).tokens == vocab.tokens
    ids = vocab.encode(tokenize("CC(=O)O"))
    assert vocab.decode(ids + [EOS] + ids) == "CC(=O)O"  # stops at <eos>
    assert vocab.encode(tokenize("CS")) is None  # S never occurs in GOOD


def test_dataset_counts_skips_and_batches_with_bos_eos_padding():
    train = SmilesDataset.from_smiles(GOOD + ["", "   ", "C" * 30], max_length=20)
    assert len(train) == len(GOOD) and train.skipped == {"empty": 2, "too_long": 1, "unknown_token": 0}
    test = SmilesDataset.from_smiles(["CCO", "CSC", "CCC"], vocab=train.vocab)
    assert test.smiles == ["CCO", "CCC"] and test.skipped["unknown_token"] == 1
    b = train.batch([0, 1])["tokens"]
    n0, n1 = len(tokenize(GOOD[0])), len(tokenize(GOOD[1]))
    assert b.shape == (2, max(n0, n1) + 2) and (b[:, 0] == BOS).all()
    assert b[0, n0 + 1] == EOS and (b[0, n0 + 2:] == PAD).all() and b[1, n1 + 1] == EOS
    assert train.vocab.decode(b[1, 1:].tolist()) == GOOD[1]
    sub = train.subset([3, 1])
    assert sub.smiles == [GOOD[3], GOOD[1]] and torch.equal(sub.batch([1])["tokens"], train.batch([1])["tokens"])


def test_epoch_order_is_a_permutation_with_length_sorted_batches():
    lines = ["C" * n for n in np.random.default_rng(0).integers(1, 40, size=200)]
    ds = SmilesDataset.from_smiles(lines)
    order = ds.epoch_order(np.random.default_rng(1), batch_size=10, chunk=5)
    assert sorted(order.tolist()) == list(range(200))
    spread = [np.ptp(ds.lengths[order[i:i + 10]]) for i in range(0, 200, 10)]
    rand = [np.ptp(ds.lengths[i:i + 10]) for i in range(0, 200, 10)]
    assert np.mean(spread) < np.mean(rand) / 2  # far less padding than a plain permutation
    assert np.array_equal(order, ds.epoch_order(np.random.default_rng(1), batch_size=10, chunk=5))


def test_encoder_ignores_padding_and_decoder_is_causal():
    torch.manual_seed(0)
    ds = SmilesDataset.from_smiles(GOOD)
    model = SmilesVAE(ds.vocab, hidden=16, latent=4, embed=8, encoder_hidden=8).eval()
    short = ds.batch([0])["tokens"]  # CCO alone
    padded = ds.batch([0, 1])["tokens"][:1]  # CCO padded to benzene's length
    assert padded.shape[1] > short.shape[1]
    mu_s, ls_s = model.encode(short)
    mu_p, ls_p = model.encode(padded)
    assert torch.allclose(mu_s, mu_p, atol=1e-6) and torch.allclose(ls_s, ls_p, atol=1e-6)
    z = torch.randn(1, 4)
    tokens = ds.batch([1])["tokens"]
    changed = tokens.clone()
    changed[0, 4] = ds.vocab.index["N"]
    a, b = model.decode_logits(z, tokens), model.decode_logits(z, changed)
    assert torch.allclose(a[:, :4], b[:, :4]) and not torch.allclose(a[:, 4:], b[:, 4:])


def test_loss_is_finite_and_trains():
    torch.manual_seed(0)
    ds = SmilesDataset.from_smiles(GOOD)
    model = SmilesVAE(ds.vocab, hidden=32, latent=4, embed=8, encoder_hidden=16)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = ds.batch(range(len(ds)))
    first = None
    for _ in range(30):
        out = model.loss(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        first = first if first is not None else float(out["recon"].detach())
    assert torch.isfinite(out["loss"]) and float(out["recon"].detach()) < 0.5 * first
    assert out["mu"].shape == (len(ds), 4)


def test_sampling_is_seeded_and_cuts_unfinished_strings():
    torch.manual_seed(0)
    ds = SmilesDataset.from_smiles(GOOD)
    model = SmilesVAE(ds.vocab, hidden=16, latent=4, embed=8, encoder_hidden=8, max_length=5).eval()
    a = model.sample_strings(50, generator=torch.Generator().manual_seed(3))
    b = model.sample_strings(50, generator=torch.Generator().manual_seed(3))
    assert a == b and len(a) == 50
    # an untrained model rarely emits <eos> within 5 tokens: those come back empty, none is longer
    assert "" in a and all(len(tokenize(s)) <= 5 for s in a)
    with torch.no_grad():  # a decoder that always says <eos> gives empty strings that are finished
        model.readout.bias.fill_(-1e4)
        model.readout.bias[EOS] = 1e4
    assert model.sample_strings(3, generator=torch.Generator().manual_seed(0)) == ["", "", ""]


def test_molgen_smilesvae_to_the_end_then_generate_and_resume(tmp_path, capsys):
    import vgraph
    data = tmp_path / "mols.smi"
    data.write_text("\n".join(GOOD * 4) + "\n\n")
    run = tmp_path / "run"
    base = ["molgen", "--dataset", str(data), "--model", "smilesvae", "--batch-size", "8", "--hidden", "16",
            "--latent", "4", "--threads", "1", "--no-progress", "--out", str(run)]
    code, out, err = _run(base + ["--epochs", "0.5", "--eval-every", "2", "--num-samples", "20", "--no-fcd"],
                          capsys)
    assert code == 0, err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["model"] == "smilesvae" and summary["steps"] == 4
    assert summary["skipped"]["train"]["empty"] + summary["skipped"]["test"]["empty"] == 1
    assert summary["config"]["grad_clip"] == 5.0 and summary["config"]["layers"] == 1
    assert 0.0 <= summary["metrics"]["validity"] <= 1.0
    assert len((run / "samples.smi").read_text().splitlines()) == 20
    assert len((run / "diagnostics.jsonl").read_text().splitlines()) == 2  # every --eval-every steps
    model, info = vgraph.load(run / "model.pt", with_info=True)
    assert type(model).__name__ == "SmilesVAE" and info.meta["kind"] == "smilesvae"
    gens = []
    for name in ("gen1", "gen2"):
        code, out, err = _run(["generate", "--checkpoint", str(run / "model.pt"), "--num-samples", "15",
                               "--no-fcd", "--grid", "0", "--no-plot", "--no-progress", "--out",
                               str(tmp_path / name)], capsys)
        assert code == 0, err
        gens.append((tmp_path / name / "samples.smi").read_text())
    assert gens[0] == gens[1]
    assert json.loads((tmp_path / "gen1" / "summary.json").read_text())["model"] == "smilesvae"
    # a longer run continues from the checkpoint; a changed width is named
    code, _, err = _run(base + ["--epochs", "1", "--eval-every", "2", "--num-samples", "0", "--resume"], capsys)
    assert code == 0, err
    assert json.loads((run / "summary.json").read_text())["steps"] == 7  # 50 molecules, 8 a step
    wider = [("32" if prev == "--hidden" else a) for prev, a in zip([None] + base, base)]
    code, _, err = _run(wider + ["--epochs", "1", "--eval-every", "2", "--resume"], capsys)
    assert code == 1 and "hidden: 16 -> 32" in err

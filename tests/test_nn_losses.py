"""The fused all-pairs loss equals Kipf's dense BCE, value and gradient."""
import pytest
import torch
import torch.nn.functional as F

from vgraph.models import dense_recon_loss, sampled_recon_loss
from vgraph.nn.losses import AllPairsSoftplus, dense_bce_loss


@pytest.mark.parametrize("block", [3, 16, 512])
def test_dense_bce_matches_matrix_form(block, monkeypatch):
    import vgraph.nn.losses as L
    monkeypatch.setattr(L, "BLOCK_ROWS", block)
    torch.manual_seed(0)
    n = 37
    adj = (torch.rand(n, n) < 0.1).float()
    adj = ((adj + adj.t()) > 0).float()
    adj.fill_diagonal_(1)
    pairs = adj.nonzero().t()
    pw = float((n * n - adj.sum()) / adj.sum())
    z1 = torch.randn(n, 5, dtype=torch.float64, requires_grad=True)
    z2 = z1.detach().clone().requires_grad_()
    fused = L.dense_bce_loss(z1, pairs, pw, 0.7)
    ref = dense_recon_loss(z2 @ z2.t(), adj.double(), pw, 0.7)
    fused.backward()
    ref.backward()
    assert fused.item() == pytest.approx(ref.item(), rel=1e-10)
    assert torch.allclose(z1.grad, z2.grad, atol=1e-12)


def test_all_pairs_softplus_gradcheck():
    z = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: AllPairsSoftplus.apply(t, 4), (z,))


def test_sampled_loss_by_hand():
    pos, neg = torch.tensor([0.0, 2.0]), torch.tensor([-1.0])
    expected = (F.softplus(torch.tensor(0.0)) + F.softplus(torch.tensor(-2.0))) / 2 + F.softplus(torch.tensor(-1.0))
    assert sampled_recon_loss(pos, neg).item() == pytest.approx(expected.item())


def test_all_pairs_keeps_sigmoid_or_recomputes_with_identical_bits(monkeypatch):
    """The kept-``sigmoid(S)`` backward and the recomputing one give the same value and gradient."""
    z0 = torch.randn(37, 5, generator=torch.Generator().manual_seed(3))
    out = []
    for keep_bytes in (AllPairsSoftplus.KEEP_BYTES, 0):
        monkeypatch.setattr(AllPairsSoftplus, "KEEP_BYTES", keep_bytes)
        z = z0.clone().requires_grad_(True)
        value = AllPairsSoftplus.apply(z, 8)
        value.backward()
        out.append((value.detach(), z.grad))
    assert torch.equal(out[0][0], out[1][0]) and torch.equal(out[0][1], out[1][1])
    expected = torch.nn.functional.softplus(z0 @ z0.t()).sum()
    assert torch.allclose(out[0][0], expected, rtol=1e-5)
    with torch.no_grad():  # no gradient wanted: nothing kept
        assert torch.equal(AllPairsSoftplus.apply(z0, 8), out[0][0])

"""Vector quantiser properties: nearest code, codebook rows, straight-through gradient, usage, dead codes."""
import math

import pytest
import torch

from fuselip.tokenizers.quantizer import VectorQuantizer, codebook_stats


@pytest.mark.parametrize("l2", [False, True])
def test_quantised_vectors_are_codebook_rows_of_their_indices(l2):
    torch.manual_seed(0)
    vq = VectorQuantizer(32, 6, l2_codes=l2).eval()
    z = torch.randn(4, 10, 6)
    z_q, idx, _ = vq(z)
    assert idx.shape == (4, 10) and idx.dtype == torch.long
    torch.testing.assert_close(z_q, vq.codes_from_indices(idx))
    if l2:
        torch.testing.assert_close(z_q.norm(dim=-1), torch.ones(4, 10))


@pytest.mark.parametrize("l2", [False, True])
def test_index_is_the_nearest_code(l2):
    torch.manual_seed(1)
    vq = VectorQuantizer(50, 4, l2_codes=l2)
    z = torch.randn(200, 4)
    idx = vq.nearest(z)
    target = torch.nn.functional.normalize(z, dim=-1) if l2 else z
    brute = torch.cdist(target, vq.codes()).argmin(dim=-1)
    assert torch.equal(idx, brute)


def test_codes_equal_to_inputs_are_found_exactly():
    vq = VectorQuantizer(16, 3)
    _, idx, losses = vq(vq.codebook.detach()[[3, 7, 7, 0]])
    assert idx.tolist() == [3, 7, 7, 0]
    assert float(losses["vq"]) == 0.0


def test_straight_through_gradient_reaches_the_input_and_losses_reach_the_codebook():
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 4, commitment=0.25)
    z = torch.randn(5, 4, requires_grad=True)
    z_q, _, losses = vq(z)
    (z_q * torch.arange(4.0)).sum().backward(retain_graph=True)
    # straight through: d(sum(z_q * w))/dz = w for every row
    torch.testing.assert_close(z.grad, torch.arange(4.0).expand(5, 4))
    z.grad = None
    losses["vq"].backward()
    assert vq.codebook.grad is not None and vq.codebook.grad.abs().sum() > 0
    assert z.grad.abs().sum() > 0  # commitment pulls the encoder output


def test_loss_is_codebook_plus_beta_commitment():
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 4, commitment=0.25)
    z = torch.randn(6, 4)
    z_q, _, losses = vq(z)
    mse = (z_q - z).pow(2).mean()
    torch.testing.assert_close(losses["vq"], mse * 1.25)


def test_usage_and_perplexity_on_a_known_histogram():
    stats = codebook_stats(torch.tensor([0, 1, 2, 3] * 5), 8)
    assert stats["usage"] == 0.5 and stats["codes_used"] == 4
    assert math.isclose(stats["perplexity"], 4.0, rel_tol=1e-9)
    one = codebook_stats(torch.zeros(100, dtype=torch.long), 16)
    assert one["usage"] == 1 / 16 and math.isclose(one["perplexity"], 1.0)
    skew = codebook_stats(torch.tensor([0, 0, 0, 1]), 4)  # p = (3/4, 1/4)
    expected = math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert math.isclose(skew["perplexity"], expected, rel_tol=1e-9)


def test_dead_codes_are_reseeded_from_recent_encoder_outputs():
    torch.manual_seed(0)
    vq = VectorQuantizer(64, 2, dead_code_every=2, recent_codes=128)
    vq.codebook.data[:] = 100.0  # every code far away ...
    vq.codebook.data[0] = 0.0   # ... but one: all inputs pick code 0
    vq.train()
    for _ in range(2):
        z = torch.randn(256, 2)
        _, idx, _ = vq(z)
        assert idx.unique().tolist() == [0]
        reseeded = vq.reseed_dead_codes()
    assert reseeded == 63
    # re-seeded codes now sit on recent encoder outputs: picked by fresh inputs
    _, idx, _ = vq.eval()(torch.randn(4096, 2))
    assert codebook_stats(idx, 64)["usage"] > 0.8
    assert (vq.codebook.abs() < 10).all()


def test_vq_warmup_passes_z_through_then_reseeds_every_code_from_it():
    torch.manual_seed(0)
    vq = VectorQuantizer(16, 3, l2_codes=True, recent_codes=64).train()
    vq.bypass = True
    z = torch.randn(40, 3, requires_grad=True)
    out, idx, losses = vq(z)
    torch.testing.assert_close(out, torch.nn.functional.normalize(z, dim=-1))  # unquantised
    losses["codebook"].backward()
    assert vq.codebook.grad.abs().sum() > 0  # the codebook still follows the encoder
    vq.reseed_all_codes()
    recent = vq.recent[:40]
    for code in vq.codebook.detach():
        assert torch.isclose(recent, code).all(dim=1).any()
    vq.eval()  # bypass only acts in training
    out, idx, _ = vq(z.detach())
    torch.testing.assert_close(out, vq.codes_from_indices(idx))

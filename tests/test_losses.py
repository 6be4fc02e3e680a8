"""SigLIP against open_clip, MMM masking statistics and exemptions."""
import pytest
import torch
import torch.nn.functional as F
from open_clip.loss import SigLipLoss

from fuselip import vocab
from fuselip.losses import MMM_EXEMPT, apply_mask, mmm_loss, mmm_mask, siglip_loss


def features(b=16, d=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    left = F.normalize(torch.randn(b, d, generator=g, dtype=torch.float64), dim=-1)
    right = F.normalize(torch.randn(b, d, generator=g, dtype=torch.float64), dim=-1)
    return left, right


@pytest.mark.parametrize("t,b", [(2.302585, -10.0), (0.3, 1.5), (4.6, -3.0)])
def test_siglip_equals_open_clip(t, b):
    left, right = features()
    t, b = torch.tensor(t, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    ours = siglip_loss(left.float(), right.float(), t.float(), b.float())
    theirs = SigLipLoss()(left.float(), right.float(), t.exp().float(), b.float())
    assert abs(float(ours) - float(theirs)) < 1e-6 * max(1.0, abs(float(theirs)))


def test_siglip_duplicates_count_as_positives():
    left, right = features(6)
    right[3] = right[1]  # two identical targets
    positives = torch.eye(6, dtype=torch.bool)
    positives[1, 3] = positives[3, 1] = True
    t, b = torch.tensor(2.0), torch.tensor(-5.0)
    logits = t.exp() * left.float() @ right.float().T + b
    labels = positives.float() * 2 - 1
    expected = -F.logsigmoid(labels * logits).sum() / 6
    assert torch.allclose(siglip_loss(left.float(), right.float(), t, b, positives), expected)
    assert not torch.allclose(siglip_loss(left.float(), right.float(), t, b), expected)


def test_siglip_rejects_bad_shapes():
    left, right = features(4)
    with pytest.raises(ValueError, match="positives"):
        siglip_loss(left, right, torch.tensor(1.0), torch.tensor(0.0), torch.ones(4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="same rows"):
        siglip_loss(left, right[:3], torch.tensor(1.0), torch.tensor(0.0))


def test_mmm_mask_rate_and_exempt_ids():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, vocab.IMAGE_OFFSET + 512, (400, 100), generator=g)
    exempt = torch.rand(ids.shape, generator=g) < 0.2
    ids[exempt] = torch.tensor(MMM_EXEMPT)[torch.randint(0, 3, (int(exempt.sum()),), generator=g)]
    ids[:, 0] = vocab.SOT
    p = 0.1
    mask = mmm_mask(ids, p, torch.Generator().manual_seed(1))
    eligible = ~exempt
    rate = mask[eligible].float().mean().item()
    n = int(eligible.sum())
    assert abs(rate - p) < 4 * (p * (1 - p) / n) ** 0.5, rate  # within 4 standard errors
    for token in (vocab.EOT, vocab.PAD, vocab.MASK):
        assert not mask[ids == token].any(), f"id {token} was masked"
    assert mask[:, 0].any(), "sot is an ordinary token for MMM (PAPER.md exempts only eot, pad, [MASK])"
    masked = apply_mask(ids, mask)
    assert (masked[mask] == vocab.MASK).all() and torch.equal(masked[~mask], ids[~mask])


def test_mmm_mask_is_deterministic_from_the_generator():
    ids = torch.randint(1, 1000, (8, 30))
    a = mmm_mask(ids, 0.3, torch.Generator().manual_seed(5))
    b = mmm_mask(ids, 0.3, torch.Generator().manual_seed(5))
    other = mmm_mask(ids, 0.3, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, other)  # the seed decides the mask
    assert 0.15 < float(a.float().mean()) < 0.45  # about p of the tokens


def test_mmm_loss_with_nothing_masked_is_zero_and_connected():
    logits = torch.zeros(0, 10, requires_grad=True)
    loss = mmm_loss(logits, torch.zeros(0, dtype=torch.long))
    assert float(loss.detach()) == 0.0 and loss.requires_grad
    full = torch.randn(5, 10)
    targets = torch.tensor([1, 2, 3, 4, 5])
    assert torch.allclose(mmm_loss(full, targets), F.cross_entropy(full, targets))
    assert torch.allclose(mmm_loss(full, targets, "sum"), F.cross_entropy(full, targets, reduction="sum"))

"""fuselip.probe.masked_predictions: the MMM head's view of a sequence masked where you choose."""
import pytest
import torch
import torch.nn.functional as F

from fuselip import vocab
from fuselip.losses import apply_mask
from fuselip.probe import masked_predictions
import fuselip_helpers as helpers


def _sequence(model):
    codes = model.tokenizer.encode(torch.rand(1, 3, helpers.IMAGE, helpers.IMAGE))[0].tolist()
    return torch.tensor(vocab.build_sequence(codes, [320, 736, 2117], model.config.context_length))


@pytest.mark.parametrize("mmm_vocab", ["full", "seen"])
def test_log_probabilities_match_the_training_computation(mmm_vocab):
    model = helpers.model(mmm_vocab=mmm_vocab).eval()
    ids = _sequence(model)
    model.mark_seen(ids)
    mask = torch.zeros_like(ids, dtype=torch.bool)
    mask[[0, 3, len(ids) - 3]] = True                       # two image tokens, one word
    logp = masked_predictions(model, ids, mask)
    assert logp.shape == (3, model.vocab_size)
    finite = torch.isfinite(logp)
    torch.testing.assert_close(torch.logsumexp(logp, dim=-1), torch.zeros(3))
    if mmm_vocab == "seen":
        assert torch.equal(finite, model.token_seen[None].expand(3, -1))
    else:
        assert bool(finite.all())
    # the same numbers by hand: mask, encode, head (tied to the token table), softmax over the trained ids
    with torch.no_grad():
        h, _, _, _ = model.hidden_states(apply_mask(ids, mask)[None])
        z = model.mmm_ln(F.gelu(model.mmm_dense(h[0, mask])))
        ids_out = model.token_seen.nonzero().squeeze(1) if mmm_vocab == "seen" else torch.arange(model.vocab_size)
        by_hand = F.log_softmax(z @ model.token_embedding.weight[ids_out].T + model.mmm_bias[ids_out], dim=-1)
    expected = logp[:, ids_out]
    torch.testing.assert_close(expected, by_hand)


def test_refuses_to_mask_eot_or_nothing():
    model = helpers.model().eval()
    ids = _sequence(model)
    with pytest.raises(ValueError, match="eot"):
        masked_predictions(model, ids, ids == vocab.EOT)
    with pytest.raises(ValueError, match="no token"):
        masked_predictions(model, ids, torch.zeros_like(ids, dtype=torch.bool))

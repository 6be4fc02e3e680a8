"""The optimiser: which tensors are decayed, and the schedule."""
import fuselip_helpers as H
from fuselip import optim


def test_weight_decay_groups_follow_the_paper():
    model = H.model()
    decayed = {name for name, _, d in optim.trainable_parameters(model) if d}
    assert {"token_embedding.weight", "positional_embedding", "blocks.0.qkv.weight", "blocks.1.fc_out.weight",
            "mmm_dense.weight"} <= decayed
    assert not any("ln" in n or n.endswith("bias") or "logit" in n for n in decayed), decayed
    frozen = [p for n, p, _ in optim.trainable_parameters(model) if n.startswith("tokenizer.")]
    assert frozen and not any(p.requires_grad for p in frozen)  # in the optimiser, but never given a gradient


def test_a_models_own_exemptions_are_never_decayed():
    tokenizer = H.model().tokenizer
    decayed = {name for name, _, d in optim.trainable_parameters(tokenizer) if d}
    assert decayed and not any("codebook" in n or "pos" in n for n in decayed), decayed


def test_learning_rate_warmup_then_cosine():
    cfg = H.run_config(steps=100)
    cfg.train.warmup_steps = 10
    lrs = [optim.learning_rate(s, cfg.train) for s in range(100)]
    assert lrs[9] == cfg.train.lr and lrs[0] == cfg.train.lr / 10
    assert all(a < b for a, b in zip(lrs[:9], lrs[1:10])) and all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[-1] < 1e-3 * cfg.train.lr

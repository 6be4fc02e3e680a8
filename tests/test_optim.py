"""The optimiser: which tensors are decayed, and the schedule."""
import fuselip_helpers as H
import pytest
import torch

from fuselip import optim
from fuselip.engine import Trainer


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


def test_auto_precision_is_bf16_only_where_bf16_is_measured_faster(monkeypatch):
    cpu = torch.device("cpu")
    for bf16_seconds, expected in ((0.5, "bf16"), (5.0, "fp32")):  # AMX-like / emulated bf16
        optim.bf16_speedup.cache_clear()
        monkeypatch.setattr(optim, "_matmul_seconds",
                            lambda dtype, s=bf16_seconds: s if dtype == torch.bfloat16 else 1.0)
        assert optim.resolve_precision("auto", cpu) == expected
        assert optim.resolve_precision("bf16", cpu) == "bf16" and optim.resolve_precision("fp32", cpu) == "fp32"
    optim.bf16_speedup.cache_clear()
    assert optim.resolve_precision("auto", torch.device("cuda")) == "bf16"  # no measurement off the CPU
    with pytest.raises(ValueError, match="resolve 'auto' first|must be"):
        optim.autocast("auto", cpu)


def test_the_loop_runs_the_resolved_precision_and_the_log_says_which(monkeypatch, tmp_path):
    optim.bf16_speedup.cache_clear()
    monkeypatch.setattr(optim, "_matmul_seconds", lambda dtype: 5.0 if dtype == torch.bfloat16 else 1.0)
    trainer = Trainer(H.model(), H.run_config(), H.pairs(8), out_dir=tmp_path, progress=False)
    assert trainer.precision == "fp32"
    assert optim.describe_precision("auto", "cpu") == \
        "train.precision=auto: fp32 (a bf16 matmul runs at 0.20x the speed of fp32 on this cpu)"
    optim.bf16_speedup.cache_clear()
    explicit = Trainer(H.model(), H.run_config(precision="bf16"), H.pairs(8), out_dir=tmp_path, progress=False)
    assert explicit.precision == "bf16" and optim.describe_precision("bf16", "cpu") == "train.precision=bf16"

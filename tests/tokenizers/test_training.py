"""Training a tokenizer through the engine: reconstruction improves, the run checkpoint loads, an interrupted run
resumes exactly."""
import numpy as np
import pytest
import torch

import fuselip
from fuselip.config import DataConfig, RunConfig, TokenizerConfig, TrainConfig
from fuselip.tokenizers.training import train

TINY = {
    "grid": dict(kind="grid", image_size=16, codebook_size=16, code_dim=4, stem_patch=4, channels=[8, 16],
                 res_blocks=1, decoder_res_blocks=1, decoder_stage_blocks=1),
    "titok": dict(kind="titok", image_size=16, codebook_size=16, code_dim=4, l2_codes=True, patch_size=4,
                  num_latent_tokens=4, width=16, layers=1, heads=2),
}


def run_config(kind, out_dir, steps=6):
    return RunConfig(
        tokenizer=TokenizerConfig(**TINY[kind], dead_code_every=2, recent_codes=32, dead_code_until=0.7),
        data=DataConfig(image_size=16),
        train=TrainConfig(steps=steps, batch_size=4, lr=3e-3, warmup_steps=2, weight_decay=0.0, val_every=0,
                          checkpoint_every=0, precision="fp32", out_dir=str(out_dir), threads=1))


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    pool = rng.integers(0, 256, (24, 16, 16, 3), dtype=np.uint8)
    return pool, {"shapes": pool[:4], "emoji": pool[4:8]}


@pytest.mark.parametrize("kind", sorted(TINY))
def test_interrupted_and_resumed_run_ends_with_identical_weights(kind, images, tmp_path):
    pool, val = images
    straight = train(run_config(kind, tmp_path / "a"), pool, val, progress=False, log=lambda s: None)
    cfg = run_config(kind, tmp_path / "b")
    train(cfg, pool, val, progress=False, log=lambda s: None, stop_after=3)  # "interrupted" after 3 steps
    resumed = train(cfg, pool, val, resume=True, progress=False, log=lambda s: None)
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs after resume"
    # the run folder is a loadable checkpoint
    loaded = fuselip.load_model(tmp_path / "b" / "checkpoint")
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(loaded.encode(x), resumed.encode(x))


def test_resume_refuses_another_tokenizer_config(images, tmp_path):
    pool, val = images
    train(run_config("grid", tmp_path / "r", steps=2), pool, val, progress=False, log=lambda s: None)
    other = run_config("grid", tmp_path / "r", steps=2)
    other.tokenizer.codebook_size = 32
    with pytest.raises(ValueError, match=r"another model config \(tokenizer differ\)"):
        train(other, pool, val, resume=True, progress=False, log=lambda s: None)


def test_reconstruction_improves_on_a_tiny_pool(images, tmp_path):
    pool, val = images
    cfg = run_config("grid", tmp_path / "g", steps=40)
    cfg.train.batch_size = 8
    model = train(cfg, pool[:8], val, progress=False, log=lambda s: None)
    x = fuselip.images.to_tensor(pool[:8])
    fresh = fuselip.tokenizers.build_tokenizer(cfg.tokenizer).eval()
    err = lambda m: float((m.decode(m.encode(x)) - x).pow(2).mean())  # noqa: E731
    assert err(model) < err(fresh)

"""Masked-autoencoder pretraining of the baselines' ViT (fuselip/mae.py) and its way into a baseline."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fuselip import checkpoint
from fuselip.baselines import build_baseline
from fuselip.config import LateFusionConfig, MAEConfig, RunConfig, TrainConfig
from fuselip.mae import MaskedAutoencoder, evaluate, load_vision, patchify, random_keep, train
from test_train_baseline import run, tiny_run  # the real command lines, run in this process

SMALL = dict(kind="siglip-sf", width=32, layers=2, heads=4, context_length=32)
DECODER = MAEConfig(decoder_width=16, decoder_layers=1, decoder_heads=2)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def small_mae(**extra) -> MaskedAutoencoder:
    torch.manual_seed(0)
    return MaskedAutoencoder(LateFusionConfig(**{**SMALL, **extra}), DECODER, image_size=32)


def pixels(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8))


def run_config(out_dir: Path, steps: int = 6) -> RunConfig:
    cfg = RunConfig(encoder=LateFusionConfig(**SMALL), mae=DECODER)
    cfg.data.image_size = 32
    cfg.train = TrainConfig(steps=steps, batch_size=4, warmup_steps=2, lr=3e-3, val_every=3, checkpoint_every=2,
                            log_every=1, out_dir=str(out_dir), precision="fp32")
    return cfg


def test_patches_run_row_by_row_like_the_token_grid():
    x = torch.arange(4.0).view(1, 1, 2, 2).repeat_interleave(4, 2).repeat_interleave(4, 3)  # (1, 1, 8, 8): 4 blocks
    patches = patchify(x.expand(1, 3, 8, 8), patch=4)  # (1, 4, 48)
    assert patches.shape == (1, 4, 48)
    assert patches[0, :, 0].tolist() == [0.0, 1.0, 2.0, 3.0]  # top left, top right, bottom left, bottom right
    assert bool((patches == patches[..., :1]).all())  # each patch holds its own block only


def test_kept_patches_are_a_sorted_random_subset_fixed_by_the_generator():
    keep = random_keep(5, 16, 4, torch.Generator().manual_seed(1))
    assert keep.shape == (5, 4)
    assert all(len(set(row.tolist())) == 4 and row.tolist() == sorted(row.tolist()) for row in keep)
    assert torch.equal(keep, random_keep(5, 16, 4, torch.Generator().manual_seed(1)))
    assert not torch.equal(keep, random_keep(5, 16, 4, torch.Generator().manual_seed(2)))


def test_the_loss_counts_only_dropped_patches_and_the_encoder_sees_only_kept_ones():
    model = small_mae().eval()
    x = pixels(2)
    loss, prediction, dropped = model(x, torch.Generator().manual_seed(0))
    assert prediction.shape == (2, 16, 8 * 8 * 3) and torch.isfinite(loss)
    assert dropped.sum(1).tolist() == [12, 12]  # 16 patches, mask ratio 0.75
    # repaint every dropped patch: what the model predicts cannot change (it never saw them) ...
    grid = x.view(2, 4, 8, 4, 8, 3).clone()  # (B, gy, p, gx, p, 3)
    for b in range(2):
        for i in dropped[b].nonzero().flatten().tolist():
            grid[b, i // 4, :, i % 4] = 255 - grid[b, i // 4, :, i % 4]
    repainted = grid.view(2, 32, 32, 3)
    loss2, prediction2, _ = model(repainted, torch.Generator().manual_seed(0))
    assert torch.allclose(prediction, prediction2)
    assert not torch.isclose(loss, loss2)  # ... but the targets did, so the loss did


def test_bad_settings_name_the_setting():
    with pytest.raises(ValueError, match="mask_ratio"):
        MaskedAutoencoder(LateFusionConfig(**SMALL), MAEConfig(mask_ratio=1.0), 32)
    with pytest.raises(ValueError, match="decoder_width"):
        MaskedAutoencoder(LateFusionConfig(**SMALL), MAEConfig(decoder_width=30, decoder_heads=4), 32)
    with pytest.raises(ValueError, match="vision_patch_size"):
        MaskedAutoencoder(LateFusionConfig(**SMALL, vision_patch_size=5), DECODER, 32)


def test_pretraining_lowers_the_error_and_resumes_exactly(tmp_path):
    pool = pixels(16).numpy()
    val = {"shapes": pixels(4, seed=1).numpy()}
    quiet = dict(progress=False, log=lambda s: None)
    straight = train(run_config(tmp_path / "a", steps=12), pool, val, **quiet)
    cfg = run_config(tmp_path / "b", steps=12)
    train(cfg, pool, val, stop_after=5, **quiet)  # "interrupted" between two checkpoints' steps
    resumed = train(cfg, pool, val, resume=True, **quiet)
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "resume is not exact"
    curve = [json.loads(line) for line in (tmp_path / "a" / "validation.jsonl").read_text().splitlines()]
    assert curve[-1]["step"] == 12 and set(curve[-1]["loss"]) == {"shapes"}
    fresh = small_mae()
    assert evaluate(straight, val)["loss"]["shapes"] < evaluate(fresh, val)["loss"]["shapes"]
    with pytest.raises(ValueError, match=r"another model config \(mae differ\)"):
        other = run_config(tmp_path / "b", steps=12)
        other.mae.mask_ratio = 0.5
        train(other, pool, val, resume=True, **quiet)


def test_a_baseline_starts_from_the_pretrained_vit(tmp_path):
    mae = small_mae()
    checkpoint.save_model(mae, tmp_path / "vit")
    reloaded = checkpoint.load_model(tmp_path / "vit")
    assert all(torch.equal(v, reloaded.state_dict()[k]) for k, v in mae.state_dict().items())
    for kind in ("siglip-sf", "siglip-mlf"):
        cfg = RunConfig(encoder=LateFusionConfig(**{**SMALL, "kind": kind, "vision_init": str(tmp_path / "vit")}))
        cfg.data.image_size = 32
        torch.manual_seed(1)
        visual = build_baseline(cfg).clip.visual.state_dict()
        assert set(visual) - set(mae.visual.state_dict()) == {"proj"}  # the projection stays the contrastive run's
        assert all(torch.equal(v, visual[k]) for k, v in mae.visual.state_dict().items())
        torch.manual_seed(1)
        scratch = build_baseline(cfg.encoder, 32).clip.visual.state_dict()  # an LateFusionConfig: architecture only
        assert not torch.equal(scratch["conv1.weight"], visual["conv1.weight"])


def test_a_mismatched_pretrained_vit_is_refused_with_the_settings_named(tmp_path):
    checkpoint.save_model(small_mae(), tmp_path / "vit")
    wide = LateFusionConfig(**{**SMALL, "width": 64})
    with pytest.raises(checkpoint.CheckpointError, match="width: 32 there, 64 here"):
        load_vision(build_baseline(wide, 32).clip.visual, tmp_path / "vit", wide, 32)
    conv = LateFusionConfig(**{**SMALL, "vision_stem": "conv"})
    with pytest.raises(checkpoint.CheckpointError, match="vision_stem: 'patch' there, 'conv' here"):
        load_vision(build_baseline(conv, 32).clip.visual, tmp_path / "vit", conv, 32)
    baseline = build_baseline(LateFusionConfig(**SMALL), 32)
    checkpoint.save_model(baseline, tmp_path / "not-a-vit")
    with pytest.raises(checkpoint.CheckpointError, match="not a pretrained ViT"):
        load_vision(baseline.clip.visual, tmp_path / "not-a-vit", LateFusionConfig(**SMALL), 32)
    with pytest.raises(checkpoint.CheckpointError, match="encoder.vision_init: .*missing.*not a checkpoint folder"):
        load_vision(baseline.clip.visual, tmp_path / "missing", LateFusionConfig(**SMALL), 32)


def test_conv_stem_vit_pretrains_and_loads(tmp_path):
    mae = small_mae(vision_stem="conv")
    loss, _, _ = mae(pixels(2), torch.Generator().manual_seed(0))
    loss.backward()
    assert mae.visual.conv1[0].weight.grad is not None  # the stem learns
    checkpoint.save_model(mae, tmp_path / "vit")
    conv = LateFusionConfig(**{**SMALL, "vision_stem": "conv"})
    visual = build_baseline(conv, 32).clip.visual
    load_vision(visual, tmp_path / "vit", conv, 32)
    assert torch.equal(visual.conv1[0].weight, mae.visual.conv1[0].weight)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:text ids")  # 16 training pairs leave most validation words unseen
def test_pretrain_then_train_a_baseline_from_the_command_line(tmp_path, monkeypatch):
    """pretrain_vision.py ships a ViT; train_baseline.py --encoder.vision_init starts from it and records it."""
    monkeypatch.chdir(tmp_path)
    vit = tmp_path / "vit-sf-tiny"
    run("train/pretrain_vision.py", "--baseline", "tiny-sf", "--train.steps=3", "--train.batch_size=4",
        "--train.warmup_steps=1", "--data.tokenizer_images=8", "--data.tokenizer_val_images=2",
        "--train.val_every=0", "--no-progress", "--ship", str(vit))
    metrics = json.loads((vit / "metrics.json").read_text())
    assert metrics["step"] == 3 and "pretrain_vision.py" in metrics["command"]
    assert (tmp_path / "runs" / "mae-tiny-sf" / "checkpoint" / "extra.safetensors").exists()  # the resumable run
    ship = tmp_path / "siglip-sf-tiny-mae"
    run("train/train_baseline.py", "--preset", "tiny-sf", f"--encoder.vision_init={vit}", "--train.steps=1",
        *tiny_run(tmp_path / "run"), "--ship", str(ship))
    assert json.loads((ship / "config.json").read_text())["encoder"]["vision_init"] == str(vit)
    trained = checkpoint.load_model(ship).clip.visual.state_dict()
    pretrained = checkpoint.load_model(vit).visual.state_dict()
    # one step of lr 1e-3 from the pretrained weights stays near them; a fresh init would be far away
    assert float((trained["positional_embedding"] - pretrained["positional_embedding"]).abs().max()) < 0.01

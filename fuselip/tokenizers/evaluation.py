"""How good is a tokenizer: reconstruction PSNR per world and codebook usage, on fixed images.

The protocol (what `metrics.json` of a shipped tokenizer reports and tests/tokenizers/test_shipped.py
re-measures): images come from `fuselip.data.tasks.sample_images` for one world at a time, split "test";
PSNR is computed per image on decode(encode(x)) clamped to [0, 1] and averaged over images;
usage and perplexity are computed over all codes of all test images of both worlds together.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from fuselip.config import DataConfig
from fuselip.contract import Tokenizer
from fuselip.data.tasks import sample_images
from fuselip.images import to_tensor
from fuselip.tokenizers.quantizer import codebook_stats
from fuselip.tokenizers.titok import TiTokTokenizer

TEST_SEED = 20250603      # the test images of every tokenizer evaluation
TEST_IMAGES = 1024        # per world, for metrics.json
FIXED_BATCH = 64          # per world, the small batch a test re-measures quickly
VAL_SEED = 7              # validation images during training (split "val")


def psnr(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B,) PSNR in dB (reconstruction clamped to [0, 1])."""
    mse = (reconstruction.float().clamp(0, 1) - target.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


def world_images(world: str, split: str, n: int, seed: int, image_size: int) -> np.ndarray:
    """(n, S, S, 3) uint8 images of one world, as the tokenizer sees them in pairs."""
    data = DataConfig(worlds=[world], world_weights=[1.0], image_size=image_size)
    return sample_images(data, split, n, seed)


def test_images(image_size: int, worlds: Sequence[str] = ("shapes", "emoji"),
                n: int = TEST_IMAGES) -> dict[str, np.ndarray]:
    return {w: world_images(w, "test", n, TEST_SEED, image_size) for w in worlds}


def fixed_test_batch(image_size: int, worlds: Sequence[str] = ("shapes", "emoji")) -> dict[str, np.ndarray]:
    """The first FIXED_BATCH test images of each world (a prefix of `test_images` when generation is
    prefix-stable; either way a fixed, deterministic batch)."""
    return {w: world_images(w, "test", FIXED_BATCH, TEST_SEED, image_size) for w in worlds}


@torch.no_grad()
def evaluate(tokenizer: Tokenizer, images: dict[str, np.ndarray]) -> dict[str, Any]:
    """{world: (n, S, S, 3) uint8} -> {"psnr": {world: dB}, "usage", "perplexity", "codes_used"}, + for a TiTok
    trained on proxy codes whose proxy encoder is loaded (during training) "proxy_accuracy": {world: share of the
    grid cells whose code it predicts right}."""
    psnrs: dict[str, float] = {}
    accuracy: dict[str, float] = {}
    all_codes = []
    for world, array in images.items():
        x = to_tensor(array)
        codes = tokenizer.encode(x)
        psnrs[world] = round(float(psnr(tokenizer.decode(codes), x).mean()), 3)
        all_codes.append(codes)
        value = tokenizer.proxy_accuracy(x) if isinstance(tokenizer, TiTokTokenizer) else None
        if value is not None:
            accuracy[world] = round(value, 4)
    result: dict[str, Any] = {"psnr": psnrs}
    if accuracy:
        result["proxy_accuracy"] = accuracy
    stats = codebook_stats(torch.cat(all_codes), tokenizer.codebook_size)
    result.update(usage=round(stats["usage"], 4), perplexity=round(stats["perplexity"], 2),
                  codes_used=stats["codes_used"])
    return result


def shipped_metrics(tokenizer: Tokenizer, image_size: int) -> dict[str, Any]:
    """What metrics.json of a shipped tokenizer holds: the test split (TEST_IMAGES per world) and the
    fixed batch (FIXED_BATCH per world) that tests/tokenizers/test_shipped.py re-measures."""
    test = evaluate(tokenizer, test_images(image_size))
    fixed = evaluate(tokenizer, fixed_test_batch(image_size))
    return {"test": {**test, "images_per_world": TEST_IMAGES, "seed": TEST_SEED},
            "fixed_batch": {"psnr": fixed["psnr"], "images_per_world": FIXED_BATCH, "seed": TEST_SEED},
            "psnr_definition": "mean over images of 10*log10(1/MSE), pixels in [0, 1], decode(encode(x)) clamped"}

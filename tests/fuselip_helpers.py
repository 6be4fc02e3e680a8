"""Tiny stand-ins shared by the model / collate / engine tests (an untrained real GridTokenizer, random pairs)."""
from __future__ import annotations

import numpy as np
import torch

from fuselip.config import FuseLIPConfig, RunConfig, TokenizerConfig
from fuselip.data.types import Pair, Side
from fuselip.model import FuseLIP
from fuselip.tokenizers import build_tokenizer

IMAGE = 16  # pixels; space-to-depth 2, then a 4 x 4 grid = 16 tokens
TOKENIZER = dict(kind="grid", image_size=IMAGE, codebook_size=32, code_dim=8, channels=[8, 8], res_blocks=1, stem_patch=2)
ENCODER = dict(width=32, layers=2, heads=2, context_length=32)
WORDS = ["red", "blue", "circle", "square", "left", "right", "rotate", "degrees", "crop", "the", "small"]


def tokenizer(seed: int = 0):
    torch.manual_seed(seed)
    return build_tokenizer(TokenizerConfig(**TOKENIZER))


def model(seed: int = 0, **encoder) -> FuseLIP:
    tok = tokenizer(seed)
    torch.manual_seed(seed)
    return FuseLIP(FuseLIPConfig(**{**ENCODER, **encoder}), tok)


def run_config(steps: int = 4, batch: int = 8, **train) -> RunConfig:
    cfg = RunConfig()
    cfg.tokenizer = TokenizerConfig(**TOKENIZER)
    cfg.encoder = FuseLIPConfig(**ENCODER)
    cfg.train.batch_size, cfg.train.steps, cfg.train.warmup_steps = batch, steps, 2
    cfg.train.log_every, cfg.train.val_every, cfg.train.checkpoint_every = 1, 0, 0
    cfg.train.threads = 1  # tiny tensors: more threads only wait on each other on a busy machine
    for key, value in train.items():
        setattr(cfg.train, key, value)
    return cfg


def images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (IMAGE, IMAGE, 3), dtype=np.uint8) for _ in range(n)]


def text(rng) -> str:
    return " ".join(rng.choice(WORDS, size=rng.integers(1, 6)))


def pairs(n_groups: int = 12, seed: int = 0) -> list[Pair]:
    """Groups of 1-4 pairs: captions (image -> text) and transformations (image + text -> image)."""
    rng = np.random.default_rng(seed)
    out = []
    for g in range(n_groups):
        image = rng.integers(0, 256, (IMAGE, IMAGE, 3), dtype=np.uint8)
        if g % 2 == 0:
            out.append(Pair(Side(image, ""), Side(None, text(rng)), "caption", g))
        else:
            for k in range(int(rng.integers(1, 5))):
                target = np.ascontiguousarray(np.rot90(image, k))
                out.append(Pair(Side(image, f"rotate {90 * k} degrees"), Side(target, ""), "tgit", g))
    return out

"""Training an image tokenizer: the engine's loop (fuselip.engine) on a pool of images (fuselip.image_training).

    train(run_config, train_images, val_images, resume=...) -> tokenizer

`train_images` is a (M, S, S, 3) uint8 pool; every step draws a batch from it with a seeded generator. The
model supplies its loss (ImageTokenizer.training_loss) and whatever it does in stages through its begin_step /
end_step hooks (a TiTok trained on proxy codes switches from the proxy cross-entropy to pixels as a function
of the step alone). The run's checkpoint is `<train.out_dir>/checkpoint` (loadable with `fuselip.load_model`;
its extra.safetensors holds the optimiser moments, the quantiser's usage window and recent outputs, the step and
both RNG states), and `resume=True` continues it bit-exactly. Validation (every train.val_every steps and at the
end): PSNR per world, codebook usage and perplexity on `val_images` (fuselip.tokenizers.evaluation.evaluate).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from fuselip import image_training
from fuselip.config import RunConfig
from fuselip.tokenizers import build_tokenizer
from fuselip.tokenizers.base import ImageTokenizer
from fuselip.tokenizers.evaluation import evaluate


def build(cfg: RunConfig) -> ImageTokenizer:
    """The tokenizer of `cfg.tokenizer`, ready to train (TiTok on proxy codes: its frozen grid tokenizer loaded
    from tokenizer.proxy_checkpoint)."""
    torch.manual_seed(cfg.train.seed)
    model = build_tokenizer(cfg.tokenizer).to(cfg.train.device)
    model.prepare_training()
    return model


def validation_fn(val_images: dict[str, np.ndarray]) -> Callable[[nn.Module], dict]:
    """The engine's val_fn: PSNR per world, codebook usage and perplexity on `val_images`."""
    def val_fn(model: nn.Module) -> dict:
        assert isinstance(model, ImageTokenizer), type(model)
        return evaluate(model, val_images)
    return val_fn


def train(cfg: RunConfig, train_images: np.ndarray, val_images: dict[str, np.ndarray], *, resume: bool = False,
          progress: bool = True, log: Callable[[str], None] = print,
          stop_after: int | None = None) -> ImageTokenizer:
    """Trains `cfg.tokenizer` on `train_images` for `cfg.train.steps` steps (see module doc) and returns it.
    stop_after: end (with a checkpoint) after this many steps of this call, as if interrupted."""
    model = build(cfg)
    image_training.train(model, cfg, train_images, validation_fn(val_images), resume=resume, progress=progress,
                         log=log, stop_after=stop_after)
    model.reconstruct = True
    return model

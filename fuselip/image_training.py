"""Training on a pool of images (the image tokenizers and the MAE-pretrained ViT): the engine's workload.

Every step draws `train.batch_size` images at random from a (M, S, S, 3) uint8 pool with one seeded generator,
which the model may also use for its own random choices (the MAE's masks), so that a resumed run continues
exactly. The model follows `ImageModel`:

    model.training_loss(pixels (B, S, S, 3) uint8, generator) -> (loss, parts)  its own objective
    model.begin_step(step, steps, logged) / model.end_step(step, steps)           what it does in stages, as a
        function of the step alone (a tokenizer: pass z unquantised at first, re-seed dead codes, TiTok's proxy
        then pixel phase; `logged`: the step's parts are shown, so a loss that needs no reconstruction makes one)
"""
from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from fuselip import engine
from fuselip.config import RunConfig


@runtime_checkable
class ImageModel(Protocol):
    """What training on a pool of images reads of a model (the module docstring says what each member does)."""

    def training_loss(self, pixels: torch.Tensor, generator: torch.Generator | None = None
                      ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...

    def begin_step(self, step: int, steps: int, logged: bool = True) -> None: ...

    def end_step(self, step: int, steps: int) -> None: ...


class ImagePool:
    """The engine's workload (fuselip.engine.Workload) for an ImageModel and a pool of images."""

    unit = "images"

    def __init__(self, model: nn.Module, cfg: RunConfig, images: np.ndarray, device: torch.device):
        if not isinstance(model, ImageModel):
            raise TypeError(f"{type(model).__name__} cannot train on images: it lacks part of "
                            f"fuselip.image_training.ImageModel (training_loss, begin_step, end_step)")
        self.model: ImageModel = model
        self.cfg, self.device = cfg, device
        self.pool = torch.from_numpy(images)  # (M, S, S, 3) uint8
        self.generator = torch.Generator().manual_seed(cfg.train.seed)

    @property
    def split_groups(self) -> int:
        return 0  # no groups here

    def prepare(self) -> None:
        pass

    def next_batch(self, step: int) -> torch.Tensor:
        return torch.randint(0, len(self.pool), (self.cfg.train.batch_size,), generator=self.generator)  # (B,)

    def loss(self, indices: torch.Tensor, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.model.training_loss(self.pool[indices].to(self.device), self.generator)

    def before_step(self, step: int) -> None:
        t = self.cfg.train
        self.model.begin_step(step, t.steps, logged=(step + 1) % t.log_every == 0 or step + 1 == t.steps)

    def after_step(self, step: int) -> None:
        self.model.end_step(step, self.cfg.train.steps)

    def log_items(self) -> dict[str, float]:
        return {}

    def state(self) -> dict[str, torch.Tensor]:
        return {"rng.batches": self.generator.get_state()}

    def load_state(self, state: dict[str, torch.Tensor], step: int) -> None:
        self.generator.set_state(state["rng.batches"])


def train(model: nn.Module, cfg: RunConfig, images: np.ndarray, val_fn: Callable[[nn.Module], dict] | None = None,
          **kwargs) -> dict:
    """Trains `model` on the (M, S, S, 3) uint8 pool `images` through fuselip.engine.train (kwargs: its resume,
    progress, log, stop_at, stop_after), leaves it in eval mode, and returns the engine's summary."""
    device = torch.device(cfg.train.device)
    summary = engine.train(model, cfg, ImagePool(model, cfg, images, device), val_fn, out_dir=cfg.train.out_dir,
                           **kwargs)
    model.eval()
    return summary

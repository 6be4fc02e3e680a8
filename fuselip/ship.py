"""Shipping: one path from a trained model to the compact inference checkpoint of checkpoints/ (every family).

    ship(model, path, metrics, measure) -> path

writes config.json + model.safetensors (floating-point weights in `dtype` on disk: half the size) + metrics.json,
then loads the folder back and, when `measure` is given, measures the reloaded copy: metrics.json reports the
figures of the model as a user will load it, not of the one in memory. Each family says what it measures:
a pair model its validation again (fuselip.pair_training.ship_run), a tokenizer the test split
(fuselip.tokenizers.evaluation.shipped_metrics); the MAE ships its full-precision ViT unmeasured.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from fuselip import checkpoint as ckpt
from fuselip.contract import Checkpointable

SHIP_DTYPE = torch.float16  # shipped weights are half size on disk; their metrics are measured on that copy


def ship(model: Checkpointable, path: str | Path, metrics: dict,
         measure: Callable[[nn.Module], dict] | None = None, dtype: torch.dtype | None = SHIP_DTYPE) -> Path:
    """Writes the checkpoint with `metrics`; then `metrics | measure(reloaded model)` when `measure` is given."""
    path = ckpt.save_model(model, path, metrics=metrics, dtype=dtype)
    if measure is not None:
        device = next(model.parameters()).device if isinstance(model, nn.Module) else torch.device("cpu")
        loaded = ckpt.load_model(path).to(device)  # the model's own device: the same kernels
        ckpt.write_json_atomic(Path(path) / ckpt.METRICS_FILE, {**metrics, **measure(loaded)})
    return path

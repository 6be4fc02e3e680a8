"""Embedding every distinct side of a benchmark once (fuselip/evaluate.py): queries and candidates are
de-duplicated by content (`Side.key()`), sorted so that similar sequences share a batch, and encoded through the
encode API in batches, in float32, in inference mode.
"""
from __future__ import annotations

from typing import Iterable

import torch

from fuselip.contract import Encoder, eval_mode
from fuselip.data.types import Side

ENCODE_BATCH = 256  # sides per model.encode call


def embed_unique(model: Encoder, sides: Iterable[Side], batch_size: int = ENCODE_BATCH) -> dict[bytes, torch.Tensor]:
    """Sides -> {Side.key(): (D,) float32 embedding}, each distinct content encoded exactly once."""
    unique: dict[bytes, Side] = {}
    for side in sides:
        unique.setdefault(side.key(), side)
    # similar sequences in one batch (image or not, then text length): less padding for token models
    order = sorted(unique, key=lambda k: (unique[k].image is None, len(unique[k].text)))
    out: dict[bytes, torch.Tensor] = {}
    with eval_mode(model), torch.inference_mode():
        for start in range(0, len(order), batch_size):
            keys = order[start:start + batch_size]
            batch = [unique[k] for k in keys]
            images = [s.image for s in batch]
            texts = [s.text if s.text else None for s in batch]
            emb = model.encode(images=images if any(i is not None for i in images) else None,
                               texts=texts if any(t is not None for t in texts) else None)
            emb = torch.as_tensor(emb).detach().float().cpu()
            if emb.shape[0] != len(batch):
                raise ValueError(f"model.encode returned {emb.shape[0]} rows for {len(batch)} inputs")
            out.update(zip(keys, emb))
    return out

"""Length buckets: the rows of a batch side run in up to two groups of similar length, each trimmed to its own
longest row, so that a side mixing short texts with image sequences computes no image-length padding for the texts.
FuseLIP's `_masked_side` runs every training pass this way (`encoder.length_buckets`); each row's result does not
depend on the padding, so the grouping changes nothing but the time (tests/test_model.py)."""
from __future__ import annotations

from typing import Callable

import torch


def length_buckets(lengths: torch.Tensor, max_buckets: int) -> list[torch.Tensor]:
    """Row indices split into 1 or 2 groups of similar length, minimising the padded area sum(rows x longest).

    A split is made only when it saves at least a tenth of the single-bucket area."""
    if max_buckets not in (1, 2):
        raise ValueError(f"encoder.length_buckets must be 1 or 2, got {max_buckets}")
    order = torch.argsort(lengths.cpu(), stable=True)
    if max_buckets == 1 or len(order) < 2:
        return [order.to(lengths.device)]
    sorted_lengths = lengths.cpu()[order]
    B, longest = len(order), int(sorted_lengths[-1])
    split = torch.arange(1, B)                                                  # first bucket = rows [0, split)
    area = split * sorted_lengths[split - 1] + (B - split) * longest            # (B-1,)
    best = int(torch.argmin(area))
    if int(area[best]) > 0.9 * B * longest:
        return [order.to(lengths.device)]
    cut = int(split[best])
    return [order[:cut].to(lengths.device), order[cut:].to(lengths.device)]


def run_in_buckets(run: Callable, lengths: torch.Tensor, max_buckets: int, ids: torch.Tensor,
                   uniform: torch.Tensor | None):
    """`run(ids, uniform)` -> (embedding (b, D), summed loss, count) once per length bucket of the rows of `ids`
    (B, T) and their mask draws `uniform` (B, >= T) or None -> (embedding (B, D) in row order, summed loss, count)."""
    buckets = length_buckets(lengths, max_buckets)
    embeddings, ce, count = [], 0.0, 0.0
    for rows in buckets:
        e, c, n = run(ids[rows], None if uniform is None else uniform[rows])
        embeddings.append(e)
        ce, count = ce + c, count + n
    order = torch.cat(buckets)                                              # (B,) bucket order -> row
    embedding = torch.cat(embeddings)[torch.argsort(order)]                 # (B, D) back in row order
    return embedding, ce, count

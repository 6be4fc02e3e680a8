"""FuseLIP's late-fusion ablation, `encoder.fusion="score"`: the same model, but image and text never meet.

Everything of fuselip/model.py stays as it is (weights, masking, MMM head, SigLIP); only the sequences change. A
side's fused sequence `[img_1 … img_N, sot, t_1 … t_k, eot]` runs as two sequences of its own, its image part
`[img_1 … img_N, sot, eot]` and its text part `[sot, t_1 … t_k, eot]` (split_modalities), and the side's embedding
is normalise(e_image + e_text), or the one part a row has: SigLIP-SF's rule (fuselip/baselines.py), with
FuseLIP's encoder as both towers. Every token keeps the MMM mask draw of its fused position, so the same tokens are
masked as in early fusion (tests/test_model.py).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from fuselip import vocab


def split_modalities(ids: torch.Tensor, uniform: torch.Tensor | None = None):
    """Fused sequences -> their image part and their text part as sequences of their own (fusion="score").

    ids (B, T) rows `[img_1 … img_N, sot, t_1 … t_k, eot, pad …]` ->
        image part (B, T): `[img_1 … img_N, sot, eot]`, the layout of an image alone (vocab.build_sequence)
        text part  (B, T): `[sot, t_1 … t_k, eot]`, the layout of a text alone
    each with the `uniform` (B, >= T) mask draws of the tokens' fused positions (None stays None) and a (B,) bool
    "this row has the part". A row has an image part when it holds image tokens and a text part when its text is
    not empty (or when it has no image at all), so every row has at least one part.
    """
    B, T = ids.shape
    eot = vocab.eot_positions(ids)                                              # (B,)
    n_image = vocab.is_image(ids).sum(dim=1)                                    # (B,): image tokens come first
    has_image = n_image > 0
    has_text = (eot - n_image > 1) | ~has_image
    pos = torch.arange(T, device=ids.device)[None, :]                           # (1, T)
    start = n_image[:, None]                                                    # (B, 1): where sot stands
    image = torch.where(pos < start, ids, vocab.PAD)                            # (B, T)
    image = torch.where(pos == start, vocab.SOT, image)
    image = torch.where(pos == start + 1, vocab.EOT, image)
    source = (pos + start).clamp(max=T - 1)                                     # (B, T): fused position of text slot
    text = torch.where(pos <= (eot[:, None] - start), ids.gather(1, source), vocab.PAD)
    uniform_image = uniform_text = None
    if uniform is not None:
        uniform = uniform[:, :T]                                                # (B, T)
        uniform_image, uniform_text = uniform, uniform.gather(1, source)        # sot keeps its draw in both parts
    return [(image, uniform_image, has_image), (text, uniform_text, has_text)]


def score_fused_side(encode: Callable, ids: torch.Tensor, uniform: torch.Tensor | None, width: int):
    """One side of a batch, fused by score -> (embedding (B, D), summed MMM cross-entropy, number of masked tokens).

    `encode(part_ids, part_uniform)` is FuseLIP's own pass over sequences (the model's `_masked_side`), called once
    per part on the rows that have it; `width` is the embedding dimension D."""
    embedding = torch.zeros(ids.shape[0], width, device=ids.device)             # (B, D)
    ce, count = 0.0, 0.0
    for part_ids, part_uniform, present in split_modalities(ids, uniform):
        rows = present.nonzero().squeeze(1)                                     # (R,)
        if len(rows) == 0:
            continue
        e, c, n = encode(part_ids[rows], None if part_uniform is None else part_uniform[rows])
        embedding = embedding.index_add(0, rows, e)                             # (B, D): sum of the unit parts
        ce, count = ce + c, count + n
    return F.normalize(embedding, dim=-1), ce, count

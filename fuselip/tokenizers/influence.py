"""Per-token influence: which pixels a token controls (drawn by fuselip.viz).

For a grid tokenizer the map of token i is (mostly) its own 8×8 cell; for TiTok a token can change
pixels anywhere in the image, since its latent token attended to the whole image.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from fuselip.tokenizers.base import ImageTokenizer


@torch.inference_mode()
def influence_maps(tokenizer: ImageTokenizer, codes: torch.Tensor,
                   replacement: torch.Tensor | None = None) -> torch.Tensor:
    """For any tokenizer (an ImageTokenizer of fuselip/tokenizers/base.py, which calls this from its own
    `influence_maps`): how much each pixel of decode(codes) changes when one token is replaced.

    codes: (N,) long. replacement: (N,) long, the code put in place of each token; by default the code
    least similar to the original one, so the map shows the most each token can change. Returns (N, S, S).
    """
    codes = torch.as_tensor(codes).long().reshape(-1)
    n = codes.shape[0]
    if replacement is None:
        book = tokenizer.quantizer.codes().float()
        book = book - book.mean(0)
        similarity = book[codes] @ book.t()         # (N, K)
        replacement = similarity.argmin(dim=-1)
    variants = codes.repeat(n, 1)                    # (N, N): row i has token i replaced
    variants[torch.arange(n), torch.arange(n)] = torch.as_tensor(replacement).long().reshape(-1)
    # one batch for the original and all variants: the same kernels decode both, so an untouched pixel
    # shows exactly zero change (bf16 kernels may round differently for another batch size)
    decoded = tokenizer.decode(torch.cat([codes[None], variants]))  # (1 + N, 3, S, S)
    base, changed = decoded[:1], decoded[1:]
    return (changed - base).abs().mean(dim=1)        # (N, S, S)

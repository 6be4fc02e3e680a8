"""A patch tokenizer: each token is the nearest codebook entry of ONE non-overlapping p×p patch of pixels.

    image (B, 3, 64, 64) ─cut into 8×8 patches─▶ (B, 64, 192) ─nearest code─▶ 8×8 grid of codes (N = 64)
    codes ─codebook rows (patches of pixels)─▶ (B, 64, 192) ─put back in place─▶ (B, 3, 64, 64)

There is no network: the codebook rows ARE patches of pixels, and training is k-means (the quantiser's codebook
loss moves each code towards the mean of the patches it wins; dead codes are re-seeded from recent patches).
Unlike the grid VQ-VAE, whose convolutional encoder sees beyond its cell, a token here depends on its own patch
only: what moves in the image moves in the token grid (a flip of the image flips the grid and every patch).
It is the tokenizer of the design's prototype ("k-means codes of non-overlapping 8×8 patches").
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from fuselip.checkpoint import register
from fuselip.config import TokenizerConfig
from fuselip.tokenizers.base import ImageTokenizer


@register("tokenizer-patch")
class PatchTokenizer(ImageTokenizer):
    def __init__(self, config: TokenizerConfig):
        p = config.patch_size
        if config.image_size % p:
            raise ValueError(f"patch tokenizer: image_size {config.image_size} is not divisible by patch_size {p}")
        if config.code_dim != 3 * p * p:
            raise ValueError(f"patch tokenizer: code_dim must be 3 x patch_size^2 = {3 * p * p} (a code is a patch "
                             f"of pixels), got {config.code_dim}")
        if config.l2_codes:
            raise ValueError("patch tokenizer: l2_codes would throw away each patch's brightness; set it to false")
        super().__init__(config)
        self.grid_size = config.image_size // p
        self.num_tokens = self.grid_size ** 2

    def encode_latents(self, x):
        p = self.config.patch_size
        return F.pixel_unshuffle(x, p).flatten(2).transpose(1, 2)          # (B, g*g, 3*p*p), row by row

    def decode_latents(self, z_q):
        b, n, d = z_q.shape
        z_q = z_q.transpose(1, 2).reshape(b, d, self.grid_size, self.grid_size)  # (B, 3*p*p, g, g)
        return F.pixel_shuffle(z_q, self.config.patch_size) * 0.5 + 0.5          # (B, 3, S, S)

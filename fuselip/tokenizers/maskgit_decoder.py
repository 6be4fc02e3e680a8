"""MaskGIT-VQGAN's convolutional decoder: how the official TiTok-S-128 turns its predictions into pixels.

TiTok-S was trained (stage 1) to predict, for each of the 16×16 patches, which of the 1,024 codes a frozen
MaskGIT-VQGAN would use there ("proxy codes"); stage 2 fine-tuned this VQGAN decoder on the result. Its release file
holds both under `pixel_quantize.embedding.weight` (1024 × 256) and `pixel_decoder.*`; fuselip.tokenizers.titok_official
feeds it the probability-weighted proxy-code embedding (B, 256, 16, 16).

The architecture (fixed by MaskGIT: 128 base channels, multipliers 1, 1, 2, 2, 4, two residual blocks per level,
GroupNorm with 32 groups, SiLU, no attention):

    (B, 256, 16, 16) -conv_in 3×3-> 512 ch -> mid: 2 residual blocks
      -> level 4 (512 ch), ×2 -> level 3 (256), ×2 -> level 2 (256), ×2 -> level 1 (128), ×2 -> level 0 (128)
         each level: 2 residual blocks (the first changes the channels), then nearest ×2 + 3×3 conv (not level 0)
      -> GroupNorm, SiLU, conv_out 3×3 -> (B, 3, 256, 256)

Faithful to a quirk of the original code: when a residual block changes its channel count, the shortcut is a 1×1
convolution of the block's *output* (not of its input), so the block returns h + conv1x1(h).
Every "same" padding of the original is symmetric here (odd kernels, stride 1), i.e. an ordinary padding of k // 2.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

HIDDEN = 128
CHANNEL_MULT = (1, 1, 2, 2, 4)
RES_BLOCKS = 2
GROUPS = 32
EPS = 1e-6


class ResnetBlock(nn.Module):
    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(GROUPS, channels_in, eps=EPS)
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(GROUPS, channels_out, eps=EPS)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, padding=1, bias=False)
        self.nin_shortcut = nn.Conv2d(channels_out, channels_out, 1, bias=False) if channels_in != channels_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        residual = x if self.nin_shortcut is None else self.nin_shortcut(h)  # the original's quirk, see above
        return h + residual


class UpLevel(nn.Module):
    """Level i: two residual blocks to HIDDEN·mult[i] channels, then (i > 0) nearest ×2 and a 3×3 conv."""

    def __init__(self, level: int):
        super().__init__()
        last = level == len(CHANNEL_MULT) - 1
        channels_in = HIDDEN * CHANNEL_MULT[level if last else level + 1]
        channels_out = HIDDEN * CHANNEL_MULT[level]
        self.block = nn.ModuleList(ResnetBlock(channels_in if i == 0 else channels_out, channels_out)
                                   for i in range(RES_BLOCKS))
        self.upsample_conv = nn.Conv2d(channels_out, channels_out, 3, padding=1) if level > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block:
            x = block(x)
        if self.upsample_conv is not None:
            x = self.upsample_conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))  # (B, C, 2h, 2w)
        return x


class MaskGitDecoder(nn.Module):
    Z_CHANNELS = 256

    def __init__(self):
        super().__init__()
        top = HIDDEN * CHANNEL_MULT[-1]
        self.conv_in = nn.Conv2d(self.Z_CHANNELS, top, 3, padding=1)
        self.mid = nn.ModuleList(ResnetBlock(top, top) for _ in range(RES_BLOCKS))
        self.up = nn.ModuleList(UpLevel(level) for level in range(len(CHANNEL_MULT)))  # up[i] is level i
        self.norm_out = nn.GroupNorm(GROUPS, HIDDEN * CHANNEL_MULT[0], eps=EPS)
        self.conv_out = nn.Conv2d(HIDDEN * CHANNEL_MULT[0], 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, 256, g, g) proxy-code embeddings -> (B, 3, 16·g, 16·g) pixels (about [0, 1], not clamped)."""
        x = self.conv_in(z)
        for block in self.mid:
            x = block(x)
        for level in reversed(self.up):  # coarsest level first
            x = level(x)
        return self.conv_out(F.silu(self.norm_out(x)))

"""A 2-D VQ-VAE: each token is the code of one image region.

    image (B, 3, 64, 64) ─fold 4×4 pixels into channels─▶ (B, 48, 16, 16) ─conv─▶ … ─halve─▶ (B, D, 8, 8)
        ─quantise─▶ 8×8 grid of codes (N = 64, read row by row)
    codes ─codebook rows─▶ (B, D, 8, 8) ─conv, double─▶ … ─conv─▶ (B, 48, 16, 16) ─unfold─▶ (B, 3, 64, 64)

Pixels are folded into channels first (space-to-depth, like a ViT's patchify) and unfolded at the very end:
on a CPU, convolutions over many channels at low resolution run far faster than thin convolutions at full
resolution. One resolution per entry of `config.channels`, each after the first at half the previous side.
The encoder is light (it runs for every image FuseLIP sees); the decoder carries more residual blocks.
No normalisation layers: the network is small, and train and eval modes compute the same function.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fuselip.checkpoint import register
from fuselip.config import TokenizerConfig
from fuselip.tokenizers.base import ImageTokenizer


class ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.GELU(), nn.Conv2d(channels, channels, 3, padding=1),
                                  nn.GELU(), nn.Conv2d(channels, channels, 1))

    def forward(self, x):
        return x + self.body(x)


class Upsample(nn.Module):
    """Doubles the side: a 1×1 convolution to 4× the channels, then depth-to-space."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, 4 * c_out, 1)

    def forward(self, x):
        return F.pixel_shuffle(self.conv(x), 2)


@register("tokenizer-grid")
class GridTokenizer(ImageTokenizer):
    def __init__(self, config: TokenizerConfig):
        super().__init__(config)
        p, ch = config.stem_patch, config.channels
        factor = p * 2 ** (len(ch) - 1)
        if not ch or config.image_size % factor:
            raise ValueError(f"grid tokenizer: image_size {config.image_size} is not divisible by stem_patch "
                             f"{p} x 2^{len(ch) - 1} = {factor} (channels={ch})")
        self.grid_size = config.image_size // factor
        self.num_tokens = self.grid_size ** 2
        pixels = 3 * p * p  # channels after folding p×p pixels

        enc = [nn.PixelUnshuffle(p), nn.Conv2d(pixels, ch[0], 3, padding=1)]
        for c_prev, c in zip(ch, ch[1:]):
            enc += [nn.GELU(), nn.Conv2d(c_prev, c, 2, stride=2)]  # halve the side
        enc += [ResBlock(ch[-1]) for _ in range(config.res_blocks)]
        enc += [nn.GELU(), nn.Conv2d(ch[-1], config.code_dim, 1)]
        self.encoder = nn.Sequential(*enc)

        dch = [max(1, round(c * config.decoder_channel_mult)) for c in ch]
        dec: list[nn.Module] = [nn.Conv2d(config.code_dim, dch[-1], 3, padding=1)]
        dec += [ResBlock(dch[-1]) for _ in range(config.decoder_res_blocks)]
        for c_prev, c in zip(dch[::-1], dch[::-1][1:]):
            dec += [nn.GELU(), Upsample(c_prev, c)]
            dec += [ResBlock(c) for _ in range(config.decoder_stage_blocks)]
        dec += [nn.GELU(), nn.Conv2d(dch[0], pixels, 3, padding=1), nn.PixelShuffle(p)]
        self.decoder = nn.Sequential(*dec)
        self.to(memory_format=torch.channels_last)  # faster convolutions on CPU

    def encode_latents(self, x):
        z = self.encoder(x.contiguous(memory_format=torch.channels_last))  # (B, D, g, g)
        return z.flatten(2).transpose(1, 2)                                # (B, g*g, D), row by row

    def decode_latents(self, z_q):
        b, n, d = z_q.shape
        z_q = z_q.transpose(1, 2).reshape(b, d, self.grid_size, self.grid_size)  # (B, D, g, g)
        return self.decoder(z_q.contiguous(memory_format=torch.channels_last)) * 0.5 + 0.5  # (B, 3, S, S)

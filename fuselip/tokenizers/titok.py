"""A TiTok-style 1-D tokenizer: N latent tokens that are not tied to image regions (shared/PAPER.md).

Encoder:  [patch_1 … patch_P, latent_1 … latent_N] ─ViT─▶ keep the N latent outputs ─linear─▶ (B, N, D) ─VQ─▶ codes
Decoder:  [mask × P, code_1 … code_N]               ─ViT─▶ keep the P patch outputs  ─linear─▶ patches ─▶ image

The latent tokens are learned vectors appended to the patch sequence; through attention each one can read
the whole image, so what a token encodes is learned, not fixed to a region. The decoder starts from one
learned mask token repeated over the patch grid and fills it in from the quantised latents.
The paper's sizes (256 px, 16-px patches, 128 tokens) are presets `small` / `base` of this same module.
Optionally (`pixel_decoder_channels`) the decoder's patch tokens feed a small convolutional pixel decoder
instead of a linear map to pixels, as TiTok's second training stage feeds a VQGAN's convolutional decoder:
the tokens stay 1-D, only the last step from patch features to pixels is convolutional.
"""
from __future__ import annotations

import torch
from torch import nn

from fuselip.checkpoint import register
from fuselip.config import TokenizerConfig
from fuselip.tokenizers.base import ImageTokenizer
from fuselip.tokenizers.grid import ResBlock, Upsample

EMBED_INIT_STD = 0.02  # learned embeddings (positions, latent tokens, mask token), as in ViT


class Block(nn.Module):
    """Pre-LayerNorm transformer block with bidirectional attention."""

    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        if width % heads:
            raise ValueError(f"titok: width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x):
        b, t, w = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        # written out (not F.scaled_dot_product_attention): with bf16 autocast on CPU the fused kernel's
        # backward is several times slower than these two small batched matmuls
        weights = (q @ k.transpose(-2, -1) * (w // self.heads) ** -0.5).softmax(dim=-1)  # (B, H, T, T)
        a = weights.to(v.dtype) @ v                          # (B, H, T, w/H)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, w))  # (B, T, W)
        return x + self.mlp(self.ln2(x))


class ViT(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio) for _ in range(layers))
        self.ln = nn.LayerNorm(width)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.ln(x)


@register("tokenizer-titok")
class TiTokTokenizer(ImageTokenizer):
    def __init__(self, config: TokenizerConfig):
        super().__init__(config)
        p, s = config.patch_size, config.image_size
        if s % p:
            raise ValueError(f"titok: image_size {s} is not divisible by patch_size {p}")
        self.grid = s // p
        self.num_patches = self.grid ** 2
        self.num_tokens = config.num_latent_tokens
        w = config.width
        dw = config.decoder_width or w
        dl = config.decoder_layers or config.layers
        dh = config.decoder_heads or config.heads

        # encoder
        self.patch_embed = nn.Linear(3 * p * p, w)
        self.enc_pos = nn.Parameter(torch.randn(self.num_patches + self.num_tokens, w) * EMBED_INIT_STD)
        self.latents = nn.Parameter(torch.randn(self.num_tokens, w) * EMBED_INIT_STD)
        self.encoder = ViT(w, config.layers, config.heads, config.mlp_ratio)
        self.to_code = nn.Linear(w, config.code_dim)
        # decoder
        self.from_code = nn.Linear(config.code_dim, dw)
        self.mask_token = nn.Parameter(torch.randn(dw) * EMBED_INIT_STD)
        self.dec_pos = nn.Parameter(torch.randn(self.num_patches + self.num_tokens, dw) * EMBED_INIT_STD)
        self.decoder = ViT(dw, dl, dh, config.mlp_ratio)
        ch = config.pixel_decoder_channels
        if not ch:
            self.to_pixels = nn.Linear(dw, 3 * p * p)
            self.pixel_decoder = None
        else:  # patch tokens -> (B, c0, g, g) feature map -> convolutions, doubling the side per entry
            fold = p // 2 ** (len(ch) - 1)  # pixels per side folded into channels at the end
            if fold < 1 or fold * 2 ** (len(ch) - 1) != p:
                raise ValueError(f"titok: pixel_decoder_channels {ch} (one doubling per entry after the first) "
                                 f"do not divide patch_size {p}")
            self.to_pixels = nn.Linear(dw, ch[0])
            layers = [ResBlock(ch[0]) for _ in range(config.decoder_stage_blocks)]
            for c_prev, c in zip(ch, ch[1:]):
                layers += [nn.GELU(), Upsample(c_prev, c)]
                layers += [ResBlock(c) for _ in range(config.decoder_stage_blocks)]
            layers += [nn.GELU(), nn.Conv2d(ch[-1], 3 * fold * fold, 3, padding=1), nn.PixelShuffle(fold)]
            self.pixel_decoder = nn.Sequential(*layers).to(memory_format=torch.channels_last)

    def patchify(self, x):
        b, c, s, _ = x.shape
        p, g = self.config.patch_size, self.grid
        x = x.reshape(b, c, g, p, g, p).permute(0, 2, 4, 1, 3, 5)  # (B, g, g, 3, p, p)
        return x.reshape(b, g * g, c * p * p)                       # (B, P, 3·p·p)

    def unpatchify(self, x):
        b = x.shape[0]
        p, g = self.config.patch_size, self.grid
        x = x.reshape(b, g, g, 3, p, p).permute(0, 3, 1, 4, 2, 5)  # (B, 3, g, p, g, p)
        return x.reshape(b, 3, g * p, g * p)                        # (B, 3, S, S)

    def encode_latents(self, x):
        b = x.shape[0]
        tokens = torch.cat([self.patch_embed(self.patchify(x)),
                            self.latents.expand(b, -1, -1)], dim=1) + self.enc_pos  # (B, P+N, W)
        out = self.encoder(tokens)
        return self.to_code(out[:, self.num_patches:])                               # (B, N, D)

    def decode_latents(self, z_q):
        b = z_q.shape[0]
        tokens = torch.cat([self.mask_token.expand(b, self.num_patches, -1),
                            self.from_code(z_q.to(self.mask_token.dtype))], dim=1) + self.dec_pos  # (B, P+N, W')
        out = self.to_pixels(self.decoder(tokens)[:, :self.num_patches])            # (B, P, 3·p·p or c0)
        if self.pixel_decoder is None:
            return self.unpatchify(out) * 0.5 + 0.5                                   # (B, 3, S, S)
        g = self.grid
        features = out.transpose(1, 2).reshape(b, -1, g, g)                          # (B, c0, g, g)
        return self.pixel_decoder(features.contiguous(memory_format=torch.channels_last)) * 0.5 + 0.5


"""A TiTok-style 1-D tokenizer: N latent tokens that are not tied to image regions (shared/PAPER.md).

Encoder:  [patch_1 … patch_P, latent_1 … latent_N] ─ViT─▶ keep the N latent outputs ─linear─▶ (B, N, D) ─VQ─▶ codes
Decoder:  [mask × P, code_1 … code_N]               ─ViT─▶ keep the P patch outputs  ─linear─▶ patches ─▶ image

The latent tokens are learned vectors appended to the patch sequence; through attention each one can read
the whole image, so what a token encodes is learned, not fixed to a region. The decoder starts from one
learned mask token repeated over the patch grid and fills it in from the quantised latents.
The paper's sizes (256 px, 16-px patches, 128 tokens) are presets `small` / `base` of this same module.
"""
from __future__ import annotations

import torch
from torch import nn

from fuselip.checkpoint import register
from fuselip.config import TokenizerConfig
from fuselip.tokenizers.base import ImageTokenizer


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

        # encoder (embeddings start at scale width^-1/2 as in TiTok: latent tokens that start too alike
        # tend to stay alike and all pick the same code)
        self.patch_embed = nn.Linear(3 * p * p, w)
        self.enc_pos = nn.Parameter(torch.randn(self.num_patches + self.num_tokens, w) * w ** -0.5)
        self.latents = nn.Parameter(torch.randn(self.num_tokens, w) * w ** -0.5)
        self.encoder = ViT(w, config.layers, config.heads, config.mlp_ratio)
        self.to_code = nn.Linear(w, config.code_dim)
        # decoder
        self.from_code = nn.Linear(config.code_dim, dw)
        self.mask_token = nn.Parameter(torch.randn(dw) * dw ** -0.5)
        self.dec_pos = nn.Parameter(torch.randn(self.num_patches + self.num_tokens, dw) * dw ** -0.5)
        self.decoder = ViT(dw, dl, dh, config.mlp_ratio)
        self.to_pixels = nn.Linear(dw, 3 * p * p)

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
        out = self.decoder(tokens)
        return self.unpatchify(self.to_pixels(out[:, :self.num_patches])) * 0.5 + 0.5  # (B, 3, S, S)


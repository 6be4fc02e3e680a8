"""The official TiTok tokenizer (bytedance/1d-tokenizer), as the released FuseLIP models use it: our code, their weights.

fuselip/tokenizers/titok.py is this project's own TiTok-*style* tokenizer (trained here, on CPU). The released models
(chs20/FuseLIP-S/B) were trained on the codes of the *official* TiTok, whose encoder differs in ways that change every
code, so it gets a module of its own that holds the official weights under their own names (shared/PAPER.md):

    pixels (B, 3, 256, 256) in [0, 1]          no mean/std, no [-1, 1] rescaling (our TiTok rescales)
      -> patch_embed: a 16×16 stride-16 convolution           (B, W, 16, 16) -> (B, 256, W)
      -> [class token, patch_1 … patch_256] + positional_embedding           (B, 257, W)
      -> append latent_tokens + latent_token_positional_embedding            (B, 257 + N, W)
      -> ln_pre, L pre-LN blocks (bidirectional), keep the N latent outputs, ln_post           (B, N, W)
      -> conv_out, a 1×1 convolution to the code dimension C                 (B, N, C)
      -> nearest codebook entry, in float32 (l2-normalised codes and latents for TiTok-S)   (B, N) codes

The "legacy" reshape: TiTok-S-128 was trained with a bug kept for compatibility. Before conv_out its (B, N, W)
latents are *reinterpreted* in memory as (B, W, N) instead of being transposed, so the "channels" conv_out mixes are
W consecutive numbers of the flattened latent matrix, not one token's features. The BL-128-VQ8k config turns it off
(`is_legacy: False`). `OfficialTiTokConfig.legacy` says which one a module is.

Decoding (optional, only where the decoder's own weights are in the file; the FuseLIP releases hold the encoder only):
    codes -> codebook rows (B, N, C) -> decoder_embed -> [class, mask × 256] + [latents] -> ViT -> the 256 patch
    outputs (B, W', 16, 16), then
    - TiTok-BL (not legacy): ffn, a 1×1 conv to 16·16·3 pixel values per patch, unfolded to (B, 3, 256, 256),
      then a 3×3 conv_out: the pixels.
    - TiTok-S (legacy): ffn (1×1 conv, tanh, 1×1 conv) predicts, per patch, logits over the 1,024 *proxy codes* of a
      frozen MaskGIT-VQGAN (TiTok's stage-1 targets). Pixels need that VQGAN's codebook and convolutional decoder
      (`pixel_quantize`, `pixel_decoder`: fuselip/tokenizers/maskgit_decoder.py). TiTok's stage-2 weights
      (`finetune_decoder: true` in its config) hold them; a file without them cannot be decoded to pixels, and
      `decode` says so instead of guessing.

Token maps (what the app draws for a 1-D token): the decoder-based influence maps of fuselip/tokenizers/influence.py
need 129 decodes, minutes on a CPU for these decoders, and the released FuseLIP files have no decoder at all. So
`token_maps` shows where each latent token *reads* from instead: attention rollout (Abnar & Zuidema, 2020) through the
encoder, from each latent token to the 16×16 patches. `encode` of a single image records these maps on the way, so the
app's attention tab pays for one encoder pass, not two.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fuselip.images import squash, to_tensor
from fuselip.block import Block
from fuselip.tokenizers.maskgit_decoder import MaskGitDecoder

KIND = "titok-official"
HEAD_DIM = 64  # every TiTok size (small 512/8, base 768/12, large 1024/16) has 64-wide attention heads
MASKGIT_PROXY_CODES = 1024  # the frozen MaskGIT-VQGAN whose codes a legacy TiTok decoder predicts
MAPS_MEMO = 8  # token maps of the last few single-image encodes, kept for `token_maps`


@dataclass
class OfficialTiTokConfig:
    """The architecture of one official TiTok; `fuselip.pretrained` reads it off a release's weights and name."""
    name: str = ""                  # where it came from, e.g. "yucornetto/tokenizer_titok_s128_imagenet"
    kind: str = KIND
    image_size: int = 256
    patch_size: int = 16
    width: int = 512                # encoder width W (S: 512, B: 768)
    layers: int = 8                 # encoder blocks (S: 8, B: 12)
    heads: int = 8
    num_latent_tokens: int = 128
    code_dim: int = 12              # C (S: 12, BL: 64)
    codebook_size: int = 4096       # K (S: 4096, BL-VQ8k: 8192)
    l2_codes: bool = True           # S: codes and latents l2-normalised before the lookup
    legacy: bool = True             # S: the legacy reshape before conv_out (see the module docstring)
    decoder_width: int = 0          # 0: no decoder (the FuseLIP releases hold the encoder only)
    decoder_layers: int = 0
    decoder_heads: int = 0
    pixel_decoder: bool = False     # legacy decoders only: the MaskGIT-VQGAN codebook + decoder are in the file
    encode_bf16: bool = False       # encoder under bf16 autocast on CPU (~2x faster); the lookup stays float32.
                                    # False reproduces the reference's float32 codes exactly


def blocks(width: int, layers: int, heads: int) -> nn.ModuleList:
    """Pre-LN transformer blocks with 4x MLPs: fuselip.block.Block is the official block's maths (open_clip's
    ResidualAttentionBlock) under our parameter names."""
    return nn.ModuleList(Block(width, heads, mlp_ratio=4.0) for _ in range(layers))


def run_blocks(module: TiTokEncoder | TiTokDecoder, x: torch.Tensor, keep_attention: bool = False):
    """ln_pre, then every block of `module.transformer`: (B, T, W) -> (B, T, W) (before ln_post), and with
    keep_attention one (B, H, T, T) attention tensor per block (else Nones)."""
    keep = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)         # no padding in an image sequence
    x = module.ln_pre(x)
    attentions = []
    for block in module.transformer:
        x, weights = block(x, keep, return_attention=keep_attention)
        attentions.append(weights)
    return x, attentions


class TiTokEncoder(nn.Module):
    def __init__(self, c: OfficialTiTokConfig):
        super().__init__()
        grid = c.image_size // c.patch_size
        self.patch_embed = nn.Conv2d(3, c.width, kernel_size=c.patch_size, stride=c.patch_size)
        self.class_embedding = nn.Parameter(torch.zeros(1, c.width))
        self.positional_embedding = nn.Parameter(torch.zeros(grid * grid + 1, c.width))
        self.latent_token_positional_embedding = nn.Parameter(torch.zeros(c.num_latent_tokens, c.width))
        self.ln_pre = nn.LayerNorm(c.width)
        self.transformer = blocks(c.width, c.layers, c.heads)
        self.ln_post = nn.LayerNorm(c.width)
        self.conv_out = nn.Conv2d(c.width, c.code_dim, kernel_size=1)


class TiTokDecoder(nn.Module):
    def __init__(self, c: OfficialTiTokConfig):
        super().__init__()
        grid, w, p = c.image_size // c.patch_size, c.decoder_width, c.patch_size
        self.decoder_embed = nn.Linear(c.code_dim, w)
        self.class_embedding = nn.Parameter(torch.zeros(1, w))
        self.positional_embedding = nn.Parameter(torch.zeros(grid * grid + 1, w))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, w))
        self.latent_token_positional_embedding = nn.Parameter(torch.zeros(c.num_latent_tokens, w))
        self.ln_pre = nn.LayerNorm(w)
        self.transformer = blocks(w, c.decoder_layers, c.decoder_heads)
        self.ln_post = nn.LayerNorm(w)
        self.conv_out: nn.Module
        if c.legacy:  # logits over the MaskGIT-VQGAN proxy codes, per patch
            self.ffn = nn.Sequential(nn.Conv2d(w, 2 * w, 1), nn.Tanh(), nn.Conv2d(2 * w, MASKGIT_PROXY_CODES, 1))
            self.conv_out = nn.Identity()
        else:         # pixels directly: p·p·3 values per patch, then a 3×3 convolution over the image
            self.ffn = nn.Sequential(nn.Conv2d(w, p * p * 3, 1))
            self.conv_out = nn.Conv2d(3, 3, 3, padding=1)


class Codebook(nn.Module):
    """An official quantiser's codebook, under its state-dict name `<quantiser>.embedding.weight` (K, C)."""

    def __init__(self, codes: int, dim: int):
        super().__init__()
        self.embedding = nn.Embedding(codes, dim)


class OfficialTiTok(nn.Module):
    """An official TiTok with this project's tokenizer interface (what FuseLIP, the token cache, the probe and the
    app call): `encode`, `decode`, `prepare`, `tokenize`, `token_maps`, `codebook_size`, `num_tokens`, `config`.

    State-dict keys are the official ones (`latent_tokens`, `encoder.patch_embed.weight`, `quantize.embedding.weight`,
    …) except inside the blocks, where the official `transformer.{i}.attn.in_proj_weight`, `.mlp.c_fc`, … are our
    Block's `transformer.{i}.qkv.weight`, `.fc`, … (fuselip.pretrained does the renaming). The initial weights are
    placeholders: this module is always filled from a file.
    """

    resize_mode = "squash"  # `prepare` squashes, as the reference's preprocessing does
    pixel_quantize: Codebook        # with config.pixel_decoder only
    pixel_decoder: MaskGitDecoder

    def __init__(self, config: OfficialTiTokConfig):
        super().__init__()
        c = config
        if c.image_size % c.patch_size:
            raise ValueError(f"official TiTok: image_size {c.image_size} is not divisible by patch_size {c.patch_size}")
        if c.pixel_decoder and not (c.legacy and c.decoder_width):
            raise ValueError("official TiTok: a MaskGIT pixel decoder only follows a legacy TiTok decoder")
        self.config = c
        self.grid = c.image_size // c.patch_size
        self.num_patches = self.grid ** 2
        self.num_tokens = c.num_latent_tokens
        self.latent_tokens = nn.Parameter(torch.zeros(c.num_latent_tokens, c.width))
        self.encoder = TiTokEncoder(c)
        self.quantize = Codebook(c.codebook_size, c.code_dim)
        self.decoder = TiTokDecoder(c) if c.decoder_width else None
        if c.pixel_decoder:
            self.pixel_quantize = Codebook(MASKGIT_PROXY_CODES, MaskGitDecoder.Z_CHANNELS)
            self.pixel_decoder = MaskGitDecoder()
        self._maps: OrderedDict[bytes, torch.Tensor] = OrderedDict()

    # ---- the tokenizer interface
    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def can_decode(self) -> bool:
        """True when the file held a decoder that reaches pixels (see `decode`)."""
        return self.decoder is not None and (not self.config.legacy or self.config.pixel_decoder)

    def prepare(self, image) -> np.ndarray:
        """Anything image-like -> (256, 256, 3) uint8, squashed as the reference does (fuselip.images.squash)."""
        return squash(image, self.config.image_size)

    def tokenize(self, images: Sequence) -> torch.Tensor:
        """Any image-like objects (paths, PIL, arrays) -> (B, N) codes."""
        return self.encode(to_tensor([self.prepare(image) for image in images]))

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 256, 256) float pixels in [0, 1] -> (B, N) long codes. A single image also records its token
        maps (rollout through the same pass) for `token_maps`."""
        self._check_input(x)
        x = x.to(self.latent_tokens.device)
        single = x.shape[0] == 1
        with self._autocast():
            z, attentions = self.encode_latents(x, keep_attention=single)   # (B, N, C)
        if single:
            self._remember_maps(x, attentions)
        return self.nearest(z)

    def encode_latents(self, x: torch.Tensor, keep_attention: bool = False):
        """(B, 3, S, S) in [0, 1] -> (B, N, C) latents before quantisation, + per-block attentions (or Nones)."""
        B, e, c = x.shape[0], self.encoder, self.config
        patches = e.patch_embed(x).flatten(2).transpose(1, 2)                 # (B, W, g, g) -> (B, P, W)
        cls = e.class_embedding[None].expand(B, -1, -1).to(patches.dtype)     # (B, 1, W)
        tokens = torch.cat([cls, patches], dim=1) + e.positional_embedding    # (B, 1 + P, W)
        latents = (self.latent_tokens + e.latent_token_positional_embedding).expand(B, -1, -1)  # (B, N, W)
        h, attentions = run_blocks(e, torch.cat([tokens, latents.to(tokens.dtype)], dim=1), keep_attention)
        h = e.ln_post(h[:, 1 + self.num_patches:])                # (B, N, W)
        if c.legacy:  # the legacy bug: the (N, W) matrix read in memory order as (W, N), not transposed
            h = h.reshape(B, c.width, self.num_tokens, 1)                      # (B, W, N, 1)
        else:
            h = h.reshape(B, self.num_tokens, c.width, 1).permute(0, 2, 1, 3)  # (B, W, N, 1)
        z = e.conv_out(h)                                                      # (B, C, N, 1)
        return z.reshape(B, c.code_dim, self.num_tokens).transpose(1, 2), attentions  # (B, N, C)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """(B, N, C) latents -> (B, N) codes: the nearest codebook row, in float32, with the reference's formula
        ‖z‖² + ‖e‖² − 2 z·e (cosine distance after l2-normalising both, for TiTok-S)."""
        B, N, C = z.shape
        with torch.autocast(z.device.type, enabled=False):
            flat = z.float().reshape(B * N, C)                                # (B·N, C)
            book = self.quantize.embedding.weight.float()                     # (K, C)
            if self.config.l2_codes:
                flat, book = F.normalize(flat, dim=-1), F.normalize(book, dim=-1)
            d = (flat.pow(2).sum(dim=1, keepdim=True) + book.pow(2).sum(dim=1)
                 - 2 * torch.einsum("bd,dn->bn", flat, book.t()))             # (B·N, K)
            return d.argmin(dim=1).view(B, N)

    def codes_to_vectors(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, N) codes -> (B, N, C) codebook rows, l2-normalised for TiTok-S (what the decoder reads)."""
        rows = self.quantize.embedding(codes)
        return F.normalize(rows, dim=-1) if self.config.l2_codes else rows

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, N) codes -> (B, 3, 256, 256) pixels in [0, 1]. Needs a decoder that reaches pixels (`can_decode`)."""
        self._check_decodable()
        codes = torch.as_tensor(codes).long().to(self.latent_tokens.device)
        if codes.ndim != 2 or codes.shape[1] != self.num_tokens:
            raise ValueError(f"decode expects (B, {self.num_tokens}) codes, got {tuple(codes.shape)}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise ValueError(f"codes must lie in [0, {self.codebook_size}), got [{int(codes.min())}, {int(codes.max())}]")
        with self._autocast():
            out = self.decode_vectors(self.codes_to_vectors(codes))
        return out.float().clamp(0, 1)

    def decode_vectors(self, z_q: torch.Tensor) -> torch.Tensor:
        """(B, N, C) quantised vectors -> (B, 3, S, S) pixels (not clamped)."""
        d, B, g = self._check_decodable(), z_q.shape[0], self.grid
        x = d.decoder_embed(z_q) + d.latent_token_positional_embedding                 # (B, N, W')
        masks = d.mask_token.expand(B, self.num_patches, -1)                             # (B, P, W')
        cls = d.class_embedding[None].expand(B, -1, -1)                                  # (B, 1, W')
        grid_tokens = torch.cat([cls, masks], dim=1) + d.positional_embedding           # (B, 1 + P, W')
        h, _ = run_blocks(d, torch.cat([grid_tokens, x.to(grid_tokens.dtype)], dim=1))
        h = d.ln_post(h[:, 1:1 + self.num_patches])                          # (B, P, W')
        h = h.transpose(1, 2).reshape(B, -1, g, g)                                       # (B, W', g, g)
        out = d.ffn(h.contiguous())                          # (B, 1024, g, g) logits or (B, p·p·3, g, g) pixels
        if self.config.legacy:  # expected proxy-code embedding, then MaskGIT-VQGAN's convolutional decoder
            proxy = torch.einsum("nchw,cd->ndhw", out.softmax(dim=1), self.pixel_quantize.embedding.weight)
            return self.pixel_decoder(proxy)                                             # (B, 3, S, S)
        p = self.config.patch_size
        pixels = out.reshape(B, p, p, 3, g, g).permute(0, 3, 4, 1, 5, 2)                # (B, 3, g, p, g, p)
        return d.conv_out(pixels.reshape(B, 3, g * p, g * p))                          # (B, 3, S, S)

    # ---- token maps (where each 1-D token reads from)
    @torch.inference_mode()
    def token_maps(self, image, codes=None) -> torch.Tensor:
        """One image (anything `prepare` takes) -> (N, 16, 16) maps, one per latent token, each summing to 1 over the
        patch grid: attention rollout from the token to the image patches through every encoder block. `codes` is
        accepted for the interface's sake (the map depends on the pixels only)."""
        x = to_tensor([self.prepare(image)]).to(self.latent_tokens.device)
        key = _pixels_key(x)
        if key not in self._maps:
            with self._autocast():
                _, attentions = self.encode_latents(x, keep_attention=True)
            self._remember_maps(x, attentions)
        self._maps.move_to_end(key)
        return self._maps[key].clone()

    def _remember_maps(self, x: torch.Tensor, attentions: list[torch.Tensor]) -> None:
        self._maps[_pixels_key(x)] = rollout_maps(attentions, self.num_patches, self.num_tokens, self.grid)
        while len(self._maps) > MAPS_MEMO:
            self._maps.popitem(last=False)

    # ---- checkpoint hooks (the token cache fingerprints a tokenizer by its config and weights)
    def config_dict(self) -> dict:
        return {"tokenizer": dataclasses.asdict(self.config)}

    def export_tensors(self) -> dict[str, torch.Tensor]:
        return self.state_dict()

    def extra_repr(self) -> str:
        c = self.config
        return (f"{c.name or 'TiTok'}: {self.num_tokens} tokens, codebook {c.codebook_size}x{c.code_dim}, "
                f"{'legacy' if c.legacy else 'no legacy'} reshape, decoder: {'yes' if self.can_decode else 'no'}")

    # ---- helpers
    def _check_input(self, x: torch.Tensor) -> None:
        s = self.config.image_size
        if not torch.is_tensor(x) or x.ndim != 4 or tuple(x.shape[1:]) != (3, s, s) or not x.is_floating_point():
            got = f"{tuple(x.shape)} {x.dtype}" if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"official TiTok expects a (B, 3, {s}, {s}) float tensor in [0, 1], got {got}; "
                             f"use .prepare(image) / .tokenize(images) for image files and arrays")

    def _check_decodable(self) -> TiTokDecoder:
        """The decoder, when it reaches pixels; raises otherwise."""
        if self.decoder is None:
            raise RuntimeError(f"{self.config.name or 'this TiTok'} has no decoder weights (the FuseLIP releases keep "
                               "only the encoder): it can tokenize images but not turn codes back into pixels; load the "
                               "tokenizer's own release (fuselip.pretrained.load_pretrained_tokenizer) to decode")
        if not self.can_decode:
            raise RuntimeError(f"{self.config.name or 'this TiTok'} is a legacy (TiTok-S) decoder: it predicts the "
                               "1,024 proxy codes of a frozen MaskGIT-VQGAN, and this file has no pixel_decoder/"
                               "pixel_quantize weights to turn them into pixels (stage-1 weights); use the stage-2 "
                               "release, whose file includes them")
        return self.decoder

    def _autocast(self):
        on = self.config.encode_bf16 and not self.training
        device = self.latent_tokens.device.type
        return torch.autocast(device, dtype=torch.bfloat16) if on else contextlib.nullcontext()


def rollout_maps(attentions: list[torch.Tensor], num_patches: int, num_tokens: int, grid: int) -> torch.Tensor:
    """Attention rollout of ONE sequence `[cls, patch_1 … patch_P, latent_1 … latent_N]` -> (N, g, g).

    Per block, A = ½·(mean over heads of the attention) + ½·I (the residual path), rows renormalised; the rollout is
    the product of these over the blocks, so entry (i, j) says how much of token i's final state flows from input j.
    Each latent token's row over the P patch inputs is renormalised to sum to 1 and laid out on the patch grid.
    """
    rollout: torch.Tensor | None = None
    for weights in attentions:
        a = weights[0].float().mean(dim=0)                                    # (T, T)
        a = 0.5 * a + 0.5 * torch.eye(a.shape[0], device=a.device)
        a = a / a.sum(dim=-1, keepdim=True)
        rollout = a if rollout is None else a @ rollout                       # (T, T)
    if rollout is None:
        raise ValueError("rollout_maps needs the attention of at least one block")
    reads = rollout[1 + num_patches:, 1:1 + num_patches]                     # (N, P): latent rows, patch columns
    reads = reads / reads.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(reads.dtype).tiny)
    return reads.reshape(num_tokens, grid, grid).cpu()                        # (N, g, g)


def _pixels_key(x: torch.Tensor) -> bytes:
    return hashlib.blake2b(x.detach().float().cpu().contiguous().numpy().tobytes(), digest_size=16).digest()

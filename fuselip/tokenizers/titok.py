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

Trained on proxy codes (`proxy_checkpoint`, TiTok's own recipe, shared/PAPER.md): the decoder's queries are the
g×g cells of a frozen grid tokenizer (fuselip/tokenizers/grid.py) and it predicts the grid's code of each cell:

    [mask × g², code_1 … code_N] ─ViT─▶ keep the g² query outputs ─linear─▶ logits (B, g², K_grid)
    stage 1: cross-entropy against the grid's own codes of the image; pixels = grid decoder(codebook[argmax])
    stage 2 (`pixel_finetune`, the last part of the run): encoder and quantiser frozen; the decoder and the
             grid's decoder learn on pixels from the soft codes  softmax(logits) @ codebook  (MSE)

The grid's codebook and decoder are part of the TiTok (a shipped folder decodes on its own); the grid's encoder,
needed only to compute stage 1's targets, is loaded from `proxy_checkpoint` by training and never saved.
`encode` is unchanged: (B, N) codes of the TiTok's own codebook.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fuselip.checkpoint import CheckpointError, find_checkpoint, load_model, register
from fuselip.config import TokenizerConfig
from fuselip.positions import grid_sincos
from fuselip.tokenizers.base import ImageTokenizer
from fuselip.tokenizers.grid import GridTokenizer, ResBlock, Upsample
from fuselip.tokenizers.quantizer import VectorQuantizer

EMBED_INIT_STD = 0.02  # learned embeddings (positions, latent tokens, mask token), as in ViT

# the settings of a TiTok config that describe its proxy grid tokenizer -> the grid config's own names
PROXY_FIELDS = {"image_size": "image_size", "proxy_codebook_size": "codebook_size", "proxy_code_dim": "code_dim",
                "proxy_l2_codes": "l2_codes", "stem_patch": "stem_patch", "channels": "channels",
                "res_blocks": "res_blocks", "decoder_res_blocks": "decoder_res_blocks",
                "decoder_stage_blocks": "decoder_stage_blocks", "decoder_channel_mult": "decoder_channel_mult"}


def proxy_config(config: TokenizerConfig) -> TokenizerConfig:
    """The grid tokenizer a TiTok config names as its proxy (architecture only; frozen, so no re-seeding)."""
    grid = {theirs: getattr(config, mine) for mine, theirs in PROXY_FIELDS.items()}
    return TokenizerConfig(kind="grid", **grid, encode_bf16=config.encode_bf16, dead_code_every=0, recent_codes=1)


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


@torch.no_grad()
def merge_copies(codes: torch.Tensor, min_cos: float) -> torch.Tensor:
    """(K, D) code vectors -> (K,) long: each code's representative, the first code (by index) whose cosine
    similarity with it is >= min_cos; a code is its own representative when no earlier one is that close."""
    unit = F.normalize(codes.float(), dim=-1)
    close = unit @ unit.t() >= min_cos                                              # (K, K)
    target = torch.arange(len(codes), device=codes.device)
    taken = torch.zeros(len(codes), dtype=torch.bool, device=codes.device)
    for k in range(len(codes)):
        if not taken[k]:
            group = close[k] & ~taken
            target[group] = k
            taken |= group
    return target


@register("tokenizer-titok")
class TiTokTokenizer(ImageTokenizer):
    proxy: GridTokenizer | None
    decoder_stage: torch.Tensor  # buffers, with a proxy only
    proxy_target: torch.Tensor

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
        self.proxy = None
        if config.proxy_checkpoint:
            if config.proxy_codebook_size <= 0 or config.proxy_code_dim <= 0:
                raise ValueError("titok: tokenizer.proxy_checkpoint is set, so tokenizer.proxy_codebook_size and "
                                 "tokenizer.proxy_code_dim must give the proxy grid's codebook_size and code_dim, "
                                 f"got {config.proxy_codebook_size} and {config.proxy_code_dim}")
            if config.pixel_decoder_channels:
                raise ValueError("titok: tokenizer.pixel_decoder_channels and tokenizer.proxy_checkpoint exclude each "
                                 "other (with a proxy, the grid tokenizer's decoder makes the pixels)")
            if not 0.0 <= config.pixel_finetune < 1.0:
                raise ValueError(f"titok: tokenizer.pixel_finetune must lie in [0, 1), got {config.pixel_finetune}")
            self.proxy = GridTokenizer(proxy_config(config)).requires_grad_(False).eval()
            self.proxy_encoder_loaded = False  # set by load_proxy; a checkpoint holds no proxy encoder
            self.register_buffer("decoder_stage", torch.ones((), dtype=torch.long))  # 1: hard codes, 2: soft codes
            # grid code -> stage 1's target code (merge_copies; derived from the frozen codebook, not saved)
            self.register_buffer("proxy_target", torch.arange(config.proxy_codebook_size), persistent=False)
        elif config.pixel_finetune:
            raise ValueError("titok: tokenizer.pixel_finetune needs tokenizer.proxy_checkpoint (stage 2 fine-tunes "
                             "the decoder of a model trained on proxy codes)")
        # the decoder's queries: one per proxy grid cell, else one per patch
        self.num_queries = self.proxy.num_tokens if self.proxy is not None else self.num_patches

        # encoder
        self.patch_embed = nn.Linear(3 * p * p, w)
        self.enc_pos = nn.Parameter(torch.randn(self.num_patches + self.num_tokens, w) * EMBED_INIT_STD)
        self.latents = nn.Parameter(torch.randn(self.num_tokens, w) * EMBED_INIT_STD)
        self.encoder = ViT(w, config.layers, config.heads, config.mlp_ratio)
        self.to_code = nn.Linear(w, config.code_dim)
        # decoder
        self.from_code = nn.Linear(config.code_dim, dw)
        self.mask_token = nn.Parameter(torch.randn(dw) * EMBED_INIT_STD)
        self.dec_pos = nn.Parameter(torch.randn(self.num_queries + self.num_tokens, dw) * EMBED_INIT_STD)
        self.decoder = ViT(dw, dl, dh, config.mlp_ratio)
        if config.pos_grid_rms > 0:  # patch and query positions start as 2-D maps (the latents' stay random)
            side = self.proxy.grid_size if self.proxy is not None else self.grid  # the decoder's query grid
            with torch.no_grad():
                self.enc_pos[:self.num_patches] = grid_sincos(self.grid, w, config.pos_grid_rms)
                self.dec_pos[:self.num_queries] = grid_sincos(side, dw, config.pos_grid_rms)
        ch = config.pixel_decoder_channels
        if self.proxy is not None:  # logits over the proxy's codebook, one row per grid cell
            self.to_proxy_logits = nn.Linear(dw, config.proxy_codebook_size)
        elif not ch:
            self.to_pixels = nn.Linear(dw, 3 * p * p)
            self.pixel_decoder = None
        else:  # patch tokens -> (B, c0, g, g) feature map -> convolutions, doubling the side per entry
            fold = p // 2 ** (len(ch) - 1)  # pixels per side folded into channels at the end
            if fold < 1 or fold * 2 ** (len(ch) - 1) != p:
                raise ValueError(f"titok: pixel_decoder_channels {ch} (one doubling per entry after the first) "
                                 f"do not divide patch_size {p}")
            self.to_pixels = nn.Linear(dw, ch[0])
            layers: list[nn.Module] = [ResBlock(ch[0]) for _ in range(config.decoder_stage_blocks)]
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

    def decode_queries(self, z_q):
        """(B, N, D) quantised latents -> (B, Q, W') decoder outputs at the Q query positions."""
        b, q = z_q.shape[0], self.num_queries
        tokens = torch.cat([self.mask_token.expand(b, q, -1),
                            self.from_code(z_q.to(self.mask_token.dtype))], dim=1) + self.dec_pos  # (B, Q+N, W')
        return self.decoder(tokens)[:, :q]                                          # (B, Q, W')

    def decode_latents(self, z_q):
        if self.proxy is not None:
            return self.pixels_from_logits(self.proxy_logits(z_q), soft=int(self.decoder_stage) == 2)
        b = z_q.shape[0]
        out = self.to_pixels(self.decode_queries(z_q))                              # (B, P, 3·p·p or c0)
        if self.pixel_decoder is None:
            return self.unpatchify(out) * 0.5 + 0.5                                   # (B, 3, S, S)
        g = self.grid
        features = out.transpose(1, 2).reshape(b, -1, g, g)                          # (B, c0, g, g)
        return self.pixel_decoder(features.contiguous(memory_format=torch.channels_last)) * 0.5 + 0.5

    # ---------------------------------------------------------------------------------------------
    # training on proxy codes (stage 1) and on pixels (stage 2)

    DECODER_SIDE = ("from_code", "mask_token", "dec_pos", "decoder", "to_proxy_logits")  # what stage 2 trains

    def proxy_logits(self, z_q):
        """(B, N, D) quantised latents -> (B, g², K_grid) logits of the proxy grid's code of every cell."""
        return self.to_proxy_logits(self.decode_queries(z_q))

    def pixels_from_logits(self, logits, soft: bool):
        """(B, g², K_grid) logits -> (B, 3, S, S) pixels by the proxy's decoder: from the argmax codes, or from
        the soft codes softmax(logits) @ codebook (stage 2, differentiable)."""
        proxy = self.grid_proxy()
        if soft:
            codes = logits.float().softmax(dim=-1) @ proxy.quantizer.codes()   # (B, g², D_grid)
        else:
            codes = proxy.quantizer.codes_from_indices(logits.argmax(dim=-1))  # (B, g², D_grid)
        return proxy.decode_latents(codes)

    def grid_proxy(self) -> GridTokenizer:
        """The frozen proxy grid tokenizer (a TiTok built with tokenizer.proxy_checkpoint has one)."""
        if self.proxy is None:
            raise ValueError("titok: this TiTok has no proxy grid (tokenizer.proxy_checkpoint is not set)")
        return self.proxy

    @torch.no_grad()
    def proxy_codes(self, x):
        """(B, 3, S, S) in [0, 1] -> (B, g²) the frozen grid's codes: stage 1's targets."""
        if not self.proxy_encoder_loaded:
            raise RuntimeError("titok: the proxy grid's encoder is not loaded (a checkpoint holds only its codebook "
                               "and decoder); call load_proxy() to read it from tokenizer.proxy_checkpoint")
        z = self.proxy.encode_latents(x * 2 - 1)                                    # (B, g², D_grid)
        codes = self.proxy.quantizer.nearest(z.reshape(-1, z.shape[-1])).view(z.shape[:2])
        return self.proxy_target[codes]

    @torch.inference_mode()
    def proxy_accuracy(self, x) -> float | None:
        """Share of grid cells whose predicted code (argmax) is stage 1's target (the grid's own code of x, near-copies
        merged) for x (B, 3, S, S) in [0, 1]; None without a proxy encoder."""
        if self.proxy is None or not self.proxy_encoder_loaded:
            return None
        x = x.to(self.quantizer.codebook.device)
        with self._autocast():
            target = self.proxy_codes(x)
            z = self.quantizer.codes_from_indices(self.encode(x))
            predicted = self.proxy_logits(z).argmax(dim=-1)
        return float((predicted == target).float().mean())

    def load_proxy(self, path: str | None = None) -> None:
        """Reads the frozen grid tokenizer (default `tokenizer.proxy_checkpoint`) into `self.proxy`, after checking
        that it is the grid this config describes."""
        path = path or self.config.proxy_checkpoint
        if self.proxy is None:
            raise ValueError("titok: load_proxy needs a TiTok built with tokenizer.proxy_checkpoint set")
        folder = find_checkpoint(path)  # a preset's relative path also resolves from another working directory
        if folder is None:
            raise ValueError(f"tokenizer.proxy_checkpoint={path!r}: no checkpoint folder there (config.json + "
                             "model.safetensors of a grid tokenizer, e.g. checkpoints/tokenizer-grid-tiny; make one with "
                             "`python train/train_tokenizer.py --preset tiny-grid --ship checkpoints/tokenizer-grid-tiny`)")
        try:
            grid = load_model(folder)
        except (CheckpointError, ValueError) as e:
            raise ValueError(f"tokenizer.proxy_checkpoint={path!r}: unreadable checkpoint ({e})") from None
        if not isinstance(grid, GridTokenizer):
            raise ValueError(f"tokenizer.proxy_checkpoint={path!r} holds a {type(grid).__name__}; the proxy must be "
                             "a grid tokenizer (kind 'grid')")
        differ = [f"tokenizer.{mine}={getattr(self.config, mine)!r} but the proxy has {theirs}="
                  f"{getattr(grid.config, theirs)!r}" for mine, theirs in PROXY_FIELDS.items()
                  if getattr(self.config, mine) != getattr(grid.config, theirs)]
        if differ:
            raise ValueError(f"tokenizer.proxy_checkpoint={path!r} does not fit this TiTok: " + "; ".join(differ)
                             + " (set these tokenizer settings to the proxy's values)")
        self.proxy.import_tensors(grid.export_tensors(), str(folder))
        self.proxy_target.copy_(merge_copies(self.proxy.quantizer.codes().detach(), self.config.proxy_merge_cos))
        self.proxy_encoder_loaded = True

    def prepare_training(self) -> None:
        if self.proxy is not None:
            self.load_proxy()

    def pixel_stage_start(self, steps: int) -> int:
        """The first step of stage 2 in a run of `steps` steps (= steps without pixel_finetune)."""
        return round((1.0 - self.config.pixel_finetune) * steps)

    def training_phase(self, step: int, steps: int) -> None:
        if self.proxy is None:
            return
        stage = 2 if step >= self.pixel_stage_start(steps) else 1
        self.decoder_stage.fill_(stage)
        # stage 1: everything but the proxy learns; stage 2: only the decoder side and the proxy's decoder
        for name, p in self.named_parameters():
            if name.startswith("proxy."):
                p.requires_grad_(stage == 2 and name.startswith("proxy.decoder."))
            else:
                p.requires_grad_(stage == 1 or name.split(".")[0] in self.DECODER_SIDE)

    def forward(self, x):
        """Without a proxy: ImageTokenizer.forward (pixels, MSE). With one: stage 1 (cross-entropy on the proxy's
        codes; the reconstruction, from the argmax codes, is only looked at, so it is None unless
        `self.reconstruct`) or stage 2 (MSE on pixels from the soft codes, encoder and quantiser frozen)."""
        if self.proxy is None:
            return super().forward(x)
        self._check_input(x)
        stage = int(self.decoder_stage)
        with torch.set_grad_enabled(torch.is_grad_enabled() and stage == 1):
            z = self.encode_latents(x * 2 - 1)                                      # (B, N, D)
            z_q, codes, losses = self.quantizer(z)
        logits = self.proxy_logits(z_q)                                             # (B, g², K_grid)
        if stage == 1:
            target = self.proxy_codes(x)                                            # (B, g²)
            flat = logits.float().flatten(0, 1)                                     # (B·g², K_grid)
            losses["proxy_ce"] = F.cross_entropy(flat, target.flatten())
            losses["proxy_acc"] = (flat.detach().argmax(-1) == target.flatten()).float().mean()
            recon = None
            if self.reconstruct:
                with torch.no_grad():
                    recon = self.pixels_from_logits(logits.detach(), soft=False).float()
                losses["recon"] = F.mse_loss(recon, x.float())
            losses["loss"] = losses["proxy_ce"] + self.config.codebook_weight * losses["vq"]
        else:
            recon = self.pixels_from_logits(logits, soft=True).float()
            losses["recon"] = F.mse_loss(recon, x.float())
            losses["loss"] = losses["recon"]
        return recon, codes, losses

    def after_step(self) -> int:
        if self.proxy is not None and int(self.decoder_stage) == 2:
            return 0  # the codebook is frozen in stage 2: no re-seeding
        return super().after_step()

    def train(self, mode: bool = True):
        super().train(mode)
        if self.proxy is not None:
            self.proxy.eval()  # frozen: its quantiser never tracks usage
        return self

    def exported(self, key: str) -> bool:
        """The proxy's encoder (training targets only) and its quantiser's training buffers are not saved."""
        if key.startswith("proxy."):
            rest = key[len("proxy."):]
            return not rest.startswith("encoder.") and \
                rest not in {f"quantizer.{name}" for name in VectorQuantizer.TRAINING_BUFFERS}
        return super().exported(key)

    def extra_repr(self) -> str:
        proxy = f", proxy=grid {self.proxy.num_tokens} codes of {self.proxy.codebook_size}" if self.proxy is not None else ""
        return super().extra_repr() + proxy

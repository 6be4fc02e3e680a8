"""Masked-autoencoder pretraining (He et al. 2022, "Masked autoencoders are scalable vision learners") of the
late-fusion baselines' image tower: the same open_clip ViT, so its weights load straight into SF or MLF.

Why it is here: FuseLIP reads images through a tokenizer that was first trained to *reconstruct* images of
these worlds (train/train_tokenizer.py: 3,000 steps of 64 images), while SF and MLF learn their ViT from scratch
inside the contrastive run. `train/pretrain_vision.py` gives the pixel ViT the same kind of head start on the
same image pool and budget, so that an "early vs late fusion" comparison can hold the visual pretraining fixed.

The model, per image (patch p, grid g = S / p, N = g² patches, K = N · (1 - mask_ratio) kept):
    pixels (3, S, S) -> the ViT's input layer (conv1: patch embedding or conv stem) -> (N, W) + positions
    -> a random K of the N tokens, plus the class token -> ln_pre -> the ViT's transformer -> ln_post
    -> a light decoder (Linear to decoder_width, a mask token in every dropped place, its own positions,
    open_clip transformer blocks, LayerNorm, Linear to p·p·3) -> loss: mean squared error on the DROPPED
    patches only, each target patch standardised by its own mean and variance (norm_pix_loss).
The decoder is thrown away; `load_vision` copies the ViT (all but its projection `proj`, which the
contrastive run learns) into a baseline.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from einops import rearrange
from open_clip.model import _build_vision_tower
from open_clip.transformer import LayerNorm, Transformer
from torch import nn

from fuselip import checkpoint, image_training
from fuselip.config import LateFusionConfig, MAEConfig, RunConfig, from_dict, to_dict
from fuselip.vit import attention_backend, check_vision, set_vision_stem, standardise, vision_config

VAL_MASK_SEED = 1234  # the fixed masks of validation (the same for every step and run)
VISION_SETTINGS = ("width", "layers", "heads", "mlp_ratio", "vision_patch_size", "vision_stem")  # shape the ViT


def patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, 3, S, S) -> (B, N, p·p·3), patches row by row as the ViT's token grid."""
    return rearrange(x, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=patch, p2=patch)


def random_keep(batch: int, n: int, keep: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, K) indices of the kept patches: a uniformly random K of the N per row, sorted."""
    noise = torch.rand(batch, n, generator=generator)  # (B, N)
    return noise.argsort(dim=1)[:, :keep].sort(dim=1).values


@checkpoint.register("mae-vit")
class MaskedAutoencoder(nn.Module):
    checkpoint_kind: str  # set by @register
    def __init__(self, encoder: LateFusionConfig, mae: MAEConfig, image_size: int):
        super().__init__()
        check_vision(encoder, image_size)
        if not 0.0 < mae.mask_ratio < 1.0:
            raise ValueError(f"mae.mask_ratio must be between 0 and 1 (exclusive), got {mae.mask_ratio}")
        if mae.decoder_width % mae.decoder_heads:
            raise ValueError(f"mae.decoder_width={mae.decoder_width} is not divisible by "
                             f"mae.decoder_heads={mae.decoder_heads}")
        self.encoder_config, self.mae_config, self.image_size = encoder, mae, image_size
        self.patch = encoder.vision_patch_size
        self.n_patches = (image_size // self.patch) ** 2
        self.n_keep = max(1, round(self.n_patches * (1.0 - mae.mask_ratio)))
        self.visual = _build_vision_tower(encoder.embed_dim or encoder.width, vision_config(encoder, image_size))
        set_vision_stem(self.visual, encoder)
        self.visual.proj = None  # the joint-space projection is the contrastive run's to learn
        width = mae.decoder_width
        self.decoder_embed = nn.Linear(encoder.width, width)
        self.mask_token = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.decoder_pos = nn.Parameter(torch.randn(1, self.n_patches + 1, width) * 0.02)
        self.decoder = Transformer(width, mae.decoder_layers, mae.decoder_heads, encoder.mlp_ratio)
        self.decoder_norm = LayerNorm(width)
        self.head = nn.Linear(width, self.patch * self.patch * 3)

    # --- the two halves -----------------------------------------------------------------------

    def encode_visible(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) standardised pixels, (B, K) kept patches -> (B, 1 + K, W) encoder outputs (class first)."""
        v = self.visual
        tokens = v.conv1(x).flatten(2).transpose(1, 2)  # (B, W, g, g) -> (B, N, W)
        tokens = tokens + v.positional_embedding[1:].to(tokens.dtype)
        tokens = tokens.gather(1, keep[:, :, None].expand(-1, -1, tokens.shape[2]))  # (B, K, W)
        cls = (v.class_embedding + v.positional_embedding[0]).to(tokens.dtype)
        h = torch.cat([cls.expand(tokens.shape[0], 1, -1), tokens], dim=1)  # (B, 1 + K, W)
        return v.ln_post(v.transformer(v.ln_pre(h)))

    def decode(self, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """(B, 1 + K, W), (B, K) -> (B, N, p·p·3) predicted pixels of every patch."""
        d = self.decoder_embed(h)  # (B, 1 + K, Dd)
        batch, width = d.shape[0], d.shape[2]
        full = self.mask_token.to(d.dtype).expand(batch, self.n_patches, width).clone()  # (B, N, Dd)
        full = full.scatter(1, keep[:, :, None].expand(-1, -1, width), d[:, 1:])
        d = torch.cat([d[:, :1], full], dim=1) + self.decoder_pos.to(d.dtype)  # (B, 1 + N, Dd)
        return self.head(self.decoder_norm(self.decoder(d))[:, 1:])  # (B, N, p·p·3)

    def forward(self, pixels: torch.Tensor, generator: torch.Generator | None = None):
        """(B, S, S, 3) uint8 -> (loss, prediction (B, N, p·p·3), dropped (B, N) bool)."""
        with attention_backend(pixels.device):
            return self._forward(pixels, generator)

    def _forward(self, pixels: torch.Tensor, generator: torch.Generator | None):
        x = standardise(pixels)  # (B, 3, S, S)
        keep = random_keep(x.shape[0], self.n_patches, self.n_keep, generator).to(x.device)  # (B, K)
        prediction = self.decode(self.encode_visible(x, keep), keep)
        target = patchify(x, self.patch)  # (B, N, p·p·3)
        if self.mae_config.norm_pix_loss:
            target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
        dropped = torch.ones(x.shape[0], self.n_patches, dtype=torch.bool, device=x.device)
        dropped = dropped.scatter(1, keep, False)  # (B, N)
        per_patch = (prediction.float() - target).pow(2).mean(-1)  # (B, N)
        return per_patch[dropped].mean(), prediction, dropped

    # --- training (fuselip.engine with fuselip.image_training.ImagePool) ---------------------------

    no_weight_decay = ("pos",)  # never decayed: the encoder's and the decoder's position tables

    def training_loss(self, pixels: torch.Tensor, generator: torch.Generator | None = None):
        """(B, S, S, 3) uint8 -> (masked-patch error, no other parts); the masks come from `generator`."""
        loss, _, _ = self(pixels, generator)
        return loss, {}

    def begin_step(self, step: int, steps: int, logged: bool = True) -> None:
        pass

    def end_step(self, step: int, steps: int) -> None:
        pass

    # --- checkpoints ------------------------------------------------------------------------------

    def config_dict(self) -> dict:
        return {"encoder": to_dict(self.encoder_config), "mae": to_dict(self.mae_config),
                "image_size": self.image_size}

    @classmethod
    def from_config(cls, config: dict) -> "MaskedAutoencoder":
        for key in ("encoder", "mae", "image_size"):
            if key not in config:
                raise checkpoint.CheckpointError(f"mae-vit config has no {key!r} entry")
        return cls(from_dict(LateFusionConfig, config["encoder"], "encoder"),
                   from_dict(MAEConfig, config["mae"], "mae"), int(config["image_size"]))

    def export_tensors(self) -> dict[str, torch.Tensor]:
        return dict(self.state_dict())

    def import_tensors(self, tensors: dict[str, torch.Tensor], where: str = "") -> None:
        checkpoint.check_state_dict(self.state_dict(), tensors, where)
        self.load_state_dict(tensors)


def build_mae(cfg: RunConfig) -> MaskedAutoencoder:
    if not isinstance(cfg.encoder, LateFusionConfig):
        raise ValueError(f"encoder.kind={cfg.encoder.kind!r}: masked-autoencoder pretraining is for the "
                         f"late-fusion baselines' ViT (siglip-sf | siglip-mlf)")
    return MaskedAutoencoder(cfg.encoder, cfg.mae, cfg.data.image_size)


# ---------------------------------------------------------------------------------------------
# into a baseline


def load_vision(visual: nn.Module, path: str | Path, encoder: LateFusionConfig, image_size: int) -> None:
    """Copies the pretrained ViT of the mae-vit checkpoint at `path` into `visual` (a baseline's
    `clip.visual`), all but its projection. The two must be built alike: every setting that shapes the ViT
    is compared first, and a mismatch names the settings."""
    try:
        ckpt = checkpoint.read(path)
    except checkpoint.CheckpointError as e:
        raise checkpoint.CheckpointError(f"encoder.vision_init: {e} (make one with train/pretrain_vision.py "
                                         f"--ship DIR)") from None
    if ckpt.kind != MaskedAutoencoder.checkpoint_kind:
        raise checkpoint.CheckpointError(f"{path}: holds a {ckpt.kind!r} checkpoint, not a pretrained ViT "
                                         f"({MaskedAutoencoder.checkpoint_kind!r}, train/pretrain_vision.py)")
    theirs = {**ckpt.config.get("encoder", {}), "image_size": ckpt.config.get("image_size")}
    ours = {**to_dict(encoder), "image_size": image_size}
    differ = [f"{k}: {theirs.get(k)!r} there, {ours[k]!r} here" for k in (*VISION_SETTINGS, "image_size")
              if theirs.get(k) != ours[k]]
    if differ:
        raise checkpoint.CheckpointError(f"{path}: the pretrained ViT was built with other settings ("
                                         + "; ".join(differ) + ")")
    prefix = "visual."
    tensors = {k[len(prefix):]: v for k, v in ckpt.tensors.items() if k.startswith(prefix)}
    expected = {k: v for k, v in visual.state_dict().items() if k != "proj"}
    checkpoint.check_state_dict(expected, tensors, str(path))
    visual.load_state_dict(tensors, strict=False)


# ---------------------------------------------------------------------------------------------
# validation and the training loop


@torch.no_grad()
def evaluate(model: MaskedAutoencoder, images: dict[str, np.ndarray], batch_size: int = 256) -> dict:
    """{world: (n, S, S, 3) uint8} -> {"loss": {world: masked-patch error}} under fixed masks."""
    was_training = model.training
    model.eval()
    result = {}
    for world, array in images.items():
        generator = torch.Generator().manual_seed(VAL_MASK_SEED)
        device = next(model.parameters()).device
        total, count = 0.0, 0
        for start in range(0, len(array), batch_size):
            pixels = torch.from_numpy(array[start:start + batch_size]).to(device)
            loss, _, _ = model(pixels, generator)
            total, count = total + float(loss) * len(pixels), count + len(pixels)
        result[world] = round(total / count, 4)
    model.train(was_training)
    return {"loss": result}


def validation_fn(val_images: dict[str, np.ndarray]) -> Callable[[nn.Module], dict]:
    """The engine's val_fn: the masked-patch error per world under fixed masks."""
    def val_fn(model: nn.Module) -> dict:
        assert isinstance(model, MaskedAutoencoder), type(model)
        return evaluate(model, val_images)
    return val_fn


def train(cfg: RunConfig, train_images: np.ndarray, val_images: dict[str, np.ndarray], *, resume: bool = False,
          progress: bool = True, log: Callable[[str], None] = print,
          stop_after: int | None = None) -> MaskedAutoencoder:
    """Pretrains `build_mae(cfg)` on the (M, S, S, 3) uint8 pool through the engine (fuselip.engine; batches and
    masks from one seeded generator, fuselip.image_training), validating on `val_images` every `val_every` steps
    and at the end; exact resume from `<train.out_dir>/checkpoint`. stop_after: end (with a checkpoint) after this
    many steps of this call, as if interrupted. Returns the model (the run's figures: <out_dir>/validation.jsonl)."""
    torch.manual_seed(cfg.train.seed)
    model = build_mae(cfg).to(cfg.train.device)
    image_training.train(model, cfg, train_images, validation_fn(val_images), resume=resume, progress=progress,
                         log=log, stop_after=stop_after)
    return model

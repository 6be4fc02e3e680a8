"""The ViT helpers shared by the late-fusion baselines (fuselip/baselines.py) and their masked-autoencoder
pretraining (fuselip/mae.py): both build the same open_clip ViT, so its weights move from one into the other.

    check_vision(encoder, image_size)      rejects settings that cannot build a ViT, naming the setting
    vision_config(encoder, image_size)     open_clip's CLIPVisionCfg of the image tower
    set_vision_stem(visual, encoder)       the input layer named by encoder.vision_stem ("patch" | "conv")
    standardise(pixels)                    (N, H, W, 3) uint8 -> (N, 3, H, W) floats as open_clip's SigLIP expects
    attention_backend(device)              the attention kernel to run open_clip's blocks with
"""
from __future__ import annotations

import contextlib

import torch
from open_clip.constants import INCEPTION_MEAN, INCEPTION_STD
from open_clip.model import CLIPVisionCfg
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from fuselip.config import LateFusionConfig

CONV_STEM_CHANNELS = 32  # channels of the conv stem's first layer (vision_stem="conv"), doubled per layer


def conv_stem(width: int, patch_size: int, first_channels: int) -> nn.Sequential:
    """A convolutional stem (Xiao et al. 2021, "Early convolutions help transformers see better") in place of
    the ViT's patch embedding: log2(patch_size) 3x3 stride-2 convs, each doubling the channels (from
    `first_channels`) with a GroupNorm(1) and a GELU, then a 1x1 conv to the width. It makes the same
    (image_size / patch_size)^2 token grid as the patch embedding, so the transformer after it is unchanged;
    GroupNorm (per image) rather than the paper's BatchNorm, so that no image's features depend on the
    other images in its batch (which a contrastive loss could exploit)."""
    if patch_size < 2 or patch_size & (patch_size - 1):
        raise ValueError(f"encoder.vision_stem='conv' needs a power-of-two vision_patch_size, got {patch_size}")
    layers, channels = [], 3
    for i in range(patch_size.bit_length() - 1):  # 64 px, patch 8: 64 -> 32 -> 16 -> 8
        out = first_channels * 2 ** i
        layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1, bias=False), nn.GroupNorm(1, out), nn.GELU()]
        channels = out
    layers.append(nn.Conv2d(channels, width, 1))  # (N, width, grid, grid), what open_clip's conv1 returns
    return nn.Sequential(*layers)


def check_vision(encoder: LateFusionConfig, image_size: int) -> None:
    """Rejects image-tower settings that cannot build a ViT, naming the setting."""
    if image_size % encoder.vision_patch_size:
        raise ValueError(f"image_size={image_size} is not a multiple of "
                         f"encoder.vision_patch_size={encoder.vision_patch_size}")
    if encoder.width % encoder.heads:
        raise ValueError(f"encoder.width={encoder.width} is not divisible by encoder.heads={encoder.heads}")


def vision_config(encoder: LateFusionConfig, image_size: int) -> CLIPVisionCfg:
    """open_clip's config of the image tower: a ViT of the encoder's width, depth and heads over the pixels."""
    return CLIPVisionCfg(layers=encoder.layers, width=encoder.width, head_width=encoder.width // encoder.heads,
                         mlp_ratio=encoder.mlp_ratio, patch_size=encoder.vision_patch_size, image_size=image_size)


def set_vision_stem(visual: nn.Module, encoder: LateFusionConfig) -> None:
    """Puts the input layer named by `encoder.vision_stem` into an open_clip ViT (its `conv1`)."""
    if encoder.vision_stem == "conv":
        visual.conv1 = conv_stem(encoder.width, encoder.vision_patch_size, CONV_STEM_CHANNELS)


def standardise(pixels: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) floats as open_clip's SigLIP models expect (INCEPTION_MEAN/STD:
    [0, 1] -> [-1, 1]); FuseLIP's tokenizer reads [0, 1] as the paper's does. Each model gets its usual input."""
    x = pixels.permute(0, 3, 1, 2).float().div(255.0)  # (N, 3, H, W) in [0, 1]
    mean = torch.tensor(INCEPTION_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(INCEPTION_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def attention_backend(device: torch.device):
    """On CPU, run open_clip's attention (nn.MultiheadAttention -> scaled_dot_product_attention) on the plain
    math kernel: for these short sequences (≤ 65 tokens) PyTorch's CPU flash-attention kernel is several times
    slower, its backward above all (profiled: ~55 % of a training step; the math path makes the whole step
    ~1.6x faster). FuseLIP's attention already takes the math path. On a GPU the default choice stays."""
    return sdpa_kernel([SDPBackend.MATH]) if device.type == "cpu" else contextlib.nullcontext()

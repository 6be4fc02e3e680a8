"""One image preprocessing function for the whole project.

Anything a user can hand us (a path, a file object, a PIL image of any mode, a numpy array of any dtype,
1x1 or 6000x4000) becomes a square (size, size, 3) uint8 RGB array; `to_tensor` turns a batch of those
into floats in [0, 1] (FuseLIP uses no mean/std normalisation, shared/PAPER.md).
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

BACKGROUND = (255, 255, 255)  # transparent pixels are composited onto white, like the worlds' canvases


class ImageError(ValueError):
    pass


def open_image(source) -> Image.Image:
    """Path / bytes / file object / PIL image / numpy array -> PIL image (not yet converted)."""
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        return _array_to_pil(source)
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    where = str(source) if isinstance(source, (str, os.PathLike)) else "<file object>"
    if isinstance(source, (str, os.PathLike)) and not Path(source).exists():
        raise ImageError(f"{where}: no such file")
    try:
        image = Image.open(source)
        image.load()
    except UnidentifiedImageError:
        raise ImageError(f"{where}: not an image file (PIL cannot identify it)") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"{where}: image too large to decode safely ({e})") from None
    except OSError as e:
        raise ImageError(f"{where}: unreadable image ({e})") from None
    return image


def _array_to_pil(array: np.ndarray) -> Image.Image:
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[2] not in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)  # (C, H, W) -> (H, W, C)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or a.size == 0:
        raise ImageError(f"array of shape {array.shape} is not an image (expected H×W, H×W×3 or H×W×4)")
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ImageError("float image contains NaN or infinity")
        a = np.clip(a * 255.0 if a.max(initial=0) <= 1.0 else a, 0, 255).round().astype(np.uint8)
    elif a.dtype != np.uint8:
        info = np.iinfo(a.dtype)
        a = (a.astype(np.float64) / info.max * 255.0).clip(0, 255).round().astype(np.uint8)
    return Image.fromarray(a)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB; alpha is composited onto white, 16-bit and float modes are rescaled."""
    image = ImageOps.exif_transpose(image) if hasattr(image, "getexif") else image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(image, dtype=np.float64)
        hi = 65535.0 if image.mode.startswith("I;16") or a.max(initial=0) > 255 else 255.0
        image = Image.fromarray((a / hi * 255.0).clip(0, 255).round().astype(np.uint8))
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, BACKGROUND)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def preprocess(source, size: int) -> np.ndarray:
    """Anything image-like -> (size, size, 3) uint8: RGB, shorter side resized to `size`, centre crop."""
    image = to_rgb(open_image(source))
    w, h = image.size
    if w < 1 or h < 1:
        raise ImageError(f"image has no pixels ({w}×{h})")
    if min(w, h) > 4 * size:  # cheap integer downscale first for huge photos
        factor = min(w, h) // (2 * size)
        image = image.reduce(factor)
        w, h = image.size
    scale = size / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    image = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    image = image.crop((left, top, left + size, top + size))
    return np.asarray(image, dtype=np.uint8).copy()


def squash(source, size: int) -> np.ndarray:
    """Anything image-like -> (size, size, 3) uint8: RGB, resized to size×size WITHOUT keeping the aspect ratio.

    The released FuseLIP models were trained and evaluated on such squashed images (torchvision
    `Resize((256, 256), BICUBIC)` on a PIL image, no crop): for an RGB image this is the same PIL call, so the
    pixels are identical. Transparent pixels are composited onto white and EXIF rotations are applied first,
    as in `preprocess`.
    """
    image = to_rgb(open_image(source))
    w, h = image.size
    if w < 1 or h < 1:
        raise ImageError(f"image has no pixels ({w}×{h})")
    return np.asarray(image.resize((size, size), Image.Resampling.BICUBIC), dtype=np.uint8).copy()


def to_tensor(images: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 arrays -> (B, 3, H, W) float32 in [0, 1]."""
    batch = torch.from_numpy(np.ascontiguousarray(np.stack(list(images)) if not isinstance(images, np.ndarray)
                                                  else images))
    if batch.ndim == 3:
        batch = batch[None]
    return batch.permute(0, 3, 1, 2).float().div_(255.0)  # (B, 3, H, W)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) floats in [0, 1] -> (B, H, W, 3) uint8."""
    return (images.detach().float().clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).cpu().numpy())

"""What several pictures share: the default font at a size, the colours of a sheet, tensors as arrays."""
from __future__ import annotations

import numpy as np
from PIL import ImageFont

PREVIEW_FONT_SIZE = 12
PREVIEW_BG = (255, 255, 255)
PREVIEW_PANEL_BG = (236, 236, 236)   # behind images, so a white canvas shows its edges
PREVIEW_INK = (20, 20, 20)
PREVIEW_MUTED = (120, 120, 120)


def load_font(size: int = PREVIEW_FONT_SIZE):
    """Pillow's default font, `size` pixels high."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the bitmap font
        return ImageFont.load_default()


def to_numpy(values, dtype=np.float32) -> np.ndarray:
    """A tensor (detached, moved to the CPU) or anything array-like as a numpy array of `dtype`."""
    return np.asarray(values.detach().cpu() if hasattr(values, "detach") else values, dtype=dtype)

"""Pictures as arrays: enlarge pixel art, frame a result, lay a heatmap over an image, draw a text as a card,
show one side of a pair; and a grid of pictures as a matplotlib figure (imported only when drawn).
Arrays in, (H, W, 3) uint8 out."""
from __future__ import annotations

import textwrap
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from fuselip.viz._common import load_font, to_numpy

ATTENTION_CMAP = "inferno"          # low attention dark, high attention bright
ATTENTION_ALPHA = 0.6               # weight of the heat colours over the image
RESULT_CORRECT = (22, 160, 60)      # frame of a correct retrieval result
RESULT_WRONG = (200, 200, 200)
RESULT_FRAME = 4                    # frame width in display pixels
CARD_BG = (246, 246, 240)           # text-only gallery items are drawn as cards
CARD_FONT_SIZE = 18


def enlarge(image: np.ndarray, size: int) -> np.ndarray:
    """(h, w, 3) uint8 -> (size, size, 3) uint8, nearest neighbour (pixel art stays crisp)."""
    return np.asarray(Image.fromarray(np.asarray(image, dtype=np.uint8)).resize((size, size), Image.Resampling.NEAREST))


def _colormap(values: np.ndarray, name: str = ATTENTION_CMAP) -> np.ndarray:
    """(…) floats in [0, 1] -> (…, 3) uint8 colours."""
    from matplotlib import colormaps
    return (colormaps[name](np.clip(values, 0, 1))[..., :3] * 255).round().astype(np.uint8)


def heatmap_overlay(image: np.ndarray, heat, size: int = 256, alpha: float = ATTENTION_ALPHA,
                    smooth: bool = False, vmax: float | None = None) -> np.ndarray:
    """The image with a heatmap on top: (S, S, 3) uint8 + (h, w) map -> (size, size, 3) uint8.

    `heat` is scaled by its maximum (or `vmax`), so the picture shows *where* attention goes; a g×g token
    map is upsampled with nearest neighbour (one flat square per token), a pixel map smoothly (`smooth`).
    """
    heat = to_numpy(heat)
    top = float(vmax if vmax is not None else heat.max(initial=0.0))
    heat = heat / top if top > 0 else np.zeros_like(heat)
    resample = Image.Resampling.BILINEAR if smooth else Image.Resampling.NEAREST
    heat = np.asarray(Image.fromarray(heat).resize((size, size), resample))           # (size, size)
    base = enlarge(image, size).astype(np.float32)
    out = (1 - alpha) * base + alpha * _colormap(heat).astype(np.float32)
    return out.round().clip(0, 255).astype(np.uint8)


def frame(image: np.ndarray, correct: bool, width: int = RESULT_FRAME) -> np.ndarray:
    """A coloured border inside the picture: green for the correct item, light gray otherwise."""
    out = np.array(image, dtype=np.uint8, copy=True)
    colour = np.array(RESULT_CORRECT if correct else RESULT_WRONG, dtype=np.uint8)
    out[:width], out[-width:], out[:, :width], out[:, -width:] = colour, colour, colour, colour
    return out


def text_card(text: str, size: int = 256) -> np.ndarray:
    """A text-only gallery item (e.g. a VQA answer) drawn as a square card, so it can sit in an image grid."""
    card = Image.new("RGB", (size, size), CARD_BG)
    draw = ImageDraw.Draw(card)
    font = load_font(CARD_FONT_SIZE)
    lines = textwrap.wrap(text, width=max(4, size // (CARD_FONT_SIZE // 2 + 2)))[: size // (CARD_FONT_SIZE + 4)]
    y = (size - len(lines) * (CARD_FONT_SIZE + 4)) // 2
    for line in lines:
        draw.text((size // 2, y), line, fill=(20, 20, 20), font=font, anchor="ma")
        y += CARD_FONT_SIZE + 4
    return np.asarray(card)


def side_picture(side, size: int = 96, correct: bool | None = None) -> np.ndarray:
    """One side of a pair or a candidate (fuselip.data.types.Side) as a square picture: its image enlarged, or
    a text card when it has no image; framed green / gray when `correct` is True / False."""
    picture = enlarge(side.image, size) if side.image is not None else text_card(side.text, size)
    return frame(picture, correct) if correct is not None else picture


def image_grid_figure(rows: Sequence[Sequence[np.ndarray]], row_labels: Sequence[str] | None = None,
                      col_titles: Sequence[str] | None = None, cell: float = 1.2, title: str = ""):
    """Pictures in a grid (rows of uint8 HWC images; a row may be shorter), with optional row labels on the
    left and column titles on top. Pixel art is drawn without smoothing."""
    import matplotlib.pyplot as plt
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(cell * n_cols + (0.6 if row_labels else 0), cell * n_rows + 0.25),
                             squeeze=False)
    for i in range(n_rows):
        for j in range(n_cols):
            ax = axes[i, j]
            ax.set_xticks([]), ax.set_yticks([])
            if j < len(rows[i]) and rows[i][j] is not None:
                ax.imshow(np.asarray(rows[i][j]), interpolation="nearest")
            else:
                ax.axis("off")
            if i == 0 and col_titles and j < len(col_titles):
                ax.set_title(col_titles[j], fontsize=7)
        if row_labels and i < len(row_labels):
            axes[i, 0].set_ylabel(row_labels[i], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig

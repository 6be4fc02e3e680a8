"""Tokenizer pictures: original | its tokens | the reconstruction from the tokens, and a sheet of per-token
influence maps (computed by fuselip.tokenizers.influence, drawn here).
Arrays in, (H, W, 3) uint8 out; pure PIL except the heatmap colours."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from fuselip.viz._common import PREVIEW_BG, PREVIEW_INK, PREVIEW_PANEL_BG, load_font, to_numpy
from fuselip.viz.pictures import enlarge, heatmap_overlay
from fuselip.viz.tokens import token_grid_image, token_strip_image

RECON_LABEL_HEIGHT = 18             # pixels of caption under each panel
INFLUENCE_LABEL_HEIGHT = 14


def _labelled(panel: np.ndarray, label: str, height: int) -> np.ndarray:
    picture = Image.new("RGB", (panel.shape[1], panel.shape[0] + height), PREVIEW_BG)
    picture.paste(Image.fromarray(panel), (0, 0))
    ImageDraw.Draw(picture).text((panel.shape[1] // 2, panel.shape[0] + height // 2), label, fill=PREVIEW_INK,
                                 font=load_font(max(9, height - 6)), anchor="mm")
    return np.asarray(picture)


def _hstack(panels: Sequence[np.ndarray], gap: int = 6) -> np.ndarray:
    height = max(p.shape[0] for p in panels)
    width = sum(p.shape[1] for p in panels) + gap * (len(panels) - 1)
    sheet = Image.new("RGB", (width, height), PREVIEW_BG)
    x = 0
    for p in panels:
        sheet.paste(Image.fromarray(p), (x, 0))
        x += p.shape[1] + gap
    return np.asarray(sheet)


def _outlined(panel: np.ndarray) -> np.ndarray:
    """A thin gray outline, so white canvases show their edges on the white sheet."""
    out = np.array(panel, dtype=np.uint8, copy=True)
    out[0], out[-1], out[:, 0], out[:, -1] = PREVIEW_PANEL_BG, PREVIEW_PANEL_BG, PREVIEW_PANEL_BG, PREVIEW_PANEL_BG
    return out


def reconstruction_row(original: np.ndarray, codes: Sequence[int], reconstruction: np.ndarray,
                       grid: int | None = None, size: int = 192, psnr: float | None = None) -> np.ndarray:
    """Original | tokens | reconstruction, side by side. `grid` = g for a g×g grid tokenizer (tokens drawn
    over the image), None for a 1-D tokenizer (tokens drawn as a strip). Images (S, S, 3) uint8."""
    codes = [int(c) for c in codes]
    if grid is not None:
        tokens = token_grid_image(original, codes, grid, size=size)
        token_label = f"{grid}x{grid} codes"
    else:
        tokens = token_strip_image(codes, size=size)
        token_label = f"{len(codes)} codes (1-D)"
    side = tokens.shape[1]
    recon_label = "reconstruction" + (f" ({psnr:.1f} dB)" if psnr is not None else "")
    return _hstack([_labelled(_outlined(enlarge(original, side)), "original", RECON_LABEL_HEIGHT),
                    _labelled(tokens, token_label, RECON_LABEL_HEIGHT),
                    _labelled(_outlined(enlarge(reconstruction, side)), recon_label, RECON_LABEL_HEIGHT)])


def reconstruction_sheet(rows: Sequence[np.ndarray], gap: int = 8) -> np.ndarray:
    """Rows of `reconstruction_row` stacked vertically."""
    width = max(r.shape[1] for r in rows)
    sheet = Image.new("RGB", (width, sum(r.shape[0] for r in rows) + gap * (len(rows) - 1)), PREVIEW_BG)
    y = 0
    for r in rows:
        sheet.paste(Image.fromarray(r), (0, y))
        y += r.shape[0] + gap
    return np.asarray(sheet)


def influence_sheet(image: np.ndarray, maps, codes: Sequence[int], columns: int = 8, cell: int = 96) -> np.ndarray:
    """One heatmap per token over the image: where replacing that token alone changes the decoded pixels.
    maps: (N, S, S) from `tokenizer.influence_maps(codes)`; all tiles share one colour scale (the largest
    change anywhere), so a weak token looks weak."""
    maps = to_numpy(maps)
    top = float(maps.max(initial=0.0)) or 1.0
    tiles = [_labelled(heatmap_overlay(image, m, size=cell, smooth=True, vmax=top), f"token {i}: {int(c)}",
                       INFLUENCE_LABEL_HEIGHT) for i, (m, c) in enumerate(zip(maps, codes))]
    rows = [_hstack(tiles[i:i + columns], gap=2) for i in range(0, len(tiles), columns)]
    return reconstruction_sheet(rows, gap=2)

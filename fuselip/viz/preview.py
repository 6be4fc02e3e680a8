"""Data previews: contact sheets of training pairs (query image + text -> target) and of evaluation
items (query -> candidates, the correct one framed). Pure PIL, no matplotlib."""
from __future__ import annotations

import textwrap
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from fuselip.viz._common import (PREVIEW_BG, PREVIEW_FONT_SIZE, PREVIEW_INK, PREVIEW_MUTED, PREVIEW_PANEL_BG,
                                 load_font)

PREVIEW_TEXT_WIDTH = 170        # pixels of wrapped text next to an image
PREVIEW_CORRECT = (22, 160, 60)


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:
    """Greedy word wrap to `width` pixels."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            trial = f"{line} {word}".strip()
            if draw.textlength(trial, font=font) <= width or not line:
                line = trial
            else:
                lines.append(line)
                line = word
        lines.append(line)
    return lines


def _draw_text(draw, xy, text, font, width, max_lines, fill=PREVIEW_INK) -> None:
    lines = _wrap(draw, text, font, width)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = textwrap.shorten(lines[-1] + " …", width=max(len(lines[-1]), 4), placeholder=" …")
    x, y = xy
    step = font.size + 3 if hasattr(font, "size") else 14
    for line in lines:
        draw.text((x, y), line, fill=fill, font=font)
        y += step


def _panel(image: np.ndarray | None, side: int) -> Image.Image:
    """An image scaled (nearest) to side×side, or a gray 'no image' square."""
    if image is None:
        panel = Image.new("RGB", (side, side), PREVIEW_PANEL_BG)
        d = ImageDraw.Draw(panel)
        d.text((side // 2, side // 2), "no image", fill=PREVIEW_MUTED, font=load_font(), anchor="mm")
        return panel
    return Image.fromarray(np.asarray(image)).resize((side, side), Image.Resampling.NEAREST)


def _paste_framed(sheet: Image.Image, image: np.ndarray | None, xy: tuple[int, int], side: int) -> None:
    """Paste a panel with a thin gray frame (the worlds' canvases are white like the sheet)."""
    x, y = xy
    sheet.paste(_panel(image, side), (x, y))
    ImageDraw.Draw(sheet).rectangle((x - 1, y - 1, x + side, y + side), outline=PREVIEW_MUTED, width=1)


def _arrow(draw: ImageDraw.ImageDraw, x0: int, x1: int, y: int) -> None:
    """A right-pointing arrow from x0 to x1 at height y (drawn, so no font glyph is needed)."""
    draw.line((x0, y, x1 - 6, y), fill=PREVIEW_INK, width=2)
    draw.polygon([(x1, y), (x1 - 8, y - 5), (x1 - 8, y + 5)], fill=PREVIEW_INK)


def pair_sheet(pairs: Sequence, columns: int = 2, image_side: int = 128, title: str = "") -> Image.Image:
    """Contact sheet of training pairs: [left image][left text] → [right image][right text] per pair,
    with "task · kind · group g" above each. `pairs` are fuselip.data.types.Pair."""
    font, small = load_font(), load_font(PREVIEW_FONT_SIZE - 1)
    pad, arrow, label_h = 8, 26, 16
    block_w = 2 * (image_side + pad + PREVIEW_TEXT_WIDTH) + arrow + pad
    block_h = label_h + image_side + pad
    title_h = 24 if title else 0
    rows = (len(pairs) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * block_w + pad, title_h + rows * block_h + pad), PREVIEW_BG)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((pad, 6), title, fill=PREVIEW_INK, font=load_font(PREVIEW_FONT_SIZE + 2))
    max_lines = image_side // (PREVIEW_FONT_SIZE + 3)
    for i, p in enumerate(pairs):
        x0 = pad + (i % columns) * block_w
        y0 = title_h + pad + (i // columns) * block_h
        label = " · ".join(s for s in (p.world, p.task, p.kind, f"group {p.group}") if s)
        draw.text((x0, y0), label, fill=PREVIEW_MUTED, font=small)
        y = y0 + label_h
        x = x0
        for side_i, side in enumerate((p.left, p.right)):
            if side.image is not None:
                _paste_framed(sheet, side.image, (x, y), image_side)
                x += image_side + pad
            if side.text or side.image is None:
                _draw_text(draw, (x, y + 2), side.text or "(empty text)", font, PREVIEW_TEXT_WIDTH, max_lines,
                           PREVIEW_INK if side.text else PREVIEW_MUTED)
            x = x0 + image_side + pad + PREVIEW_TEXT_WIDTH if side_i == 0 else x
            if side_i == 0:
                _arrow(draw, x + 4, x + arrow - 4, y + image_side // 2)
                x += arrow
    return sheet


def eval_sheet(items: Sequence, max_candidates: int = 8, image_side: int = 96, title: str = "") -> Image.Image:
    """Evaluation items: query (image + text) then its candidates; the correct one (always first in the
    item) is framed in green here. Text candidates are listed, the correct one in green."""
    font, small = load_font(), load_font(PREVIEW_FONT_SIZE - 1)
    pad, label_h = 8, 16
    title_h = 24 if title else 0
    query_w = image_side + pad + PREVIEW_TEXT_WIDTH
    cand_w = max_candidates * (image_side + pad)
    width = pad + query_w + 2 * pad + max(cand_w, 2 * PREVIEW_TEXT_WIDTH) + pad
    block_h = label_h + image_side + pad
    sheet = Image.new("RGB", (width, title_h + len(items) * block_h + pad), PREVIEW_BG)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((pad, 6), title, fill=PREVIEW_INK, font=load_font(PREVIEW_FONT_SIZE + 2))
    line_h = PREVIEW_FONT_SIZE + 3
    for i, item in enumerate(items):
        y0 = title_h + pad + i * block_h
        n = len(item.candidates)
        label = " · ".join(s for s in (item.world, item.task, item.kind, f"{n} candidates") if s)
        draw.text((pad, y0), label, fill=PREVIEW_MUTED, font=small)
        y = y0 + label_h
        x = pad
        if item.query.image is not None:
            _paste_framed(sheet, item.query.image, (x, y), image_side)
        _draw_text(draw, (x + image_side + pad, y + 2), item.query.text or "(no text)", font, PREVIEW_TEXT_WIDTH,
                   image_side // line_h, PREVIEW_INK if item.query.text else PREVIEW_MUTED)
        x = pad + query_w + 2 * pad
        shown = item.candidates[:max_candidates]
        if all(c.image is not None for c in shown):
            for j, c in enumerate(shown):
                _paste_framed(sheet, c.image, (x, y), image_side)
                if j == 0:
                    draw.rectangle((x - 2, y - 2, x + image_side + 1, y + image_side + 1), outline=PREVIEW_CORRECT,
                                   width=3)
                x += image_side + pad
        else:
            per_col = max(image_side // line_h, 1)
            for j, c in enumerate(shown[: 2 * per_col]):
                cx = x + (j // per_col) * PREVIEW_TEXT_WIDTH
                cy = y + (j % per_col) * line_h
                text = textwrap.shorten(c.text or "(image)", width=30, placeholder="…")
                draw.text((cx, cy), text, fill=PREVIEW_CORRECT if j == 0 else PREVIEW_INK, font=font)
        if n > len(shown):
            draw.text((width - pad, y0), f"+{n - len(shown)} more", fill=PREVIEW_MUTED, font=small, anchor="ra")
    return sheet

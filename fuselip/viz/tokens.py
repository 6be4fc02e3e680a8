"""Image tokens: a grid tokenizer's codes drawn over the image (readable ids, one colour per code), the cells
that use one code, the cells that are masked, and a 1-D tokenizer's (TiTok) tokens as a strip of coloured ids.
Pure PIL; `size` is the side of the picture in pixels."""
from __future__ import annotations

import colorsys
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from fuselip.viz._common import load_font, to_numpy
from fuselip.viz.pictures import enlarge

TOKEN_CELL_MIN = 28                 # pixels per grid cell at least, so three-digit ids stay readable
TOKEN_DIM = 0.25                    # brightness of the cells that do NOT use the highlighted code
TOKEN_HIGHLIGHT = (255, 200, 0)     # outline of highlighted cells


def code_colour(code: int) -> tuple[int, int, int]:
    """A stable, well-spread colour per code id (golden-ratio hues)."""
    r, g, b = colorsys.hsv_to_rgb((int(code) * 0.618033988749895) % 1.0, 0.7, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def _id_font(cell: int):
    return load_font(max(9, cell * 2 // 5))


def token_grid_image(image: np.ndarray, codes: Sequence[int], grid: int, size: int = 256) -> np.ndarray:
    """A grid tokenizer's view of an image: each g×g cell tinted with its code's colour and labelled with
    the code id. (S, S, 3) uint8 + g² codes (row by row) -> (size', size', 3) uint8, size' ≥ g·TOKEN_CELL_MIN."""
    if len(codes) != grid * grid:
        raise ValueError(f"{len(codes)} codes do not fill a {grid}×{grid} grid")
    cell = max(size // grid, TOKEN_CELL_MIN)
    side = cell * grid
    base = Image.fromarray(enlarge(image, side))
    tint = Image.new("RGB", (side, side))
    draw = ImageDraw.Draw(tint)
    for i, code in enumerate(codes):
        x, y = (i % grid) * cell, (i // grid) * cell
        draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=code_colour(code))
    picture = Image.blend(base, tint, 0.45)
    draw = ImageDraw.Draw(picture)
    font = _id_font(cell)
    for i, code in enumerate(codes):
        x, y = (i % grid) * cell, (i // grid) * cell
        draw.rectangle((x, y, x + cell - 1, y + cell - 1), outline=(255, 255, 255))
        draw.text((x + cell // 2, y + cell // 2), str(code), fill=(0, 0, 0), font=font, anchor="mm",
                  stroke_width=2, stroke_fill=(255, 255, 255))
    return np.asarray(picture)


def highlight_cells(image: np.ndarray, selected: Sequence[bool], grid: int, size: int = 256) -> np.ndarray:
    """The image with every cell NOT in `selected` (g² booleans, row by row) dimmed and the selected ones
    outlined: where one code occurs."""
    cell = max(size // grid, TOKEN_CELL_MIN)
    side = cell * grid
    picture = enlarge(image, side).astype(np.float32)
    mask = np.kron(np.asarray(selected, dtype=bool).reshape(grid, grid), np.ones((cell, cell), dtype=bool))
    picture[~mask] *= TOKEN_DIM
    out = Image.fromarray(picture.round().astype(np.uint8))
    draw = ImageDraw.Draw(out)
    for i, on in enumerate(selected):
        if on:
            x, y = (i % grid) * cell, (i // grid) * cell
            draw.rectangle((x, y, x + cell - 1, y + cell - 1), outline=TOKEN_HIGHLIGHT, width=max(2, cell // 10))
    return np.asarray(out)


def token_strip_image(codes: Sequence[int], size: int = 256, per_row: int = 8,
                      selected: Sequence[bool] | None = None) -> np.ndarray:
    """A 1-D tokenizer's tokens (TiTok): boxes in reading order, coloured and labelled by code id, with
    the token index above each id. They are not image regions: the influence maps show where each acts."""
    n = len(codes)
    rows = (n + per_row - 1) // per_row
    cell = max(size // per_row, TOKEN_CELL_MIN)
    picture = Image.new("RGB", (cell * per_row, cell * rows), (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    font, small = _id_font(cell), _id_font(cell * 2 // 3)
    for i, code in enumerate(codes):
        x, y = (i % per_row) * cell, (i // per_row) * cell
        dim = selected is not None and not selected[i]
        colour = tuple(int(c * TOKEN_DIM + 255 * (1 - TOKEN_DIM)) for c in code_colour(code)) if dim \
            else code_colour(code)
        draw.rectangle((x + 1, y + 1, x + cell - 2, y + cell - 2), fill=colour,
                       outline=TOKEN_HIGHLIGHT if selected is not None and selected[i] else (255, 255, 255),
                       width=max(2, cell // 12) if selected is not None and selected[i] else 1)
        draw.text((x + 3, y + 2), str(i), fill=(60, 60, 60), font=small)
        draw.text((x + cell // 2, y + cell * 3 // 5), str(code), fill=(0, 0, 0), font=font, anchor="mm")
    return np.asarray(picture)


def masked_cells_image(image: np.ndarray, mask, grid: int, size: int = 192,
                       colour: tuple[int, int, int] = (85, 85, 85)) -> np.ndarray:
    """An image with the cells of a grid tokenizer's masked tokens painted over, and the g×g grid drawn:
    (S, S, 3) uint8 + (g*g,) bool (tokens row by row) -> (size, size, 3) uint8."""
    mask = to_numpy(mask, dtype=bool).reshape(grid, grid)
    out = enlarge(image, size).copy()
    cell = size / grid
    for r, c in zip(*np.nonzero(mask)):
        out[int(r * cell):int((r + 1) * cell), int(c * cell):int((c + 1) * cell)] = colour
    for k in range(1, grid):
        out[int(k * cell), :] = (200, 200, 200)
        out[:, int(k * cell)] = (200, 200, 200)
    return out

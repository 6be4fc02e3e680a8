"""Pictures shared by the notebooks, the app and the command lines.

Each section is self-contained; add new sections below the existing ones.
"""
from __future__ import annotations

import textwrap
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# =============================================================================================
# Data previews: contact sheets of training pairs (query image + text -> target) and of
# evaluation items (query -> candidates, the correct one framed). Pure PIL, no matplotlib.
# =============================================================================================

PREVIEW_TEXT_WIDTH = 170        # pixels of wrapped text next to an image
PREVIEW_FONT_SIZE = 12
PREVIEW_BG = (255, 255, 255)
PREVIEW_PANEL_BG = (236, 236, 236)   # behind images, so a white canvas shows its edges
PREVIEW_INK = (20, 20, 20)
PREVIEW_MUTED = (120, 120, 120)
PREVIEW_CORRECT = (22, 160, 60)


def _font(size: int = PREVIEW_FONT_SIZE):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the bitmap font
        return ImageFont.load_default()


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
        d.text((side // 2, side // 2), "no image", fill=PREVIEW_MUTED, font=_font(), anchor="mm")
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
    font, small = _font(), _font(PREVIEW_FONT_SIZE - 1)
    pad, arrow, label_h = 8, 26, 16
    block_w = 2 * (image_side + pad + PREVIEW_TEXT_WIDTH) + arrow + pad
    block_h = label_h + image_side + pad
    title_h = 24 if title else 0
    rows = (len(pairs) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * block_w + pad, title_h + rows * block_h + pad), PREVIEW_BG)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((pad, 6), title, fill=PREVIEW_INK, font=_font(PREVIEW_FONT_SIZE + 2))
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
    font, small = _font(), _font(PREVIEW_FONT_SIZE - 1)
    pad, label_h = 8, 16
    title_h = 24 if title else 0
    query_w = image_side + pad + PREVIEW_TEXT_WIDTH
    cand_w = max_candidates * (image_side + pad)
    width = pad + query_w + 2 * pad + max(cand_w, 2 * PREVIEW_TEXT_WIDTH) + pad
    block_h = label_h + image_side + pad
    sheet = Image.new("RGB", (width, title_h + len(items) * block_h + pad), PREVIEW_BG)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((pad, 6), title, fill=PREVIEW_INK, font=_font(PREVIEW_FONT_SIZE + 2))
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


# =============================================================================================
# Attention across modalities (fuselip.probe) and retrieval results: heatmaps of a text token's
# attention over the image, cross-modal share per layer, token bars, result cards for the app.
# Arrays in, arrays (uint8 RGB) or matplotlib figures out; matplotlib is imported only when drawn.
# =============================================================================================

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
    heat = np.asarray(heat.detach().cpu() if hasattr(heat, "detach") else heat, dtype=np.float32)
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
    try:
        font = ImageFont.load_default(size=CARD_FONT_SIZE)
    except TypeError:
        font = ImageFont.load_default()
    lines = textwrap.wrap(text, width=max(4, size // (CARD_FONT_SIZE // 2 + 2)))[: size // (CARD_FONT_SIZE + 4)]
    y = (size - len(lines) * (CARD_FONT_SIZE + 4)) // 2
    for line in lines:
        draw.text((size // 2, y), line, fill=(20, 20, 20), font=font, anchor="ma")
        y += CARD_FONT_SIZE + 4
    return np.asarray(card)


def cross_modal_share_figure(shares, title: str = "Cross-modal attention per layer"):
    """Line plot of fuselip.probe.Shares: text → image and image → text per layer (mean over heads, with
    the spread over heads shaded), and what uniform attention would give (dashed)."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.2))
    layers = np.arange(1, shares.text_to_image.shape[0] + 1)
    for values, uniform, label, colour in ((shares.text_to_image, shares.uniform_text_to_image, "text → image", "C0"),
                                           (shares.image_to_text, shares.uniform_image_to_text, "image → text", "C1")):
        v = np.asarray(values, dtype=np.float32)                                        # (L, H)
        ax.plot(layers, v.mean(1), "o-", color=colour, label=label)
        ax.fill_between(layers, v.min(1), v.max(1), color=colour, alpha=0.15)
        ax.axhline(uniform, color=colour, ls="--", lw=1, label=f"{label}, uniform attention")
    ax.set(xlabel="layer", ylabel="share of attention", ylim=(0, 1), xticks=layers, title=title)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def attention_matrix_figure(attention, ids, labels: Sequence[str] | None = None,
                            title: str = "Attention (rows: queries, columns: keys)", size: float = 5.0):
    """The full (T, T) attention of one layer/head with the image and text blocks marked. `size`: inches per
    side; at a notebook's 80 dpi a text label needs about 9 px per row, i.e. size ≈ T / 9."""
    import matplotlib.pyplot as plt
    from fuselip.probe import layout
    a = np.asarray(attention.detach().cpu() if hasattr(attention, "detach") else attention, dtype=np.float32)
    lay = layout(ids)
    n_img, n_real = lay.num_image, int(lay.real.sum())
    a = a[:n_real, :n_real]
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(a, cmap=ATTENTION_CMAP, vmin=0, vmax=max(float(a.max()), 1e-9))
    if 0 < n_img < n_real:
        for pos in (n_img - 0.5,):
            ax.axhline(pos, color="white", lw=1)
            ax.axvline(pos, color="white", lw=1)
    ticks = [f"img {i}" if i < n_img and i % 8 == 0 else "" for i in range(n_img)] + list(labels or [])[: n_real - n_img]
    font = 6 if size < 7 else 7.5
    ax.set_xticks(range(len(ticks)), ticks, rotation=90, fontsize=font)
    ax.set_yticks(range(len(ticks)), ticks, fontsize=font)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


# =============================================================================================
# Token sequences (notebooks): the joint vocabulary as a strip of id ranges, and id sequences drawn as
# rows of coloured cells (image / sot / text / eot / [MASK] / padding), so the layout of
# fuselip.vocab.build_sequence can be seen rather than read. Matplotlib figures out.
# =============================================================================================

SEQUENCE_COLOURS = {"image": "#8fb8de", "sot": "#f4a259", "text": "#9bd39b", "eot": "#e76f51",
                    "mask": "#555555", "pad": "#eeeeee"}
SEQUENCE_CELL = 0.62            # inches per token cell (wide enough for a 5-digit id in SEQUENCE_FONT)
SEQUENCE_ROW_PITCH = 1.7        # cells from one row to the next: room for the ids below and positions above
SEQUENCE_FONT = 9               # points: the token; ids, positions one point smaller
SEQUENCE_IMAGE_SHOWN = 4        # image tokens drawn before the rest of the image is collapsed into "…"


def token_kinds(ids) -> list[str]:
    """(T,) ids of one sequence -> one of "image", "sot", "text", "eot", "mask", "pad" per position.
    Padding is everything after the (last) eot, as the model sees it (the pad id 0 is also the BPE token "!")."""
    from fuselip import vocab
    ids = [int(i) for i in (ids.tolist() if hasattr(ids, "tolist") else ids)]
    eot = max((i for i, t in enumerate(ids) if t == vocab.EOT), default=len(ids) - 1)
    kinds = []
    for position, token in enumerate(ids):
        if position > eot:
            kinds.append("pad")
        elif token >= vocab.IMAGE_OFFSET:
            kinds.append("image")
        elif token == vocab.SOT:
            kinds.append("sot")
        elif token == vocab.EOT:
            kinds.append("eot")
        elif token == vocab.MASK:
            kinds.append("mask")
        else:
            kinds.append("text")
    return kinds


def _token_label(token: int, kind: str) -> str:
    from fuselip import vocab
    from fuselip.text import default_tokenizer
    if kind == "image":
        return f"c{token - vocab.IMAGE_OFFSET}"
    if kind in ("sot", "eot"):
        return kind
    if kind == "mask":
        return "[M]"
    if kind == "pad":
        return "pad"
    return default_tokenizer().token_strings([token])[0]


def _collapse_runs(cells: list, image_shown: int) -> list:
    """(position, id, kind) cells -> the same with long image runs shown as `image_shown` tokens + one
    ("more image", hidden count) cell + the last token, and padding as one cell + ("more pad", count)."""
    keep_first = {"image": image_shown, "pad": 1}
    keep_last = {"image": 1, "pad": 0}
    out, i = [], 0
    while i < len(cells):
        kind = cells[i][2]
        j = i
        while j < len(cells) and cells[j][2] == kind:
            j += 1
        run = cells[i:j]
        if kind in keep_first and len(run) > keep_first[kind] + keep_last[kind] + 1:
            hidden = len(run) - keep_first[kind] - keep_last[kind]
            out += run[:keep_first[kind]] + [(None, hidden, f"more {kind}")] + run[len(run) - keep_last[kind]:]
        else:
            out += run
        i = j
    return out


def token_label(token: int) -> str:
    """A readable label for any joint-vocabulary id: the BPE piece, sot/eot, [M], or `c<code>` for an image code."""
    from fuselip import vocab
    token = int(token)
    kind = ("image" if token >= vocab.IMAGE_OFFSET else "sot" if token == vocab.SOT else "eot" if token == vocab.EOT
            else "mask" if token == vocab.MASK else "text")
    return _token_label(token, kind)


def sequence_figure(sequences, names: Sequence[str] | None = None, title: str = "",
                    image_shown: int = SEQUENCE_IMAGE_SHOWN, show_ids: bool = True,
                    offsets: Sequence[int] | None = None):
    """Rows of coloured cells, one row per sequence ((B, T) tensor or list of id lists).

    Each cell shows the token (image code `c…`, sot, the BPE piece, eot, [M], pad), its id below when
    `show_ids`, and its position above, in fonts that stay readable at a notebook's 80 dpi. A long image is drawn as its first `image_shown` tokens, one hatched
    cell saying how many are hidden, and its last token; a long padding run as one pad cell and a hatched one,
    so that the text part stays readable. `offsets`: the position of each row's first id (to draw a slice).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    rows = [[int(i) for i in (s.tolist() if hasattr(s, "tolist") else s)] for s in sequences]
    offsets = list(offsets) if offsets is not None else [0] * len(rows)
    drawn_rows = [_collapse_runs([(o + p, t, k) for p, (t, k) in enumerate(zip(ids, token_kinds(ids)))], image_shown)
                  for ids, o in zip(rows, offsets)]
    width = max(len(c) for c in drawn_rows)
    name_w = 2.2 if names else 0.0                     # in cells
    pitch = SEQUENCE_ROW_PITCH if show_ids else SEQUENCE_ROW_PITCH - 0.25     # cells from one row to the next
    height_cells = pitch * (len(rows) - 1) + 1.3 + 0.9                        # top row's positions .. legend
    fig, ax = plt.subplots(figsize=((name_w + width) * SEQUENCE_CELL + 0.2,
                                    height_cells * SEQUENCE_CELL * 0.85 + (0.3 if title else 0)))
    font = SEQUENCE_FONT
    for r, cells in enumerate(drawn_rows):
        y = -r * pitch
        if names:
            ax.text(-0.3, y + 0.4, names[r], ha="right", va="center", fontsize=font + 1, parse_math=False)
        for x, (position, token, kind) in enumerate(cells):
            if kind.startswith("more "):
                ax.add_patch(Rectangle((x, y), 0.95, 0.8, facecolor="white", lw=1, hatch="//",
                                       edgecolor=SEQUENCE_COLOURS[kind.split()[1]]))
                ax.text(x + 0.47, y + 0.4, f"+{token}", ha="center", va="center", fontsize=font,
                        bbox=dict(facecolor="white", edgecolor="none", pad=1))
                continue
            colour = SEQUENCE_COLOURS[kind]
            ax.add_patch(Rectangle((x, y), 0.95, 0.8, facecolor=colour, edgecolor="none"))
            ink = "white" if kind == "mask" else "black"
            ax.text(x + 0.47, y + 0.4, _token_label(token, kind)[:7], ha="center", va="center", fontsize=font,
                    color=ink, parse_math=False)
            ax.text(x + 0.47, y + 0.86, str(position), ha="center", va="bottom", fontsize=font - 1, color="#666666")
            if show_ids:
                ax.text(x + 0.47, y - 0.06, str(token), ha="center", va="top", fontsize=font - 1, color="#333333")
    handles = [Rectangle((0, 0), 1, 1, facecolor=c) for c in SEQUENCE_COLOURS.values()]
    ax.legend(handles, list(SEQUENCE_COLOURS), ncol=len(SEQUENCE_COLOURS), fontsize=font, loc="upper left",
              bbox_to_anchor=(0, 0), frameon=False)
    ax.set_xlim(-name_w, width)
    ax.set_ylim(-pitch * (len(rows) - 1) - (0.5 if show_ids else 0.2), 1.3)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=font + 2, loc="left")
    fig.tight_layout()
    return fig


def vocabulary_figure(codebook_size: int, title: str = "The joint vocabulary (not to scale)"):
    """The joint id space as a strip: text BPE ids, sot, eot, [MASK], then the image codes."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    from fuselip import vocab
    spans = [("text (BPE)", 0, vocab.SOT - 1, SEQUENCE_COLOURS["text"], 5.0),
             ("sot", vocab.SOT, vocab.SOT, SEQUENCE_COLOURS["sot"], 0.9),
             ("eot", vocab.EOT, vocab.EOT, SEQUENCE_COLOURS["eot"], 0.9),
             ("[MASK]", vocab.MASK, vocab.MASK, SEQUENCE_COLOURS["mask"], 1.0),
             (f"image codes 0…{codebook_size - 1}", vocab.IMAGE_OFFSET, vocab.IMAGE_OFFSET + codebook_size - 1,
              SEQUENCE_COLOURS["image"], 3.0)]
    fig, ax = plt.subplots(figsize=(8, 1.3))
    x = 0.0
    for label, lo, hi, colour, w in spans:
        ax.add_patch(Rectangle((x, 0), w - 0.05, 1, facecolor=colour))
        ax.text(x + w / 2, 0.5, label, ha="center", va="center", fontsize=7,
                color="white" if label == "[MASK]" else "black")
        ax.text(x + w / 2, -0.12, str(lo) if lo == hi else f"{lo} … {hi}", ha="center", va="top", fontsize=7)
        x += w
    ax.set_xlim(0, x)
    ax.set_ylim(-0.6, 1.1)
    ax.axis("off")
    ax.set_title(f"{title}: {vocab.joint_vocab_size(codebook_size)} ids", fontsize=9, loc="left")
    fig.tight_layout()
    return fig


def masked_cells_image(image: np.ndarray, mask, grid: int, size: int = 192,
                       colour: tuple[int, int, int] = (85, 85, 85)) -> np.ndarray:
    """An image with the cells of a grid tokenizer's masked tokens painted over, and the g×g grid drawn:
    (S, S, 3) uint8 + (g*g,) bool (tokens row by row) -> (size, size, 3) uint8."""
    mask = np.asarray(mask.detach().cpu() if hasattr(mask, "detach") else mask, dtype=bool).reshape(grid, grid)
    out = enlarge(image, size).copy()
    cell = size / grid
    for r, c in zip(*np.nonzero(mask)):
        out[int(r * cell):int((r + 1) * cell), int(c * cell):int((c + 1) * cell)] = colour
    for k in range(1, grid):
        out[int(k * cell), :] = (200, 200, 200)
        out[:, int(k * cell)] = (200, 200, 200)
    return out


def training_curves_figure(history: Sequence[dict], title: str = "", parts: Sequence[str] = ("loss", "siglip", "mmm")):
    """Loss curves of an engine run (fuselip.engine.Trainer.history: one dict per log step) and, on a second
    panel, the learned SigLIP logit scale exp(t) and bias b."""
    import matplotlib.pyplot as plt
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(8, 2.8))
    steps = [h["step"] for h in history]
    for name in parts:
        if history and name in history[0]:
            ax.plot(steps, [h[name] for h in history], label=name, lw=1.5 if name == "loss" else 1)
    ax.set(xlabel="step", ylabel="loss", title=title or "training loss")
    ax.legend(fontsize=7)
    if history and "logit_scale" in history[0]:
        # both axes start at 0 and reach at least twice the starting values (10 and -10), so a drift of a few
        # hundredths looks like one, not like a dive (matplotlib's automatic limits would zoom into it)
        scale = [float(np.exp(h["logit_scale"])) for h in history]
        bias = [h["logit_bias"] for h in history]
        ax2.plot(steps, scale, color="C3", label="scale exp(t)")
        ax2.set_ylabel("scale exp(t)", color="C3")
        ax2.set_ylim(0, max(20.0, 1.1 * max(scale)))
        twin = ax2.twinx()
        twin.plot(steps, bias, color="C4", label="bias b")
        twin.set_ylabel("bias b", color="C4")
        twin.set_ylim(min(-20.0, 1.1 * min(bias)), 0)
    ax2.set(xlabel="step", title="SigLIP temperature and bias")
    fig.tight_layout()
    return fig



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


def task_bars_figure(results_by_model: dict, world: str = "mean", tasks: Sequence[str] | None = None,
                     title: str = "top-1 accuracy per task"):
    """Grouped bars: one group per task, one bar per model, from fuselip.evaluate results ({model: results});
    `world` = "mean" (over worlds) or a world name."""
    import matplotlib.pyplot as plt
    names = list(results_by_model)
    if tasks is None:
        tasks = []
        for results in results_by_model.values():
            source = results["mean"] if world == "mean" else results["worlds"].get(world, {})
            tasks += [t for t in source if t not in tasks]
    def value(results, task):
        if world == "mean":
            return results["mean"].get(task, float("nan"))
        return results["worlds"].get(world, {}).get(task, {}).get("top1", float("nan"))
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(1.1 * len(tasks) + 1.5, 3))
    for k, name in enumerate(names):
        x = np.arange(len(tasks)) + (k - (len(names) - 1) / 2) * width
        ax.bar(x, [value(results_by_model[name], t) for t in tasks], width, label=name)
    ax.set_xticks(np.arange(len(tasks)), tasks, fontsize=8)
    ax.set(ylabel="top-1 (%)", ylim=(0, 100), title=f"{title} ({world})")
    ax.legend(fontsize=7, ncol=len(names))
    fig.tight_layout()
    return fig


def side_picture(side, size: int = 96, correct: bool | None = None) -> np.ndarray:
    """One side of a pair or a candidate (fuselip.data.types.Side) as a square picture: its image enlarged, or
    a text card when it has no image; framed green / gray when `correct` is True / False."""
    picture = enlarge(side.image, size) if side.image is not None else text_card(side.text, size)
    return frame(picture, correct) if correct is not None else picture

# =============================================================================================
# Image tokens in the app (tab 1): a grid tokenizer's codes drawn over the image (readable ids, one
# colour per code), the cells that use one code, and TiTok's tokens as a strip of coloured ids.
# Pure PIL; `size` is the side of the picture in pixels.
# =============================================================================================

TOKEN_CELL_MIN = 28                 # pixels per grid cell at least, so three-digit ids stay readable
TOKEN_DIM = 0.25                    # brightness of the cells that do NOT use the highlighted code
TOKEN_HIGHLIGHT = (255, 200, 0)     # outline of highlighted cells


def code_colour(code: int) -> tuple[int, int, int]:
    """A stable, well-spread colour per code id (golden-ratio hues)."""
    import colorsys
    r, g, b = colorsys.hsv_to_rgb((int(code) * 0.618033988749895) % 1.0, 0.7, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def _id_font(cell: int):
    try:
        return ImageFont.load_default(size=max(9, cell * 2 // 5))
    except TypeError:
        return ImageFont.load_default()


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

# =============================================================================================
# Tokenizer pictures (tokenizer helper): original | its tokens | the reconstruction from the tokens,
# and a sheet of per-token influence maps (computed by fuselip.tokenizers.influence, drawn here).
# Arrays in, (H, W, 3) uint8 out; pure PIL except the heatmap colours.
# =============================================================================================

RECON_LABEL_HEIGHT = 18             # pixels of caption under each panel
INFLUENCE_LABEL_HEIGHT = 14


def _labelled(panel: np.ndarray, label: str, height: int) -> np.ndarray:
    picture = Image.new("RGB", (panel.shape[1], panel.shape[0] + height), PREVIEW_BG)
    picture.paste(Image.fromarray(panel), (0, 0))
    ImageDraw.Draw(picture).text((panel.shape[1] // 2, panel.shape[0] + height // 2), label, fill=PREVIEW_INK,
                                 font=_font(max(9, height - 6)), anchor="mm")
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


def _outlined(panel: np.ndarray) -> np.ndarray:
    """A thin gray outline, so white canvases show their edges on the white sheet."""
    out = np.array(panel, dtype=np.uint8, copy=True)
    out[0], out[-1], out[:, 0], out[:, -1] = PREVIEW_PANEL_BG, PREVIEW_PANEL_BG, PREVIEW_PANEL_BG, PREVIEW_PANEL_BG
    return out


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
    maps = np.asarray(maps.detach().cpu() if hasattr(maps, "detach") else maps, dtype=np.float32)
    top = float(maps.max(initial=0.0)) or 1.0
    tiles = [_labelled(heatmap_overlay(image, m, size=cell, smooth=True, vmax=top), f"token {i}: {int(c)}",
                       INFLUENCE_LABEL_HEIGHT) for i, (m, c) in enumerate(zip(maps, codes))]
    rows = [_hstack(tiles[i:i + columns], gap=2) for i in range(0, len(tiles), columns)]
    return reconstruction_sheet(rows, gap=2)

"""Token sequences: ids drawn as rows of coloured cells (image / sot / text / eot / [MASK] / padding), so the
layout of fuselip.vocab.build_sequence can be seen rather than read, and the joint vocabulary as a strip of
id ranges. Matplotlib figures out (imported only when drawn)."""
from __future__ import annotations

from typing import Sequence

from fuselip import vocab
from fuselip.vocab import token_label

SEQUENCE_COLOURS = {"image": "#8fb8de", "sot": "#f4a259", "text": "#9bd39b", "eot": "#e76f51",
                    "mask": "#555555", "pad": "#eeeeee"}
SEQUENCE_CELL = 0.62            # inches per token cell (wide enough for a 5-digit id in SEQUENCE_FONT)
SEQUENCE_ROW_PITCH = 1.7        # cells from one row to the next: room for the ids below and positions above
SEQUENCE_FONT = 9               # points: the token; ids, positions one point smaller
SEQUENCE_IMAGE_SHOWN = 4        # image tokens drawn before the rest of the image is collapsed into "…"


def token_kinds(ids) -> list[str]:
    """(T,) ids of one sequence -> one of "image", "sot", "text", "eot", "mask", "pad" per position.
    Padding is everything after the (last) eot, as the model sees it (the pad id 0 is also the BPE token "!")."""
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
    return "pad" if kind == "pad" else token_label(token)


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


def sequence_figure(sequences, names: Sequence[str] | None = None, title: str = "",
                    image_shown: int = SEQUENCE_IMAGE_SHOWN, show_ids: bool = True,
                    offsets: Sequence[int] | None = None):
    """Rows of coloured cells, one row per sequence ((B, T) tensor or list of id lists).

    Each cell shows the token (image code `c…`, sot, the BPE piece, eot, [M], pad), its id below when
    `show_ids`, and its position above, in fonts that stay readable at a notebook's 80 dpi. A long image is
    drawn as its first `image_shown` tokens, one hatched cell saying how many are hidden, and its last token; a
    long padding run as one pad cell and a hatched one, so that the text part stays readable. `offsets`: the
    position of each row's first id (to draw a slice).
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

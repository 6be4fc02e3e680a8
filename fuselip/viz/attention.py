"""Attention across modalities (computed by fuselip.probe): the cross-modal share per layer and the full
attention matrix of one layer and head. Matplotlib figures out (imported only when drawn)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from fuselip.viz._common import to_numpy
from fuselip.viz.pictures import ATTENTION_CMAP


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
    from fuselip.probe import layout      # on use: fuselip.probe loads open_clip's tokenizer (seconds)
    a = to_numpy(attention)
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

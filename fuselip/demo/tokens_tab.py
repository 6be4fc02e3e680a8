"""The image-tokens tab: an image -> its codes, the reconstruction, and where each code (or token) sits."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fuselip import viz
from fuselip.demo.config import DemoConfig
from fuselip.demo.errors import DemoError
from fuselip.demo.inputs import read_image
from fuselip.demo.registry import MODEL_LABELS, Registry
from fuselip.images import to_tensor, to_uint8
from fuselip.tokenizers.grid import GridTokenizer


@dataclass
class TokensView:
    token_picture: np.ndarray        # the codes drawn over the image
    reconstruction: np.ndarray       # decode(encode(image))
    highlight: np.ndarray            # the tokens that use the selected code
    codes: list[int]                 # (N,) the image's codes
    code_choices: list[str]          # one per distinct code, "code 17 (×3)"
    selected: str
    influence: list[tuple[np.ndarray, str]]  # TiTok: per-token influence maps; grid: empty
    summary: str
    notes: list[str]


class TokensTab:
    """The tokens tab (Demo.tokens): view(tokenizer, image, code) -> TokensView, with the registry's tokenizers."""

    def __init__(self, config: DemoConfig, registry: Registry):
        self.config = config
        self.registry = registry

    def view(self, tokenizer: str, image, code: str | None = None) -> TokensView:
        if image is None:
            raise DemoError("Choose an example or upload an image first.")
        tok = self.registry.tokenizer(tokenizer)
        array, notes = read_image(image, tok.config.image_size, tok.resize_mode)
        if array is None:
            raise DemoError("Choose an example or upload an image first.")
        size = self.config.token_display_size
        with torch.inference_mode():
            encoded = tok.encode(to_tensor([array]))                         # (1, N)
            if tok.can_decode:
                recon = viz.enlarge(to_uint8(tok.decode(encoded))[0], size)  # (S, S, 3) -> display size
            else:
                recon = viz.text_card("no decoder in this release: the codes cannot be turned back into pixels",
                                      size)
        codes: list[int] = encoded[0].tolist()
        counts: dict[int, int] = {}
        for c in codes:
            counts[c] = counts.get(c, 0) + 1
        choices = [f"code {c} (×{n})" for c, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        selected = code if code in choices else choices[0]
        chosen = int(selected.split()[1])
        grid = tok.grid_size if isinstance(tok, GridTokenizer) else None
        if grid is not None:
            picture = viz.token_grid_image(array, codes, grid, size=size)
            highlight = viz.highlight_cells(array, [c == chosen for c in codes], grid, size=size)
            influence = []
        else:
            maps = tok.token_maps(array, torch.tensor(codes)).float()       # (N, h, w)
            picture = viz.token_strip_image(codes, size=size)
            chosen_mask = torch.tensor([c == chosen for c in codes])
            highlight = viz.heatmap_overlay(array, maps[chosen_mask].sum(0), size=size, smooth=True)
            influence = [(viz.heatmap_overlay(array, m, size=self.config.display_size // 2, smooth=True),
                          f"token {i}: code {c}")
                         for i, (m, c) in enumerate(zip(maps, codes))]
        entry = self.registry.entries[tokenizer]
        summary = (f"**{entry.label}** ({MODEL_LABELS[entry.kind]}): {len(codes)} tokens, "
                   f"**{len(counts)} distinct codes** of a codebook of {tok.codebook_size}. "
                   f"Code {chosen} is used by {counts[chosen]} token(s)."
                   + ("" if entry.trained else " *Untrained tokenizer: codes and reconstruction are noise.*")
                   + (" The maps show where each token *reads* from (attention rollout through the encoder), "
                      "not which pixels it changes." if tok.resize_mode == "squash" else ""))
        return TokensView(picture, recon, highlight, codes, choices, selected, influence, summary, notes)

"""The joint token space: the ONE place that knows every token id.

FuseLIP feeds image tokens and text tokens to one transformer, so both live in one vocabulary
(shared/PAPER.md, "Token layout"):

    0 ............ 49405   CLIP BPE text tokens (0, "!", doubles as the pad id: padding is what follows eot)
    49406                  <start_of_text>  (sot)
    49407                  <end_of_text>    (eot; the embedding is read here)
    49408                  [MASK]           (masked multimodal modelling)
    49409 + code           image code `code` of the frozen image tokenizer

Sequences always put the image first, then `[sot, text..., eot]`; an image alone is followed by the
empty text `[sot, eot]`. Nothing else in the project writes an id literally: it imports it from here.
`tests/test_vocab.py` checks these numbers against open_clip's tokenizer.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

TEXT_VOCAB_SIZE = 49408  # open_clip SimpleTokenizer: 49406 BPE tokens + sot + eot
PAD = 0
SOT = 49406
EOT = 49407
MASK = TEXT_VOCAB_SIZE  # 49408, appended after the text vocabulary
IMAGE_OFFSET = MASK + 1  # 49409: image id = code + IMAGE_OFFSET
SPECIAL_LABELS = {SOT: "sot", EOT: "eot", MASK: "[M]"}


def joint_vocab_size(codebook_size: int) -> int:
    """Number of rows of the token embedding for an image tokenizer with `codebook_size` codes."""
    return IMAGE_OFFSET + codebook_size


def image_ids(codes: torch.Tensor) -> torch.Tensor:
    """Image-tokenizer codes (any shape) -> joint-vocabulary ids."""
    return codes + IMAGE_OFFSET


def image_codes(ids: torch.Tensor) -> torch.Tensor:
    """Joint-vocabulary ids of image tokens -> image-tokenizer codes."""
    return ids - IMAGE_OFFSET


def is_image(ids: torch.Tensor) -> torch.Tensor:
    return ids >= IMAGE_OFFSET


def is_text(ids: torch.Tensor) -> torch.Tensor:
    """True for sot, eot and every BPE token, id 0 ("!") included: the pad id is also a text token, so padding is
    told by position (after a row's eot, `eot_positions`), never by id."""
    return ids < MASK


def build_sequence(image_codes: Sequence[int] | np.ndarray | None, text_tokens: Sequence[int] | None,
                   context_length: int) -> list[int]:
    """One side of a pair as ids: `[img_1 … img_N, sot, t_1 … t_k, eot]`.

    `image_codes` are raw tokenizer codes (shifted here), `text_tokens` raw BPE ids without sot/eot.
    A side without an image starts at `sot`; a side without a text gets the empty text `[sot, eot]`.
    Text is truncated so that the whole sequence fits `context_length`, and `eot` always stays last.
    """
    image = [int(c) + IMAGE_OFFSET for c in (image_codes if image_codes is not None else [])]
    room = context_length - len(image) - 2
    if room < 0:
        raise ValueError(f"context_length={context_length} cannot hold {len(image)} image tokens "
                         f"plus [sot, eot]; raise the encoder's context_length")
    text = list(text_tokens or [])[:room]
    return image + [SOT] + text + [EOT]


def pad_sequences(sequences: Sequence[Sequence[int]]) -> torch.Tensor:
    """Right-pad id lists with PAD to the longest one (the batch is trimmed, never padded to context)."""
    if not sequences:
        raise ValueError("pad_sequences needs at least one sequence")
    length = max(len(s) for s in sequences)
    out = torch.full((len(sequences), length), PAD, dtype=torch.long)  # (B, T)
    for row, seq in enumerate(sequences):
        out[row, :len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return out


def eot_positions(ids: torch.Tensor) -> torch.Tensor:
    """(B, T) ids -> (B,) index of the (single, last) eot in each row."""
    is_eot = ids == EOT
    if not bool(is_eot.any(dim=1).all()):
        raise ValueError("every sequence must contain an eot token")
    positions = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)
    return torch.where(is_eot, positions, -1).max(dim=1).values


def token_label(token: int) -> str:
    """A readable label for any joint-vocabulary id: `c<code>` for an image code, sot, eot, [M], or the BPE piece."""
    from fuselip.text import default_tokenizer      # on use: importing open_clip's tokenizer takes seconds
    token = int(token)
    if token >= IMAGE_OFFSET:
        return f"c{token - IMAGE_OFFSET}"
    return SPECIAL_LABELS.get(token) or default_tokenizer().token_strings([token])[0]

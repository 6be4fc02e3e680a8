"""The data contract shared by every world, task, model and evaluation (see DESIGN.md).

A *side* is (image or None, text or ""); a *pair* is (left, right, task, group): pairs that share a
`group` are hard negatives of each other and go into the same batch. An evaluation item carries its
own candidate list with the correct candidate first. Images are (H, W, 3) uint8 RGB numpy arrays.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


def image_key(image: np.ndarray | None) -> bytes:
    """Content hash of an image (shape + pixels): the key of the image-token cache."""
    if image is None:
        return b""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr(image.shape).encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.digest()


@dataclass(frozen=True, eq=False)
class Side:
    image: np.ndarray | None = None  # (H, W, 3) uint8 RGB
    text: str = ""

    def __post_init__(self):
        if self.image is None and not self.text:
            raise ValueError("a side needs an image, a text, or both")
        if self.image is not None:
            if self.image.dtype != np.uint8 or self.image.ndim != 3 or self.image.shape[2] != 3:
                raise ValueError(f"side images are (H, W, 3) uint8 RGB, got {self.image.dtype} {self.image.shape}")

    def key(self) -> bytes:
        """Identity of the content: equal keys mean identical candidates (treated as one)."""
        return image_key(self.image) + b"|" + self.text.encode()


@dataclass(frozen=True, eq=False)
class Pair:
    left: Side
    right: Side
    task: str          # "caption", "tgit", "vqa", ...
    group: int         # hard-negative group: same group -> same batch
    kind: str = ""     # sub-kind, e.g. "rotate" for tgit, "colour" for vqa
    world: str = ""


@dataclass(frozen=True, eq=False)
class EvalItem:
    query: Side
    candidates: tuple[Side, ...]   # correct one first, no duplicates
    task: str
    kind: str = ""
    world: str = ""
    meta: dict = field(default_factory=dict)

"""The user's input: any image file (or none) and any text -> what the models take, plus notes for the user.

Anything unusable raises `DemoError` with a message meant for the user; anything usable but odd (RGBA, grayscale,
1×1, 6000×4000, a text that does not fit the context, emoji, right-to-left script) comes back as `notes` that the
app shows as warnings. fuselip.text is imported where it is used: it loads open_clip (seconds), which the app's
cold start leaves to the first request that needs it.
"""
from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np

from fuselip.contract import Compactable
from fuselip.demo.errors import DemoError
from fuselip.images import ImageError, open_image, preprocess, squash


def read_image(source, size: int, resize: str = "crop") -> tuple[np.ndarray | None, list[str]]:
    """Anything image-like (path, file payload dict, PIL, array) or None -> ((size, size, 3) uint8, notes).

    resize: "crop" (this project's models: shorter side to `size`, centre square) or "squash" (the released models:
    the whole image resized to size×size, fuselip.images.squash)."""
    if source is None:
        return None, []
    name = None
    if isinstance(source, dict):  # an uploaded-file payload (Gradio FileData): path + the user's file name
        name = source.get("orig_name")
        source = source.get("path")
        if source is None:
            return None, []
    name = name or (Path(source).name if isinstance(source, (str, Path)) else "the image")
    try:
        raw = open_image(source)
        notes = describe_image(raw, size, resize)
        array = squash(raw, size) if resize == "squash" else preprocess(raw, size)
    except ImageError as e:
        message = str(e).replace(str(source), name) if isinstance(source, (str, Path)) else str(e)
        raise DemoError(f"Could not use the uploaded file: {message}") from None
    except (OSError, ValueError) as e:
        raise DemoError(f"Could not use the uploaded file {name}: {e}") from None
    return array, notes


def describe_image(image, size: int, resize: str = "crop") -> list[str]:
    """What preprocessing will do to an image that is not already a size×size RGB picture."""
    notes = []
    w, h = image.size
    mode = image.mode
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        notes.append(f"The image has an alpha channel ({mode}): transparent pixels were composited onto white.")
    if mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"):
        notes.append(f"The image is grayscale ({mode}): it was converted to RGB (three equal channels).")
    if w * h == 1:
        notes.append(f"The image is 1×1 pixel: it became a flat {size}×{size} square of one colour.")
    elif min(w, h) < size:
        notes.append(f"The image is small ({w}×{h}): it was upscaled to {size}×{size}; it carries little detail.")
    elif max(w, h) > 8 * size:
        notes.append(f"The image is large ({w}×{h}): the models see it shrunk to {size}×{size}.")
    if w != h and w * h > 1:
        notes.append(f"The image is not square ({w}×{h}): " + ("it was squashed to a square, as the released model "
                     "saw its training images." if resize == "squash" else "its centre square was kept."))
    return notes


def read_text(text, what: str, max_chars: int) -> tuple[str, list[str]]:
    """A user text -> (cleaned text, notes). Never fails: an empty text is allowed, the caller decides."""
    text = "" if text is None else str(text)
    notes = []
    if len(text) > max_chars:
        notes.append(f"The {what} has {len(text):,} characters; only the first {max_chars:,} were read "
                     f"(the model's context holds far fewer tokens).")
        text = text[:max_chars]
    text = " ".join(text.split())  # newlines and runs of spaces -> one space
    if any(unicodedata.bidirectional(c) in ("R", "AL") for c in text):
        notes.append(f"The {what} contains right-to-left script: the English-only tiny models never saw it; "
                     f"the tokenizer splits it into byte-level pieces.")
    elif any(ord(c) > 127 for c in text):
        notes.append(f"The {what} contains characters outside plain English (emoji, accents, other scripts): "
                     f"the tokenizer splits them into byte-level pieces the tiny models never saw in training.")
    return text, notes


def unseen_note(model: object, text: str, what: str) -> list[str]:
    """A note naming the text's tokens that never occurred in the model's training data (a compacted checkpoint,
    fuselip.contract.Compactable, stores zeros for them, fuselip/compaction.py)."""
    from fuselip.text import default_tokenizer
    if not isinstance(model, Compactable) or not model.compacted or not text:
        return []
    seen = model.token_seen
    ids = default_tokenizer().encode(text)
    unseen = [i for i in dict.fromkeys(ids) if not bool(seen[i])]
    if not unseen:
        return []
    pieces = ", ".join(repr(p) for p in default_tokenizer().token_strings(unseen[:8]))
    return [f"The {what} has {len(unseen)} token(s) the model never saw in training ({pieces}"
            f"{', …' if len(unseen) > 8 else ''}): their embeddings are zeros, they carry no meaning for it."]


def context_note(text: str, room: int, what: str) -> list[str]:
    """A note when `text` has more BPE tokens than the `room` left in the model's context."""
    from fuselip.text import default_tokenizer
    n = len(default_tokenizer().encode(text))
    if n > room:
        return [f"The {what} has {n} tokens; only the first {room} fit the model's context, the rest was cut."]
    return []

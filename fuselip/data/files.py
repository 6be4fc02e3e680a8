"""A user's own images: a CSV of (image path, caption) as open_clip reads it, or a folder of images.

CSV: like open_clip's `CsvDataset` (`--csv-img-key filepath --csv-caption-key title --csv-separator "\\t"`):
a header row, an image-path column (`filepath`) and a caption column (`title`), tab-separated by
default. Relative paths are tried as given (open_clip's behaviour: relative to the working directory)
and then relative to the CSV's own folder.
Folder: every file with an image extension, sorted, recursively; the caption is the file name
("red_apple-2.jpg" -> "red apple 2") or none (`captions="none"`: only TGIT pairs can be made).

Every bad row (missing file, unreadable image, empty caption) raises `DataFileError` naming the file and
the line, unless `skip_bad=True`: then it is skipped and recorded in `UserImages.skipped` (the count is
printed by the command lines); nothing is dropped silently. A missing column is always an error.
Images go through `fuselip.images.preprocess` (RGB, shorter side resized, centre crop).
"""
from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fuselip.data import tgit
from fuselip.data.types import EvalItem, Pair, Side
from fuselip.images import ImageError, preprocess

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
FILL = (255, 255, 255)  # rotated corners, as in the worlds


class DataFileError(ValueError):
    pass


@dataclass
class UserImages:
    images: list[np.ndarray] = field(default_factory=list)   # (S, S, 3) uint8
    captions: list[str] = field(default_factory=list)        # "" when there are none
    sources: list[str] = field(default_factory=list)         # "data.csv line 3: img/a.jpg"
    skipped: list[str] = field(default_factory=list)         # one reason per skipped row
    ignored: list[str] = field(default_factory=list)         # folder files without an image extension

    def __len__(self) -> int:
        return len(self.images)

    def summary(self) -> str:
        s = f"{len(self)} images"
        if self.skipped:
            s += f", {len(self.skipped)} bad rows skipped (first: {self.skipped[0]})"
        if self.ignored:
            s += f", {len(self.ignored)} non-image files ignored"
        return s


def _bad(where: str, reason: str, out: UserImages, skip_bad: bool) -> None:
    message = f"{where}: {reason}"
    if not skip_bad:
        raise DataFileError(message + " (pass skip_bad=True to skip bad rows and count them)")
    out.skipped.append(message)


def _finish(out: UserImages, what: str) -> UserImages:
    if not out.images:
        detail = f"; skipped {len(out.skipped)}: {out.skipped[0]}" if out.skipped else ""
        raise DataFileError(f"{what}: no usable images{detail}")
    for im in out.images:
        im.setflags(write=False)
    return out


def read_csv(path, image_size: int = 64, sep: str = "\t", img_key: str = "filepath",
             caption_key: str = "title", skip_bad: bool = False) -> UserImages:
    """Images and captions of a CSV file (open_clip's format); see the module docstring for bad rows."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"{path}: no such file")
    out = UserImages()
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter=sep)
        columns = reader.fieldnames or []
        for key, what in ((img_key, "image path"), (caption_key, "caption")):
            if key not in columns:
                raise DataFileError(f"{path} line 1: no {what} column {key!r} in the header (columns: "
                                    f"{', '.join(map(repr, columns)) or 'none'}; separator {sep!r})")
        for row in reader:
            where = f"{path} line {reader.line_num}"
            file_name = (row.get(img_key) or "").strip()
            caption = " ".join((row.get(caption_key) or "").split())
            if not file_name:
                _bad(where, f"empty {img_key!r}", out, skip_bad)
                continue
            if not caption:
                _bad(where, f"empty caption ({caption_key!r}) for {file_name}", out, skip_bad)
                continue
            image_path = Path(file_name)
            if not image_path.is_absolute() and not image_path.exists():
                image_path = path.parent / image_path
            try:
                image = preprocess(image_path, image_size)
            except ImageError as e:
                _bad(where, f"{file_name}: {e}", out, skip_bad)
                continue
            out.images.append(image)
            out.captions.append(caption)
            out.sources.append(f"{where}: {file_name}")
    return _finish(out, str(path))


def caption_from_name(path: Path) -> str:
    return " ".join(path.stem.replace("_", " ").replace("-", " ").split())


def read_folder(folder, image_size: int = 64, captions: str = "filename", skip_bad: bool = False) -> UserImages:
    """Every image under `folder` (sorted); captions from file names ("filename") or none ("none")."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFileError(f"{folder}: not a folder")
    if captions not in ("filename", "none"):
        raise ValueError(f"captions must be 'filename' or 'none', got {captions!r}")
    out = UserImages()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            out.ignored.append(str(path))
            continue
        caption = caption_from_name(path) if captions == "filename" else ""
        if captions == "filename" and not caption:
            _bad(str(path), "the file name gives an empty caption", out, skip_bad)
            continue
        try:
            image = preprocess(path, image_size)
        except ImageError as e:
            _bad(str(path), str(e), out, skip_bad)
            continue
        out.images.append(image)
        out.captions.append(caption)
        out.sources.append(str(path))
    return _finish(out, str(folder))


def read_user_data(csv_path: str = "", image_folder: str = "", image_size: int = 64, skip_bad: bool = False,
                   sep: str = "\t") -> UserImages:
    """The user data a DataConfig names (`data.csv` and/or `data.image_folder`), merged."""
    parts = []
    if csv_path:
        parts.append(read_csv(csv_path, image_size, sep=sep, skip_bad=skip_bad))
    if image_folder:
        parts.append(read_folder(image_folder, image_size, skip_bad=skip_bad))
    if not parts:
        raise DataFileError("no user data given: set data.csv or data.image_folder")
    out = UserImages()
    for p in parts:
        out.images += p.images
        out.captions += p.captions
        out.sources += p.sources
        out.skipped += p.skipped
        out.ignored += p.ignored
    return out


# ---------------------------------------------------------------------------------------------
# pairs and evaluation items

def caption_pairs(data: UserImages, first_group: int = 0) -> list[Pair]:
    """(image, "") -> (none, caption) for every image that has a caption; each its own group."""
    return [Pair(Side(im, ""), Side(None, cap), "caption", first_group + i, "", "user")
            for i, (im, cap) in enumerate(zip(data.images, data.captions)) if cap]


def tgit_pairs(data: UserImages, per_image: int = 6, seed: int = 0, first_group: int = 0,
               fill=FILL) -> list[Pair]:
    """`per_image` random transformations of every image; one hard-negative group per image."""
    rng = random.Random(seed)
    pairs = []
    for g, image in enumerate(data.images):
        seen = set()
        for _ in range(per_image):
            t = tgit.sample(rng)
            left, right = tgit.make_pair(image, t, fill)
            right_side = Side(right, "")
            if right_side.key() in seen:
                continue
            seen.add(right_side.key())
            pairs.append(Pair(Side(left, t.text), right_side, "tgit", first_group + g, t.kind, "user"))
    return pairs


def tgit_eval_items(data: UserImages, n: int, seed: int = 0, fill=FILL) -> list[EvalItem]:
    """n TGIT evaluation items over the user's images (kinds cycle; candidates as in tgit.eval_candidates)."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        kind = tgit.KINDS[i % len(tgit.KINDS)]
        image = data.images[rng.randrange(len(data.images))]
        query, text, candidates = tgit.eval_candidates(image, kind, rng, fill)
        if len(candidates) < 2:
            continue
        items.append(EvalItem(Side(query, text), tuple(Side(c, "") for c in candidates), "tgit", kind, "user",
                              {}))
    return items

"""Text-guided image transformations (TGIT) with the FuseLIP paper's exact phrasing (shared/PAPER.md).

Five kinds, each a `Transform` whose `text` is the instruction and which `apply` carries out:
  crop    "crop to {upper|center|lower} {left|center|right}"  a half-size window at one of 9 cells, resized back
  rotate  "rotate {10..90} degrees {clockwise|counter-clockwise}"  (steps of 10; bilinear; corners filled
          with `fill`, white in the worlds, so the rotated canvas has no visible corners)
  flip    "horizontal flip" / "vertical flip"
  jitter  "increase brightness by factor 1.4 and decrease contrast by factor 0.6"  (1–3 of brightness,
          contrast, saturation; factors 0.3–2.0 in steps of 0.1, never 1.0; applied in the order written)
  colour  "grayscale" (colour image -> gray) / "colorize" (gray image -> the colour original)

Evaluation candidates per query image (`eval_candidates`), as in the paper: crop 9, rotate 18, jitter 10,
flip 4, colour 2. What "flip 4" and "colour 2" mean here:
  flip 4:   the query is a horizontal or a vertical flip; the candidates are the four images of the flip
            group: the asked flip, the other flip, both flips (= rotate 180) and the unchanged image.
  colour 2: "grayscale" on a colour image has candidates {gray version, unchanged colour image};
            "colorize" on the gray version has candidates {colour original, unchanged gray image}.
Identical candidates (a flip of a symmetric scene, two blank crops) are removed, keeping the first.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from fuselip.data.types import image_key

KINDS = ("crop", "rotate", "flip", "jitter", "colour")
CROP_ROWS = ("upper", "center", "lower")
CROP_COLS = ("left", "center", "right")
ROTATE_DEGREES = tuple(range(10, 91, 10))
DIRECTIONS = ("clockwise", "counter-clockwise")
FLIPS = ("horizontal", "vertical")
JITTER_PROPERTIES = ("brightness", "contrast", "saturation")
JITTER_FACTORS = tuple(round(0.1 * i, 1) for i in range(3, 21) if i != 10)  # 0.3 … 2.0 without 1.0
COLOUR_OPS = ("grayscale", "colorize")
GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 luma, as PIL's convert("L")
EVAL_COUNTS = {"crop": 9, "rotate": 18, "jitter": 10, "flip": 4, "colour": 2}


@dataclass(frozen=True)
class Transform:
    """One transformation. params: crop (row, col); rotate (degrees, direction); flip (axes...,)
    [() is the identity and ("horizontal", "vertical") both, used only as eval candidates];
    jitter ((property, factor), ...); colour (op,)."""
    kind: str
    params: tuple

    @property
    def text(self) -> str:
        k, p = self.kind, self.params
        if k == "crop":
            return f"crop to {p[0]} {p[1]}"
        if k == "rotate":
            return f"rotate {p[0]} degrees {p[1]}"
        if k == "flip":
            if len(p) != 1:
                raise ValueError(f"flip {p} is an evaluation candidate, not an instruction")
            return f"{p[0]} flip"
        if k == "jitter":
            return " and ".join(f"{'increase' if f > 1 else 'decrease'} {prop} by factor {f:.1f}" for prop, f in p)
        if k == "colour":
            return p[0]
        raise ValueError(f"unknown transform kind {k!r}")


# ---------------------------------------------------------------------------------------------
# parsing: instruction text -> Transform (the app and user data use this)

_PATTERNS = {
    "crop": re.compile(r"^crop to (upper|center|lower) (left|center|right)$"),
    "rotate": re.compile(r"^rotate ([1-9]0) degrees (clockwise|counter-clockwise)$"),
    "flip": re.compile(r"^(horizontal|vertical) flip$"),
    "jitter": re.compile(r"^{p}(?: and {p})*$".format(
        p=r"(?:increase|decrease) (?:brightness|contrast|saturation) by factor \d\.\d")),
    "colour": re.compile(r"^(grayscale|colorize)$"),
}
_JITTER_PART = re.compile(r"(increase|decrease) (brightness|contrast|saturation) by factor (\d\.\d)")


def parse(text: str) -> Transform:
    """Instruction -> Transform; raises ValueError saying what was expected."""
    t = " ".join(text.strip().lower().split())
    for kind, pattern in _PATTERNS.items():
        m = pattern.match(t)
        if not m:
            continue
        if kind == "crop":
            return Transform("crop", (m[1], m[2]))
        if kind == "rotate":
            return Transform("rotate", (int(m[1]), m[2]))
        if kind == "flip":
            return Transform("flip", (m[1],))
        if kind == "colour":
            return Transform("colour", (m[1],))
        parts = []
        for verb, prop, factor in _JITTER_PART.findall(t):
            f = float(factor)
            if (verb == "increase") != (f > 1) or not 0.3 <= f <= 2.0 or f == 1.0:
                raise ValueError(f"{text!r}: '{verb} {prop}' needs a factor {'above' if verb == 'increase' else 'below'}"
                                 f" 1 within 0.3-2.0, got {factor}")
            parts.append((prop, f))
        return Transform("jitter", tuple(parts))
    raise ValueError(f"{text!r} is not a TGIT instruction; expected e.g. 'crop to upper left', 'rotate 30 degrees "
                     f"clockwise', 'horizontal flip', 'increase brightness by factor 1.4', 'grayscale', 'colorize'")


# ---------------------------------------------------------------------------------------------
# pixels

def grayscale(image: np.ndarray) -> np.ndarray:
    g = image.astype(np.float32) @ GRAY_WEIGHTS  # (H, W)
    g = (g + 0.5).astype(np.uint8)
    return np.repeat(g[:, :, None], 3, axis=2)


def _jitter(image: np.ndarray, params: tuple) -> np.ndarray:
    x = image.astype(np.float32)
    for prop, f in params:
        if prop == "brightness":      # blend with black
            x *= f
        elif prop == "contrast":      # blend with the mean gray level
            mean = float((x @ GRAY_WEIGHTS).mean())
            x = (x - mean) * f + mean
        elif prop == "saturation":    # blend with the gray version
            g = (x @ GRAY_WEIGHTS)[:, :, None]
            x = (x - g) * f + g
        else:
            raise ValueError(f"unknown jitter property {prop!r}")
        np.clip(x, 0, 255, out=x)
    return (x + 0.5).astype(np.uint8)


@lru_cache(maxsize=256)
def _rotation_plan(h: int, w: int, degrees: int) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear sampling plan for rotating an h×w image `degrees` counter-clockwise (on screen) about its
    centre: for every output pixel the flat indices of its 4 source neighbours in the image padded by a
    one-pixel `fill` border, and their weights; (4, h*w) int64 and (4, h*w) float32."""
    theta = np.deg2rad(degrees)
    cos, sin = np.cos(theta), np.sin(theta)
    ys, xs = np.mgrid[0:h, 0:w]
    px, py = xs + 0.5 - w / 2, ys + 0.5 - h / 2                  # output pixel centres, about the centre
    sx = cos * px - sin * py + w / 2 - 0.5                       # inverse rotation -> source index space
    sy = sin * px + cos * py + h / 2 - 0.5
    sx, sy = np.clip(sx, -1, w), np.clip(sy, -1, h)              # outside -> the fill border
    x0, y0 = np.floor(sx), np.floor(sy)
    fx, fy = sx - x0, sy - y0
    x0, y0 = x0.astype(np.int64) + 1, y0.astype(np.int64) + 1   # +1: padded coordinates
    x1, y1 = np.minimum(x0 + 1, w + 1), np.minimum(y0 + 1, h + 1)
    stride = w + 2
    index = np.stack([y0 * stride + x0, y0 * stride + x1, y1 * stride + x0, y1 * stride + x1]).reshape(4, -1)
    weight = np.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx]).reshape(4, -1)
    return index, weight.astype(np.float32)


def rotate_planes(planes: np.ndarray, degrees: int, fill) -> np.ndarray:
    """Rotate (C, H, W) float32 planes counter-clockwise about the centre (bilinear); `fill` has C values."""
    c, h, w = planes.shape
    index, weight = _rotation_plan(h, w, int(degrees))
    padded = np.empty((c, h + 2, w + 2), np.float32)
    padded[:] = np.asarray(fill, np.float32)[:, None, None]
    padded[:, 1:-1, 1:-1] = planes
    flat = padded.reshape(c, -1)                                  # (C, (H+2)*(W+2))
    out = np.take(flat, index[0], axis=1)                         # (C, H*W)
    out *= weight[0]
    for i in range(1, 4):
        corner = np.take(flat, index[i], axis=1)
        corner *= weight[i]
        out += corner
    return out.reshape(c, h, w)


def rotate(image: np.ndarray, degrees: int, fill=(255, 255, 255)) -> np.ndarray:
    """Rotate counter-clockwise (negative: clockwise) about the centre, bilinear, corners filled with `fill`.
    Same geometry as PIL's Image.rotate (tests/data/test_tgit.py compares them), faster for small
    images thanks to the cached plan."""
    out = rotate_planes(image.transpose(2, 0, 1).astype(np.float32), degrees, fill)  # (3, H, W)
    out += 0.5
    return np.ascontiguousarray(out.astype(np.uint8).transpose(1, 2, 0))            # (H, W, 3)


def apply(image: np.ndarray, t: Transform, fill: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Carry out `t` on a (S, S, 3) uint8 image. "colorize" needs the colour original: see `make_pair`."""
    S = image.shape[0]
    k, p = t.kind, t.params
    if k == "crop":
        r, c = CROP_ROWS.index(p[0]), CROP_COLS.index(p[1])
        x0, y0 = c * image.shape[1] / 4, r * S / 4
        box = (x0, y0, x0 + image.shape[1] / 2, y0 + S / 2)
        out = np.asarray(Image.fromarray(image).resize((image.shape[1], S), Image.Resampling.BICUBIC, box=box))
    elif k == "rotate":
        out = rotate(image, p[0] if p[1] == "counter-clockwise" else -p[0], fill)
    elif k == "flip":
        out = image
        if "horizontal" in p:
            out = out[:, ::-1]
        if "vertical" in p:
            out = out[::-1]
        out = np.ascontiguousarray(out)
    elif k == "jitter":
        out = _jitter(image, p)
    elif k == "colour":
        if p[0] != "grayscale":
            raise ValueError("'colorize' cannot be computed from a gray image: use make_pair(colour_image, t)")
        out = grayscale(image)
    else:
        raise ValueError(f"unknown transform kind {k!r}")
    out = np.array(out, dtype=np.uint8, copy=out is image)
    out.setflags(write=False)
    return out


def make_pair(image: np.ndarray, t: Transform, fill=(255, 255, 255)) -> tuple[np.ndarray, np.ndarray]:
    """(query image, target image) for instruction t on a colour source image. For "colorize" the
    query is the gray version and the target the original; for every other kind the query is the source."""
    if t.kind == "colour" and t.params[0] == "colorize":
        return _frozen(grayscale(image)), image
    return image, apply(image, t, fill)


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


# ---------------------------------------------------------------------------------------------
# sampling

def sample_jitter(rng: random.Random) -> Transform:
    props = rng.sample(JITTER_PROPERTIES, rng.randint(1, len(JITTER_PROPERTIES)))
    return Transform("jitter", tuple((prop, rng.choice(JITTER_FACTORS)) for prop in props))


def distinct_jitters(rng: random.Random, n: int) -> list[Transform]:
    """n different colour jitters, in the order drawn."""
    ts: list[Transform] = []
    while len(ts) < n:
        j = sample_jitter(rng)
        if j not in ts:
            ts.append(j)
    return ts


def sample_of_kind(rng: random.Random, kind: str, n: int) -> list[Transform]:
    """Up to n different instructions of one kind (all of them when the kind has fewer, e.g. flip 2)."""
    if kind == "jitter":
        return distinct_jitters(rng, n)
    options = all_of_kind(kind)
    return rng.sample(options, min(n, len(options)))


def sample(rng: random.Random, kind: str | None = None) -> Transform:
    """A random instruction of `kind` (a random kind if None)."""
    kind = kind or rng.choice(KINDS)
    if kind == "crop":
        return Transform("crop", (rng.choice(CROP_ROWS), rng.choice(CROP_COLS)))
    if kind == "rotate":
        return Transform("rotate", (rng.choice(ROTATE_DEGREES), rng.choice(DIRECTIONS)))
    if kind == "flip":
        return Transform("flip", (rng.choice(FLIPS),))
    if kind == "jitter":
        return sample_jitter(rng)
    if kind == "colour":
        return Transform("colour", (rng.choice(COLOUR_OPS),))
    raise ValueError(f"unknown TGIT kind {kind!r}; known: {', '.join(KINDS)}")


def all_of_kind(kind: str) -> list[Transform]:
    """Every instruction of a kind with a finite set (crop 9, rotate 18, flip 2, colour 2)."""
    if kind == "crop":
        return [Transform("crop", (r, c)) for r in CROP_ROWS for c in CROP_COLS]
    if kind == "rotate":
        return [Transform("rotate", (d, s)) for s in DIRECTIONS for d in ROTATE_DEGREES]
    if kind == "flip":
        return [Transform("flip", (f,)) for f in FLIPS]
    if kind == "colour":
        return [Transform("colour", (op,)) for op in COLOUR_OPS]
    raise ValueError(f"kind {kind!r} has no finite instruction set")


def unique_images(images: list[np.ndarray]) -> list[np.ndarray]:
    """Drop images identical to an earlier one (keeps the order, so the correct first one stays first)."""
    seen, out = set(), []
    for im in images:
        key = image_key(im)
        if key not in seen:
            seen.add(key)
            out.append(im)
    return out


def eval_candidates(image: np.ndarray, kind: str, rng: random.Random, fill=(255, 255, 255)
                    ) -> tuple[np.ndarray, str, list[np.ndarray]]:
    """(query image, instruction, candidate images with the correct one first, duplicates removed)."""
    if kind in ("crop", "rotate"):
        options = all_of_kind(kind)
        t = rng.choice(options)
        others = [o for o in options if o != t]
        return image, t.text, unique_images([apply(image, o, fill) for o in [t] + others])
    if kind == "jitter":
        ts = distinct_jitters(rng, EVAL_COUNTS["jitter"])
        return image, ts[0].text, unique_images([apply(image, o, fill) for o in ts])
    if kind == "flip":
        axis = rng.choice(FLIPS)
        other = FLIPS[1 - FLIPS.index(axis)]
        group = [(axis,), (other,), ("horizontal", "vertical"), ()]
        return image, f"{axis} flip", unique_images([apply(image, Transform("flip", g), fill) for g in group])
    if kind == "colour":
        gray = _frozen(grayscale(image))
        if rng.random() < 0.5:
            return image, "grayscale", unique_images([gray, image])
        return gray, "colorize", unique_images([image, gray])
    raise ValueError(f"unknown TGIT kind {kind!r}; known: {', '.join(KINDS)}")

"""What every world shares: the scene graph, the 3×3 layout, captions, referring expressions, crops.

A *scene* is a small graph: a tuple of objects, each in one of 9 cells of a 3×3 grid, with a name
(a shape or an emoji), an optional colour, a size, an orientation and a small pixel offset from its
cell centre. Everything a task needs (captions, questions, crops, edits) is computed from the graph, so
every answer is exact. A world (ShapesWorld, EmojiWorld) adds what its objects are and how they look:
it turns one object into an RGBA sprite, and the shared `render` composites the sprites on the canvas.

Layout, for an even image side S (64 by default): the cell centres are at m, S/2 and S − m on each axis
with m = round(S/6), symmetric about the middle of the canvas, so no pixel reveals which side a crop
came from. An object's centre moves at most `jitter` pixels from its cell centre, and every object crop
is a window of side 2(m − jitter) centred exactly on the object: it always lies inside the image and
is never cut off on one side only (the DESIGN.md "shortcut" a non-centred window would open).
"""
from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from PIL import Image

CELL_NAMES = ("top left", "top center", "top right",
              "middle left", "center", "middle right",
              "bottom left", "bottom center", "bottom right")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True, order=True)
class Obj:
    """One object of a scene. `angle` and the offsets are hidden state: no text mentions them."""
    cell: int                 # 0..8 in reading order (CELL_NAMES)
    name: str                 # "star" / "dog face"
    colour: str = ""          # "" where the world has no colours (emoji)
    size: str = "large"       # "small" | "large"
    angle: int = 0            # orientation, degrees counter-clockwise (reduced modulo the shape's symmetry)
    dx: int = 0               # offset of the centre from the cell centre, pixels
    dy: int = 0


@dataclass(frozen=True)
class Scene:
    """A scene graph: objects in distinct cells, always kept sorted by cell (a canonical form)."""
    objects: tuple[Obj, ...]

    def __post_init__(self):
        objects = tuple(sorted(self.objects))
        cells = [o.cell for o in objects]
        if len(set(cells)) != len(cells):
            raise ValueError(f"two objects share a cell: {objects}")
        object.__setattr__(self, "objects", objects)

    def free_cells(self) -> list[int]:
        used = {o.cell for o in self.objects}
        return [c for c in range(len(CELL_NAMES)) if c not in used]

    def replace(self, old: Obj | None, new: Obj | None) -> "Scene":
        """The scene with `old` removed (if given) and `new` added (if given)."""
        objects = [o for o in self.objects if o != old] if old is not None else list(self.objects)
        if old is not None and len(objects) == len(self.objects):
            raise ValueError(f"{old} is not in the scene")
        return Scene(tuple(objects) + ((new,) if new is not None else ()))


@dataclass(frozen=True)
class WorldConfig:
    """Knobs every world shares (fractions are of the cell side S/3)."""
    min_objects: int = 1
    max_objects: int = 3
    counts: tuple[int, ...] = ()   # objects per scene, drawn uniformly from these (the bottleneck study; see
                                   # `with_counts`); () draws uniformly from [min_objects, max_objects]
    sizes: tuple[tuple[str, float], ...] = (("small", 0.45), ("large", 0.75))  # sprite diameter / cell side
    jitter: float = 0.1            # max centre offset from the cell centre
    angle_step: int = 5            # orientations are multiples of this (TGIT rotates by multiples of 10)
    max_tilt: int = 180            # orientations are drawn from [-max_tilt, max_tilt] (180: any orientation)
    supersample: int = 4           # shapes are drawn this many times larger, then box-filtered (anti-aliasing)
    background: tuple[int, int, int] = (255, 255, 255)  # also the fill of rotated corners (see tgit.py)


MAX_OBJECTS = len(CELL_NAMES)  # one object per cell at most


AnyWorldConfig = TypeVar("AnyWorldConfig", bound="WorldConfig")


def with_counts(config: AnyWorldConfig, counts) -> AnyWorldConfig:
    """`config` for scenes of exactly these object counts (each 1..9, one object per cell at most).

    The world then spans the whole layout, 1 to 9 objects, whatever the counts drawn: edits may add an object up
    to 9 and remove one down to 1, and the count question's answers are "zero" to "nine". So a test set of one
    count (counts=(k,)) asks the same questions with the same answer lists as any other count, and a training
    mixture (counts=(1, …, 9)) lets edits cross between counts. The result has the type of `config`."""
    return dataclasses.replace(config, min_objects=1, max_objects=MAX_OBJECTS, counts=check_counts(counts))


def check_counts(counts) -> tuple[int, ...]:
    """Object counts as a sorted tuple of distinct integers, each 1..9; ValueError otherwise."""
    if any(isinstance(c, bool) or not isinstance(c, (int, np.integer)) for c in counts):
        raise ValueError(f"object counts are integers, got {list(counts)}")
    out = tuple(sorted(set(int(c) for c in counts)))
    if not out or out[0] < 1 or out[-1] > MAX_OBJECTS:
        raise ValueError(f"objects per scene must be between 1 and {MAX_OBJECTS} (one per cell), got {list(counts)}")
    return out


def parse_counts(text: str) -> tuple[int, ...]:
    """"1,3,5,7,9" or "1-9" or "2-4,9" -> sorted distinct object counts (each 1..9)."""
    counts: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                lo, hi = part.split("-", 1)
                counts += range(int(lo), int(hi) + 1)
            elif part:
                counts.append(int(part))
        except ValueError:
            raise ValueError(f"object counts are integers or ranges like 1,3,5 or 1-9, got {text!r}") from None
    return check_counts(counts)


def article(phrase: str) -> str:
    return "an" if phrase[:1] in "aeiou" else "a"


def join_and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


class World:
    """Base class: layout, sampling, captions, referring expressions, crops and rendering."""
    name = "world"
    phrase_attributes: tuple[str, ...] = ("size", "colour", "name")  # order of words in a phrase
    class_attributes: tuple[str, ...] = ("name",)   # what the crop/position tasks call an object

    def __init__(self, config: WorldConfig, image_size: int = 64):
        if image_size % 2 or image_size < 24:
            raise ValueError(f"image_size must be even and at least 24, got {image_size}")
        self.config = config
        self.image_size = S = image_size
        cell = S / 3
        self.margin = round(S / 6)
        self.jitter = int(config.jitter * cell)
        self.crop_side = 2 * (self.margin - self.jitter)
        self.axis_centres = (self.margin, S // 2, S - self.margin)
        self.size_px = {name: frac * cell for name, frac in config.sizes}
        self.sizes = tuple(name for name, _ in config.sizes)
        self._background_u8 = np.empty((S, S, 3), np.uint8)
        self._background_u8[:] = config.background

    # --- what a world must provide ----------------------------------------------------------
    def names(self, split: str) -> tuple[str, ...]:
        raise NotImplementedError

    def colours(self) -> tuple[str, ...]:
        return ()

    def symmetry(self, name: str) -> int:
        """Rotation (degrees) that maps the object onto itself; angles are stored modulo this."""
        return 360

    def plural(self, name: str) -> str:
        """The plural of an object's name ("how many circles are there?")."""
        raise NotImplementedError

    def sprite(self, obj: Obj) -> tuple[np.ndarray, np.ndarray]:
        """(premultiplied RGB (k, k, 3) float32, alpha (k, k, 1) float32), k even, centred on the object."""
        raise NotImplementedError

    def class_label(self, obj: Obj) -> str:
        """Zero-shot class of an object (shape for shapes, category for emoji)."""
        raise NotImplementedError

    def class_labels(self, split: str) -> tuple[str, ...]:
        raise NotImplementedError

    def class_noun(self, obj: Obj) -> str:
        """The noun phrase of the object's class, without article ("food & drink emoji"): what names two objects
        that differ in name alike (the position task's name twins)."""
        raise NotImplementedError(f"{type(self).__name__} has no class noun phrase (its class is the name)")

    def class_prompt(self, label: str) -> str:
        raise NotImplementedError

    # --- sampling ------------------------------------------------------------------------------
    def sample_object(self, rng: random.Random, split: str, cell: int, **fixed) -> Obj:
        """A random object in `cell`; keyword arguments fix attributes (name=, colour=, size=, ...)."""
        name = fixed.get("name") or rng.choice(self.names(split))
        colours = self.colours()
        colour = fixed.get("colour", None)
        if colour is None:
            colour = rng.choice(colours) if colours else ""
        size = fixed.get("size") or rng.choice(self.sizes)
        step = self.config.angle_step
        angle = fixed.get("angle")
        if angle is None:
            tilt = self.config.max_tilt
            angle = rng.randrange(0, 360, step) if tilt >= 180 else rng.randrange(-tilt, tilt + 1, step)
        angle %= self.symmetry(name)
        j = self.jitter
        dx = fixed.get("dx", rng.randint(-j, j))
        dy = fixed.get("dy", rng.randint(-j, j))
        return Obj(cell, name, colour, size, angle, dx, dy)

    def sample_scene(self, rng: random.Random, split: str, n_objects: int | None = None,
                     min_objects: int | None = None) -> Scene:
        """A scene of n distinct-cell objects: n given, else drawn from `config.counts` (those >= min_objects if
        any, else all of them: a stratum of one count wins), else uniform in [min_objects, max_objects]."""
        if n_objects is not None:
            n = n_objects
        elif self.config.counts:
            counts = [c for c in self.config.counts if min_objects is None or c >= min_objects]
            n = rng.choice(counts or self.config.counts)
        else:
            lo = self.config.min_objects if min_objects is None else min_objects
            n = rng.randint(lo, self.config.max_objects)
        cells = rng.sample(range(len(CELL_NAMES)), n)
        return Scene(tuple(self.sample_object(rng, split, c) for c in cells))

    def scene_counts(self) -> tuple[int, ...]:
        """Every number of objects a scene of this world may be drawn with."""
        return self.config.counts or tuple(range(self.config.min_objects, self.config.max_objects + 1))

    # --- language ------------------------------------------------------------------------------
    def phrase(self, obj: Obj, attributes: tuple[str, ...] | None = None) -> str:
        """Noun phrase without article, e.g. "large red circle" (attributes in the world's word order)."""
        attributes = self.phrase_attributes if attributes is None else attributes
        return " ".join(getattr(obj, a) for a in self.phrase_attributes if a in attributes and getattr(obj, a))

    def caption(self, scene: Scene) -> str:
        """"a large red circle in the top left and a small blue star in the bottom right"."""
        parts = []
        for o in scene.objects:
            p = self.phrase(o)
            parts.append(f"{article(p)} {p} in the {CELL_NAMES[o.cell]}")
        return join_and(parts)

    def refer(self, scene: Scene, obj: Obj, exclude: tuple[str, ...] = ()) -> str | None:
        """Shortest phrase that picks out `obj` in `scene` without the excluded attributes
        ("circle", "red circle", "small red circle", "circle in the top left"); None if impossible."""
        others = [o for o in scene.objects if o != obj]
        optional = [a for a in self.phrase_attributes if a != "name" and a not in exclude]
        choices = [("name",)] + [("name", a) for a in reversed(optional)] + [("name", *optional)]
        for attrs in choices:
            if not any(all(getattr(o, a) == getattr(obj, a) for a in attrs) for o in others):
                return self.phrase(obj, attrs)
        if "cell" not in exclude:
            return f"{obj.name} in the {CELL_NAMES[obj.cell]}"
        return None

    # --- geometry --------------------------------------------------------------------------------
    def centre(self, obj: Obj) -> tuple[int, int]:
        """Pixel-edge coordinates (x, y) of the object's centre (integers: the image side is even)."""
        row, col = divmod(obj.cell, 3)
        return self.axis_centres[col] + obj.dx, self.axis_centres[row] + obj.dy

    def crop(self, image: np.ndarray, obj: Obj) -> np.ndarray:
        """The object's crop: a window of side `crop_side` centred on it, resized to the image size."""
        x, y = self.centre(obj)
        h = self.crop_side // 2
        box = (x - h, y - h, x + h, y + h)
        S = self.image_size
        out = Image.fromarray(image).resize((S, S), Image.Resampling.BICUBIC, box=box)
        return readonly(np.asarray(out))

    def crop_box(self, obj: Obj) -> tuple[int, int, int, int]:
        x, y = self.centre(obj)
        h = self.crop_side // 2
        return x - h, y - h, x + h, y + h

    # --- pixels ----------------------------------------------------------------------------------
    def render(self, scene: Scene) -> np.ndarray:
        """Composite each object's sprite (premultiplied alpha 'over') onto the background. Only the
        sprite's own square is touched, in float, and rounded back to uint8 (objects never overlap much)."""
        S = self.image_size
        canvas = self._background_u8.copy()  # (S, S, 3) uint8
        for obj in scene.objects:
            rgb, alpha = self.sprite(obj)
            k = alpha.shape[0]
            x, y = self.centre(obj)
            x0, y0 = x - k // 2, y - k // 2
            cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x0 + k, S), min(y0 + k, S)
            a = alpha[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
            region = canvas[cy0:cy1, cx0:cx1].astype(np.float32)
            region *= 1.0 - a
            region += rgb[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
            region += 0.5
            canvas[cy0:cy1, cx0:cx1] = region  # float -> uint8 truncates: +0.5 rounds
        return readonly(canvas)


def readonly(image: np.ndarray) -> np.ndarray:
    """Images are shared between pairs of a group: freeze them so nobody edits one in place."""
    image.setflags(write=False)
    return image


def split_check(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    return split


def obj_replace(obj: Obj, **changes) -> Obj:
    return dataclasses.replace(obj, **changes)

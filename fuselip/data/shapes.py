"""ShapesWorld: procedural scenes of 1–3 coloured shapes, with a scene graph that knows every fact.

Each object is one of six shapes in one of ten named colours, small or large, in one of nine cells,
with a random orientation (a multiple of 5°, so TGIT's 10°-step rotations keep it on the same grid: a
rotated scene looks like any other scene, and the rotation can only be read by comparing with the
source image). The canvas is white and rotated corners are filled white too (tgit.py), for the same reason.

Rendering is fast because each (shape, size, orientation) is drawn once: a polygon at 4× scale with
PIL, box-filtered down to an anti-aliased alpha mask, and cached; a scene is then a few numpy
alpha-blends (benchmarks/data_throughput.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from fuselip.data.world import Obj, World, WorldConfig

SHAPES = ("circle", "square", "triangle", "star", "cross", "diamond")
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles", "star": "stars",
           "cross": "crosses", "diamond": "diamonds"}
COLOURS = (("red", (220, 38, 38)), ("orange", (245, 130, 20)), ("yellow", (235, 200, 20)),
           ("green", (34, 160, 60)), ("cyan", (20, 185, 210)), ("blue", (40, 80, 220)),
           ("purple", (140, 60, 190)), ("pink", (240, 110, 180)), ("brown", (125, 78, 40)),
           ("black", (25, 25, 25)))
# Rotation that maps each shape onto itself: its angle is stored modulo this (a canonical scene graph).
SYMMETRY = {"circle": 360, "square": 90, "triangle": 120, "star": 72, "cross": 90, "diamond": 180}


@dataclass(frozen=True)
class ShapesConfig(WorldConfig):
    shapes: tuple[str, ...] = SHAPES
    colours: tuple[tuple[str, tuple[int, int, int]], ...] = COLOURS
    class_template: str = "a {}"          # zero-shot prompt: "a star"


def shape_outline(name: str) -> list[tuple[float, float]] | None:
    """Vertices of the shape at angle 0 inside the unit circle (None for the circle)."""
    if name == "circle":
        return None
    if name == "square":
        h = 0.7
        return [(-h, -h), (h, -h), (h, h), (-h, h)]
    if name == "triangle":  # equilateral, pointing up, centred on its centroid
        return [(math.cos(math.radians(a)), -math.sin(math.radians(a))) for a in (90, 210, 330)]
    if name == "star":  # five points
        pts = []
        for i in range(10):
            r = 1.0 if i % 2 == 0 else 0.42
            a = math.radians(90 + 36 * i)
            pts.append((r * math.cos(a), -r * math.sin(a)))
        return pts
    if name == "cross":  # a plus sign
        w, L = 0.3, 0.95
        return [(-w, -L), (w, -L), (w, -w), (L, -w), (L, w), (w, w), (w, L), (-w, L), (-w, w), (-L, w),
                (-L, -w), (-w, -w)]
    if name == "diamond":  # an elongated rhombus, so it is never a rotated square
        return [(0.0, -1.0), (0.45, 0.0), (0.0, 1.0), (-0.45, 0.0)]
    raise ValueError(f"unknown shape {name!r}; known: {', '.join(SHAPES)}")


def draw_mask(name: str, diameter: float, angle: int, side: int, supersample: int) -> np.ndarray:
    """Anti-aliased alpha mask (side, side) float32 in [0, 1] of a shape centred in the square."""
    big = side * supersample
    image = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(image)
    c, r = big / 2, diameter * supersample / 2
    outline = shape_outline(name)
    if outline is None:
        rc = 0.85 * r
        draw.ellipse((c - rc, c - rc, c + rc, c + rc), fill=255)
    else:
        cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        # counter-clockwise on screen: y points down, so rotate by -angle in image coordinates
        pts = [(c + r * (x * cos + y * sin), c + r * (-x * sin + y * cos)) for x, y in outline]
        draw.polygon(pts, fill=255)
    small = image.resize((side, side), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


class ShapesWorld(World):
    config: ShapesConfig
    name = "shapes"
    phrase_attributes = ("size", "colour", "name")
    class_attributes = ("colour", "name")

    def __init__(self, config: ShapesConfig | None = None, image_size: int = 64):
        config = config or ShapesConfig()
        super().__init__(config, image_size)
        self.rgb = {name: np.array(rgb, np.float32) for name, rgb in config.colours}
        self._colour_names = tuple(name for name, _ in config.colours)
        self._masks: dict[tuple, np.ndarray] = {}   # (shape, size, angle) -> (k, k, 1) alpha
        self._sprites: dict[tuple, tuple] = {}      # (shape, size, angle, colour) -> (rgb, alpha)

    def names(self, split: str) -> tuple[str, ...]:
        return self.config.shapes

    def colours(self) -> tuple[str, ...]:
        return self._colour_names

    def symmetry(self, name: str) -> int:
        return SYMMETRY[name]

    def plural(self, name: str) -> str:
        return PLURALS.get(name, name + "s")

    def class_label(self, obj: Obj) -> str:
        return obj.name

    def class_labels(self, split: str) -> tuple[str, ...]:
        return self.config.shapes

    def class_prompt(self, label: str) -> str:
        return self.config.class_template.format(label)

    def mask(self, name: str, size: str, angle: int) -> np.ndarray:
        key = (name, size, angle)
        m = self._masks.get(key)
        if m is None:
            diameter = self.size_px[size]
            side = 2 * math.ceil(diameter / 2 + 1)  # even, one pixel of room for the anti-aliased edge
            m = draw_mask(name, diameter, angle, side, self.config.supersample)[:, :, None]  # (k, k, 1)
            self._masks[key] = m
        return m

    def sprite(self, obj: Obj) -> tuple[np.ndarray, np.ndarray]:
        key = (obj.name, obj.size, obj.angle, obj.colour)
        s = self._sprites.get(key)
        if s is None:
            alpha = self.mask(obj.name, obj.size, obj.angle)
            s = (alpha * self.rgb[obj.colour], alpha)  # premultiplied (k, k, 3), alpha (k, k, 1)
            self._sprites[key] = s
        return s

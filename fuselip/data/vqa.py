"""Visual questions generated from the scene graph: each answer needs the right object.

Question kinds (a world asks those that make sense for it):
  colour    "what colour is the star?"            -> "red"         (shapes)
  shape     "what shape is in the top left?"      -> "star"        (shapes)
  object    "what is in the top left?"            -> "dog face"    (emoji)
  category  "what kind of emoji is in the center?" -> "animals & nature"  (emoji)
  size      "what size is the red star?"          -> "small"
  count     "how many stars are there?"           -> "two"   (or "how many red shapes" / "how many large emoji")
  position  "where is the red star?"              -> "top left"
The candidates of a question are all answers of its kind (all colours, all cell names, ...).
"""
from __future__ import annotations

import random

from fuselip.data.world import CELL_NAMES, Scene, World

NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def question_kinds(world: World) -> tuple[str, ...]:
    if world.colours():
        return ("colour", "shape", "size", "count", "position")
    return ("object", "category", "size", "count", "position")


def answers(world: World, kind: str, split: str) -> tuple[str, ...]:
    """Every possible answer of a question kind: the candidates of an evaluation item."""
    if kind == "colour":
        return world.colours()
    if kind in ("shape", "object"):
        return world.names(split)
    if kind == "category":
        return world.class_labels(split)
    if kind == "size":
        return world.sizes
    if kind == "count":
        return NUMBERS[:world.config.max_objects + 1]
    if kind == "position":
        return CELL_NAMES
    raise ValueError(f"unknown question kind {kind!r}")


def ask(world: World, scene: Scene, rng: random.Random, kind: str) -> tuple[str, str] | None:
    """(question, answer) of `kind` about `scene`, or None if this scene cannot pose one."""
    objects = list(scene.objects)
    rng.shuffle(objects)
    if kind in ("shape", "object", "category"):
        o = objects[0]
        where = CELL_NAMES[o.cell]
        if kind == "shape":
            return f"what shape is in the {where}?", o.name
        if kind == "object":
            return f"what is in the {where}?", o.name
        return f"what kind of emoji is in the {where}?", world.class_label(o)
    if kind == "count":
        return _count(world, scene, rng)
    exclude = {"colour": ("colour",), "size": ("size",), "position": ("cell",)}.get(kind)
    if exclude is None:
        raise ValueError(f"unknown question kind {kind!r}")
    for o in objects:
        ref = world.refer(scene, o, exclude=exclude)
        if ref is None:
            continue
        if kind == "colour":
            return f"what colour is the {ref}?", o.colour
        if kind == "size":
            return f"what size is the {ref}?", o.size
        return f"where is the {ref}?", CELL_NAMES[o.cell]
    return None


def _count(world: World, scene: Scene, rng: random.Random) -> tuple[str, str]:
    """Count the objects with one property: mostly a property present in the scene, sometimes any."""
    attribute = rng.choice(("name", "colour") if world.colours() else ("size",))
    present = [getattr(o, attribute) for o in scene.objects]
    pool = {"name": world.names("train"), "colour": world.colours(), "size": world.sizes}[attribute]
    value = rng.choice(present) if rng.random() < 0.8 else rng.choice(pool)
    n = sum(1 for v in present if v == value)
    if attribute == "name":
        return f"how many {world.plural(value)} are there?", NUMBERS[n]
    if attribute == "colour":
        return f"how many {value} shapes are there?", NUMBERS[n]
    return f"how many {value} emoji are there?", NUMBERS[n]

"""What the tasks share: the sides they build, and the scenes and phrases they pose their questions on.

The training groups (fuselip/data/task_groups.py) and the evaluation items (fuselip/data/task_items.py) both
draw from here: a scene of one object, an object's class phrase, and the position task's two same-class twins
(`position_scene`), what tells the twins apart (`twin_attribute`) and the query that names them alike
(`position_query`; fuselip/data/tasks.py says why late fusion cannot answer it by its score alone).
"""
from __future__ import annotations

import random

import numpy as np

from fuselip.data.types import Side
from fuselip.data.world import Obj, Scene, World, obj_replace


def image_side(a: np.ndarray) -> Side:
    return Side(a, "")


def text_side(t: str) -> Side:
    return Side(None, t)


def single_object_scene(world: World, rng: random.Random, split: str) -> Scene:
    return world.sample_scene(rng, split, n_objects=1)


def class_phrase(world: World, obj: Obj) -> str:
    return world.phrase(obj, world.class_attributes)


def same_class(world: World, a: Obj, b: Obj) -> bool:
    return all(getattr(a, x) == getattr(b, x) for x in world.class_attributes)


POSITION_TWINS = ("appearance", "colour", "size")


def twin_attribute(world: World, twins: str) -> str:
    """The one attribute in which the position twins differ, for `twins` =
      - "appearance": what a crop shows plainly: "colour" where the world has colours (same shape and size, and the
        query names the shape only: "the star on the left"), else "name": two different emoji of one category and
        size, the query naming the category ("the food & drink emoji on the left");
      - "colour": colour where the world has colours, else size (the benchmark of the v3 checkpoints);
      - "size": the twins share the class phrase ("the red star on the left") and differ in size only.
    In every case the query names both twins alike, so a model that embeds image and text apart can only guess."""
    if twins not in POSITION_TWINS:
        raise ValueError(f"position_twins must be one of {POSITION_TWINS}, got {twins!r}")
    if twins == "size":
        return "size"
    if world.colours():
        return "colour"
    return "name" if twins == "appearance" else "size"


def position_phrase(world: World, obj: Obj, attribute: str) -> str:
    """The twins' shared phrase: the class attributes without the one they differ in (name twins: their class)."""
    if attribute == "name":
        return world.class_noun(obj)
    return world.phrase(obj, tuple(a for a in world.class_attributes if a != attribute))


def position_scene(world: World, rng: random.Random, split: str, attribute: str = "size"):
    """Two objects of the same class in different columns (+ maybe a third of another class; with object counts,
    as many others as the drawn count asks); they differ in `attribute`, which the question never mentions, so
    their crops always look different. Returns (scene, left object, right object)."""
    while True:
        a, b = rng.sample(range(9), 2)
        if a % 3 != b % 3:
            break
    first = world.sample_object(rng, split, a)
    if attribute == "size":
        other_size = rng.choice([s for s in world.sizes if s != first.size])
        second = world.sample_object(rng, split, b, name=first.name, colour=first.colour, size=other_size)
    elif attribute == "name":
        label = world.class_label(first)
        kin = [n for n in world.names(split)
               if n != first.name and world.class_label(obj_replace(first, name=n)) == label]
        second = world.sample_object(rng, split, b, name=rng.choice(kin), colour=first.colour, size=first.size)
    else:
        other_colour = rng.choice([c for c in world.colours() if c != first.colour])
        second = world.sample_object(rng, split, b, name=first.name, colour=other_colour, size=first.size)
    objects = [first, second]
    if world.config.counts:  # a count of at least 2 (kinds() offers no position task otherwise)
        extra = rng.choice([c for c in world.config.counts if c >= 2]) - 2
    else:
        extra = 1 if world.config.max_objects >= 3 and rng.random() < 0.5 else 0
    if extra:
        # the other objects never fit the twins' phrase ("the star", "the food & drink emoji")
        phrase = position_phrase(world, first, attribute)
        names = [n for n in world.names(split) if position_phrase(world, obj_replace(first, name=n), attribute)
                 != phrase]
        for _ in range(extra):
            free = [c for c in range(9) if c not in {o.cell for o in objects}]
            objects.append(world.sample_object(rng, split, rng.choice(free), name=rng.choice(names)))
    scene = Scene(tuple(objects))
    left, right = sorted([first, second], key=lambda o: world.centre(o)[0])
    return scene, left, right


def position_query(phrase: str, side: str) -> str:
    """The position task's query text ("the star on the left")."""
    return f"the {phrase} on the {side}"


def position_size_question(phrase: str, side: str) -> str:
    """The same binding asked about the twins' size ("what size is the star on the left?";
    fuselip.evaluate.position_binding)."""
    return f"what size is the {phrase} on the {side}?"
